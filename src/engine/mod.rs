//! The decision engine: pure, no I/O, no clock, no globals. The same function
//! answers the webhook (`serve`) and the CI dry-run (`check`).
//!
//! Input: the object under review (its original JSON, or `serve`'s typed
//! view of it read from the request body: [`Object`]), a read-only view of
//! the cluster (or none), and the policy. Output: a [`Decision`].
//!
//! Where each rule lives:
//! - which objects and pods are judged: [`subject`] and [`decide`] (scope);
//! - Sysbox pod hygiene: [`hygiene`];
//! - the node-pool verdict and its messages: [`verdict`], on top of
//!   [`crate::cluster`] (where a pod can land, pools, flag state);
//! - mode resolution (global, namespace label, exemptions): [`resolve_mode`];
//! - what each finding's [`Action`] is, and so which of its texts are
//!   built: [`Outcomes`]; how findings become allow / warn / deny: [`conclude`];
//! - the JSON Patch: [`patch`];
//! - whether a pod that already runs is at risk (the audit): [`audit`].
//!
//! A [`Decision`] carries facts, not prose to re-read: the subject, the
//! verdict, why an object was skipped, each finding with its rule, action
//! and the pools and nodes it is about, and the patch. Every renderer (the
//! admission response, `check`'s reports, logs, metrics) reads those.

pub mod audit;
pub mod env;
pub mod finding;
pub mod hygiene;
pub mod messages;
pub mod object;
pub mod patch;
pub mod subject;
pub mod verdict;

use json_patch::PatchOperation;
use serde_json::Value;

use crate::cluster::scheduling::{self, Placement};
use crate::cluster::ClusterState;
use crate::policy::{Mode, Policy};
pub use finding::{Action, Finding, Outcomes, Rule, Texts};
pub use object::Object;
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
    pub object: Object<'a>,
    /// The stored object on UPDATE.
    pub old_object: Option<&'a Value>,
}

/// The outcome, for every shell: what the webhook answers, what `check`
/// reports, what logs and metrics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// In scope and nothing to say.
    Allow,
    /// Admitted with warnings.
    Warn,
    Deny,
    /// Not in scope (or mode off, or exempt): admitted untouched.
    Skip,
    /// The object cannot be read (a document that does not parse, a spec
    /// with fields of the wrong type, a request without its object). The
    /// engine never decides this; the shells report it.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Deny => "deny",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
        }
    }
}

/// The object a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: Kind,
    pub namespace: String,
    /// `metadata.name`, else `metadata.generateName`; empty when neither.
    pub name: String,
}

impl std::fmt::Display for Subject {
    /// "Pod default/web"; an object without a name is `<unnamed>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() { "<unnamed>" } else { &self.name };
        write!(f, "{} {}/{name}", self.kind.as_str(), self.namespace)
    }
}

/// Why an object was not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    KindNotJudged,
    OperationNotJudged(Operation),
    /// The namespace is exempt.
    Exempt(String),
    NoRuntimeClass,
    /// The RuntimeClass does not mean Sysbox.
    NotSysbox(String),
    NoPodTemplate,
    NoReadOnlyRoot,
    ModeOff,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::KindNotJudged => f.write_str("kind is not judged"),
            Skip::OperationNotJudged(op) => write!(f, "{} is not judged", op.as_str()),
            Skip::Exempt(ns) => write!(f, "namespace {ns} is exempt"),
            Skip::NoRuntimeClass => f.write_str("no runtimeClassName"),
            Skip::NotSysbox(rc) => write!(f, "RuntimeClass {rc} is not Sysbox"),
            Skip::NoPodTemplate => f.write_str("no pod template"),
            Skip::NoReadOnlyRoot => f.write_str("no container has readOnlyRootFilesystem: true"),
            Skip::ModeOff => f.write_str("mode off"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What was judged; `None` when the kind or operation is not judged.
    pub subject: Option<Subject>,
    pub verdict: Verdict,
    /// The mode the decision was made in (`None` when skipped before one applied).
    pub mode: Option<Mode>,
    /// Why the object was skipped (with [`Verdict::Skip`]).
    pub skipped: Option<Skip>,
    /// Notes on the evaluation itself, e.g. an unusable namespace mode label.
    pub notes: Vec<String>,
    /// The denial message, saying what is wrong and how to fix it: the
    /// messages of the findings that deny.
    pub message: Option<String>,
    pub patch: Vec<PatchOperation>,
    /// The warnings kubectl shows: those of the findings that warn, once each.
    pub warnings: Vec<String>,
    /// Everything noticed, each with what was done with it, including what
    /// audit mode keeps silent.
    pub findings: Vec<Finding>,
}

