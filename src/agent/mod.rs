//! `agent`: runs on each Sysbox node, reads what the node's sysbox-mgr really runs with
//! ([`evidence`]) and publishes it on the node's own Node object ([`publish`]).
//!
//! The loop observes every `interval` and as soon as the pid in sysbox-mgr's pid file changes
//! (checked every second), and writes only when the observation differs from what the Node
//! shows, so a quiet cluster of thousands of nodes costs no writes. Every read of the host runs
//! on a blocking thread with a time limit; every failure becomes a log line, a metric and, where
//! it changes the truth, evidence on the Node, never an exit.

pub mod evidence;
pub mod host;
pub mod metrics;
pub mod publish;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::cluster::live::{self, Connection};
use evidence::{Evidence, Interpreter, Observation};
use metrics::{AdminState, AgentMetrics};
use publish::{Backoff, Desired, Publisher};

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Node to publish on (from the downward API). Needed unless `once` with `dry_run`.
    pub node_name: Option<String>,
    /// Where the host's `/` is mounted.
    pub host_root: PathBuf,
    /// Time between observations.
    pub interval: Duration,
    /// Observe once, print the evidence as JSON on stdout, publish (unless `dry_run`), exit.
    pub once: bool,
    /// Never write to the API server.
    pub dry_run: bool,
    /// Plain-HTTP `/healthz`, `/readyz`, `/metrics`; `None` serves nothing.
    pub admin_listen: Option<SocketAddr>,
    /// Where the API server is.
    pub connection: Connection,
    /// Longest time one observation of the host may take before it counts as unknown.
    pub read_timeout: Duration,
    /// How often the Node itself is read back to catch a label changed by someone else.
    pub resync: Duration,
}

impl AgentConfig {
    /// The defaults the command line starts from.
    pub fn new(host_root: PathBuf) -> AgentConfig {
        AgentConfig {
            node_name: None,
            host_root,
            interval: Duration::from_secs(10),
            once: false,
            dry_run: false,
            admin_listen: None,
            connection: Connection::default(),
            read_timeout: Duration::from_secs(5),
            resync: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no node name: set --node-name or the NODE_NAME environment variable (the downward API's spec.nodeName)")]
    NoNodeName,
    #[error("--interval must be at least 1 second")]
    Interval,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] live::LiveError),
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
}

/// sysbox-mgr's flag parsing and systemd's command-line rules, from [`crate::sysbox`].
pub struct SysboxRules;

impl Interpreter for SysboxRules {
    fn relaxed_read_only(&self, args: &[String]) -> Result<bool, String> {
        let parsed = crate::sysbox::mgr_flags::parse(args);
        match parsed.outcome {
            crate::sysbox::Outcome::Starts => Ok(parsed.relaxed_read_only),
            crate::sysbox::Outcome::WouldNotStart(reason) => Err(reason.to_string()),
        }
    }

