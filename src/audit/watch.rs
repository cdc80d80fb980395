//! `serve --audit-interval`: the audit on a timer, in its own task, so it
//! never holds up admission. One run at a time; pods are listed a page at a
//! time and each page is judged on the blocking pool against the view
//! admission uses. Each run sets the metrics and, when the PolicyReport CRD
//! is installed, writes the reports ([`super::policyreport`]). A missing CRD,
//! missing RBAC or an unreachable API server is logged (once per change),
//! counted, and retried at the next run: never fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;

use super::{pods, policyreport as pr, Findings};
use crate::cluster::ClusterView;
use crate::metrics::{AtRiskLabels, Metrics, ResultLabels};
use crate::policy::Policy;

/// Namespace and pool pairs the at-risk gauge names; the rest are summed
/// under `namespace="other",pool="other"`.
pub const MAX_SERIES: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    pub interval: Duration,
    pub page_size: u32,
    /// Write PolicyReports (when the CRD is installed).
    pub policy_reports: bool,
}

fn report_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(pr::GROUP, pr::VERSION, kind),
        &format!("{}s", kind.to_lowercase()),
    )
}

/// Starts the timer for `serve`, when configured and the view is live; a
/// snapshot has no pods to list (said once). The task ends when aborted.
pub async fn spawn(
    audit: Option<&WatchConfig>,
    source: &crate::cluster::Source,
    policy: &Policy,
    view: Arc<dyn ClusterView>,
    metrics: Arc<Metrics>,
) -> Option<tokio::task::JoinHandle<()>> {
    let audit = audit?.clone();
    let crate::cluster::Source::Live { connection, .. } = source else {
        tracing::warn!(
            "--audit-interval needs the live cluster (pods are listed from it): no audit with --cluster-state"
        );
        return None;
    };
    let client = match crate::cluster::live::client(connection).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("audit: no client for the live cluster ({e}): no audit");
            return None;
        }
    };
    tracing::info!(
        interval_seconds = audit.interval.as_secs_f64(),
        policy_reports = audit.policy_reports,
        "audit on a timer"
    );
    let policy = Arc::new(policy.clone());
    Some(tokio::spawn(run(audit, client, view, policy, metrics)))
}

/// Runs forever (until the task is aborted).
pub async fn run(
    config: WatchConfig,
    client: Client,
    view: Arc<dyn ClusterView>,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem: Option<String> = None;
    loop {
        ticker.tick().await;
        if !view.is_ready() {
            continue;
        }
        let started = Instant::now();
        let mut notes = Vec::new();
        let outcome = pods::audit_live(&client, view.state(), policy.clone(), config.page_size, &mut notes).await;
        metrics.audit_duration.set(started.elapsed().as_secs_f64());
        let findings = match outcome {
            Ok(f) => f,
            Err(e) => {
                metrics.audit_runs.get_or_create(&ResultLabels { result: "failed" }).inc();
                say(&mut last_problem, format!("audit: {e}"));
                continue;
            }
        };
        metrics.audit_runs.get_or_create(&ResultLabels { result: "ok" }).inc();
        metrics.audit_last_run.set(now() as f64);
        record(&findings, &metrics);
        tracing::info!(
            pods = findings.counts.pods,
            at_risk = findings.counts.at_risk,
            groups = findings.groups.len(),
            seconds = started.elapsed().as_secs_f64(),
            "audit"
        );
        for note in notes {
            tracing::debug!(%note, "audit");
        }
        if config.policy_reports {
            match write_reports(&client, &findings, &metrics).await {
                Ok(()) => {
                    if last_problem.take().is_some() {
                        tracing::info!("audit: policy reports written again");
                    }
                }
                Err(problem) => say(&mut last_problem, problem),
            }
        }
    }
}

