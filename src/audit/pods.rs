//! Where the pods come from, a page at a time, and how a pod's ReplicaSet
//! is resolved to its Deployment.
//!
//! - Live: `GET /api/v1/pods?limit=N&continue=...` with a field selector
//!   leaving out Succeeded and Failed pods. Each page is judged on the
//!   blocking pool ([`judge_page`]), reduced to what the grouping needs, and
//!   dropped before the next is asked for. ReplicaSets are read only for
//!   pods at risk, one `GET` (metadata only) per ReplicaSet, remembered for
//!   the run ([`ReplicaSets`]).
//! - Snapshot: Pods are streamed from the `--cluster-state` files object by
//!   object (never kept in the cluster state); a first pass keeps only the
//!   ReplicaSets that a Deployment controls.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::Client;
use serde_json::Value;

use super::{judge_pod, Findings, Judged, PodBrief};
use crate::cluster::snapshot::{self, SnapshotError};
use crate::cluster::ClusterState;
use crate::manifest::type_of;
use crate::policy::Policy;

/// Running and pending pods only (the API server filters them).
pub const PHASE_SELECTOR: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// ReplicaSets remembered in one run, at most (beyond, a ReplicaSet is named as such).
pub const MAX_REPLICASETS: usize = 50_000;

/// How long one request (a page of pods, a ReplicaSet) may take before the run gives up on it.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Judges a page of pods: what the grouping needs of each, and its outcome.
pub fn judge_page(
    pods: Vec<Result<Value, (PodBrief, String)>>,
    cluster: &ClusterState,
    policy: &Policy,
) -> Vec<(PodBrief, Judged)> {
    pods.into_iter()
        .map(|pod| pod.map(|pod| (judge_pod(&pod, cluster, policy), pod)))
        .map(|judged| match judged {
            Err((brief, why)) => (brief, Judged::Unreadable(why)),
            // Only counted: no need to keep even its name.
            Ok((Judged::NotInScope, _)) => {
                (PodBrief { namespace: String::new(), name: String::new(), controller: None }, Judged::NotInScope)
            }
            Ok((judged, pod)) => (PodBrief::of(&pod), judged),
        })
        .collect()
}

/// The Deployment of each ReplicaSet a Deployment controls, by namespace and name.
#[derive(Debug, Default)]
pub struct ReplicaSets {
    known: HashMap<(String, String), Option<String>>,
}

impl ReplicaSets {
    /// Remembers a ReplicaSet (its object or metadata as JSON).
    pub fn add(&mut self, rs: &Value) {
        if self.known.len() >= MAX_REPLICASETS {
            return;
        }
        let brief = PodBrief::of(rs);
        let deployment = brief.controller.filter(|(k, _)| k == "Deployment").map(|(_, n)| n);
        self.known.insert((brief.namespace, brief.name), deployment);
    }

    /// The Deployment of a known ReplicaSet; `None` when unknown or it has none.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<String> {
        self.known.get(&(namespace.to_owned(), name.to_owned())).cloned().flatten()
    }

    fn knows(&self, namespace: &str, name: &str) -> bool {
        self.known.contains_key(&(namespace.to_owned(), name.to_owned()))
    }

    /// Reads the ReplicaSet from the API server unless already known; an
    /// error (forbidden, gone) leaves it unknown and is said once.
    pub async fn resolve(&mut self, client: &Client, namespace: &str, name: &str, notes: &mut Vec<String>) {
        if self.knows(namespace, name) || self.known.len() >= MAX_REPLICASETS {
            return;
        }
        let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
        let answer = match tokio::time::timeout(REQUEST_TIMEOUT, api.get_metadata_opt(name)).await {
            Ok(answer) => answer,
            Err(_) => Err(kube::Error::Service(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()).into())),
        };
        match answer {
            Ok(Some(meta)) => match serde_json::to_value(&meta) {
                Ok(v) => self.add(&v),
                Err(_) => {
                    self.known.insert((namespace.to_owned(), name.to_owned()), None);
                }
            },
            Ok(None) => {
                self.known.insert((namespace.to_owned(), name.to_owned()), None);
            }
            Err(e) => {
                self.known.insert((namespace.to_owned(), name.to_owned()), None);
                if notes.len() < super::NAMES_KEPT {
                    notes.push(format!("ReplicaSet {namespace}/{name} cannot be read ({e}): named as such"));
                }
            }
        }
    }
}

/// Why a live audit could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot list pods: {0}")]
    Api(#[source] kube::Error),
    #[error("cannot list pods: the API server did not answer a page within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("cannot judge a page of pods: {0}")]
    Judge(String),
}

/// Audits the live cluster's pods page by page against `cluster`.
/// `notes` collects what could not be resolved.
pub async fn audit_live(
    client: &Client,
    cluster: Arc<ClusterState>,
    policy: Arc<Policy>,
    page_size: u32,
    notes: &mut Vec<String>,
) -> Result<Findings, ListError> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut findings = Findings::default();
    let mut replicasets = ReplicaSets::default();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(page_size.max(1)).fields(PHASE_SELECTOR);
        if let Some(t) = token.take() {
            params = params.continue_token(&t);
        }
        let page = tokio::time::timeout(REQUEST_TIMEOUT, api.list(&params))
            .await
            .map_err(|_| ListError::Timeout)?
            .map_err(ListError::Api)?;
        token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        // A typed Pod always serialises; were one not to, it is reported unreadable, never dropped.
        let pods: Vec<Result<Value, (PodBrief, String)>> = page
            .items
            .into_iter()
            .map(|p| {
                serde_json::to_value(&p).map_err(|e| {
                    let meta = &p.metadata;
                    let brief = PodBrief {
                        namespace: meta.namespace.clone().unwrap_or_default(),
                        name: meta.name.clone().unwrap_or_default(),
                        controller: None,
                    };
                    (brief, e.to_string())
                })
            })
            .collect();
        let (c, p) = (cluster.clone(), policy.clone());
        let judged = tokio::task::spawn_blocking(move || judge_page(pods, &c, &p))
            .await
            .map_err(|e| ListError::Judge(e.to_string()))?;
        for (brief, judged) in judged {
            if let (Judged::AtRisk(_), Some(rs)) = (&judged, brief.replicaset()) {
                replicasets.resolve(client, &brief.namespace, rs, notes).await;
            }
            let deployment = brief.replicaset().and_then(|rs| replicasets.deployment(&brief.namespace, rs));
            findings.add(&brief, judged, || brief.owner(deployment));
        }
        if token.is_none() {
            return Ok(findings);
        }
    }
}

/// Audits the Pods of snapshot files against `cluster`, streaming them.
pub fn audit_snapshot(paths: &[PathBuf], cluster: &ClusterState, policy: &Policy) -> Result<Findings, SnapshotError> {
    let mut replicasets = ReplicaSets::default();
    for path in paths {
        snapshot::stream_file(path, &mut |object| {
            if type_of(&object) == ("apps/v1", "ReplicaSet") {
                replicasets.add(&object);
            }
            Ok(())
        })?;
    }
    let mut findings = Findings::default();
    for path in paths {
        snapshot::stream_file(path, &mut |object| {
            if type_of(&object) == ("v1", "Pod") {
                let judged = judge_pod(&object, cluster, policy);
                let brief = PodBrief::of(&object);
                let deployment = brief.replicaset().and_then(|rs| replicasets.deployment(&brief.namespace, rs));
                findings.add(&brief, judged, || brief.owner(deployment));
            }
            Ok(())
        })?;
    }
    Ok(findings)
}
