//! What every request passes through before its handler: a panic anywhere
//! in handling becomes a 500 with a JSON body and a metric (never a dropped
//! connection), requests in flight are counted for the drain, and unknown
//! paths and methods get JSON errors like every other refusal.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures::FutureExt as _;
use serde_json::json;

use crate::metrics::{ErrorLabels, Metrics};
use crate::printable::Printable;

/// An HTTP error with a JSON body, counted by `reason` (a fixed label).
pub fn http_error(metrics: &Metrics, status: StatusCode, reason: &'static str, message: &str) -> Response {
    metrics.request_errors.get_or_create(&ErrorLabels { reason }).inc();
    tracing::warn!(status = status.as_u16(), reason, message = %Printable(message), "request refused");
    (status, Json(json!({ "code": status.as_u16(), "reason": reason, "error": message }))).into_response()
}

/// Adds the panic guard and JSON 404/405 answers to `router`.
pub fn guard(router: Router, metrics: Arc<Metrics>) -> Router {
    let not_found = {
        let metrics = metrics.clone();
        move |req: Request| async move {
            let message = format!("no such path: {}", Printable(req.uri().path()));
            http_error(&metrics, StatusCode::NOT_FOUND, "not_found", &message)
        }
    };
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(metrics.clone(), json_method_not_allowed))
        .layer(axum::middleware::from_fn_with_state(metrics, catch_panic))
}

/// Turns the router's bare 405 into a JSON error, keeping its `Allow` header.
async fn json_method_not_allowed(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let message = format!(
        "method {} not allowed; allowed: {}",
        Printable(method.as_str()),
        allow.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("none")
    );
    let mut json = http_error(&metrics, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &message);
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}

async fn catch_panic(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => panic_response(&metrics, payload.as_ref()),
    }
}

/// The answer to a request whose handling panicked.
pub fn panic_response(metrics: &Metrics, payload: &(dyn std::any::Any + Send)) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = %Printable(what), "request handling panicked");
    let mut response = http_error(
        metrics,
        StatusCode::INTERNAL_SERVER_ERROR,
        "panic",
        "internal error while handling this request; it was logged and counted",
    );
    // The connection may be in an unknown state: do not reuse it.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Requests being handled right now; the drain waits for this to reach zero.
#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Counts the request until the returned token is dropped (answered,
    /// or its connection cut).
    pub fn enter(&self) -> InFlightToken {
        self.0.fetch_add(1, Ordering::AcqRel);
        InFlightToken(self.0.clone())
    }
}

pub struct InFlightToken(Arc<AtomicUsize>);

impl Drop for InFlightToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware: once the server stops being ready (a shutdown signal came),
/// answers still go out in full but say `Connection: close`, so the client
/// takes its next request to another replica instead of reusing a
/// connection that the drain will close under it.
pub async fn close_when_draining(
    State(serving): State<Arc<std::sync::atomic::AtomicBool>>,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    if !serving.load(Ordering::Acquire) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Middleware: counts the request in `InFlight` while it is handled.
pub async fn count_in_flight(State(inflight): State<InFlight>, req: Request, next: Next) -> Response {
    let _token = inflight.enter();
    next.run(req).await
}
