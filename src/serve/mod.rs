//! `serve`: the HTTPS admission webhook and its plain-HTTP admin port.
//! A thin shell: TLS, HTTP and lifecycle here; every decision in the engine.

pub mod budget;
pub mod conn;
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
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::crypto::CryptoProvider;

use crate::cluster::ClusterView;
use crate::metrics::Metrics;
use crate::policy::Policy;
use tls::ReloadingCert;

/// Smallest body limit accepted: the apiserver sends objects of up to 3 MiB,
/// and a review can embed both object and oldObject.
pub const MIN_BODY_LIMIT: usize = 8 << 20;
/// Connections open at once on the admin port: probes and scrapes need few.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

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
    /// How long a client may take to send its request headers (and, on a
    /// new connection, its TLS handshake).
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// Connections open at once on the webhook port.
    pub max_connections: usize,
    /// Deadline for a request that carries no `?timeout=`.
    pub default_timeout: Duration,
    /// How long the webhook keeps serving, not ready, after a shutdown
    /// signal and before it stops accepting: the time the cluster takes to
    /// stop sending it new connections.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish after the delay.
    pub shutdown_grace: Duration,
    pub policy: Policy,
    /// Where the cluster view comes from.
    pub cluster: crate::cluster::Source,
    /// The audit on a timer (`--audit-interval`; live cluster only).
    pub audit: Option<crate::audit::watch::WatchConfig>,
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

pub fn admin_router(state: AppState) -> guard::Guarded<Router> {
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
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: webhook listener not serving\n".to_owned());
    }
    if !s.cluster.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: cluster view not synced\n".to_owned());
    }
    // What the view does not watch (no NodePool CRD, no RBAC) is said, not failed.
    let notes: String =
        s.cluster.notes().iter().map(|n| format!("note: {}\n", crate::printable::Printable(n))).collect();
    (StatusCode::OK, format!("ok\n{notes}"))
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    s.metrics.set_log_lines_dropped(crate::logging::dropped_total());
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
    admin_handle: axum_server::Handle<SocketAddr>,
    reload_task: tokio::task::JoinHandle<()>,
    webhook_task: tokio::task::JoinHandle<std::io::Result<()>>,
    admin_task: tokio::task::JoinHandle<std::io::Result<()>>,
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
    let clocks = conn::Clocks { header: config.header_read_timeout, idle: config.idle_timeout };
    let capped = conn::Capped::new(DefaultAcceptor, config.max_connections, clocks, metrics.clone(), "webhook");
    let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls)))
        .handshake_timeout(config.header_read_timeout)
        .acceptor(capped);
    let server = axum_server::from_tcp(listener).map_err(|source| ServeError::Bind { addr, source })?;
    let server = http1(server, clocks).acceptor(acceptor).handle(handle.clone());
    let app = webhook::router(state.clone());
    let webhook_task = tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let admin_handle = axum_server::Handle::new();
    let admin_acceptor = conn::Capped::new(DefaultAcceptor, ADMIN_MAX_CONNECTIONS, clocks, metrics.clone(), "admin");
    let admin_server =
        axum_server::from_tcp(admin_listener).map_err(|source| ServeError::Bind { addr: admin_addr, source })?;
    let admin_server = http1(admin_server, clocks).acceptor(admin_acceptor).handle(admin_handle.clone());
    let admin_app = admin_router(state.clone());
    let admin_task = tokio::spawn(async move { admin_server.serve(admin_app.into_make_service()).await });

    let reload_task = tokio::spawn(certs.watch(config.tls_reload_interval, metrics));
    // Ready only once the webhook port accepts connections.
    handle.listening().await;
    admin_handle.listening().await;
    state.serving.store(true, Ordering::Release);
    tracing::info!(%addr, %admin_addr, "serving");
    Ok(Running { addr, admin_addr, state, handle, admin_handle, reload_task, webhook_task, admin_task })
}

/// HTTP/1.1 only (the apiserver never speaks HTTP/2 to a webhook, and the
/// protocol detection that would allow it has no timeout of its own). The
/// header and idle clocks of [`conn::Capped`] bound each connection; hyper's
/// own header timeout runs from the end of one response to the end of the
/// next request's headers, so it is set to their sum as a backstop.
fn http1<A: axum_server::Address>(server: axum_server::Server<A>, clocks: conn::Clocks) -> axum_server::Server<A> {
    let mut server = server.http1_only().first_request_timeout(clocks.header);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(clocks.header.saturating_add(clocks.idle))
        .keep_alive(true);
    server
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every request received was answered.
    Clean,
    /// The grace period ran out, or a second signal came, with this many
    /// webhook requests still in progress; they got no answer.
    Dropped(usize),
}

