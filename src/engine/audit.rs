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
    let Some(pod) = review.object.json() else {
        // Every shell that audits reads its pods whole.
        return Err(subject::SubjectError {
            kind: "Pod",
            path: "/".into(),
            message: "the audit judges a pod read whole".into(),
        });
    };
    // Succeeded and Failed pods run nothing any more.
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if !matches!(phase, None | Some("Pending" | "Running" | "Unknown")) {
        return Ok(Outcome::NotInScope);
    }
    let decision = decide(review, Some(cluster), policy)?;
    let Some(mode) = decision.mode.filter(|m| *m != Mode::Off) else {
        // Exempt namespace, or mode off: the policy never touches it.
        return Ok(Outcome::NotInScope);
    };
    let in_scope = decision.verdict != Verdict::Skip
        && match subject::read_template(Kind::Pod, pod)? {
            Some(t) => {
                let mut budget = env::Budget::per_pod();
                let envs: Vec<_> = t.spec.all_containers().map(|(_, c)| env::judge(c, &mut budget)).collect();
                relaxed_applies(&t.spec, &envs)
            }
            None => false,
        };
    let annotated =
        pod.pointer("/metadata/annotations").and_then(|a| a.get(&policy.annotation_key)).and_then(Value::as_str)
            == Some("true");
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty());
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
    let pools: Vec<String> = landing.pools().map(|(p, _)| p.name()).collect();
    let shown = subject.as_ref().map_or_else(|| format!("Pod {}/{}", review.namespace, review.name), |s| s.to_string());
    let runtime_class = pod.pointer("/spec/runtimeClassName").and_then(Value::as_str).unwrap_or("");
    let ctx = verdict::Context {
        subject: &shown,
        runtime_class,
        daemonset: false,
        provenance: Some(&cluster.provenance),
        outcomes: super::Outcomes { mode, never_deny: false, texts: super::Texts::All },
    };
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
            let warning = super::messages::fit(format!(
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::api::node::v1::RuntimeClass;
    use serde_json::json;

    use super::*;
    use crate::engine::Operation;

    fn node(name: &str, pool: &str, flag: &str, taint: bool) -> Node {
        let mut n = json!({
            "metadata": { "name": name, "labels": {
                "cloud.google.com/gke-nodepool": pool, "sysbox-ro.dev/relaxed-read-only": flag } },
        });
        if taint {
            n["spec"] = json!({ "taints": [{ "key": "dedicated", "value": "x", "effect": "NoExecute" }] });
        }
        serde_json::from_value(n).unwrap()
    }

    fn cluster() -> ClusterState {
        let nodes = [
            node("good-1", "good", "true", false),
            node("bad-1", "bad", "false", false),
            node("bad-2", "bad", "false", true),
        ];
        let rc: RuntimeClass =
            serde_json::from_value(json!({ "metadata": { "name": "sysbox-runc" }, "handler": "sysbox-runc" })).unwrap();
        ClusterState::build(&nodes, [&rc], [], None, &Policy::default().nodes)
    }

    fn pod(node: Option<&str>, read_only: bool, extra: Value) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "ci" },
            "spec": { "runtimeClassName": "sysbox-runc", "containers": [{ "name": "c",
                "securityContext": { "readOnlyRootFilesystem": read_only } }] },
            "status": { "phase": "Running" },
        });
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                match (p.get_mut(k), v) {
                    (Some(Value::Object(have)), Value::Object(add)) => have.extend(add.clone()),
                    _ => {
                        p.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        p
    }

    fn outcome(p: &Value, policy: &Policy) -> Outcome {
        let review = Review {
            kind: Some(Kind::Pod),
            operation: Operation::Create,
            namespace: "ci",
            name: "p",
            object: crate::engine::Object::Json(p),
            old_object: None,
        };
        judge(&review, &cluster(), policy).unwrap()
    }

    fn at_risk(o: Outcome) -> AtRisk {
        match o {
            Outcome::AtRisk(a) => *a,
            other => panic!("not at risk: {other:?}"),
        }
    }

    #[test]
    fn a_bound_pod_is_judged_against_its_own_node_whatever_its_taints() {
        let policy = Policy::default();
        assert_eq!(outcome(&pod(Some("good-1"), true, json!({})), &policy), Outcome::Fine);
        let a = at_risk(outcome(&pod(Some("bad-1"), true, json!({})), &policy));
        assert_eq!(
            (a.reason, a.node.as_deref(), a.pools.as_slice()),
            (Reason::NodeLacksFlag, Some("bad-1"), &["bad".to_owned()][..])
        );
        assert_eq!(a.decision.verdict, Verdict::Deny);
        assert_eq!(a.decision.findings.len(), 1);
        // A NoExecute taint the pod does not tolerate does not hide the node it is on.
        let a = at_risk(outcome(&pod(Some("bad-2"), true, json!({})), &policy));
        assert_eq!(a.node.as_deref(), Some("bad-2"));
        assert_eq!(outcome(&pod(Some("gone"), true, json!({})), &policy), Outcome::NodeUnknown("gone".into()));
    }

    #[test]
    fn a_pending_pod_is_at_risk_only_when_no_candidate_has_the_flag() {
        let policy = Policy::default();
        let only_bad = json!({ "spec": { "nodeSelector": { "cloud.google.com/gke-nodepool": "bad" } } });
        let a = at_risk(outcome(&pod(None, true, only_bad), &policy));
        assert_eq!((a.node, a.reason), (None, Reason::NodeLacksFlag));
        // Some candidates have it: admission warned; nothing runs there yet.
        assert_eq!(outcome(&pod(None, true, json!({})), &policy), Outcome::Fine);
    }

    #[test]
    fn out_of_scope_pods_and_the_annotation() {
        let policy = Policy::default();
        for phase in ["Succeeded", "Failed"] {
            let done = pod(Some("bad-1"), true, json!({ "status": { "phase": phase } }));
            assert_eq!(outcome(&done, &policy), Outcome::NotInScope, "{phase}");
        }
        assert_eq!(outcome(&pod(Some("bad-1"), false, json!({})), &policy), Outcome::NotInScope);
        let annotated = json!({ "metadata": { "annotations": { "sysbox-ro.dev/relaxed-read-only": "true" } } });
        let a = at_risk(outcome(&pod(Some("bad-1"), false, annotated.clone()), &policy));
        assert_eq!(a.reason, Reason::AnnotatedNodeLacksFlag);
        assert!(
            a.decision.findings[0].message.contains("was admitted as needing"),
            "{}",
            a.decision.findings[0].message
        );
        assert_eq!(outcome(&pod(Some("good-1"), false, annotated), &policy), Outcome::Fine);
        // System-container mode off: the flag does not matter.
        let syscont_off = json!({ "spec": { "runtimeClassName": "sysbox-runc", "nodeName": "bad-1", "containers": [{ "name": "c",
            "env": [{ "name": "SYSBOX_SYSCONT_MODE", "value": "FALSE" }],
            "securityContext": { "readOnlyRootFilesystem": true } }] } });
        assert_eq!(outcome(&pod(None, true, syscont_off), &policy), Outcome::NotInScope);
        // Exempt namespaces and mode off: never touched.
        let exempt = Policy { exempt_namespaces: ["ci".to_owned()].into(), ..Policy::default() };
        assert_eq!(outcome(&pod(Some("bad-1"), true, json!({})), &exempt), Outcome::NotInScope);
        let off = Policy { mode: Mode::Off, ..Policy::default() };
        assert_eq!(outcome(&pod(Some("bad-1"), true, json!({})), &off), Outcome::NotInScope);
        let warn = Policy { mode: Mode::Warn, ..Policy::default() };
        assert_eq!(at_risk(outcome(&pod(Some("bad-1"), true, json!({})), &warn)).decision.verdict, Verdict::Warn);
    }
}
