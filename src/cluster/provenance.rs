//! Who set each node's flag label: the node agent (its evidence annotation is there and supports
//! the label's value) or someone by hand; which nodes have a sysbox-mgr restart pending; which
//! labels disagree with what the ConfigMap intends. Built with the cluster state, never per
//! request.
//!
//! The agent publishes its evidence as JSON in the Node annotation `sysbox-ro.dev/sysbox-mgr`
//! (docs/agent.md). Only four of its fields matter here; the cluster view keeps only those
//! ([`slim_evidence`]), so thousands of nodes cost a few hundred kilobytes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::pools::{FlagLabel, PoolId};
use super::MgrIntent;

/// The Node annotation holding the node agent's evidence.
pub const EVIDENCE_ANNOTATION: &str = "sysbox-ro.dev/sysbox-mgr";
/// Longest evidence annotation read (the agent's own stay far below).
const MAX_EVIDENCE_BYTES: usize = 64 * 1024;

/// The fields of the agent's evidence the cluster view reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub observed_at: String,
    /// `running`, `stopped` or `unknown`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaxed_read_only: Option<bool>,
    #[serde(default)]
    pub restart_pending: bool,
}

impl Evidence {
    /// The label value this evidence supports: the running process's flag, or none.
    pub fn label(&self) -> Option<bool> {
        if self.state == "running" {
            self.relaxed_read_only
        } else {
            None
        }
    }
}

/// Reads an evidence annotation; `None` when it is not the agent's JSON.
pub fn parse_evidence(text: &str) -> Option<Evidence> {
    if text.len() > MAX_EVIDENCE_BYTES {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The annotation reduced to what the cluster view reads (compact JSON), or `None`.
pub fn slim_evidence(text: &str) -> Option<String> {
    parse_evidence(text).and_then(|e| serde_json::to_string(&e).ok())
}

/// Who set a node's flag label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "by")]
pub enum Origin {
    /// The node agent: its evidence is present and supports the label's value (or its absence).
    Agent { observed_at: String },
    /// Someone else: no evidence, or evidence that does not support this value.
    Hand,
}

/// What is worth knowing about one node's flag label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFlag {
    pub node: String,
    /// The label's value; `None` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `None` for a node without a label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The agent's view of sysbox-mgr, when it reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_state: Option<String>,
    pub restart_pending: bool,
    /// The ConfigMap's intent when the label says otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configmap_intends: Option<bool>,
}

/// The flag labels of one pool's nodes that say `false`, by origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolOrigins {
    pub false_by_agent: usize,
    pub false_by_hand: usize,
    /// The newest `observedAt` among the agent's `false` labels.
    pub false_observed_at: Option<String>,
}

/// Every node's flag provenance, and its summary by pool.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// Nodes with a label or evidence, sorted by name.
    pub nodes: Vec<NodeFlag>,
    by_pool: HashMap<PoolId, PoolOrigins>,
}

/// One node as the cluster view holds it.
pub struct NodeInput<'a> {
    pub name: &'a str,
    pub pool: &'a PoolId,
    pub flag: &'a FlagLabel,
    /// The evidence annotation's text, if any.
    pub evidence: Option<&'a str>,
}

