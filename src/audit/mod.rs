//! `audit`: the pods that already run (or wait to be scheduled), judged
//! against the cluster as it is now. Admission judged each pod once, when it
//! was created; a pool that lost the flag since, a webhook installed after
//! its pods, or a node replaced by one without the flag leave read-only
//! Sysbox pods where they cannot work, and admission never sees them again.
//!
//! Each Pod becomes a review through [`crate::intake`], and
//! [`crate::engine::audit::judge`] (the one place of the rule) says whether
//! it is at risk. The pods at risk are grouped by node pool and owner
//! ([`Findings`]); the pods themselves are read page by page
//! ([`pods`]: `limit`/`continue` on a live cluster, streamed from
//! `--cluster-state` files) and dropped once judged, so a run holds one page
//! and the groups, never the cluster's pods.
//!
//! Two shells run it: the `audit` command ([`run`], reports as `check`'s)
//! and `serve --audit-interval` ([`watch`]: metrics and PolicyReports).

pub mod config;
pub mod pods;
pub mod policyreport;
pub mod report;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::ClusterState;
use crate::engine::audit::{self as rule, Outcome, Reason};
use crate::engine::{Decision, Verdict};
use crate::intake;
use crate::policy::{Mode, Policy};
pub use config::AuditConfig;

/// Pod names, and node names, kept per group (the rest are counted).
pub const NAMES_KEPT: usize = 5;
/// Groups kept in one run; pods of further groups are counted, not listed.
pub const MAX_GROUPS: usize = 10_000;

/// Who runs a pod: its controller, with a ReplicaSet resolved to its
/// Deployment where the ReplicaSet is known; the Pod itself when it has no
/// controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// What the grouping needs of a pod, kept after its object is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodBrief {
    pub namespace: String,
    pub name: String,
    /// Its controller (`ownerReferences` with `controller: true`): kind and name.
    pub controller: Option<(String, String)>,
}

impl PodBrief {
    pub fn of(pod: &Value) -> PodBrief {
        let s = |p| pod.pointer(p).and_then(Value::as_str).unwrap_or("").to_owned();
        let controller = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true)))
            .and_then(|r| Some((r.get("kind")?.as_str()?.to_owned(), r.get("name")?.as_str()?.to_owned())));
        PodBrief { namespace: s("/metadata/namespace"), name: s("/metadata/name"), controller }
    }

    /// The ReplicaSet that controls the pod, if one does.
    pub fn replicaset(&self) -> Option<&str> {
        match &self.controller {
            Some((kind, name)) if kind == "ReplicaSet" => Some(name),
            _ => None,
        }
    }

    /// The pod's owner, given its ReplicaSet's Deployment (`deployment`,
    /// when the ReplicaSet is known and has one).
    pub fn owner(&self, deployment: Option<String>) -> Owner {
        match (&self.controller, deployment) {
            (Some((kind, _)), Some(d)) if kind == "ReplicaSet" => Owner { kind: "Deployment".into(), name: d },
            (Some((kind, name)), _) => Owner { kind: kind.clone(), name: name.clone() },
            (None, _) => Owner { kind: "Pod".into(), name: self.name.clone() },
        }
    }
}

/// What one pod came to.
pub enum Judged {
    NotInScope,
    Fine,
    NodeUnknown,
    AtRisk(Box<rule::AtRisk>),
    /// The engine cannot read the pod: why.
    Unreadable(String),
}

/// Judges one pod object (as the API server or a file gives it).
pub fn judge_pod(pod: &Value, cluster: &ClusterState, policy: &Policy) -> Judged {
    let review = intake::from_manifest(pod, "default");
    match rule::judge(&review, cluster, policy) {
        Ok(Outcome::NotInScope) => Judged::NotInScope,
        Ok(Outcome::Fine) => Judged::Fine,
        Ok(Outcome::NodeUnknown(_)) => Judged::NodeUnknown,
        Ok(Outcome::AtRisk(a)) => Judged::AtRisk(a),
        Err(e) => Judged::Unreadable(e.to_string()),
    }
}

/// Where a group is: its pool (or pools, for pods not yet bound) and owner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub pool: String,
    pub namespace: String,
    pub owner: Owner,
}

/// The pods at risk of one owner in one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub pods: usize,
    /// The first [`NAMES_KEPT`] pod names.
    pub pod_names: Vec<String>,
    /// The first [`NAMES_KEPT`] nodes, and how many in all.
    pub nodes: BTreeSet<String>,
    pub node_count: usize,
    pub reasons: BTreeSet<Reason>,
    /// Pods of this group not yet bound to a node.
    pub pending: usize,
    /// The decision on the first pod (one owner in one namespace: one mode).
    pub decision: Decision,
}

/// Counts over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Pods read (running or pending).
    pub pods: usize,
    /// Pods the policy covers that need the flag (in scope, or annotated).
    pub judged: usize,
    pub at_risk: usize,
    /// Pods bound to a node the cluster view does not hold (not judged).
    pub node_unknown: usize,
    /// Pods the engine cannot read.
    pub unreadable: usize,
    /// Pods at risk in groups beyond [`MAX_GROUPS`]: counted, not listed.
    pub unlisted: usize,
}

