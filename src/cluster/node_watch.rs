//! What the live view decodes of a Node: metadata (less `managedFields`) and spec. The
//! `status` of a real node (addresses, capacity, conditions, nodeInfo and the list of every
//! image on it: most of its bytes) is passed over while the JSON is read, never allocated.
//!
//! Kubernetes has no field projection on list or watch, so every byte of a Node still crosses
//! the wire; what this saves is the decoding and the transient memory of each page of the
//! initial list and of every watch event (kubelets rewrite their status every few minutes, so
//! on a large cluster most Node events are status-only). The decoded node becomes a [`Node`]
//! with no status, the type the rest of the cluster view reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

/// A Node as the live view watches it: the object's metadata and spec; its status skipped.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WatchedNode {
    #[serde(deserialize_with = "metadata")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<NodeSpec>,
}

impl From<WatchedNode> for Node {
    fn from(n: WatchedNode) -> Node {
        Node { metadata: n.metadata, spec: n.spec, status: None }
    }
}

impl k8s_openapi::Resource for WatchedNode {
    const API_VERSION: &'static str = <Node as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Node as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Node as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Node as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Node as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <Node as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for WatchedNode {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The metadata fields kept: what names the node, what the watcher resumes from
/// (`resourceVersion`), what the view reads (labels, annotations) and what says the node is
/// going away. `managedFields` (often the largest part of a node's metadata) and the rest are
/// passed over unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeptMetadata {
    name: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

fn metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = KeptMetadata::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        uid: m.uid,
        resource_version: m.resource_version,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        labels: m.labels,
        annotations: m.annotations,
        ..ObjectMeta::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node_json() -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "gke-prod-ci-0-1a2b",
                "uid": "0b6e1d2c-0000-4000-8000-000000000001",
                "resourceVersion": "48123456",
                "creationTimestamp": "2025-07-14T06:01:33Z",
                "labels": { "kubernetes.io/hostname": "gke-prod-ci-0-1a2b", "sysbox-ro.dev/relaxed-read-only": "true" },
                "annotations": { "node.alpha.kubernetes.io/ttl": "0" },
                "managedFields": [{ "manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1",
                                    "fieldsV1": { "f:status": { "f:images": {} } } }]
            },
            "spec": {
                "providerID": "gce://prod/europe-west1-b/gke-prod-ci-0-1a2b",
                "taints": [{ "key": "sandbox.example.com/dedicated", "value": "sysbox", "effect": "NoSchedule" }],
                "unschedulable": true
            },
            "status": {
                "capacity": { "cpu": "8" },
                "images": [{ "names": ["docker.io/library/busybox:1.37"], "sizeBytes": 2156190 }],
                "nodeInfo": { "kubeletVersion": "v1.33.4" }
            }
        })
    }

    #[test]
    fn keeps_metadata_and_spec_and_drops_status_and_managed_fields() {
        let watched: WatchedNode = serde_json::from_value(node_json()).unwrap();
        let full: Node = serde_json::from_value(node_json()).unwrap();
        let node = Node::from(watched);
        assert!(node.status.is_none());
        assert!(node.metadata.managed_fields.is_none());
        assert_eq!(node.spec, full.spec, "the whole spec: taints, unschedulable, providerID");
        assert_eq!(node.metadata.labels, full.metadata.labels);
        assert_eq!(node.metadata.annotations, full.metadata.annotations);
        assert_eq!(node.metadata.name, full.metadata.name);
        assert_eq!(node.metadata.resource_version, full.metadata.resource_version, "the watcher resumes from it");
        assert_eq!(node.metadata.uid, full.metadata.uid);
        assert_eq!(node.metadata.creation_timestamp, full.metadata.creation_timestamp);
    }

    #[test]
    fn a_node_being_deleted_says_so() {
        let mut v = node_json();
        v["metadata"]["deletionTimestamp"] = json!("2025-08-01T10:41:07Z");
        let node = Node::from(serde_json::from_value::<WatchedNode>(v).unwrap());
        assert!(node.metadata.deletion_timestamp.is_some());
    }

    #[test]
    fn a_node_without_spec_or_status_decodes() {
        let node: WatchedNode = serde_json::from_value(json!({ "metadata": { "name": "bare" } })).unwrap();
        assert_eq!(node.metadata.name.as_deref(), Some("bare"));
        assert!(node.spec.is_none());
    }

    #[test]
    fn a_malformed_status_is_still_json_checked() {
        // Skipped, not trusted: a status that is not JSON at all fails the whole object.
        let text = r#"{"metadata":{"name":"n"},"status":{"images":[1,}}"#;
        assert!(serde_json::from_str::<WatchedNode>(text).is_err());
    }

    #[test]
    fn watched_as_nodes() {
        use kube::Resource as _;
        assert_eq!(WatchedNode::kind(&()), "Node");
        assert_eq!(WatchedNode::plural(&()), "nodes");
        assert_eq!(WatchedNode::api_version(&()), "v1");
        assert_eq!(WatchedNode::url_path(&(), None), "/api/v1/nodes");
    }
}
