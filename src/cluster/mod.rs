//! The cluster view: what the engine may know about the cluster, read from
//! memory only. One immutable [`ClusterState`] is built from a snapshot (files)
//! or from live watches, and swapped whole when the source changes.

pub mod capacity;
pub mod live;
pub mod mgr_config;
pub mod node_watch;
pub mod pools;
pub mod provenance;
pub mod requirements;
pub mod scheduling;
pub mod services;
pub mod snapshot;
pub mod source;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Toleration};
use k8s_openapi::api::node::v1::RuntimeClass;

use crate::policy::NodePolicy;
use pools::{Candidates, FlagLabel, NodeIndex, PoolId};
use scheduling::Placement;
pub use source::{open, wait_ready, OpenError, Opened, Source};

/// A source of cluster state: a snapshot loaded from files or a live cache.
pub trait ClusterView: Send + Sync {
    /// The current state; cheap (an `Arc` clone), never blocks on I/O.
    fn state(&self) -> Arc<ClusterState>;
    /// Whether the state reflects the cluster (every watch has synced).
    fn is_ready(&self) -> bool;
    /// What the view does not see and why (a watch it could not start), for `/readyz`.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MgrIntent {
    /// No ConfigMap: nodes without a label run sysbox-mgr's default (off).
    NoConfigMap,
    /// The ConfigMap exists and sysbox-mgr starts with its flag line; `Some`
    /// when the line sets the flag.
    ConfigMap(Option<bool>),
    /// The ConfigMap's flag line would stop sysbox-mgr from starting on every
    /// node that (re)installs Sysbox from it: why.
    ConfigMapStopsMgr(String),
    /// What the ConfigMap's flag line does depends on each node (its systemd
    /// environment, say): why.
    ConfigMapUnclear(String),
}

/// Where the flag state of a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagSource {
    Label,
    ConfigMap,
    /// Neither label nor ConfigMap: sysbox-mgr's default, off.
    Default,
}

/// How many nodes have the flag or lack it, and on what grounds: what a
/// node class adds to its pool, and a pool's sum over its candidate nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagTally {
    pub with_flag: u32,
    pub without_flag: u32,
    /// Nodes whose state rests on the ConfigMap (no usable label).
    pub via_configmap: u32,
    /// Nodes labelled `false`.
    pub labelled_false: u32,
    /// Nodes that lack the flag because nothing says they have it.
    pub unlabelled_default: u32,
    /// Nodes with the flag that a label (not the ConfigMap) vouches for.
    pub with_flag_by_label: u32,
    /// Nodes labelled `crio-runtime=running` (CRI-O, as sysbox-deploy-k8s
    /// labels them); the others run containerd.
    pub crio: u32,
}

impl FlagTally {
    /// `n` nodes that have the flag or not (`has`), known from `source`.
    pub fn of(has: bool, source: FlagSource, n: usize) -> FlagTally {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let mut t = FlagTally::default();
        if has {
            t.with_flag = n;
            if source == FlagSource::Label {
                t.with_flag_by_label = n;
            }
        } else {
            t.without_flag = n;
        }
        match source {
            FlagSource::ConfigMap => t.via_configmap = n,
            FlagSource::Label if !has => t.labelled_false = n,
            FlagSource::Default => t.unlabelled_default = n,
            FlagSource::Label => {}
        }
        t
    }

    /// The same nodes, counted as CRI-O nodes when `crio`.
    pub fn on_crio(mut self, crio: bool) -> FlagTally {
        if crio {
            self.crio = self.with_flag + self.without_flag;
        }
        self
    }

    #[inline(always)]
    pub fn add(&mut self, t: &FlagTally) {
        self.crio += t.crio;
        self.with_flag += t.with_flag;
        self.without_flag += t.without_flag;
        self.via_configmap += t.via_configmap;
        self.labelled_false += t.labelled_false;
        self.unlabelled_default += t.unlabelled_default;
        self.with_flag_by_label += t.with_flag_by_label;
    }

