//! The snapshot source: cluster state read from files of Node, RuntimeClass,
//! ConfigMap, Namespace and Service objects, as `kubectl get ... -o yaml` prints them.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Service};
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::Value;

use super::services::ServiceIndex;
use super::{capacity, provenance, ClusterState, NodeIntake};
use crate::manifest::{expand_lists, json, type_of, yaml, ManifestError};
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
    #[error(
        "cluster state {}: no Node found; a cluster state without nodes cannot place any pod (pass \
         --allow-empty-cluster to accept it)",
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoNodes { files: Vec<PathBuf> },
    #[error("cluster state {path}: document {index} (line {line}): {}", .source)]
    Object {
        path: PathBuf,
        index: usize,
        line: usize,
        #[source]
        source: Malformed,
    },
    #[error("cluster state {path}: document {index} (line {line}): its items were read as a List's, but its kind {kind:?} is not a List")]
    NotAList { path: PathBuf, index: usize, line: usize, kind: String },
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
    /// Nodes, grouped as they are read (the objects are not kept).
    pub nodes: NodeIntake,
    pub runtime_classes: Vec<RuntimeClass>,
    pub namespaces: Vec<Namespace>,
    pub mgr_config: Option<ConfigMap>,
    /// Services named `sysbox` or `sysbox-*`; `None` when no Service was read.
    pub services: Option<ServiceIndex>,
    /// Karpenter NodePools (slimmed JSON) and the node-groups declaration: pools of nodes not yet created.
    pub node_pools: Vec<Value>,
    pub node_groups: Option<ConfigMap>,
    /// Services read whose names give no `SYSBOX_*` service links.
    pub other_services: usize,
    /// What was passed over and why (unknown kinds, other ConfigMaps).
    pub notes: Vec<String>,
    /// Pods and ReplicaSets passed over (`audit` streams them from the files itself).
    pub workload_objects: usize,
}

impl Objects {
    pub fn into_state(self, policy: &NodePolicy) -> ClusterState {
        let capacity = capacity::Capacity::build(&self.node_pools, self.node_groups.as_ref(), policy);
        let state = ClusterState::from_intake(
            self.nodes,
            &self.runtime_classes,
            &self.namespaces,
            self.mgr_config.as_ref(),
            policy,
        )
        .with_capacity(capacity);
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

    /// Reads a stream of YAML documents, or one JSON object, straight from
    /// `reader`: the items of a `List` are read and kept (slimmed) one at a
    /// time, so a file costs the objects kept, not its size.
    pub fn read(
        &mut self,
        reader: impl std::io::BufRead,
        path: &Path,
        policy: &NodePolicy,
    ) -> Result<(), SnapshotError> {
        read_objects(reader, path, Trim::NodeStatus, &mut |object| self.add(object, policy))
    }

    fn add(&mut self, object: Value, policy: &NodePolicy) -> Result<(), Malformed> {
        let (api_version, kind) = type_of(&object);
        let (api_version, kind) = (api_version.to_owned(), kind.to_owned());
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let fail = |source: serde_json::Error| Malformed { kind: kind.clone(), name: name.clone(), source };
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "Node") => {
                let node: Node = serde_json::from_value(slim_node(object)).map_err(fail)?;
                self.nodes.add(&node, policy)
            }
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
                } else if capacity::is_node_groups(&cm, policy) {
                    self.node_groups = Some(cm);
                } else {
                    self.notes.push(format!("ignored ConfigMap {ns}/{name}: only {} is read", policy.mgr_config));
                }
            }
            ("karpenter.sh/v1", "NodePool") => {
                let mut object = object;
                capacity::slim_node_pool(&mut object);
                capacity::check_node_pool(&object).map_err(fail)?;
                self.node_pools.push(object);
            }
            // What `audit` streams from the same files: counted, never kept.
            ("v1", "Pod") | ("apps/v1", "ReplicaSet") => self.workload_objects += 1,
            _ => self.notes.push(format!("ignored {kind} {name:?} ({api_version}): not a kind the cluster view reads")),
        }
        Ok(())
    }
}

