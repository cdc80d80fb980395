//! The cluster view: what the engine may know about the cluster, read from
//! memory only. One immutable [`ClusterState`] is built from a snapshot (files)
//! or from live watches, and swapped whole when the source changes.

pub mod live;
pub mod mgr_config;
pub mod pools;
pub mod scheduling;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Toleration};
use k8s_openapi::api::node::v1::RuntimeClass;

use crate::policy::NodePolicy;
use pools::{Candidates, FlagLabel, NodeIndex, PoolId};
use scheduling::Placement;

/// A source of cluster state: a snapshot loaded from files or a live cache.
pub trait ClusterView: Send + Sync {
    /// The current state; cheap (an `Arc` clone), never blocks on I/O.
    fn state(&self) -> Arc<ClusterState>;
    /// Whether the state reflects the cluster (every watch has synced).
    fn is_ready(&self) -> bool;
}

/// A fixed state, always ready.
pub struct StaticView(pub Arc<ClusterState>);

impl ClusterView for StaticView {
    fn state(&self) -> Arc<ClusterState> {
        self.0.clone()
    }
    fn is_ready(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeClassInfo {
    pub name: String,
    pub handler: String,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
}

impl From<&RuntimeClass> for RuntimeClassInfo {
    fn from(rc: &RuntimeClass) -> Self {
        let scheduling = rc.scheduling.as_ref();
        RuntimeClassInfo {
            name: rc.metadata.name.clone().unwrap_or_default(),
            handler: rc.handler.clone(),
            node_selector: scheduling.and_then(|s| s.node_selector.clone()).unwrap_or_default(),
            tolerations: scheduling.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
        }
    }
}

/// What the cluster says about sysbox-mgr's flags through the ConfigMap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgrIntent {
    /// No ConfigMap: nodes without a label run sysbox-mgr's default (off).
    NoConfigMap,
    /// The ConfigMap exists; `Some` when its flag line mentions the flag.
    ConfigMap(Option<bool>),
}

/// Where the flag state of a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagSource {
    Label,
    ConfigMap,
    /// Neither label nor ConfigMap: sysbox-mgr's default, off.
    Default,
}

/// How the candidate nodes of one pool stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolReport {
    pub with_flag: usize,
    pub without_flag: usize,
    /// Nodes whose state rests on the ConfigMap (no usable label).
    pub via_configmap: usize,
    /// Nodes labelled `false`.
    pub labelled_false: usize,
    /// Nodes that lack the flag because nothing says they have it.
    pub unlabelled_default: usize,
    /// Flag label values that are neither "true" nor "false".
    pub invalid_labels: BTreeSet<String>,
    /// Nodes with the flag that a label (not the ConfigMap) vouches for.
    pub with_flag_by_label: usize,
}

/// Where a pod can land, pool by pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Landing {
    pub pools: BTreeMap<PoolId, PoolReport>,
}

impl Landing {
    pub fn nodes(&self) -> usize {
        self.pools.values().map(|p| p.with_flag + p.without_flag).sum()
    }
    pub fn with_flag(&self) -> usize {
        self.pools.values().map(|p| p.with_flag).sum()
    }
    pub fn without_flag(&self) -> usize {
        self.pools.values().map(|p| p.without_flag).sum()
    }
}

/// An immutable view of the cluster objects the policy depends on.
#[derive(Debug, Clone)]
pub struct ClusterState {
    runtime_classes: HashMap<String, RuntimeClassInfo>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    pub nodes: NodeIndex,
    pub mgr: MgrIntent,
}

impl ClusterState {
    pub fn build<'a>(
        nodes: impl IntoIterator<Item = &'a Node>,
        runtime_classes: impl IntoIterator<Item = &'a RuntimeClass>,
        namespaces: impl IntoIterator<Item = &'a Namespace>,
        mgr_config: Option<&ConfigMap>,
        policy: &NodePolicy,
    ) -> ClusterState {
        let runtime_classes =
            runtime_classes.into_iter().map(RuntimeClassInfo::from).map(|rc| (rc.name.clone(), rc)).collect();
        let namespaces = namespaces
            .into_iter()
            .filter_map(|ns| Some((ns.metadata.name.clone()?, ns.metadata.labels.clone().unwrap_or_default())))
            .collect();
        let mgr = match mgr_config {
            None => MgrIntent::NoConfigMap,
            Some(cm) => MgrIntent::ConfigMap(
                cm.data
                    .as_ref()
                    .and_then(|d| d.get(&policy.mgr_config.key))
                    .and_then(|flags| mgr_config::relaxed_read_only(flags)),
            ),
        };
        ClusterState { runtime_classes, namespaces, nodes: NodeIndex::build(nodes, policy), mgr }
    }

    pub fn runtime_class(&self, name: &str) -> Option<&RuntimeClassInfo> {
        self.runtime_classes.get(name)
    }

    pub fn runtime_class_count(&self) -> usize {
        self.runtime_classes.len()
    }

    pub fn namespace_labels(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(name)
    }

    /// Whether a node with this flag label has the flag, and why we think so.
    pub fn flag_of(&self, label: &FlagLabel) -> (bool, FlagSource) {
        match (label, self.mgr) {
            (FlagLabel::True, _) => (true, FlagSource::Label),
            (FlagLabel::False, _) => (false, FlagSource::Label),
            (_, MgrIntent::ConfigMap(intent)) => (intent.unwrap_or(false), FlagSource::ConfigMap),
            (_, MgrIntent::NoConfigMap) => (false, FlagSource::Default),
        }
    }

    /// The nodes a pod with this placement can land on, tallied by pool.
    pub fn landing(&self, placement: &Placement) -> Landing {
        let mut landing = Landing::default();
        self.nodes.for_each_candidate(placement, |class, candidates| {
            let (has, source) = self.flag_of(&class.flag);
            let mut add = |pool: PoolId, n: usize| {
                let r = landing.pools.entry(pool).or_default();
                if has {
                    r.with_flag += n;
                    if source == FlagSource::Label {
                        r.with_flag_by_label += n;
                    }
                } else {
                    r.without_flag += n;
                }
                match source {
                    FlagSource::ConfigMap => r.via_configmap += n,
                    FlagSource::Label if !has => r.labelled_false += n,
                    FlagSource::Default => r.unlabelled_default += n,
                    FlagSource::Label => {}
                }
                if let FlagLabel::Invalid(v) = &class.flag {
                    r.invalid_labels.insert(v.clone());
                }
            };
            match (&class.pool_key, candidates) {
                (Some(_), Candidates::All) => add(class.pool_of(&class.members[0]), class.members.len()),
                (Some(_), Candidates::Some(ms)) => add(class.pool_of(ms[0]), ms.len()),
                (None, Candidates::All) => class.members.iter().for_each(|m| add(class.pool_of(m), 1)),
                (None, Candidates::Some(ms)) => ms.into_iter().for_each(|m| add(class.pool_of(m), 1)),
            }
        });
        landing
    }
}
