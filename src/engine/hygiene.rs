//! Sysbox pod hygiene (`docs/sysbox-facts.md`, "Pods"): settings that make a
//! Sysbox container fail to start or that Sysbox does not support.

use super::finding::{Finding, Rule};
use super::messages::{fit, LIST_LIMIT};
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
        // One finding for all refused variables: the first few named, the
        // rest counted, so a pod with a bad variable per container (there
        // is no limit on containers) gets a message of bounded size.
        let mut named: Vec<(String, String)> = Vec::new();
        let mut count = 0usize;
        for (kind, c) in spec.all_containers() {
            let cname = c.name.as_deref().unwrap_or("?");
            for env in c.env.iter().flatten() {
                if let Some(problem) = sysbox_env_problem(&env.name, env.value.as_deref(), env.value_from.is_some()) {
                    count += 1;
                    if named.len() < LIST_LIMIT {
                        named.push((format!("{} {cname:?}: {problem}", kind.label()), format!("{cname}: {problem}")));
                    }
                }
            }
        }
        const FIX: &str = "Remove it or use one of SYSBOX_IGNORE_SYSFS_CHOWN, SYSBOX_ALLOW_TRUSTED_XATTR, \
                           SYSBOX_HONOR_CAPS, SYSBOX_SYSCONT_MODE (TRUE|FALSE), SYSBOX_SKIP_UID_SHIFT (absolute paths)";
        if count == 1 {
            let (full, short) = &named[0];
            findings.push(Finding::new(
                Rule::SysboxEnv,
                format!("{full}; sysbox-runc refuses to create the container. {FIX}"),
                fit(&format!("sysbox-ro: {short}; the container will not start")),
            ));
        } else if count > 1 {
            let listed: Vec<&str> = named.iter().map(|(full, _)| full.as_str()).collect();
            let rest = count - named.len();
            let items = if rest == 0 { listed.join("; ") } else { format!("{}; and {rest} more", listed.join("; ")) };
            findings.push(Finding::new(
                Rule::SysboxEnv,
                format!(
                    "{count} SYSBOX_* variables that sysbox-runc refuses: {items}. sysbox-runc refuses to create \
                     those containers. {FIX}"
                ),
                fit(&format!(
                    "sysbox-ro: {count} refused SYSBOX_* variables ({} and {} more); containers will not start",
                    named[0].1,
                    count - 1
                )),
            ));
        }
    }
    if rules.unsupported_settings {
        let mut unsupported: Vec<String> = Vec::new();
        let mut count = 0usize;
        let mut note = |item: String| {
            count += 1;
            if unsupported.len() < LIST_LIMIT {
                unsupported.push(item);
            }
        };
        for (flag, name) in [(spec.host_network, "hostNetwork"), (spec.host_pid, "hostPID"), (spec.host_ipc, "hostIPC")]
        {
            if flag == Some(true) {
                note(format!("{name}: true"));
            }
        }
        for (kind, c) in spec.all_containers() {
            if c.security_context.as_ref().and_then(|s| s.privileged) == Some(true) {
                note(format!("privileged {} {:?}", kind.label(), c.name.as_deref().unwrap_or("?")));
            }
        }
        if !unsupported.is_empty() {
            let rest = count - unsupported.len();
            let list =
                if rest == 0 { unsupported.join(", ") } else { format!("{} and {rest} more", unsupported.join(", ")) };
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
    use super::*;

    fn template(spec: serde_json::Value) -> Template<'static> {
        Template { path: &[], metadata: None, spec: serde_json::from_value(spec).unwrap() }
    }

    #[test]
    fn many_offenders_make_one_finding_that_names_the_first_and_counts_the_rest() {
        let containers: Vec<serde_json::Value> = (0..1000)
            .map(|i| {
                serde_json::json!({
                    "name": format!("c{i}"),
                    "env": [{ "name": format!("SYSBOX_BAD_{i}"), "value": "1" }],
                    "securityContext": { "privileged": true }
                })
            })
            .collect();
        let rules = HygieneRules { sysbox_env: true, unsupported_settings: true, user_namespace: false };
        let findings = check(&template(serde_json::json!({ "containers": containers })), &rules);
        assert_eq!(findings.len(), 2, "{} findings", findings.len());
        for f in &findings {
            assert!(f.message.len() < 2048, "{} bytes: {}", f.message.len(), f.message);
            assert!(f.message.contains("\"c0\"") && f.message.contains("995 more"), "{}", f.message);
            assert!(f.warning.chars().count() <= crate::engine::finding::WARNING_LIMIT, "{}", f.warning);
        }
        assert!(findings[0].message.starts_with("1000 SYSBOX_* variables"), "{}", findings[0].message);
        // One offender reads as before.
        let one = check(&template(serde_json::json!({ "containers": [containers[0]] })), &rules);
        assert!(one[0].message.starts_with("container \"c0\": SYSBOX_BAD_0 is not one of"), "{}", one[0].message);
    }

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