impl Running {
    /// Drains: not ready at once, stops accepting, lets in-flight requests
    /// finish within `grace`, then stops. The admin port keeps answering
    /// (`/readyz` 503) until the webhook port is closed.
    pub async fn shutdown(self, grace: Duration) -> Stopped {
        self.drain(Duration::ZERO, grace, std::future::pending()).await
    }

    /// Stops in three steps. At once: `/readyz` fails and answers carry
    /// `Connection: close`. For `delay`: everything is still served, new
    /// connections included, while the cluster takes this replica out of
    /// its Service (endpoints are updated asynchronously, so for a while
    /// kube-apiserver still sends reviews here, and a refused connection
    /// would be a denied pod under `failurePolicy: Fail`). Then the drain:
    /// no new connections, in-flight requests get `grace` to finish.
    /// `interrupt` (a second signal) cuts the delay and the drain short.
    pub async fn drain(
        mut self,
        delay: Duration,
        grace: Duration,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Stopped {
        self.state.serving.store(false, Ordering::Release);
        tokio::pin!(interrupt);
        let mut interrupted = false;
        if !delay.is_zero() {
            tracing::info!(delay_seconds = delay.as_secs_f64(), "not ready; still serving until the delay ends");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = &mut interrupt => interrupted = true,
            }
        }
        let grace = if interrupted { Duration::ZERO } else { grace };
        self.handle.graceful_shutdown(None);
        let finished = tokio::select! {
            result = &mut self.webhook_task => Some(result),
            _ = tokio::time::sleep(grace) => None,
            _ = &mut interrupt, if !interrupted => None,
        };
        let stopped = match finished {
            Some(result) => {
                log_server_end("webhook", result);
                Stopped::Clean
            }
            None => {
                let left = self.state.in_flight.get();
                self.handle.shutdown();
                match tokio::time::timeout(Duration::from_secs(1), &mut self.webhook_task).await {
                    Ok(result) => log_server_end("webhook", result),
                    Err(_) => self.webhook_task.abort(),
                }
                if left == 0 {
                    Stopped::Clean
                } else {
                    Stopped::Dropped(left)
                }
            }
        };
        self.admin_handle.graceful_shutdown(Some(Duration::from_secs(1)));
        match tokio::time::timeout(Duration::from_secs(2), &mut self.admin_task).await {
            Ok(result) => log_server_end("admin", result),
            Err(_) => self.admin_task.abort(),
        }
        self.reload_task.abort();
        tracing::info!(?stopped, "stopped");
        stopped
    }
}

fn log_server_end(port: &str, result: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Err(e)) => tracing::warn!(port, error = %e, "server stopped with an error"),
        Err(e) => tracing::warn!(port, error = %e, "server task failed"),
        Ok(Ok(())) => {}
    }
}

/// SIGTERM and SIGINT, registered once so that a second one is never missed.
pub struct Signals {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams =
                [SignalKind::terminate(), SignalKind::interrupt()].into_iter().filter_map(|k| signal(k).ok()).collect();
            Signals { streams }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Resolves on the next SIGTERM or SIGINT.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        {
            if self.streams.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.streams.iter_mut().map(|s| Box::pin(s.recv()));
            futures::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `serve`: opens the cluster view, serves until SIGTERM/SIGINT, then
/// drains; a second signal ends the drain at once.
pub async fn run(config: ServeConfig, provider: Arc<CryptoProvider>) -> anyhow::Result<Stopped> {
    use anyhow::Context as _;
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
    if let crate::cluster::Source::Live { .. } = &config.cluster {
        tracing::info!("watching the live cluster");
    }
    let opened = crate::cluster::open(&config.cluster, &policy.nodes, metrics.clone()).await?;
    for note in &opened.notes {
        tracing::info!(%note, "cluster state");
    }
    if let crate::cluster::Source::Snapshot(files) = &config.cluster {
        let state = opened.view.state();
        tracing::info!(
            ?files,
            nodes = state.nodes.node_count(),
            node_classes = state.nodes.classes.len(),
            runtime_classes = state.runtime_class_count(),
            "cluster state loaded from files"
        );
    }
    let audit = crate::audit::watch::spawn(
        config.audit.as_ref(),
        &config.cluster,
        &config.policy,
        opened.view.clone(),
        metrics.clone(),
    )
    .await;
    let (delay, grace) = (config.shutdown_delay, config.shutdown_grace);
    let mut signals = Signals::new();
    let running = start(config, opened.view, metrics, provider).await.context("cannot start serving")?;
    signals.next().await;
    tracing::info!(delay_seconds = delay.as_secs_f64(), grace_seconds = grace.as_secs_f64(), "shutdown signal");
    let second = async {
        signals.next().await;
        tracing::warn!("second shutdown signal: ending the drain");
    };
    let stopped = running.drain(delay, grace, second).await;
    if let Some(task) = audit {
        task.abort();
    }
    Ok(stopped)
}
