//! The webhook's HTTP surface driven through the axum router (no sockets):
//! AdmissionReview fixtures in `tests/data/reviews/`, and one test per class
//! of bad input.

use std::path::Path;
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
    let s = AppState {
        max_body_bytes: MIN_BODY_LIMIT,
        ..AppState::new(policy, Arc::new(StaticView(Arc::new(cluster))), Arc::new(Metrics::new()))
    };
    s.serving.store(true, std::sync::atomic::Ordering::Release);
    s
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
    // The apiserver reads the answer only as JSON.
    let req = Request::post("/mutate").header("content-type", "application/json");
    let resp =
        webhook::router(state()).oneshot(req.body(Body::from(fixture("pod-create.json"))).unwrap()).await.unwrap();
    assert_eq!(resp.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"));
    let answered = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<Value>(&answered).unwrap(), review);
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

/// A review with `marker` (a byte string) where the pod's name was.
fn review_with_raw_name(marker: &[u8]) -> Vec<u8> {
    let body = review_with(|r| r["request"]["object"]["metadata"]["name"] = json!("MARKER"));
    let at = body.windows(6).position(|w| w == b"MARKER").expect("marker written");
    [&body[..at], marker, &body[at + 6..]].concat()
}

#[tokio::test]
async fn bytes_that_are_not_utf8_are_refused_and_other_scripts_are_read() {
    // The body is checked as UTF-8 once, then parsed by a reader that trusts
    // it: the same bodies must be refused as when each string was checked.
    for (name, body) in [
        ("a lone continuation byte in a string", review_with_raw_name(b"web\x80")),
        ("a truncated sequence in a string", review_with_raw_name(b"web\xe2\x98")),
        ("an encoded surrogate in a string", review_with_raw_name(b"\xed\xa0\x80")),
        ("a byte that is not UTF-8 outside any string", [b"\xff".as_slice(), &fixture("pod-create.json")].concat()),
    ] {
        let (status, body) = post("/mutate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(body["reason"], "malformed", "{name}: {body}");
    }
    let (status, review) = post("/mutate", review_with_raw_name("caf\u{e9}-\u{2603}-\u{1f433}".as_bytes())).await;
    assert_eq!(status, StatusCode::OK, "{review}");
    assert_eq!(review["response"]["uid"], "7f0b2c1e-5d3a-4c7e-9a51-2b8f6e4d1a90");
    assert_eq!(review["response"]["allowed"], true, "{review}");
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

/// A review of `pod-create.json` with `edit` applied to it.
fn review_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture("pod-create.json")).unwrap();
    edit(&mut review);
    serde_json::to_vec(&review).unwrap()
}

#[tokio::test]
async fn timeouts_beyond_any_duration_are_answered_not_panicked_on() {
    for timeout in ["18446744073709551616s", "99999999999999999999s", "5124095576030432h", "1e400s", ".s", "-5s", "9"] {
        let (status, body) = post(&format!("/mutate?timeout={timeout}"), fixture("pod-create.json")).await;
        assert_eq!(status, StatusCode::OK, "{timeout}: {body}");
        assert_eq!(body["response"]["uid"], "7f0b2c1e-5d3a-4c7e-9a51-2b8f6e4d1a90", "{timeout}");
    }
}

/// A body that sends its first bytes and then nothing more.
fn stalled_body() -> Body {
    use futures::StreamExt as _;
    let first = futures::stream::once(async { Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"kind\":")) });
    Body::from_stream(first.chain(futures::stream::pending()))
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_is_408_within_the_apiservers_longest_timeout() {
    for query in ["?timeout=99999999999h", "?timeout=31s", ""] {
        let started = tokio::time::Instant::now();
        let req = Request::post(format!("/mutate{query}"))
            .header("content-type", "application/json")
            .body(stalled_body())
            .unwrap();
        let resp = webhook::router(state()).oneshot(req).await.unwrap();
        let waited = started.elapsed();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT, "{query}");
        assert!(waited <= Duration::from_secs(30), "{query}: waited {waited:?}");
        let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["reason"], "request_timeout", "{query}");
    }
    // A client asking for less gets less.
    let started = tokio::time::Instant::now();
    let req = Request::post("/mutate?timeout=2s").header("content-type", "application/json").body(stalled_body());
    let resp = webhook::router(state()).oneshot(req.unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() <= Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let (status, body) = post("/nope", fixture("pod-create.json")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["reason"], "not_found", "{body}");
    let resp = webhook::router(state()).oneshot(Request::get("/mutate").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers().get("allow").map(|v| v.to_str().unwrap()), Some("POST"));
    assert_eq!(resp.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"));
    let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["reason"], "method_not_allowed", "{body}");
    let resp = admin_router(state()).oneshot(Request::get("/nope").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["reason"], "not_found", "{body}");
}

