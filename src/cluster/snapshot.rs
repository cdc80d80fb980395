//! The snapshot source: cluster state read from files of Node, RuntimeClass,
//! ConfigMap, Namespace and Service objects, as `kubectl get ... -o yaml` prints them.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Service};
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::Value;

use super::services::ServiceIndex;
use super::{provenance, ClusterState};
use crate::manifest::{expand_lists, type_of, Documents, ManifestError};
use crate::policy::NodePolicy;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cluster state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
    #[error("cluster state {path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster state {path}: document {index} (line {line}): {}", .source)]
    Object {
        path: PathBuf,
        index: usize,
        line: usize,
        #[source]
        source: Malformed,
    },
}

/// An object of a kind the view reads whose fields do not fit that kind.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name:?} is malformed: {source}")]
pub struct Malformed {
    pub kind: String,
    pub name: String,
    #[source]
    pub source: serde_json::Error,
}

/// The objects read from snapshot files, before indexing.
#[derive(Debug, Default)]
pub struct Objects {
    pub nodes: Vec<Node>,
    pub runtime_classes: Vec<RuntimeClass>,
    pub namespaces: Vec<Namespace>,
    pub mgr_config: Option<ConfigMap>,
    /// Services named `sysbox` or `sysbox-*`; `None` when no Service was read.
    pub services: Option<ServiceIndex>,
    /// Services read whose names give no `SYSBOX_*` service links.
    pub other_services: usize,
    /// What was passed over and why (unknown kinds, other ConfigMaps).
    pub notes: Vec<String>,
}

impl Objects {
    pub fn into_state(self, policy: &NodePolicy) -> ClusterState {
        let state =
            ClusterState::build(&self.nodes, &self.runtime_classes, &self.namespaces, self.mgr_config.as_ref(), policy);
        match self.services {
            Some(services) => state.with_services(services),
            None => state,
        }
    }

    /// Reads one file (or `-` for stdin) and adds its objects.
    pub fn read_file(&mut self, path: &Path, policy: &NodePolicy) -> Result<(), SnapshotError> {
        let file = File::open(path).map_err(|source| SnapshotError::Open { path: path.into(), source })?;
        self.read(BufReader::new(file), path, policy)
    }

    pub fn read(
        &mut self,
        reader: impl std::io::BufRead,
        path: &Path,
        policy: &NodePolicy,
    ) -> Result<(), SnapshotError> {
        for doc in Documents::new(reader) {
            let doc = doc.map_err(|source| SnapshotError::Read { path: path.into(), source })?;
            let value = doc.parse().map_err(|source| SnapshotError::Read { path: path.into(), source })?;
            if value.is_null() {
                continue;
            }
            for object in expand_lists(value) {
                self.add(object, policy).map_err(|source| SnapshotError::Object {
                    path: path.into(),
                    index: doc.index,
                    line: doc.line,
                    source,
                })?;
            }
        }
        Ok(())
    }

    fn add(&mut self, object: Value, policy: &NodePolicy) -> Result<(), Malformed> {
        let (api_version, kind) = type_of(&object);
        let (api_version, kind) = (api_version.to_owned(), kind.to_owned());
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let fail = |source: serde_json::Error| Malformed { kind: kind.clone(), name: name.clone(), source };
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "Node") => self.nodes.push(serde_json::from_value(slim_node(object)).map_err(fail)?),
            ("node.k8s.io/v1", "RuntimeClass") => {
                self.runtime_classes.push(serde_json::from_value(object).map_err(fail)?)
            }
            ("v1", "Namespace") => self.namespaces.push(serde_json::from_value(object).map_err(fail)?),
            ("v1", "Service") => {
                let service: Service = serde_json::from_value(object).map_err(fail)?;
                if !self.services.get_or_insert_with(ServiceIndex::default).add_service(&service) {
                    self.other_services += 1;
                }
            }
            ("v1", "ConfigMap") => {
                let cm: ConfigMap = serde_json::from_value(object).map_err(fail)?;
                let ns = cm.metadata.namespace.as_deref().unwrap_or("");
                if ns == policy.mgr_config.namespace && name == policy.mgr_config.name {
                    self.mgr_config = Some(cm);
                } else {
                    self.notes.push(format!("ignored ConfigMap {ns}/{name}: only {} is read", policy.mgr_config));
                }
            }
            _ => self.notes.push(format!("ignored {kind} {name:?} ({api_version}): not a kind the cluster view reads")),
        }
        Ok(())
    }
}

/// Only a node's name, labels, taints and cordoning matter (as in the live
/// view), and the node agent's evidence: its status (images, conditions),
/// other annotations and managed fields are dropped before it is kept, so a
/// snapshot of thousands of nodes stays small.
fn slim_node(mut object: Value) -> Value {
    if let Some(node) = object.as_object_mut() {
        node.remove("status");
        if let Some(Value::Object(meta)) = node.get_mut("metadata") {
            // Of the annotations, only the node agent's evidence, reduced to what is read.
            let evidence = meta
                .get("annotations")
                .and_then(|a| a.get(provenance::EVIDENCE_ANNOTATION))
                .and_then(Value::as_str)
                .and_then(provenance::slim_evidence);
            meta.remove("annotations");
            if let Some(e) = evidence {
                meta.insert("annotations".into(), serde_json::json!({ provenance::EVIDENCE_ANNOTATION: e }));
            }
            meta.remove("managedFields");
        }
    }
    object
}

/// Loads a cluster state from files.
pub fn load(paths: &[PathBuf], policy: &NodePolicy) -> Result<(ClusterState, Vec<String>), SnapshotError> {
    let mut objects = Objects::default();
    for path in paths {
        objects.read_file(path, policy)?;
    }
    let mut notes = std::mem::take(&mut objects.notes);
    if objects.services.is_none() {
        notes.push("no Service objects: Services whose service links give SYSBOX_* variables are not checked".into());
    }
    if objects.other_services > 0 {
        notes.push(format!("{} Services not named sysbox or sysbox-* passed over", objects.other_services));
    }
    Ok((objects.into_state(policy), notes))
}
