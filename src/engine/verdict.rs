//! The relaxed-read-only verdict: given where a pod can land, which pools lack
//! the flag, what to tell the user, and whether to steer.

use std::fmt::Write;

use super::finding::{Finding, Outcomes, Rule};
use super::messages::{fit, fit_list, list, plural, push_plural, Named, LIST_LIMIT};
use crate::cluster::pools::FlagLabel;
use crate::cluster::pools::PoolId;
use crate::cluster::provenance::Provenance;
use crate::cluster::scheduling::SelectorConflict;
use crate::cluster::{FlagSource, Landing, MgrIntent, PoolReport, Possible};
use crate::policy::Policy;

/// What the message needs to say about the pod.
pub struct Context<'a> {
    /// The object: "Pod default/web", "Deployment prod/api".
    pub subject: &'a dyn std::fmt::Display,
    pub runtime_class: &'a str,
    /// Who set the nodes' flag labels, to say so.
    pub provenance: Option<&'a Provenance>,
    /// A DaemonSet: its pods land on every candidate node.
    pub daemonset: bool,
    /// What becomes of each finding, and so which of its texts to build.
    pub outcomes: Outcomes,
}

pub struct PoolVerdict {
    pub findings: Vec<Finding>,
    /// Add the flag label requirement to the pod's required node affinity.
    pub steer: bool,
}

/// The pools among the candidates that lack the flag. Messages and warnings
/// name at most [`LIST_LIMIT`] pools and only count the others ("and N
/// more"), so only those are rendered: a cluster with many lacking pools
/// costs no more per request.
struct Lacking {
    names: Named,
    /// The same with what each lacks, for full messages: empty when the
    /// finding carries no message.
    detailed: Named,
}

impl Lacking {
    /// The lacking pools, `detailed` when the finding's message is built.
    fn of(landing: &Landing<'_>, policy: &Policy, ctx: &Context<'_>, rule: Rule) -> Lacking {
        let detail = ctx.outcomes.wants_message(rule);
        let (mut names, mut detailed) = (Named::default(), Named::default());
        for (p, r) in landing.pools().filter(|(_, r)| r.tally.without_flag > 0) {
            names.add(|| p.name());
            if detail {
                detailed.add(|| lacking_detail(p, r, landing.mgr, policy, ctx.provenance));
            }
        }
        // then the pools of nodes not yet created
        for p in landing.possible.iter().filter(|p| !p.has_flag) {
            names.add(|| not_yet_created(p));
            if detail {
                detailed.add(|| format!("{} (not yet created: {})", p.pool, describe_possible(p, landing.mgr, policy)));
            }
        }
        Lacking { names, detailed }
    }

    /// The named pools and how many there are, for the finding's facts.
    fn into_named(self) -> (Vec<String>, usize) {
        (self.names.head, self.names.count)
    }
}

/// Who labelled a pool's nodes `false`: " reported by the node agent (observed T)", " set by
/// hand", or both; nothing when neither is known.
fn write_labelled_by(out: &mut String, pool: &PoolId, provenance: Option<&Provenance>) {
    let Some(o) = provenance.and_then(|p| p.pool(pool)) else { return };
    let at = o.false_observed_at.as_deref().unwrap_or("?");
    let _ = match (o.false_by_agent, o.false_by_hand) {
        (0, 0) => Ok(()),
        (_, 0) => write!(out, " reported by the node agent (observed {at})"),
        (0, _) => {
            out.push_str(" set by hand");
            Ok(())
        }
        (a, h) => write!(out, " ({a} reported by the node agent, observed {at}; {h} set by hand)"),
    };
}

