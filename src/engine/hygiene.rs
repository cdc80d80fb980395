//! Sysbox pod hygiene (`docs/sysbox-facts.md`, "Pods"): settings that make a
//! Sysbox container fail to start, that Sysbox does not support, or that
//! cannot be checked from the spec. Each rule says where in Sysbox or
//! Kubernetes the behaviour comes from.

use super::env::EnvJudgement;
use super::finding::{Finding, Outcomes, Rule};
use super::messages::{fit, fit_list, fit_list_of, list, list_of, plural, Named, LIST_LIMIT};
use super::subject::Template;
use crate::cluster::services::{variable_stem, ClusterIp, ServiceIndex};
use crate::cluster::Landing;
use crate::policy::HygieneRules;

/// The CRI-O annotation that gives a pod a user namespace.
pub const CRIO_USERNS_ANNOTATION: &str = "io.kubernetes.cri-o.userns-mode";

/// The fewest IDs a Sysbox user namespace may map
/// (sysbox-runc `libsysbox/syscont/spec.go`, `IdRangeMin`, checked in `validateIDMappings`).
pub const MIN_USERNS_IDS: u64 = 65536;

/// What hygiene may know besides the pod.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub namespace: &'a str,
    /// The cluster's `sysbox`/`sysbox-*` Services; `None` when not known.
    pub services: Option<&'a ServiceIndex>,
    /// Where the pod can land; `None` without a cluster view.
    pub landing: Option<&'a Landing<'a>>,
    /// What becomes of each finding, and so which of its texts to build.
    pub outcomes: Outcomes,
}

/// What the CRI-O annotation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrioUserns {
    /// `auto` or `private`: a user namespace, of `size` IDs when given.
    Requested { size: Option<u64> },
    /// `host`, empty, or a mode CRI-O does not know: no user namespace.
    NotRequested,
}

/// Reads `io.kubernetes.cri-o.userns-mode`: `MODE[:OPTION;OPTION...]`, as
/// in `auto:size=65536;map-to-root=true`.
pub fn crio_userns(value: &str) -> CrioUserns {
    let (mode, options) = value.split_once(':').unwrap_or((value, ""));
    match mode.trim() {
        "auto" | "private" => CrioUserns::Requested {
            size: options.split(';').find_map(|o| o.trim().strip_prefix("size=")).and_then(|n| n.trim().parse().ok()),
        },
        _ => CrioUserns::NotRequested,
    }
}

