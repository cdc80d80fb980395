//! The reference server of the load benchmark (`benches/run.sh`): the same
//! stack and TLS setup as `serve` (axum + axum-server + rustls with ring,
//! TLS 1.2 and 1.3, ALPN http/1.1, HTTP/1.1 keep-alive with the same header
//! and handshake timeouts, the same 16 MiB body limit), but the handler only
//! deserialises the AdmissionReview and answers allowed with the uid: the
//! least an admission webhook on this stack can do.
//!
//!     bare_server --listen 127.0.0.1:9443 --tls-cert tls.crt --tls-key tls.key

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// As `serve`'s defaults: --header-timeout 10 s, --max-body-bytes 16 MiB.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_LIMIT: usize = 16 << 20;

async fn mutate(Json(review): Json<AdmissionReview<DynamicObject>>) -> Response {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}")).into_response(),
    };
    Json(AdmissionResponse::from(&request).into_review()).into_response()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen: SocketAddr = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:9443".into()).parse()?;
    let cert = PathBuf::from(arg(&args, "--tls-cert").ok_or_else(|| anyhow::anyhow!("--tls-cert FILE is required"))?);
    let key = PathBuf::from(arg(&args, "--tls-key").ok_or_else(|| anyhow::anyhow!("--tls-key FILE is required"))?);

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];

    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls))).handshake_timeout(HEADER_TIMEOUT);
    let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor).handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let app = Router::new().route("/mutate", post(mutate)).layer(DefaultBodyLimit::max(BODY_LIMIT));

    let stop = handle.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        stop.graceful_shutdown(Some(Duration::from_secs(2)));
    });
    let serving = tokio::spawn(async move { server.serve(app.into_make_service()).await });
    if let Some(addr) = handle.listening().await {
        eprintln!("bare_server listening on https://{addr}");
    }
    serving.await??;
    Ok(())
}