/// Reads a stream of YAML documents, or one JSON object, straight from
/// `reader`, handing each object (each item of a `List`) to `add` as it is
/// read: a file costs what `add` keeps, not its size. `add`'s error stops
/// the read, located at the document.
pub fn stream(
    reader: impl std::io::BufRead,
    path: &Path,
    add: &mut dyn FnMut(Value) -> Result<(), Malformed>,
) -> Result<(), SnapshotError> {
    read_objects(reader, path, Trim::Nothing, add)
}

/// What the reader passes over while it reads, before an object reaches `add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trim {
    Nothing,
    /// The `status` of Nodes (images, conditions, addresses, capacity): the
    /// cluster view reads none of it ([`slim_node`] drops it in any case),
    /// and it is most of a Node's bytes.
    NodeStatus,
}

impl Trim {
    fn skip_status_of(self) -> &'static [&'static str] {
        match self {
            Trim::Nothing => &[],
            Trim::NodeStatus => &["Node"],
        }
    }
}

/// [`stream`], passing over what `trim` says.
fn read_objects(
    mut reader: impl std::io::BufRead,
    path: &Path,
    trim: Trim,
    add: &mut dyn FnMut(Value) -> Result<(), Malformed>,
) -> Result<(), SnapshotError> {
    let read_err = |source| SnapshotError::Read { path: path.into(), source };
    if first_byte(&mut reader).map_err(|e| read_err(ManifestError::Io(e)))?.is_some_and(|b| b == b'{' || b == b'[') {
        return stream_json(reader, path, trim, add);
    }
    let chars = Chars::new(reader, MAX_FILE_BYTES);
    let failure = chars.failure();
    let mut loader =
        yaml::Loader::new(saphyr_parser::Parser::new_from_iter(chars)).skip_status_of(trim.skip_status_of());
    let mut index = 0;
    loop {
        let mut bad: Option<SnapshotError> = None;
        let mut each = |object: Value, _: usize, line: usize| {
            add(object).map_err(|source| {
                bad = Some(SnapshotError::Object { path: path.into(), index, line, source });
                String::from("malformed object")
            })
        };
        let next = loader.next_document(&mut yaml::Items::Stream { assume_list: true, each: &mut each });
        if let Some(e) = failure.take() {
            return Err(read_err(ManifestError::Io(e)));
        }
        if let Some(e) = bad {
            return Err(e);
        }
        let doc = match next {
            Ok(Some(doc)) => doc,
            Ok(None) => return Ok(()),
            Err(e) => {
                let message = format!("{} at line {} column {}", e.message, e.line, e.col);
                return Err(read_err(ManifestError::Parse { index, line: loader.document_line(), message }));
            }
        };
        let line = doc.line;
        if doc.streamed.is_some() {
            let (_, kind) = type_of(&doc.value);
            if !kind.ends_with("List") {
                return Err(SnapshotError::NotAList { path: path.into(), index, line, kind: kind.to_owned() });
            }
        } else if !doc.value.is_null() {
            for object in expand_lists(doc.value) {
                add(object).map_err(|source| SnapshotError::Object { path: path.into(), index, line, source })?;
            }
        }
        index += 1;
    }
}

