//! Findings: what the engine noticed about a pod, and what the mode makes of
//! each one ([`Outcomes`]): deny, warn, or only record.

use crate::policy::Mode;

/// Every rule the engine applies, with a stable id (used in logs, metrics,
/// `check` reports and SARIF rule ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Rule {
    /// No node the pod can land on has the flag.
    FlagMissing,
    /// Some candidate nodes lack the flag.
    FlagPartial,
    /// A DaemonSet has candidate nodes without the flag: its pods there will fail.
    DaemonSetFlagMissing,
    /// The flag state rests on the ConfigMap alone.
    FlagFromConfigMap,
    /// A node flag label with a value other than true/false.
    FlagLabelInvalid,
    /// No node at all can take the pod.
    NoCandidateNodes,
    /// The pod's nodeSelector contradicts its RuntimeClass's: the RuntimeClass
    /// admission plugin refuses the pod.
    RuntimeClassConflict,
    /// Node pools were not evaluated (no cluster state).
    PoolsNotEvaluated,
    /// The cluster view holds no Node, so node pools were not evaluated.
    ClusterViewEmpty,
    /// A `SYSBOX_*` environment variable sysbox-runc refuses.
    SysboxEnv,
    /// `SYSBOX_*` variables whose names or values cannot be read from the spec.
    SysboxEnvUnverified,
    /// A Service named `sysbox` or `sysbox-*` gives the pod `SYSBOX_*` service-link variables.
    ServiceLinks,
    /// privileged, hostNetwork, hostPID or hostIPC.
    UnsupportedSetting,
    /// No user namespace requested (on some candidate pools).
    NoUserNamespace,
    /// The CRI-O user namespace annotation asks for fewer than 65,536 IDs.
    UserNamespaceSize,
    /// `shareProcessNamespace: true`: systemd in the pod is not PID 1.
    SharedProcessNamespace,
    /// The ConfigMap's sysbox-mgr flags would keep sysbox-mgr from starting
    /// on every node that reinstalls Sysbox from it.
    MgrConfigStopsSysbox,
    /// What the ConfigMap's sysbox-mgr flags do depends on each node.
    MgrConfigUnclear,
}

