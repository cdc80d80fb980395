//! End to end: the real `sysbox-ro-webhook serve` behind a real kube-apiserver, asserted on
//! what the apiserver and kubectl really return.
//!
//! Ignored by default (it needs etcd, kube-apiserver and kubectl, built by
//! tests/e2e/build-control-plane.sh). Run it with
//!
//!     tests/e2e/run.sh
//!
//! which builds (or reuses) the control plane and runs
//! `cargo test --test e2e -- --ignored --test-threads=1 --skip bench --nocapture`.
//! `SYSBOX_RO_E2E_SCENARIOS=warn_namespace,steer` runs only the scenarios whose names contain
//! one of those words (setup always runs); `SYSBOX_RO_E2E_KEEP=1` keeps the work folder.
//!
//! One control plane and one webhook process serve every scenario; each scenario works in its
//! own namespace. The order keeps webhook restarts few (the audit on a timer, `--steer`) and ends with the
//! scenario that stops it.
//!
//! The benchmarks (not assertions) are `bench::admission_latency` and
//! `bench_live_view::live_view_scale` (the live view of thousands of nodes); see
//! tests/e2e/FIGURES.md.

#[path = "e2e/support/mod.rs"]
mod support;

#[path = "e2e/bench.rs"]
mod bench;

#[path = "e2e/bench_live_view.rs"]
mod bench_live_view;

#[path = "../benches/support/mod.rs"]
mod generated;

#[path = "e2e/agent.rs"]
mod agent;

#[path = "e2e/audit.rs"]
mod audit;

#[path = "e2e/chaos.rs"]
mod chaos;

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::env::Env;
use support::objects::{self, annotation, required_terms, ANNOTATION, FLAG, MIXED, WEBHOOK_NAME};
use support::poll;
use support::webhook::{connections_to, first_cert_der, http_get, metric_sum, served_certificate, WebhookArgs};

type Scenario = fn(&mut Env);

/// In run order; the scenario number is in each name.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("00_deploy_base_configuration_accepted", deploy_base_configuration_accepted),
    ("01_flagged_pool_annotated", flagged_pool_annotated),
    ("02_unflagged_pool_denied", unflagged_pool_denied),
    ("03_warn_namespace", warn_namespace),
    ("04_deployment_verdict_at_apply", deployment_verdict_at_apply),
    ("05_server_dry_run", server_dry_run),
    ("08_ordinary_pod_never_sent", ordinary_pod_never_sent),
    ("07_live_node_label", live_node_label),
    ("12_agent_follows_sysbox_mgr", agent::agent_follows_sysbox_mgr),
    ("13_agent_token_confined", agent::agent_token_confined),
    ("11_configmap_flag_without_labels", configmap_flag_without_labels),
    ("14_audit_running_pods", audit::audit_running_pods),
    ("15_karpenter_nodepool_hosts_pod", karpenter_nodepool_hosts_pod),
    ("10_certificate_rotation", certificate_rotation),
    ("06_steer_mixed_pools", steer_mixed_pools),
    ("16_apiserver_outage_stale_but_serving", chaos::apiserver_outage_stale_but_serving),
    ("09_webhook_down_fail_policy", webhook_down_fail_policy),
];

fn selected(name: &str) -> bool {
    match std::env::var("SYSBOX_RO_E2E_SCENARIOS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|w| !w.trim().is_empty() && name.contains(w.trim())),
        _ => true,
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".into())
}

#[test]
#[ignore = "needs etcd, kube-apiserver and kubectl: run tests/e2e/run.sh"]
fn scenarios() {
    let started = Instant::now();
    let mut env = Env::start();
    let mut results: Vec<(&str, Result<Duration, String>)> = Vec::new();
    for (name, scenario) in SCENARIOS.iter().filter(|(n, _)| selected(n)) {
        eprintln!("e2e: === {name}");
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| scenario(&mut env)));
        let outcome = outcome.map(|()| t.elapsed()).map_err(|e| panic_message(e.as_ref()));
        match &outcome {
            Ok(d) => eprintln!("e2e: --- pass {name} ({:.1}s)", d.as_secs_f64()),
            Err(m) => eprintln!("e2e: --- FAIL {name}: {m}\n{}", env.diagnostics()),
        }
        results.push((name, outcome));
    }
    eprintln!("e2e: summary ({:.1}s in all)", started.elapsed().as_secs_f64());
    for (name, outcome) in &results {
        match outcome {
            Ok(d) => eprintln!("e2e:   pass  {name} ({:.1}s)", d.as_secs_f64()),
            Err(_) => eprintln!("e2e:   FAIL  {name}"),
        }
    }
    let failed: Vec<&str> = results.iter().filter(|(_, o)| o.is_err()).map(|(n, _)| *n).collect();
    if !failed.is_empty() {
        env.work.keep = true;
        panic!("{} of {} scenarios failed: {}", failed.len(), results.len(), failed.join(", "));
    }
    assert!(!results.is_empty(), "SYSBOX_RO_E2E_SCENARIOS selected no scenario");
}