/// "POOL (WHAT IT LACKS)": a pool lacking the flag, for full messages, in one
/// buffer (a message names up to [`LIST_LIMIT`] of them per decision).
fn lacking_detail(
    pool: &PoolId,
    r: &PoolReport,
    mgr: &MgrIntent,
    policy: &Policy,
    provenance: Option<&Provenance>,
) -> String {
    // Built with push_str: this runs for up to LIST_LIMIT pools per decision,
    // and `write!` costs several times as much for these short pieces.
    let flag = &policy.nodes.flag_label;
    let cm = &policy.nodes.mgr_config;
    let mut out = String::with_capacity(192);
    pool.push_name(&mut out);
    out.push_str(" (");
    let mut sep = "";
    let t = &r.tally;
    if t.labelled_false > 0 {
        push_plural(&mut out, t.labelled_false as usize, "node");
        out.push_str(" labelled ");
        out.push_str(flag);
        out.push_str("=false");
        write_labelled_by(&mut out, pool, provenance);
        sep = "; ";
    }
    let via_cm = (t.without_flag - t.labelled_false - t.unlabelled_default) as usize;
    if via_cm > 0 {
        let what = match mgr {
            MgrIntent::ConfigMapStopsMgr(_) => "would stop sysbox-mgr from starting there at their next reinstall",
            MgrIntent::ConfigMapUnclear(_) => "does something that depends on each node",
            MgrIntent::ConfigMap(_) | MgrIntent::NoConfigMap => "intends them to run without --relaxed-read-only",
        };
        out.push_str(sep);
        push_plural(&mut out, via_cm, "node");
        out.push_str(" unlabelled, and ");
        out.push_str(&cm.key);
        out.push_str(" in ConfigMap ");
        cm.push_name(&mut out);
        out.push(' ');
        out.push_str(what);
        sep = "; ";
    }
    if t.unlabelled_default > 0 {
        out.push_str(sep);
        push_plural(&mut out, t.unlabelled_default as usize, "node");
        out.push_str(" with no ");
        out.push_str(flag);
        out.push_str(" label and no ConfigMap ");
        cm.push_name(&mut out);
        sep = "; ";
    }
    if !r.invalid_labels.is_empty() {
        let vals: Vec<String> = r.invalid_labels.iter().map(|v| format!("{v:?}")).collect();
        let _ = write!(out, "{sep}label value {} is not true/false", list(&vals, 3));
    }
    out.push(')');
    out
}

/// "NodePool ci-relaxed (new)": the short name of a pool of nodes not yet
/// created, for warnings and lists of names; messages say "(not yet created: ...)".
fn not_yet_created(p: &Possible<'_>) -> String {
    format!("{} (new)", p.pool)
}

/// What a pool of nodes not yet created lacks.
fn describe_possible(p: &Possible<'_>, mgr: &MgrIntent, policy: &Policy) -> String {
    let flag = &policy.nodes.flag_label;
    let cm = &policy.nodes.mgr_config;
    match p.source {
        FlagSource::Label => format!("its template labels the nodes {flag}=false"),
        FlagSource::ConfigMap => {
            let what = match mgr {
                MgrIntent::ConfigMapStopsMgr(_) => "would stop sysbox-mgr from starting on them",
                MgrIntent::ConfigMapUnclear(_) => "does something that depends on each node",
                MgrIntent::ConfigMap(_) | MgrIntent::NoConfigMap => "intends them to run without --relaxed-read-only",
            };
            format!("no {flag} label in its template, and {} in ConfigMap {cm} {what}", cm.key)
        }
        FlagSource::Default => format!("no {flag} label in its template and no ConfigMap {cm}"),
    }
}

/// "1 node", or "2 nodes and 1 pool of nodes not yet created".
fn candidates(landing: &Landing<'_>) -> String {
    let nodes = plural(landing.nodes(), "node");
    match landing.possible.len() {
        0 => nodes,
        n => format!("{nodes} and {} of nodes not yet created", plural(n, "pool")),
    }
}

/// The pools that could take the pod but will create no node now, said after
/// a message; empty when there are none.
fn unavailable_note(landing: &Landing<'_>) -> String {
    if landing.unavailable.is_empty() {
        return String::new();
    }
    let pools: Vec<String> = landing
        .unavailable
        .iter()
        .map(|p| format!("{p} ({})", p.unavailable.as_deref().unwrap_or("unavailable")))
        .collect();
    format!(" Not counted, as they will create no node now: {}.", list(&pools, LIST_LIMIT))
}