impl Rule {
    pub const ALL: [Rule; 18] = [
        Rule::FlagMissing,
        Rule::FlagPartial,
        Rule::DaemonSetFlagMissing,
        Rule::FlagFromConfigMap,
        Rule::FlagLabelInvalid,
        Rule::NoCandidateNodes,
        Rule::RuntimeClassConflict,
        Rule::PoolsNotEvaluated,
        Rule::ClusterViewEmpty,
        Rule::SysboxEnv,
        Rule::SysboxEnvUnverified,
        Rule::ServiceLinks,
        Rule::UnsupportedSetting,
        Rule::NoUserNamespace,
        Rule::UserNamespaceSize,
        Rule::SharedProcessNamespace,
        Rule::MgrConfigStopsSysbox,
        Rule::MgrConfigUnclear,
    ];

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    pub fn id(self) -> &'static str {
        match self {
            Rule::FlagMissing => "relaxed-read-only-missing",
            Rule::FlagPartial => "relaxed-read-only-partial",
            Rule::DaemonSetFlagMissing => "relaxed-read-only-daemonset",
            Rule::FlagFromConfigMap => "relaxed-read-only-from-configmap",
            Rule::FlagLabelInvalid => "relaxed-read-only-label-invalid",
            Rule::NoCandidateNodes => "no-candidate-nodes",
            Rule::RuntimeClassConflict => "runtime-class-conflict",
            Rule::PoolsNotEvaluated => "pools-not-evaluated",
            Rule::ClusterViewEmpty => "cluster-view-empty",
            Rule::SysboxEnv => "sysbox-env",
            Rule::SysboxEnvUnverified => "sysbox-env-unverified",
            Rule::ServiceLinks => "sysbox-service-links",
            Rule::UnsupportedSetting => "sysbox-unsupported-setting",
            Rule::NoUserNamespace => "sysbox-user-namespace",
            Rule::UserNamespaceSize => "sysbox-user-namespace-size",
            Rule::SharedProcessNamespace => "sysbox-share-process-namespace",
            Rule::MgrConfigStopsSysbox => "sysbox-mgr-config-stops-sysbox",
            Rule::MgrConfigUnclear => "sysbox-mgr-config-unclear",
        }
    }

    /// One line on what the rule is about.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::FlagMissing => "No node the pod can land on runs sysbox-mgr with --relaxed-read-only",
            Rule::FlagPartial => "Some nodes the pod can land on lack sysbox-mgr --relaxed-read-only",
            Rule::DaemonSetFlagMissing => {
                "A DaemonSet runs a pod on every candidate node, and some of them lack sysbox-mgr --relaxed-read-only"
            }
            Rule::FlagFromConfigMap => "The flag state rests on the sysbox-operational-attributes ConfigMap alone",
            Rule::FlagLabelInvalid => "A node's relaxed-read-only label is neither \"true\" nor \"false\"",
            Rule::NoCandidateNodes => "No node matches the pod's node selector, affinity and tolerations",
            Rule::RuntimeClassConflict => {
                "The pod's nodeSelector contradicts its RuntimeClass's scheduling.nodeSelector, so the pod is refused"
            }
            Rule::PoolsNotEvaluated => "Node pools were not evaluated because no cluster state was given",
            Rule::ClusterViewEmpty => "The cluster view holds no Node, so node pools were not evaluated",
            Rule::SysboxEnv => "A SYSBOX_* environment variable that sysbox-runc refuses",
            Rule::SysboxEnvUnverified => "SYSBOX_* environment variables whose names or values cannot be checked",
            Rule::ServiceLinks => {
                "A Service named sysbox or sysbox-* injects SYSBOX_* variables that sysbox-runc refuses"
            }
            Rule::UnsupportedSetting => {
                "A pod setting Sysbox refuses (host namespaces) or does not support (privileged)"
            }
            Rule::NoUserNamespace => "A Sysbox pod without a user namespace on some of its nodes",
            Rule::UserNamespaceSize => "The CRI-O user namespace annotation asks for fewer than 65536 IDs",
            Rule::SharedProcessNamespace => "shareProcessNamespace: true keeps systemd in the pod from being PID 1",
            Rule::MgrConfigStopsSysbox => {
                "The ConfigMap's SYSBOX_MGR_CONFIG would stop sysbox-mgr on every node that reinstalls Sysbox"
            }
            Rule::MgrConfigUnclear => "What the ConfigMap's SYSBOX_MGR_CONFIG does depends on each node",
        }
    }

    /// The rule's document: what it means, why (with the upstream sources)
    /// and the full fix, as in `docs/rules/<id>.md` (compiled in).
    pub fn document(self) -> &'static str {
        match self {
            Rule::FlagMissing => include_str!("../../docs/rules/relaxed-read-only-missing.md"),
            Rule::FlagPartial => include_str!("../../docs/rules/relaxed-read-only-partial.md"),
            Rule::DaemonSetFlagMissing => include_str!("../../docs/rules/relaxed-read-only-daemonset.md"),
            Rule::FlagFromConfigMap => include_str!("../../docs/rules/relaxed-read-only-from-configmap.md"),
            Rule::FlagLabelInvalid => include_str!("../../docs/rules/relaxed-read-only-label-invalid.md"),
            Rule::NoCandidateNodes => include_str!("../../docs/rules/no-candidate-nodes.md"),
            Rule::RuntimeClassConflict => include_str!("../../docs/rules/runtime-class-conflict.md"),
            Rule::PoolsNotEvaluated => include_str!("../../docs/rules/pools-not-evaluated.md"),
            Rule::ClusterViewEmpty => include_str!("../../docs/rules/cluster-view-empty.md"),
            Rule::SysboxEnv => include_str!("../../docs/rules/sysbox-env.md"),
            Rule::SysboxEnvUnverified => include_str!("../../docs/rules/sysbox-env-unverified.md"),
            Rule::ServiceLinks => include_str!("../../docs/rules/sysbox-service-links.md"),
            Rule::UnsupportedSetting => include_str!("../../docs/rules/sysbox-unsupported-setting.md"),
            Rule::NoUserNamespace => include_str!("../../docs/rules/sysbox-user-namespace.md"),
            Rule::UserNamespaceSize => include_str!("../../docs/rules/sysbox-user-namespace-size.md"),
            Rule::SharedProcessNamespace => include_str!("../../docs/rules/sysbox-share-process-namespace.md"),
            Rule::MgrConfigStopsSysbox => include_str!("../../docs/rules/sysbox-mgr-config-stops-sysbox.md"),
            Rule::MgrConfigUnclear => include_str!("../../docs/rules/sysbox-mgr-config-unclear.md"),
        }
    }

    /// Where the rule's document is in the repository.
    pub fn document_path(self) -> String {
        format!("docs/rules/{}.md", self.id())
    }

    /// Whether `enforce` mode denies on this finding (the others only warn).
    pub fn enforceable(self) -> bool {
        matches!(
            self,
            Rule::FlagMissing
                | Rule::DaemonSetFlagMissing
                | Rule::RuntimeClassConflict
                | Rule::SysboxEnv
                | Rule::ServiceLinks
                | Rule::UnsupportedSetting
                | Rule::UserNamespaceSize
        )
    }

    /// Whether the finding is a note about the evaluation, never shown to kubectl.
    pub fn is_note(self) -> bool {
        matches!(self, Rule::PoolsNotEvaluated)
    }

    /// What `enforce` mode does with the finding ([`Outcomes::action`]).
    pub fn default_action(self) -> Action {
        Outcomes { mode: Mode::Enforce, never_deny: false, texts: Texts::All }.action(self)
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
    /// Empty when the decision was asked for [`Texts::Shown`] and the finding does not deny.
    pub message: String,
    /// The same in at most [`WARNING_LIMIT`] characters, as kubectl shows it.
    /// Empty when the decision was asked for [`Texts::Shown`] and the finding does not warn.
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

/// Which of the findings' texts a decision builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texts {
    /// Every finding's message and warning: what `check` and the audit report.
    All,
    /// What an admission response shows, nothing more: the message of a
    /// finding that denies and the warning of one that warns. The other texts
    /// are left empty and never built (the webhook answers with the verdict,
    /// the warnings and the denial, and logs and counts rules, not prose).
    Shown,
}