/// The denial's prefix as kubectl prints it.
fn denied() -> String {
    format!("admission webhook \"{WEBHOOK_NAME}\" denied the request: ")
}

/// Polls server-side dry runs of `object` until `done` accepts what kubectl returned; returns
/// how long that took.
#[track_caller]
fn wait_for_verdict(
    env: &Env,
    object: &Value,
    within: Duration,
    what: &str,
    done: impl Fn(&support::cluster::Run) -> bool,
) -> Duration {
    let t = Instant::now();
    let mut last = String::new();
    let ok = poll(within, Duration::from_millis(100), || {
        let run = env.kubectl.dry_run(object);
        if done(&run) {
            return Some(());
        }
        last = format!("exit {}; stderr: {}", run.status, run.stderr);
        None
    });
    assert!(ok.is_some(), "{what}: not within {within:?}; last dry run: {last}\n{}", env.diagnostics());
    t.elapsed()
}

// --- 0 -------------------------------------------------------------------------------------------

/// The configuration registered is deploy/base's (rendered by kustomize), clientConfig aside,
/// and the apiserver stored it as given: its CEL matchConditions compiled on a real create.
/// (Applying every render of deploy/ with a server-side dry run is tests/deploy/check.sh's job.)
fn deploy_base_configuration_accepted(env: &mut Env) {
    let stored = env.kubectl.get(&["mutatingwebhookconfiguration", "sysbox-ro-webhook"]);
    let (rendered, stored_hook) = (&env.rendered["webhooks"][0], &stored["webhooks"][0]);
    assert_eq!(stored_hook["name"], WEBHOOK_NAME);
    for field in [
        "rules",
        "matchConditions",
        "namespaceSelector",
        "failurePolicy",
        "sideEffects",
        "timeoutSeconds",
        "reinvocationPolicy",
        "matchPolicy",
        "admissionReviewVersions",
    ] {
        assert!(!rendered[field].is_null(), "deploy/base sets no {field}");
        assert_eq!(stored_hook[field], rendered[field], "{field}: stored differs from deploy/base");
    }
    assert_eq!(stored_hook["failurePolicy"], "Fail");
    assert_eq!(stored_hook["clientConfig"]["url"], format!("https://127.0.0.1:{}/mutate", env.port));
    assert!(rendered["matchConditions"].as_array().is_some_and(|c| !c.is_empty()));
}

// --- 1 -------------------------------------------------------------------------------------------

fn flagged_pool_annotated(env: &mut Env) {
    let ns = "s01-flagged";
    env.namespace(ns, None);
    let run = env.kubectl.apply(&objects::sysbox_pod(ns, "ro", "relaxed")).expect_ok().expect_no_warning();
    assert!(run.stdout.contains("pod/ro created"), "{}", run.stdout);
    let stored = env.kubectl.get(&["pod", "ro", "-n", ns]);
    assert_eq!(annotation(&stored), Some("true"), "stored pod: {stored}");
    assert!(required_terms(&stored).is_empty(), "no steering without --steer");
}

// --- 2 -------------------------------------------------------------------------------------------

fn unflagged_pool_denied(env: &mut Env) {
    let ns = "s02-enforce";
    env.namespace(ns, None);
    env.kubectl.apply(&objects::sysbox_pod(ns, "ro", "strict")).expect_failure().expect_stderr(&[
        "Error from server (Forbidden)",
        &format!("{}Pod {ns}/ro uses Sysbox (RuntimeClass sysbox-runc) with readOnlyRootFilesystem", denied()),
        &format!("Pools lacking the flag: strict (1 node labelled {FLAG}=false set by hand)"),
        "To fix: run sysbox-mgr (Sysbox 0.6.5+) with --relaxed-read-only on those nodes",
        "sysbox-ro-webhook explain relaxed-read-only-missing",
    ]);
    assert!(!env.kubectl.exists(ns, "pod", "ro"), "a denied pod must not be stored");
}

