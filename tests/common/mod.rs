//! Shared builders for the in-process tests: pods, nodes and cluster states
//! written as the JSON/YAML a user or the apiserver would send.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};
use sysbox_ro_webhook::cluster::snapshot::Objects;
use sysbox_ro_webhook::cluster::ClusterState;
use sysbox_ro_webhook::engine::{self, Decision, Kind};
use sysbox_ro_webhook::intake;
use sysbox_ro_webhook::policy::Policy;

pub const FLAG: &str = "sysbox-ro.dev/relaxed-read-only";
pub const ANNOTATION: &str = "sysbox-ro.dev/relaxed-read-only";
pub const POOL: &str = "cloud.google.com/gke-nodepool";

/// A read-only Sysbox pod spec with a user namespace (`docs/sysbox-facts.md`, "Pods").
pub fn ro_spec() -> Value {
    json!({
        "runtimeClassName": "sysbox-runc",
        "hostUsers": false,
        "containers": [{
            "name": "dind",
            "image": "docker:27-dind",
            "securityContext": { "readOnlyRootFilesystem": true }
        }]
    })
}

pub fn pod(spec: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p", "namespace": "default" }, "spec": spec })
}

/// Wraps a pod spec in a workload of `kind` the way its API nests the template.
pub fn workload(kind: Kind, spec: Value) -> Value {
    let template = json!({ "metadata": { "labels": { "app": "x" } }, "spec": spec });
    match kind {
        Kind::Pod => pod(spec),
        Kind::PodTemplate => {
            json!({ "apiVersion": "v1", "kind": "PodTemplate", "metadata": { "name": "t" }, "template": template })
        }
        Kind::CronJob => json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "c" },
            "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": template } } }
        }),
        Kind::Job => {
            json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "j" }, "spec": { "template": template } })
        }
        k => json!({
            "apiVersion": "apps/v1", "kind": k.as_str(), "metadata": { "name": "w" },
            "spec": { "selector": { "matchLabels": { "app": "x" } }, "template": template }
        }),
    }
}

pub const RUNTIME_CLASS: &str = r#"
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: sysbox-runc}
handler: sysbox-runc
scheduling:
  nodeSelector: {sysbox-runtime: running}
"#;

/// A Sysbox node in `pool`; `flag` is the flag label value, if any.
pub fn node(name: &str, pool: &str, flag: Option<&str>) -> String {
    let flag = flag.map(|f| format!("\n    {FLAG}: \"{f}\"")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n    {POOL}: {pool}\n    sysbox-install: \"yes\"\n    sysbox-runtime: running{flag}\n"
    )
}

pub fn mgr_configmap(flags: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sysbox-operational-attributes\n  namespace: kube-system\ndata:\n  SYSBOX_MGR_CONFIG: \"{flags}\"\n"
    )
}

pub fn namespace(name: &str, mode: Option<&str>) -> String {
    let labels = mode.map(|m| format!("\n  labels:\n    sysbox-ro.dev/mode: {m}")).unwrap_or_default();
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}{labels}\n")
}

/// A cluster state from YAML documents.
pub fn cluster(docs: &[String]) -> ClusterState {
    cluster_with(docs, &Policy::default())
}

pub fn cluster_with(docs: &[String], policy: &Policy) -> ClusterState {
    let yaml = docs.join("\n---\n");
    let mut objects = Objects::default();
    objects.read(yaml.as_bytes(), Path::new("test"), &policy.nodes).expect("test cluster state parses");
    objects.into_state(&policy.nodes)
}

/// Decides on `object`, moved to `namespace`, as `check` and `serve` would.
pub fn decide_in(object: &Value, namespace: &str, cluster: Option<&ClusterState>, policy: &Policy) -> Decision {
    let mut object = object.clone();
    object["metadata"]["namespace"] = json!(namespace);
    engine::decide(&intake::from_manifest(&object, "default"), cluster, policy).expect("engine reads the object")
}

pub fn decide(object: &Value, cluster: Option<&ClusterState>, policy: &Policy) -> Decision {
    decide_in(object, "default", cluster, policy)
}

/// The object with the decision's patch applied.
pub fn patched(object: &Value, d: &Decision) -> Value {
    let mut out = object.clone();
    json_patch::patch(&mut out, &d.patch).expect("patch applies");
    out
}

pub fn rules(d: &Decision) -> Vec<&'static str> {
    d.findings.iter().map(|f| f.rule.id()).collect()
}