impl Decision {
    fn skip(subject: Option<Subject>, why: Skip, mode: Option<Mode>) -> Decision {
        Decision {
            subject,
            verdict: Verdict::Skip,
            mode,
            skipped: Some(why),
            notes: Vec::new(),
            message: None,
            patch: Vec::new(),
            warnings: Vec::new(),
            findings: Vec::new(),
        }
    }

    pub fn allowed(&self) -> bool {
        self.verdict != Verdict::Deny
    }

    /// The rule ids of the findings, comma-separated.
    pub fn rule_ids(&self) -> String {
        let ids: Vec<&str> = self.findings.iter().map(|f| f.rule.id()).collect();
        ids.join(",")
    }

    /// One line on the decision: why it was skipped, or its findings by rule
    /// (`render` names each rule), then its notes.
    pub fn summary(&self, render: impl Fn(Rule) -> &'static str) -> String {
        let mut out = match &self.skipped {
            Some(why) => why.to_string(),
            None if self.findings.is_empty() => "in scope, no findings".to_owned(),
            None => self.findings.iter().map(|f| render(f.rule)).collect::<Vec<_>>().join(","),
        };
        for note in &self.notes {
            out.push_str("; ");
            out.push_str(note);
        }
        out
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

/// The decision on `review`, every finding with its message and warning.
pub fn decide(review: &Review<'_>, cluster: Option<&ClusterState>, policy: &Policy) -> Result<Decision, SubjectError> {
    decide_with(review, cluster, policy, Texts::All)
}

/// The decision on `review`, its findings carrying the `texts` asked for:
/// the same verdict, warnings, denial message, patch and facts either way.
pub fn decide_with(
    review: &Review<'_>,
    cluster: Option<&ClusterState>,
    policy: &Policy,
    texts: Texts,
) -> Result<Decision, SubjectError> {
    let Some(kind) = review.kind else {
        return Ok(Decision::skip(None, Skip::KindNotJudged, None));
    };
    if !matches!(review.operation, Operation::Create | Operation::Update) {
        return Ok(Decision::skip(None, Skip::OperationNotJudged(review.operation), None));
    }
    let subject = Subject { kind, namespace: review.namespace.to_owned(), name: review.name.to_owned() };
    review.object.check_shape(kind)?;
    let (mode, mode_note) = resolve_mode(review.namespace, cluster, policy);
    let Some(mode) = mode else {
        return Ok(Decision::skip(Some(subject), Skip::Exempt(review.namespace.to_owned()), None));
    };
    let base = kind.template_path();
    let runtime_class = review.object.runtime_class(kind);
    if runtime_class.is_empty() {
        return Ok(Decision::skip(Some(subject), Skip::NoRuntimeClass, Some(mode)));
    }
    if !is_sysbox_class(runtime_class, cluster, policy) {
        return Ok(Decision::skip(Some(subject), Skip::NotSysbox(runtime_class.to_owned()), Some(mode)));
    }
    let Some(template) = review.object.template(kind)? else {
        return Ok(Decision::skip(Some(subject), Skip::NoPodTemplate, Some(mode)));
    };
    if !template.spec.has_read_only_root() {
        return Ok(Decision::skip(Some(subject), Skip::NoReadOnlyRoot, Some(mode)));
    }
    if mode == Mode::Off {
        return Ok(Decision::skip(Some(subject), Skip::ModeOff, Some(mode)));
    }

    // An update that leaves the pod template as it was cannot make anything
    // worse: it is never denied, so unrelated edits (labels, replicas) go
    // through while the finding is still reported. (An object read as a view
    // is never compared: `serve` reads a request that carries its stored
    // object whole, so a view here has no stored object, and this is false.)
    let template_unchanged = review.operation == Operation::Update
        && review.old_object.is_some_and(|old| {
            review.object.json().is_some_and(|object| subject::at(old, base) == subject::at(object, base))
        });

    let outcomes = Outcomes { mode, never_deny: template_unchanged, texts };
    let spec = &template.spec;
    let mut budget = env::Budget::per_pod();
    let envs: Vec<env::EnvJudgement> = spec.all_containers().map(|(_, c)| env::judge(c, &mut budget)).collect();
    // The relaxed-read-only question is about read-only containers in
    // system-container mode: SYSBOX_SYSCONT_MODE=FALSE turns off Sysbox's
    // implicit mounts and /sys handling (sysbox-runc spec.go, sysMgrSetupMounts).
    let relaxed_applies = audit::relaxed_applies(spec, &envs);
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut steer = false;
    let rc = cluster.and_then(|c| c.runtime_class(runtime_class));
    let conflict = rc.and_then(|rc| scheduling::selector_conflict(spec.node_selector.as_ref(), &rc.node_selector));
    let landing = match (cluster, &conflict) {
        (Some(cluster), None) => {
            let placement = Placement::new(
                spec.node_name.as_deref(),
                spec.node_selector.as_ref(),
                spec.affinity.as_ref(),
                spec.tolerations.as_deref().unwrap_or_default(),
                rc.map(|rc| (&rc.node_selector, rc.tolerations.as_slice())),
            )
            .tolerating(scheduling::default_toleration_seconds(spec.tolerations.as_deref().unwrap_or_default()));
            let placement = if kind == Kind::DaemonSet {
                placement.tolerating(scheduling::daemon_tolerations(spec.host_network == Some(true)))
            } else {
                placement
            };
            Some((cluster.landing(&placement), placement.node_name.is_none()))
        }
        _ => None,
    };
    let hygiene_ctx = hygiene::Context {
        namespace: review.namespace,
        services: cluster.and_then(ClusterState::services),
        landing: landing.as_ref().map(|(l, _)| l),
        outcomes,
    };
    findings.extend(hygiene::check(&template, &envs, &policy.hygiene, &hygiene_ctx));
    if let Some(c) = &conflict {
        findings.push(verdict::runtime_class_conflict(c, &subject, runtime_class, &outcomes));
    } else if !relaxed_applies {
        notes.push(
            "every read-only container sets SYSBOX_SYSCONT_MODE=FALSE: the relaxed-read-only question does not arise"
                .to_owned(),
        );
    } else {
        match &landing {
            // An empty view (a live cluster whose Node list came back empty, or
            // a snapshot explicitly allowed to be empty) says nothing about
            // where the pod lands: say so on every verdict rather than judge.
            Some(_) if cluster.is_some_and(|c| c.nodes.node_count() == 0 && c.capacity().is_empty()) => {
                findings.push(outcomes.finding(
                    Rule::ClusterViewEmpty,
                    || {
                        "the cluster view holds no Node, so where the pod can land and whether those nodes run \
                         sysbox-mgr with --relaxed-read-only were not evaluated"
                            .into()
                    },
                    || "sysbox-ro: the cluster view has no nodes; node pools were not checked".into(),
                ))
            }
            Some((landing, unpinned)) => {
                let ctx = verdict::Context {
                    subject: &subject,
                    runtime_class,
                    daemonset: kind == Kind::DaemonSet,
                    provenance: cluster.map(|c| &c.provenance),
                    outcomes,
                };
                let can_steer = kind.is_pod() && *unpinned;
                let pools = verdict::judge(landing, &ctx, policy, can_steer);
                steer = pools.steer;
                findings.extend(pools.findings);
            }
            None => findings.push(outcomes.finding(
                Rule::PoolsNotEvaluated,
                || "node pools not evaluated: no cluster state (use --cluster-state or --live)".into(),
                String::new,
            )),
        }
    }

    let mut decision = conclude(mode, findings, template_unchanged);
    decision.subject = Some(subject);
    decision.notes.extend(mode_note);
    decision.notes.extend(notes);
    if decision.verdict != Verdict::Deny && relaxed_applies {
        if kind.is_pod() || policy.annotate_templates {
            let slot = review.object.annotation_slot(kind, &policy.annotation_key);
            decision.patch.extend(patch::annotate(slot, base, &policy.annotation_key, "true"));
        }
        if steer {
            decision.patch.extend(patch::steer(review.object.affinity(kind), base, &policy.nodes.flag_label));
        }
    }
    Ok(decision)
}

/// Turns findings into a verdict under a mode: each finding's action is
/// [`Outcomes::action`].
pub fn conclude(mode: Mode, mut findings: Vec<Finding>, never_deny: bool) -> Decision {
    let outcomes = Outcomes { mode, never_deny, texts: Texts::All };
    for f in &mut findings {
        f.action = outcomes.action(f.rule);
    }
    let mut warnings: Vec<String> = Vec::new();
    // n log n in the findings (an object can carry a finding per
    // container), and no hashing of whole warnings for the usual one or two.
    let mut seen = std::collections::BTreeSet::new();
    for f in findings.iter().filter(|f| f.action == Action::Warn) {
        if seen.insert(f.warning.as_str()) {
            warnings.push(f.warning.clone());
        }
    }
    let denials: Vec<&str> = findings.iter().filter(|f| f.action == Action::Deny).map(|f| f.message.as_str()).collect();
    let verdict = if !denials.is_empty() {
        Verdict::Deny
    } else if !warnings.is_empty() {
        Verdict::Warn
    } else {
        Verdict::Allow
    };
    let message = (!denials.is_empty()).then(|| denials.join(" Also: "));
    Decision {
        subject: None,
        verdict,
        mode: Some(mode),
        skipped: None,
        notes: Vec::new(),
        message,
        patch: Vec::new(),
        warnings,
        findings,
    }
}
