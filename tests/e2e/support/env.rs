//! One staged cluster with the webhook registered, shared by the scenarios.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize as _;
use serde_json::{json, Value};

use super::cluster::{control_plane_bin, repo_root, ControlPlane, Kubectl, WorkDir};
use super::objects::{self, annotation, ANNOTATION, NOT_READY_TAINT};
use super::webhook::{ServingCerts, Watchdog, Webhook, WebhookArgs};
use super::{poll, tail};

/// How long the apiserver may take to start calling a newly registered (or restarted) webhook.
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Env {
    pub kubectl: Kubectl,
    /// The running webhook; `None` while a scenario has it stopped.
    pub webhook: Option<Webhook>,
    /// The port the registered configuration's URL names; restarts keep it.
    pub port: u16,
    pub certs: ServingCerts,
    /// The MutatingWebhookConfiguration as registered.
    pub registered: Value,
    /// The same object as `kubectl kustomize deploy/base` rendered it.
    pub rendered: Value,
    watchdog: Watchdog,
    pub control_plane: ControlPlane,
    pub work: WorkDir,
}

impl Env {
    /// Control plane, staged cluster, webhook (enforce, no steer) and its registration, and a
    /// wait until the apiserver really calls it.
    pub fn start() -> Env {
        let started = Instant::now();
        let work = WorkDir::new();
        let bin = control_plane_bin();
        let control_plane = ControlPlane::start(&work.path().join("control-plane"), &bin);
        eprintln!("e2e: control plane up at {} ({:.1}s)", control_plane.apiserver_url, started.elapsed().as_secs_f64());
        let kubectl = control_plane.kubectl();
        let watchdog = Watchdog::start(&work.path().join("run"), &work.path().join("logs"));

        kubectl.apply(&objects::cluster()).expect_ok();
        kubectl.run(&["taint", "nodes", "--all", NOT_READY_TAINT], None).expect_ok();

        let certs = ServingCerts::new(&work.path().join("pki"));
        let mut env = Env {
            kubectl,
            webhook: None,
            port: 0,
            certs,
            registered: Value::Null,
            rendered: Value::Null,
            watchdog,
            control_plane,
            work,
        };
        env.ensure_webhook(WebhookArgs::default());
        env.register();
        eprintln!("e2e: webhook registered and called ({:.1}s)", started.elapsed().as_secs_f64());
        env
    }

    fn logs(&self) -> PathBuf {
        self.work.path().join("logs")
    }

    /// The webhook's last log lines (one line per admission decision), for failure messages.
    pub fn diagnostics(&self) -> String {
        match &self.webhook {
            Some(w) => tail(&w.log, 20),
            None => "(no webhook running)".into(),
        }
    }

    /// Makes sure a webhook started with `args` is serving on the registered port (restarting
    /// the current one if it was started otherwise) and that the apiserver reaches it.
    pub fn ensure_webhook(&mut self, args: WebhookArgs) {
        if self.webhook.as_ref().is_some_and(|w| w.args == args) {
            return;
        }
        if let Some(old) = self.webhook.take() {
            old.stop();
        }
        let port = (self.port != 0).then_some(self.port);
        let run = self.work.path().join("run");
        let webhook = Webhook::start(&self.control_plane.kubeconfig, &self.certs, args, port, &self.logs(), &run);
        self.port = webhook.port;
        self.webhook = Some(webhook);
        if !self.registered.is_null() {
            self.wait_called();
        }
    }

    /// Stops the webhook (SIGTERM, drained), leaving the configuration registered.
    pub fn stop_webhook(&mut self) {
        if let Some(w) = self.webhook.take() {
            w.stop();
        }
    }

    #[track_caller]
    pub fn webhook(&self) -> &Webhook {
        self.webhook.as_ref().expect("the webhook is running")
    }

    /// The MutatingWebhookConfiguration of deploy/base, rendered by kubectl's kustomize, with
    /// only `clientConfig` replaced by the loopback URL and our CA.
    pub fn render_configuration(&self, port: u16) -> (Value, Value) {
        let base = repo_root().join("deploy/base");
        let run = self.kubectl.run(&["kustomize", base.to_str().expect("utf-8 path")], None).expect_ok();
        let mut found = None;
        for doc in serde_norway::Deserializer::from_str(&run.stdout) {
            let y = serde_norway::Value::deserialize(doc).expect("kustomize output is YAML");
            let v = serde_json::to_value(y).expect("YAML converts to JSON");
            if v["kind"] == "MutatingWebhookConfiguration" {
                assert!(found.is_none(), "deploy/base renders more than one MutatingWebhookConfiguration");
                found = Some(v);
            }
        }
        let rendered = found.expect("deploy/base renders a MutatingWebhookConfiguration");
        let mut local = rendered.clone();
        let hooks = local["webhooks"].as_array_mut().expect("webhooks");
        assert_eq!(hooks.len(), 1, "deploy/base has one mutating webhook");
        for hook in hooks {
            hook["clientConfig"] = json!({
                "url": format!("https://127.0.0.1:{port}/mutate"),
                "caBundle": self.certs.ca_bundle,
            });
        }
        (rendered, local)
    }

    /// Registers the configuration for real (a create, so the apiserver compiles the CEL
    /// matchConditions) and waits until the webhook is called.
    pub fn register(&mut self) {
        let (rendered, local) = self.render_configuration(self.port);
        self.kubectl.apply(&local).expect_ok();
        self.rendered = rendered;
        self.registered = local;
        self.wait_called();
    }

    /// Loops a server-side dry run of a Sysbox pod on the flagged pool until the stored object
    /// carries the annotation, i.e. the apiserver called this webhook and applied its patch.
    #[track_caller]
    pub fn wait_called(&self) {
        let ns = "e2e-probe";
        self.kubectl.apply(&objects::namespace(ns, None)).expect_ok();
        let probe = objects::sysbox_pod(ns, "probe", "relaxed");
        let mut last = String::new();
        let called = poll(REGISTRATION_TIMEOUT, Duration::from_millis(250), || {
            let run = self.kubectl.dry_run(&probe);
            if run.success() && annotation(&run.json()) == Some("true") {
                return Some(());
            }
            last = format!("{}{}", run.stdout.chars().take(300).collect::<String>(), run.stderr);
            None
        });
        assert!(
            called.is_some(),
            "the apiserver did not call the webhook within {REGISTRATION_TIMEOUT:?}: a dry-run create of a Sysbox \
             pod still lacks {ANNOTATION}. Last answer:\n{last}\n{}\n{}",
            self.diagnostics(),
            tail(&self.control_plane.apiserver_log(), 20)
        );
    }

    /// A fresh namespace (names are never reused: with no namespace controller a deleted one
    /// stays Terminating).
    pub fn namespace(&self, name: &str, mode: Option<&str>) {
        self.kubectl.apply(&objects::namespace(name, mode)).expect_ok();
    }
}
