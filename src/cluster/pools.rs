//! Nodes grouped for the hot path. Nodes that agree on every label except the
//! per-node ones (hostname), on their scheduling taints and on cordoning form
//! one class; a pod is judged once per class, so the cost of a decision grows
//! with the number of distinct node shapes (pools × zones × ...), not with the
//! number of nodes. Built on watch events or snapshot load, never per request.
//!
//! For the common placements (nodeSelector, required affinity on labels other
//! than the per-node ones, tolerations) the classes are not even visited one
//! by one: an inverted index from label values to sets of classes, and the
//! classes grouped by their taints, answer for all classes at once with a few
//! bitwise operations, and only the admitted classes are tallied. Placements
//! that name nodes (`nodeName`, `matchFields`, hostname) are judged node by
//! node, with the same filters.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Taint};

use super::scheduling::{scheduler_filters_effect, LabelReq, NodeFacts, Placement, Term};
use crate::policy::NodePolicy;

/// What a node's flag label says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FlagLabel {
    Absent,
    True,
    False,
    /// Present with a value other than `"true"`/`"false"`: treated as absent.
    Invalid(String),
}

/// Where a pool gets its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoolId {
    /// The value of the first pool label present, and that label's key.
    Labelled { key: String, value: String },
    /// A node with no pool label is its own pool.
    Node(String),
}

impl PoolId {
    /// Appends the name [`Display`](std::fmt::Display) writes, without the
    /// formatting machinery: a message names several pools per decision.
    pub fn push_name(&self, out: &mut String) {
        match self {
            PoolId::Labelled { value, .. } => out.push_str(value),
            PoolId::Node(name) => {
                out.push_str("node/");
                out.push_str(name);
            }
        }
    }

    /// The name, as [`PoolId::push_name`] writes it.
    pub fn name(&self) -> String {
        let mut out = String::with_capacity(self.name_len());
        self.push_name(&mut out);
        out
    }

    fn name_len(&self) -> usize {
        match self {
            PoolId::Labelled { value, .. } => value.len(),
            PoolId::Node(name) => "node/".len() + name.len(),
        }
    }
}

impl std::fmt::Display for PoolId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolId::Labelled { value, .. } => f.write_str(value),
            PoolId::Node(name) => write!(f, "node/{name}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Per-node label values (hostname...), layered over the class labels.
    pub identity: Vec<(String, String)>,
    /// The member's pool: its position in [`NodeIndex::pools`].
    pub pool: usize,
}

#[derive(Debug, Clone)]
pub struct NodeClass {
    /// Labels shared by all members (identity labels removed).
    pub labels: BTreeMap<String, String>,
    /// NoSchedule and NoExecute taints, without `timeAdded`.
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub pool_key: Option<(String, String)>,
    pub flag: FlagLabel,
    pub members: Vec<Member>,
}

struct ClassNode<'a> {
    class: &'a NodeClass,
    member: Option<&'a Member>,
}

impl NodeFacts for ClassNode<'_> {
    fn name(&self) -> &str {
        self.member.map_or("", |m| m.name.as_str())
    }
    fn label(&self, key: &str) -> Option<&str> {
        if let Some(m) = self.member {
            if let Some((_, v)) = m.identity.iter().find(|(k, _)| k == key) {
                return Some(v);
            }
        }
        self.class.labels.get(key).map(String::as_str)
    }
}

/// The label sysbox-deploy-k8s sets on nodes where it installed CRI-O.
pub const CRIO_LABEL: (&str, &str) = ("crio-runtime", "running");

impl NodeClass {
    /// Whether the class's nodes run CRI-O (`crio-runtime=running`).
    pub fn is_crio(&self) -> bool {
        self.labels.get(CRIO_LABEL.0).map(String::as_str) == Some(CRIO_LABEL.1)
    }

