//! Where a pod can land: the kube-scheduler's node filters that depend only on
//! the pod and the node object (NodeName, NodeUnschedulable, NodeAffinity,
//! TaintToleration), written to agree with `k8s.io/component-helpers`.
//! `tests/scheduling_reference.rs` checks the NodeAffinity and TaintToleration
//! filters case by case against Kubernetes' own Go code; NodeName,
//! NodeUnschedulable and the RuntimeClass merge are held by the unit tests
//! below.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};

/// Taint the node lifecycle controller mirrors from `spec.unschedulable`; the
/// scheduler's NodeUnschedulable filter lets a pod through only if it tolerates it.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Taint keys the node lifecycle controller sets (`k8s.io/api/core/v1` well-known taints).
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
pub const DISK_PRESSURE_TAINT: &str = "node.kubernetes.io/disk-pressure";
pub const MEMORY_PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";
pub const PID_PRESSURE_TAINT: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE_TAINT: &str = "node.kubernetes.io/network-unavailable";

/// `key:Exists:effect`, optionally for `seconds`.
fn exists(key: &str, effect: &str, seconds: Option<i64>) -> Toleration {
    Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        value: None,
        toleration_seconds: seconds,
    }
}

/// What the DefaultTolerationSeconds admission plugin adds to every pod
/// that does not already tolerate the taint with effect NoExecute
/// (`plugin/pkg/admission/defaulttolerationseconds/admission.go`, `Admit`):
/// not-ready and unreachable, `NoExecute`, for 300 seconds.
pub fn default_toleration_seconds(tolerations: &[Toleration]) -> Vec<Toleration> {
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or("");
            let e = t.effect.as_deref().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    [NOT_READY_TAINT, UNREACHABLE_TAINT]
        .into_iter()
        .filter(|k| !tolerates(k))
        .map(|k| exists(k, "NoExecute", Some(300)))
        .collect()
}

/// What the DaemonSet controller adds to every daemon pod
/// (`pkg/controller/daemon/util/daemonset_util.go`, `AddOrUpdateDaemonPodTolerations`):
/// not-ready and unreachable `NoExecute` without limit; disk, memory and PID
/// pressure and unschedulable `NoSchedule`; network-unavailable `NoSchedule`
/// for host-network pods.
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut out = vec![
        exists(NOT_READY_TAINT, "NoExecute", None),
        exists(UNREACHABLE_TAINT, "NoExecute", None),
        exists(DISK_PRESSURE_TAINT, "NoSchedule", None),
        exists(MEMORY_PRESSURE_TAINT, "NoSchedule", None),
        exists(PID_PRESSURE_TAINT, "NoSchedule", None),
        exists(UNSCHEDULABLE_TAINT, "NoSchedule", None),
    ];
    if host_network {
        out.push(exists(NETWORK_UNAVAILABLE_TAINT, "NoSchedule", None));
    }
    out
}

/// A pod nodeSelector entry the RuntimeClass admission plugin refuses:
/// the same key with another value in the class's `scheduling.nodeSelector`
/// (`plugin/pkg/admission/runtimeclass/admission.go`, `setScheduling`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorConflict {
    pub key: String,
    pub pod_value: String,
    pub class_value: String,
}

/// The first conflict between a pod's nodeSelector and its RuntimeClass's, by key.
pub fn selector_conflict(
    pod: Option<&BTreeMap<String, String>>,
    class: &BTreeMap<String, String>,
) -> Option<SelectorConflict> {
    let pod = pod?;
    class.iter().find_map(|(k, cv)| match pod.get(k) {
        Some(pv) if pv != cv => {
            Some(SelectorConflict { key: k.clone(), pod_value: pv.clone(), class_value: cv.clone() })
        }
        _ => None,
    })
}

/// What a node offers to the filters: its name and labels.
pub trait NodeFacts {
    fn name(&self) -> &str;
    fn label(&self, key: &str) -> Option<&str>;
}

