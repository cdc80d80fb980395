//! The relaxed-read-only verdict: given where a pod can land, which pools lack
//! the flag, what to tell the user, and whether to steer.

use super::finding::{Finding, Rule};
use super::messages::{fit, fit_list, list, plural, LIST_LIMIT};
use crate::cluster::pools::PoolId;
use crate::cluster::provenance::Provenance;
use crate::cluster::{Landing, PoolReport};
use crate::policy::Policy;

/// What the message needs to say about the pod.
pub struct Context<'a> {
    /// "Pod default/web", "Deployment prod/api".
    pub subject: &'a str,
    pub runtime_class: &'a str,
    /// Who set the nodes' flag labels, to say so.
    pub provenance: Option<&'a Provenance>,
}

pub struct PoolVerdict {
    pub findings: Vec<Finding>,
    /// Add the flag label requirement to the pod's required node affinity.
    pub steer: bool,
}

/// Who labelled a pool's nodes `false`: " by the node agent (observed T)", " by hand", or both.
fn labelled_by(pool: &PoolId, provenance: Option<&Provenance>) -> String {
    let Some(o) = provenance.and_then(|p| p.pool(pool)) else {
        return String::new();
    };
    let at = o.false_observed_at.as_deref().unwrap_or("?");
    match (o.false_by_agent, o.false_by_hand) {
        (0, 0) => String::new(),
        (_, 0) => format!(" reported by the node agent (observed {at})"),
        (0, _) => " set by hand".to_owned(),
        (a, h) => format!(" ({a} reported by the node agent, observed {at}; {h} set by hand)"),
    }
}

fn describe_lacking(pool: &PoolId, r: &PoolReport, policy: &Policy, provenance: Option<&Provenance>) -> String {
    let flag = &policy.nodes.flag_label;
    let cm = &policy.nodes.mgr_config;
    let mut parts = Vec::new();
    if r.labelled_false > 0 {
        parts.push(format!(
            "{} labelled {flag}=false{}",
            plural(r.labelled_false, "node"),
            labelled_by(pool, provenance)
        ));
    }
    let via_cm = r.without_flag - r.labelled_false - r.unlabelled_default;
    if via_cm > 0 {
        parts.push(format!(
            "{} unlabelled, and {} in ConfigMap {cm} lacks --relaxed-read-only",
            plural(via_cm, "node"),
            cm.key
        ));
    }
    if r.unlabelled_default > 0 {
        parts.push(format!("{} with no {flag} label and no ConfigMap {cm}", plural(r.unlabelled_default, "node")));
    }
    if !r.invalid_labels.is_empty() {
        let vals: Vec<String> = r.invalid_labels.iter().map(|v| format!("{v:?}")).collect();
        parts.push(format!("label value {} is not true/false", list(&vals, 3)));
    }
    parts.join("; ")
}

fn fix(policy: &Policy) -> String {
    let cm = &policy.nodes.mgr_config;
    let flag = &policy.nodes.flag_label;
    format!(
        "To fix: add --relaxed-read-only to {key} in ConfigMap {cm} and restart the Sysbox installer \
         (sysbox-deploy-k8s) pods on those nodes, then label the nodes {flag}=true (nodes that already run \
         sysbox-mgr with the flag need only the label); or make the pod land on a pool that has the flag; \
         or drop readOnlyRootFilesystem",
        key = cm.key
    )
}

