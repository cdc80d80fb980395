//! The live source: kube-rs reflectors on Nodes, RuntimeClasses, Namespaces,
//! the sysbox-mgr ConfigMap and the node-groups ConfigMap, Karpenter NodePools
//! when their CRD is installed and readable, and a metadata-only watch on
//! Services that keeps the names `sysbox` and `sysbox-*` alone. Watch events mark the
//! view dirty; a single task rebuilds the [`ClusterState`] (debounced) and swaps it in, so a
//! request never waits on the API server or on a lock.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Service};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::node_watch::WatchedNode;
use super::services::{NameEvent, ServiceNames};
use super::{capacity, provenance, ClusterState, ClusterView};
use crate::metrics::Metrics;
use crate::policy::NodePolicy;

/// How long the rebuild waits after an event for others to arrive.
const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no usable cluster configuration (in-cluster or KUBECONFIG): {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("kubeconfig: {0}")]
    Config(#[source] kube::config::KubeconfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// Where to find the API server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

pub async fn client(conn: &Connection) -> Result<Client, LiveError> {
    let options = kube::config::KubeConfigOptions { context: conn.context.clone(), ..Default::default() };
    let config = match &conn.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|source| LiveError::Kubeconfig { path: path.clone(), source })?;
            kube::Config::from_custom_kubeconfig(kc, &options).await.map_err(LiveError::Config)?
        }
        None if conn.context.is_some() => kube::Config::from_kubeconfig(&options).await.map_err(LiveError::Config)?,
        None => kube::Config::infer().await.map_err(LiveError::Infer)?,
    };
    Client::try_from(config).map_err(LiveError::Client)
}

pub struct LiveView {
    state: ArcSwap<ClusterState>,
    ready: AtomicBool,
    /// What the view does not watch and why (no NodePool CRD, no RBAC).
    notes: Mutex<Vec<String>>,
}

impl ClusterView for LiveView {
    fn state(&self) -> Arc<ClusterState> {
        self.state.load_full()
    }
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    fn notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

struct Stores {
    nodes: Store<Node>,
    runtime_classes: Store<RuntimeClass>,
    namespaces: Store<Namespace>,
    config_maps: Store<ConfigMap>,
    node_groups: Store<ConfigMap>,
    /// Set once the NodePool watch runs (the CRD exists and may be listed).
    node_pools: Arc<std::sync::OnceLock<Store<DynamicObject>>>,
    services: Arc<Mutex<ServiceNames>>,
}

impl Stores {
    fn build(&self, policy: &NodePolicy) -> ClusterState {
        let nodes = self.nodes.state();
        let rcs = self.runtime_classes.state();
        let nss = self.namespaces.state();
        let cms = self.config_maps.state();
        let groups = self.node_groups.state();
        let pools: Vec<serde_json::Value> = self
            .node_pools
            .get()
            .map(|s| s.state().iter().filter_map(|np| serde_json::to_value(np.as_ref()).ok()).collect())
            .unwrap_or_default();
        let capacity = capacity::Capacity::build(&pools, groups.first().map(AsRef::as_ref), policy);
        for note in &capacity.notes {
            tracing::warn!(note = %note, "pool of nodes not yet created passed over");
        }
        ClusterState::build(
            nodes.iter().map(AsRef::as_ref),
            rcs.iter().map(AsRef::as_ref),
            nss.iter().map(AsRef::as_ref),
            cms.first().map(AsRef::as_ref),
            policy,
        )
        .with_services(self.services.lock().map(|s| s.index()).unwrap_or_default())
        .with_capacity(capacity)
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One watched kind: a reflector store and the task that drives its watch.
/// `slim` drops what the view never reads before an object is stored, so
/// memory stays flat; every event marks the view `dirty`.
fn reflect<K>(
    kind: &'static str,
    api: Api<K>,
    config: watcher::Config,
    slim: impl FnMut(&mut K) + Send + 'static,
    dirty: &Arc<Notify>,
    metrics: &Arc<Metrics>,
) -> (Store<K>, Task)
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    reflect_events(kind, watcher(api, config).default_backoff(), slim, dirty, metrics)
}

/// [`reflect`] over a watch whose events are already decoded (and perhaps converted).
fn reflect_events<K>(
    kind: &'static str,
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    slim: impl FnMut(&mut K) + Send + 'static,
    dirty: &Arc<Notify>,
    metrics: &Arc<Metrics>,
) -> (Store<K>, Task)
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let stream = events.modify(slim).reflect(writer);
    let (dirty, metrics) = (dirty.clone(), metrics.clone());
    let task: Task = Box::pin(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    metrics.watch_event(kind);
                    dirty.notify_one();
                }
                Err(e) => {
                    tracing::warn!(kind, error = %e, "watch failed; retrying with backoff, last known state keeps serving")
                }
            }
        }
    });
    (store, task)
}

