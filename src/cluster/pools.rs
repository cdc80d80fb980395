//! Nodes grouped for the hot path. Nodes that agree on every label except the
//! per-node ones (hostname), on their scheduling taints and on cordoning form
//! one class; a pod is judged once per class, so the cost of a decision grows
//! with the number of distinct node shapes (pools × zones × ...), not with the
//! number of nodes. Built on watch events or snapshot load, never per request.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Taint};

use super::scheduling::{scheduler_filters_effect, NodeFacts, Placement};
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

impl NodeClass {
    pub fn pool_of(&self, member: &Member) -> PoolId {
        match &self.pool_key {
            Some((key, value)) => PoolId::Labelled { key: key.clone(), value: value.clone() },
            None => PoolId::Node(member.name.clone()),
        }
    }
}

type ClassKey = (BTreeMap<String, String>, Vec<(String, Option<String>, String)>, bool);

/// All nodes, grouped into classes.
#[derive(Debug, Clone, Default)]
pub struct NodeIndex {
    pub classes: Vec<NodeClass>,
    identity_labels: Vec<String>,
    node_count: usize,
}

impl NodeIndex {
    pub fn build<'a>(nodes: impl IntoIterator<Item = &'a Node>, policy: &NodePolicy) -> NodeIndex {
        let mut classes: Vec<NodeClass> = Vec::new();
        let mut by_key: HashMap<ClassKey, usize> = HashMap::new();
        let mut node_count = 0;
        for node in nodes {
            let Some(name) = node.metadata.name.clone() else { continue };
            node_count += 1;
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
            let member = Member { name, identity };
            if let Some(&i) = by_key.get(&key) {
                classes[i].members.push(member);
                continue;
            }
            let labels = key.0.clone();
            let pool_key = policy.pool_labels.iter().find_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())));
            let flag = match labels.get(&policy.flag_label).map(String::as_str) {
                None => FlagLabel::Absent,
                Some("true") => FlagLabel::True,
                Some("false") => FlagLabel::False,
                Some(other) => FlagLabel::Invalid(other.to_owned()),
            };
            by_key.insert(key, classes.len());
            classes.push(NodeClass { labels, taints, unschedulable, pool_key, flag, members: vec![member] });
        }
        NodeIndex { classes, identity_labels: policy.identity_labels.clone(), node_count }
    }

    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Calls `visit` with every class and the number of its members the pod can
    /// land on (only when that number is positive), together with the members
    /// concerned when the answer differs between members.
    pub fn for_each_candidate(&self, placement: &Placement, mut visit: impl FnMut(&NodeClass, Candidates<'_>)) {
        let per_node = placement.depends_on_node_identity(&self.identity_labels);
        for class in &self.classes {
            if per_node {
                let admitted: Vec<&Member> = class
                    .members
                    .iter()
                    .filter(|m| {
                        placement.admits(&ClassNode { class, member: Some(m) }, &class.taints, class.unschedulable)
                    })
                    .collect();
                if !admitted.is_empty() {
                    visit(class, Candidates::Some(admitted));
                }
            } else if placement.admits(&ClassNode { class, member: None }, &class.taints, class.unschedulable) {
                visit(class, Candidates::All);
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
}