/// The short fix; the full steps (and what applying the flag costs) are in
/// the rule's document, which `explain` prints.
fn fix(policy: &Policy, rule: Rule) -> String {
    // Texts that are only joined are joined with `concat`, which sizes the
    // result once; `format!` costs several times as much (every decision
    // about a lacking pool builds this one).
    [
        "To fix: run sysbox-mgr (Sysbox 0.6.5+) with --relaxed-read-only on those nodes and label them ",
        policy.nodes.flag_label.as_str(),
        "=true; or make the pod land on a pool that has the flag; or drop readOnlyRootFilesystem. Applying the flag \
         reinstalls Sysbox on a node and deletes its Sysbox pods (drain it first): sysbox-ro-webhook explain ",
        rule.id(),
    ]
    .concat()
}

/// The node-pool findings for a pod that can land on `landing`.
pub fn judge(landing: &Landing<'_>, ctx: &Context<'_>, policy: &Policy, can_steer: bool) -> PoolVerdict {
    // Candidates are the existing nodes and the pools of nodes not yet created.
    let candidates = landing.nodes() + landing.possible.len();
    let with = landing.with_flag() + landing.possible_with_flag();
    let without = landing.without_flag() + landing.possible_without_flag();
    let partial = with > 0 && without > 0;
    // Steering works only when the label tells the good nodes apart: on the
    // existing nodes, and in the templates of the pools to come.
    let steer = partial
        && policy.steer
        && can_steer
        && landing.reports().all(|r| r.tally.with_flag == r.tally.with_flag_by_label)
        && landing.possible.iter().all(|p| !p.has_flag || p.source == FlagSource::Label);
    let mut findings = Vec::new();
    findings.extend(invalid_labels(landing, ctx, policy));
    if candidates == 0 {
        findings.push(no_candidate_nodes(landing, ctx));
    } else if with == 0 {
        let lacking = Lacking::of(landing, policy, ctx, Rule::FlagMissing);
        findings.push(flag_missing(landing, lacking, ctx, policy));
    } else if partial && ctx.daemonset {
        let lacking = Lacking::of(landing, policy, ctx, Rule::DaemonSetFlagMissing);
        findings.push(daemonset_lacking(landing, lacking, ctx, policy));
    } else if partial {
        let lacking = Lacking::of(landing, policy, ctx, Rule::FlagPartial);
        findings.push(flag_partial(landing, lacking, ctx, policy, steer));
    }
    if !steer {
        findings.extend(flag_from_configmap(landing, ctx, policy));
    }
    findings.extend(mgr_config_unusable(landing, ctx, policy));
    PoolVerdict { findings, steer }
}

/// [`Rule::FlagLabelInvalid`]: pools with a flag label value other than true/false.
fn invalid_labels(landing: &Landing<'_>, ctx: &Context<'_>, policy: &Policy) -> Option<Finding> {
    let flag = &policy.nodes.flag_label;
    let mut invalid = Named::default();
    landing.pools().filter(|(_, r)| !r.invalid_labels.is_empty()).for_each(|(p, _)| invalid.add(|| p.name()));
    (landing.possible.iter().filter(|p| matches!(p.pool.flag, FlagLabel::Invalid(_))))
        .for_each(|p| invalid.add(|| not_yet_created(p)));
    if invalid.is_empty() {
        return None;
    }
    let finding = ctx.outcomes.finding(
        Rule::FlagLabelInvalid,
        || {
            format!(
                "node label {flag} must be \"true\" or \"false\"; other values are treated as absent (pools {}). \
                 Details: sysbox-ro-webhook explain {}",
                invalid.list(),
                Rule::FlagLabelInvalid.id()
            )
        },
        || invalid.fit(|l| format!("sysbox-ro: {flag} label is not true/false on pools {l}; ignored")),
    );
    Some(finding.about(invalid.head, invalid.count, 0))
}

