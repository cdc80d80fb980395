//! The decision engine: pure, no I/O, no clock, no globals. The same function
//! answers the webhook (`serve`) and the CI dry-run (`check`).
//!
//! Input: the object under review (its original JSON), a read-only view of
//! the cluster (or none), and the policy. Output: a [`Decision`].
//!
//! Where each rule lives:
//! - which objects and pods are judged: [`subject`] and [`decide`] (scope);
//! - Sysbox pod hygiene: [`hygiene`];
//! - the node-pool verdict and its messages: [`verdict`], on top of
//!   [`crate::cluster`] (where a pod can land, pools, flag state);
//! - mode resolution (global, namespace label, exemptions): [`resolve_mode`];
//! - how findings become allow / warn / deny: [`conclude`];
//! - the JSON Patch: [`patch`].

pub mod finding;
pub mod hygiene;
pub mod messages;
pub mod patch;
pub mod subject;
pub mod verdict;

use json_patch::PatchOperation;
use serde_json::Value;

use crate::cluster::scheduling::Placement;
use crate::cluster::ClusterState;
use crate::policy::{Mode, Policy};
pub use finding::{Finding, Rule};
pub use subject::{Kind, SubjectError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// The object under review.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    /// `None` for kinds the engine does not judge.
    pub kind: Option<Kind>,
    pub operation: Operation,
    pub namespace: &'a str,
    pub name: &'a str,
    pub object: &'a Value,
    /// The stored object on UPDATE.
    pub old_object: Option<&'a Value>,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// In scope and nothing to say.
    Allow,
    /// Admitted with warnings.
    Warn,
    Deny,
    /// Not in scope (or mode off, or exempt): admitted untouched.
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Deny => "deny",
            Verdict::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The mode the decision was made in (`None` when skipped before one applied).
    pub mode: Option<Mode>,
    /// Why the object was skipped, or a one-line summary of the decision.
    pub reason: String,
    /// The denial message, saying what is wrong and how to fix it.
    pub message: Option<String>,
    pub patch: Vec<PatchOperation>,
    pub warnings: Vec<String>,
    /// Everything noticed, including what audit mode keeps silent.
    pub findings: Vec<Finding>,
}

/// What a decision did with one of its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Decision {
    /// What this decision did with `finding`, by the rules of [`conclude`].
    pub fn action(&self, finding: &Finding) -> Action {
        if finding.rule.is_note() {
            Action::Note
        } else if self.verdict == Verdict::Deny && finding.rule.enforceable() {
            Action::Deny
        } else if self.mode == Some(Mode::Audit) {
            Action::Audit
        } else {
            Action::Warn
        }
    }

    fn skip(reason: impl Into<String>, mode: Option<Mode>) -> Decision {
        Decision {
            verdict: Verdict::Skip,
            mode,
            reason: reason.into(),
            message: None,
            patch: Vec::new(),
            warnings: Vec::new(),
            findings: Vec::new(),
        }
    }

    pub fn allowed(&self) -> bool {
        self.verdict != Verdict::Deny
    }
}

/// The mode for a namespace: exempt namespaces skip, then the namespace label
/// (when honoured and valid), then the global mode. The second value is a note
/// when the label was present but unusable.
pub fn resolve_mode(
    namespace: &str,
    cluster: Option<&ClusterState>,
    policy: &Policy,
) -> (Option<Mode>, Option<String>) {
    if policy.exempt_namespaces.contains(namespace) {
        return (None, None);
    }
    if policy.namespace_overrides {
        let label =
            cluster.and_then(|c| c.namespace_labels(namespace)).and_then(|l| l.get(&policy.namespace_mode_label));
        if let Some(value) = label {
            return match value.parse::<Mode>() {
                Ok(mode) => (Some(mode), None),
                Err(e) => (
                    Some(policy.mode),
                    Some(format!("namespace label {}: {e}; using mode {}", policy.namespace_mode_label, policy.mode)),
                ),
            };
        }
    }
    (Some(policy.mode), None)
}

/// Whether the RuntimeClass means Sysbox: by handler when the cluster view
/// knows the class, else by the configured class names.
pub fn is_sysbox_class(name: &str, cluster: Option<&ClusterState>, policy: &Policy) -> bool {
    match cluster.and_then(|c| c.runtime_class(name)) {
        Some(rc) => rc.handler == policy.sysbox_handler,
        None => policy.sysbox_class_names.iter().any(|n| n == name),
    }
}