    /// Takes away nodes counted in `t` (part of this tally).
    #[inline(always)]
    fn remove(&mut self, t: &FlagTally) {
        self.crio = self.crio.saturating_sub(t.crio);
        self.with_flag = self.with_flag.saturating_sub(t.with_flag);
        self.without_flag = self.without_flag.saturating_sub(t.without_flag);
        self.via_configmap = self.via_configmap.saturating_sub(t.via_configmap);
        self.labelled_false = self.labelled_false.saturating_sub(t.labelled_false);
        self.unlabelled_default = self.unlabelled_default.saturating_sub(t.unlabelled_default);
        self.with_flag_by_label = self.with_flag_by_label.saturating_sub(t.with_flag_by_label);
    }

    /// Candidate nodes counted.
    pub fn nodes(&self) -> usize {
        self.with_flag as usize + self.without_flag as usize
    }
}

/// How the candidate nodes of one pool stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolReport {
    pub tally: FlagTally,
    /// Flag label values that are neither "true" nor "false".
    pub invalid_labels: BTreeSet<String>,
}

impl PoolReport {
    /// Adds another report of the same pool.
    fn merge(&mut self, other: PoolReport) {
        self.tally.add(&other.tally);
        self.invalid_labels.extend(other.invalid_labels);
    }
}

/// A pool of nodes not yet created that a pod can land on, and whether its
/// nodes will have the flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Possible<'a> {
    pub pool: &'a capacity::PossiblePool,
    pub has_flag: bool,
    pub source: FlagSource,
}

/// Where a pod can land among the existing nodes, pool by pool: what
/// [`ClusterState::landing`] finds for one set of admitted node classes,
/// kept by the state for the next pod with the same set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeLanding {
    /// By pool position, sorted, each pool once.
    pools: Vec<(usize, PoolReport)>,
    /// The sum of the pools' tallies.
    total: FlagTally,
}

impl NodeLanding {
    fn new(pools: Vec<(usize, PoolReport)>) -> NodeLanding {
        let mut total = FlagTally::default();
        pools.iter().for_each(|(_, r)| total.add(&r.tally));
        NodeLanding { pools, total }
    }
}

/// Where a pod can land, pool by pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Landing<'a> {
    /// The cluster state's pool ids, which [`NodeLanding`] refers to by position.
    ids: &'a [PoolId],
    existing: Arc<NodeLanding>,
    /// What the ConfigMap says, which unlabelled nodes' flag state rests on.
    pub mgr: &'a MgrIntent,
    /// Pools of nodes not yet created (NodePools, declared node groups) that
    /// can take the pod, by origin and name.
    pub possible: Vec<Possible<'a>>,
    /// Pools that could take the pod but will create no node now (at their
    /// limits, not ready, ...).
    pub unavailable: Vec<&'a capacity::PossiblePool>,
}

