//! `explain RULE`: the full explanation and fix for a finding, like
//! `rustc --explain`. Each rule's document lives in `docs/rules/<id>.md` and
//! is compiled into the binary, so the text a user reads offline is the one
//! in the repository.

use crate::engine::Rule;

/// The document of a rule, as in `docs/rules/<id>.md`.
pub fn document(rule: Rule) -> &'static str {
    match rule {
        Rule::FlagMissing => include_str!("../docs/rules/relaxed-read-only-missing.md"),
        Rule::FlagPartial => include_str!("../docs/rules/relaxed-read-only-partial.md"),
        Rule::DaemonSetFlagMissing => include_str!("../docs/rules/relaxed-read-only-daemonset.md"),
        Rule::FlagFromConfigMap => include_str!("../docs/rules/relaxed-read-only-from-configmap.md"),
        Rule::FlagLabelInvalid => include_str!("../docs/rules/relaxed-read-only-label-invalid.md"),
        Rule::NoCandidateNodes => include_str!("../docs/rules/no-candidate-nodes.md"),
        Rule::RuntimeClassConflict => include_str!("../docs/rules/runtime-class-conflict.md"),
        Rule::PoolsNotEvaluated => include_str!("../docs/rules/pools-not-evaluated.md"),
        Rule::SysboxEnv => include_str!("../docs/rules/sysbox-env.md"),
        Rule::SysboxEnvUnverified => include_str!("../docs/rules/sysbox-env-unverified.md"),
        Rule::ServiceLinks => include_str!("../docs/rules/sysbox-service-links.md"),
        Rule::UnsupportedSetting => include_str!("../docs/rules/sysbox-unsupported-setting.md"),
        Rule::NoUserNamespace => include_str!("../docs/rules/sysbox-user-namespace.md"),
        Rule::UserNamespaceSize => include_str!("../docs/rules/sysbox-user-namespace-size.md"),
        Rule::SharedProcessNamespace => include_str!("../docs/rules/sysbox-share-process-namespace.md"),
    }
}

/// Where a rule's document is in the repository.
pub fn path(rule: Rule) -> String {
    format!("docs/rules/{}.md", rule.id())
}

/// `explain` was given an id no rule has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no rule {id:?}; the rules are: {}", known_ids().join(", "))]
pub struct UnknownRule {
    pub id: String,
}

pub fn known_ids() -> Vec<&'static str> {
    Rule::ALL.iter().map(|r| r.id()).collect()
}

/// The document for a rule id.
pub fn explain(id: &str) -> Result<&'static str, UnknownRule> {
    Rule::from_id(id).map(document).ok_or_else(|| UnknownRule { id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_is_about_its_rule() {
        for rule in Rule::ALL {
            let doc = document(rule);
            assert!(doc.starts_with(&format!("# {}:", rule.id())), "{} does not open with its id", path(rule));
            assert!(doc.contains("## How to fix"), "{} has no fix", path(rule));
        }
    }

    #[test]
    fn unknown_ids_list_the_known_ones() {
        let err = explain("relaxed").unwrap_err();
        assert!(err.to_string().contains("relaxed-read-only-missing"), "{err}");
        assert_eq!(explain("sysbox-env").unwrap(), document(Rule::SysboxEnv));
    }
}