// --- 3 -------------------------------------------------------------------------------------------

fn warn_namespace(env: &mut Env) {
    let ns = "s03-warn";
    env.namespace(ns, Some("warn"));
    let pod = objects::sysbox_pod(ns, "ro", "strict");
    let warning = "sysbox-ro: pools strict lack sysbox-mgr --relaxed-read-only; Docker in this read-only pod will fail";
    // The namespace label reaches the webhook through its watch: wait until it is seen.
    wait_for_verdict(env, &pod, Duration::from_secs(10), "the webhook sees the namespace's warn label", |r| {
        r.success() && r.warnings().contains(&warning)
    });
    let run = env.kubectl.apply(&pod).expect_ok().expect_warning(warning);
    assert!(run.stdout.contains("pod/ro created"), "{}", run.stdout);
    assert!(env.kubectl.exists(ns, "pod", "ro"));
}

// --- 4 -------------------------------------------------------------------------------------------

fn deployment_verdict_at_apply(env: &mut Env) {
    let ns = "s04-deployment";
    env.namespace(ns, None);
    let strict = objects::deployment(ns, "builder", objects::sysbox_spec(&[(objects::POOL, "strict")]));
    env.kubectl.apply(&strict).expect_failure().expect_stderr(&[
        &format!("{}Deployment {ns}/builder uses Sysbox", denied()),
        "Pools lacking the flag: strict",
    ]);
    assert!(!env.kubectl.exists(ns, "deployment", "builder"), "a denied Deployment must not be stored");

    // A template for the flagged pool is admitted, and judged, not rewritten.
    let relaxed = objects::deployment(ns, "runner", objects::sysbox_spec(&[(objects::POOL, "relaxed")]));
    env.kubectl.apply(&relaxed).expect_ok().expect_no_warning();
    let stored = env.kubectl.get(&["deployment", "runner", "-n", ns]);
    assert_eq!(annotation(&stored["spec"]["template"]), None, "the template must not be annotated: {stored}");
}

// --- 5 -------------------------------------------------------------------------------------------

fn server_dry_run(env: &mut Env) {
    let ns = "s05-dry-run";
    env.namespace(ns, None);
    let manifest = objects::sysbox_pod(ns, "ro", "relaxed").to_string();
    let run = env
        .kubectl
        .run(&["apply", "--dry-run=server", "-o", "yaml", "-f", "-"], Some(&manifest))
        .expect_ok()
        .expect_no_warning();
    assert!(run.stdout.contains(&format!("{ANNOTATION}: \"true\"")), "annotation not shown:\n{}", run.stdout);
    assert_eq!(annotation(&run.yaml()), Some("true"));
    let listed = env.kubectl.run(&["get", "pods", "-n", ns, "-o", "name"], None).expect_ok();
    assert_eq!(listed.stdout.trim(), "", "a server-side dry run must store nothing");
}

// --- 8 -------------------------------------------------------------------------------------------

fn ordinary_pod_never_sent(env: &mut Env) {
    let ns = "s08-ordinary";
    env.namespace(ns, None);
    let before = env.webhook().requests("Pod");
    env.kubectl.apply(&objects::ordinary_pod(ns, "app")).expect_ok().expect_no_warning();
    let stored = env.kubectl.get(&["pod", "app", "-n", ns]);
    assert_eq!(annotation(&stored), None);
    assert_eq!(env.webhook().requests("Pod"), before, "an ordinary pod must not reach the webhook (matchConditions)");

    // The counter does count: a Sysbox pod moves it.
    env.kubectl.apply(&objects::sysbox_pod(ns, "ro", "relaxed")).expect_ok();
    assert_eq!(env.webhook().requests("Pod"), before + 1.0, "a Sysbox pod create is one AdmissionReview");
}

// --- 7 -------------------------------------------------------------------------------------------