#[tokio::test]
async fn encoded_bodies_are_415_and_identity_is_served() {
    for encoding in ["gzip", "deflate", "br", "gzip, identity", "x-custom"] {
        let req = Request::post("/mutate")
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(Body::from(fixture("pod-create.json")))
            .unwrap();
        let resp = webhook::router(state()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{encoding}");
        let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["reason"], "unsupported_content_encoding", "{encoding}: {body}");
    }
    let req = Request::post("/mutate")
        .header("content-type", "application/json")
        .header("content-encoding", "identity")
        .body(Body::from(fixture("pod-create.json")))
        .unwrap();
    assert_eq!(webhook::router(state()).oneshot(req).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn metric_labels_come_from_closed_sets() {
    let s = state();
    for i in 0..50 {
        let body = review_with(|r| {
            r["request"]["kind"]["kind"] = json!(format!("Kind{i}"));
            r["request"]["operation"] = json!(format!("OP{i}"));
        });
        let req = Request::post("/mutate").header("content-type", "application/json").body(Body::from(body)).unwrap();
        assert_eq!(webhook::router(s.clone()).oneshot(req).await.unwrap().status(), StatusCode::OK);
    }
    // A known kind from another API group is not that kind.
    let body = review_with(|r| r["request"]["kind"]["group"] = json!("example.com"));
    let req = Request::post("/mutate").header("content-type", "application/json").body(Body::from(body)).unwrap();
    webhook::router(s.clone()).oneshot(req).await.unwrap();
    let resp = admin_router(s).oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(!text.contains("Kind1") && !text.contains("OP1"), "{text}");
    let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with("sysbox_ro_admission_requests_total")).collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            r#"sysbox_ro_admission_requests_total{endpoint="mutate",kind="other",operation="CREATE",verdict="skip"} 1"#,
            r#"sysbox_ro_admission_requests_total{endpoint="mutate",kind="other",operation="other",verdict="error"} 50"#
        ],
        "{text}"
    );
}

#[tokio::test]
async fn a_panic_in_a_handler_is_a_500_with_json_and_a_metric() {
    let metrics = Arc::new(Metrics::new());
    let routes = axum::Router::new().route(
        "/boom",
        axum::routing::get(|| async {
            if true {
                panic!("boom at {}", 42);
            }
            "unreachable"
        }),
    );
    let app = sysbox_ro_webhook::serve::guard::guard(routes, metrics.clone());
    let resp = app.oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["reason"], "panic", "{body}");
    assert!(metrics.encode().contains(r#"sysbox_ro_request_errors_total{reason="panic"} 1"#));
}

#[tokio::test]
async fn a_uid_that_is_huge_or_not_a_string_is_400() {
    for (uid, reason) in
        [(json!("u".repeat(1 << 20)), "uid_too_long"), (json!(42), "malformed"), (json!({}), "malformed")]
    {
        let (status, body) = post("/mutate", review_with(|r| r["request"]["uid"] = uid)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}");
        assert_eq!(body["reason"], reason);
        assert!(body.to_string().len() < 1024, "the uid is not echoed back");
    }
}

/// Log lines written while `f` runs, in the text format.
async fn text_logs<F: std::future::Future<Output = ()>>(f: F) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    f.await;
    let logs = buf.0.lock().unwrap().clone();
    String::from_utf8(logs).unwrap()
}

