//! Future capacity: nodes that do not exist yet but will be created for a pod
//! that needs them. Two sources:
//!
//! - Karpenter `NodePool`s (`karpenter.sh/v1`): a class of possible nodes with
//!   the template's labels, requirements and taints, judged as Karpenter's
//!   provisioner judges a pending pod (`super::requirements`); a NodePool
//!   that is not Ready, is being deleted, is static (`spec.replicas`) or has
//!   reached its `spec.limits` provides nothing new, and is reported as such.
//! - Node groups that scale from zero (the cluster autoscaler on GKE, EKS,
//!   AKS), which the API does not show: operators declare them, with the
//!   labels and taints their nodes will carry, in the ConfigMap
//!   `NodePolicy::node_groups` (key [`NODE_GROUPS_KEY`]).
//!
//! The flag of a possible node is its template's flag label; without one,
//! the sysbox-mgr ConfigMap's intent, as for an unlabelled node.
//! `docs/future-capacity.md` has the model and the Karpenter facts it rests on.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Taint};
use serde::Deserialize;
use serde_json::Value;

use super::pools::FlagLabel;
use super::requirements::{self, compatible, Requirement, Requirements};
use super::scheduling::{scheduler_filters_effect, FieldReq, Placement, Term};
use crate::policy::NodePolicy;

/// The ConfigMap key that holds the declared node groups (YAML or JSON).
pub const NODE_GROUPS_KEY: &str = "node-groups.yaml";

/// The most node groups one ConfigMap may declare, and the most labels or
/// taints one may carry: a declaration is read per request, so it is bounded.
pub const MAX_NODE_GROUPS: usize = 256;
pub const MAX_GROUP_ITEMS: usize = 100;

/// The most NodePools the view judges a pod against; more are passed over
/// with a note (Karpenter clusters have a handful).
pub const MAX_NODE_POOLS: usize = 1000;

/// A value no label can have (label values are at most 63 alphanumerics, `-`,
/// `_`, `.`): the hostname of a node not yet created, which no pod can select.
const NEW_HOSTNAME: &str = "<not yet created>";

/// Where a possible pool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A Karpenter NodePool.
    NodePool,
    /// A node group declared in the node-groups ConfigMap.
    NodeGroup,
}

/// A class of nodes that may be created for a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PossiblePool {
    pub origin: Origin,
    pub name: String,
    /// What the nodes may carry: template labels (one value each) and requirements.
    requirements: Requirements,
    /// `NoSchedule` and `NoExecute` taints the nodes will carry (not startup taints).
    taints: Vec<Taint>,
    /// What the template says of the flag label.
    pub flag: FlagLabel,
    /// Why the pool provides no new node now: at its limits, not ready, deleting, static.
    pub unavailable: Option<String>,
}

impl std::fmt::Display for PossiblePool {
    /// "NodePool ci-relaxed", "node group ci-relaxed".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.origin {
            Origin::NodePool => write!(f, "NodePool {}", self.name),
            Origin::NodeGroup => write!(f, "node group {}", self.name),
        }
    }
}

impl PossiblePool {
    /// Whether a pod with this placement could land on a node this pool
    /// creates. A pod pinned with `nodeName` never waits for a new node.
    pub fn admits(&self, placement: &Placement) -> bool {
        self.admits_pod(placement, &PodRequirements::of(placement))
    }

    /// [`Self::admits`] with the pod's requirements built beforehand
    /// ([`PodRequirements::of`] the same placement): built once per pod, not
    /// once per pool.
    pub fn admits_pod(&self, placement: &Placement, pod: &PodRequirements) -> bool {
        if placement.node_name.is_some() {
            return false;
        }
        // Taints: the pod must tolerate every taint the new node will carry.
        if !placement.tolerates_taints(&self.taints, scheduler_filters_effect) {
            return false;
        }
        let well_known = match self.origin {
            Origin::NodePool => requirements::karpenter_well_known,
            Origin::NodeGroup => requirements::node_well_known,
        };
        match pod {
            PodRequirements::Selector(base) => compatible(&self.requirements, base, well_known).is_ok(),
            // Karpenter tries the first term, then the next when it cannot
            // provision (`removeRequiredNodeAffinityTerm`): any term may do.
            PodRequirements::Terms(terms) => {
                terms.iter().flatten().any(|pod| compatible(&self.requirements, pod, well_known).is_ok())
            }
        }
    }