/// [`Rule::NoCandidateNodes`]: no node, existing or to be created, can take the pod.
fn no_candidate_nodes(landing: &Landing<'_>, ctx: &Context<'_>) -> Finding {
    let message = || {
        format!(
            "{} cannot be scheduled: no node matches its nodeSelector, required node affinity and tolerations \
             (including RuntimeClass {}'s scheduling). Check that the Sysbox nodes are labelled and untainted.{} \
             Details: sysbox-ro-webhook explain {}",
            ctx.subject,
            ctx.runtime_class,
            unavailable_note(landing),
            Rule::NoCandidateNodes.id()
        )
    };
    let warning = || {
        if landing.unavailable.is_empty() {
            fit(format!(
                "sysbox-ro: no node matches this pod's selector/affinity/tolerations (RuntimeClass {}); it cannot \
                 schedule",
                ctx.runtime_class
            ))
        } else {
            let pools: Vec<String> = landing.unavailable.iter().map(|p| p.to_string()).collect();
            fit_list(&pools, |l| {
                format!("sysbox-ro: no node matches this pod now; {l} could host it but will create none")
            })
        }
    };
    ctx.outcomes.finding(Rule::NoCandidateNodes, message, warning)
}

/// [`Rule::FlagMissing`]: none of the candidate nodes has the flag.
fn flag_missing(landing: &Landing<'_>, lacking: Lacking, ctx: &Context<'_>, policy: &Policy) -> Finding {
    let message = || {
        format!(
            "{} uses Sysbox (RuntimeClass {}) with readOnlyRootFilesystem, but no node it can land on ({}) runs \
             sysbox-mgr with --relaxed-read-only, so /sys/fs/cgroup and /var/lib/docker would be read-only and \
             Docker inside would fail. Pools lacking the flag: {}.{} {}",
            ctx.subject,
            ctx.runtime_class,
            candidates(landing),
            lacking.detailed.list(),
            unavailable_note(landing),
            fix(policy, Rule::FlagMissing)
        )
    };
    let warning = || {
        lacking.names.fit(|l| {
            ["sysbox-ro: pools ", l, " lack sysbox-mgr --relaxed-read-only; Docker in this read-only pod will fail"]
                .concat()
        })
    };
    let finding = ctx.outcomes.finding(Rule::FlagMissing, message, warning);
    let (pools, count) = lacking.into_named();
    finding.about(pools, count, landing.without_flag())
}

/// [`Rule::DaemonSetFlagMissing`]: a DaemonSet puts a pod on every candidate
/// node (`pkg/controller/daemon`, `NodeShouldRunDaemonPod`), so the pods on
/// the nodes without the flag will fail, certainly.
fn daemonset_lacking(landing: &Landing<'_>, lacking: Lacking, ctx: &Context<'_>, policy: &Policy) -> Finding {
    let rule = Rule::DaemonSetFlagMissing;
    let finding = if landing.possible.is_empty() {
        let message = || {
            format!(
                "{} runs a read-only Sysbox pod (RuntimeClass {}) on every node it can land on, and {} of those {} {} \
                 sysbox-mgr without --relaxed-read-only: the daemon pods there would have /sys/fs/cgroup and \
                 /var/lib/docker read-only and Docker inside would fail. Pools lacking the flag: {}.{} {}",
                ctx.subject,
                ctx.runtime_class,
                plural(landing.without_flag(), "node"),
                landing.nodes(),
                if landing.without_flag() == 1 { "runs" } else { "run" },
                lacking.detailed.list(),
                unavailable_note(landing),
                fix(policy, rule)
            )
        };
        let warning = || {
            lacking.names.fit(|l| {
                format!(
                    "sysbox-ro: {} in pools {l} lack --relaxed-read-only; this DaemonSet's pods there will fail",
                    plural(landing.without_flag(), "node")
                )
            })
        };
        ctx.outcomes.finding(rule, message, warning)
    } else {
        // Nodes created later get a daemon pod too, the moment they join.
        let message = || {
            format!(
                "{} runs a read-only Sysbox pod (RuntimeClass {}) on every node it can land on ({}), nodes created \
                 later included, and some of them will run sysbox-mgr without --relaxed-read-only: the daemon pods \
                 there would have /sys/fs/cgroup and /var/lib/docker read-only and Docker inside would fail. Pools \
                 lacking the flag: {}.{} {}",
                ctx.subject,
                ctx.runtime_class,
                candidates(landing),
                lacking.detailed.list(),
                unavailable_note(landing),
                fix(policy, rule)
            )
        };
        let warning = || {
            lacking.names.fit(|l| {
                format!("sysbox-ro: pools {l} lack --relaxed-read-only; this DaemonSet's pods there will fail")
            })
        };
        ctx.outcomes.finding(rule, message, warning)
    };
    let (pools, count) = lacking.into_named();
    finding.about(pools, count, landing.without_flag())
}

