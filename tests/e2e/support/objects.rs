//! The API objects the scenarios stage, as JSON manifests for `kubectl apply -f -`.
//!
//! The cluster: a `sysbox-runc` RuntimeClass as sysbox-deploy-k8s installs it (its
//! `scheduling.nodeSelector` picks nodes labelled `sysbox-runtime: running`), and GKE-style node
//! pools, each a set of plain Node objects labelled as sysbox-deploy-k8s and the pool's own
//! configuration would label them:
//!
//! | pool      | nodes                  | flag label | used by                         |
//! |-----------|------------------------|------------|---------------------------------|
//! | relaxed   | relaxed-1, relaxed-2   | true       | allowed pods, mixed (steer)     |
//! | strict    | strict-1               | false      | denials, warn mode, mixed       |
//! | late      | late-1                 | false      | relabelled to true while live   |
//! | cm        | cm-1                   | (none)     | flag from the ConfigMap only    |
//! | general   | general-1 (no Sysbox)  | (none)     | never a candidate               |
//!
//! Pods pick a pool with a nodeSelector on the pool label; "mixed" pods select the label
//! [`MIXED`], which relaxed and strict nodes carry.

use serde_json::{json, Map, Value};

pub const FLAG: &str = "sysbox-ro.dev/relaxed-read-only";
pub const ANNOTATION: &str = "sysbox-ro.dev/relaxed-read-only";
pub const MODE_LABEL: &str = "sysbox-ro.dev/mode";
pub const POOL: &str = "cloud.google.com/gke-nodepool";
pub const MIXED: &str = "e2e.sysbox-ro.dev/mixed";
/// `webhooks[0].name` of the MutatingWebhookConfiguration in deploy/base.
pub const WEBHOOK_NAME: &str = "relaxed-read-only.sysbox-ro.dev";
/// The taint kube-apiserver's TaintNodesByCondition plugin puts on every new Node; with no
/// kubelet to clear it, the harness removes it as a node turning Ready would.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready:NoSchedule-";

pub fn runtime_class() -> Value {
    json!({
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": { "name": "sysbox-runc" },
        "handler": "sysbox-runc",
        "scheduling": { "nodeSelector": { "sysbox-runtime": "running" } }
    })
}

/// A node of `pool` where sysbox-deploy-k8s has installed Sysbox; `flag` is its flag label.
pub fn sysbox_node(name: &str, pool: &str, flag: Option<&str>, extra: &[(&str, &str)]) -> Value {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/hostname".into(), json!(name));
    labels.insert(POOL.into(), json!(pool));
    labels.insert("sysbox-install".into(), json!("yes"));
    labels.insert("sysbox-runtime".into(), json!("running"));
    if let Some(f) = flag {
        labels.insert(FLAG.into(), json!(f));
    }
    for (k, v) in extra {
        labels.insert((*k).into(), json!(v));
    }
    json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": name, "labels": labels } })
}

/// A node without Sysbox.
pub fn plain_node(name: &str, pool: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name, POOL: pool } }
    })
}

/// The whole staged cluster (see the module docs) as one List.
pub fn cluster() -> Value {
    list(vec![
        runtime_class(),
        sysbox_node("relaxed-1", "relaxed", Some("true"), &[(MIXED, "yes")]),
        sysbox_node("relaxed-2", "relaxed", Some("true"), &[(MIXED, "yes")]),
        sysbox_node("strict-1", "strict", Some("false"), &[(MIXED, "yes")]),
        sysbox_node("late-1", "late", Some("false"), &[]),
        sysbox_node("cm-1", "cm", None, &[]),
        plain_node("general-1", "general"),
    ])
}

pub fn list(items: Vec<Value>) -> Value {
    json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

pub fn namespace(name: &str, mode: Option<&str>) -> Value {
    let mut ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
    if let Some(m) = mode {
        ns["metadata"]["labels"] = json!({ MODE_LABEL: m });
    }
    ns
}

/// The pod spec of a read-only Sysbox pod (with the user namespace Sysbox needs) restricted by
/// `node_selector`.
pub fn sysbox_spec(node_selector: &[(&str, &str)]) -> Value {
    let selector: Map<String, Value> = node_selector.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let mut spec = json!({
        "runtimeClassName": "sysbox-runc",
        "hostUsers": false,
        "containers": [{
            "name": "dind",
            "image": "docker:27-dind",
            "securityContext": { "readOnlyRootFilesystem": true }
        }]
    });
    if !selector.is_empty() {
        spec["nodeSelector"] = Value::Object(selector);
    }
    spec
}

/// A read-only Sysbox pod that can land only on `pool`.
pub fn sysbox_pod(ns: &str, name: &str, pool: &str) -> Value {
    pod(ns, name, sysbox_spec(&[(POOL, pool)]))
}

pub fn pod(ns: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name, "namespace": ns }, "spec": spec })
}

/// A pod with no runtimeClassName (but readOnlyRootFilesystem, so only the missing class
/// keeps it out of scope).
pub fn ordinary_pod(ns: &str, name: &str) -> Value {
    pod(
        ns,
        name,
        json!({ "containers": [{
            "name": "app",
            "image": "registry.example/app:1",
            "securityContext": { "readOnlyRootFilesystem": true }
        }] }),
    )
}

pub fn deployment(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } }, "spec": spec }
        }
    })
}

/// `kube-system/sysbox-operational-attributes` as sysbox-deploy-k8s reads it.
pub fn mgr_configmap(flags: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "sysbox-operational-attributes", "namespace": "kube-system" },
        "data": { "SYSBOX_MGR_CONFIG": flags }
    })
}

/// `metadata.annotations[ANNOTATION]` of an object.
pub fn annotation(object: &Value) -> Option<&str> {
    object.pointer("/metadata/annotations")?.get(ANNOTATION)?.as_str()
}

/// The required node-selector terms of a pod.
pub fn required_terms(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
