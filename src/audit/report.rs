//! The `audit` command: load the cluster view, read the pods, and report the
//! groups at risk as `-o text|json|junit|sarif`.
//!
//! Text and JSON are the audit's own (a pool, then its owners); JUnit and
//! SARIF are `check`'s renderers, fed one [`Record`] per group: the node
//! pool stands where `check` puts the input file (`nodepool/<pool>`), the
//! owner where it puts the object.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;

use serde_json::json;

use super::{pods, AuditConfig, Findings, Group, GroupKey};
use crate::check::text::{paint, verdict};
use crate::check::{self, ClusterSource, FindingRecord, OutputFormat, Record, Totals};
use crate::cluster::{self, ClusterState, Source};
use crate::engine::messages::plural;
use crate::engine::Verdict;
use crate::limits::escape_controls;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    ClusterState(#[from] crate::cluster::snapshot::SnapshotError),
    #[error("live cluster: {0}")]
    Live(String),
    #[error("cannot write the report: {0}")]
    Report(#[source] io::Error),
}

/// What a run found, and where the cluster view came from.
pub struct Outcome {
    pub findings: Findings,
    pub source: ClusterSource,
    pub notes: Vec<String>,
}

/// Loads the view and audits the pods (see [`pods`]).
pub fn audit(config: &AuditConfig) -> Result<Outcome, AuditError> {
    let nodes = &config.policy.nodes;
    match &config.cluster {
        Source::Snapshot(paths) => {
            let (state, mut notes) = crate::cluster::snapshot::load(paths, nodes)?;
            // The view's note about the Pods it passed over is this run's business.
            notes.retain(|n| !n.contains("only audit reads them"));
            let findings = pods::audit_snapshot(paths, &state, &config.policy)?;
            Ok(Outcome { findings, source: ClusterSource::File, notes })
        }
        source @ Source::Live { connection, .. } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| AuditError::Live(format!("cannot start the async runtime: {e}")))?;
            let timeout = config.live_timeout;
            let result = runtime.block_on(async {
                let opened = cluster::open(source, nodes, Arc::new(Metrics::new()))
                    .await
                    .map_err(|e| AuditError::Live(e.to_string()))?;
                if !cluster::wait_ready(opened.view.as_ref(), timeout).await {
                    return Err(AuditError::Live(format!(
                        "the cluster view did not sync within {}s (can this identity list and watch Nodes, \
                         RuntimeClasses, Namespaces, Services and the sysbox-mgr ConfigMap?)",
                        timeout.as_secs_f64()
                    )));
                }
                let state: Arc<ClusterState> = opened.view.state();
                let client = cluster::live::client(connection).await.map_err(|e| AuditError::Live(e.to_string()))?;
                let mut notes = Vec::new();
                let policy = Arc::new(config.policy.clone());
                let findings = pods::audit_live(&client, state, policy, config.page_size, &mut notes)
                    .await
                    .map_err(|e| AuditError::Live(e.to_string()))?;
                Ok(Outcome { findings, source: ClusterSource::Live, notes })
            });
            runtime.shutdown_background();
            result
        }
    }
}

/// Runs the command; `Ok` is the exit status.
pub fn run(config: &AuditConfig) -> Result<u8, AuditError> {
    let outcome = audit(config)?;
    let code = outcome.findings.status(config.fail_on);
    let stdout = io::stdout();
    let color = check::use_color(config.color, stdout.is_terminal());
    let out = BufWriter::new(stdout.lock());
    render(config, &outcome, code, color, Box::new(out)).map_err(AuditError::Report)?;
    Ok(code)
}

/// Writes the report of `outcome` in the configured format.
pub fn render(
    config: &AuditConfig,
    outcome: &Outcome,
    code: u8,
    color: bool,
    mut out: Box<dyn Write + '_>,
) -> io::Result<()> {
    match config.output {
        OutputFormat::Text => text(&mut out, outcome, code, color),
        OutputFormat::Json => {
            let v = to_json(outcome, code);
            serde_json::to_writer_pretty(&mut out, &v).map_err(io::Error::other)?;
            writeln!(out)?;
            out.flush()
        }
        OutputFormat::Junit | OutputFormat::Sarif => {
            let mut report = check::make_report_with(
                config.output,
                out,
                false,
                config.fail_on,
                true,
                config.rule_docs_url.as_deref(),
            );
            let mut totals = Totals::new(outcome.source);
            let mut pool: Option<&str> = None;
            for (i, (key, group)) in outcome.findings.groups.iter().enumerate() {
                if pool != Some(key.pool.as_str()) {
                    if let Some(p) = pool {
                        report.end_file(&file_of(p))?;
                    }
                    pool = Some(&key.pool);
                    totals.files += 1;
                    report.begin_file(&file_of(&key.pool))?;
                }
                let r = record(i, key, group);
                totals.documents += 1;
                totals.count(&r);
                report.object(&r)?;
            }
            if let Some(p) = pool {
                report.end_file(&file_of(p))?;
            }
            totals.exit_code = code;
            report.finish(&totals)
        }
    }
}