/// The Karpenter NodePools, when the `karpenter.sh/v1` NodePool CRD is
/// installed and the webhook may list them; otherwise a note says why they
/// are not watched (never an error: clusters without Karpenter are common).
/// `synced` turns true once NodePools are listed, or at once when they are
/// not watched.
fn watch_node_pools(
    client: Client,
    store: Arc<std::sync::OnceLock<Store<DynamicObject>>>,
    view: Arc<LiveView>,
    dirty: Arc<Notify>,
    metrics: Arc<Metrics>,
) -> (tokio::sync::watch::Receiver<bool>, Task) {
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let task: Task = Box::pin(async move {
        let gvk = GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool");
        let note = |why: String| {
            tracing::info!("{why}");
            if let Ok(mut notes) = view.notes.lock() {
                notes.push(why);
            }
        };
        let resources = match client.list_api_group_resources("karpenter.sh/v1").await {
            Ok(list) => list,
            Err(e) => {
                note(format!("Karpenter NodePools not watched: karpenter.sh/v1 is not served ({})", short(&e)));
                let _ = synced_tx.send(true);
                return;
            }
        };
        let Some(found) = resources.resources.iter().find(|r| r.kind == "NodePool" && !r.name.contains('/')) else {
            note("Karpenter NodePools not watched: karpenter.sh/v1 serves no NodePool".into());
            let _ = synced_tx.send(true);
            return;
        };
        let ar = ApiResource::from_gvk_with_plural(&gvk, &found.name);
        let api = Api::<DynamicObject>::all_with(client, &ar);
        // One small list first: without RBAC, say so once instead of retrying forever.
        if let Err(e) = api.list_metadata(&kube::api::ListParams::default().limit(1)).await {
            note(format!("Karpenter NodePools not watched: cannot list them ({})", short(&e)));
            let _ = synced_tx.send(true);
            return;
        }
        let writer = reflector::store::Writer::new(ar);
        let reader = writer.as_reader();
        let _ = store.set(reader.clone());
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|np: &mut DynamicObject| {
                np.metadata.managed_fields = None;
                np.metadata.annotations = None;
                np.metadata.labels = None;
                capacity::slim_node_pool(&mut np.data);
            })
            .reflect(writer);
        let synced = {
            let reader = reader.clone();
            let synced_tx = synced_tx.clone();
            async move {
                if reader.wait_until_ready().await.is_ok() {
                    let _ = synced_tx.send(true);
                }
            }
        };
        tokio::spawn(synced);
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    metrics.watch_event("NodePool");
                    dirty.notify_one();
                }
                Err(e) => {
                    tracing::warn!(kind = "NodePool", error = %e, "watch failed; retrying with backoff, last known state keeps serving")
                }
            }
        }
    });
    (synced_rx, task)
}

/// An API error in a few words (the status reason and code when there is one).
fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
        other => other.to_string(),
    }
}

/// The Services, watched metadata only: only the names `sysbox` and
/// `sysbox-*` are kept ([`ServiceNames`]), so memory grows with those alone.
/// `synced` turns true once a listing is complete.
fn watch_services(
    api: Api<PartialObjectMeta<Service>>,
    config: watcher::Config,
    dirty: &Arc<Notify>,
    metrics: &Arc<Metrics>,
) -> (Arc<Mutex<ServiceNames>>, tokio::sync::watch::Receiver<bool>, Task) {
    let services = Arc::new(Mutex::new(ServiceNames::default()));
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let stream = watcher(api, config).default_backoff();
    let (names, dirty, metrics) = (services.clone(), dirty.clone(), metrics.clone());
    let task: Task = Box::pin(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(kind = "Service", error = %e, "watch failed; retrying with backoff, last known state keeps serving");
                    continue;
                }
            };
            let id = |m: &PartialObjectMeta<Service>| {
                (m.metadata.namespace.clone().unwrap_or_default(), m.metadata.name.clone().unwrap_or_default())
            };
            let (changed, synced, listed) = {
                let Ok(mut names) = names.lock() else { return };
                let changed = match &event {
                    watcher::Event::Apply(m) => {
                        let (ns, n) = id(m);
                        names.apply(NameEvent::Apply(&ns, &n))
                    }
                    watcher::Event::Delete(m) => {
                        let (ns, n) = id(m);
                        names.apply(NameEvent::Delete(&ns, &n))
                    }
                    watcher::Event::Init => names.apply(NameEvent::Init),
                    watcher::Event::InitApply(m) => {
                        let (ns, n) = id(m);
                        names.apply(NameEvent::InitApply(&ns, &n))
                    }
                    watcher::Event::InitDone => names.apply(NameEvent::InitDone),
                };
                (changed, names.synced(), names.listed)
            };
            metrics.watch_event("Service");
            if synced && !*synced_tx.borrow() {
                tracing::debug!(listed, "Services listed; only sysbox and sysbox-* names are kept");
                let _ = synced_tx.send(true);
            }
            if changed {
                dirty.notify_one();
            }
        }
    });
    (services, synced_rx, task)
}

