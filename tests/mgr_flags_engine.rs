//! What the engine makes of a SYSBOX_MGR_CONFIG value that sysbox-mgr would
//! not start with: its own finding, never "the flag is absent".

mod common;

use common::*;
use sysbox_ro_webhook::engine::{Action, Rule, Verdict};
use sysbox_ro_webhook::policy::{Mode, Policy};

fn docs(flags: &str, nodes: &[(&str, &str, Option<&str>)]) -> Vec<String> {
    let mut docs = vec![RUNTIME_CLASS.to_string(), mgr_configmap(flags)];
    docs.extend(nodes.iter().map(|(n, p, f)| node(n, p, *f)));
    docs
}

#[test]
fn a_value_sysbox_mgr_refuses_is_its_own_finding() {
    // strconv.ParseBool refuses "yes": sysbox-mgr exits (main.go logrus.Fatal).
    let state = cluster(&docs("--relaxed-read-only=yes", &[("a1", "ci", None), ("a2", "ci", None)]));
    let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
    let stops: Vec<_> = d.findings.iter().filter(|f| f.rule == Rule::MgrConfigStopsSysbox).collect();
    assert_eq!(stops.len(), 1, "{:?}", rules(&d));
    let f = stops[0];
    assert_eq!((f.action, f.nodes, f.pools.clone()), (Action::Warn, 2, vec!["ci".to_string()]));
    assert!(f.message.contains("would stop sysbox-mgr from starting on every node that reinstalls"), "{}", f.message);
    assert!(f.message.contains("invalid boolean value \"yes\""), "{}", f.message);
    assert!(f.warning.chars().count() <= 120, "{}", f.warning);
    // Those nodes have no Sysbox after a reinstall, so they lack the flag, but
    // nothing says the flag is merely absent from the ConfigMap.
    assert_eq!(d.verdict, Verdict::Deny);
    let all: String = d.findings.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("\n");
    assert!(!all.contains("lacks --relaxed-read-only"), "{all}");
    assert!(all.contains("would stop sysbox-mgr from starting there"), "{all}");
}

#[test]
fn labelled_nodes_still_hear_about_it() {
    // A label says what a node runs now; its next reinstall takes the ConfigMap.
    let state = cluster(&docs("--relaxed-read-only --bogus", &[("a1", "ci", Some("true"))]));
    let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
    assert_eq!(d.verdict, Verdict::Warn, "{:?}", rules(&d));
    assert_eq!(rules(&d), ["sysbox-mgr-config-stops-sysbox"]);
    assert_eq!(d.warnings, ["sysbox-ro: SYSBOX_MGR_CONFIG stops sysbox-mgr at reinstall: unknown flag -bogus"]);
    assert!(d.findings[0].message.contains("unknown flag -bogus"), "{}", d.findings[0].message);
}

#[test]
fn audit_mode_only_records_it() {
    let state = cluster(&docs("-h", &[("a1", "ci", Some("true"))]));
    let policy = Policy { mode: Mode::Audit, ..Policy::default() };
    let d = decide(&pod(ro_spec()), Some(&state), &policy);
    assert_eq!(d.findings[0].action, Action::Audit);
    assert!(d.warnings.is_empty());
}

#[test]
fn a_node_dependent_value_is_unclear_not_absent() {
    let state = cluster(&docs("$SYSBOX_FLAGS", &[("a1", "ci", None), ("b1", "labelled", Some("true"))]));
    let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
    let unclear: Vec<_> = d.findings.iter().filter(|f| f.rule == Rule::MgrConfigUnclear).collect();
    assert_eq!(unclear.len(), 1, "{:?}", rules(&d));
    // Only the unlabelled node rests on the ConfigMap.
    assert_eq!((unclear[0].nodes, unclear[0].pools.clone()), (1, vec!["ci".to_string()]));
    assert!(unclear[0].message.contains("$SYSBOX_FLAGS"), "{}", unclear[0].message);
}

#[test]
fn a_value_sysbox_mgr_starts_with_raises_nothing_new() {
    for flags in ["--relaxed-read-only", "--data-root --relaxed-read-only", ""] {
        let state = cluster(&docs(flags, &[("a1", "ci", None)]));
        let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
        assert!(
            !d.findings.iter().any(|f| matches!(f.rule, Rule::MgrConfigStopsSysbox | Rule::MgrConfigUnclear)),
            "{flags:?}: {:?}",
            rules(&d)
        );
    }
    // The value flag takes --relaxed-read-only as its value: the flag is off.
    let state = cluster(&docs("--data-root --relaxed-read-only", &[("a1", "ci", None)]));
    let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
    assert_eq!((d.verdict, rules(&d)), (Verdict::Deny, vec!["relaxed-read-only-missing"]));
}