fn live_node_label(env: &mut Env) {
    let ns = "s07-live";
    env.namespace(ns, None);
    let pod = objects::sysbox_pod(ns, "ro", "late");
    env.kubectl.dry_run(&pod).expect_failure().expect_stderr(&[&denied(), "Pools lacking the flag: late"]);

    env.kubectl.run(&["label", "node", "late-1", &format!("{FLAG}=true"), "--overwrite"], None).expect_ok();
    let took = wait_for_verdict(env, &pod, Duration::from_secs(10), "the verdict follows the new node label", |r| {
        r.success() && annotation(&r.json()) == Some("true")
    });
    eprintln!("e2e:     verdict followed the node label after {} ms", took.as_millis());
    env.kubectl.apply(&pod).expect_ok().expect_no_warning();
    assert_eq!(annotation(&env.kubectl.get(&["pod", "ro", "-n", ns])), Some("true"));
}

// --- 11 ------------------------------------------------------------------------------------------

fn configmap_flag_without_labels(env: &mut Env) {
    let ns = "s11-configmap";
    env.namespace(ns, None);
    let pod = objects::sysbox_pod(ns, "ro", "cm");
    env.kubectl.dry_run(&pod).expect_failure().expect_stderr(&[
        &denied(),
        &format!("Pools lacking the flag: cm (1 node with no {FLAG} label and no ConfigMap"),
    ]);

    env.kubectl.apply(&objects::mgr_configmap("--log-level=info --relaxed-read-only")).expect_ok();
    let warning = "sysbox-ro: flag on cm only intended by the ConfigMap (applied on installer restart); label nodes";
    wait_for_verdict(env, &pod, Duration::from_secs(10), "the webhook sees the ConfigMap", |r| r.success());
    let run = env.kubectl.apply(&pod).expect_ok().expect_warning(warning);
    assert_eq!(run.warnings().len(), 1, "only the ConfigMap warning: {:?}", run.warnings());
    assert_eq!(annotation(&env.kubectl.get(&["pod", "ro", "-n", ns])), Some("true"));
}

// --- 15 ------------------------------------------------------------------------------------------

/// A pod that only nodes not yet created can take: with the NodePool CRD absent the webhook says
/// it does not watch NodePools and finds no node; once a flagged NodePool that fits the pod
/// exists, the pod is admitted and annotated; once that NodePool reaches its limit, the warning
/// names it as creating nothing.
fn karpenter_nodepool_hosts_pod(env: &mut Env) {
    let ns = "s14-karpenter";
    env.namespace(ns, None);
    let readyz = |env: &Env| http_get(env.webhook().admin_port, "/readyz").expect("GET /readyz");
    let (status, body) = readyz(env);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("note: Karpenter NodePools not watched"), "no CRD yet, /readyz says so: {body}");

    const RUNNER: &str = "ci.example.com/runner";
    let pod = objects::pod(ns, "ro", objects::sysbox_spec(&[(RUNNER, "karpenter")]));
    env.kubectl.dry_run(&pod).expect_ok().expect_warning(
        "sysbox-ro: no node matches this pod's selector/affinity/tolerations (RuntimeClass sysbox-runc); it cannot schedule",
    );

    // The CRD from the repository, then a NodePool whose nodes carry the flag, made Ready.
    let crd = support::cluster::repo_root().join("tests/e2e/crds/karpenter.sh_nodepools.yaml");
    env.kubectl.run(&["apply", "-f", crd.to_str().expect("utf-8 path")], None).expect_ok();
    env.kubectl
        .run(&["wait", "--for=condition=Established", "crd/nodepools.karpenter.sh", "--timeout=30s"], None)
        .expect_ok();
    let nodepool = json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": { "name": "ci-karpenter" },
        "spec": {
            "template": {
                "metadata": { "labels": { "sysbox-runtime": "running", RUNNER: "karpenter", FLAG: "true" } },
                "spec": {
                    "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sysbox" },
                    "requirements": [
                        { "key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"] },
                        { "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"] }
                    ],
                    "startupTaints": [{ "key": "sysbox-installing", "effect": "NoSchedule" }]
                }
            },
            "limits": { "cpu": "100" }
        }
    });
    env.kubectl.apply(&nodepool).expect_ok();
    let status = |cpu: &str| {
        json!({ "status": {
            "resources": { "cpu": cpu, "nodes": "0" },
            "conditions": [{ "type": "Ready", "status": "True", "reason": "Ready", "message": "",
                             "lastTransitionTime": "2026-01-01T00:00:00Z" }]
        } })
        .to_string()
    };
    let patch_status = |env: &Env, cpu: &str| {
        env.kubectl
            .run(
                &["patch", "nodepool", "ci-karpenter", "--subresource=status", "--type=merge", "-p", &status(cpu)],
                None,
            )
            .expect_ok();
    };
    patch_status(env, "0");

    // The view decides at start whether NodePools can be watched: a restart finds the CRD.
    env.stop_webhook();
    env.ensure_webhook(WebhookArgs::default());
    let (status_code, body) = readyz(env);
    assert_eq!(status_code, 200, "{body}");
    assert!(!body.contains("NodePools not watched"), "the CRD is served now: {body}");

    let run = env.kubectl.apply(&pod).expect_ok().expect_no_warning();
    assert!(run.stdout.contains("pod/ro created"), "{}", run.stdout);
    assert_eq!(annotation(&env.kubectl.get(&["pod", "ro", "-n", ns])), Some("true"), "annotated");

    // At its limit the NodePool creates nothing: the watch brings that to the next verdict.
    patch_status(env, "100");
    let again = objects::pod(ns, "ro-2", objects::sysbox_spec(&[(RUNNER, "karpenter")]));
    wait_for_verdict(env, &again, Duration::from_secs(10), "the NodePool at its limit counts for nothing", |r| {
        r.success()
            && r.warnings().contains(
                &"sysbox-ro: no node matches this pod now; NodePool ci-karpenter could host it but will create none",
            )
    });
    env.kubectl.run(&["delete", "nodepool", "ci-karpenter", "--wait=false"], None).expect_ok();
}

