//! The policy configuration the engine decides with: modes, keys, scope and
//! which rules are on. Built once from the command line; read-only after.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// What happens when a pod's nodes lack the flag (README, "How it decides", Verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny pods whose nodes all lack the flag, and pods that break Sysbox's rules.
    Enforce,
    /// Admit them with a warning that kubectl shows.
    Warn,
    /// Admit them silently; the finding is only logged and counted.
    Audit,
    /// Skip the pod entirely: no checks, no annotation.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            "audit" => Ok(Mode::Audit),
            "off" => Ok(Mode::Off),
            other => Err(format!("{other:?} is not one of enforce, warn, audit, off")),
        }
    }
}

/// The Sysbox hygiene rules (`docs/sysbox-facts.md`, "Pods"), each of which can be turned off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HygieneRules {
    /// `SYSBOX_*` environment variables that sysbox-runc refuses.
    pub sysbox_env: bool,
    /// `privileged`, `hostNetwork`, `hostPID`, `hostIPC`.
    pub unsupported_settings: bool,
    /// `SYSBOX_*` variables the spec does not show (`envFrom`, `valueFrom`, references).
    pub env_unverified: bool,
    /// Services named `sysbox` or `sysbox-*` whose service links reach the pod.
    pub service_links: bool,
    /// No user namespace (`hostUsers: false` or the CRI-O userns annotation), or one too small.
    pub user_namespace: bool,
    /// `shareProcessNamespace: true`.
    pub share_process_namespace: bool,
}

impl Default for HygieneRules {
    fn default() -> Self {
        HygieneRules {
            sysbox_env: true,
            unsupported_settings: true,
            env_unverified: true,
            service_links: true,
            user_namespace: true,
            share_process_namespace: true,
        }
    }
}

/// Where sysbox-deploy-k8s keeps the sysbox-mgr command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgrConfigMap {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

impl Default for MgrConfigMap {
    fn default() -> Self {
        MgrConfigMap {
            namespace: "kube-system".into(),
            name: "sysbox-operational-attributes".into(),
            key: "SYSBOX_MGR_CONFIG".into(),
        }
    }
}

impl fmt::Display for MgrConfigMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl MgrConfigMap {
    /// Appends "NAMESPACE/NAME", what `Display` writes, without the
    /// formatting machinery (messages name it for each pool they describe).
    pub fn push_name(&self, out: &mut String) {
        out.push_str(&self.namespace);
        out.push('/');
        out.push_str(&self.name);
    }
}

/// How the cluster view groups and reads nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePolicy {
    /// Node labels that name a pool; the first one present wins.
    pub pool_labels: Vec<String>,
    /// Node label that records whether sysbox-mgr runs with the flag.
    pub flag_label: String,
    /// Labels that differ from node to node within a pool. Nodes that agree on
    /// everything else are judged once, as one class.
    pub identity_labels: Vec<String>,
    pub mgr_config: MgrConfigMap,
    /// Name of the ConfigMap, in `mgr_config`'s namespace, that declares node
    /// groups scaling from zero (`cluster::capacity`).
    pub node_groups: String,
    /// Accept a cluster-state snapshot that holds no Node (by default an
    /// error: such a snapshot cannot place any pod and is most often an
    /// empty or wrong file).
    pub allow_empty_snapshot: bool,
}

pub const DEFAULT_POOL_LABELS: [&str; 5] = [
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "karpenter.sh/nodepool",
];

impl Default for NodePolicy {
    fn default() -> Self {
        NodePolicy {
            pool_labels: DEFAULT_POOL_LABELS.iter().map(|s| s.to_string()).collect(),
            flag_label: "sysbox-ro.dev/relaxed-read-only".into(),
            identity_labels: vec!["kubernetes.io/hostname".into()],
            mgr_config: MgrConfigMap::default(),
            node_groups: "sysbox-ro-node-groups".into(),
            allow_empty_snapshot: false,
        }
    }
}

/// Everything the engine needs to know about the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Add a required node-affinity term so mixed-pool pods land only on nodes with the flag.
    pub steer: bool,
    /// Annotate workload templates too (off: templates are judged, not rewritten).
    pub annotate_templates: bool,
    /// Pod annotation the mutation adds.
    pub annotation_key: String,
    /// Namespace label that overrides `mode`.
    pub namespace_mode_label: String,
    /// Honour `namespace_mode_label` (off for clusters where tenants label their namespaces).
    pub namespace_overrides: bool,
    /// Namespaces the policy never touches.
    pub exempt_namespaces: BTreeSet<String>,
    /// RuntimeClass handler that means Sysbox.
    pub sysbox_handler: String,
    /// RuntimeClass names taken as Sysbox when the cluster view does not know the class.
    pub sysbox_class_names: Vec<String>,
    pub hygiene: HygieneRules,
    pub nodes: NodePolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Enforce,
            steer: false,
            annotate_templates: false,
            annotation_key: "sysbox-ro.dev/relaxed-read-only".into(),
            namespace_mode_label: "sysbox-ro.dev/mode".into(),
            namespace_overrides: true,
            exempt_namespaces: ["kube-system".to_string()].into(),
            sysbox_handler: "sysbox-runc".into(),
            sysbox_class_names: vec!["sysbox-runc".into()],
            hygiene: HygieneRules::default(),
            nodes: NodePolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_names_read_as_displayed() {
        let cm = MgrConfigMap::default();
        let mut pushed = String::from("in ");
        cm.push_name(&mut pushed);
        assert_eq!(pushed, format!("in {cm}"));
    }
}