fn stream_json(
    reader: impl std::io::BufRead,
    path: &Path,
    trim: Trim,
    add: &mut dyn FnMut(Value) -> Result<(), Malformed>,
) -> Result<(), SnapshotError> {
    let object_err = |source| SnapshotError::Object { path: path.into(), index: 0, line: 1, source };
    let mut bad = None;
    let mut each = |object: Value, _: usize| {
        add(object).map_err(|source| {
            bad = Some(object_err(source));
            String::from("malformed object")
        })
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = serde::de::DeserializeSeed::deserialize(
        json::TopLevel { each: &mut each, skip_status_of: trim.skip_status_of() },
        &mut de,
    )
    .and_then(|top| {
        de.end()?;
        Ok(top)
    });
    if let Some(e) = bad {
        return Err(e);
    }
    let (fields, streamed) = result.map_err(|e| SnapshotError::Read {
        path: path.into(),
        source: ManifestError::Parse { index: 0, line: e.line(), message: e.to_string() },
    })?;
    let object = Value::Object(fields);
    if streamed.is_some() {
        let (_, kind) = type_of(&object);
        if !kind.ends_with("List") {
            return Err(SnapshotError::NotAList { path: path.into(), index: 0, line: 1, kind: kind.to_owned() });
        }
        return Ok(());
    }
    add(object).map_err(object_err)
}

/// Opens a cluster-state file and streams its objects to `add` ([`stream`]).
pub fn stream_file(path: &Path, add: &mut dyn FnMut(Value) -> Result<(), Malformed>) -> Result<(), SnapshotError> {
    let file = File::open(path).map_err(|source| SnapshotError::Open { path: path.into(), source })?;
    stream(BufReader::new(file), path, add)
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
    // Pools of nodes not yet created can place pods on a cluster without nodes.
    if objects.nodes.node_count() == 0
        && objects.node_pools.is_empty()
        && objects.node_groups.is_none()
        && !policy.allow_empty_snapshot
    {
        return Err(SnapshotError::NoNodes { files: paths.to_vec() });
    }
    let mut notes = std::mem::take(&mut objects.notes);
    if objects.services.is_none() {
        notes.push("no Service objects: Services whose service links give SYSBOX_* variables are not checked".into());
    }
    if objects.workload_objects > 0 {
        notes.push(format!("{} Pods and ReplicaSets passed over (only audit reads them)", objects.workload_objects));
    }
    if objects.other_services > 0 {
        notes.push(format!("{} Services not named sysbox or sysbox-* passed over", objects.other_services));
    }
    let state = objects.into_state(policy);
    notes.extend(state.capacity().notes.iter().cloned());
    Ok((state, notes))
}

/// The most a cluster-state file may hold.
pub const MAX_FILE_BYTES: usize = 4 << 30;

/// The first byte that is not white space, without consuming it.
fn first_byte(reader: &mut impl std::io::BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => return Ok(Some(buf[i])),
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// The characters of a UTF-8 reader, for the YAML parser. A read error,
/// invalid UTF-8 or more than `limit` bytes end the characters and are kept
/// in [`Chars::failure`], which the reader checks after every document, so
/// a cut-off input is never taken for a complete one.
struct Chars<R> {
    reader: R,
    decoded: std::collections::VecDeque<char>,
    carry: Vec<u8>,
    read: usize,
    limit: usize,
    failure: std::rc::Rc<std::cell::Cell<Option<std::io::Error>>>,
}

#[derive(Clone)]
struct Failure(std::rc::Rc<std::cell::Cell<Option<std::io::Error>>>);

impl Failure {
    fn take(&self) -> Option<std::io::Error> {
        self.0.take()
    }
}

impl<R: std::io::BufRead> Chars<R> {
    fn new(reader: R, limit: usize) -> Self {
        Chars { reader, decoded: Default::default(), carry: Vec::new(), read: 0, limit, failure: Default::default() }
    }

    fn failure(&self) -> Failure {
        Failure(self.failure.clone())
    }

    fn fail(&mut self, e: std::io::Error) -> Option<char> {
        self.failure.set(Some(e));
        self.limit = 0;
        None
    }
}

impl<R: std::io::BufRead> Iterator for Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        use std::io::{Error, ErrorKind};
        loop {
            if let Some(c) = self.decoded.pop_front() {
                return Some(c);
            }
            if self.limit == 0 {
                return None;
            }
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(e),
            };
            if chunk.is_empty() {
                if !self.carry.is_empty() {
                    return self.fail(Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8"));
                }
                return None;
            }
            let n = chunk.len().min(1 << 16);
            self.carry.extend_from_slice(&chunk[..n]);
            self.reader.consume(n);
            self.read += n;
            if self.read > self.limit {
                return self.fail(Error::new(ErrorKind::InvalidData, format!("larger than {} GiB", self.limit >> 30)));
            }
            let valid = match std::str::from_utf8(&self.carry) {
                Ok(s) => s.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => return self.fail(Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8")),
            };
            let text = std::str::from_utf8(&self.carry[..valid]).unwrap_or_default();
            self.decoded.extend(text.chars());
            self.carry.drain(..valid);
        }
    }
}
