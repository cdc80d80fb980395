//! The audit rule: whether a pod that already exists is at risk, judged
//! against the cluster as it is now. Admission judged the pod when it was
//! created; since then a pool may have lost the flag, the webhook may have
//! been installed after the pod, or a node may have been replaced by one
//! without the flag. Admission never sees such a pod again; [`judge`] does.
//!
//! A pod is at risk when, running or pending (phase `Running`, `Pending`,
//! `Unknown` or none), in a namespace the policy covers (not exempt, mode
//! not `off`):
//! - it is in scope (Sysbox RuntimeClass, a read-only root in system
//!   container mode, as [`super::decide`] says) and
//!   - bound (`spec.nodeName`): the node it is on lacks the flag. Only that
//!     node is its candidate, whatever its taints: the pod is already there;
//!   - not yet bound: none of the nodes it can land on has the flag (the
//!     candidates [`super::decide`] computes, with [`Rule::FlagMissing`]);
//! - or, bound, it carries the annotation admission adds to pods that need
//!   the flag (`--annotation`, `"true"`) and its node lacks the flag, even when
//!   it no longer looks in scope (a RuntimeClass renamed since, say).
//!
//! A pod bound to a node the cluster view does not hold is not judged (its
//! node is gone or not yet seen; [`Outcome::NodeUnknown`]).

use k8s_openapi::api::core::v1::Toleration;
use serde_json::Value;

use super::finding::{Finding, Rule};
use super::{conclude, decide, env, subject, verdict, Decision, Kind, Review, Verdict};
use crate::cluster::scheduling::Placement;
use crate::cluster::ClusterState;
use crate::policy::{Mode, Policy};

/// Why a pod is at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// In scope, and its node (bound) or every node it can land on (pending) lacks the flag.
    NodeLacksFlag,
    /// Annotated as needing the flag by admission, on a node that lacks it.
    AnnotatedNodeLacksFlag,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NodeLacksFlag => "nodeLacksFlag",
            Reason::AnnotatedNodeLacksFlag => "annotatedNodeLacksFlag",
        }
    }
}

/// A pod at risk: why, where, and the decision under its namespace's mode
/// (its findings are the at-risk finding alone).
#[derive(Debug, Clone, PartialEq)]
pub struct AtRisk {
    pub reason: Reason,
    /// The node it is bound to; `None` for a pending pod not yet bound.
    pub node: Option<String>,
    /// Its node's pool, or the pools it can land on (named, at most five).
    pub pools: Vec<String>,
    pub decision: Decision,
}

/// What the audit says about one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not covered by the policy, or not in scope and not annotated.
    NotInScope,
    /// In scope (or annotated) and where it is (or can land) has the flag.
    Fine,
    /// Bound to a node the cluster view does not hold: not judged.
    NodeUnknown(String),
    AtRisk(Box<AtRisk>),
}

/// Whether the relaxed-read-only question arises for a pod spec: a
/// read-only container in system-container mode (`SYSBOX_SYSCONT_MODE=FALSE`
/// turns off Sysbox's implicit mounts).
pub fn relaxed_applies(spec: &subject::PodSpecView, envs: &[env::EnvJudgement]) -> bool {
    spec.all_containers().zip(envs).any(|((_, c), e)| {
        c.security_context.as_ref().and_then(|s| s.read_only_root_filesystem) == Some(true) && !e.syscont_mode_off
    })
}

/// A toleration of every taint: a bound pod is already on its node.
fn tolerate_all() -> Toleration {
    Toleration { operator: Some("Exists".into()), ..Default::default() }
}

