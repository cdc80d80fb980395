//! End-to-end scenarios of the node agent: the real `sysbox-ro-webhook agent` publishing on Node
//! objects of the real apiserver, with the token a pod on that node would get, under the RBAC and
//! the ValidatingAdmissionPolicy of the default install; the webhook then judges pods by what the
//! agent published.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::agent::{rendered_agent_objects, token_kubeconfig, Agent, FakeHost};
use crate::support::cluster::Kubectl;
use crate::support::env::Env;
use crate::support::objects::{self, annotation, FLAG};
use crate::support::poll;
use crate::support::webhook::{metric_sum, EXE};
use crate::{denied, wait_for_verdict};

const EVIDENCE: &str = "sysbox-ro.dev/sysbox-mgr";
const INTERVAL: Duration = Duration::from_secs(2);

/// A Sysbox node `node` (its own pool), the agent's objects, a pod of the agent's ServiceAccount
/// bound to that node, and a kubeconfig holding that pod's token. Returns the kubeconfig.
fn stage(env: &Env, node: &str) -> PathBuf {
    env.kubectl.apply(&rendered_agent_objects(&env.kubectl)).expect_ok();
    env.kubectl.apply(&objects::sysbox_node(node, node, None, &[])).expect_ok();
    // No kubelet clears the not-ready taint the apiserver puts on new Nodes; a missing one is fine.
    env.kubectl.run(&["taint", "nodes", node, objects::NOT_READY_TAINT], None);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("agent-{node}"), "namespace": "sysbox-ro-agent" },
        "spec": {
            "nodeName": node,
            "serviceAccountName": "sysbox-ro-agent",
            "containers": [{ "name": "agent", "image": "registry.example/sysbox-ro-webhook:0.1.0" }]
        }
    });
    env.kubectl.apply(&pod).expect_ok();
    let pod_name = format!("agent-{node}");
    let token = env
        .kubectl
        .run(
            &[
                "create",
                "token",
                "sysbox-ro-agent",
                "-n",
                "sysbox-ro-agent",
                "--bound-object-kind",
                "Pod",
                "--bound-object-name",
                &pod_name,
                "--duration",
                "1h",
            ],
            None,
        )
        .expect_ok()
        .stdout
        .trim()
        .to_owned();
    let kubeconfig = env.work.path().join(format!("agent-{node}.kubeconfig"));
    token_kubeconfig(&kubeconfig, &env.control_plane.apiserver_url, &env.control_plane.ca_file, &token);
    kubeconfig
}

fn as_agent(env: &Env, kubeconfig: &std::path::Path) -> Kubectl {
    Kubectl { exe: env.kubectl.exe.clone(), kubeconfig: kubeconfig.to_path_buf() }
}

fn node_label(node: &Value) -> Option<&str> {
    node.pointer("/metadata/labels")?.get(FLAG)?.as_str()
}

fn evidence(node: &Value) -> Value {
    let text = node.pointer("/metadata/annotations").and_then(|a| a.get(EVIDENCE)).and_then(Value::as_str);
    serde_json::from_str(text.unwrap_or("null")).expect("the evidence annotation is JSON")
}

/// Polls the Node until `done` holds; returns it and how long that took.
#[track_caller]
fn wait_node(env: &Env, name: &str, within: Duration, what: &str, done: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let t = Instant::now();
    let mut last = Value::Null;
    let found = poll(within, Duration::from_millis(100), || {
        last = env.kubectl.get(&["node", name]);
        done(&last).then(|| last.clone())
    });
    match found {
        Some(n) => (n, t.elapsed()),
        None => panic!(
            "{what}: not within {within:?}. Node {name} labels {} evidence {}",
            last.pointer("/metadata/labels").cloned().unwrap_or_default(),
            evidence(&last)
        ),
    }
}

fn publishes(agent: &Agent) -> f64 {
    metric_sum(&agent.metrics(), "sysbox_ro_agent_publishes_total", &[])
}

fn observations(agent: &Agent) -> f64 {
    metric_sum(&agent.metrics(), "sysbox_ro_agent_observations_total", &[])
}