/// Logs a problem when it differs from the last one (so a missing CRD is said once, not every run).
fn say(last: &mut Option<String>, problem: String) {
    if last.as_deref() != Some(problem.as_str()) {
        tracing::warn!("{problem}");
        *last = Some(problem);
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sets the at-risk gauges: the [`MAX_SERIES`] largest namespace and pool
/// pairs by name, the rest under `other`.
pub fn record(findings: &Findings, metrics: &Metrics) {
    let mut by: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (k, g) in &findings.groups {
        *by.entry((k.namespace.as_str(), k.pool.as_str())).or_default() += g.pods as i64;
    }
    let mut pairs: Vec<((&str, &str), i64)> = by.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    metrics.audit_at_risk.clear();
    let mut other = findings.counts.unlisted as i64;
    for (i, ((ns, pool), n)) in pairs.into_iter().enumerate() {
        if i < MAX_SERIES {
            metrics
                .audit_at_risk
                .get_or_create(&AtRiskLabels { namespace: ns.to_owned(), pool: pool.to_owned() })
                .set(n);
        } else {
            other += n;
        }
    }
    if other > 0 {
        metrics
            .audit_at_risk
            .get_or_create(&AtRiskLabels { namespace: "other".into(), pool: "other".into() })
            .set(other);
    }
    metrics.audit_pods.set(findings.counts.pods as i64);
}

fn reason(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) if s.code == 404 => "crd_missing",
        kube::Error::Api(s) if s.code == 403 => "forbidden",
        _ => "failed",
    }
}

fn count(metrics: &Metrics, result: &'static str) {
    metrics.audit_reports.get_or_create(&ResultLabels { result }).inc();
}

/// Applies one report per namespace with findings and the cluster report,
/// then deletes this webhook's reports in namespaces without findings.
async fn write_reports(client: &Client, findings: &Findings, metrics: &Metrics) -> Result<(), String> {
    let at = now();
    let params = PatchParams::apply(pr::FIELD_MANAGER).force();
    let ns_resource = report_resource("PolicyReport");
    let explain = |e: &kube::Error, what: &str| match reason(e) {
        "crd_missing" => format!(
            "audit: the PolicyReport CRD ({}/{}) is not installed: {what} not written (metrics only)",
            pr::GROUP,
            pr::VERSION
        ),
        "forbidden" => format!("audit: not allowed to write {what} (RBAC): {e}"),
        _ => format!("audit: cannot write {what}: {e}"),
    };
    let cluster_api: Api<DynamicObject> = Api::all_with(client.clone(), &report_resource("ClusterPolicyReport"));
    let cluster_body = pr::cluster_report(findings, at);
    if findings.groups.is_empty() {
        match cluster_api.delete(pr::REPORT_NAME, &DeleteParams::default()).await {
            Ok(_) => count(metrics, "deleted"),
            Err(e) if is_missing_object(&e) => {}
            Err(e) => {
                count(metrics, reason(&e));
                return Err(explain(&e, "ClusterPolicyReport"));
            }
        }
    } else if let Err(e) = cluster_api.patch(pr::REPORT_NAME, &params, &Patch::Apply(&cluster_body)).await {
        count(metrics, reason(&e));
        return Err(explain(&e, "ClusterPolicyReport"));
    } else {
        count(metrics, "applied");
    }
    let by_ns = findings.by_namespace();
    for (ns, groups) in &by_ns {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ns_resource);
        let body = pr::namespace_report(ns, groups, at);
        match api.patch(pr::REPORT_NAME, &params, &Patch::Apply(&body)).await {
            Ok(_) => count(metrics, "applied"),
            Err(e) => {
                count(metrics, reason(&e));
                return Err(explain(&e, "PolicyReports"));
            }
        }
    }
    // Stale reports: this webhook's, in namespaces without findings now.
    let keep: BTreeSet<&str> = by_ns.keys().copied().collect();
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ns_resource);
    let selector = format!("{}={}", pr::MANAGED_BY.0, pr::MANAGED_BY.1);
    let mut token: Option<String> = None;
    let mut stale: Vec<String> = Vec::new();
    loop {
        let mut lp = ListParams::default().labels(&selector).limit(500);
        if let Some(t) = token.take() {
            lp = lp.continue_token(&t);
        }
        let page = match all.list_metadata(&lp).await {
            Ok(p) => p,
            Err(e) => {
                count(metrics, reason(&e));
                return Err(explain(&e, "PolicyReports (listing stale ones)"));
            }
        };
        for r in &page.items {
            if let Some(ns) = r.metadata.namespace.as_deref() {
                if r.metadata.name.as_deref() == Some(pr::REPORT_NAME) && !keep.contains(ns) {
                    stale.push(ns.to_owned());
                }
            }
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    for ns in stale {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ns_resource);
        match api.delete(pr::REPORT_NAME, &DeleteParams::default()).await {
            Ok(_) => count(metrics, "deleted"),
            Err(e) if is_missing_object(&e) => {}
            Err(e) => {
                count(metrics, reason(&e));
                return Err(explain(&e, "PolicyReports (deleting stale ones)"));
            }
        }
    }
    Ok(())
}

