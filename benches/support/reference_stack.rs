//! The HTTPS stack of the reference servers of the load benchmark
//! (`examples/bare_server.rs`, `examples/kube_typed_server.rs`), set up as
//! `serve` sets up its own: rustls with ring, TLS 1.2 and 1.3, ALPN http/1.1,
//! axum-server with the same handshake and header timeouts, HTTP/1.1
//! keep-alive and the same 16 MiB body limit, and the same allocator (jemalloc
//! with the same settings, unless built without the `jemalloc` feature). Only
//! the handler differs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// As `serve`'s (`src/main.rs`).
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// As `serve`'s defaults: --header-timeout 10 s, --max-body-bytes 16 MiB.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_LIMIT: usize = 16 << 20;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Serves `app` on `--listen ADDR` with `--tls-cert FILE --tls-key FILE`
/// until SIGTERM or Ctrl-C; `name` is printed when listening.
pub async fn serve(name: &str, app: Router) -> anyhow::Result<()> {
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
    let app = app.layer(DefaultBodyLimit::max(BODY_LIMIT));

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
        eprintln!("{name} listening on https://{addr}");
    }
    serving.await??;
    Ok(())
}