    pub fn pool_of(&self, member: &Member) -> PoolId {
        match &self.pool_key {
            Some((key, value)) => PoolId::Labelled { key: key.clone(), value: value.clone() },
            None => PoolId::Node(member.name.clone()),
        }
    }
}

type ClassKey = (BTreeMap<String, String>, Vec<(String, Option<String>, String)>, bool);

/// A set of classes, by position in [`NodeIndex::classes`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(Vec<u64>);

impl ClassSet {
    fn empty(len: usize) -> ClassSet {
        ClassSet(vec![0; len.div_ceil(64)])
    }
    fn full(len: usize) -> ClassSet {
        let mut s = ClassSet::empty(len);
        (0..len).for_each(|i| s.insert(i));
        s
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn and(&mut self, other: &ClassSet) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
    }
    fn or(&mut self, other: &ClassSet) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a |= b);
    }
    /// `all` minus `self`.
    fn complement(mut self, all: &ClassSet) -> ClassSet {
        self.0.iter_mut().zip(&all.0).for_each(|(a, b)| *a = !*a & b);
        self
    }
    fn clear(&mut self) {
        self.0.iter_mut().for_each(|w| *w = 0);
    }
    /// How many of the positions `range` are in the set: a few masked
    /// popcounts, however many positions.
    pub fn count_in(&self, range: std::ops::Range<usize>) -> usize {
        let (start, end) = (range.start, range.end);
        if start >= end {
            return 0;
        }
        let (first, last) = (start / 64, (end - 1) / 64);
        (first..=last)
            .map(|w| {
                let mut word = self.0.get(w).copied().unwrap_or(0);
                if w == first {
                    word &= u64::MAX << (start % 64);
                }
                if w == last && end % 64 != 0 {
                    word &= u64::MAX >> (64 - end % 64);
                }
                word.count_ones() as usize
            })
            .sum()
    }
    /// The positions in `range` that are (`present`) or are not in the set, in order.
    pub fn iter_in(&self, range: std::ops::Range<usize>, present: bool) -> impl Iterator<Item = usize> + '_ {
        range.filter(move |&i| (self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)) == present)
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + i
                })
            })
        })
    }
}

/// Phase 1, node by node: nodes that agree on every label but the identity
/// labels, on their scheduling taints and on cordoning form one class. A
/// node is grouped as it arrives and need not be kept: a snapshot of tens of
/// thousands of nodes costs its classes and members, not its objects.
#[derive(Debug, Default)]
pub struct Grouping {
    classes: Vec<NodeClass>,
    by_key: HashMap<ClassKey, usize>,
    node_count: usize,
}

impl Grouping {
    /// Adds one node to its class (a node without a name is passed over).
    pub fn add(&mut self, node: &Node, policy: &NodePolicy) {
        let Some(name) = node.metadata.name.clone() else { return };
        self.node_count += 1;
        let mut labels = node.metadata.labels.clone().unwrap_or_default();
        let identity: Vec<(String, String)> =
            policy.identity_labels.iter().filter_map(|k| labels.remove_entry(k)).collect();
        let spec = node.spec.as_ref();
        let mut taints: Vec<Taint> = spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| scheduler_filters_effect(&t.effect))
            .map(|t| Taint { time_added: None, ..t.clone() })
            .collect();
        taints.sort_by(|a, b| (&a.key, &a.value, &a.effect).cmp(&(&b.key, &b.value, &b.effect)));
        let unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let key: ClassKey = (
            labels,
            taints.iter().map(|t| (t.key.clone(), t.value.clone(), t.effect.clone())).collect(),
            unschedulable,
        );
        let member = Member { name, identity, pool: 0 };
        if let Some(&i) = self.by_key.get(&key) {
            self.classes[i].members.push(member);
            return;
        }
        let labels = key.0.clone();
        let pool_key = policy.pool_labels.iter().find_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())));
        let flag = match labels.get(&policy.flag_label).map(String::as_str) {
            None => FlagLabel::Absent,
            Some("true") => FlagLabel::True,
            Some("false") => FlagLabel::False,
            Some(other) => FlagLabel::Invalid(other.to_owned()),
        };
        self.by_key.insert(key, self.classes.len());
        self.classes.push(NodeClass { labels, taints, unschedulable, pool_key, flag, members: vec![member] });
    }

    /// Nodes added so far.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Phases 2 and 3: the index of the nodes added.
    pub fn into_index(self, policy: &NodePolicy) -> NodeIndex {
        let Grouping { mut classes, node_count, .. } = self;
        classes.iter_mut().for_each(|c| c.members.shrink_to_fit());
        let pools = number_pools(&mut classes);
        let (labels, taint_groups) = index_classes(&classes);
        let all = ClassSet::full(classes.len());
        NodeIndex {
            classes,
            pools,
            identity_labels: policy.identity_labels.clone(),
            node_count,
            labels,
            taint_groups,
            all,
        }
    }
}