// --- 10 ------------------------------------------------------------------------------------------

/// Sysbox pods created in a loop from several threads (so the apiserver opens more than one
/// connection) while the serving certificate is swapped under the webhook.
fn certificate_rotation(env: &mut Env) {
    let ns = "s10-rotation";
    env.namespace(ns, None);
    let ca = env.certs.ca_pem();
    let port = env.port;
    let before = served_certificate(port, &ca).expect("TLS handshake before the rotation");
    assert_eq!(before, first_cert_der(&env.certs.cert_path()), "the webhook serves the current certificate");
    let metrics = env.webhook().metrics();
    let reloads = metric_sum(&metrics, "sysbox_ro_tls_reloads_total", &[("result", "success")]);

    const THREADS: usize = 3;
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (kubectl, stop, created, failures) =
                (env.kubectl.clone(), stop.clone(), created.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) && i < 200 {
                    let name = format!("ro-{t}-{i}");
                    let run = kubectl.run(
                        &["create", "-f", "-", "-o", "jsonpath={.metadata.annotations}"],
                        Some(&objects::sysbox_pod(ns, &name, "relaxed").to_string()),
                    );
                    let annotations: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
                    if !run.success() || annotations[ANNOTATION] != "true" {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{name}: exit {}: {}{}", run.status, run.stdout, run.stderr));
                    }
                    created.fetch_add(1, Ordering::AcqRel);
                    i += 1;
                }
            })
        })
        .collect();

    // The apiserver's connections to the webhook, sampled while waiting.
    let mut old_connections = BTreeSet::new();
    let mut new_connections = BTreeSet::new();
    let wait_created = |n: usize, into: &mut BTreeSet<u16>| {
        poll(Duration::from_secs(60), Duration::from_millis(20), || {
            into.extend(connections_to(port));
            (created.load(Ordering::Acquire) >= n).then_some(())
        })
        .expect("pods are being created");
    };
    wait_created(12, &mut old_connections);
    old_connections.extend(connections_to(port));
    let new_cert = env.certs.rotate();
    let swapped_at = created.load(Ordering::Acquire);
    let seen = poll(Duration::from_secs(10), Duration::from_millis(50), || {
        (served_certificate(port, &ca).ok()? == new_cert).then_some(())
    });
    let seen_at = created.load(Ordering::Acquire);
    wait_created(seen_at + 24, &mut new_connections);
    stop.store(true, Ordering::Release);
    for w in workers {
        w.join().expect("creator thread");
    }
    let total = created.load(Ordering::Acquire);
    let opened_after = new_connections.difference(&old_connections).count();
    eprintln!(
        "e2e:     {total} creates; certificate swapped after {swapped_at}, served from create {seen_at} on; \
         the apiserver opened {opened_after} new connection(s) to the webhook after the swap"
    );

    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {total} creates failed during the rotation:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(seen.is_some(), "the webhook did not serve the new certificate within 10s\n{}", env.diagnostics());
    let metrics = env.webhook().metrics();
    // Exactly one new pair was taken. (Failed reloads are not asserted: tls.crt and tls.key are
    // read one after the other, and a read that straddles the swap is rejected as a mismatched
    // pair and retried on the next tick, while the previous pair keeps serving.)
    assert_eq!(metric_sum(&metrics, "sysbox_ro_tls_reloads_total", &[("result", "success")]), reloads + 1.0);
    let stored = env.kubectl.run(&["get", "pods", "-n", ns, "-o", "name"], None).expect_ok();
    assert_eq!(stored.stdout.lines().count(), total, "every create stored a pod");

    // The connections that carried the loop may all predate the swap (keep-alive). Make the
    // apiserver itself dial and verify the new certificate: a caBundle that differs only by a
    // trailing newline (the same CA) gives it a new webhook client, hence new connections.
    let before = connections_to(port);
    let mut fresh = env.registered.clone();
    let bundle = [ca.as_slice(), b"\n"].concat();
    fresh["webhooks"][0]["clientConfig"]["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(bundle));
    env.kubectl.apply(&fresh).expect_ok();
    env.registered = fresh;
    wait_for_verdict(
        env,
        &objects::sysbox_pod(ns, "fresh", "relaxed"),
        Duration::from_secs(30),
        "a new apiserver connection, verified against the same CA, serves an admission",
        |r| {
            let fresh_connection = connections_to(port).difference(&before).next().is_some();
            fresh_connection && r.success() && annotation(&r.json()) == Some("true")
        },
    );
    env.kubectl.apply(&objects::sysbox_pod(ns, "fresh", "relaxed")).expect_ok().expect_no_warning();
}

