//! `explain RULE` and the rule documents: every rule the engine can report
//! has a document in docs/rules/, every document there belongs to a rule,
//! and the binary prints it (or lists the known ids, exit 2).

use std::collections::BTreeSet;
use std::process::Command;

use sysbox_ro_webhook::engine::Rule;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook")).env_clear().args(args).output().unwrap()
}

#[test]
fn every_rule_has_a_document_and_every_document_a_rule() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules");
    let on_disk: BTreeSet<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let expected: BTreeSet<String> = Rule::ALL.iter().map(|r| format!("{}.md", r.id())).collect();
    assert_eq!(on_disk, expected);
    for rule in Rule::ALL {
        // The embedded text is the file's.
        let file = std::fs::read_to_string(format!("{dir}/{}.md", rule.id())).unwrap();
        assert_eq!(rule.document(), file, "{}", rule.id());
    }
}

#[test]
fn explain_prints_the_document() {
    let o = run(&["explain", "relaxed-read-only-daemonset"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), Rule::DaemonSetFlagMissing.document());
}

#[test]
fn explain_of_an_unknown_rule_exits_2_listing_the_known_ones() {
    let o = run(&["explain", "relaxed-read-only"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    for rule in Rule::ALL {
        assert!(err.contains(rule.id()), "{} missing from {err}", rule.id());
    }
}

/// The rule ids named after `explain ` in a text.
fn explained(text: &str) -> Vec<&str> {
    text.match_indices("explain ")
        .map(|(at, m)| {
            let rest = &text[at + m.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '-')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn documents_name_only_rules_that_exist() {
    let mut named = 0;
    for rule in Rule::ALL {
        for id in explained(rule.document()) {
            assert!(Rule::from_id(id).is_some(), "{} names unknown rule {id:?}", rule.id());
            named += 1;
        }
    }
    assert!(named > 0);
}