#[tokio::test]
async fn names_cannot_forge_log_lines_or_reach_a_terminal_raw() {
    let forged = "x\n2026-01-01T00:00:00Z  INFO admission decision verdict=allow \u{1b}[2J\u{202e}";
    let logs = text_logs(async {
        let body = review_with(|r| {
            r["request"]["name"] = json!(forged);
            r["request"]["namespace"] = json!("ns\r\u{7}");
        });
        let (status, _) = post("/mutate", body).await;
        assert_eq!(status, StatusCode::OK);
        let body = review_with(|r| r["request"]["kind"]["kind"] = json!("Pod\u{1b}]0;title\u{7}"));
        let (status, _) = post("/mutate", body).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
    assert!(logs.contains(r"x\n2026-01-01T00:00:00Z"), "{logs}");
    assert!(logs.contains(r"Pod\u{1b}]0;title\u{7}"), "{logs}");
    assert_eq!(logs.lines().filter(|l| l.contains("admission decision")).count(), 2, "{logs}");
    assert!(!logs.chars().any(|c| c.is_control() && c != '\n' || c == '\u{202e}'), "{logs:?}");
}

/// A review of a read-only Sysbox pod with `n` containers, each with its own
/// `SYSBOX_` variable that sysbox-runc refuses.
fn review_with_bad_env_in_containers(n: usize, mode_warn: bool) -> Vec<u8> {
    review_with(|r| {
        let containers: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "name": format!("c{i}"),
                    "image": "busybox",
                    "env": [{ "name": format!("SYSBOX_BAD_{i}"), "value": "1" }],
                    "securityContext": { "readOnlyRootFilesystem": true }
                })
            })
            .collect();
        r["request"]["object"]["spec"]["containers"] = json!(containers);
        if mode_warn {
            r["request"]["object"]["metadata"]["name"] = json!("many\u{1b}[2J");
        }
    })
}

fn assert_bounded(review: &Value) {
    let r = &review["response"];
    let size = review.to_string().len();
    assert!(size < 32 << 10, "response of {size} bytes");
    if let Some(message) = r["status"]["message"].as_str() {
        assert!(message.len() <= 4096, "message of {} bytes", message.len());
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
    let warnings: Vec<&str> = r["warnings"].as_array().into_iter().flatten().map(|w| w.as_str().unwrap()).collect();
    let mut unique = warnings.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), warnings.len(), "duplicate warnings");
    assert!(warnings.iter().all(|w| w.chars().count() <= 256 && !w.chars().any(char::is_control)), "{warnings:?}");
    assert!(warnings.iter().map(|w| w.chars().count()).sum::<usize>() <= 4096, "{warnings:?}");
    for (key, value) in r["auditAnnotations"].as_object().into_iter().flatten() {
        let value = value.as_str().unwrap();
        assert!(key.len() <= 63 && value.len() <= 10 << 10, "{key}: {} bytes", value.len());
        let mut parts: Vec<&str> = value.split(',').collect();
        let n = parts.len();
        parts.sort_unstable();
        parts.dedup();
        assert_eq!(parts.len(), n, "{key}: repeated items in {value:?}");
    }
}

#[tokio::test]
async fn responses_stay_small_however_many_findings() {
    let (status, review) = post("/mutate", review_with_bad_env_in_containers(20_000, false)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(review["response"]["allowed"], false);
    let message = review["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("SYSBOX_BAD_0"), "the first offenders are named: {message}");
    assert_bounded(&review);

    let mut s = state();
    let mut policy = (*s.policy).clone();
    policy.mode = sysbox_ro_webhook::policy::Mode::Warn;
    s.policy = Arc::new(policy);
    let (status, review) =
        send(s, Method::POST, "/mutate", Some("application/json"), review_with_bad_env_in_containers(20_000, true))
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(review["response"]["allowed"], true);
    assert_bounded(&review);
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

/// `B=$(A)$(A)`, `C=$(B)$(B)`, ... 64 entries deep would be 2^64 bytes if
/// expanded: the review is answered (a warning that the variable is not
/// followed), not an out-of-memory abort of the whole server.
#[tokio::test]
async fn environment_references_that_double_are_answered_not_expanded() {
    let body = review_with(|r| {
        let mut env = vec![json!({ "name": "V0", "value": "xxxxxxxx" })];
        env.extend(
            (1..=64).map(|i| json!({ "name": format!("V{i}"), "value": format!("$(V{})$(V{})", i - 1, i - 1) })),
        );
        env.push(json!({ "name": "SYSBOX_HONOR_CAPS", "value": "$(V64)" }));
        r["request"]["object"]["spec"]["containers"][0]["env"] = Value::Array(env);
    });
    let (status, review) = post("/mutate", body).await;
    assert_eq!(status, StatusCode::OK, "{review}");
    let warnings = review["response"]["warnings"].to_string();
    assert!(warnings.contains("SYSBOX_HONOR_CAPS refers to variables that expand past"), "{warnings}");
}