    /// A pool from what its nodes will carry.
    fn new(
        origin: Origin,
        name: String,
        mut requirements: Requirements,
        taints: Vec<Taint>,
        policy: &NodePolicy,
    ) -> PossiblePool {
        requirements.add("kubernetes.io/hostname", Requirement::one_of([NEW_HOSTNAME]));
        let flag = match requirements.get(&policy.flag_label).map(|r| (r.single_value(), r)) {
            Some((Some("true"), _)) => FlagLabel::True,
            Some((Some("false"), _)) => FlagLabel::False,
            Some((Some(other), _)) => FlagLabel::Invalid(other.to_owned()),
            // absent, or several values possible: nothing says which a node gets
            Some((None, _)) | None => FlagLabel::Absent,
        };
        let taints = taints.into_iter().filter(|t| scheduler_filters_effect(&t.effect)).collect();
        PossiblePool { origin, name, requirements, taints, flag, unavailable: None }
    }
}

/// What a pod asks of a node's labels, in Karpenter's terms: its
/// nodeSelector, alone or with each term of its required node affinity.
#[derive(Debug, Clone, PartialEq)]
pub enum PodRequirements {
    /// No required node affinity: the nodeSelector alone.
    Selector(Requirements),
    /// The nodeSelector with each term; `None` for a term no new node can
    /// satisfy (unparsable, or naming a node by `matchFields`).
    Terms(Vec<Option<Requirements>>),
}

impl PodRequirements {
    pub fn of(placement: &Placement) -> PodRequirements {
        let mut base = Requirements::default();
        for (k, v) in &placement.node_selector {
            base.add(k, Requirement::one_of([v.as_str()]));
        }
        let Some(terms) = &placement.required else { return PodRequirements::Selector(base) };
        PodRequirements::Terms(
            terms
                .iter()
                .map(|term| {
                    let Term::Valid { labels, fields } = term else { return None };
                    // A new node's name is not known: a term naming it cannot hold.
                    if fields.iter().any(|f| matches!(f, FieldReq::Equal(..))) {
                        return None;
                    }
                    let mut pod = base.clone();
                    labels.iter().for_each(|l| pod.add(l.key(), Requirement::from_label_req(l)));
                    Some(pod)
                })
                .collect(),
        )
    }
}

/// The possible pools of a cluster, and what was passed over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capacity {
    /// Sorted by origin and name.
    pub pools: Vec<PossiblePool>,
    /// NodePools or declarations that could not be read, and why.
    pub notes: Vec<String>,
}

impl Capacity {
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// From NodePool objects (as JSON) and the node-groups ConfigMap.
    pub fn build<'a>(
        node_pools: impl IntoIterator<Item = &'a Value>,
        node_groups: Option<&ConfigMap>,
        policy: &NodePolicy,
    ) -> Capacity {
        let mut c = Capacity::default();
        let mut passed_over = 0usize;
        for np in node_pools {
            if c.pools.len() >= MAX_NODE_POOLS {
                passed_over += 1;
                continue;
            }
            match node_pool(np, policy) {
                Ok(p) => c.pools.push(p),
                Err(e) => c.notes.push(e),
            }
        }
        if passed_over > 0 {
            c.notes.push(format!("{passed_over} NodePools passed over: at most {MAX_NODE_POOLS} are judged"));
        }
        if let Some(cm) = node_groups {
            match declared_groups(cm, policy) {
                Ok(groups) => c.pools.extend(groups),
                Err(e) => c.notes.push(e),
            }
        }
        c.pools.sort_by(|a, b| (a.origin, &a.name).cmp(&(b.origin, &b.name)));
        c
    }
}

