//! End to end: the audit of pods that already run. Pods are created through the API and bound
//! to a node of a pool with the flag (`spec.nodeName`; no kubelet runs them, so they stay
//! Pending, which the audit judges like Running ones), the pool's flag label is flipped to
//! `false`, and `sysbox-ro-webhook audit` against the live apiserver must report exactly those
//! pods, in every output format; `serve --audit-interval` must write them as a PolicyReport
//! (the CRD installed from deploy/examples/policyreport-crds.yaml) and as metrics, and delete
//! the report once the pool has the flag again.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::cluster::repo_root;
use crate::support::env::Env;
use crate::support::objects::{self, annotation, FLAG, POOL};
use crate::support::poll;
use crate::support::webhook::{metric_sum, WebhookArgs, EXE};

const NS: &str = "s14-audit";
const NODE: &str = "shift-1";
const POOL_NAME: &str = "shift";

/// `sysbox-ro-webhook audit` against the live apiserver: exit status and stdout.
fn audit(env: &Env, args: &[&str]) -> (i32, String) {
    let out = Command::new(EXE)
        .env_clear()
        .arg("audit")
        .arg("--kubeconfig")
        .arg(&env.control_plane.kubeconfig)
        .args(["--live-timeout", "20", "--color", "never", "--page-size", "2"])
        .args(args)
        .output()
        .expect("run sysbox-ro-webhook audit");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let code = out.status.code().expect("exited normally");
    assert!(code == 0 || code == 1, "audit exit {code}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    (code, stdout)
}

/// (namespace, owner kind, owner name, pods, pool) of the JSON report's groups in `NS`.
fn groups_here(report: &Value) -> Vec<(String, String, u64, String)> {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["namespace"] == NS)
        .map(|g| {
            (
                g["owner"]["kind"].as_str().unwrap().to_owned(),
                g["owner"]["name"].as_str().unwrap().to_owned(),
                g["pods"].as_u64().unwrap(),
                g["nodePool"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn bound_pod(name: &str, node: &str) -> Value {
    let mut spec = objects::sysbox_spec(&[]);
    spec["nodeName"] = json!(node);
    objects::pod(NS, name, spec)
}

pub fn audit_running_pods(env: &mut Env) {
    env.namespace(NS, None);
    env.kubectl.apply(&objects::sysbox_node(NODE, POOL_NAME, Some("true"), &[])).expect_ok();
    env.kubectl.run(&["taint", "nodes", NODE, objects::NOT_READY_TAINT], None);
    // The audit on a timer before the PolicyReport CRD exists: said and counted, never fatal.
    env.ensure_webhook(WebhookArgs { audit_interval: Some(10), ..Default::default() });
    let counted = poll(Duration::from_secs(60), Duration::from_millis(500), || {
        let m = env.webhook().metrics();
        (metric_sum(&m, "sysbox_ro_audit_policy_reports_total", &[("result", "crd_missing")]) >= 1.0).then_some(m)
    })
    .unwrap_or_else(|| panic!("no crd_missing count within 60 s\n{}", env.diagnostics()));
    assert!(metric_sum(&counted, "sysbox_ro_audit_runs_total", &[("result", "ok")]) >= 1.0, "{counted}");
    let said = "the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed";
    let log = env
        .webhook()
        .log_until(|log| log.contains(said).then(|| log.to_owned()))
        .unwrap_or_else(|| panic!("not said within 5 s of the count\n{}", env.diagnostics()));
    assert_eq!(log.matches(said).count(), 1, "said once:\n{log}");

    let crds = repo_root().join("deploy/examples/policyreport-crds.yaml");
    env.kubectl.run(&["apply", "-f", crds.to_str().unwrap()], None).expect_ok();
    env.kubectl
        .run(&["wait", "--for=condition=Established", "--timeout=30s", "crd/policyreports.wgpolicyk8s.io"], None)
        .expect_ok();

    // While the pool has the flag, every one is admitted (and annotated).
    let strict_now = crate::wait_for_verdict(
        env,
        &bound_pod("a", NODE),
        Duration::from_secs(10),
        "the webhook sees the new node",
        |r| r.success() && annotation(&r.json()) == Some("true"),
    );
    eprintln!("e2e:     webhook saw {NODE} after {} ms", strict_now.as_millis());
    for name in ["a", "b"] {
        env.kubectl.apply(&bound_pod(name, NODE)).expect_ok().expect_no_warning();
    }
    // A Deployment's pod through its ReplicaSet (no controller runs: both made by hand).
    let deployment = objects::deployment(NS, "web", objects::sysbox_spec(&[(POOL, POOL_NAME)]));
    env.kubectl.apply(&deployment).expect_ok();
    let uid = env.kubectl.get(&["deployment", "web", "-n", NS])["metadata"]["uid"].as_str().unwrap().to_owned();
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": { "name": "web-5c8d", "namespace": NS, "labels": { "app": "web" },
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid,
                "controller": true }] },
        "spec": deployment["spec"].clone(),
    });
    env.kubectl.apply(&rs).expect_ok();
    let rs_uid = env.kubectl.get(&["replicaset", "web-5c8d", "-n", NS])["metadata"]["uid"].as_str().unwrap().to_owned();
    let mut web = bound_pod("web-5c8d-x1", NODE);
    web["metadata"]["labels"] = json!({ "app": "web" });
    web["metadata"]["ownerReferences"] = json!([{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5c8d", "uid": rs_uid, "controller": true }]);
    env.kubectl.apply(&web).expect_ok();
    // On a pool that keeps the flag: never reported.
    env.kubectl.apply(&bound_pod("steady", "relaxed-1")).expect_ok();

    let (code, out) = audit(env, &["-o", "json"]);
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(groups_here(&report), vec![], "nothing at risk while {POOL_NAME} has the flag: {report:#}");
    let _ = code;

    // The pool loses the flag.
    env.kubectl.run(&["label", "node", NODE, &format!("{FLAG}=false"), "--overwrite"], None).expect_ok();
    let (code, out) = audit(env, &["-o", "json"]);
    assert_eq!(code, 1, "pods at risk in an enforce namespace fail the run:\n{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    let pool = POOL_NAME.to_owned();
    assert_eq!(
        groups_here(&report),
        vec![
            ("Deployment".into(), "web".into(), 1, pool.clone()),
            ("Pod".into(), "a".into(), 1, pool.clone()),
            ("Pod".into(), "b".into(), 1, pool.clone()),
        ],
        "{report:#}"
    );

    let (_, text) = audit(env, &[]);
    for line in [
        format!("  Deployment {NS}/web: deny: 1 pod at risk (web-5c8d-x1), on node {NODE}:"),
        format!("  Pod {NS}/a: deny: 1 pod at risk (a), on node {NODE}:"),
        format!("  Pod {NS}/b: deny: 1 pod at risk (b), on node {NODE}:"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("steady"), "{text}");

    let (_, junit) = audit(env, &["-o", "junit"]);
    for case in ["Deployment s14-audit/web", "Pod s14-audit/a", "Pod s14-audit/b"] {
        assert_eq!(junit.matches(&format!(": {case}\"")).count(), 1, "{case} in:\n{junit}");
    }
    let (_, sarif) = audit(env, &["-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&sarif).expect("SARIF");
    let mut named: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["properties"]["namespace"] == NS)
        .map(|r| r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].as_str().unwrap())
        .collect();
    named.sort();
    assert_eq!(named, ["Deployment s14-audit/web", "Pod s14-audit/a", "Pod s14-audit/b"]);

    // The same audit on a timer in serve (running since the start): a PolicyReport for the
    // namespace, and metrics.
    let report = poll(Duration::from_secs(60), Duration::from_millis(500), || {
        let run = env.kubectl.run(
            &["get", "policyreport", "sysbox-ro-webhook-audit", "-n", NS, "-o", "json", "--show-managed-fields"],
            None,
        );
        run.success().then(|| run.json())
    })
    .unwrap_or_else(|| panic!("no PolicyReport in {NS} within 60 s\n{}", env.diagnostics()));
    let mut results: Vec<(String, String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let res = &r["resources"][0];
            (
                res["kind"].as_str().unwrap().to_owned(),
                res["name"].as_str().unwrap().to_owned(),
                r["properties"]["nodePool"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        vec![
            ("Deployment".into(), "web".into(), pool.clone()),
            ("Pod".into(), "a".into(), pool.clone()),
            ("Pod".into(), "b".into(), pool.clone()),
        ]
    );
    assert_eq!(report["summary"]["fail"], 3);
    assert!(report["results"].as_array().unwrap().iter().all(|r| r["result"] == "fail" && r["severity"] == "high"));
    let managers: Vec<&str> = report["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|f| f["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["sysbox-ro-audit"], "written by server-side apply under its field manager");
    let cluster = env.kubectl.get(&["clusterpolicyreport", "sysbox-ro-webhook-audit"]);
    let shift = cluster["results"].as_array().unwrap().iter().find(|r| r["properties"]["nodePool"] == POOL_NAME);
    assert_eq!(shift.map(|r| r["properties"]["pods"].clone()), Some(json!("3")), "{cluster:#}");
    let metrics = env.webhook().metrics();
    assert_eq!(
        metric_sum(&metrics, "sysbox_ro_audit_pods_at_risk", &[("namespace", NS), ("pool", POOL_NAME)]),
        3.0,
        "{metrics}"
    );

    // The pool gets the flag back: the namespace's report is deleted at the next run.
    env.kubectl.run(&["label", "node", NODE, &format!("{FLAG}=true"), "--overwrite"], None).expect_ok();
    let gone = poll(Duration::from_secs(60), Duration::from_millis(500), || {
        (!env.kubectl.exists(NS, "policyreport", "sysbox-ro-webhook-audit")).then_some(())
    });
    assert!(gone.is_some(), "the stale PolicyReport in {NS} was not deleted within 60 s\n{}", env.diagnostics());
    let (_, out) = audit(env, &["-o", "json"]);
    assert_eq!(groups_here(&serde_json::from_str(&out).unwrap()), vec![]);
    env.ensure_webhook(WebhookArgs::default());
}