/// What the decision will do with each finding, known before any finding is
/// built: the rule of [`Action`]s, and so which texts each finding needs.
#[derive(Debug, Clone, Copy)]
pub struct Outcomes {
    pub mode: Mode,
    /// An update that leaves the pod template as it was is never denied.
    pub never_deny: bool,
    pub texts: Texts,
}

impl Outcomes {
    /// What a finding of `rule` becomes under the mode:
    /// - `enforce`: enforceable findings deny; the others warn.
    /// - `warn`: every finding warns.
    /// - `audit`: nothing is shown; findings stay in the decision for logs and metrics.
    ///
    /// Notes about the evaluation are never shown.
    pub fn action(&self, rule: Rule) -> Action {
        if rule.is_note() {
            Action::Note
        } else if self.mode == Mode::Enforce && !self.never_deny && rule.enforceable() {
            Action::Deny
        } else if self.mode == Mode::Audit {
            Action::Audit
        } else {
            Action::Warn
        }
    }

    /// Whether a finding of `rule` carries its message.
    pub fn wants_message(&self, rule: Rule) -> bool {
        self.texts == Texts::All || self.action(rule) == Action::Deny
    }

    /// Whether a finding of `rule` carries its warning.
    pub fn wants_warning(&self, rule: Rule) -> bool {
        self.texts == Texts::All || self.action(rule) == Action::Warn
    }

    /// A finding of `rule`, with the texts it needs built and the others empty.
    pub fn finding(&self, rule: Rule, message: impl FnOnce() -> String, warning: impl FnOnce() -> String) -> Finding {
        let message = if self.wants_message(rule) { message() } else { String::new() };
        let warning = if self.wants_warning(rule) { warning() } else { String::new() };
        Finding { action: self.action(rule), ..Finding::new(rule, message, warning) }
    }
}

/// kubectl prints a warning whole up to this length (the apiserver cuts at 256).
pub const WARNING_LIMIT: usize = 120;