impl<'a> Landing<'a> {
    /// The existing nodes the pod can land on, by pool: sorted, each pool once.
    pub fn pools(&self) -> impl ExactSizeIterator<Item = (&'a PoolId, &PoolReport)> + '_ {
        let ids = self.ids;
        self.existing.pools.iter().map(move |(i, r)| (&ids[*i], r))
    }
    /// The candidate nodes' tallies summed over their pools.
    pub fn total(&self) -> &FlagTally {
        &self.existing.total
    }
    pub fn nodes(&self) -> usize {
        self.existing.total.nodes()
    }
    pub fn with_flag(&self) -> usize {
        self.existing.total.with_flag as usize
    }
    pub fn without_flag(&self) -> usize {
        self.existing.total.without_flag as usize
    }
    pub fn reports(&self) -> impl Iterator<Item = &PoolReport> {
        self.existing.pools.iter().map(|(_, r)| r)
    }
    /// Possible pools whose nodes will have the flag, and those whose will not.
    pub fn possible_with_flag(&self) -> usize {
        self.possible.iter().filter(|p| p.has_flag).count()
    }
    pub fn possible_without_flag(&self) -> usize {
        self.possible.iter().filter(|p| !p.has_flag).count()
    }
}

/// The [`NodeLanding`]s found, by the set of admitted classes they were
/// found for: a decision for a placement seen before (the pods of one
/// workload share theirs) reads its landing instead of walking the pools.
/// Bounded: at most [`MEMO_ENTRIES`] landings and [`MEMO_POOLS`] pool
/// reports in all; when full it starts over.
#[derive(Default)]
struct LandingMemo(std::sync::Mutex<MemoEntries>);

#[derive(Default)]
struct MemoEntries {
    by_admitted: HashMap<pools::ClassSet, Arc<NodeLanding>>,
    pools_held: usize,
}

const MEMO_ENTRIES: usize = 128;
const MEMO_POOLS: usize = 16_384;

impl LandingMemo {
    fn entries(&self) -> std::sync::MutexGuard<'_, MemoEntries> {
        // A panic elsewhere while the lock was held leaves a map that is
        // still consistent (inserts are whole): keep using it.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, admitted: &pools::ClassSet) -> Option<Arc<NodeLanding>> {
        self.entries().by_admitted.get(admitted).cloned()
    }

    fn put(&self, admitted: pools::ClassSet, landing: Arc<NodeLanding>) {
        let held = landing.pools.len();
        if held > MEMO_POOLS {
            return;
        }
        let mut e = self.entries();
        if e.by_admitted.len() >= MEMO_ENTRIES || e.pools_held + held > MEMO_POOLS {
            e.by_admitted.clear();
            e.pools_held = 0;
        }
        if e.by_admitted.insert(admitted, landing).is_none() {
            e.pools_held += held;
        }
    }

    fn len(&self) -> usize {
        self.entries().by_admitted.len()
    }
}

/// A copy of a state starts with no landing kept.
impl Clone for LandingMemo {
    fn clone(&self) -> Self {
        LandingMemo::default()
    }
}

impl std::fmt::Debug for LandingMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LandingMemo({} landings)", self.len())
    }
}

/// Pool reports under construction, by pool position, in the order the
/// candidates come.
struct Runs {
    runs: Vec<(usize, PoolReport)>,
    /// Every pool started a new run with a higher position than the last.
    in_order: bool,
}

impl Runs {
    /// `flag`: the class's flag label when it may be invalid (to name the value).
    #[inline(always)]
    fn add(&mut self, pool: usize, tally: &FlagTally, flag: Option<&FlagLabel>) {
        match self.runs.last() {
            Some((last, _)) if *last == pool => {}
            last => {
                self.in_order &= last.is_none_or(|(last, _)| *last < pool);
                self.runs.push((pool, PoolReport::default()));
            }
        }
        let Some((_, r)) = self.runs.last_mut() else { return };
        r.tally.add(tally);
        if let Some(FlagLabel::Invalid(v)) = flag {
            r.invalid_labels.insert(v.clone());
        }
    }
}

/// How [`ClusterState::landing_with`] tallies the classes a pod can land on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tally {
    /// Read from the landings found before, else by pool and kept.
    Memo,
    /// By pool, found anew.
    ByPool,
    /// Class by class, found anew: the reference for the two others.
    #[cfg(test)]
    ByClass,
}