pub fn check(template: &Template<'_>, envs: &[EnvJudgement], rules: &HygieneRules, ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let spec = &template.spec;
    // One finding per rule, however many containers offend: the first few
    // containers are named and the rest counted, so a pod with thousands of
    // containers gets a bounded message, not thousands of findings.
    let out = &ctx.outcomes;
    let mut refused = Offenders::wanting(out, Rule::SysboxEnv);
    let mut unverified = Offenders::wanting(out, Rule::SysboxEnvUnverified);
    for ((kind, c), judged) in spec.all_containers().zip(envs) {
        let cname = c.name.as_deref().unwrap_or("?");
        if rules.sysbox_env && !judged.refused.is_empty() {
            refused.add(
                || format!("{} {cname:?}: {}", kind.label(), bounded(&judged.refused)),
                || {
                    fit(["sysbox-ro: ", cname, ": ", judged.refused[0].as_str(), "; the container will not start"]
                        .concat())
                },
            );
        }
        if rules.env_unverified && !judged.unverified.is_empty() {
            unverified.add(
                || format!("{} {cname:?}: {}", kind.label(), bounded(&judged.unverified)),
                || {
                    fit([
                        "sysbox-ro: ",
                        cname,
                        ": SYSBOX_* variables not verifiable here: ",
                        judged.unverified[0].as_str(),
                    ]
                    .concat())
                },
            );
        }
    }
    if let Some((who, warning)) = refused.finish() {
        findings.push(out.finding(
            Rule::SysboxEnv,
            || {
                // joined, not formatted: see verdict::fix
                [
                    who.as_str(),
                    "; sysbox-runc refuses to create the container. Remove it or use one of \
                     SYSBOX_IGNORE_SYSFS_CHOWN, SYSBOX_ALLOW_TRUSTED_XATTR, SYSBOX_HONOR_CAPS, SYSBOX_SYSCONT_MODE \
                     (TRUE|FALSE), SYSBOX_SKIP_UID_SHIFT (absolute paths). Details: sysbox-ro-webhook explain ",
                    Rule::SysboxEnv.id(),
                ]
                .concat()
            },
            || warning,
        ));
    }
    if let Some((who, warning)) = unverified.finish() {
        findings.push(out.finding(
            Rule::SysboxEnvUnverified,
            || {
                [
                    who.as_str(),
                    ". sysbox-runc refuses the container if any SYSBOX_* variable is unknown or has \
                     a bad value; check them. Details: sysbox-ro-webhook explain ",
                    Rule::SysboxEnvUnverified.id(),
                ]
                .concat()
            },
            || warning,
        ));
    }
    if rules.service_links {
        findings.extend(service_links(template, ctx));
    }
    if rules.unsupported_settings {
        findings.extend(unsupported(template, out));
    }
    if rules.share_process_namespace && spec.share_process_namespace == Some(true) {
        findings.push(out.finding(
            Rule::SharedProcessNamespace,
            || {
                format!(
                    "shareProcessNamespace: true makes the pause process PID 1, so systemd inside the Sysbox pod \
                     cannot run as init. Drop it if the pod runs systemd. Details: sysbox-ro-webhook explain {}",
                    Rule::SharedProcessNamespace.id()
                )
            },
            || "sysbox-ro: shareProcessNamespace: true; systemd in this pod will not be PID 1".into(),
        ));
    }
    if rules.user_namespace {
        findings.extend(user_namespace(template, ctx.landing, out));
    }
    findings
}

/// The containers that break one rule: the first [`LIST_LIMIT`] described,
/// the rest counted, and the warning of the first; each built only when the
/// finding carries the text it goes into.
struct Offenders {
    named: Vec<String>,
    count: usize,
    warning: Option<String>,
    describe: bool,
    warn: bool,
}

impl Offenders {
    /// Offenders against `rule`, described as far as its finding will say.
    fn wanting(outcomes: &Outcomes, rule: Rule) -> Offenders {
        Offenders {
            named: Vec::new(),
            count: 0,
            warning: None,
            describe: outcomes.wants_message(rule),
            warn: outcomes.wants_warning(rule),
        }
    }

    fn add(&mut self, describe: impl FnOnce() -> String, warning: impl FnOnce() -> String) {
        self.count += 1;
        if self.describe && self.named.len() < LIST_LIMIT {
            self.named.push(describe());
        }
        if self.count == 1 && self.warn {
            self.warning = Some(warning());
        }
    }

    /// The description of every offender (bounded) and the first warning;
    /// `None` without offenders.
    fn finish(self) -> Option<(String, String)> {
        if self.count == 0 {
            return None;
        }
        let warning = self.warning.unwrap_or_default();
        let mut who = self.named.join("; ");
        if self.describe && self.count > self.named.len() {
            who.push_str(&format!("; and {} more containers", self.count - self.named.len()));
        }
        Some((who, warning))
    }
}

/// The first [`LIST_LIMIT`] items, `; `-separated, and how many more.
fn bounded(items: &[String]) -> String {
    let mut out = items.iter().take(LIST_LIMIT).cloned().collect::<Vec<_>>().join("; ");
    if items.len() > LIST_LIMIT {
        out.push_str(&format!("; and {} more", items.len() - LIST_LIMIT));
    }
    out
}