/// Where `check`'s renderers put a file: the pool.
pub fn file_of(pool: &str) -> String {
    format!("nodepool/{pool}")
}

/// One group as a `check` record.
pub fn record(index: usize, key: &GroupKey, group: &Group) -> Record {
    Record {
        file: file_of(&key.pool),
        document: index,
        item: None,
        line: 1,
        api_version: Some(api_version_of(&key.owner.kind).to_owned()),
        kind: Some(key.owner.kind.clone()),
        namespace: Some(key.namespace.clone()),
        name: Some(key.owner.name.clone()),
        verdict: group.verdict(),
        mode: group.mode(),
        message: group.message(),
        warnings: group.decision.warnings.clone(),
        findings: group
            .decision
            .findings
            .iter()
            .map(|f| FindingRecord { rule: f.rule, rule_id: f.rule.id(), action: f.action, message: group.message() })
            .collect(),
        patch: Vec::new(),
    }
}

/// The apiVersion of an owner's kind (`v1` for a Pod or a kind not known here).
pub fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "v1",
    }
}

/// `-o text`: a line per pool, a line per owner under it, then the notes and a summary.
fn text(out: &mut dyn Write, o: &Outcome, code: u8, color: bool) -> io::Result<()> {
    let mut pool: Option<&str> = None;
    for (key, g) in &o.findings.groups {
        if pool != Some(key.pool.as_str()) {
            pool = Some(&key.pool);
            writeln!(out, "nodepool {}:", escape_controls(&key.pool))?;
        }
        writeln!(
            out,
            "  {} {}/{}: {}: {}",
            key.owner.kind,
            escape_controls(&key.namespace),
            escape_controls(&key.owner.name),
            verdict(color, g.verdict()),
            escape_controls(&g.message())
        )?;
    }
    for (pod, why) in &o.findings.unreadable {
        writeln!(
            out,
            "{}: Pod {}: the engine cannot read it: {}",
            verdict(color, Verdict::Error),
            escape_controls(pod),
            escape_controls(why)
        )?;
    }
    for note in &o.notes {
        writeln!(out, "note: {}", escape_controls(note))?;
    }
    let c = &o.findings.counts;
    let mut extra = String::new();
    if c.node_unknown > 0 {
        extra.push_str(&format!(
            "; {} on nodes the cluster view does not hold (not judged)",
            plural(c.node_unknown, "pod")
        ));
    }
    if c.unlisted > 0 {
        extra.push_str(&format!("; {} in further groups not listed", plural(c.unlisted, "pod")));
    }
    if c.unreadable > 0 {
        extra.push_str(&format!("; {} unreadable", plural(c.unreadable, "pod")));
    }
    let source = match o.source {
        ClusterSource::Live => "the live cluster",
        _ => "--cluster-state",
    };
    let status = match code {
        0 => paint(color, "32", "passed"),
        _ => paint(color, "1;31", "failed"),
    };
    writeln!(
        out,
        "summary: {} at risk in {} and {} ({} read, {} judged){extra}; against {source}; {status}",
        plural(c.at_risk, "pod"),
        plural(o.findings.groups.len(), "owner"),
        plural(o.findings.groups.keys().map(|k| &k.pool).collect::<std::collections::BTreeSet<_>>().len(), "node pool"),
        plural(c.pods, "pod"),
        c.judged,
    )?;
    out.flush()
}

/// `-o json` (docs/audit.md).
pub fn to_json(o: &Outcome, code: u8) -> serde_json::Value {
    let groups: Vec<_> = o
        .findings
        .groups
        .iter()
        .map(|(k, g)| {
            json!({
                "nodePool": k.pool,
                "namespace": k.namespace,
                "owner": { "kind": k.owner.kind, "name": k.owner.name },
                "pods": g.pods,
                "podNames": g.pod_names,
                "pending": g.pending,
                "nodes": g.nodes,
                "nodeCount": g.node_count,
                "reasons": g.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "verdict": g.verdict(),
                "mode": g.mode(),
                "message": g.message(),
                "findings": g.decision.findings.iter().map(|f| json!({
                    "rule": f.rule.id(),
                    "level": check::level(f.action),
                    "message": f.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "groups": groups,
        "unreadable": o.findings.unreadable.iter().map(|(p, why)| json!({ "pod": p, "message": why })).collect::<Vec<_>>(),
        "notes": o.notes,
        "totals": {
            "clusterState": o.source,
            "pods": o.findings.counts.pods,
            "judged": o.findings.counts.judged,
            "atRisk": o.findings.counts.at_risk,
            "nodeUnknown": o.findings.counts.node_unknown,
            "unreadable": o.findings.counts.unreadable,
            "unlisted": o.findings.counts.unlisted,
            "groups": o.findings.groups.len(),
            "exitCode": code,
        },
    })
}