/// Phase 2: every pool, sorted; each member gets its pool's position, and
/// the classes are sorted by pool so that one pool's classes are adjacent.
fn number_pools(classes: &mut [NodeClass]) -> Vec<PoolId> {
    let mut pool_ids: BTreeMap<PoolId, usize> =
        classes.iter().flat_map(|c| c.members.iter().map(|m| (c.pool_of(m), 0))).collect();
    for (i, position) in pool_ids.values_mut().enumerate() {
        *position = i;
    }
    for class in classes.iter_mut() {
        for m in 0..class.members.len() {
            class.members[m].pool = pool_ids[&class.pool_of(&class.members[m])];
        }
    }
    classes.sort_by_key(|c| c.members[0].pool);
    pool_ids.into_keys().collect()
}

/// Phase 3: the classes by label key and value, and the groups of classes
/// that look alike to the taint and cordon filters.
fn index_classes(classes: &[NodeClass]) -> (HashMap<String, KeyIndex>, Vec<TaintGroup>) {
    let n = classes.len();
    let mut labels: HashMap<String, KeyIndex> = HashMap::new();
    let mut taint_groups: Vec<TaintGroup> = Vec::new();
    for (i, class) in classes.iter().enumerate() {
        for (k, v) in &class.labels {
            let key = labels
                .entry(k.clone())
                .or_insert_with(|| KeyIndex { any: ClassSet::empty(n), by_value: HashMap::new() });
            key.any.insert(i);
            key.by_value.entry(v.clone()).or_insert_with(|| ClassSet::empty(n)).insert(i);
        }
        match taint_groups.iter_mut().find(|g| g.taints == class.taints && g.unschedulable == class.unschedulable) {
            Some(group) => group.classes.insert(i),
            None => {
                let mut set = ClassSet::empty(n);
                set.insert(i);
                taint_groups.push(TaintGroup {
                    taints: class.taints.clone(),
                    unschedulable: class.unschedulable,
                    classes: set,
                });
            }
        }
    }
    (labels, taint_groups)
}

/// The classes that carry a label key, in all and by value.
#[derive(Debug, Clone, Default)]
struct KeyIndex {
    any: ClassSet,
    by_value: HashMap<String, ClassSet>,
}

/// Classes that look the same to the taint and cordon filters.
#[derive(Debug, Clone)]
struct TaintGroup {
    taints: Vec<Taint>,
    unschedulable: bool,
    classes: ClassSet,
}

/// All nodes, grouped into classes.
#[derive(Debug, Clone, Default)]
pub struct NodeIndex {
    /// Sorted by pool, so the classes of one pool are next to each other.
    pub classes: Vec<NodeClass>,
    /// Every pool, sorted; members refer to theirs by position.
    pub pools: Vec<PoolId>,
    identity_labels: Vec<String>,
    node_count: usize,
    /// Class labels (identity labels excluded) to the classes that carry them.
    labels: HashMap<String, KeyIndex>,
    taint_groups: Vec<TaintGroup>,
    all: ClassSet,
}

