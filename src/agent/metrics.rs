//! Prometheus metrics of the node agent and its admin port (`/healthz`, `/readyz`, `/metrics`).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::evidence::State as MgrState;
use crate::metrics::FollowingCounter;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// running, stopped or unknown.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

pub struct AgentMetrics {
    registry: Registry,
    pub observations: Family<StateLabels, Counter>,
    pub errors: Family<ReasonLabels, Counter>,
    pub publishes: Counter,
    pub unchanged: Counter,
    pub last_success: Gauge<i64, AtomicI64>,
    pub relaxed_read_only: Gauge<i64, AtomicI64>,
    pub restart_pending: Gauge<i64, AtomicI64>,
    /// Log lines dropped because stderr's reader did not keep up.
    log_lines_dropped: FollowingCounter,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        let mut registry = Registry::with_prefix("sysbox_ro_agent");
        let observations = Family::<StateLabels, Counter>::default();
        registry.register("observations", "Observations of sysbox-mgr, by what was found", observations.clone());
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register("errors", "Problems reading the host or publishing on the Node, by reason", errors.clone());
        let publishes = Counter::default();
        registry.register("publishes", "Writes (server-side applies) to the Node", publishes.clone());
        let unchanged = Counter::default();
        registry.register(
            "unchanged",
            "Observations that needed no write because the Node already showed them",
            unchanged.clone(),
        );
        let last_success = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time when the Node was last known to show the latest observation",
            last_success.clone(),
        );
        let relaxed_read_only = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "relaxed_read_only",
            "The running sysbox-mgr's --relaxed-read-only: 1 on, 0 off, -1 unknown",
            relaxed_read_only.clone(),
        );
        let restart_pending = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "restart_pending",
            "1 when the configured sysbox-mgr flag differs from the running one",
            restart_pending.clone(),
        );
        let log_lines_dropped = FollowingCounter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the reader of stderr did not keep up (the log never blocks the agent)",
            log_lines_dropped.counter(),
        );
        relaxed_read_only.set(-1);
        AgentMetrics {
            registry,
            observations,
            errors,
            publishes,
            unchanged,
            last_success,
            relaxed_read_only,
            restart_pending,
            log_lines_dropped,
        }
    }

    /// Raises the dropped log lines counter to `total`, the count the log
    /// writer keeps.
    pub fn set_log_lines_dropped(&self, total: u64) {
        self.log_lines_dropped.raise_to(total);
    }

    pub fn observed(&self, state: MgrState, flag: Option<bool>, restart_pending: bool) {
        let state = match state {
            MgrState::Running => "running",
            MgrState::Stopped => "stopped",
            MgrState::Unknown => "unknown",
        };
        self.observations.get_or_create(&StateLabels { state }).inc();
        self.relaxed_read_only.set(flag.map_or(-1, i64::from));
        self.restart_pending.set(i64::from(restart_pending));
    }

    pub fn error(&self, reason: &'static str) {
        self.errors.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn success_now(&self) {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.last_success.set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What the admin port reads.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<AgentMetrics>,
    /// True once the Node (or, with `--dry-run`, the log) shows an observation.
    pub ready: Arc<AtomicBool>,
}

pub fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the Node does not show an observation yet\n")
    }
}

async fn metrics_text(State(s): State<AdminState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], {
        s.metrics.set_log_lines_dropped(crate::logging::dropped_total());
        s.metrics.encode()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(m: &AgentMetrics) -> String {
        m.encode().lines().find(|l| l.starts_with("sysbox_ro_agent_log_lines_dropped_total ")).unwrap_or("").to_owned()
    }

    #[test]
    fn dropped_log_lines_follow_the_writers_count_and_never_fall() {
        let m = AgentMetrics::new();
        assert_eq!(dropped(&m), "sysbox_ro_agent_log_lines_dropped_total 0");
        m.set_log_lines_dropped(5);
        m.set_log_lines_dropped(3);
        assert_eq!(dropped(&m), "sysbox_ro_agent_log_lines_dropped_total 5");
        m.set_log_lines_dropped(8);
        assert_eq!(dropped(&m), "sysbox_ro_agent_log_lines_dropped_total 8");
    }
}