/// The label follows the running process through a restart without the flag and a stop, the
/// webhook admits and denies by it, and nothing is written while nothing changes.
pub fn agent_follows_sysbox_mgr(env: &mut Env) {
    let node = "agent-a";
    let kubeconfig = stage(env, node);
    let host = FakeHost::new(&env.work.path().join("host-agent-a"));
    host.unit("--relaxed-read-only");
    let ns = "s12-agent";
    env.namespace(ns, None);
    let pod = objects::sysbox_pod(ns, "ro", node);

    let mgr = host.start_mgr(&["--relaxed-read-only", "--disable-inner-image-preload"]);
    let logs = env.work.path().join("logs");
    let run = env.work.path().join("run");
    let agent = Agent::start(&kubeconfig, node, &host, "2", &logs, &run);

    // Flag on: label true, evidence of the running process.
    let (n, took) = wait_node(env, node, Duration::from_secs(15), "label true", |n| node_label(n) == Some("true"));
    eprintln!("e2e:     label true {} ms after the agent started", took.as_millis());
    let e = evidence(&n);
    assert_eq!(e["state"], "running", "{e}");
    assert_eq!(e["pid"], mgr.pid, "{e}");
    assert_eq!(e["relaxedReadOnly"], true, "{e}");
    assert_eq!(e["args"], json!(["--relaxed-read-only", "--disable-inner-image-preload"]), "{e}");
    assert_eq!(e["configured"]["relaxedReadOnly"], true, "{e}");
    assert_eq!(e["restartPending"], false, "{e}");
    assert_eq!(e["sysboxVersion"], "0.6.7", "{e}");
    let full = env.kubectl.run(&["get", "node", node, "-o", "json", "--show-managed-fields"], None).expect_ok().json();
    let managers: Vec<&str> = full["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["operation"] == "Apply")
        .filter_map(|f| f["manager"].as_str())
        .collect();
    assert_eq!(managers, ["sysbox-ro-agent"], "server-side apply under the agent's field manager");
    wait_for_verdict(env, &pod, Duration::from_secs(10), "a pod for the node is admitted", |r| {
        r.success() && annotation(&r.json()) == Some("true")
    });

    // Nothing changes: observations continue, writes do not.
    let (p0, o0) = (publishes(&agent), observations(&agent));
    std::thread::sleep(INTERVAL * 3);
    let (p1, o1) = (publishes(&agent), observations(&agent));
    eprintln!("e2e:     over {:?}: {} observations, {} writes", INTERVAL * 3, o1 - o0, p1 - p0);
    assert!(o1 - o0 >= 2.0, "the agent keeps observing ({o0} -> {o1})");
    assert_eq!(p1, p0, "no write while nothing changes");

    // Restarted without the flag: label false within the interval, the unit still says on.
    mgr.stop();
    let restarted = host.start_mgr(&["--disable-inner-image-preload"]);
    let (n, took) = wait_node(env, node, Duration::from_secs(15), "label false", |n| node_label(n) == Some("false"));
    eprintln!("e2e:     label false {} ms after sysbox-mgr restarted without the flag", took.as_millis());
    assert!(took <= INTERVAL + Duration::from_secs(2), "label false within the interval: took {took:?}");
    let e = evidence(&n);
    assert_eq!((e["pid"].clone(), e["restartPending"].clone()), (json!(restarted.pid), json!(true)), "{e}");
    wait_for_verdict(env, &pod, Duration::from_secs(10), "the same pod is denied", |r| {
        !r.success() && r.stderr.contains(&denied())
    });
    // The denial says who set the label, and the webhook counts the pending restart.
    env.kubectl.dry_run(&pod).expect_failure().expect_stderr(&[&format!(
        "(1 node labelled {FLAG}=false reported by the node agent (observed {})",
        e["observedAt"].as_str().unwrap_or_default()
    )]);
    let webhook_metrics = env.webhook().metrics();
    assert_eq!(metric_sum(&webhook_metrics, "sysbox_ro_cluster_nodes_restart_pending", &[]), 1.0);
    assert!(metric_sum(&webhook_metrics, "sysbox_ro_cluster_flag_labels", &[("origin", "agent")]) >= 1.0);

    // Stopped (pid file removed): label removed, evidence says why.
    restarted.stop();
    let (n, took) = wait_node(env, node, Duration::from_secs(15), "label removed", |n| node_label(n).is_none());
    eprintln!("e2e:     label removed {} ms after sysbox-mgr stopped", took.as_millis());
    assert!(took <= INTERVAL + Duration::from_secs(2), "label removed within the interval: took {took:?}");
    let e = evidence(&n);
    assert_eq!(e["state"], "stopped", "{e}");
    assert!(e["reason"].as_str().unwrap_or_default().contains("does not exist"), "{e}");

    // Killed (the pid file stays, naming a process that is gone): not believed.
    let killed = host.start_mgr(&["--relaxed-read-only"]);
    wait_node(env, node, Duration::from_secs(15), "label true again", |n| node_label(n) == Some("true"));
    killed.kill();
    assert!(host.pid_file().exists(), "SIGKILL leaves the pid file behind");
    let (n, _) =
        wait_node(env, node, Duration::from_secs(15), "label removed after SIGKILL", |n| node_label(n).is_none());
    let e = evidence(&n);
    assert!(e["reason"].as_str().unwrap_or_default().contains("stale pid file"), "{e}");
    let errors = metric_sum(&agent.metrics(), "sysbox_ro_agent_errors_total", &[("reason", "process_gone")]);
    assert!(errors >= 1.0, "the stale pid file is counted");
    agent.stop();
}

/// The token of a pod bound to node C changes node C's sysbox-ro.dev/ keys and nothing else.
pub fn agent_token_confined(env: &mut Env) {
    let (own, other) = ("agent-c", "agent-d");
    let kubeconfig = stage(env, own);
    env.kubectl.apply(&objects::sysbox_node(other, other, None, &[("team", "ci")])).expect_ok();
    let agent = as_agent(env, &kubeconfig);

    let me = agent.run(&["auth", "whoami", "-o", "json"], None).expect_ok().json();
    assert_eq!(
        me.pointer("/status/userInfo/username"),
        Some(&json!("system:serviceaccount:sysbox-ro-agent:sysbox-ro-agent"))
    );
    assert_eq!(
        me.pointer("/status/userInfo/extra/authentication.kubernetes.io~1node-name"),
        Some(&json!([own])),
        "a token bound to a pod carries its node's name: {me}"
    );

    agent.run(&["label", "node", own, &format!("{FLAG}=true"), "--overwrite"], None).expect_ok();
    agent.run(&["label", "node", other, &format!("{FLAG}=true")], None).expect_failure().expect_stderr(&[
        "ValidatingAdmissionPolicy 'sysbox-ro-agent-own-node'",
        &format!("may change only the Node its pod runs on ({own}), not {other}"),
    ]);
    agent
        .run(&["label", "node", own, "team=other"], None)
        .expect_failure()
        .expect_stderr(&["may change only labels under sysbox-ro.dev/"]);
    agent
        .run(&["annotate", "node", own, "example.com/owner=agent"], None)
        .expect_failure()
        .expect_stderr(&["may change only annotations under sysbox-ro.dev/"]);
    agent.run(&["delete", "node", other], None).expect_failure().expect_stderr(&["cannot delete resource \"nodes\""]);

    // The agent binary itself, once, on the wrong node: refused by the policy, exit status 1.
    let host = FakeHost::new(&env.work.path().join("host-agent-c"));
    let once = |node: &str| {
        Command::new(EXE)
            .args(["agent", "--once", "--node-name", node, "--host-root"])
            .arg(&host.root)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("NODE_NAME")
            .stdin(Stdio::null())
            .output()
            .expect("run agent --once")
    };
    let out = once(other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused on another node: {stderr}");
    assert!(stderr.contains("may change only the Node its pod runs on"), "{stderr}");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("--once prints the evidence as JSON");
    assert_eq!(printed["state"], "stopped", "no sysbox-mgr in this host root: {printed}");
    assert!(env.kubectl.get(&["node", other]).pointer("/metadata/annotations").and_then(|a| a.get(EVIDENCE)).is_none());

    // On its own node: published. The label set by hand above is another field manager's, so
    // the agent's apply (which leaves out a label it does not know) leaves it alone.
    let out = once(own);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let n = env.kubectl.get(&["node", own]);
    assert_eq!(evidence(&n)["state"], "stopped");
    assert_eq!(node_label(&n), Some("true"), "a hand-set label stays the hand's");
}