/// An immutable view of the cluster objects the policy depends on.
#[derive(Debug, Clone)]
pub struct ClusterState {
    runtime_classes: HashMap<String, RuntimeClassInfo>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    pub nodes: NodeIndex,
    pub mgr: MgrIntent,
    /// What each class (by position) adds to its pool when the pod can land
    /// on all its members: made with the state, read in one sequential pass.
    class_tallies: Vec<ClassTally>,
    /// The classes in runs of one labelled pool each (classes are sorted by
    /// pool), with the pool's whole tally: a pool whose classes a pod can all
    /// land on is counted in one step, so a decision costs per pool, not per class.
    pool_spans: Vec<PoolSpan>,
    /// The landings found so far, by admitted classes.
    memo: LandingMemo,
    /// Who set each node's flag label (the node agent or a person), restarts pending.
    pub provenance: provenance::Provenance,
    /// Services named `sysbox` or `sysbox-*`; `None` when the source holds no
    /// Services at all (a snapshot without them), so none can be ruled out.
    services: Option<services::ServiceIndex>,
    /// Pools of nodes not yet created: Karpenter NodePools and declared node groups.
    capacity: capacity::Capacity,
}

#[derive(Debug, Clone, Copy)]
struct ClassTally {
    tally: FlagTally,
    /// The class's pool, when it has a pool label (all members share it).
    pool: Option<u32>,
    /// Its flag label has a value other than true/false.
    invalid_flag: bool,
}

/// Adjacent classes (by position) that make up one labelled pool, or one
/// class without a pool label (whose members are pools of their own).
#[derive(Debug, Clone)]
struct PoolSpan {
    classes: std::ops::Range<usize>,
    /// The pool, when the classes carry a pool label and no invalid flag
    /// label: then `total` is the sum of their tallies and they can be
    /// counted together. `None`: counted class by class.
    pool: Option<usize>,
    total: FlagTally,
}

/// The runs of [`PoolSpan`]s over the classes and their tallies.
fn pool_spans(tallies: &[ClassTally]) -> Vec<PoolSpan> {
    let mut spans: Vec<PoolSpan> = Vec::new();
    for (i, ct) in tallies.iter().enumerate() {
        let pool = ct.pool.filter(|_| !ct.invalid_flag).map(|p| p as usize);
        match spans.last_mut() {
            Some(span) if pool.is_some() && span.pool == pool && span.classes.end == i => {
                span.classes.end = i + 1;
                span.total.add(&ct.tally);
            }
            _ => spans.push(PoolSpan { classes: i..i + 1, pool, total: ct.tally }),
        }
    }
    spans
}

/// Nodes read one at a time for a [`ClusterState`]: grouped into classes as
/// they come, with the node agent's evidence of those that carry it, so the
/// Node objects need not be kept.
#[derive(Debug, Default)]
pub struct NodeIntake {
    grouping: pools::Grouping,
    /// Node name to the evidence annotation's text, for the nodes that have one.
    evidence: HashMap<String, String>,
}

impl NodeIntake {
    pub fn add(&mut self, node: &Node, policy: &NodePolicy) {
        let Some(name) = node.metadata.name.as_deref() else { return };
        if let Some(e) = node.metadata.annotations.as_ref().and_then(|a| a.get(provenance::EVIDENCE_ANNOTATION)) {
            self.evidence.insert(name.to_owned(), e.clone());
        }
        self.grouping.add(node, policy);
    }

    /// Nodes added so far.
    pub fn node_count(&self) -> usize {
        self.grouping.node_count()
    }
}

