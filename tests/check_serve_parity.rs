//! `check` and `serve` give the same subject, verdict, warnings, message and
//! patch for the same object, policy flags and cluster state. The check side
//! is the binary's JSON report; the serve side is the AdmissionReview the API
//! server would send for `kubectl create -f` of the same manifest document
//! (namespace and name as kubectl and the API server fill them in, nothing
//! taken from the report), answered by [`admission::review`] with the policy
//! parsed from the same flags as `serve` parses them, and once through the
//! HTTP router.

use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use clap::Parser;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sysbox_ro_webhook::admission::{self, Endpoint};
use sysbox_ro_webhook::cli::{Cli, Command as Sub};
use sysbox_ro_webhook::cluster::{snapshot, ClusterState, Source, StaticView};
use sysbox_ro_webhook::manifest::{self, Documents};
use sysbox_ro_webhook::metrics::Metrics;
use sysbox_ro_webhook::policy::Policy;
use sysbox_ro_webhook::serve::{webhook, AppState};
use tower::ServiceExt;

const MANIFESTS: &str = "tests/data/manifests";

fn check_report(args: &[&str]) -> Value {
    check_report_of(MANIFESTS, args)
}

fn check_report_of(manifests: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook"))
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "-o", "json", "-f", manifests])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The policy and cluster state exactly as `serve` builds them from these flags.
fn serve_side(args: &[&str]) -> (Policy, Option<ClusterState>) {
    let mut argv = vec!["sysbox-ro-webhook", "serve"];
    argv.extend_from_slice(args);
    let Sub::Serve(serve) = Cli::try_parse_from(&argv).expect("serve accepts the same policy flags").command else {
        unreachable!()
    };
    let config = serve.to_config().unwrap();
    let cluster = match &config.cluster {
        Source::Snapshot(paths) => Some(snapshot::load(paths, &config.policy.nodes).unwrap().0),
        Source::Live { .. } => None,
    };
    (config.policy, cluster)
}

/// The object a check record is about, from its file, document and item.
fn object_of(record: &Value) -> Option<Value> {
    let file = record["file"].as_str()?;
    let text = std::fs::read_to_string(file).unwrap();
    let index = record["document"].as_u64()? as usize;
    let doc = Documents::new(text.as_bytes()).nth(index)?.unwrap();
    let value = doc.parse().ok()?;
    match record["item"].as_u64() {
        Some(i) => Some(manifest::expand_lists(value).swap_remove(i as usize)),
        None => Some(value),
    }
}

/// The namespace kubectl sends an object to: its own, else the context's
/// (`default`, as `check -n` defaults to).
fn kubectl_namespace(object: &Value) -> &str {
    object.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("default")
}

/// The AdmissionReview the API server would send on `kubectl create`: the
/// request names the object's `metadata.name` (empty for one that only has
/// a `generateName`: the name is generated after admission).
fn admission_review(object: &Value) -> Vec<u8> {
    let (api_version, kind) = manifest::type_of(object);
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let namespace = kubectl_namespace(object);
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b7d1f0e-parity",
            "kind": { "group": group, "version": version, "kind": kind },
            "resource": { "group": group, "version": version, "resource": format!("{}s", kind.to_lowercase()) },
            "namespace": namespace,
            "name": name,
            "operation": "CREATE",
            "userInfo": { "username": "ci@example.com" },
            "object": object,
            "dryRun": false,
        }
    }))
    .unwrap()
}

fn decoded_patch(response: &Value) -> Value {
    match response["patch"].as_str() {
        Some(b64) => serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap(),
        None => json!([]),
    }
}

/// Compares every object of the report with serve's answer; returns how many were compared.
fn assert_parity(report: &Value, policy: &Policy, cluster: Option<&ClusterState>, scenario: &str) -> usize {
    let mut compared = 0;
    for record in report["objects"].as_array().unwrap() {
        let Some(object) = object_of(record) else {
            // A document that does not parse never reaches a webhook.
            assert_eq!(record["verdict"], "error", "{scenario}: {record}");
            continue;
        };
        let body = admission_review(&object);
        let (review, outcome) = admission::review(&body, Endpoint::Mutate, cluster, policy).unwrap();
        let review = serde_json::to_value(review).unwrap();
        let response = &review["response"];
        let at = format!("{scenario}: {} doc {} item {}", record["file"], record["document"], record["item"]);
        // Both sides derived the subject on their own: they name the same object.
        if let Some(namespace) = record["namespace"].as_str() {
            assert_eq!(outcome.namespace, namespace, "{at}");
        }
        assert_eq!(Some(outcome.name.as_str()).filter(|n| !n.is_empty()), record["name"].as_str(), "{at}");
        if record["verdict"] == "error" {
            assert_eq!(response["allowed"], false, "{at}");
            assert_eq!(response["status"]["code"], 400, "{at}");
            compared += 1;
            continue;
        }
        assert_eq!(response["allowed"], record["verdict"] != "deny", "{at}: {response}");
        let warnings = response.get("warnings").cloned().unwrap_or(json!([]));
        assert_eq!(warnings, record["warnings"], "{at}");
        assert_eq!(decoded_patch(response), record["patch"], "{at}");
        if record["verdict"] == "deny" {
            assert_eq!(response["status"]["message"], record["message"], "{at}");
        }
        if let Some(verdict) = response.pointer("/auditAnnotations/verdict") {
            assert_eq!(verdict, &record["verdict"], "{at}");
        } else {
            assert_eq!(record["verdict"], "skip", "{at}");
        }
        compared += 1;
    }
    compared
}