impl Provenance {
    pub fn build<'a>(nodes: impl IntoIterator<Item = NodeInput<'a>>, mgr: &MgrIntent) -> Provenance {
        // What the ConfigMap clearly intends; none when it stops sysbox-mgr or depends on the node.
        let intent = match mgr {
            MgrIntent::ConfigMap(i) => Some(i.unwrap_or(false)),
            MgrIntent::NoConfigMap | MgrIntent::ConfigMapStopsMgr(_) | MgrIntent::ConfigMapUnclear(_) => None,
        };
        let mut out = Provenance::default();
        for n in nodes {
            let evidence = n.evidence.and_then(parse_evidence);
            let label = match n.flag {
                FlagLabel::Absent => None,
                FlagLabel::True => Some(true),
                FlagLabel::False => Some(false),
                FlagLabel::Invalid(_) => None,
            };
            let raw_label = match n.flag {
                FlagLabel::Absent => None,
                FlagLabel::True => Some("true".to_owned()),
                FlagLabel::False => Some("false".to_owned()),
                FlagLabel::Invalid(v) => Some(v.clone()),
            };
            if raw_label.is_none() && evidence.is_none() {
                continue;
            }
            let origin = raw_label.as_ref().map(|_| match &evidence {
                Some(e) if label.is_some() && e.label() == label => {
                    Origin::Agent { observed_at: e.observed_at.clone() }
                }
                _ => Origin::Hand,
            });
            if label == Some(false) {
                let pool = out.by_pool.entry(n.pool.clone()).or_default();
                match &origin {
                    Some(Origin::Agent { observed_at }) => {
                        pool.false_by_agent += 1;
                        if pool.false_observed_at.as_ref().is_none_or(|t| t < observed_at) {
                            pool.false_observed_at = Some(observed_at.clone());
                        }
                    }
                    _ => pool.false_by_hand += 1,
                }
            }
            out.nodes.push(NodeFlag {
                node: n.name.to_owned(),
                label: raw_label,
                origin,
                agent_state: evidence.as_ref().map(|e| e.state.clone()),
                restart_pending: evidence.as_ref().is_some_and(|e| e.restart_pending),
                configmap_intends: match (label, intent) {
                    (Some(l), Some(i)) if l != i => Some(i),
                    _ => None,
                },
            });
        }
        out.nodes.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    /// How the `false` labels of `pool` were set.
    pub fn pool(&self, pool: &PoolId) -> Option<&PoolOrigins> {
        self.by_pool.get(pool)
    }

    pub fn by_agent(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.origin, Some(Origin::Agent { .. }))).count()
    }

    pub fn by_hand(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.origin, Some(Origin::Hand))).count()
    }

    pub fn restart_pending(&self) -> impl Iterator<Item = &NodeFlag> {
        self.nodes.iter().filter(|n| n.restart_pending)
    }

    pub fn disagreeing_with_configmap(&self) -> impl Iterator<Item = &NodeFlag> {
        self.nodes.iter().filter(|n| n.configmap_intends.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(state: &str, flag: Option<bool>, pending: bool) -> String {
        let mut e = serde_json::json!({
            "observedAt": "2026-01-01T00:00:00Z", "state": state, "restartPending": pending,
            "pid": 42, "args": ["--relaxed-read-only"], "configured": {}
        });
        if let Some(f) = flag {
            e["relaxedReadOnly"] = f.into();
        }
        e.to_string()
    }

    fn build(nodes: &[(&str, FlagLabel, Option<String>)], mgr: &MgrIntent) -> Provenance {
        let pool = PoolId::Labelled { key: "pool".into(), value: "p".into() };
        Provenance::build(
            nodes.iter().map(|(name, flag, ev)| NodeInput { name, pool: &pool, flag, evidence: ev.as_deref() }),
            mgr,
        )
    }

    #[test]
    fn a_label_the_evidence_supports_is_the_agents() {
        let p = build(
            &[
                ("agent-true", FlagLabel::True, Some(evidence("running", Some(true), false))),
                ("agent-false", FlagLabel::False, Some(evidence("running", Some(false), true))),
                ("hand", FlagLabel::True, None),
                // The agent says sysbox-mgr is stopped: a label it did not remove is someone else's.
                ("stale-hand", FlagLabel::True, Some(evidence("stopped", None, false))),
                ("disagrees", FlagLabel::False, Some(evidence("running", Some(true), false))),
                ("unlabelled", FlagLabel::Absent, Some(evidence("stopped", None, false))),
                ("nothing", FlagLabel::Absent, None),
            ],
            &MgrIntent::NoConfigMap,
        );
        let origin = |n: &str| p.nodes.iter().find(|x| x.node == n).and_then(|x| x.origin.clone());
        assert!(matches!(origin("agent-true"), Some(Origin::Agent { .. })));
        assert!(matches!(origin("agent-false"), Some(Origin::Agent { .. })));
        assert_eq!(origin("hand"), Some(Origin::Hand));
        assert_eq!(origin("stale-hand"), Some(Origin::Hand));
        assert_eq!(origin("disagrees"), Some(Origin::Hand));
        assert_eq!(origin("unlabelled"), None);
        assert!(p.nodes.iter().all(|n| n.node != "nothing"));
        assert_eq!((p.by_agent(), p.by_hand()), (2, 3));
        let pending: Vec<&str> = p.restart_pending().map(|n| n.node.as_str()).collect();
        assert_eq!(pending, ["agent-false"]);
        let pool = p.pool(&PoolId::Labelled { key: "pool".into(), value: "p".into() }).unwrap();
        assert_eq!((pool.false_by_agent, pool.false_by_hand), (1, 1));
        assert_eq!(pool.false_observed_at.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn labels_against_the_configmaps_intent() {
        let nodes = [("on", FlagLabel::True, None), ("off", FlagLabel::False, None)];
        let p = build(&nodes, &MgrIntent::ConfigMap(Some(true)));
        let names: Vec<&str> = p.disagreeing_with_configmap().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["off"]);
        // A ConfigMap that does not mention the flag intends sysbox-mgr's default, off.
        let p = build(&nodes, &MgrIntent::ConfigMap(None));
        let names: Vec<&str> = p.disagreeing_with_configmap().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["on"]);
        assert_eq!(build(&nodes, &MgrIntent::NoConfigMap).disagreeing_with_configmap().count(), 0);
        let stops = MgrIntent::ConfigMapStopsMgr("flag provided but not defined: -x".into());
        assert_eq!(build(&nodes, &stops).disagreeing_with_configmap().count(), 0, "no clear intent");
    }

    #[test]
    fn the_cluster_view_keeps_only_what_it_reads() {
        let slim = slim_evidence(&evidence("running", Some(true), true)).unwrap();
        assert_eq!(
            slim,
            r#"{"observedAt":"2026-01-01T00:00:00Z","state":"running","relaxedReadOnly":true,"restartPending":true}"#
        );
        assert_eq!(slim_evidence("not json"), None);
        assert_eq!(slim_evidence(&" ".repeat(MAX_EVIDENCE_BYTES + 1)), None);
    }
}
