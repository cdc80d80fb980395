//! `explain RULE`: the full explanation and fix for a finding, like
//! `rustc --explain`: the rule's document ([`Rule::document`], compiled in
//! from `docs/rules/<id>.md`).

use crate::engine::Rule;

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
    Rule::from_id(id).map(Rule::document).ok_or_else(|| UnknownRule { id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_is_about_its_rule() {
        for rule in Rule::ALL {
            let doc = rule.document();
            assert!(
                doc.starts_with(&format!("# {}:", rule.id())),
                "{} does not open with its id",
                rule.document_path()
            );
            assert!(doc.contains("## How to fix"), "{} has no fix", rule.document_path());
        }
    }

    #[test]
    fn unknown_ids_list_the_known_ones() {
        let err = explain("relaxed").unwrap_err();
        assert!(err.to_string().contains("relaxed-read-only-missing"), "{err}");
        assert_eq!(explain("sysbox-env").unwrap(), Rule::SysboxEnv.document());
    }
}