impl NodeFacts for k8s_openapi::api::core::v1::Node {
    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// The scheduling constraints of one pod (or pod template), compiled once per
/// review and then evaluated against many nodes or node classes.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// `spec.nodeName`: the pod bypasses the scheduler and goes to that node.
    pub node_name: Option<String>,
    /// `spec.nodeSelector` (with the RuntimeClass's merged in): every pair must match.
    pub node_selector: Vec<(String, String)>,
    /// Required node affinity, `None` when the pod has none.
    pub required: Option<Vec<Term>>,
    pub tolerations: Vec<Toleration>,
}

/// One compiled `nodeSelectorTerm`. A term that failed to parse never matches,
/// exactly as the scheduler's lazy-error selector treats it.
#[derive(Debug, Clone)]
pub enum Term {
    Valid { labels: Vec<LabelReq>, fields: Vec<FieldReq> },
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelReq {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Gt(String, i64),
    Lt(String, i64),
}

impl LabelReq {
    pub fn key(&self) -> &str {
        match self {
            LabelReq::In(k, _)
            | LabelReq::NotIn(k, _)
            | LabelReq::Exists(k)
            | LabelReq::DoesNotExist(k)
            | LabelReq::Gt(k, _)
            | LabelReq::Lt(k, _) => k,
        }
    }

    fn matches(&self, node: &impl NodeFacts) -> bool {
        match self {
            LabelReq::In(k, vals) => node.label(k).is_some_and(|v| vals.iter().any(|x| x == v)),
            LabelReq::NotIn(k, vals) => node.label(k).is_none_or(|v| !vals.iter().any(|x| x == v)),
            LabelReq::Exists(k) => node.label(k).is_some(),
            LabelReq::DoesNotExist(k) => node.label(k).is_none(),
            LabelReq::Gt(k, n) => node.label(k).and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
            LabelReq::Lt(k, n) => node.label(k).and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
        }
    }
}

/// `matchFields` requirement. Nodes expose a single field, `metadata.name`;
/// any other key reads as the empty string, as in the Go field set.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldReq {
    Equal(String, String),
    NotEqual(String, String),
}

impl FieldReq {
    fn matches(&self, node: &impl NodeFacts) -> bool {
        let field = |k: &str| if k == "metadata.name" { node.name() } else { "" };
        match self {
            FieldReq::Equal(k, v) => field(k) == v,
            FieldReq::NotEqual(k, v) => field(k) != v,
        }
    }
}

impl Term {
    fn compile(term: &NodeSelectorTerm) -> Option<Term> {
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        // A nil or empty term selects no node: drop it.
        if exprs.is_empty() && fields.is_empty() {
            return None;
        }
        let labels: Result<Vec<_>, _> = exprs.iter().map(compile_label_req).collect();
        let fields: Result<Vec<_>, _> = fields.iter().map(compile_field_req).collect();
        Some(match (labels, fields) {
            (Ok(labels), Ok(fields)) => Term::Valid { labels, fields },
            (Err(e), _) | (_, Err(e)) => Term::Invalid(e),
        })
    }

    fn matches(&self, node: &impl NodeFacts) -> bool {
        match self {
            Term::Valid { labels, fields } => {
                labels.iter().all(|r| r.matches(node))
                    // the Go helper skips field matching for a node without a name
                    && (node.name().is_empty() || fields.iter().all(|r| r.matches(node)))
            }
            Term::Invalid(_) => false,
        }
    }
}

fn compile_label_req(r: &NodeSelectorRequirement) -> Result<LabelReq, String> {
    let key = r.key.clone();
    if !is_qualified_name(&key) {
        return Err(format!("invalid label key {key:?}"));
    }
    let vals = r.values.clone().unwrap_or_default();
    if let Some(bad) = vals.iter().find(|v| !is_label_value(v)) {
        return Err(format!("invalid label value {bad:?} for key {key:?}"));
    }
    let int = |vals: &[String]| -> Result<i64, String> {
        match vals {
            [one] => one.parse::<i64>().map_err(|_| format!("{key}: {one:?} is not an integer")),
            _ => Err(format!("{key}: Gt/Lt take exactly one value")),
        }
    };
    match r.operator.as_str() {
        "In" | "NotIn" if vals.is_empty() => Err(format!("{key}: In/NotIn need at least one value")),
        "In" => Ok(LabelReq::In(key, vals)),
        "NotIn" => Ok(LabelReq::NotIn(key, vals)),
        "Exists" | "DoesNotExist" if !vals.is_empty() => Err(format!("{key}: Exists/DoesNotExist take no values")),
        "Exists" => Ok(LabelReq::Exists(key)),
        "DoesNotExist" => Ok(LabelReq::DoesNotExist(key)),
        "Gt" => Ok(LabelReq::Gt(key.clone(), int(&vals)?)),
        "Lt" => Ok(LabelReq::Lt(key.clone(), int(&vals)?)),
        other => Err(format!("unsupported operator {other:?}")),
    }
}

