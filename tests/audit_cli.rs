//! `sysbox-ro-webhook audit --cluster-state` from the outside: the example
//! cluster (`examples/cluster-state.yaml`) with the Pods and ReplicaSets of
//! `tests/data/audit/pods.yaml`, asserted on exactly which pods are reported,
//! how they are grouped, in every output format, and the exit statuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const STATE: &str = "examples/cluster-state.yaml,tests/data/audit/pods.yaml";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook"))
        .env_clear()
        .env("COLUMNS", "100")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["audit", "-o", "json"];
    all.extend_from_slice(args);
    let o = run(&all);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    });
    (o.status.code().unwrap(), v)
}

/// (pool, namespace, owner kind, owner name, pods, reasons) of every group.
fn groups(report: &Value) -> Vec<(String, String, String, String, u64, Vec<String>)> {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let s = |p: &str| g.pointer(p).and_then(Value::as_str).unwrap().to_owned();
            let reasons = g["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
            (s("/nodePool"), s("/namespace"), s("/owner/kind"), s("/owner/name"), g["pods"].as_u64().unwrap(), reasons)
        })
        .collect()
}

fn g(
    pool: &str,
    ns: &str,
    kind: &str,
    name: &str,
    pods: u64,
    reason: &str,
) -> (String, String, String, String, u64, Vec<String>) {
    (pool.into(), ns.into(), kind.into(), name.into(), pods, vec![reason.into()])
}

#[test]
fn exactly_the_pods_at_risk_grouped_by_pool_and_owner() {
    let (code, report) = json(&["--cluster-state", STATE]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        groups(&report),
        vec![
            // pending, unbound, can land only on ci-strict
            g("ci-strict", "build", "Pod", "lonely", 1, "nodeLacksFlag"),
            // annotated by admission, no longer read-only: its node still lacks the flag
            g("ci-strict", "build", "StatefulSet", "builder", 1, "annotatedNodeLacksFlag"),
            // two of the Deployment's three pods (the third is on ci-relaxed), resolved through its ReplicaSet
            g("ci-strict", "ci", "Deployment", "runner", 2, "nodeLacksFlag"),
            // a ReplicaSet the files do not hold is named as such
            g("ci-strict", "ci", "ReplicaSet", "orphan", 1, "nodeLacksFlag"),
        ]
    );
    let deployment = &report["groups"][2];
    assert_eq!(deployment["podNames"], serde_json::json!(["runner-7d9f-a", "runner-7d9f-b"]));
    assert_eq!(deployment["nodes"], serde_json::json!(["gke-ci-strict-1"]));
    assert_eq!(deployment["verdict"], "deny");
    assert_eq!(report["groups"][0]["pending"], 1);
    assert_eq!(report["groups"][0]["nodeCount"], 0);
    let totals = &report["totals"];
    // 10 pods read: the Succeeded one, the kube-system one and the plain one are not judged,
    // the one on a node the view does not hold is counted apart.
    assert_eq!(
        (totals["pods"].as_u64(), totals["atRisk"].as_u64(), totals["nodeUnknown"].as_u64(), totals["judged"].as_u64()),
        (Some(10), Some(5), Some(1), Some(6))
    );
    assert_eq!(totals["exitCode"], 1);
}

#[test]
fn the_namespace_mode_decides_the_verdict_and_the_exit_status() {
    // Every namespace in warn: reported, but the run passes unless --fail-on warn.
    let (code, report) = json(&["--cluster-state", STATE, "--mode", "warn"]);
    assert_eq!(code, 0);
    assert!(report["groups"].as_array().unwrap().iter().all(|g| g["verdict"] == "warn"), "{report:#}");
    assert_eq!(groups(&report).len(), 4);
    let (code, _) = json(&["--cluster-state", STATE, "--mode", "warn", "--fail-on", "warn"]);
    assert_eq!(code, 1);
    // audit mode: recorded only, level note.
    let (code, report) = json(&["--cluster-state", STATE, "--mode", "audit"]);
    assert_eq!(code, 0);
    assert_eq!(report["groups"][0]["findings"][0]["level"], "note");
    // off: the policy touches nothing.
    let (code, report) = json(&["--cluster-state", STATE, "--mode", "off"]);
    assert_eq!((code, groups(&report).len()), (0, 0));
    // An exempt namespace is never reported.
    let (_, report) = json(&["--cluster-state", STATE, "--exempt-namespace", "kube-system,ci"]);
    assert!(groups(&report).iter().all(|g| g.1 == "build"), "{report:#}");
}

#[test]
fn a_pool_that_gets_the_flag_clears_its_pods() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster-state.yaml"))
        .unwrap()
        .replace("sysbox-ro.dev/relaxed-read-only: \"false\"", "sysbox-ro.dev/relaxed-read-only: \"true\"");
    let path = dir.path().join("fixed.yaml");
    std::fs::File::create(&path).unwrap().write_all(fixed.as_bytes()).unwrap();
    let state = format!("{},tests/data/audit/pods.yaml", path.display());
    let (code, report) = json(&["--cluster-state", &state]);
    assert_eq!((code, groups(&report).len()), (0, 0), "{report:#}");
    assert_eq!(report["totals"]["judged"], 6);
}

#[test]
fn text_junit_and_sarif_report_the_same_groups() {
    let text = run(&["audit", "--cluster-state", STATE, "--color", "never"]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("nodepool ci-strict:\n"), "{text}");
    for line in [
        "  Pod build/lonely: deny: 1 pod at risk (lonely), not yet scheduled:",
        "  StatefulSet build/builder: deny: 1 pod at risk (builder-0), on node gke-ci-strict-1:",
        "  Deployment ci/runner: deny: 2 pods at risk (runner-7d9f-a, runner-7d9f-b), on node gke-ci-strict-1:",
        "  ReplicaSet ci/orphan: deny: 1 pod at risk (orphan-x1), on node gke-ci-strict-1:",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("summary: 5 pods at risk in 4 owners and 1 node pool (10 pods read, 6 judged)"), "{text}");

    let junit = run(&["audit", "--cluster-state", STATE, "-o", "junit"]);
    assert_eq!(junit.status.code(), Some(1));
    let junit = String::from_utf8(junit.stdout).unwrap();
    assert!(junit.contains("<testsuite name=\"nodepool/ci-strict\" tests=\"4\" failures=\"4\""), "{junit}");
    assert_eq!(junit.matches("<testcase ").count(), 4);
    assert!(junit.contains("name=\"doc 2: Deployment ci/runner\""), "{junit}");

    let sarif = run(&["audit", "--cluster-state", STATE, "-o", "sarif"]);
    assert_eq!(sarif.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Pod build/lonely", "StatefulSet build/builder", "Deployment ci/runner", "ReplicaSet ci/orphan"]
    );
    assert!(results.iter().all(|r| r["ruleId"] == "relaxed-read-only-missing" && r["level"] == "error"));
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "nodepool/ci-strict");
    assert_eq!(sarif["runs"][0]["invocations"][0]["exitCode"], 1);
}

#[test]
fn unusable_input_exits_2() {
    let o = run(&["audit", "--cluster-state", "tests/data/audit/missing.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.yaml"));
    let o = run(&["audit", "--cluster-state", STATE, "--page-size", "0"]);
    assert_eq!(o.status.code(), Some(2));
    // No cluster state and no reachable cluster: the live default fails to connect.
    let o = Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook"))
        .env_clear()
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(["audit", "--live-timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}