impl NodeIndex {
    /// Indexes the nodes in three phases: group like nodes into classes,
    /// number the pools (and sort the classes by pool), then index the
    /// classes by label value and by taints.
    pub fn build<'a>(nodes: impl IntoIterator<Item = &'a Node>, policy: &NodePolicy) -> NodeIndex {
        let mut grouping = Grouping::default();
        nodes.into_iter().for_each(|n| grouping.add(n, policy));
        grouping.into_index(policy)
    }

    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The classes carrying `key=value`.
    fn with_value(&self, key: &str, value: &str) -> Option<&ClassSet> {
        self.labels.get(key)?.by_value.get(value)
    }

    /// The classes whose labels satisfy `req`, as [`LabelReq`] matches a node.
    fn satisfying(&self, req: &LabelReq) -> ClassSet {
        let n = self.classes.len();
        let values_where = |key: &str, keep: &dyn Fn(&str) -> bool| {
            let mut set = ClassSet::empty(n);
            if let Some(k) = self.labels.get(key) {
                k.by_value.iter().filter(|(v, _)| keep(v)).for_each(|(_, s)| set.or(s));
            }
            set
        };
        let one_of = |key: &str, vals: &[String]| {
            let mut set = ClassSet::empty(n);
            vals.iter().filter_map(|v| self.with_value(key, v)).for_each(|s| set.or(s));
            set
        };
        let any = |key: &str| self.labels.get(key).map_or_else(|| ClassSet::empty(n), |k| k.any.clone());
        let int = |v: &str| v.parse::<i64>().ok();
        match req {
            LabelReq::In(k, vals) => one_of(k, vals),
            LabelReq::NotIn(k, vals) => one_of(k, vals).complement(&self.all),
            LabelReq::Exists(k) => any(k),
            LabelReq::DoesNotExist(k) => any(k).complement(&self.all),
            LabelReq::Gt(k, bound) => values_where(k, &|v| int(v).is_some_and(|v| v > *bound)),
            LabelReq::Lt(k, bound) => values_where(k, &|v| int(v).is_some_and(|v| v < *bound)),
        }
    }

    /// The classes a placement that does not depend on node identity admits:
    /// [`Placement::admits`] for every class at once.
    fn admitted_classes(&self, placement: &Placement) -> ClassSet {
        let mut set = self.all.clone();
        for (k, v) in &placement.node_selector {
            match self.with_value(k, v) {
                Some(with) => set.and(with),
                None => set.clear(),
            }
        }
        if let Some(terms) = &placement.required {
            let mut any_term = ClassSet::empty(self.classes.len());
            for term in terms {
                // Class members are judged without a name, and the scheduler
                // skips matchFields for a node without one.
                if let Term::Valid { labels, .. } = term {
                    let mut t = self.all.clone();
                    labels.iter().for_each(|r| t.and(&self.satisfying(r)));
                    any_term.or(&t);
                }
            }
            set.and(&any_term);
        }
        let mut tolerated = ClassSet::empty(self.classes.len());
        for group in &self.taint_groups {
            if (!group.unschedulable || placement.tolerates_unschedulable())
                && placement.tolerates_taints(&group.taints, scheduler_filters_effect)
            {
                tolerated.or(&group.classes);
            }
        }
        set.and(&tolerated);
        set
    }

    /// The classes (by position) whose members the pod can all land on, when
    /// the placement cannot tell members of a class apart; `None` when it can
    /// (`nodeName`, `matchFields`, identity labels such as the hostname), and
    /// the members must be judged one by one with [`Self::for_each_candidate`].
    pub fn admitted_classes_whole(&self, placement: &Placement) -> Option<ClassSet> {
        (!placement.depends_on_node_identity(&self.identity_labels)).then(|| self.admitted_classes(placement))
    }

    /// Calls `visit` with every class the pod can land on (on at least one
    /// member), in pool order, together with the members concerned when the
    /// answer differs between members.
    pub fn for_each_candidate(&self, placement: &Placement, mut visit: impl FnMut(&NodeClass, Candidates<'_>)) {
        if let Some(admitted) = self.admitted_classes_whole(placement) {
            for i in admitted.iter() {
                visit(&self.classes[i], Candidates::All);
            }
            return;
        }
        for class in &self.classes {
            let admitted: Vec<&Member> = class
                .members
                .iter()
                .filter(|m| placement.admits(&ClassNode { class, member: Some(m) }, &class.taints, class.unschedulable))
                .collect();
            if !admitted.is_empty() {
                visit(class, Candidates::Some(admitted));
            }
        }
    }
}