fn compile_field_req(r: &NodeSelectorRequirement) -> Result<FieldReq, String> {
    let value = match r.values.as_deref() {
        Some([one]) => one.clone(),
        _ => return Err(format!("matchFields {}: values must have one element", r.key)),
    };
    match r.operator.as_str() {
        "In" => Ok(FieldReq::Equal(r.key.clone(), value)),
        "NotIn" => Ok(FieldReq::NotEqual(r.key.clone(), value)),
        other => Err(format!("matchFields operator {other:?} is not supported")),
    }
}

/// `k8s.io/apimachinery` IsQualifiedName: `[prefix/]name`.
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() || !is_dns1123_subdomain(p) {
            return false;
        }
    }
    !name.is_empty() && name.len() <= 63 && is_label_name_chars(name)
}

/// `k8s.io/apimachinery` IsValidLabelValue: empty, or up to 63 characters of
/// alphanumerics, `-`, `_`, `.`, beginning and ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || (s.len() <= 63 && is_label_name_chars(s))
}

fn is_label_name_chars(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    alnum(&b[0]) && alnum(&b[b.len() - 1]) && b.iter().all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty() && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
        })
}

/// `Toleration.ToleratesTaint` from k8s.io/api.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    tolerates_parts(t, &taint.key, &taint.effect, taint.value.as_deref().unwrap_or(""))
}

/// [`tolerates`] for a taint given by its key, effect and value.
fn tolerates_parts(t: &Toleration, key: &str, effect: &str, value: &str) -> bool {
    let t_effect = t.effect.as_deref().unwrap_or("");
    if !t_effect.is_empty() && t_effect != effect {
        return false;
    }
    let t_key = t.key.as_deref().unwrap_or("");
    if !t_key.is_empty() && t_key != key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == value,
        "Exists" => true,
        _ => false,
    }
}

/// The effects the scheduler's TaintToleration filter considers.
pub fn scheduler_filters_effect(effect: &str) -> bool {
    effect == "NoSchedule" || effect == "NoExecute"
}