// --- 6 -------------------------------------------------------------------------------------------

fn steer_mixed_pools(env: &mut Env) {
    let ns = "s06-steer";
    env.namespace(ns, None);
    let pod = objects::pod(ns, "ro", objects::sysbox_spec(&[(MIXED, "yes")]));

    // Without --steer: admitted with a warning, no affinity.
    env.ensure_webhook(WebhookArgs::default());
    let run =
        env.kubectl.dry_run(&pod).expect_ok().expect_warning(
            "sysbox-ro: pools strict lack sysbox-mgr --relaxed-read-only; the pod may land there and fail",
        );
    assert!(required_terms(&run.json()).is_empty());

    env.ensure_webhook(WebhookArgs { steer: true, ..Default::default() });
    env.kubectl.apply(&pod).expect_ok().expect_warning(
        "sysbox-ro: steered to sysbox-ro.dev/relaxed-read-only=true nodes; pools strict lack --relaxed-read-only",
    );
    let stored = env.kubectl.get(&["pod", "ro", "-n", ns]);
    assert_eq!(annotation(&stored), Some("true"));
    let terms = required_terms(&stored);
    assert_eq!(terms.len(), 1, "one required term: {stored}");
    let expressions = terms[0]["matchExpressions"].as_array().cloned().unwrap_or_default();
    assert!(
        expressions.contains(&json!({ "key": FLAG, "operator": "In", "values": ["true"] })),
        "the stored pod's required affinity lacks {FLAG} In [true]: {}",
        terms[0]
    );
    // The RuntimeClass's and the pod's own selectors are still there.
    assert_eq!(stored["spec"]["nodeSelector"][MIXED], "yes");
    assert_eq!(stored["spec"]["nodeSelector"]["sysbox-runtime"], "running");
}

// --- 9 -------------------------------------------------------------------------------------------

fn webhook_down_fail_policy(env: &mut Env) {
    let ns = "s09-down";
    env.namespace(ns, None);
    if env.webhook.is_none() {
        env.ensure_webhook(WebhookArgs::default());
    }
    env.stop_webhook();
    env.kubectl.apply(&objects::sysbox_pod(ns, "ro", "relaxed")).expect_failure().expect_stderr(&[
        &format!("failed calling webhook \"{WEBHOOK_NAME}\""),
        // The cause that follows (usually "connect: connection refused") depends on whether the
        // apiserver dials anew or had a kept-alive connection in flight: not asserted.
        &format!("https://127.0.0.1:{}/mutate", env.port),
    ]);
    assert!(!env.kubectl.exists(ns, "pod", "ro"));
    env.kubectl.apply(&objects::ordinary_pod(ns, "app")).expect_ok().expect_no_warning();
    assert!(env.kubectl.exists(ns, "pod", "app"));
}
