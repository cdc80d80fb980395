//! The audit as `wgpolicyk8s.io/v1alpha2` reports, the format Kyverno and
//! Kubewarden write and Policy Reporter shows
//! (kubernetes-sigs/wg-policy-prototypes, `policy-report/api/v1alpha2`):
//!
//! - one `PolicyReport` per namespace with pods at risk, named
//!   [`REPORT_NAME`], one `fail` result per owner and pool: `policy`
//!   `sysbox-ro-webhook`, `rule` the finding's rule id, `resources` the owner,
//!   `properties` the pool, the pod count, the first pods and nodes;
//!   `severity` `high` when the namespace's mode would deny the pods now,
//!   `medium` otherwise; `summary.fail` the number of results.
//! - one `ClusterPolicyReport` of the same name, one `fail` result per node
//!   pool with pods at risk (`resources`: its first nodes).
//!
//! Both are written by server-side apply under the field manager
//! [`FIELD_MANAGER`], so a run replaces its own fields in place. A namespace
//! whose pods are no longer at risk has its report deleted (an empty one
//! would say nothing Policy Reporter does not already show), found by the
//! label [`MANAGED_BY`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Findings, Group, GroupKey};
use crate::engine::Verdict;

pub const GROUP: &str = "wgpolicyk8s.io";
pub const VERSION: &str = "v1alpha2";
pub const REPORT_NAME: &str = "sysbox-ro-webhook-audit";
pub const FIELD_MANAGER: &str = "sysbox-ro-audit";
/// The label every report written carries: `app.kubernetes.io/managed-by=sysbox-ro-webhook`.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "sysbox-ro-webhook");
/// Results in one report, at most: a report is one etcd object (1.5 MiB).
pub const MAX_RESULTS: usize = 1_000;
pub const POLICY: &str = "sysbox-ro-webhook";

fn metadata(namespace: Option<&str>) -> Value {
    let mut m = json!({ "name": REPORT_NAME, "labels": { MANAGED_BY.0: MANAGED_BY.1 } });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn result(key: &GroupKey, g: &Group, now: i64) -> Value {
    let rule = g.decision.findings.first().map_or("relaxed-read-only-missing", |f| f.rule.id());
    let mut properties = BTreeMap::new();
    properties.insert("nodePool", key.pool.clone());
    properties.insert("pods", g.pods.to_string());
    properties.insert("podNames", g.pod_names.join(","));
    properties.insert("nodes", g.nodes.iter().cloned().collect::<Vec<_>>().join(","));
    properties.insert("pending", g.pending.to_string());
    if let Some(mode) = g.mode() {
        properties.insert("mode", mode.to_string());
    }
    json!({
        "source": POLICY,
        "policy": POLICY,
        "rule": rule,
        "category": "Sysbox",
        "severity": if g.verdict() == Verdict::Deny { "high" } else { "medium" },
        "timestamp": { "seconds": now, "nanos": 0 },
        "result": "fail",
        "scored": true,
        "resources": [{
            "apiVersion": super::report::api_version_of(&key.owner.kind),
            "kind": key.owner.kind,
            "name": key.owner.name,
            "namespace": key.namespace,
        }],
        "message": g.message(),
        "properties": properties,
    })
}

/// The `PolicyReport` of one namespace's groups (at most [`MAX_RESULTS`] results).
pub fn namespace_report(namespace: &str, groups: &[(&GroupKey, &Group)], now: i64) -> Value {
    let results: Vec<Value> = groups.iter().take(MAX_RESULTS).map(|(k, g)| result(k, g, now)).collect();
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "PolicyReport",
        "metadata": metadata(Some(namespace)),
        "scope": { "apiVersion": "v1", "kind": "Namespace", "name": namespace },
        "summary": { "pass": 0, "fail": results.len(), "warn": 0, "error": 0, "skip": 0 },
        "results": results,
    })
}

/// The `ClusterPolicyReport`: a result per node pool with pods at risk.
pub fn cluster_report(findings: &Findings, now: i64) -> Value {
    let mut pools: BTreeMap<&str, (usize, std::collections::BTreeSet<&str>, bool)> = BTreeMap::new();
    for (k, g) in &findings.groups {
        let e = pools.entry(&k.pool).or_default();
        e.0 += g.pods;
        e.1.extend(g.nodes.iter().map(String::as_str));
        e.2 |= g.verdict() == Verdict::Deny;
    }
    let results: Vec<Value> = pools
        .iter()
        .take(MAX_RESULTS)
        .map(|(pool, (pods, nodes, deny))| {
            let resources: Vec<Value> = nodes
                .iter()
                .take(super::NAMES_KEPT)
                .map(|n| json!({ "apiVersion": "v1", "kind": "Node", "name": n }))
                .collect();
            json!({
                "source": POLICY,
                "policy": POLICY,
                "rule": "relaxed-read-only-missing",
                "category": "Sysbox",
                "severity": if *deny { "high" } else { "medium" },
                "timestamp": { "seconds": now, "nanos": 0 },
                "result": "fail",
                "scored": true,
                "resources": resources,
                "message": format!(
                    "{} at risk in node pool {pool}: its nodes run sysbox-mgr without --relaxed-read-only, so \
                     read-only Sysbox pods there cannot run Docker inside (sysbox-ro-webhook explain \
                     relaxed-read-only-missing)",
                    crate::engine::messages::plural(*pods, "pod")
                ),
                "properties": { "nodePool": pool, "pods": pods.to_string() },
            })
        })
        .collect();
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "ClusterPolicyReport",
        "metadata": metadata(None),
        "summary": { "pass": 0, "fail": results.len(), "warn": 0, "error": 0, "skip": 0 },
        "results": results,
    })
}