impl Placement {
    /// Compile from the pieces of a pod spec, merging the RuntimeClass's
    /// `scheduling` as the RuntimeClass admission plugin does. Merging is
    /// idempotent, so it is safe on pods that already went through the plugin; a
    /// conflicting nodeSelector value leaves both pairs, which no node satisfies
    /// (the plugin would have rejected such a pod).
    pub fn new(
        node_name: Option<&str>,
        node_selector: Option<&BTreeMap<String, String>>,
        affinity: Option<&Affinity>,
        tolerations: &[Toleration],
        runtime_class: Option<(&BTreeMap<String, String>, &[Toleration])>,
    ) -> Placement {
        let mut selector: Vec<(String, String)> =
            node_selector.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut tolerations = tolerations.to_vec();
        if let Some((rc_selector, rc_tolerations)) = runtime_class {
            for (k, v) in rc_selector {
                if !selector.iter().any(|(pk, pv)| pk == k && pv == v) {
                    selector.push((k.clone(), v.clone()));
                }
            }
            for t in rc_tolerations {
                if !tolerations.contains(t) {
                    tolerations.push(t.clone());
                }
            }
        }
        let required = affinity
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|ns| ns.node_selector_terms.iter().filter_map(Term::compile).collect());
        Placement {
            node_name: node_name.filter(|n| !n.is_empty()).map(str::to_owned),
            node_selector: selector,
            required,
            tolerations,
        }
    }

    /// Adds tolerations the pod will carry (admission defaults, a
    /// controller's), each once.
    pub fn tolerating(mut self, extra: Vec<Toleration>) -> Placement {
        for t in extra {
            if !self.tolerations.contains(&t) {
                self.tolerations.push(t);
            }
        }
        self
    }

    /// nodeSelector plus required node affinity (`GetRequiredNodeAffinity(pod).Match(node)`).
    pub fn affinity_matches(&self, node: &impl NodeFacts) -> bool {
        self.node_selector.iter().all(|(k, v)| node.label(k) == Some(v.as_str()))
            && self.required.as_ref().is_none_or(|terms| terms.iter().any(|t| t.matches(node)))
    }

    /// No taint with an effect accepted by `filter` is left untolerated.
    pub fn tolerates_taints(&self, taints: &[Taint], filter: impl Fn(&str) -> bool) -> bool {
        taints.iter().filter(|t| filter(&t.effect)).all(|taint| self.tolerations.iter().any(|t| tolerates(t, taint)))
    }

    /// Whether a cordoned node (`spec.unschedulable`) lets the pod through.
    pub fn tolerates_unschedulable(&self) -> bool {
        self.tolerations.iter().any(|t| tolerates_parts(t, UNSCHEDULABLE_TAINT, "NoSchedule", ""))
    }

    /// Whether the pod can run on a node with these facts.
    ///
    /// A scheduled pod passes the scheduler's filters: nodeSelector and
    /// affinity, NoSchedule and NoExecute taints, and `spec.unschedulable`
    /// unless tolerated. A pod created with `spec.nodeName` skips the
    /// scheduler: only that node counts, and the kubelet's own admission
    /// checks affinity and NoExecute taints but not NoSchedule taints or
    /// cordoning.
    pub fn admits(&self, node: &impl NodeFacts, taints: &[Taint], unschedulable: bool) -> bool {
        match &self.node_name {
            Some(name) => {
                name == node.name()
                    && self.affinity_matches(node)
                    && self.tolerates_taints(taints, |e| e == "NoExecute")
            }
            None => {
                (!unschedulable || self.tolerates_unschedulable())
                    && self.affinity_matches(node)
                    && self.tolerates_taints(taints, scheduler_filters_effect)
            }
        }
    }

    /// Whether the outcome can differ between nodes that agree on every label
    /// except `identity_keys` (names and per-node labels such as the hostname).
    /// When it cannot, one evaluation per node class stands for all its nodes.
    pub fn depends_on_node_identity(&self, identity_keys: &[String]) -> bool {
        let is_identity = |k: &str| identity_keys.iter().any(|i| i == k);
        self.node_name.is_some()
            || self.node_selector.iter().any(|(k, _)| is_identity(k))
            || self.required.iter().flatten().any(|t| match t {
                Term::Valid { labels, fields } => !fields.is_empty() || labels.iter().any(|l| is_identity(l.key())),
                Term::Invalid(_) => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N(&'static str, Vec<(&'static str, &'static str)>);
    impl NodeFacts for N {
        fn name(&self) -> &str {
            self.0
        }
        fn label(&self, key: &str) -> Option<&str> {
            self.1.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        }
    }

    fn req(key: &str, op: &str, vals: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(vals.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn placement(terms: Vec<NodeSelectorTerm>) -> Placement {
        use k8s_openapi::api::core::v1::{NodeAffinity, NodeSelector};
        let aff = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Placement::new(None, None, Some(&aff), &[], None)
    }

    fn exprs(e: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm { match_expressions: Some(e), match_fields: None }
    }

    #[test]
    fn terms_are_ored_and_expressions_anded() {
        let p = placement(vec![
            exprs(vec![req("a", "In", &["1"]), req("b", "Exists", &[])]),
            exprs(vec![req("c", "DoesNotExist", &[])]),
        ]);
        assert!(p.affinity_matches(&N("n", vec![("a", "1"), ("b", ""), ("c", "x")])));
        assert!(!p.affinity_matches(&N("n", vec![("a", "1"), ("c", "x")])));
        assert!(p.affinity_matches(&N("n", vec![])));
    }

    #[test]
    fn empty_terms_and_invalid_terms_match_nothing() {
        assert!(!placement(vec![NodeSelectorTerm::default()]).affinity_matches(&N("n", vec![])));
        let p = placement(vec![exprs(vec![req("a", "Gt", &["x"])]), exprs(vec![req("b", "Exists", &[])])]);
        assert!(!p.affinity_matches(&N("n", vec![("a", "5")])));
        assert!(p.affinity_matches(&N("n", vec![("b", "5")])));
    }

    #[test]
    fn gt_lt_and_not_in() {
        let p = placement(vec![exprs(vec![req("cpu", "Gt", &["4"]), req("cpu", "Lt", &["64"])])]);
        assert!(p.affinity_matches(&N("n", vec![("cpu", "8")])));
        assert!(!p.affinity_matches(&N("n", vec![("cpu", "4")])));
        assert!(!p.affinity_matches(&N("n", vec![("cpu", "eight")])));
        let p = placement(vec![exprs(vec![req("zone", "NotIn", &["a"])])]);
        assert!(p.affinity_matches(&N("n", vec![])));
        assert!(!p.affinity_matches(&N("n", vec![("zone", "a")])));
    }

    #[test]
    fn match_fields_on_name() {
        let p = placement(vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        }]);
        assert!(p.affinity_matches(&N("n1", vec![])));
        assert!(!p.affinity_matches(&N("n2", vec![])));
        assert!(p.depends_on_node_identity(&[]));
    }

    #[test]
    fn taints_and_tolerations() {
        let taint = |k: &str, v: &str, e: &str| Taint {
            key: k.into(),
            value: Some(v.into()),
            effect: e.into(),
            time_added: None,
        };
        let tol = |k: &str, op: &str, v: &str, e: &str| Toleration {
            key: Some(k.into()),
            operator: Some(op.into()),
            value: Some(v.into()),
            effect: Some(e.into()),
            toleration_seconds: None,
        };
        let taints = [taint("sysbox-runtime", "not-running", "NoSchedule"), taint("x", "y", "PreferNoSchedule")];
        let mut p = Placement::default();
        assert!(!p.admits(&N("n", vec![]), &taints, false));
        p.tolerations = vec![tol("sysbox-runtime", "Equal", "not-running", "")];
        assert!(p.admits(&N("n", vec![]), &taints, false));
        assert!(!p.admits(&N("n", vec![]), &taints, true), "cordoned");
        p.tolerations = vec![tol("", "Exists", "", "")];
        assert!(p.admits(&N("n", vec![]), &taints, true), "empty key Exists tolerates everything");
    }

    #[test]
    fn node_name_skips_scheduler_filters_but_not_no_execute() {
        let p = Placement { node_name: Some("n1".into()), ..Default::default() };
        let no_sched = [Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }];
        let no_exec = [Taint { key: "k".into(), effect: "NoExecute".into(), ..Default::default() }];
        assert!(p.admits(&N("n1", vec![]), &no_sched, true));
        assert!(!p.admits(&N("n1", vec![]), &no_exec, false));
        assert!(!p.admits(&N("n2", vec![]), &[], false));
    }

    #[test]
    fn runtime_class_scheduling_merges_idempotently() {
        let rc_sel: BTreeMap<String, String> = [("sysbox-runtime".to_string(), "running".to_string())].into();
        let pod_sel = rc_sel.clone();
        let p = Placement::new(None, Some(&pod_sel), None, &[], Some((&rc_sel, &[])));
        assert_eq!(p.node_selector.len(), 1);
        assert!(p.affinity_matches(&N("n", vec![("sysbox-runtime", "running")])));
        assert!(!p.affinity_matches(&N("n", vec![("sysbox-runtime", "installing")])));
    }

    #[test]
    fn label_syntax() {
        assert!(is_qualified_name("sysbox-ro.dev/relaxed-read-only"));
        assert!(is_qualified_name("a"));
        assert!(!is_qualified_name("/a"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(!is_qualified_name("Upper.Case/x"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-5"));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
