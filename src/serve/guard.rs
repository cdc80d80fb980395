//! What every request passes through before its handler: a panic anywhere
//! in handling becomes a 500 with a JSON body and a metric (never a dropped
//! connection), requests in flight are counted for the drain, and unknown
//! paths and methods get JSON errors like every other refusal.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures::future::BoxFuture;
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

/// The answer to a path no endpoint serves.
pub fn not_found(metrics: &Metrics, path: &str) -> Response {
    let message = format!("no such path: {}", Printable(path));
    http_error(metrics, StatusCode::NOT_FOUND, "not_found", &message)
}

/// What the guard does to every request besides its handler. It wraps the
/// whole service of a port as one service of its own: a layer of axum
/// middleware (`from_fn`) clones and boxes the services below it on every
/// request, which was a measurable part of a small review.
struct Guard {
    metrics: Arc<Metrics>,
    /// The webhook's readiness: when false, answers say `Connection: close`.
    serving: Option<Arc<AtomicBool>>,
    /// The webhook's requests in flight, for the drain.
    in_flight: Option<InFlight>,
}

/// Adds the panic guard and JSON 404/405 answers to `router`.
pub fn guard(router: Router, metrics: Arc<Metrics>) -> Guarded<Router> {
    let not_found = {
        let metrics = metrics.clone();
        move |req: Request| async move { not_found(&metrics, req.uri().path()) }
    };
    let guard = Guard { metrics, serving: None, in_flight: None };
    Guarded { guard: Arc::new(guard), inner: router.fallback(not_found) }
}

/// The guard of the webhook's `endpoints`, which answer unknown paths
/// themselves (with [`not_found`]) and wrong methods with a bare 405 and its
/// `Allow` header, as a router does. Besides what [`guard`] adds, it counts
/// each request in `in_flight` while it is handled, and once the server
/// stops being ready (a shutdown signal came), answers still go out in full
/// but say `Connection: close`, so the client takes its next request to
/// another replica instead of reusing a connection that the drain will close
/// under it.
pub fn guard_webhook<S>(
    endpoints: S,
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    in_flight: InFlight,
) -> Guarded<S> {
    let guard = Guard { metrics, serving: Some(serving), in_flight: Some(in_flight) };
    Guarded { guard: Arc::new(guard), inner: endpoints }
}

/// A port's service behind its guard: what `serve` runs on each port (and
/// what tests call with `tower::ServiceExt::oneshot`).
#[derive(Clone)]
pub struct Guarded<S> {
    guard: Arc<Guard>,
    inner: S,
}

impl<S: Clone> Guarded<S> {
    /// This service for every connection, as `axum_server` takes it.
    pub fn into_make_service(self) -> PerConnection<S> {
        PerConnection(self)
    }
}

/// Makes a [`Guarded`] for each connection: a clone of the one it holds.
#[derive(Clone)]
pub struct PerConnection<S>(Guarded<S>);

impl<S: Clone, T> tower_service::Service<T> for PerConnection<S> {
    type Response = Guarded<S>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Guarded<S>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: T) -> Self::Future {
        std::future::ready(Ok(self.0.clone()))
    }
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for Guarded<S>
where
    S: tower_service::Service<axum::http::Request<B>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let token = self.guard.in_flight.as_ref().map(InFlight::enter);
        let method = req.method().clone();
        let guard = self.guard.clone();
        // Routing runs here and the handler when the future is polled: a
        // panic in either becomes the same answer.
        let answering = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)));
        async move {
            let _token = token;
            let outcome = match answering {
                Ok(answering) => AssertUnwindSafe(answering).catch_unwind().await,
                Err(payload) => Err(payload),
            };
            let mut response = match outcome {
                Ok(Ok(response)) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
                    json_method_not_allowed(&guard.metrics, &method, &response)
                }
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(payload) => panic_response(&guard.metrics, payload.as_ref()),
            };
            if guard.serving.as_ref().is_some_and(|serving| !serving.load(Ordering::Acquire)) {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        }
        .boxed()
    }
}

/// A bare 405 (as a router gives) as a JSON error, keeping its `Allow` header.
fn json_method_not_allowed(metrics: &Metrics, method: &axum::http::Method, response: &Response) -> Response {
    let allow = response.headers().get(header::ALLOW).cloned();
    let message = format!(
        "method {} not allowed; allowed: {}",
        Printable(method.as_str()),
        allow.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("none")
    );
    let mut json = http_error(metrics, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &message);
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
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
