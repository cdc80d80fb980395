//! `serve`: the HTTPS admission webhook and its plain-HTTP admin port.
//! A thin shell: TLS, HTTP and lifecycle here; every decision in the engine.

pub mod budget;
pub mod guard;
pub mod tls;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::crypto::CryptoProvider;

use crate::cluster::ClusterView;
use crate::metrics::Metrics;
use crate::policy::Policy;
use tls::ReloadingCert;

/// Smallest body limit accepted: the apiserver sends objects of up to 3 MiB,
/// and a review can embed both object and oldObject.
pub const MIN_BODY_LIMIT: usize = 8 << 20;
/// Default `--max-body-bytes`.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub tls_reload_interval: Duration,
    pub max_body_bytes: usize,
    /// Bytes of request bodies read or judged at once, across all requests.
    pub max_inflight_body_bytes: usize,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// Deadline for a request that carries no `?timeout=`.
    pub default_timeout: Duration,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    pub policy: Policy,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub policy: Arc<Policy>,
    pub cluster: Arc<dyn ClusterView>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub default_timeout: Duration,
    /// False until the webhook listener is bound, and again while draining.
    pub serving: Arc<AtomicBool>,
    /// Memory held by the bodies of reviews in progress.
    pub body_budget: budget::BodyBudget,
    /// Webhook requests being handled.
    pub in_flight: guard::InFlight,
}

impl AppState {
    /// A state with the default limits: `--max-body-bytes` 16 MiB, twice that
    /// in flight, 10 s when the request names no timeout.
    pub fn new(policy: Policy, cluster: Arc<dyn ClusterView>, metrics: Arc<Metrics>) -> AppState {
        AppState {
            policy: Arc::new(policy),
            cluster,
            metrics,
            max_body_bytes: DEFAULT_BODY_LIMIT,
            default_timeout: Duration::from_secs(10),
            serving: Arc::new(AtomicBool::new(false)),
            body_budget: budget::BodyBudget::new(2 * DEFAULT_BODY_LIMIT),
            in_flight: guard::InFlight::default(),
        }
    }
}

pub fn admin_router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    guard::guard(routes, metrics)
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if !s.serving.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: webhook listener not serving\n");
    }
    if !s.cluster.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: cluster view not synced\n");
    }
    (StatusCode::OK, "ok\n")
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.metrics.encode(),
    )
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: AppState,
    handle: axum_server::Handle<SocketAddr>,
    admin_stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Binds both ports and starts serving. Fails with a message naming the file
/// when the certificate pair is unusable, or the address when a bind fails.
pub async fn start(
    config: ServeConfig,
    cluster: Arc<dyn ClusterView>,
    metrics: Arc<Metrics>,
    provider: Arc<CryptoProvider>,
) -> Result<Running, ServeError> {
    let certs =
        ReloadingCert::load_off_runtime(&config.tls_cert, &config.tls_key, provider.clone(), metrics.clone()).await?;
    let tls = tls::server_config(provider, certs.clone())?;
    let state = AppState {
        max_body_bytes: config.max_body_bytes,
        default_timeout: config.default_timeout,
        body_budget: budget::BodyBudget::new(config.max_inflight_body_bytes.max(config.max_body_bytes)),
        ..AppState::new(config.policy.clone(), cluster, metrics.clone())
    };

    let bind = |addr: SocketAddr| -> Result<std::net::TcpListener, ServeError> {
        let l = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        l.set_nonblocking(true).map_err(|source| ServeError::Bind { addr, source })?;
        Ok(l)
    };
    let listener = bind(config.listen)?;
    let admin_listener = bind(config.admin_listen)?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    let admin_addr =
        admin_listener.local_addr().map_err(|source| ServeError::Bind { addr: config.admin_listen, source })?;

    let handle = axum_server::Handle::new();
    let acceptor =
        RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls))).handshake_timeout(config.header_read_timeout);
    let mut server = axum_server::from_tcp(listener)
        .map_err(|source| ServeError::Bind { addr, source })?
        .acceptor(acceptor)
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let app = webhook::router(state.clone());
    let webhook_task = tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let (admin_stop, mut admin_rx) = tokio::sync::watch::channel(false);
    let admin_listener = tokio::net::TcpListener::from_std(admin_listener)
        .map_err(|source| ServeError::Bind { addr: admin_addr, source })?;
    let admin_app = admin_router(state.clone());
    let admin_task = tokio::spawn(async move {
        axum::serve(admin_listener, admin_app)
            .with_graceful_shutdown(async move {
                let _ = admin_rx.wait_for(|stop| *stop).await;
            })
            .await
    });

    let reload_task = tokio::spawn(certs.watch(config.tls_reload_interval, metrics));
    // Ready only once the webhook port accepts connections.
    handle.listening().await;
    state.serving.store(true, Ordering::Release);
    tracing::info!(%addr, %admin_addr, "serving");
    Ok(Running {
        addr,
        admin_addr,
        state,
        handle,
        admin_stop,
        tasks: vec![reload_task],
        servers: vec![webhook_task, admin_task],
    })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish within `grace`, then stops.
    pub async fn shutdown(self, grace: Duration) {
        self.state.serving.store(false, Ordering::Release);
        self.handle.graceful_shutdown(Some(grace));
        let _ = self.admin_stop.send(true);
        for t in self.servers {
            match t.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "server stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "server task failed"),
                Ok(Ok(())) => {}
            }
        }
        for t in self.tasks {
            t.abort();
        }
        tracing::info!("stopped");
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `serve` from the command line: build the cluster view, serve until
/// SIGTERM/SIGINT, then drain.
pub async fn run(args: &crate::cli::ServeArgs, provider: Arc<CryptoProvider>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let config = args.to_config().map_err(anyhow::Error::msg)?;
    let policy = &config.policy;
    tracing::info!(
        mode = %policy.mode,
        steer = policy.steer,
        annotate_templates = policy.annotate_templates,
        namespace_overrides = policy.namespace_overrides,
        exempt_namespaces = ?policy.exempt_namespaces,
        sysbox_handler = %policy.sysbox_handler,
        pool_labels = ?policy.nodes.pool_labels,
        "policy"
    );
    let metrics = Arc::new(Metrics::new());
    let cluster: Arc<dyn ClusterView> = if args.cluster.cluster_state.is_empty() {
        let conn = crate::cluster::live::Connection {
            kubeconfig: args.cluster.kubeconfig.clone(),
            context: args.cluster.context.clone(),
        };
        let client = crate::cluster::live::client(&conn).await?;
        tracing::info!("watching the live cluster");
        crate::cluster::live::start(client, policy.nodes.clone(), metrics.clone())
    } else {
        let (state, notes) = crate::cluster::snapshot::load(&args.cluster.cluster_state, &policy.nodes)?;
        for note in notes {
            tracing::info!(%note, "cluster state");
        }
        tracing::info!(
            files = ?args.cluster.cluster_state,
            nodes = state.nodes.node_count(),
            node_classes = state.nodes.classes.len(),
            runtime_classes = state.runtime_class_count(),
            "cluster state loaded from files"
        );
        metrics.cluster_nodes.set(state.nodes.node_count() as i64);
        metrics.cluster_node_classes.set(state.nodes.classes.len() as i64);
        Arc::new(crate::cluster::StaticView(Arc::new(state)))
    };
    let grace = config.shutdown_grace;
    let running = start(config, cluster, metrics, provider).await.context("cannot start serving")?;
    shutdown_signal().await;
    tracing::info!(grace_seconds = grace.as_secs_f64(), "shutdown signal: draining");
    running.shutdown(grace).await;
    Ok(())
}
