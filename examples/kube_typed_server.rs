//! A peer of the load benchmark (`benches/run.sh`): an admission webhook as
//! kube-rs users write one, on the same HTTPS stack as `serve`
//! (`benches/support/reference_stack.rs`). Its handler deserialises the body
//! into kube's typed `AdmissionReview<DynamicObject>` and answers allowed with
//! the uid. The typed deserialisation costs more than `serve`'s whole decision,
//! so this is a peer, not the floor: the floor is `examples/bare_server.rs`.
//!
//!     kube_typed_server --listen 127.0.0.1:9443 --tls-cert tls.crt --tls-key tls.key

#[path = "../benches/support/reference_stack.rs"]
mod reference_stack;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;

async fn mutate(Json(review): Json<AdmissionReview<DynamicObject>>) -> Response {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}")).into_response(),
    };
    Json(AdmissionResponse::from(&request).into_review()).into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    reference_stack::serve("kube_typed_server", Router::new().route("/mutate", post(mutate))).await
}