pub fn judge(landing: &Landing, ctx: &Context<'_>, policy: &Policy, can_steer: bool) -> PoolVerdict {
    let mut findings = Vec::new();
    let flag = &policy.nodes.flag_label;
    // Messages and warnings name at most LIST_LIMIT pools and only count the
    // others ("and N more"): the others are left blank rather than rendered,
    // so a cluster with many lacking pools costs no more per request.
    let lacking: Vec<_> = landing.pools.iter().filter(|(_, r)| r.without_flag > 0).collect();
    let shown = |i: usize, text: &dyn Fn() -> String| if i < LIST_LIMIT { text() } else { String::new() };
    let lacking_names: Vec<String> =
        lacking.iter().enumerate().map(|(i, (p, _))| shown(i, &|| p.to_string())).collect();
    let detailed: Vec<String> = lacking
        .iter()
        .enumerate()
        .map(|(i, (p, r))| shown(i, &|| format!("{p} ({})", describe_lacking(p, r, policy, ctx.provenance))))
        .collect();

    let invalid: Vec<String> =
        landing.pools.iter().filter(|(_, r)| !r.invalid_labels.is_empty()).map(|(p, _)| p.to_string()).collect();
    if !invalid.is_empty() {
        findings.push(Finding {
            rule: Rule::FlagLabelInvalid,
            message: format!(
                "node label {flag} must be \"true\" or \"false\"; other values are treated as absent (pools {})",
                list(&invalid, LIST_LIMIT)
            ),
            warning: fit_list(&invalid, |l| format!("sysbox-ro: {flag} label is not true/false on pools {l}; ignored")),
        });
    }

    let mut steer = false;
    if landing.nodes() == 0 {
        findings.push(Finding {
            rule: Rule::NoCandidateNodes,
            message: format!(
                "{} cannot be scheduled: no node matches its nodeSelector, required node affinity and tolerations \
                 (including RuntimeClass {}'s scheduling). Check that the Sysbox nodes are labelled and untainted",
                ctx.subject, ctx.runtime_class
            ),
            warning: fit(&format!(
                "sysbox-ro: no node matches this pod's selector/affinity/tolerations (RuntimeClass {}); it cannot schedule",
                ctx.runtime_class
            )),
        });
    } else if landing.with_flag() == 0 {
        findings.push(Finding {
            rule: Rule::FlagMissing,
            message: format!(
                "{} uses Sysbox (RuntimeClass {}) with readOnlyRootFilesystem, but no node it can land on ({}) runs \
                 sysbox-mgr with --relaxed-read-only, so /sys/fs/cgroup and /var/lib/docker would be read-only and \
                 Docker inside would fail. Pools lacking the flag: {}. {}",
                ctx.subject,
                ctx.runtime_class,
                plural(landing.nodes(), "node"),
                list(&detailed, LIST_LIMIT),
                fix(policy)
            ),
            warning: fit_list(&lacking_names, |l| {
                format!(
                    "sysbox-ro: pools {l} lack sysbox-mgr --relaxed-read-only; Docker in this read-only pod will fail"
                )
            }),
        });
    } else if landing.without_flag() > 0 {
        steer = policy.steer && can_steer && landing.reports().all(|r| r.with_flag == r.with_flag_by_label);
        let message = format!(
            "{} of the {} {} can land on lack sysbox-mgr --relaxed-read-only: {}. {}",
            plural(landing.without_flag(), "node"),
            landing.nodes(),
            ctx.subject,
            list(&detailed, LIST_LIMIT),
            if steer {
                format!("The pod was given a required node affinity on {flag}=true so it lands only on nodes with the flag.")
            } else {
                fix(policy)
            }
        );
        let warning = if steer {
            fit_list(&lacking_names, |l| {
                format!("sysbox-ro: steered to {flag}=true nodes; pools {l} lack --relaxed-read-only")
            })
        } else {
            fit_list(&lacking_names, |l| {
                format!("sysbox-ro: pools {l} lack sysbox-mgr --relaxed-read-only; the pod may land there and fail")
            })
        };
        findings.push(Finding { rule: Rule::FlagPartial, message, warning });
    }

    let from_cm: Vec<String> = landing
        .pools
        .iter()
        .filter(|(_, r)| r.via_configmap > 0 && r.with_flag > r.with_flag_by_label)
        .map(|(p, _)| p.to_string())
        .collect();
    if !from_cm.is_empty() && !steer {
        let cm = &policy.nodes.mgr_config;
        findings.push(Finding {
            rule: Rule::FlagFromConfigMap,
            message: format!(
                "the flag state of pools {} rests on ConfigMap {cm} alone ({} has --relaxed-read-only), which reaches a \
                 node only when its Sysbox installer pod restarts. Label the nodes {flag}=true once they run with the flag",
                list(&from_cm, LIST_LIMIT),
                cm.key
            ),
            warning: fit_list(&from_cm, |l| {
                format!("sysbox-ro: flag on {l} known from ConfigMap only (applied on installer restart); label the nodes")
            }),
        });
    }
    PoolVerdict { findings, steer }
}