// ---- Karpenter NodePools ----------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodePoolObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: NodePoolSpec,
    #[serde(default)]
    status: Option<NodePoolStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    deletion_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodePoolSpec {
    #[serde(default)]
    template: Template,
    #[serde(default)]
    limits: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    replicas: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Template {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: TemplateSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateSpec {
    #[serde(default)]
    requirements: Vec<NodePoolRequirement>,
    #[serde(default)]
    taints: Vec<Taint>,
    #[serde(default)]
    node_class_ref: Option<NodeClassRef>,
}

#[derive(Debug, Default, Deserialize)]
struct NodeClassRef {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct NodePoolRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct NodePoolStatus {
    #[serde(default)]
    resources: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    conditions: Option<Vec<Condition>>,
}

#[derive(Debug, Default, Deserialize)]
struct Condition {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    status: String,
}

/// Checks that a NodePool object has the shape the view reads (for a
/// snapshot, where a malformed object is an error).
pub fn check_node_pool(object: &Value) -> Result<(), serde_json::Error> {
    NodePoolObject::deserialize(object).map(|_| ())
}

/// A NodePool as a possible pool (`NewNodeClaimTemplate`: the template's
/// requirements, its labels, `karpenter.sh/nodepool` and the node class label).
pub fn node_pool(object: &Value, policy: &NodePolicy) -> Result<PossiblePool, String> {
    let np = NodePoolObject::deserialize(object).map_err(|e| format!("NodePool: {e}"))?;
    let name = np.metadata.name.clone().unwrap_or_default();
    let fail = |why: String| format!("NodePool {name} ignored: {why}");
    let spec = &np.spec.template.spec;
    let labels = np.spec.template.metadata.labels.as_ref().map_or(0, BTreeMap::len);
    if spec.requirements.len() > MAX_GROUP_ITEMS || labels > MAX_GROUP_ITEMS || spec.taints.len() > MAX_GROUP_ITEMS {
        return Err(fail(format!("more than {MAX_GROUP_ITEMS} requirements, labels or taints")));
    }
    let mut reqs = Requirements::default();
    for r in &spec.requirements {
        reqs.add(&r.key, Requirement::parse(&r.operator, &r.values).map_err(|e| fail(format!("{}: {e}", r.key)))?);
    }
    for (k, v) in np.spec.template.metadata.labels.iter().flatten() {
        reqs.add(k, Requirement::one_of([v.as_str()]));
    }
    reqs.add("karpenter.sh/nodepool", Requirement::one_of([name.as_str()]));
    if let Some(r) = &spec.node_class_ref {
        if !r.group.is_empty() && !r.kind.is_empty() {
            reqs.add(&format!("{}/{}", r.group, r.kind.to_ascii_lowercase()), Requirement::one_of([r.name.as_str()]));
        }
    }
    // Karpenter simulates these for DaemonSets; its nodes carry them once registered.
    reqs.add("karpenter.sh/registered", Requirement::one_of(["true"]));
    reqs.add("karpenter.sh/initialized", Requirement::one_of(["true"]));
    let mut pool = PossiblePool::new(Origin::NodePool, name, reqs, spec.taints.clone(), policy);
    pool.unavailable = unavailable(&np);
    Ok(pool)
}

/// Why the provisioner will not create a node from this NodePool now
/// (`provisioner.go`, `NewScheduler`: static, not Ready, deleting; limits:
/// `Limits.ExceededBy` and `filterByRemainingResources`).
fn unavailable(np: &NodePoolObject) -> Option<String> {
    if np.metadata.deletion_timestamp.is_some() {
        return Some("being deleted".into());
    }
    if np.spec.replicas.is_some() {
        return Some("static (spec.replicas): it keeps a fixed number of nodes and adds none for pending pods".into());
    }
    let ready =
        np.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => {}
        Some(c) => return Some(format!("not Ready (status {:?})", c.status)),
        None => return Some("not Ready (no Ready condition yet)".into()),
    }
    let limits = np.spec.limits.as_ref()?;
    let used = np.status.as_ref().and_then(|s| s.resources.as_ref());
    for (resource, limit) in limits {
        let Some(limit) = quantity_of(limit) else { continue };
        let usage = used.and_then(|u| u.get(resource)).and_then(quantity_of).unwrap_or(0);
        // Usage over the limit stops every launch; usage at the limit leaves no
        // room for any instance, since every node has some CPU, memory, pods,
        // ephemeral storage, and counts as one node.
        let every_node_has = matches!(resource.as_str(), "cpu" | "memory" | "pods" | "ephemeral-storage" | "nodes");
        if usage > limit || (usage >= limit && every_node_has) {
            let show = |q: &Value| q.as_str().map(str::to_owned).unwrap_or_else(|| q.to_string());
            let usage_text = used.and_then(|u| u.get(resource)).map(show).unwrap_or_else(|| "0".into());
            let limit_text = limits.get(resource).map(show).unwrap_or_default();
            return Some(format!("at its limit: {resource} {usage_text} of {limit_text}"));
        }
    }
    None
}

fn quantity_of(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_i64().map(|n| i128::from(n) * NANO),
        _ => None,
    }
}

const NANO: i128 = 1_000_000_000;

/// A Kubernetes resource quantity in billionths, rounded up
/// (`k8s.io/apimachinery/pkg/api/resource`: sign, decimal digits with an
/// optional fraction, then a binary suffix `Ki`..`Ei`, a decimal suffix
/// `n`, `u`, `m`, `k`, `M`..`E`, or an exponent `e`/`E`). `None` for what
/// the apiserver would not accept, or beyond ±10^26.
pub fn parse_quantity(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    // mantissa × 10^exp10 × 2^exp2
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e if e.starts_with(['e', 'E']) => (e[1..].parse::<i32>().ok().filter(|x| x.abs() <= 30)?, 0),
        _ => return None,
    };
    let digits: String = format!("{int}{frac}");
    if digits.len() > 30 {
        return None;
    }
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    // value in nanos = mantissa × 10^(exp10 - frac.len() + 9) × 2^exp2
    let scale = exp10 - frac.len() as i32 + 9;
    let mut v = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if scale >= 0 {
        v = v.checked_mul(10i128.checked_pow(scale as u32)?)?;
    } else {
        let d = 10i128.checked_pow((-scale) as u32)?;
        v = (v + d - 1) / d; // round up, as the apiserver does
    }
    if v > 10i128.pow(35) {
        return None;
    }
    Some(if negative { -v } else { v })
}