/// A 404 about the object itself (the CRD is there, the report is not): the
/// API server names the object's kind in the status details.
fn is_missing_object(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 && s.details.as_ref().is_some_and(|d| !d.name.is_empty()))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::audit::{Judged, PodBrief};
    use crate::engine::audit::{AtRisk, Reason};
    use crate::engine::conclude;

    fn at_risk(pool: &str) -> Judged {
        Judged::AtRisk(Box::new(AtRisk {
            reason: Reason::NodeLacksFlag,
            node: Some(format!("{pool}-1")),
            pools: vec![pool.to_owned()],
            decision: conclude(crate::policy::Mode::Enforce, Vec::new(), false),
        }))
    }

    fn findings(namespaces: usize) -> Findings {
        let mut f = Findings::default();
        for i in 0..namespaces {
            for p in 0..=i % 3 {
                let brief = PodBrief { namespace: format!("ns-{i:03}"), name: format!("p{p}"), controller: None };
                f.add(&brief, at_risk("bad"), || brief.owner(None));
            }
        }
        f
    }

    #[test]
    fn the_at_risk_gauge_names_at_most_max_series_pairs_and_sums_the_rest() {
        let metrics = Metrics::new();
        let f = findings(100);
        record(&f, &metrics);
        let text = metrics.encode();
        let series: Vec<&str> = text.lines().filter(|l| l.starts_with("sysbox_ro_audit_pods_at_risk{")).collect();
        assert_eq!(series.len(), MAX_SERIES + 1, "{text}");
        let total: f64 = series.iter().map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap()).sum();
        assert_eq!(total as usize, f.counts.at_risk);
        assert!(text.contains("sysbox_ro_audit_pods_at_risk{namespace=\"other\",pool=\"other\"}"), "{text}");
        // A later run with fewer findings leaves no stale series behind.
        record(&findings(1), &metrics);
        let text = metrics.encode();
        let series: Vec<&str> = text.lines().filter(|l| l.starts_with("sysbox_ro_audit_pods_at_risk{")).collect();
        assert_eq!(series, ["sysbox_ro_audit_pods_at_risk{namespace=\"ns-000\",pool=\"bad\"} 1"]);
    }

    #[test]
    fn reports_follow_the_wg_policy_format() {
        let f = findings(2);
        let by_ns = f.by_namespace();
        let report = pr::namespace_report("ns-001", &by_ns["ns-001"], 1_700_000_000);
        assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(report["kind"], "PolicyReport");
        assert_eq!(report["metadata"]["namespace"], "ns-001");
        assert_eq!(report["metadata"]["labels"]["app.kubernetes.io/managed-by"], "sysbox-ro-webhook");
        assert_eq!(report["summary"], json!({ "pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0 }));
        let r = &report["results"][0];
        assert_eq!((r["policy"].as_str(), r["result"].as_str()), (Some("sysbox-ro-webhook"), Some("fail")));
        assert_eq!(r["timestamp"], json!({ "seconds": 1_700_000_000, "nanos": 0 }));
        assert_eq!(
            r["resources"][0],
            json!({ "apiVersion": "v1", "kind": "Pod", "name": "p0", "namespace": "ns-001" })
        );
        assert!(r["properties"].as_object().unwrap().values().all(Value::is_string), "properties are strings");
        let cluster = pr::cluster_report(&f, 1);
        assert_eq!(cluster["kind"], "ClusterPolicyReport");
        assert!(cluster["metadata"].get("namespace").is_none());
        assert_eq!(cluster["results"][0]["properties"], json!({ "nodePool": "bad", "pods": "3" }));
    }
}
