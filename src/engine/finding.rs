//! Findings: what the engine noticed about a pod, before the mode decides
//! whether each one denies, warns or is only recorded.

/// Every rule the engine applies, with a stable id (used in logs, metrics,
/// `check` reports and SARIF rule ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Rule {
    /// No node the pod can land on has the flag.
    FlagMissing,
    /// Some candidate nodes lack the flag.
    FlagPartial,
    /// The flag state rests on the ConfigMap alone.
    FlagFromConfigMap,
    /// A node flag label with a value other than true/false.
    FlagLabelInvalid,
    /// No node at all can take the pod.
    NoCandidateNodes,
    /// Node pools were not evaluated (no cluster state).
    PoolsNotEvaluated,
    /// A `SYSBOX_*` environment variable sysbox-runc refuses.
    SysboxEnv,
    /// privileged, hostNetwork, hostPID or hostIPC.
    UnsupportedSetting,
    /// No user namespace requested.
    NoUserNamespace,
    /// The ConfigMap's sysbox-mgr flags would keep sysbox-mgr from starting
    /// on every node that reinstalls Sysbox from it.
    MgrConfigStopsSysbox,
    /// What the ConfigMap's sysbox-mgr flags do depends on each node.
    MgrConfigUnclear,
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::FlagMissing,
        Rule::FlagPartial,
        Rule::FlagFromConfigMap,
        Rule::FlagLabelInvalid,
        Rule::NoCandidateNodes,
        Rule::PoolsNotEvaluated,
        Rule::SysboxEnv,
        Rule::UnsupportedSetting,
        Rule::NoUserNamespace,
        Rule::MgrConfigStopsSysbox,
        Rule::MgrConfigUnclear,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::FlagMissing => "relaxed-read-only-missing",
            Rule::FlagPartial => "relaxed-read-only-partial",
            Rule::FlagFromConfigMap => "relaxed-read-only-from-configmap",
            Rule::FlagLabelInvalid => "relaxed-read-only-label-invalid",
            Rule::NoCandidateNodes => "no-candidate-nodes",
            Rule::PoolsNotEvaluated => "pools-not-evaluated",
            Rule::SysboxEnv => "sysbox-env",
            Rule::UnsupportedSetting => "sysbox-unsupported-setting",
            Rule::NoUserNamespace => "sysbox-user-namespace",
            Rule::MgrConfigStopsSysbox => "sysbox-mgr-config-stops-sysbox",
            Rule::MgrConfigUnclear => "sysbox-mgr-config-unclear",
        }
    }

    /// One line on what the rule is about.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::FlagMissing => "No node the pod can land on runs sysbox-mgr with --relaxed-read-only",
            Rule::FlagPartial => "Some nodes the pod can land on lack sysbox-mgr --relaxed-read-only",
            Rule::FlagFromConfigMap => "The flag state rests on the sysbox-operational-attributes ConfigMap alone",
            Rule::FlagLabelInvalid => "A node's relaxed-read-only label is neither \"true\" nor \"false\"",
            Rule::NoCandidateNodes => "No node matches the pod's node selector, affinity and tolerations",
            Rule::PoolsNotEvaluated => "Node pools were not evaluated because no cluster state was given",
            Rule::SysboxEnv => "A SYSBOX_* environment variable that sysbox-runc refuses",
            Rule::UnsupportedSetting => "A pod setting Sysbox does not support",
            Rule::NoUserNamespace => "A Sysbox pod without a user namespace",
            Rule::MgrConfigStopsSysbox => {
                "The ConfigMap's SYSBOX_MGR_CONFIG would stop sysbox-mgr on every node that reinstalls Sysbox"
            }
            Rule::MgrConfigUnclear => "What the ConfigMap's SYSBOX_MGR_CONFIG does depends on each node",
        }
    }

    /// Whether `enforce` mode denies on this finding (the others only warn).
    pub fn enforceable(self) -> bool {
        matches!(self, Rule::FlagMissing | Rule::SysboxEnv | Rule::UnsupportedSetting)
    }

    /// Whether the finding is a note about the evaluation, never shown to kubectl.
    pub fn is_note(self) -> bool {
        matches!(self, Rule::PoolsNotEvaluated)
    }

    /// What `enforce` mode does with the finding.
    pub fn default_action(self) -> Action {
        if self.is_note() {
            Action::Note
        } else if self.enforceable() {
            Action::Deny
        } else {
            Action::Warn
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// What a decision did with one of its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The finding is (part of) the denial.
    Deny,
    /// Shown to the user as a warning.
    Warn,
    /// Recorded only (audit mode).
    Audit,
    /// A note about the evaluation, never shown to kubectl.
    Note,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Audit => "audit",
            Action::Note => "note",
        }
    }
}

/// One thing the engine noticed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: Rule,
    /// What the decision did with it (the rule's [`Rule::default_action`]
    /// until the mode decides).
    pub action: Action,
    /// The pools the finding is about, in pool order: at most
    /// [`super::messages::LIST_LIMIT`] named, `pool_count` in all.
    pub pools: Vec<String>,
    pub pool_count: usize,
    /// The candidate nodes the finding counts (0 when it is not about nodes).
    pub nodes: usize,
    /// The full explanation with the fix; a denial's message is built from these.
    pub message: String,
    /// The same in at most [`WARNING_LIMIT`] characters, as kubectl shows it.
    pub warning: String,
}

impl Finding {
    /// A finding about the pod itself (no pools or nodes).
    pub fn new(rule: Rule, message: String, warning: String) -> Finding {
        Finding { rule, action: rule.default_action(), pools: Vec::new(), pool_count: 0, nodes: 0, message, warning }
    }

    /// The same finding about `pools` (all of them, `pool_count` in all) and `nodes` candidate nodes.
    pub fn about(mut self, pools: Vec<String>, pool_count: usize, nodes: usize) -> Finding {
        self.pools = pools;
        self.pool_count = pool_count;
        self.nodes = nodes;
        self
    }
}

/// kubectl prints a warning whole up to this length (the apiserver cuts at 256).
pub const WARNING_LIMIT: usize = 120;
