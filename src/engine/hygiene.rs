//! Sysbox pod hygiene (`docs/sysbox-facts.md`, "Pods"): settings that make a
//! Sysbox container fail to start or that Sysbox does not support.

use super::finding::{Finding, Rule};
use super::messages::fit;
use super::subject::Template;
use crate::policy::HygieneRules;

/// The CRI-O annotation that gives a pod a user namespace.
pub const CRIO_USERNS_ANNOTATION: &str = "io.kubernetes.cri-o.userns-mode";

/// The per-container variables sysbox-runc accepts; any other `SYSBOX_*` name
/// makes container creation fail.
const BOOLEAN_VARS: [&str; 4] =
    ["SYSBOX_IGNORE_SYSFS_CHOWN", "SYSBOX_ALLOW_TRUSTED_XATTR", "SYSBOX_HONOR_CAPS", "SYSBOX_SYSCONT_MODE"];
const SKIP_UID_SHIFT: &str = "SYSBOX_SKIP_UID_SHIFT";

/// Why a `SYSBOX_*` variable is refused, or `None` when sysbox-runc accepts it.
/// A value set through `valueFrom` cannot be read here and is not judged.
pub fn sysbox_env_problem(name: &str, value: Option<&str>, from_ref: bool) -> Option<String> {
    if !name.starts_with("SYSBOX_") {
        return None;
    }
    if BOOLEAN_VARS.contains(&name) {
        let v = value.unwrap_or("");
        return (!from_ref && v != "TRUE" && v != "FALSE")
            .then(|| format!("{name}={v:?} must be exactly TRUE or FALSE"));
    }
    if name == SKIP_UID_SHIFT {
        let v = value.unwrap_or("");
        let bad = v.split(',').find(|p| !p.starts_with('/'));
        return match bad {
            Some(p) if !from_ref => Some(format!("{name} must list absolute paths separated by commas, not {p:?}")),
            _ => None,
        };
    }
    Some(format!("{name} is not one of the variables sysbox-runc accepts"))
}

pub fn check(template: &Template<'_>, rules: &HygieneRules) -> Vec<Finding> {
    let mut findings = Vec::new();
    let spec = &template.spec;
    if rules.sysbox_env {
        for (kind, c) in spec.all_containers() {
            let cname = c.name.as_deref().unwrap_or("?");
            for env in c.env.iter().flatten() {
                if let Some(problem) = sysbox_env_problem(&env.name, env.value.as_deref(), env.value_from.is_some()) {
                    findings.push(Finding::new(
                        Rule::SysboxEnv,
                        format!(
                            "{} {cname:?}: {problem}; sysbox-runc refuses to create the container. \
                             Remove it or use one of SYSBOX_IGNORE_SYSFS_CHOWN, SYSBOX_ALLOW_TRUSTED_XATTR, \
                             SYSBOX_HONOR_CAPS, SYSBOX_SYSCONT_MODE (TRUE|FALSE), SYSBOX_SKIP_UID_SHIFT (absolute paths)",
                            kind.label()
                        ),
                        fit(&format!("sysbox-ro: {cname}: {problem}; the container will not start")),
                    ));
                }
            }
        }
    }
    if rules.unsupported_settings {
        let mut unsupported: Vec<String> = Vec::new();
        for (flag, name) in [(spec.host_network, "hostNetwork"), (spec.host_pid, "hostPID"), (spec.host_ipc, "hostIPC")]
        {
            if flag == Some(true) {
                unsupported.push(format!("{name}: true"));
            }
        }
        for (kind, c) in spec.all_containers() {
            if c.security_context.as_ref().and_then(|s| s.privileged) == Some(true) {
                unsupported.push(format!("privileged {} {:?}", kind.label(), c.name.as_deref().unwrap_or("?")));
            }
        }
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            findings.push(Finding::new(
                Rule::UnsupportedSetting,
                format!(
                    "Sysbox pods do not support {list}; Sysbox isolates the pod with a user namespace instead. \
                     Remove the setting (Docker and systemd run inside Sysbox without privileged)"
                ),
                fit(&format!("sysbox-ro: Sysbox pods do not support {list}")),
            ));
        }
    }
    if rules.user_namespace && spec.host_users != Some(false) && template.annotation(CRIO_USERNS_ANNOTATION).is_none() {
        findings.push(Finding::new(
            Rule::NoUserNamespace,
            format!(
                "the pod has no user namespace, which Sysbox requires: set spec.hostUsers: false \
                 (containerd 2.0.5+) or, on CRI-O nodes, the annotation {CRIO_USERNS_ANNOTATION}: \"auto:size=65536\""
            ),
            "sysbox-ro: no user namespace; set hostUsers: false (or CRI-O userns-mode annotation)".into(),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::sysbox_env_problem as p;

    #[test]
    fn env_rules() {
        assert_eq!(p("PATH", Some("/bin"), false), None);
        assert_eq!(p("SYSBOX_HONOR_CAPS", Some("TRUE"), false), None);
        assert!(p("SYSBOX_HONOR_CAPS", Some("true"), false).is_some());
        assert_eq!(p("SYSBOX_HONOR_CAPS", None, true), None);
        assert_eq!(p("SYSBOX_SKIP_UID_SHIFT", Some("/a,/b/c"), false), None);
        assert!(p("SYSBOX_SKIP_UID_SHIFT", Some("/a,b"), false).is_some());
        assert!(p("SYSBOX_RELAXED_READ_ONLY", Some("TRUE"), false).is_some());
        assert!(p("SYSBOX_FOO", None, true).is_some());
    }
}
