//! Prometheus metrics of the webhook, served on the admin port.

use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Every label value is from a closed set, so that no client can grow the
/// exposition: `kind` is a kind the engine judges or `other`, `operation` an
/// admission operation or `other`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub rule: &'static str,
    /// deny, warn or audit (recorded only).
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortLabels {
    /// webhook or admin.
    pub port: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabels {
    /// agent or hand.
    pub origin: &'static str,
}

/// A namespace and node pool with pods at risk: the audit names at most 20
/// pairs (the largest) and sums the rest under `other`, so the exposition
/// stays bounded whatever the cluster holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AtRiskLabels {
    pub namespace: String,
    pub pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
    pub findings: Family<FindingLabels, Counter>,
    pub request_errors: Family<ErrorLabels, Counter>,
    pub tls_reloads: Family<ResultLabels, Counter>,
    pub open_connections: Family<PortLabels, Gauge>,
    pub connections_refused: Family<PortLabels, Counter>,
    pub tls_expiry: Gauge<i64, AtomicI64>,
    pub cluster_nodes: Gauge,
    pub cluster_node_classes: Gauge,
    /// Services named `sysbox` or `sysbox-*` the cluster view keeps.
    pub cluster_sysbox_services: Gauge,
    pub cluster_rebuilds: Counter,
    pub flag_labels: Family<OriginLabels, Gauge>,
    pub restart_pending: Gauge,
    pub labels_against_configmap: Gauge,
    watch_event_age: Family<KindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// `serve --audit-interval`: pods at risk by namespace and pool.
    pub audit_at_risk: Family<AtRiskLabels, Gauge>,
    /// Audit runs, by result (`ok`, `failed`).
    pub audit_runs: Family<ResultLabels, Counter>,
    /// PolicyReport writes, by result (`applied`, `deleted`, `crd_missing`, `forbidden`, `failed`).
    pub audit_reports: Family<ResultLabels, Counter>,
    /// Running and pending pods the last audit read.
    pub audit_pods: Gauge,
    pub audit_last_run: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub audit_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_events: Mutex<Vec<(&'static str, SystemTime)>>,
    /// The members of `requests`, `latency` and `findings` that answers
    /// count in, resolved once each (see [`Metrics::answered`]).
    answered: Answered,
    /// Log lines dropped because stderr's reader did not keep up.
    log_lines_dropped: FollowingCounter,
}

/// The members of a family that every answer touches, each resolved once.
/// `Family::get_or_create` hashes the label set (SipHash) under a read lock
/// on every call: about 70 lines of code run every request for the three
/// families an answer counts in. A caller that can number its label sets
/// (the webhook's come from closed enumerations) resolves each set once and
/// then pays an index; a number out of range is resolved every time, so a
/// wrong numbering costs speed, never a count.
pub struct Resolved<M> {
    slots: Box<[OnceLock<M>]>,
}

impl<M> Resolved<M> {
    /// A table for label sets numbered `0..len`.
    pub fn new(len: usize) -> Self {
        Resolved { slots: (0..len).map(|_| OnceLock::new()).collect() }
    }

    /// Runs `use_it` on the member numbered `index`, made by `resolve` the
    /// first time.
    pub fn with<R>(&self, index: usize, resolve: impl FnOnce() -> M, use_it: impl FnOnce(&M) -> R) -> R {
        match self.slots.get(index) {
            Some(slot) => use_it(slot.get_or_init(resolve)),
            None => use_it(&resolve()),
        }
    }
}

/// Room in the tables behind [`Metrics::answered`] and [`Metrics::finding`]:
/// the caller numbers its label sets below these (a label set numbered past
/// them is resolved on every call).
pub const REQUEST_SLOTS: usize = 512;
pub const LATENCY_SLOTS: usize = 4;
pub const FINDING_SLOTS: usize = 128;

struct Answered {
    requests: Resolved<Counter>,
    latency: Resolved<Histogram>,
    findings: Resolved<Counter>,
}

impl Answered {
    fn new() -> Answered {
        Answered {
            requests: Resolved::new(REQUEST_SLOTS),
            latency: Resolved::new(LATENCY_SLOTS),
            findings: Resolved::new(FINDING_SLOTS),
        }
    }
}

/// A counter that follows a total kept elsewhere (the log writer's count of
/// dropped lines): raised to it when scraped, never lowered.
#[derive(Debug, Default)]
pub struct FollowingCounter(Mutex<Counter>);

impl FollowingCounter {
    /// The counter to register.
    pub fn counter(&self) -> Counter {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Raises the counter to `total`; a smaller total changes nothing.
    pub fn raise_to(&self, total: u64) {
        let counter = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let seen = counter.get();
        if total > seen {
            counter.inc_by(total - seen);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sysbox_ro");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReviews answered, by kind, operation and verdict",
            requests.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "admission_duration_seconds",
            "Time from request received to response ready",
            latency.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register("findings", "Findings by rule and what was done with them", findings.clone());
        let request_errors = Family::<ErrorLabels, Counter>::default();
        registry.register("request_errors", "Requests answered with an HTTP error, by reason", request_errors.clone());
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register("tls_reloads", "Serving certificate reloads, by result", tls_reloads.clone());
        let open_connections = Family::<PortLabels, Gauge>::default();
        registry.register("open_connections", "Connections open, by port", open_connections.clone());
        let connections_refused = Family::<PortLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because the port's connection limit was reached",
            connections_refused.clone(),
        );
        let tls_expiry = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, as a Unix time",
            tls_expiry.clone(),
        );
        let cluster_nodes = Gauge::default();
        registry.register("cluster_nodes", "Nodes in the cluster view", cluster_nodes.clone());
        let cluster_node_classes = Gauge::default();
        registry.register(
            "cluster_node_classes",
            "Node classes (nodes alike for scheduling) in the cluster view",
            cluster_node_classes.clone(),
        );
        let cluster_sysbox_services = Gauge::default();
        registry.register(
            "cluster_sysbox_services",
            "Services named sysbox or sysbox-* in the cluster view (their service links give pods SYSBOX_* variables)",
            cluster_sysbox_services.clone(),
        );
        let cluster_rebuilds = Counter::default();
        registry.register(
            "cluster_view_rebuilds",
            "Times the cluster view was rebuilt from the watch caches",
            cluster_rebuilds.clone(),
        );
        let flag_labels = Family::<OriginLabels, Gauge>::default();
        registry.register(
            "cluster_flag_labels",
            "Node flag labels in the cluster view, by who set them: the node agent (its evidence supports the label) or by hand",
            flag_labels.clone(),
        );
        let restart_pending = Gauge::default();
        registry.register(
            "cluster_nodes_restart_pending",
            "Nodes whose node agent reports a sysbox-mgr flag that will change on its next restart",
            restart_pending.clone(),
        );
        let labels_against_configmap = Gauge::default();
        registry.register(
            "cluster_flag_labels_against_configmap",
            "Node flag labels that say the opposite of the sysbox-mgr ConfigMap's intent",
            labels_against_configmap.clone(),
        );
        let watch_event_age = Family::<KindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "cluster_watch_last_event_age_seconds",
            "Seconds since the last watch event, by kind",
            watch_event_age.clone(),
        );
        let audit_at_risk = Family::<AtRiskLabels, Gauge>::default();
        registry.register(
            "audit_pods_at_risk",
            "Pods at risk found by the last audit, by namespace and node pool (the 20 largest; the rest as other)",
            audit_at_risk.clone(),
        );
        let audit_runs = Family::<ResultLabels, Counter>::default();
        registry.register("audit_runs", "Audit runs, by result", audit_runs.clone());
        let audit_reports = Family::<ResultLabels, Counter>::default();
        registry.register("audit_policy_reports", "PolicyReport writes by the audit, by result", audit_reports.clone());
        let audit_pods = Gauge::default();
        registry.register("audit_pods", "Running and pending pods the last audit read", audit_pods.clone());
        let audit_last_run = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "audit_last_run_timestamp_seconds",
            "When the last audit run finished, as a Unix time",
            audit_last_run.clone(),
        );
        let audit_duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register("audit_duration_seconds", "How long the last audit run took", audit_duration.clone());
        let log_lines_dropped = FollowingCounter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the reader of stderr did not keep up (the log never blocks a request)",
            log_lines_dropped.counter(),
        );
        Metrics {
            registry,
            log_lines_dropped,
            audit_at_risk,
            audit_runs,
            audit_reports,
            audit_pods,
            audit_last_run,
            audit_duration,
            requests,
            latency,
            findings,
            request_errors,
            tls_reloads,
            open_connections,
            connections_refused,
            tls_expiry,
            cluster_nodes,
            cluster_node_classes,
            cluster_sysbox_services,
            cluster_rebuilds,
            flag_labels,
            restart_pending,
            labels_against_configmap,
            watch_event_age,
            last_events: Mutex::new(Vec::new()),
            answered: Answered::new(),
        }
    }

    /// Counts an answered review: its latency under `labels.endpoint`, and
    /// the request under `labels`. `latency_slot` numbers the endpoint and
    /// `request_slot` the whole label set, in the caller's numbering: each
    /// number must stand for one label set only.
    pub fn answered(&self, latency_slot: usize, request_slot: usize, labels: RequestLabels, elapsed: Duration) {
        let endpoint = EndpointLabels { endpoint: labels.endpoint };
        let latency = || self.latency.get_or_create(&endpoint).clone();
        self.answered.latency.with(latency_slot, latency, |h| h.observe(elapsed.as_secs_f64()));
        let request = || self.requests.get_or_create(&labels).clone();
        self.answered.requests.with(request_slot, request, |c| {
            c.inc();
        });
    }

    /// Counts a finding of an answered review under `labels`, numbered
    /// `slot` in the caller's numbering (one label set per number).
    pub fn finding(&self, slot: usize, labels: FindingLabels) {
        let resolve = || self.findings.get_or_create(&labels).clone();
        self.answered.findings.with(slot, resolve, |c| {
            c.inc();
        });
    }

    /// Records a watch event of `kind` now.
    pub fn watch_event(&self, kind: &'static str) {
        let now = SystemTime::now();
        let mut events = self.last_events.lock().unwrap_or_else(|p| p.into_inner());
        match events.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = now,
            None => events.push((kind, now)),
        }
    }

    pub fn set_tls_expiry(&self, not_after: SystemTime) {
        let secs = not_after.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        self.tls_expiry.set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    /// Raises the dropped log lines counter to `total`, the count the log
    /// writer keeps (it never goes down).
    pub fn set_log_lines_dropped(&self, total: u64) {
        self.log_lines_dropped.raise_to(total);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let now = SystemTime::now();
        for (kind, at) in self.last_events.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let age = now.duration_since(*at).unwrap_or(Duration::ZERO).as_secs_f64();
            self.watch_event_age.get_or_create(&KindLabels { kind }).set(age);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables count in the family's own members: what `/metrics` shows
    /// is the same with or without them, in range or past it.
    #[test]
    fn answers_count_in_the_families_members() {
        let m = Metrics::new();
        let pod = RequestLabels { endpoint: "mutate", kind: "Pod", operation: "CREATE", verdict: "warn" };
        for _ in 0..3 {
            m.answered(0, 7, pod.clone(), Duration::from_millis(1));
        }
        let other = RequestLabels { endpoint: "validate", kind: "other", operation: "other", verdict: "error" };
        m.answered(LATENCY_SLOTS, REQUEST_SLOTS + 1, other.clone(), Duration::from_millis(2));
        m.answered(LATENCY_SLOTS, REQUEST_SLOTS + 1, other.clone(), Duration::from_millis(2));
        let finding = FindingLabels { rule: "some-rule", action: "warn" };
        m.finding(3, finding.clone());
        m.finding(3, finding.clone());
        assert_eq!(m.requests.get_or_create(&pod).get(), 3);
        assert_eq!(m.requests.get_or_create(&other).get(), 2);
        assert_eq!(m.findings.get_or_create(&finding).get(), 2);
        let text = m.encode();
        assert!(text.contains(r#"sysbox_ro_admission_duration_seconds_count{endpoint="validate"} 2"#), "{text}");
    }

    #[test]
    fn a_number_out_of_range_is_resolved_every_time() {
        let table = Resolved::<Counter>::new(1);
        let made = std::cell::Cell::new(0);
        let resolve = || {
            made.set(made.get() + 1);
            Counter::default()
        };
        table.with(0, resolve, |c| c.inc());
        table.with(0, resolve, |c| c.inc());
        assert_eq!(made.get(), 1);
        assert_eq!(table.with(0, resolve, |c| c.get()), 2);
        table.with(5, resolve, |c| c.inc());
        table.with(5, resolve, |c| c.inc());
        assert_eq!(made.get(), 3);
    }
}