/// The pods at risk, grouped by pool and owner, as the pods are read.
#[derive(Debug, Default)]
pub struct Findings {
    pub groups: BTreeMap<GroupKey, Group>,
    pub counts: Counts,
    /// The first [`NAMES_KEPT`] unreadable pods, with why.
    pub unreadable: Vec<(String, String)>,
}

impl Findings {
    /// Adds one judged pod; `owner` is asked for only when the pod is at risk.
    pub fn add(&mut self, pod: &PodBrief, judged: Judged, owner: impl FnOnce() -> Owner) {
        self.counts.pods += 1;
        let at_risk = match judged {
            Judged::NotInScope => return,
            Judged::Fine => {
                self.counts.judged += 1;
                return;
            }
            Judged::NodeUnknown => {
                self.counts.node_unknown += 1;
                return;
            }
            Judged::Unreadable(why) => {
                self.counts.unreadable += 1;
                if self.unreadable.len() < NAMES_KEPT {
                    self.unreadable.push((format!("{}/{}", pod.namespace, pod.name), why));
                }
                return;
            }
            Judged::AtRisk(a) => a,
        };
        self.counts.judged += 1;
        self.counts.at_risk += 1;
        let namespace = pod.namespace.clone();
        let pool = at_risk.pools.join(",");
        let key = GroupKey { pool, namespace, owner: owner() };
        if !self.groups.contains_key(&key) && self.groups.len() >= MAX_GROUPS {
            self.counts.unlisted += 1;
            return;
        }
        let name = pod.name.clone();
        let rule::AtRisk { reason, node, decision, .. } = *at_risk;
        let group = self.groups.entry(key).or_insert_with(|| Group {
            pods: 0,
            pod_names: Vec::new(),
            nodes: BTreeSet::new(),
            node_count: 0,
            reasons: BTreeSet::new(),
            pending: 0,
            decision,
        });
        group.pods += 1;
        if group.pod_names.len() < NAMES_KEPT {
            group.pod_names.push(name);
        }
        group.reasons.insert(reason);
        match node {
            Some(n) if !group.nodes.contains(&n) => {
                group.node_count += 1;
                if group.nodes.len() < NAMES_KEPT {
                    group.nodes.insert(n);
                }
            }
            Some(_) => {}
            None => group.pending += 1,
        }
    }

    /// Pods at risk by namespace and pool (for metrics and PolicyReports).
    pub fn by_namespace(&self) -> BTreeMap<&str, Vec<(&GroupKey, &Group)>> {
        let mut out: BTreeMap<&str, Vec<(&GroupKey, &Group)>> = BTreeMap::new();
        for (k, g) in &self.groups {
            out.entry(k.namespace.as_str()).or_default().push((k, g));
        }
        out
    }

    /// The worst verdict of the run's groups (`Error` with unreadable pods).
    pub fn status(&self, fail_on: crate::check::FailOn) -> u8 {
        let fails = self.counts.unreadable > 0
            || self.groups.values().any(|g| fail_on.fails(g.decision.verdict))
            // Groups past the cap are at risk too: judged as their mode says, they
            // may deny; without their decision, count them as failing.
            || self.counts.unlisted > 0;
        if fails {
            crate::check::EXIT_FAILED
        } else {
            0
        }
    }
}

impl Group {
    /// One line on the group: how many pods, which, on which nodes, then the finding.
    pub fn message(&self) -> String {
        use crate::engine::messages::plural;
        let mut names = self.pod_names.join(", ");
        if self.pods > self.pod_names.len() {
            names.push_str(&format!(" and {} more", self.pods - self.pod_names.len()));
        }
        let mut nodes: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        let more = self.node_count.saturating_sub(nodes.len());
        let more_text = format!("{more} more");
        if more > 0 {
            nodes.push(&more_text);
        }
        let place = match (self.node_count, self.pending) {
            (0, _) => "not yet scheduled".to_owned(),
            (_, 0) => format!("on {} {}", if self.node_count == 1 { "node" } else { "nodes" }, nodes.join(", ")),
            (_, p) => format!(
                "on {} {} ({p} not yet scheduled)",
                if self.node_count == 1 { "node" } else { "nodes" },
                nodes.join(", ")
            ),
        };
        let finding = self.decision.findings.first().map_or("", |f| f.message.as_str());
        format!("{} at risk ({names}), {place}: {finding}", plural(self.pods, "pod"))
    }

    pub fn verdict(&self) -> Verdict {
        self.decision.verdict
    }

    pub fn mode(&self) -> Option<Mode> {
        self.decision.mode
    }
}

/// Runs `audit`: exit 0 when nothing at risk would be denied (with
/// `--fail-on warn`, nor warned), 1 otherwise (or when a pod cannot be
/// read), 2 for unusable arguments, an unloadable cluster state or an
/// unreachable cluster.
pub fn run(config: &AuditConfig) -> ExitCode {
    match report::run(config) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(crate::check::EXIT_USAGE)
        }
    }
}