// ---- Declared node groups -----------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Declaration {
    #[serde(default)]
    node_groups: Vec<DeclaredGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeclaredGroup {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    taints: Vec<Taint>,
}

/// The node groups declared in the ConfigMap, each a class of nodes with
/// exactly the declared labels (plus the well-known ones the cloud sets) and taints.
pub fn declared_groups(cm: &ConfigMap, policy: &NodePolicy) -> Result<Vec<PossiblePool>, String> {
    let at = format!("ConfigMap {}/{}", policy.mgr_config.namespace, policy.node_groups);
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(NODE_GROUPS_KEY)) else {
        return Err(format!("{at}: no key {NODE_GROUPS_KEY}; no node group declared"));
    };
    let value = crate::manifest::yaml::from_str(text).map_err(|e| format!("{at} {NODE_GROUPS_KEY}: {e}"))?;
    let decl = Declaration::deserialize(&value).map_err(|e| format!("{at} {NODE_GROUPS_KEY}: {e}"))?;
    if decl.node_groups.len() > MAX_NODE_GROUPS {
        return Err(format!("{at}: more than {MAX_NODE_GROUPS} node groups"));
    }
    let mut out: Vec<PossiblePool> = Vec::with_capacity(decl.node_groups.len());
    for g in decl.node_groups {
        if g.name.is_empty() || out.iter().any(|p| p.name == g.name) {
            return Err(format!("{at}: node group names must be present and distinct ({:?})", g.name));
        }
        if g.labels.len() > MAX_GROUP_ITEMS || g.taints.len() > MAX_GROUP_ITEMS {
            return Err(format!("{at}: node group {} has more than {MAX_GROUP_ITEMS} labels or taints", g.name));
        }
        let mut reqs = Requirements::default();
        for (k, v) in &g.labels {
            reqs.add(k, Requirement::one_of([v.as_str()]));
        }
        out.push(PossiblePool::new(Origin::NodeGroup, g.name, reqs, g.taints, policy));
    }
    Ok(out)
}