/// Starts the watches and returns the view at once; it becomes ready when
/// every watch has listed its objects.
pub fn start(client: Client, policy: NodePolicy, metrics: Arc<Metrics>) -> Arc<LiveView> {
    let view = Arc::new(LiveView {
        state: ArcSwap::from_pointee(ClusterState::build([], [], [], None, &policy)),
        ready: AtomicBool::new(false),
        notes: Mutex::new(Vec::new()),
    });
    let dirty = Arc::new(Notify::new());
    let cfg = watcher::Config::default();
    let cm_cfg = cfg.clone().fields(&format!("metadata.name={}", policy.mgr_config.name));

    // Only name, labels, taints and cordoning of a node matter, and the node agent's evidence:
    // nodes are decoded without their status (`WatchedNode`), the bulk of a real node's bytes.
    let node_events =
        watcher(Api::<WatchedNode>::all(client.clone()), cfg.clone()).default_backoff().map_ok(|event| match event {
            watcher::Event::Apply(n) => watcher::Event::Apply(Node::from(n)),
            watcher::Event::Delete(n) => watcher::Event::Delete(Node::from(n)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitApply(n) => watcher::Event::InitApply(Node::from(n)),
            watcher::Event::InitDone => watcher::Event::InitDone,
        });
    let (nodes, node_task) = reflect_events(
        "Node",
        node_events,
        |n: &mut Node| {
            // Of the annotations, only the node agent's evidence, reduced to what is read.
            let evidence = n.metadata.annotations.as_ref().and_then(|a| a.get(provenance::EVIDENCE_ANNOTATION));
            n.metadata.annotations = evidence
                .and_then(|e| provenance::slim_evidence(e))
                .map(|e| [(provenance::EVIDENCE_ANNOTATION.to_owned(), e)].into());
        },
        &dirty,
        &metrics,
    );
    let (runtime_classes, rc_task) = reflect(
        "RuntimeClass",
        Api::<RuntimeClass>::all(client.clone()),
        cfg.clone(),
        |r: &mut RuntimeClass| r.metadata.managed_fields = None,
        &dirty,
        &metrics,
    );
    let (namespaces, ns_task) = reflect(
        "Namespace",
        Api::<Namespace>::all(client.clone()),
        cfg.clone(),
        |n: &mut Namespace| {
            n.metadata.managed_fields = None;
            n.metadata.annotations = None;
            n.spec = None;
            n.status = None;
        },
        &dirty,
        &metrics,
    );
    let (services, mut services_synced, svc_task) =
        watch_services(Api::<PartialObjectMeta<Service>>::all(client.clone()), cfg.clone(), &dirty, &metrics);
    let (config_maps, cm_task) = reflect(
        "ConfigMap",
        Api::<ConfigMap>::namespaced(client.clone(), &policy.mgr_config.namespace),
        cm_cfg,
        |_: &mut ConfigMap| {},
        &dirty,
        &metrics,
    );
    // The node groups declared to scale from zero: one more named ConfigMap.
    let (node_groups, groups_task) = reflect(
        "ConfigMap",
        Api::<ConfigMap>::namespaced(client.clone(), &policy.mgr_config.namespace),
        cfg.clone().fields(&format!("metadata.name={}", policy.node_groups)),
        |c: &mut ConfigMap| c.metadata.managed_fields = None,
        &dirty,
        &metrics,
    );
    let node_pools = Arc::new(std::sync::OnceLock::new());
    let (mut node_pools_synced, np_task) =
        watch_node_pools(client, node_pools.clone(), view.clone(), dirty.clone(), metrics.clone());
    for task in [node_task, rc_task, ns_task, cm_task, groups_task, svc_task, np_task] {
        tokio::spawn(task);
    }

    let stores = Stores { nodes, runtime_classes, namespaces, config_maps, node_groups, node_pools, services };
    let v = view.clone();
    tokio::spawn(async move {
        let synced = futures::future::try_join5(
            stores.nodes.wait_until_ready(),
            stores.runtime_classes.wait_until_ready(),
            stores.namespaces.wait_until_ready(),
            stores.config_maps.wait_until_ready(),
            stores.node_groups.wait_until_ready(),
        )
        .await;
        let services_synced = services_synced.wait_for(|synced| *synced).await.is_ok();
        let node_pools_synced = node_pools_synced.wait_for(|synced| *synced).await.is_ok();
        if synced.is_err() || !services_synced || !node_pools_synced {
            tracing::error!("a watch ended before it synced; the view stays not ready");
            return;
        }
        publish(&v, &stores, &policy, &metrics);
        v.ready.store(true, Ordering::Release);
        tracing::info!("cluster view synced");
        loop {
            dirty.notified().await;
            tokio::time::sleep(DEBOUNCE).await;
            publish(&v, &stores, &policy, &metrics);
        }
    });
    view
}

fn publish(view: &LiveView, stores: &Stores, policy: &NodePolicy, metrics: &Metrics) {
    let state = stores.build(policy);
    state.record(metrics);
    metrics.cluster_rebuilds.inc();
    tracing::debug!(
        nodes = state.nodes.node_count(),
        classes = state.nodes.classes.len(),
        possible_pools = state.capacity().pools.len(),
        "cluster view rebuilt"
    );
    view.state.store(Arc::new(state));
}
