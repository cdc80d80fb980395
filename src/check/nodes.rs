//! What `check` reports about the nodes' flag labels themselves (with a cluster state): how many
//! the node agent reported and how long ago, how many were set by hand, and warnings for nodes
//! whose sysbox-mgr waits for a restart or whose label says the opposite of the ConfigMap.

use serde::Serialize;

use crate::cluster::provenance::{NodeFlag, Origin, Provenance};
use crate::policy::NodePolicy;

/// Nodes named in one line at most; the rest are counted.
const NAMES_SHOWN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeLabels {
    /// Flag labels the node agent's evidence supports.
    pub by_agent: usize,
    /// Flag labels with no agent evidence behind them.
    pub by_hand: usize,
    /// Age of the newest and oldest agent evidence behind a label, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_newest_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_oldest_seconds: Option<u64>,
    /// One line each: the labels, restarts pending, labels against the ConfigMap.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// `now` is a Unix time in seconds.
pub fn summarize(p: &Provenance, policy: &NodePolicy, now: i64) -> NodeLabels {
    let flag = &policy.flag_label;
    let ages: Vec<u64> = p
        .nodes
        .iter()
        .filter_map(|n| match &n.origin {
            Some(Origin::Agent { observed_at }) => age(observed_at, now),
            _ => None,
        })
        .collect();
    let (newest, oldest) = (ages.iter().min().copied(), ages.iter().max().copied());
    let mut notes = Vec::new();
    let by_agent = p.by_agent();
    let by_hand = p.by_hand();
    if by_agent > 0 {
        let when = match (newest, oldest) {
            (Some(n), Some(o)) if n == o => format!(", observed {} ago", human(n)),
            (Some(n), Some(o)) => format!(", observed {} to {} ago", human(n), human(o)),
            _ => String::new(),
        };
        notes.push(format!("{} {flag} reported by the node agent{when}", count(by_agent, "node label")));
    }
    if by_hand > 0 {
        let hand: Vec<&NodeFlag> = p.nodes.iter().filter(|n| matches!(n.origin, Some(Origin::Hand))).collect();
        notes.push(format!("{} {flag} set by hand: {}", count(by_hand, "node label"), names(&hand)));
    }
    let mut warnings = Vec::new();
    let pending: Vec<&NodeFlag> = p.restart_pending().collect();
    if !pending.is_empty() {
        warnings.push(format!(
            "sysbox-mgr restart pending on {}: {} (the node agent sees a running flag that differs from the \
             configured one; the label follows the running process until sysbox-mgr restarts)",
            count(pending.len(), "node"),
            names(&pending)
        ));
    }
    let against: Vec<&NodeFlag> = p.disagreeing_with_configmap().collect();
    if !against.is_empty() {
        let cm = &policy.mgr_config;
        let intends = |n: &&NodeFlag| if n.configmap_intends == Some(true) { "on" } else { "off" };
        let shown: Vec<String> = against
            .iter()
            .take(NAMES_SHOWN)
            .map(|n| {
                format!("{} ({}={}, ConfigMap intends {})", n.node, flag, n.label.as_deref().unwrap_or(""), intends(n))
            })
            .collect();
        let more = against.len().saturating_sub(NAMES_SHOWN);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        warnings.push(format!(
            "{} disagree with {} in ConfigMap {cm}: {}{more} (the ConfigMap reaches a node only when its Sysbox \
             installer restarts)",
            count(against.len(), "node label"),
            cm.key,
            shown.join(", ")
        ));
    }
    NodeLabels { by_agent, by_hand, agent_newest_seconds: newest, agent_oldest_seconds: oldest, notes, warnings }
}

fn names(nodes: &[&NodeFlag]) -> String {
    let shown: Vec<&str> = nodes.iter().take(NAMES_SHOWN).map(|n| n.node.as_str()).collect();
    let more = nodes.len().saturating_sub(NAMES_SHOWN);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Seconds from an RFC 3339 time to `now`; `None` when it does not parse.
fn age(rfc3339: &str, now: i64) -> Option<u64> {
    let t: k8s_openapi::jiff::Timestamp = rfc3339.parse().ok()?;
    u64::try_from(now.saturating_sub(t.as_second())).ok()
}

/// "45s", "12m", "3h", "2d".
pub fn human(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::pools::{FlagLabel, PoolId};
    use crate::cluster::provenance::NodeInput;
    use crate::cluster::MgrIntent;

    fn evidence(at: &str, flag: bool, pending: bool) -> String {
        serde_json::json!({"observedAt": at, "state": "running", "relaxedReadOnly": flag, "restartPending": pending})
            .to_string()
    }

    #[test]
    fn agent_and_hand_labels_with_ages_and_warnings() {
        let pool = PoolId::Node("x".into());
        let e1 = evidence("2026-01-01T00:00:00Z", true, false);
        let e2 = evidence("2026-01-01T02:00:00Z", false, true);
        let nodes = [
            ("a1", FlagLabel::True, Some(e1.as_str())),
            ("a2", FlagLabel::False, Some(e2.as_str())),
            ("h1", FlagLabel::False, None),
        ];
        let p = Provenance::build(
            nodes.iter().map(|(name, flag, evidence)| NodeInput { name, pool: &pool, flag, evidence: *evidence }),
            &MgrIntent::ConfigMap(Some(true)),
        );
        let now: k8s_openapi::jiff::Timestamp = "2026-01-01T03:00:00Z".parse().unwrap();
        let s = summarize(&p, &NodePolicy::default(), now.as_second());
        assert_eq!((s.by_agent, s.by_hand), (2, 1));
        assert_eq!((s.agent_newest_seconds, s.agent_oldest_seconds), (Some(3600), Some(10_800)));
        assert_eq!(
            s.notes,
            [
                "2 node labels sysbox-ro.dev/relaxed-read-only reported by the node agent, observed 60m to 3h ago",
                "1 node label sysbox-ro.dev/relaxed-read-only set by hand: h1",
            ]
        );
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with("sysbox-mgr restart pending on 1 node: a2 "), "{}", s.warnings[0]);
        assert!(
            s.warnings[1].contains("a2 (sysbox-ro.dev/relaxed-read-only=false, ConfigMap intends on), h1 ("),
            "{}",
            s.warnings[1]
        );
    }

    #[test]
    fn human_ages() {
        assert_eq!([human(5), human(300), human(10_800), human(400_000)], ["5s", "5m", "3h", "4d"]);
    }
}