impl ClusterState {
    pub fn build<'a>(
        nodes: impl IntoIterator<Item = &'a Node>,
        runtime_classes: impl IntoIterator<Item = &'a RuntimeClass>,
        namespaces: impl IntoIterator<Item = &'a Namespace>,
        mgr_config: Option<&ConfigMap>,
        policy: &NodePolicy,
    ) -> ClusterState {
        let mut intake = NodeIntake::default();
        nodes.into_iter().for_each(|n| intake.add(n, policy));
        ClusterState::from_intake(intake, runtime_classes, namespaces, mgr_config, policy)
    }

    /// The state of the nodes taken in and the other objects.
    pub fn from_intake<'a>(
        intake: NodeIntake,
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
            Some(cm) => {
                mgr_config::intent(cm.data.as_ref().and_then(|d| d.get(&policy.mgr_config.key)).map(String::as_str))
            }
        };
        let NodeIntake { grouping, evidence } = intake;
        let mut state = ClusterState {
            runtime_classes,
            namespaces,
            nodes: grouping.into_index(policy),
            mgr,
            class_tallies: Vec::new(),
            pool_spans: Vec::new(),
            memo: LandingMemo::default(),
            provenance: provenance::Provenance::default(),
            services: None,
            capacity: capacity::Capacity::default(),
        };
        state.provenance = state.build_provenance(&evidence);
        // The flag state of a class is fixed with the state: tallied once here, not per request.
        state.class_tallies = state
            .nodes
            .classes
            .iter()
            .map(|c| {
                let (has, source) = state.flag_of(&c.flag);
                ClassTally {
                    tally: FlagTally::of(has, source, c.members.len()).on_crio(c.is_crio()),
                    pool: c.pool_key.as_ref().map(|_| c.members[0].pool as u32),
                    invalid_flag: matches!(c.flag, FlagLabel::Invalid(_)),
                }
            })
            .collect();
        state.pool_spans = pool_spans(&state.class_tallies);
        state
    }

    fn build_provenance(&self, evidence: &HashMap<String, String>) -> provenance::Provenance {
        let inputs = self.nodes.classes.iter().flat_map(|class| {
            class.members.iter().map(move |m| provenance::NodeInput {
                name: m.name.as_str(),
                pool: &self.nodes.pools[m.pool],
                flag: &class.flag,
                evidence: evidence.get(&m.name).map(String::as_str),
            })
        });
        provenance::Provenance::build(inputs, &self.mgr)
    }

    /// Sets the gauges that describe this state: its size, and who set the nodes' flag labels.
    pub fn record(&self, metrics: &crate::metrics::Metrics) {
        use crate::metrics::OriginLabels;
        metrics.cluster_nodes.set(self.nodes.node_count() as i64);
        metrics.cluster_node_classes.set(self.nodes.classes.len() as i64);
        let p = &self.provenance;
        metrics.flag_labels.get_or_create(&OriginLabels { origin: "agent" }).set(p.by_agent() as i64);
        metrics.flag_labels.get_or_create(&OriginLabels { origin: "hand" }).set(p.by_hand() as i64);
        metrics.restart_pending.set(p.restart_pending().count() as i64);
        metrics.labels_against_configmap.set(p.disagreeing_with_configmap().count() as i64);
        metrics.cluster_sysbox_services.set(self.services().map_or(0, |s| s.len()) as i64);
    }

    /// The same state, knowing the cluster's `sysbox`/`sysbox-*` Services.
    pub fn with_services(mut self, services: services::ServiceIndex) -> ClusterState {
        self.services = Some(services);
        self
    }

    /// The same state, knowing the pools of nodes not yet created.
    pub fn with_capacity(mut self, capacity: capacity::Capacity) -> ClusterState {
        self.capacity = capacity;
        self
    }

    /// Pools of nodes not yet created (NodePools, declared node groups).
    pub fn capacity(&self) -> &capacity::Capacity {
        &self.capacity
    }

    /// The `sysbox`/`sysbox-*` Services, when the source holds Services.
    pub fn services(&self) -> Option<&services::ServiceIndex> {
        self.services.as_ref()
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
        match (label, &self.mgr) {
            (FlagLabel::True, _) => (true, FlagSource::Label),
            (FlagLabel::False, _) => (false, FlagSource::Label),
            (_, MgrIntent::ConfigMap(intent)) => (intent.unwrap_or(false), FlagSource::ConfigMap),
            // A node that reinstalls from this ConfigMap runs no sysbox-mgr, and
            // one whose outcome is unclear is not counted on: neither has the flag.
            (_, MgrIntent::ConfigMapStopsMgr(_) | MgrIntent::ConfigMapUnclear(_)) => (false, FlagSource::ConfigMap),
            (_, MgrIntent::NoConfigMap) => (false, FlagSource::Default),
        }
    }

    /// Adds the admitted class `i` (all its members) to the runs.
    fn add_class(&self, runs: &mut Runs, i: usize) {
        let ct = &self.class_tallies[i];
        match ct.pool {
            Some(pool) => {
                let flag = ct.invalid_flag.then(|| &self.nodes.classes[i].flag);
                runs.add(pool as usize, &ct.tally, flag)
            }
            None => {
                let class = &self.nodes.classes[i];
                let (has, source) = self.flag_of(&class.flag);
                let one = FlagTally::of(has, source, 1).on_crio(class.is_crio());
                class.members.iter().for_each(|m| runs.add(m.pool, &one, Some(&class.flag)));
            }
        }
    }

    /// The nodes a pod with this placement can land on, tallied by pool.
    pub fn landing(&self, placement: &Placement) -> Landing<'_> {
        self.landing_with(placement, Tally::Memo)
    }

    fn landing_with(&self, placement: &Placement, how: Tally) -> Landing<'_> {
        let existing = match self.nodes.admitted_classes_whole(placement) {
            // the common case: whole classes, whose landing may be known already
            Some(admitted) if how == Tally::Memo => match self.memo.get(&admitted) {
                Some(known) => known,
                None => {
                    let found = Arc::new(self.node_landing(Some(&admitted), placement, true));
                    self.memo.put(admitted, found.clone());
                    found
                }
            },
            Some(admitted) => Arc::new(self.node_landing(Some(&admitted), placement, how == Tally::ByPool)),
            None => Arc::new(self.node_landing(None, placement, true)),
        };
        let mut landing =
            Landing { ids: &self.nodes.pools, existing, mgr: &self.mgr, possible: Vec::new(), unavailable: Vec::new() };
        if !self.capacity.is_empty() {
            self.possible_landing(placement, &mut landing);
        }
        landing
    }

    /// The existing nodes the pod can land on, by pool: from the `admitted`
    /// classes when the placement takes whole classes, else member by member.
    /// With `by_pool` false every admitted class is added on its own (the
    /// reference the pool sums are tested against).
    fn node_landing(&self, admitted: Option<&pools::ClassSet>, placement: &Placement, by_pool: bool) -> NodeLanding {
        // Tallied by pool position: candidates come in pool order, so each
        // pool is one run.
        let mut runs = Runs { runs: Vec::with_capacity(self.nodes.pools.len().min(256)), in_order: true };
        match admitted {
            // whole classes, with their tallies made in advance, summed by pool
            Some(admitted) if !by_pool => admitted.iter().for_each(|i| self.add_class(&mut runs, i)),
            Some(admitted) => {
                for span in &self.pool_spans {
                    let range = span.classes.clone();
                    let Some(pool) = span.pool else {
                        admitted.iter_in(range, true).for_each(|i| self.add_class(&mut runs, i));
                        continue;
                    };
                    let (admitted_here, len) = (admitted.count_in(range.clone()), range.len());
                    if admitted_here == 0 {
                        continue;
                    }
                    let tally = if admitted_here == len {
                        span.total
                    } else if admitted_here * 2 >= len {
                        let mut t = span.total;
                        admitted.iter_in(range, false).for_each(|i| t.remove(&self.class_tallies[i].tally));
                        t
                    } else {
                        let mut t = FlagTally::default();
                        admitted.iter_in(range, true).for_each(|i| t.add(&self.class_tallies[i].tally));
                        t
                    };
                    runs.add(pool, &tally, None);
                }
            }
            None => self.nodes.for_each_candidate(placement, |class, candidates| {
                let (has, source) = self.flag_of(&class.flag);
                let members: Vec<&pools::Member> = match candidates {
                    Candidates::All => class.members.iter().collect(),
                    Candidates::Some(members) => members,
                };
                let crio = class.is_crio();
                if class.pool_key.is_some() {
                    let tally = FlagTally::of(has, source, members.len()).on_crio(crio);
                    runs.add(members[0].pool, &tally, Some(&class.flag));
                } else {
                    // no pool label: each member is a pool of its own
                    let one = FlagTally::of(has, source, 1).on_crio(crio);
                    members.iter().for_each(|m| runs.add(m.pool, &one, Some(&class.flag)));
                }
            }),
        }
        let Runs { mut runs, in_order } = runs;
        if !in_order {
            // pool positions follow pool order: sort them and merge repeats
            runs.sort_by_key(|(i, _)| *i);
            let mut merged: Vec<(usize, PoolReport)> = Vec::with_capacity(runs.len());
            for (i, r) in runs {
                match merged.last_mut() {
                    Some((last, report)) if *last == i => report.merge(r),
                    _ => merged.push((i, r)),
                }
            }
            runs = merged;
        }
        runs.shrink_to_fit();
        NodeLanding::new(runs)
    }

    /// Adds the pools of nodes not yet created that can take the pod.
    #[cold]
    fn possible_landing<'a>(&'a self, placement: &Placement, landing: &mut Landing<'a>) {
        let pod = capacity::PodRequirements::of(placement);
        for pool in self.capacity.pools.iter().filter(|p| p.admits_pod(placement, &pod)) {
            if pool.unavailable.is_some() {
                landing.unavailable.push(pool);
            } else {
                let (has_flag, source) = self.flag_of(&pool.flag);
                landing.possible.push(Possible { pool, has_flag, source });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// xorshift64 from `seed`: a number in `0..n` at each call.
    fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// A random node for the randomised tallies: hostname `n{i}`; in a
    /// pool one time in `pools.0` too few, of `pools.1` pools; a zone of
    /// three; a Sysbox install state; with `crio`, a CRI-O label one time in
    /// three; a flag label that is `true`, `false`, invalid or absent; a
    /// taint one time in four; cordoned one time in eight.
    fn random_node(
        i: usize,
        below: &mut dyn FnMut(u64) -> u64,
        policy: &NodePolicy,
        pools: (u64, u64),
        crio: bool,
    ) -> Node {
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_owned(), format!("n{i}"));
        if below(pools.0) > 0 {
            labels.insert("cloud.google.com/gke-nodepool".to_owned(), format!("p{}", below(pools.1)));
        }
        labels.insert("zone".to_owned(), format!("z{}", below(3)));
        labels.insert("sysbox-runtime".to_owned(), ["running", "installing"][below(2) as usize].into());
        if crio && below(3) == 0 {
            labels.insert(pools::CRIO_LABEL.0.to_owned(), pools::CRIO_LABEL.1.to_owned());
        }
        let flag = ["true", "false", "maybe", ""][below(4) as usize];
        if !flag.is_empty() {
            labels.insert(policy.flag_label.clone(), flag.to_owned());
        }
        let taints = (below(4) == 0)
            .then(|| vec![Taint { key: "t".into(), value: None, effect: "NoSchedule".into(), time_added: None }]);
        Node {
            metadata: ObjectMeta { name: Some(format!("n{i}")), labels: Some(labels), ..Default::default() },
            spec: Some(NodeSpec { taints, unschedulable: Some(below(8) == 0), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn pool_sums_agree_with_class_by_class_tallies() {
        let mut below = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        let policy = NodePolicy::default();
        let (mut split, mut checked) = (0, 0);
        for _ in 0..40 {
            let nodes: Vec<Node> = (0..60).map(|i| random_node(i, &mut below, &policy, (5, 4), false)).collect();
            let state = ClusterState::build(&nodes, [], [], None, &policy);
            for _ in 0..20 {
                let mut selector = BTreeMap::new();
                if below(2) == 0 {
                    selector.insert("zone".to_owned(), format!("z{}", below(3)));
                }
                if below(2) == 0 {
                    selector.insert("sysbox-runtime".to_owned(), "running".to_owned());
                }
                let p = Placement::new(None, Some(&selector), None, &[], None);
                let (by_pool, by_class) =
                    (state.landing_with(&p, Tally::ByPool), state.landing_with(&p, Tally::ByClass));
                assert_eq!(by_pool, by_class, "{selector:?}");
                checked += 1;
                split += usize::from(by_pool.nodes() > 0 && by_pool.nodes() < 60);
            }
        }
        assert_eq!(checked, 800);
        assert!(split > 400, "{split} of {checked} placements split the pools");
    }

    /// The landings a state keeps (by admitted classes) against the class by
    /// class tally made anew, on random clusters and placements: placements
    /// repeat and differ while admitting the same classes, so most decisions
    /// read a kept landing.
    #[test]
    fn kept_landings_agree_with_class_by_class_tallies() {
        use k8s_openapi::api::core::v1::Toleration;
        let mut below = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let policy = NodePolicy::default();
        let (mut checked, mut kept, mut split) = (0, 0, 0);
        for round in 0..40 {
            let nodes: Vec<Node> = (0..80).map(|i| random_node(i, &mut below, &policy, (6, 5), true)).collect();
            let cm = (round % 2 == 0).then(|| ConfigMap {
                data: Some([(policy.mgr_config.key.clone(), "--relaxed-read-only".to_owned())].into()),
                ..Default::default()
            });
            let state = ClusterState::build(&nodes, [], [], cm.as_ref(), &policy);
            for _ in 0..25 {
                let mut selector = BTreeMap::new();
                if below(2) == 0 {
                    selector.insert("zone".to_owned(), format!("z{}", below(3)));
                }
                if below(3) == 0 {
                    selector.insert("sysbox-runtime".to_owned(), "running".to_owned());
                }
                if below(4) == 0 {
                    selector.insert("cloud.google.com/gke-nodepool".to_owned(), format!("p{}", below(5)));
                }
                let tolerations: Vec<Toleration> = (below(2) == 0)
                    .then(|| Toleration {
                        key: Some("t".into()),
                        operator: Some("Exists".into()),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect();
                let p = Placement::new(None, Some(&selector), None, &tolerations, None);
                let held = state.memo.len();
                let landing = state.landing(&p);
                kept += usize::from(state.memo.len() == held);
                assert_eq!(landing, state.landing_with(&p, Tally::ByClass), "{selector:?} {tolerations:?}");
                assert_eq!(landing.total(), &{
                    let mut t = FlagTally::default();
                    landing.reports().for_each(|r| t.add(&r.tally));
                    t
                });
                checked += 1;
                split += usize::from(landing.nodes() > 0 && landing.nodes() < 80);
            }
        }
        assert_eq!(checked, 1000);
        assert!(kept > 300, "{kept} of {checked} landings read from those kept");
        assert!(split > 500, "{split} of {checked} placements split the pools");
    }

    #[test]
    fn kept_landings_are_bounded() {
        let policy = NodePolicy::default();
        // every node a class and a pool of its own; each selector admits one of them
        let nodes: Vec<Node> = (0..200)
            .map(|i| Node {
                metadata: ObjectMeta {
                    name: Some(format!("n{i}")),
                    labels: Some(
                        [("kubernetes.io/hostname".to_owned(), format!("n{i}")), ("zone".to_owned(), format!("z{i}"))]
                            .into(),
                    ),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        let state = ClusterState::build(&nodes, [], [], None, &policy);
        for i in 0..(MEMO_ENTRIES * 3) {
            let selector: BTreeMap<String, String> = [("zone".to_owned(), format!("z{}", i % 200))].into();
            let p = Placement::new(None, Some(&selector), None, &[], None);
            assert_eq!(state.landing(&p).nodes(), 1);
            assert!(state.memo.len() <= MEMO_ENTRIES);
        }
        let everywhere = state.landing(&Placement::default());
        assert_eq!(everywhere.nodes(), 200);
        assert!(state.memo.entries().pools_held <= MEMO_POOLS);
    }
}