    fn exec_start(&self, unit: &str, drop_ins: &[String]) -> Result<Vec<String>, String> {
        let drop_ins: Vec<&str> = drop_ins.iter().map(String::as_str).collect();
        match crate::sysbox::systemd::effective_exec_start(unit, &drop_ins) {
            Ok(Some(argv)) => Ok(argv),
            Ok(None) => Err("the service has no ExecStart=".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// RFC 3339 in UTC, to the second.
fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Observations run on blocking threads; one that hangs (a /proc read stuck behind a process's
/// memory lock) keeps its thread, and no second one starts until it returns.
struct Observer {
    root: PathBuf,
    timeout: Duration,
    busy: Arc<AtomicBool>,
}

impl Observer {
    async fn observe(&self) -> Observation {
        let at = now_rfc3339();
        if self.busy.swap(true, Ordering::AcqRel) {
            return hung(at, "an earlier observation of the host is still stuck reading");
        }
        let root = self.root.clone();
        let busy = self.busy.clone();
        let at2 = at.clone();
        let task = tokio::task::spawn_blocking(move || {
            let o = evidence::observe(&root, at2, &SysboxRules);
            busy.store(false, Ordering::Release);
            o
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => {
                self.busy.store(false, Ordering::Release);
                hung(at, "the observation of the host failed")
            }
            Err(_) => hung(at, &format!("reading the host's files took longer than {:?}", self.timeout)),
        }
    }

    async fn pid(&self) -> Option<Result<Option<u32>, String>> {
        if self.busy.load(Ordering::Acquire) {
            return None;
        }
        let root = self.root.clone();
        let task = tokio::task::spawn_blocking(move || evidence::read_pid(&root));
        tokio::time::timeout(self.timeout, task).await.ok()?.ok()
    }
}

fn hung(at: String, why: &str) -> Observation {
    Observation {
        evidence: Evidence::unknown(at, why.to_owned()),
        problems: vec![evidence::Problem { reason: "host_timeout", message: why.to_owned() }],
    }
}

fn log_observation(o: &Observation, metrics: &AgentMetrics) {
    let e = &o.evidence;
    metrics.observed(e.state, e.label(), e.restart_pending);
    for p in &o.problems {
        metrics.error(p.reason);
        tracing::warn!(reason = p.reason, "{}", p.message);
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

/// Runs the agent until SIGTERM/SIGINT (or, with `once`, for one observation).
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    if config.interval < Duration::from_secs(1) {
        return Err(AgentError::Interval);
    }
    let metrics = Arc::new(AgentMetrics::new());
    let observer = Observer {
        root: config.host_root.clone(),
        timeout: config.read_timeout,
        busy: Arc::new(AtomicBool::new(false)),
    };
    if config.once {
        return run_once(&config, &observer, &metrics).await;
    }
    let node = config.node_name.clone().filter(|n| !n.is_empty()).ok_or(AgentError::NoNodeName)?;
    let publisher =
        if config.dry_run { None } else { Some(Publisher::new(live::client(&config.connection).await?, node.clone())) };
    let ready = Arc::new(AtomicBool::new(false));
    let (admin_stop, admin_task) = match config.admin_listen {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|source| AgentError::Bind { addr, source })?;
            let bound = listener.local_addr().unwrap_or(addr);
            let app = metrics::admin_router(AdminState { metrics: metrics.clone(), ready: ready.clone() });
            let (tx, mut rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "admin server failed");
                }
            });
            tracing::info!(admin = %bound, "admin port serving /healthz, /readyz, /metrics");
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    tracing::info!(
        node = %node,
        host_root = %config.host_root.display(),
        interval_seconds = config.interval.as_secs_f64(),
        dry_run = config.dry_run,
        "agent started"
    );
    let mut agent = Loop {
        publisher,
        metrics: metrics.clone(),
        ready,
        confirmed: None,
        backoff: Backoff::new(Duration::from_secs(60)),
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let poll = config.interval.min(Duration::from_secs(1));
    let mut next_observe = Instant::now();
    let mut next_resync = Instant::now() + config.resync;
    let mut retry_at: Option<Instant> = None;
    let mut last_pid: Option<Result<Option<u32>, String>> = None;
    let mut current: Option<Desired> = None;
    loop {
        let now = Instant::now();
        let pid = observer.pid().await;
        let pid_changed = pid.is_some() && last_pid.is_some() && pid != last_pid;
        if now >= next_observe || pid_changed {
            if pid_changed {
                tracing::info!("sysbox-mgr's pid file changed: observing now");
            }
            let o = observer.observe().await;
            log_observation(&o, &metrics);
            let desired = Desired::from_evidence(&o.evidence);
            if current.as_ref().is_none_or(|c| c.fingerprint != desired.fingerprint || c.label != desired.label) {
                tracing::info!(
                    state = ?o.evidence.state,
                    relaxed_read_only = ?o.evidence.relaxed_read_only,
                    restart_pending = o.evidence.restart_pending,
                    reason = o.evidence.reason.as_deref().unwrap_or(""),
                    "observed"
                );
            }
            current = Some(desired);
            next_observe = now + config.interval;
            if pid.is_some() {
                last_pid = pid;
            }
        } else if pid.is_some() {
            last_pid = pid;
        }
        if now >= next_resync {
            // Read the Node back once in a while: someone may have changed the label since.
            agent.confirmed = None;
            next_resync = now + config.resync;
        }
        if let Some(desired) = &current {
            if retry_at.is_none_or(|t| now >= t) {
                match agent.reconcile(desired).await {
                    Ok(()) => retry_at = None,
                    Err(delay) => retry_at = Some(Instant::now() + delay),
                }
            }
        }
        let wake = [Some(next_observe), Some(now + poll), retry_at].into_iter().flatten().min().unwrap_or(now + poll);
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    tracing::info!("shutdown signal: stopping");
    if let Some(tx) = admin_stop {
        let _ = tx.send(true);
    }
    if let Some(task) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    Ok(())
}

struct Loop {
    publisher: Option<Publisher>,
    metrics: Arc<AgentMetrics>,
    ready: Arc<AtomicBool>,
    /// What the Node is known to show; `None` until read back.
    confirmed: Option<Desired>,
    backoff: Backoff,
}

impl Loop {
    /// Makes the Node show `desired` if it does not already. `Err(delay)` after a failure.
    async fn reconcile(&mut self, desired: &Desired) -> Result<(), Duration> {
        let Some(publisher) = &self.publisher else {
            // --dry-run: the log is the only output.
            self.ready.store(true, Ordering::Release);
            return Ok(());
        };
        if self.confirmed.as_ref().is_some_and(|c| c.label == desired.label && c.fingerprint == desired.fingerprint) {
            return Ok(());
        }
        if self.confirmed.is_none() {
            match publisher.get().await {
                Ok(node) if desired.matches_node(&node) => {
                    self.confirmed = Some(desired.clone());
                    self.metrics.unchanged.inc();
                    self.succeeded();
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(self.failed(&e)),
            }
        }
        match publisher.apply(desired).await {
            Ok(_) => {
                self.metrics.publishes.inc();
                tracing::info!(node = publisher.node(), label = ?desired.label, "published");
                self.confirmed = Some(desired.clone());
                self.succeeded();
                Ok(())
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    fn succeeded(&mut self) {
        self.backoff.reset();
        self.metrics.success_now();
        self.ready.store(true, Ordering::Release);
    }

    fn failed(&mut self, e: &publish::PublishError) -> Duration {
        let reason = e.reason();
        self.metrics.error(reason);
        self.confirmed = None;
        let delay = self.backoff.next_delay();
        tracing::warn!(reason, retry_in_seconds = delay.as_secs_f64(), "cannot publish: {e}");
        delay
    }
}

async fn run_once(config: &AgentConfig, observer: &Observer, metrics: &Arc<AgentMetrics>) -> Result<(), AgentError> {
    let o = observer.observe().await;
    log_observation(&o, metrics);
    {
        use std::io::Write as _;
        // A closed stdout (`| head`) is not worth a panic; the evidence is also logged.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&o.evidence).unwrap_or_default());
    }
    if config.dry_run {
        return Ok(());
    }
    let node = config.node_name.clone().filter(|n| !n.is_empty()).ok_or(AgentError::NoNodeName)?;
    let publisher = Publisher::new(live::client(&config.connection).await?, node);
    let desired = Desired::from_evidence(&o.evidence);
    let node_now = publisher.get().await?;
    if desired.matches_node(&node_now) {
        tracing::info!(node = publisher.node(), "the Node already shows this; nothing written");
        return Ok(());
    }
    publisher.apply(&desired).await?;
    tracing::info!(node = publisher.node(), label = ?desired.label, "published");
    Ok(())
}