/// Which members of a class a pod can land on.
pub enum Candidates<'a> {
    All,
    Some(Vec<&'a Member>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        let mut l: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        l.insert("kubernetes.io/hostname".into(), name.into());
        Node {
            metadata: ObjectMeta { name: Some(name.into()), labels: Some(l), ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn pool_names_read_as_displayed() {
        for id in [
            PoolId::Labelled { key: "k".into(), value: "pool-é".into() },
            PoolId::Labelled { key: "k".into(), value: String::new() },
            PoolId::Node("worker-1".into()),
        ] {
            assert_eq!(id.name(), id.to_string());
            assert_eq!(id.name().len(), id.name_len());
        }
    }

    #[test]
    fn like_nodes_share_a_class() {
        let nodes: Vec<Node> = (0..100)
            .map(|i| node(&format!("n{i}"), &[("cloud.google.com/gke-nodepool", if i % 2 == 0 { "a" } else { "b" })]))
            .collect();
        let idx = NodeIndex::build(&nodes, &NodePolicy::default());
        assert_eq!(idx.classes.len(), 2);
        assert_eq!(idx.node_count(), 100);
        assert_eq!(idx.classes[0].members.len(), 50);
        let mut seen = 0;
        idx.for_each_candidate(&Placement::default(), |class, c| {
            assert!(matches!(c, Candidates::All));
            seen += class.members.len();
        });
        assert_eq!(seen, 100);
    }

    #[test]
    fn hostname_selector_is_judged_per_node() {
        let nodes = vec![node("n1", &[("pool", "a")]), node("n2", &[("pool", "a")])];
        let idx = NodeIndex::build(&nodes, &NodePolicy::default());
        assert_eq!(idx.classes.len(), 1);
        let sel: BTreeMap<String, String> = [("kubernetes.io/hostname".to_string(), "n2".to_string())].into();
        let p = Placement::new(None, Some(&sel), None, &[], None);
        let mut names = vec![];
        idx.for_each_candidate(&p, |_, c| match c {
            Candidates::Some(ms) => names.extend(ms.iter().map(|m| m.name.clone())),
            Candidates::All => panic!("should be judged per node"),
        });
        assert_eq!(names, vec!["n2"]);
    }

    /// A small deterministic generator for the agreement test.
    struct Xorshift(u64);
    impl Xorshift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn class_sets_agree_with_the_filters_class_by_class() {
        use k8s_openapi::api::core::v1::{
            Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, Toleration,
        };
        const KEYS: [&str; 4] = ["a", "b", "c", "n"];
        const VALUES: [&str; 5] = ["x", "y", "z", "5", "10"];
        let taint_vocab =
            [("t1", Some("v"), "NoSchedule"), ("t2", None, "NoExecute"), ("t3", Some("v"), "PreferNoSchedule")];
        let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
        let (mut checked, mut mixed) = (0, 0);
        for _ in 0..30 {
            let nodes: Vec<Node> = (0..40)
                .map(|i| {
                    let mut labels: Vec<(&str, &str)> = Vec::new();
                    for k in KEYS {
                        if rng.below(3) > 0 {
                            labels.push((k, rng.pick(&VALUES)));
                        }
                    }
                    if rng.below(2) == 0 {
                        labels.push(("cloud.google.com/gke-nodepool", rng.pick(&["p1", "p2"])));
                    }
                    let mut n = node(&format!("n{i}"), &labels);
                    let taints: Vec<Taint> = taint_vocab
                        .iter()
                        .filter(|_| rng.below(4) == 0)
                        .map(|(k, v, e)| Taint {
                            key: k.to_string(),
                            value: v.map(str::to_owned),
                            effect: e.to_string(),
                            time_added: None,
                        })
                        .collect();
                    n.spec = Some(NodeSpec {
                        taints: Some(taints),
                        unschedulable: Some(rng.below(5) == 0),
                        ..Default::default()
                    });
                    n
                })
                .collect();
            let idx = NodeIndex::build(&nodes, &NodePolicy::default());
            for _ in 0..50 {
                let selector: BTreeMap<String, String> =
                    (0..rng.below(3)).map(|_| (rng.pick(&KEYS).to_string(), rng.pick(&VALUES).to_string())).collect();
                let terms: Vec<NodeSelectorTerm> = (0..rng.below(4))
                    .map(|_| NodeSelectorTerm {
                        match_expressions: Some(
                            (0..1 + rng.below(3))
                                .map(|_| {
                                    let op = rng.pick(&["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Bogus"]);
                                    let values = match op {
                                        "Exists" | "DoesNotExist" => vec![],
                                        "Gt" | "Lt" => vec![rng.pick(&["4", "7", "x"]).to_string()],
                                        _ => (0..1 + rng.below(2)).map(|_| rng.pick(&VALUES).to_string()).collect(),
                                    };
                                    NodeSelectorRequirement {
                                        key: rng.pick(&KEYS).to_string(),
                                        operator: op.to_string(),
                                        values: Some(values),
                                    }
                                })
                                .collect(),
                        ),
                        match_fields: None,
                    })
                    .collect();
                let affinity = Affinity {
                    node_affinity: Some(NodeAffinity {
                        required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                            node_selector_terms: terms,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let tolerations: Vec<Toleration> = [
                    Toleration {
                        key: Some("t1".into()),
                        operator: Some("Equal".into()),
                        value: Some("v".into()),
                        ..Default::default()
                    },
                    Toleration {
                        key: Some("t2".into()),
                        operator: Some("Exists".into()),
                        effect: Some("NoExecute".into()),
                        ..Default::default()
                    },
                    Toleration {
                        key: Some(UNSCHEDULABLE.into()),
                        operator: Some("Exists".into()),
                        ..Default::default()
                    },
                    Toleration { operator: Some("Exists".into()), ..Default::default() },
                ]
                .into_iter()
                .filter(|_| rng.below(3) == 0)
                .collect();
                let with_affinity = rng.below(3) > 0;
                let p = Placement::new(None, Some(&selector), with_affinity.then_some(&affinity), &tolerations, None);
                assert!(!p.depends_on_node_identity(&idx.identity_labels));
                let expected: Vec<usize> = (0..idx.classes.len())
                    .filter(|&i| {
                        let c = &idx.classes[i];
                        p.admits(&ClassNode { class: c, member: None }, &c.taints, c.unschedulable)
                    })
                    .collect();
                let actual: Vec<usize> = idx.admitted_classes(&p).iter().collect();
                assert_eq!(actual, expected, "{p:?}");
                checked += 1;
                mixed += usize::from(!expected.is_empty() && expected.len() < idx.classes.len());
            }
        }
        assert_eq!(checked, 1500);
        // most cases admit some classes and not others
        assert!(mixed > 600, "{mixed} of {checked} cases split the classes");
    }

    const UNSCHEDULABLE: &str = super::super::scheduling::UNSCHEDULABLE_TAINT;
}