/// [`Rule::RuntimeClassConflict`]: the RuntimeClass admission plugin refuses
/// a pod whose nodeSelector gives a key of the class's another value
/// (`plugin/pkg/admission/runtimeclass/admission.go`, `setScheduling`).
pub fn runtime_class_conflict(
    c: &SelectorConflict,
    subject: &dyn std::fmt::Display,
    runtime_class: &str,
    outcomes: &Outcomes,
) -> Finding {
    let message = || {
        format!(
            "{subject}: the RuntimeClass admission plugin refuses its pods: their nodeSelector has {k}={pv:?}, but \
             RuntimeClass {runtime_class} requires {k}={cv:?} (scheduling.nodeSelector). Drop {k} from the pod's \
             nodeSelector or set it to {cv:?}. Details: sysbox-ro-webhook explain {}",
            Rule::RuntimeClassConflict.id(),
            k = c.key,
            pv = c.pod_value,
            cv = c.class_value,
        )
    };
    let warning = || {
        fit(format!(
            "sysbox-ro: nodeSelector {}={} conflicts with RuntimeClass {runtime_class} ({}={}); the pod is refused",
            c.key, c.pod_value, c.key, c.class_value
        ))
    };
    outcomes.finding(Rule::RuntimeClassConflict, message, warning)
}

/// [`Rule::FlagPartial`]: some candidate nodes lack the flag; `steer` when
/// the pod is steered onto those that have it.
fn flag_partial(landing: &Landing<'_>, lacking: Lacking, ctx: &Context<'_>, policy: &Policy, steer: bool) -> Finding {
    let flag = &policy.nodes.flag_label;
    let message = || {
        let then = if steer {
            format!(
                "The pod was given a required node affinity on {flag}=true so it lands only on nodes with the flag."
            )
        } else {
            fix(policy, Rule::FlagPartial)
        };
        if landing.possible.is_empty() {
            format!(
                "{} of the {} {} can land on lack sysbox-mgr --relaxed-read-only: {}.{} {then}",
                plural(landing.without_flag(), "node"),
                landing.nodes(),
                ctx.subject,
                lacking.detailed.list(),
                unavailable_note(landing),
            )
        } else {
            format!(
                "{} can land on {}, and not all of them will run sysbox-mgr with --relaxed-read-only: {}.{} {then}",
                ctx.subject,
                candidates(landing),
                lacking.detailed.list(),
                unavailable_note(landing),
            )
        }
    };
    let warning = || {
        if steer {
            lacking.names.fit(|l| {
                ["sysbox-ro: steered to ", flag.as_str(), "=true nodes; pools ", l, " lack --relaxed-read-only"]
                    .concat()
            })
        } else {
            lacking.names.fit(|l| {
                ["sysbox-ro: pools ", l, " lack sysbox-mgr --relaxed-read-only; the pod may land there and fail"]
                    .concat()
            })
        }
    };
    let finding = ctx.outcomes.finding(Rule::FlagPartial, message, warning);
    let (pools, count) = lacking.into_named();
    finding.about(pools, count, landing.without_flag())
}

/// [`Rule::FlagFromConfigMap`]: pools whose flag rests on the ConfigMap alone.
fn flag_from_configmap(landing: &Landing<'_>, ctx: &Context<'_>, policy: &Policy) -> Option<Finding> {
    let flag = &policy.nodes.flag_label;
    let mut from_cm = Named::default();
    let mut nodes = 0;
    for (pool, r) in landing.pools() {
        let t = &r.tally;
        if t.via_configmap > 0 && t.with_flag > t.with_flag_by_label {
            from_cm.add(|| pool.name());
            nodes += (t.with_flag - t.with_flag_by_label) as usize;
        }
    }
    (landing.possible.iter().filter(|p| p.has_flag && p.source == FlagSource::ConfigMap))
        .for_each(|p| from_cm.add(|| not_yet_created(p)));
    if from_cm.is_empty() {
        return None;
    }
    let cm = &policy.nodes.mgr_config;
    let message = || {
        format!(
            "pools {} have the flag only as intended by ConfigMap {cm} ({} has --relaxed-read-only): the ConfigMap \
             reaches a node only when its Sysbox installer pod restarts, so a node may still run without it. Label \
             the nodes {flag}=true once they run with the flag. Details: sysbox-ro-webhook explain {}",
            from_cm.list(),
            cm.key,
            Rule::FlagFromConfigMap.id()
        )
    };
    let warning = || {
        from_cm.fit(|l| {
            format!("sysbox-ro: flag on {l} only intended by the ConfigMap (applied on installer restart); label nodes")
        })
    };
    let finding = ctx.outcomes.finding(Rule::FlagFromConfigMap, message, warning);
    Some(finding.about(from_cm.head, from_cm.count, nodes))
}