#[test]
fn check_and_serve_agree_on_every_fixture() {
    let scenarios: &[&[&str]] = &[
        &["--cluster-state", "examples/cluster-state.yaml"],
        &["--cluster-state", "examples/cluster-state.yaml", "--steer"],
        &["--cluster-state", "examples/cluster-state.yaml", "--mode", "warn"],
        &["--cluster-state", "examples/cluster-state.yaml", "--mode", "audit", "--annotate-templates"],
        &["--cluster-state", "examples/cluster-state.yaml", "--ignore-namespace-mode", "--disable-rule", "sysbox-env"],
        &["--cluster-state", "tests/data/cluster/tainted-sysbox-pool.yaml", "--steer"],
        &["--cluster-state", "tests/data/cluster/mgr-config-stops-sysbox.yaml"],
        &[],
    ];
    let mut verdicts = std::collections::BTreeSet::new();
    for flags in scenarios {
        let report = check_report(flags);
        let (policy, cluster) = serve_side(flags);
        let n = assert_parity(&report, &policy, cluster.as_ref(), &flags.join(" "));
        assert_eq!(n + 1, report["objects"].as_array().unwrap().len(), "all but the unparsable document");
        for o in report["objects"].as_array().unwrap() {
            verdicts.insert(o["verdict"].as_str().unwrap().to_owned());
            if !o["patch"].as_array().unwrap().is_empty() {
                verdicts.insert("patched".into());
            }
        }
    }
    let all: Vec<&str> = verdicts.iter().map(String::as_str).collect();
    assert_eq!(all, ["allow", "deny", "error", "patched", "skip", "warn"], "the scenarios cover every outcome");
}

/// The objects of `tests/data/fidelity`: service links, DaemonSets on mixed
/// and cordoned pools, a nodeSelector the RuntimeClass plugin refuses, user
/// namespaces per runtime, the SYSBOX_* environment (envFrom, references),
/// and a container out of system-container mode.
#[test]
fn check_and_serve_agree_on_what_sysbox_and_the_kubelet_do() {
    const FIDELITY: &str = "tests/data/fidelity/workloads.yaml";
    let scenarios: &[&[&str]] = &[
        &["--cluster-state", "tests/data/fidelity/cluster.yaml"],
        &["--cluster-state", "tests/data/fidelity/cluster.yaml", "--mode", "warn", "--steer"],
        &["--cluster-state", "tests/data/fidelity/cluster.yaml", "--disable-rule", "service-links,sysbox-env"],
        &[],
    ];
    let mut rules = std::collections::BTreeSet::new();
    for flags in scenarios {
        let report = check_report_of(FIDELITY, flags);
        let (policy, cluster) = serve_side(flags);
        let n = assert_parity(&report, &policy, cluster.as_ref(), &flags.join(" "));
        assert_eq!(n, 9, "{flags:?}");
        for o in report["objects"].as_array().unwrap() {
            for f in o["findings"].as_array().unwrap() {
                rules.insert(f["rule"].as_str().unwrap().to_owned());
            }
        }
    }
    let seen: Vec<&str> = rules.iter().map(String::as_str).collect();
    for rule in [
        "relaxed-read-only-daemonset",
        "runtime-class-conflict",
        "sysbox-service-links",
        "sysbox-env",
        "sysbox-env-unverified",
        "sysbox-user-namespace",
        "sysbox-user-namespace-size",
        "sysbox-share-process-namespace",
        "sysbox-unsupported-setting",
    ] {
        assert!(seen.contains(&rule), "{rule} not exercised: {seen:?}");
    }
}

#[tokio::test]
async fn check_and_the_http_webhook_agree() {
    let flags = ["--cluster-state", "examples/cluster-state.yaml", "--steer"];
    let report = check_report(&flags);
    let (policy, cluster) = serve_side(&flags);
    let state = AppState::new(
        policy.clone(),
        Arc::new(StaticView(Arc::new(cluster.clone().unwrap()))),
        Arc::new(Metrics::new()),
    );
    let mut compared = 0;
    for record in report["objects"].as_array().unwrap() {
        let Some(object) = object_of(record) else { continue };
        let body = admission_review(&object);
        let req = Request::post("/mutate?timeout=10s")
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        let resp = webhook::router(state.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let http: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let (direct, _) = admission::review(&body, Endpoint::Mutate, cluster.as_ref(), &policy).unwrap();
        assert_eq!(http, serde_json::to_value(direct).unwrap(), "{record}");
        compared += 1;
    }
    assert!(compared > 20, "{compared}");
    // And the HTTP answers agree with check's report.
    assert_parity(&report, &policy, cluster.as_ref(), "router");
}
