//! The reference server of the load benchmark (`benches/run.sh`): the least an
//! admission webhook on `serve`'s stack can do. Same HTTPS stack as `serve`
//! (`benches/support/reference_stack.rs`); the handler checks the body is
//! UTF-8 once and parses it into a `serde_json::Value` (as `serve` does:
//! serde_json's `from_slice` would check every string on its own, a ninth of
//! the request's instructions), reads the request's uid and answers allowed.
//!
//!     bare_server --listen 127.0.0.1:9443 --tls-cert tls.crt --tls-key tls.key

#[path = "../benches/support/reference_stack.rs"]
mod reference_stack;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

async fn mutate(body: Bytes) -> Response {
    let Some(review) = std::str::from_utf8(&body).ok().and_then(|text| serde_json::from_str::<Value>(text).ok()) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let Some(uid) = review.pointer("/request/uid").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, "no request.uid").into_response();
    };
    let answer = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": { "uid": uid, "allowed": true },
    });
    ([(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    reference_stack::serve("bare_server", Router::new().route("/mutate", post(mutate))).await
}