/// Whether a ConfigMap is the node-groups declaration.
pub fn is_node_groups(cm: &ConfigMap, policy: &NodePolicy) -> bool {
    cm.metadata.namespace.as_deref() == Some(policy.mgr_config.namespace.as_str())
        && cm.metadata.name.as_deref() == Some(policy.node_groups.as_str())
}

/// Keeps only what [`node_pool`] reads of a NodePool, so the live view's
/// memory does not grow with fields it never looks at.
pub fn slim_node_pool(object: &mut Value) {
    let Some(o) = object.as_object_mut() else { return };
    o.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status"));
    if let Some(Value::Object(meta)) = o.get_mut("metadata") {
        meta.retain(|k, _| matches!(k.as_str(), "name" | "deletionTimestamp" | "resourceVersion" | "uid"));
    }
    if let Some(Value::Object(spec)) = o.get_mut("spec") {
        spec.retain(|k, _| matches!(k.as_str(), "template" | "limits" | "replicas"));
    }
    if let Some(Value::Object(status)) = o.get_mut("status") {
        status.retain(|k, _| matches!(k.as_str(), "resources" | "conditions"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Affinity, Toleration};
    use serde_json::json;

    fn policy() -> NodePolicy {
        NodePolicy::default()
    }

    fn ready() -> Value {
        json!({"conditions": [{"type": "Ready", "status": "True"}]})
    }

    fn np(name: &str, spec: Value) -> PossiblePool {
        node_pool(&json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec, "status": ready()}), &policy()).unwrap()
    }

    fn placement(selector: &[(&str, &str)], affinity: Option<Value>, tolerations: Value) -> Placement {
        let selector: BTreeMap<String, String> = selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let affinity: Option<Affinity> = affinity.map(|a| serde_json::from_value(a).unwrap());
        let tolerations: Vec<Toleration> = serde_json::from_value(tolerations).unwrap();
        Placement::new(None, Some(&selector), affinity.as_ref(), &tolerations, None)
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1000"), Some(1000 * NANO));
        assert_eq!(parse_quantity("500m"), Some(NANO / 2));
        assert_eq!(parse_quantity("1Gi"), Some((1 << 30) * NANO));
        assert_eq!(parse_quantity("1.5k"), Some(1500 * NANO));
        assert_eq!(parse_quantity("1e3"), Some(1000 * NANO));
        assert_eq!(parse_quantity("1n"), Some(1));
        assert_eq!(parse_quantity("0.1n"), Some(1)); // rounded up
        assert!(parse_quantity("1Gi") > parse_quantity("1G"));
        for bad in ["", "Gi", "1.2.3", "1X", "1e99", "--1", &"9".repeat(70)] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn template_labels_requirements_and_flag() {
        let p = np(
            "ci-relaxed",
            json!({"template": {"metadata": {"labels": {"sysbox-ro.dev/relaxed-read-only": "true", "team": "ci"}},
                    "spec": {"requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}}}),
        );
        assert_eq!(p.flag, FlagLabel::True);
        assert_eq!(p.unavailable, None);
        assert_eq!(p.to_string(), "NodePool ci-relaxed");
        assert!(p.admits(&placement(&[], None, json!([]))));
        assert!(p.admits(&placement(&[("team", "ci")], None, json!([]))));
        assert!(!p.admits(&placement(&[("team", "web")], None, json!([]))));
        assert!(p.admits(&placement(&[("kubernetes.io/arch", "arm64")], None, json!([]))));
        assert!(!p.admits(&placement(&[("kubernetes.io/arch", "s390x")], None, json!([]))));
        assert!(p.admits(&placement(&[("karpenter.sh/nodepool", "ci-relaxed")], None, json!([]))));
        assert!(!p.admits(&placement(&[("karpenter.sh/nodepool", "other")], None, json!([]))));
        // a new node's hostname cannot be selected
        assert!(!p.admits(&placement(&[("kubernetes.io/hostname", "node-1")], None, json!([]))));
        // the flag as a single-valued requirement counts; several values do not decide
        let p = np(
            "x",
            json!({"template": {"spec": {"requirements": [{"key": "sysbox-ro.dev/relaxed-read-only", "operator": "In", "values": ["false"]}]}}}),
        );
        assert_eq!(p.flag, FlagLabel::False);
        let p = np(
            "x",
            json!({"template": {"spec": {"requirements": [{"key": "sysbox-ro.dev/relaxed-read-only", "operator": "In", "values": ["true", "false"]}]}}}),
        );
        assert_eq!(p.flag, FlagLabel::Absent);
    }

    #[test]
    fn taints_but_not_startup_taints() {
        let p = np(
            "gpu",
            json!({"template": {"spec": {
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, {"key": "soft", "effect": "PreferNoSchedule"}],
                "startupTaints": [{"key": "agent-not-ready", "effect": "NoSchedule"}]}}}),
        );
        assert!(!p.admits(&placement(&[], None, json!([]))));
        let tolerant = json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
        assert!(p.admits(&placement(&[], None, tolerant)));
    }

    #[test]
    fn affinity_terms_any_may_do_and_names_never_match() {
        let p = np("ci", json!({"template": {"metadata": {"labels": {"team": "ci"}}}}));
        let terms = |t: Value| {
            Some(json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": t}}}))
        };
        let web = json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["web"]}]});
        let ci = json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["ci", "x"]}]});
        assert!(!p.admits(&placement(&[], terms(json!([web])), json!([]))));
        assert!(p.admits(&placement(&[], terms(json!([web, ci])), json!([]))));
        let named = json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]});
        assert!(!p.admits(&placement(&[], terms(json!([named])), json!([]))));
        let not_named = json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-1"]}]});
        assert!(p.admits(&placement(&[], terms(json!([not_named])), json!([]))));
        // a pinned pod never waits for a new node
        let mut pinned = placement(&[], None, json!([]));
        pinned.node_name = Some("node-1".into());
        assert!(!p.admits(&pinned));
    }

    #[test]
    fn unavailable_pools_say_why() {
        let limited = |usage: Value| {
            node_pool(
                &json!({"metadata": {"name": "ci"}, "spec": {"limits": {"cpu": "100", "nvidia.com/gpu": "2"}},
                        "status": {"resources": usage, "conditions": [{"type": "Ready", "status": "True"}]}}),
                &policy(),
            )
            .unwrap()
            .unavailable
        };
        assert_eq!(limited(json!({"cpu": "96"})), None);
        assert_eq!(limited(json!({"cpu": "100"})).as_deref(), Some("at its limit: cpu 100 of 100"));
        assert_eq!(limited(json!({"cpu": "100500m"})).as_deref(), Some("at its limit: cpu 100500m of 100"));
        // a GPU limit reached still leaves room for nodes without GPUs
        assert_eq!(limited(json!({"cpu": "4", "nvidia.com/gpu": "2"})), None);
        assert!(limited(json!({"nvidia.com/gpu": "3"})).is_some());
        let not_ready = node_pool(&json!({"metadata": {"name": "x"}, "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}), &policy()).unwrap();
        assert_eq!(not_ready.unavailable.as_deref(), Some("not Ready (status \"False\")"));
        let fresh = node_pool(&json!({"metadata": {"name": "x"}, "spec": {}}), &policy()).unwrap();
        assert!(fresh.unavailable.is_some());
        let stat =
            node_pool(&json!({"metadata": {"name": "x"}, "spec": {"replicas": 3}, "status": ready()}), &policy())
                .unwrap();
        assert!(stat.unavailable.unwrap().starts_with("static"));
        let bad = node_pool(
            &json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"requirements": [{"key": "a", "operator": "Near"}]}}}}),
            &policy(),
        );
        assert!(bad.unwrap_err().contains("NodePool x ignored"));
    }

    #[test]
    fn nodepools_are_bounded() {
        let many: Vec<Value> = (0..=MAX_NODE_POOLS).map(|i| json!({"metadata": {"name": format!("p{i}")}})).collect();
        let c = Capacity::build(&many, None, &policy());
        assert_eq!(c.pools.len(), MAX_NODE_POOLS);
        assert_eq!(c.notes, vec![format!("1 NodePools passed over: at most {MAX_NODE_POOLS} are judged")]);
        let labels: serde_json::Map<String, Value> =
            (0..=MAX_GROUP_ITEMS).map(|i| (format!("l{i}"), json!("x"))).collect();
        let big = json!({"metadata": {"name": "big"}, "spec": {"template": {"metadata": {"labels": labels}}}});
        assert!(node_pool(&big, &policy()).unwrap_err().contains("more than"));
    }

    #[test]
    fn declared_groups_are_read_and_bounded() {
        let cm = |text: &str| ConfigMap {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some("kube-system".into()),
                name: Some("sysbox-ro-node-groups".into()),
                ..Default::default()
            },
            data: Some([(NODE_GROUPS_KEY.to_owned(), text.to_owned())].into()),
            ..Default::default()
        };
        let groups = declared_groups(
            &cm("nodeGroups:\n- name: ci-relaxed\n  labels: {eks.amazonaws.com/nodegroup: ci-relaxed, sysbox-ro.dev/relaxed-read-only: \"true\"}\n  taints: [{key: sysbox, value: only, effect: NoSchedule}]\n"),
            &policy(),
        )
        .unwrap();
        assert!(is_node_groups(&cm(""), &policy()));
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!((g.to_string().as_str(), &g.flag), ("node group ci-relaxed", &FlagLabel::True));
        let tolerant = json!([{"key": "sysbox", "operator": "Exists"}]);
        assert!(!g.admits(&placement(&[], None, json!([]))));
        assert!(g.admits(&placement(&[("eks.amazonaws.com/nodegroup", "ci-relaxed")], None, tolerant.clone())));
        // zone is set by the cloud: any value may come
        assert!(g.admits(&placement(&[("topology.kubernetes.io/zone", "eu-west-1a")], None, tolerant.clone())));
        // a custom label the group does not carry
        assert!(!g.admits(&placement(&[("team", "ci")], None, tolerant)));
        assert!(declared_groups(&cm("nodeGroups: [{name: a}, {name: a}]"), &policy()).is_err());
        assert!(declared_groups(&cm("nodeGroups: [{name: a, flavour: x}]"), &policy()).is_err());
        assert!(declared_groups(&cm("[: nope"), &policy()).is_err());
        let many = format!(
            "nodeGroups: [{}]",
            (0..=MAX_NODE_GROUPS).map(|i| format!("{{name: g{i}}}")).collect::<Vec<_>>().join(",")
        );
        assert!(declared_groups(&cm(&many), &policy()).unwrap_err().contains("more than"));
    }
}