/// [`Rule::ServiceLinks`]: Services whose links give the pod `SYSBOX_*` variables.
fn service_links(template: &Template<'_>, ctx: &Context<'_>) -> Option<Finding> {
    if template.spec.enable_service_links == Some(false) {
        return None;
    }
    let linking: Vec<_> = ctx.services?.linking(ctx.namespace).collect();
    let first = linking.first()?;
    let names: Vec<String> = linking.iter().map(|s| s.name.clone()).collect();
    let stem = variable_stem(&first.name);
    let unsure = linking.iter().any(|s| s.cluster_ip == ClusterIp::Unknown);
    let message = || {
        format!(
            "Service {} in namespace {} gives every container of the pod service-link variables \
             ({stem}_SERVICE_HOST, {stem}_PORT, ...) because enableServiceLinks is unset or true, and sysbox-runc \
             refuses any SYSBOX_* variable it does not know{}. Set spec.enableServiceLinks: false or rename the \
             Service. Details: sysbox-ro-webhook explain {}",
            list(&names, LIST_LIMIT),
            ctx.namespace,
            if unsure { " (unless the Service is headless: it has no cluster IP and so no links)" } else { "" },
            Rule::ServiceLinks.id()
        )
    };
    let warning = || {
        fit_list(&names, |l| {
            format!("sysbox-ro: Service {l} injects {stem}_* variables; set enableServiceLinks: false or rename it")
        })
    };
    let count = names.len();
    let finding = ctx.outcomes.finding(Rule::ServiceLinks, message, warning);
    Some(finding.about(names.into_iter().take(LIST_LIMIT).collect(), count, 0))
}

/// [`Rule::UnsupportedSetting`]: host namespaces sysbox-runc refuses, and
/// `privileged`, which Sysbox documents as unsupported.
fn unsupported(template: &Template<'_>, out: &Outcomes) -> Option<Finding> {
    let spec = &template.spec;
    let refused: Vec<&str> =
        [(spec.host_network, "hostNetwork"), (spec.host_pid, "hostPID"), (spec.host_ipc, "hostIPC")]
            .into_iter()
            .filter(|(on, _)| *on == Some(true))
            .map(|(_, name)| name)
            .collect();
    let privileged =
        || spec.all_containers().filter(|(_, c)| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));
    if refused.is_empty() && privileged().next().is_none() {
        return None;
    }
    let message = || {
        let mut parts = Vec::new();
        if !refused.is_empty() {
            let r: Vec<String> = refused.iter().map(|n| format!("{n}: true")).collect();
            parts.push(format!(
                "sysbox-runc refuses {} (a Sysbox container needs its own namespaces), so the pod will not start",
                list(&r, LIST_LIMIT)
            ));
        }
        let mut named = Named::default();
        privileged().for_each(|(k, c)| named.add(|| format!("{} {:?}", k.label(), c.name.as_deref().unwrap_or("?"))));
        if !named.is_empty() {
            parts.push(format!(
                "privileged ({}) is unsupported in Sysbox pods (documented as unsupported; Docker and systemd run \
                 inside Sysbox without it)",
                named.list()
            ));
        }
        format!(
            "{}. Remove the setting. Details: sysbox-ro-webhook explain {}",
            parts.join("; "),
            Rule::UnsupportedSetting.id()
        )
    };
    let warning = || {
        fit(match refused.first() {
            Some(n) => format!("sysbox-ro: sysbox-runc refuses {n}: true; the pod will not start"),
            None => "sysbox-ro: privileged is unsupported in Sysbox pods; remove it".to_owned(),
        })
    };
    Some(out.finding(Rule::UnsupportedSetting, message, warning))
}