/// [`Rule::MgrConfigStopsSysbox`] and [`Rule::MgrConfigUnclear`]: the
/// ConfigMap's flag line, as a node that reinstalls Sysbox would read it
/// (`crate::sysbox::installed_mgr`), keeps sysbox-mgr from starting, or
/// depends on the node. A broken line concerns every candidate node, labelled
/// or not: a label says what a node runs now, and its next reinstall takes the
/// ConfigMap. An unclear one concerns the nodes whose state rests on it.
fn mgr_config_unusable(landing: &Landing<'_>, ctx: &Context<'_>, policy: &Policy) -> Option<Finding> {
    let cm = &policy.nodes.mgr_config;
    let flag = &policy.nodes.flag_label;
    let (rule, concerned): (Rule, fn(&PoolReport) -> usize) = match landing.mgr {
        MgrIntent::ConfigMapStopsMgr(_) => (Rule::MgrConfigStopsSysbox, |r| r.tally.nodes()),
        MgrIntent::ConfigMapUnclear(_) => (Rule::MgrConfigUnclear, |r| r.tally.via_configmap as usize),
        MgrIntent::ConfigMap(_) | MgrIntent::NoConfigMap => return None,
    };
    let mut pools = Named::default();
    let mut nodes = 0usize;
    for (pool, r) in landing.pools() {
        let n = concerned(r);
        if n > 0 {
            pools.add(|| pool.name());
            nodes += n;
        }
    }
    // Nodes not yet created install Sysbox from the ConfigMap when they join:
    // a line that stops sysbox-mgr concerns them all.
    let stops = matches!(landing.mgr, MgrIntent::ConfigMapStopsMgr(_));
    (landing.possible.iter().filter(|p| stops || p.source == FlagSource::ConfigMap))
        .for_each(|p| pools.add(|| not_yet_created(p)));
    if pools.is_empty() {
        return None;
    }
    let finding = match landing.mgr {
        MgrIntent::ConfigMapStopsMgr(why) => ctx.outcomes.finding(
            rule,
            || {
                format!(
                    "{key} in ConfigMap {cm} would stop sysbox-mgr from starting on every node that reinstalls \
                     Sysbox from it (the installer pod restarting), leaving no Sysbox there: {why}. This concerns {} \
                     the pod can land on (pools {}). Fix the value before any Sysbox installer pod restarts. \
                     Details: sysbox-ro-webhook explain {}",
                    plural(nodes, "node"),
                    pools.list(),
                    rule.id(),
                    key = cm.key
                )
            },
            || fit(format!("sysbox-ro: {} stops sysbox-mgr at reinstall: {why}", cm.key)),
        ),
        MgrIntent::ConfigMapUnclear(why) => ctx.outcomes.finding(
            rule,
            || {
                format!(
                    "what {key} in ConfigMap {cm} does on a node depends on that node: {why}. {} the pod can land \
                     on (pools {}) have no {flag} label, so their flag state is unknown and counted as lacking. \
                     Label them {flag}=true or false. Details: sysbox-ro-webhook explain {}",
                    plural(nodes, "node"),
                    pools.list(),
                    rule.id(),
                    key = cm.key
                )
            },
            || pools.fit(|l| format!("sysbox-ro: {} depends on each node; label pools {l} {flag}=true|false", cm.key)),
        ),
        MgrIntent::ConfigMap(_) | MgrIntent::NoConfigMap => return None,
    };
    Some(finding.about(pools.head, pools.count, nodes))
}
