//! The webhook's HTTP surface driven through the axum router (no sockets):
//! AdmissionReview fixtures in `tests/data/reviews/`, and one test per class
//! of bad input.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sysbox_ro_webhook::cluster::{snapshot, StaticView};
use sysbox_ro_webhook::metrics::Metrics;
use sysbox_ro_webhook::policy::Policy;
use sysbox_ro_webhook::serve::{admin_router, webhook, AppState, MIN_BODY_LIMIT};
use tower::ServiceExt;

fn state() -> AppState {
    let policy = Policy::default();
    let (cluster, _) =
        snapshot::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-state.yaml")], &policy.nodes)
            .expect("example cluster state loads");
    AppState {
        policy: Arc::new(policy),
        cluster: Arc::new(StaticView(Arc::new(cluster))),
        metrics: Arc::new(Metrics::new()),
        max_body_bytes: MIN_BODY_LIMIT,
        default_timeout: Duration::from_secs(10),
        serving: Arc::new(AtomicBool::new(true)),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews").join(name)).expect("fixture exists")
}

async fn send(
    state: AppState,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = webhook::router(state).oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }));
    (status, value)
}

async fn post(path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    send(state(), Method::POST, path, Some("application/json"), body).await
}

fn decoded_patch(response: &Value) -> Value {
    let b64 = response["patch"].as_str().expect("patch present");
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

#[tokio::test]
async fn mutate_answers_in_kind_with_uid_patch_and_warning() {
    let (status, review) = post("/mutate", fixture("pod-create.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let r = &review["response"];
    assert_eq!(r["uid"], "7f0b2c1e-5d3a-4c7e-9a51-2b8f6e4d1a90");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["patchType"], "JSONPatch");
    assert_eq!(
        decoded_patch(r),
        json!([{ "op": "add", "path": "/metadata/annotations", "value": { "sysbox-ro.dev/relaxed-read-only": "true" } }])
    );
    // The example cluster has a pool without the flag among the candidates.
    assert!(r["warnings"][0].as_str().unwrap().contains("ci-strict"), "{r}");
}

#[tokio::test]
async fn validate_never_patches() {
    let (status, review) = post("/validate", fixture("pod-create.json")).await;
    assert_eq!(status, StatusCode::OK);
    let r = &review["response"];
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none() && r.get("patchType").is_none(), "{r}");
    assert!(r["warnings"].is_array());
}

#[tokio::test]
async fn denial_is_403_with_a_message_that_says_what_to_fix() {
    for (fixture_name, uid) in
        [("pod-create-strict-pool.json", "strict-uid"), ("deployment-create-strict-pool.json", "deploy-uid")]
    {
        let (status, review) = post("/mutate", fixture(fixture_name)).await;
        assert_eq!(status, StatusCode::OK, "the HTTP call succeeds; the review says no");
        let r = &review["response"];
        assert_eq!(r["uid"], uid);
        assert_eq!(r["allowed"], false);
        assert_eq!(r["status"]["code"], 403);
        let msg = r["status"]["message"].as_str().unwrap();
        for needle in [
            "ci-strict",
            "--relaxed-read-only",
            "sysbox-ro.dev/relaxed-read-only=true",
            "sysbox-ro-webhook explain relaxed-read-only-missing",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
        }
        assert!(r.get("patch").is_none());
    }
}

#[tokio::test]
async fn dry_run_gets_the_same_answer() {
    let (_, real) = post("/mutate", fixture("pod-create.json")).await;
    let (_, dry) = post("/mutate", fixture("pod-create-dry-run.json")).await;
    assert_eq!(dry["response"]["uid"], "dry-run-uid");
    assert_eq!(dry["response"]["patch"], real["response"]["patch"]);
    assert_eq!(dry["response"]["warnings"], real["response"]["warnings"]);
}

#[tokio::test]
async fn ordinary_pod_is_allowed_untouched() {
    let (status, review) = post("/mutate", fixture("pod-create-ordinary.json")).await;
    assert_eq!(status, StatusCode::OK);
    let r = &review["response"];
    assert_eq!((r["uid"].as_str(), r["allowed"].as_bool()), (Some("plain-uid"), Some(true)));
    assert!(r.get("patch").is_none() && r.get("warnings").is_none(), "{r}");
}

#[tokio::test]
async fn unusable_reviews_get_http_400_with_a_json_error() {
    for (name, body, reason) in [
        ("malformed JSON", b"{\"apiVersion\": ".to_vec(), "malformed"),
        ("not JSON at all", b"hello".to_vec(), "malformed"),
        ("wrong apiVersion", fixture("wrong-api-version.json"), "wrong_type"),
        ("missing request", fixture("missing-request.json"), "missing_request"),
        ("missing uid", fixture("missing-uid.json"), "missing_uid"),
        ("empty uid", fixture("empty-uid.json"), "missing_uid"),
        ("empty body", Vec::new(), "malformed"),
    ] {
        let (status, body) = post("/mutate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(body["reason"], reason, "{name}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}");
        assert!(body.get("response").is_none(), "{name}: never a review without a usable uid");
    }
}

#[tokio::test]
async fn create_without_object_is_refused_in_the_review() {
    let (status, review) = post("/mutate", fixture("create-without-object.json")).await;
    assert_eq!(status, StatusCode::OK);
    let r = &review["response"];
    assert_eq!(r["uid"], "no-object-uid");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let mut review: Value = serde_json::from_slice(&fixture("pod-create.json")).unwrap();
    review["request"]["object"]["metadata"]["annotations"] = json!({ "big": "x".repeat(MIN_BODY_LIMIT) });
    let (status, body) = post("/mutate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["reason"], "too_large");
}

#[tokio::test]
async fn large_body_under_the_limit_is_answered() {
    // A 3 MiB object (the apiserver's own limit) embedded twice, as on UPDATE.
    let mut review: Value = serde_json::from_slice(&fixture("pod-create.json")).unwrap();
    review["request"]["object"]["metadata"]["annotations"] = json!({ "big": "x".repeat(3 << 20) });
    review["request"]["oldObject"] = review["request"]["object"].clone();
    let (status, body) = post("/mutate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["allowed"], true);
}

#[tokio::test]
async fn wrong_method_is_405_and_wrong_content_type_is_415() {
    let (status, _) = send(state(), Method::GET, "/mutate", None, vec![]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    for ct in [None, Some("text/plain"), Some("application/yaml")] {
        let (status, body) = send(state(), Method::POST, "/mutate", ct, fixture("pod-create.json")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(body["reason"], "unsupported_media_type");
    }
    let (status, _) =
        send(state(), Method::POST, "/mutate", Some("application/json; charset=utf-8"), fixture("pod-create.json"))
            .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_kind_operation_and_verdict() {
    let s = state();
    for f in ["pod-create.json", "pod-create-strict-pool.json", "deployment-create-strict-pool.json"] {
        let req =
            Request::post("/mutate").header("content-type", "application/json").body(Body::from(fixture(f))).unwrap();
        webhook::router(s.clone()).oneshot(req).await.unwrap();
    }
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let resp = admin_router(s).oneshot(req).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        r#"sysbox_ro_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",verdict="warn"} 1"#,
        r#"sysbox_ro_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",verdict="deny"} 1"#,
        r#"sysbox_ro_admission_requests_total{endpoint="mutate",kind="Deployment",operation="CREATE",verdict="deny"} 1"#,
        r#"sysbox_ro_findings_total{rule="relaxed-read-only-missing",action="deny"} 2"#,
        r#"sysbox_ro_admission_duration_seconds_count{endpoint="mutate"} 3"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn readiness_follows_serving_and_cluster_sync() {
    let s = state();
    let get = |s: AppState, path: &'static str| async move {
        admin_router(s).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap().status()
    };
    assert_eq!(get(s.clone(), "/healthz").await, StatusCode::OK);
    assert_eq!(get(s.clone(), "/readyz").await, StatusCode::OK);
    s.serving.store(false, std::sync::atomic::Ordering::Release);
    assert_eq!(get(s.clone(), "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(s, "/healthz").await, StatusCode::OK);
}

#[tokio::test]
async fn wrongly_typed_objects_are_refused_naming_the_field() {
    let base: Value = serde_json::from_slice(&fixture("pod-create.json")).unwrap();
    for (pointer, value, field) in [
        ("/request/object/metadata", json!("x"), "/metadata"),
        ("/request/object/spec/runtimeClassName", json!(42), "/spec/runtimeClassName"),
        ("/request/object/metadata", json!({"name": "p", "annotations": ["a"]}), "/metadata/annotations"),
        ("/request/object/metadata", json!({"name": "p", "labels": {"app": 1}}), "/metadata/labels/app"),
    ] {
        let mut review = base.clone();
        *review.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
        let (status, body) = post("/mutate", serde_json::to_vec(&review).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let response = &body["response"];
        assert_eq!(response["allowed"], false, "{pointer}: {body}");
        assert!(response.get("patch").is_none(), "{pointer}: {body}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{pointer}: {message}");
    }
}

#[tokio::test]
async fn metrics_say_who_set_the_node_labels_and_what_waits_for_a_restart() {
    let policy = Policy::default();
    let metrics = Arc::new(Metrics::new());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cluster/agent-evidence.yaml");
    let opened = sysbox_ro_webhook::cluster::open(
        &sysbox_ro_webhook::cluster::Source::Snapshot(vec![path]),
        &policy.nodes,
        metrics.clone(),
    )
    .await
    .expect("the cluster state loads");
    let s = AppState { cluster: opened.view, metrics, ..state() };
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let resp = admin_router(s).oneshot(req).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        r#"sysbox_ro_cluster_flag_labels{origin="agent"} 2"#,
        r#"sysbox_ro_cluster_flag_labels{origin="hand"} 1"#,
        "sysbox_ro_cluster_nodes_restart_pending 1",
        "sysbox_ro_cluster_flag_labels_against_configmap 2",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}