/// [`Rule::NoUserNamespace`] and [`Rule::UserNamespaceSize`], pool by pool:
/// `hostUsers: false` works on every node; the CRI-O annotation only on
/// CRI-O nodes (`crio-runtime=running`), and there it must give at least
/// [`MIN_USERNS_IDS`] IDs.
fn user_namespace(template: &Template<'_>, landing: Option<&Landing<'_>>, out: &Outcomes) -> Vec<Finding> {
    if template.spec.host_users == Some(false) {
        return Vec::new();
    }
    let annotation = template.annotation(CRIO_USERNS_ANNOTATION).map(crio_userns);
    let Some(CrioUserns::Requested { size }) = annotation else {
        return vec![out.finding(
            Rule::NoUserNamespace,
            || {
                format!(
                    "the pod has no user namespace, which Sysbox pods on Kubernetes need: set spec.hostUsers: false \
                     (containerd 2.0.5+, and CRI-O) or, on CRI-O nodes only, the annotation \
                     {CRIO_USERNS_ANNOTATION}: \"auto:size=65536\". Details: sysbox-ro-webhook explain {}",
                    Rule::NoUserNamespace.id()
                )
            },
            || "sysbox-ro: no user namespace; set hostUsers: false (or CRI-O userns-mode annotation)".into(),
        )];
    };
    let mut found = Vec::new();
    // Pools by what their candidate nodes run: how many, and the names a message shows.
    let named = |keep: &dyn Fn(&crate::cluster::PoolReport) -> bool| -> (Vec<String>, usize) {
        let mut names = Named::default();
        landing.into_iter().flat_map(Landing::pools).filter(|(_, r)| keep(r)).for_each(|(p, _)| names.add(|| p.name()));
        (names.head, names.count)
    };
    let (containerd, containerd_count) = named(&|r| (r.tally.crio as usize) < r.tally.nodes());
    if let Some(n) = size.filter(|n| *n < MIN_USERNS_IDS) {
        // The CRI-O pools matter only to a size too small.
        let (crio, crio_count) = named(&|r| r.tally.crio > 0);
        // Without a cluster view the annotation is taken at its word: it is for CRI-O nodes.
        if landing.is_none() || crio_count > 0 {
            let message = || {
                let on = if crio_count == 0 {
                    "on CRI-O nodes".to_owned()
                } else {
                    format!("on the CRI-O nodes of pools {}", list_of(&crio, crio_count, LIST_LIMIT))
                };
                format!(
                    "{CRIO_USERNS_ANNOTATION} asks for a user namespace of {n} IDs, but sysbox-runc needs at least \
                     {MIN_USERNS_IDS} IDs from 0, so the container will not start {on}. Use \"auto:size=65536\" \
                     (or more). Details: sysbox-ro-webhook explain {}",
                    Rule::UserNamespaceSize.id()
                )
            };
            let warning = || {
                fit(format!(
                    "sysbox-ro: userns-mode size={n} is below {MIN_USERNS_IDS}; the pod will not start on CRI-O nodes"
                ))
            };
            let finding = out.finding(Rule::UserNamespaceSize, message, warning);
            found.push(finding.about(crio, crio_count, 0));
        }
    }
    if containerd_count > 0 {
        let count = containerd_count;
        let nodes: usize = landing.map_or(0, |l| l.total().nodes() - l.total().crio as usize);
        let message = || {
            format!(
                "the pod asks for its user namespace only with the CRI-O annotation {CRIO_USERNS_ANNOTATION}, which \
                 containerd ignores: on {} of pools {} (not labelled crio-runtime=running) it gets none. Set \
                 spec.hostUsers: false. Details: sysbox-ro-webhook explain {}",
                plural(nodes, "containerd node"),
                list_of(&containerd, count, LIST_LIMIT),
                Rule::NoUserNamespace.id()
            )
        };
        let warning = || {
            fit_list_of(&containerd, count, |l| {
                format!("sysbox-ro: userns-mode annotation is ignored on containerd pools {l}; set hostUsers: false")
            })
        };
        let finding = out.finding(Rule::NoUserNamespace, message, warning);
        found.push(finding.about(containerd, count, nodes));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crio_annotation() {
        assert_eq!(crio_userns("auto:size=65536"), CrioUserns::Requested { size: Some(65536) });
        assert_eq!(crio_userns("auto:size=1024;map-to-root=true"), CrioUserns::Requested { size: Some(1024) });
        assert_eq!(crio_userns("auto"), CrioUserns::Requested { size: None });
        assert_eq!(crio_userns("private:uidmapping=0:1048576:65536"), CrioUserns::Requested { size: None });
        assert_eq!(crio_userns("host"), CrioUserns::NotRequested);
        assert_eq!(crio_userns(""), CrioUserns::NotRequested);
    }
}