pub fn decide(review: &Review<'_>, cluster: Option<&ClusterState>, policy: &Policy) -> Result<Decision, SubjectError> {
    let Some(kind) = review.kind else {
        return Ok(Decision::skip("kind is not judged", None));
    };
    if !matches!(review.operation, Operation::Create | Operation::Update) {
        return Ok(Decision::skip(format!("{} is not judged", review.operation.as_str()), None));
    }
    let (mode, mode_note) = resolve_mode(review.namespace, cluster, policy);
    let Some(mode) = mode else {
        return Ok(Decision::skip(format!("namespace {} is exempt", review.namespace), None));
    };
    let base = kind.template_path();
    let runtime_class = subject::at(review.object, base)
        .and_then(|t| t.pointer("/spec/runtimeClassName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if runtime_class.is_empty() {
        return Ok(Decision::skip("no runtimeClassName", Some(mode)));
    }
    if !is_sysbox_class(runtime_class, cluster, policy) {
        return Ok(Decision::skip(format!("RuntimeClass {runtime_class} is not Sysbox"), Some(mode)));
    }
    let Some(template) = subject::read_template(kind, review.object)? else {
        return Ok(Decision::skip("no pod template", Some(mode)));
    };
    if !template.spec.has_read_only_root() {
        return Ok(Decision::skip("no container has readOnlyRootFilesystem: true", Some(mode)));
    }
    if mode == Mode::Off {
        return Ok(Decision::skip("mode off", Some(mode)));
    }

    let subject = format!("{} {}/{}", kind.as_str(), review.namespace, display_name(review));
    let mut findings = hygiene::check(&template, &policy.hygiene);
    let mut steer = false;
    match cluster {
        Some(cluster) => {
            let spec = &template.spec;
            let rc = cluster.runtime_class(runtime_class);
            let placement = Placement::new(
                spec.node_name.as_deref(),
                spec.node_selector.as_ref(),
                spec.affinity.as_ref(),
                spec.tolerations.as_deref().unwrap_or_default(),
                rc.map(|rc| (&rc.node_selector, rc.tolerations.as_slice())),
            );
            let landing = cluster.landing(&placement);
            let ctx = verdict::Context { subject: &subject, runtime_class };
            let can_steer = kind.is_pod() && placement.node_name.is_none();
            let pools = verdict::judge(&landing, &ctx, policy, can_steer);
            steer = pools.steer;
            findings.extend(pools.findings);
        }
        None => findings.push(Finding {
            rule: Rule::PoolsNotEvaluated,
            message: "node pools not evaluated: no cluster state (use --cluster-state or --live)".into(),
            warning: String::new(),
        }),
    }

    // An update that leaves the pod template as it was cannot make anything
    // worse: it is never denied, so unrelated edits (labels, replicas) go
    // through while the finding is still reported.
    let template_unchanged = review.operation == Operation::Update
        && review.old_object.is_some_and(|old| subject::at(old, base) == subject::at(review.object, base));

    let mut decision = conclude(mode, findings, template_unchanged, &subject);
    if let Some(note) = mode_note {
        decision.reason = format!("{}; {note}", decision.reason);
    }
    if decision.verdict != Verdict::Deny {
        if kind.is_pod() || policy.annotate_templates {
            decision.patch.extend(patch::annotate(review.object, base, &policy.annotation_key, "true"));
        }
        if steer {
            decision.patch.extend(patch::steer(review.object, base, &policy.nodes.flag_label));
        }
    }
    Ok(decision)
}

fn display_name<'a>(review: &Review<'a>) -> &'a str {
    if !review.name.is_empty() {
        return review.name;
    }
    subject::object_name(review.object).unwrap_or("<unnamed>")
}

/// Turns findings into a verdict under a mode.
///
/// - `enforce`: enforceable findings deny; the others warn.
/// - `warn`: every finding warns.
/// - `audit`: nothing is shown; findings stay in the decision for logs and metrics.
pub fn conclude(mode: Mode, findings: Vec<Finding>, never_deny: bool, subject: &str) -> Decision {
    let shown = |f: &&Finding| !f.rule.is_note();
    let denials: Vec<&Finding> =
        findings.iter().filter(|f| mode == Mode::Enforce && !never_deny && f.rule.enforceable()).collect();
    let mut warnings: Vec<String> = Vec::new();
    if mode != Mode::Audit {
        // Linear in the findings: an object can carry a finding per container.
        let denied: std::collections::HashSet<*const Finding> = denials.iter().map(|d| *d as *const Finding).collect();
        let mut seen = std::collections::HashSet::new();
        for f in findings.iter().filter(shown) {
            if !denied.contains(&(f as *const Finding)) && seen.insert(f.warning.as_str()) {
                warnings.push(f.warning.clone());
            }
        }
    }
    let verdict = if !denials.is_empty() {
        Verdict::Deny
    } else if !warnings.is_empty() {
        Verdict::Warn
    } else {
        Verdict::Allow
    };
    let message = (!denials.is_empty()).then(|| {
        let parts: Vec<&str> = denials.iter().map(|f| f.message.as_str()).collect();
        parts.join(" Also: ")
    });
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.id()).collect();
    let reason = if rules.is_empty() {
        format!("{subject}: in scope, no findings")
    } else {
        format!("{subject}: {}", rules.join(","))
    };
    Decision { verdict, mode: Some(mode), reason, message, patch: Vec::new(), warnings, findings }
}