/// Judges one existing pod (a `Review` of kind Pod from [`crate::intake`])
/// against the cluster as it is now.
pub fn judge(review: &Review<'_>, cluster: &ClusterState, policy: &Policy) -> Result<Outcome, subject::SubjectError> {
    if review.kind != Some(Kind::Pod) {
        return Ok(Outcome::NotInScope);
    }
    // Succeeded and Failed pods run nothing any more.
    let phase = review.object.pointer("/status/phase").and_then(Value::as_str);
    if !matches!(phase, None | Some("Pending" | "Running" | "Unknown")) {
        return Ok(Outcome::NotInScope);
    }
    let decision = decide(review, Some(cluster), policy)?;
    let Some(mode) = decision.mode.filter(|m| *m != Mode::Off) else {
        // Exempt namespace, or mode off: the policy never touches it.
        return Ok(Outcome::NotInScope);
    };
    let in_scope = decision.verdict != Verdict::Skip
        && match subject::read_template(Kind::Pod, review.object)? {
            Some(t) => {
                relaxed_applies(&t.spec, &t.spec.all_containers().map(|(_, c)| env::judge(c)).collect::<Vec<_>>())
            }
            None => false,
        };
    let annotated = review
        .object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(&policy.annotation_key))
        .and_then(Value::as_str)
        == Some("true");
    let node = review.object.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty());
    let subject = decision.subject.clone();

    let Some(node) = node else {
        // Pending, not bound: the candidates admission would compute.
        if !in_scope {
            return Ok(Outcome::NotInScope);
        }
        let Some(missing) = decision.findings.iter().find(|f| f.rule == Rule::FlagMissing) else {
            return Ok(Outcome::Fine);
        };
        let pools = missing.pools.clone();
        let mut at_risk = conclude(mode, vec![missing.clone()], false);
        at_risk.subject = subject;
        return Ok(Outcome::AtRisk(Box::new(AtRisk {
            reason: Reason::NodeLacksFlag,
            node: None,
            pools,
            decision: at_risk,
        })));
    };
    if !in_scope && !annotated {
        return Ok(Outcome::NotInScope);
    }
    let placement = Placement::new(Some(node), None, None, &[tolerate_all()], None);
    let landing = cluster.landing(&placement);
    if landing.nodes() == 0 {
        return Ok(Outcome::NodeUnknown(node.to_owned()));
    }
    if landing.without_flag() == 0 {
        return Ok(Outcome::Fine);
    }
    let pools: Vec<String> = landing.pools.iter().map(|(p, _)| p.to_string()).collect();
    let shown = subject.as_ref().map_or_else(|| format!("Pod {}/{}", review.namespace, review.name), |s| s.to_string());
    let runtime_class = review.object.pointer("/spec/runtimeClassName").and_then(Value::as_str).unwrap_or("");
    let ctx =
        verdict::Context { subject: &shown, runtime_class, daemonset: false, provenance: Some(&cluster.provenance) };
    let judged = verdict::judge(&landing, &ctx, policy, false);
    let (reason, finding) = match judged.findings.into_iter().find(|f| f.rule == Rule::FlagMissing) {
        Some(f) if in_scope => (Reason::NodeLacksFlag, f),
        _ => {
            let pool = pools.first().map_or("", String::as_str);
            let message = format!(
                "{shown} was admitted as needing sysbox-mgr --relaxed-read-only (annotation {}=true) but runs on node \
                 {node} (pool {pool}), which lacks it, so /sys/fs/cgroup and /var/lib/docker are read-only inside it. \
                 To fix: run sysbox-mgr (Sysbox 0.6.5+) with --relaxed-read-only on that pool (drain it first) and label \
                 its nodes {}=true, or move the pod to a pool that has the flag: sysbox-ro-webhook explain \
                 relaxed-read-only-missing",
                policy.annotation_key, policy.nodes.flag_label,
            );
            let warning = super::messages::fit(&format!(
                "sysbox-ro: {shown} runs on {node} (pool {pool}) without --relaxed-read-only"
            ));
            let finding = Finding::new(Rule::FlagMissing, message, warning).about(pools.clone(), pools.len(), 1);
            (Reason::AnnotatedNodeLacksFlag, finding)
        }
    };
    let mut at_risk = conclude(mode, vec![finding], false);
    at_risk.subject = subject;
    Ok(Outcome::AtRisk(Box::new(AtRisk { reason, node: Some(node.to_owned()), pools, decision: at_risk })))
}
