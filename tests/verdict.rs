//! Node-pool verdict tables: where a pod can land, the flag state of those
//! nodes, and what each mode makes of it.

mod common;

use common::*;
use serde_json::{json, Value};
use sysbox_ro_webhook::engine::Verdict;
use sysbox_ro_webhook::policy::{Mode, Policy};

struct Case {
    name: &'static str,
    docs: Vec<String>,
    spec: Value,
    namespace: &'static str,
    policy: Policy,
    verdict: Verdict,
    rules: &'static [&'static str],
    /// Substrings the denial message (or else the warnings) must contain.
    says: &'static [&'static str],
}

fn base(name: &'static str, docs: Vec<String>, verdict: Verdict, rules: &'static [&'static str]) -> Case {
    Case { name, docs, spec: ro_spec(), namespace: "default", policy: Policy::default(), verdict, rules, says: &[] }
}

fn with_rc(mut docs: Vec<String>) -> Vec<String> {
    docs.insert(0, RUNTIME_CLASS.into());
    docs
}

fn tainted_node(name: &str, pool: &str, flag: &str) -> String {
    format!("{}spec:\n  taints:\n  - {{key: dedicated, value: ci, effect: NoSchedule}}\n", node(name, pool, Some(flag)))
}

fn cases() -> Vec<Case> {
    let mixed = || with_rc(vec![node("a1", "good", Some("true")), node("b1", "bad", Some("false"))]);
    vec![
        base(
            "all pools have it",
            with_rc(vec![node("a1", "a", Some("true")), node("b1", "b", Some("true"))]),
            Verdict::Allow,
            &[],
        ),
        Case {
            says: &[
                "bad",
                "--relaxed-read-only",
                "Sysbox 0.6.5+",
                "drain it first",
                "=true",
                "sysbox-ro-webhook explain relaxed-read-only-missing",
            ],
            ..base(
                "none has it",
                with_rc(vec![node("b1", "bad", Some("false")), node("b2", "bad", None)]),
                Verdict::Deny,
                &["relaxed-read-only-missing"],
            )
        },
        Case { says: &["bad"], ..base("mixed", mixed(), Verdict::Warn, &["relaxed-read-only-partial"]) },
        Case {
            says: &["ConfigMap"],
            ..base(
                "ConfigMap only",
                with_rc(vec![node("a1", "a", None), mgr_configmap("--log-level info --relaxed-read-only")]),
                Verdict::Warn,
                &["relaxed-read-only-from-configmap"],
            )
        },
        base(
            "ConfigMap says false",
            with_rc(vec![node("a1", "a", None), mgr_configmap("--relaxed-read-only=true --relaxed-read-only=false")]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        base(
            "label false overrides ConfigMap true",
            with_rc(vec![node("a1", "a", Some("false")), mgr_configmap("--relaxed-read-only")]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        base(
            "label true needs no ConfigMap",
            with_rc(vec![node("a1", "a", Some("true")), mgr_configmap("")]),
            Verdict::Allow,
            &[],
        ),
        Case {
            says: &["not true/false"],
            ..base(
                "invalid label is treated as absent",
                with_rc(vec![node("a1", "a", Some("yes")), mgr_configmap("--relaxed-read-only")]),
                Verdict::Warn,
                &["relaxed-read-only-label-invalid", "relaxed-read-only-from-configmap"],
            )
        },
        base(
            "no label and no ConfigMap: sysbox-mgr default is off",
            with_rc(vec![node("a1", "a", None)]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        Case {
            says: &["cannot schedule"],
            ..base(
                "no candidate nodes (RuntimeClass selector matches nothing)",
                with_rc(vec![
                    "apiVersion: v1\nkind: Node\nmetadata: {name: plain, labels: {kubernetes.io/hostname: plain}}\n"
                        .into(),
                ]),
                Verdict::Warn,
                &["no-candidate-nodes"],
            )
        },
        base(
            "tainted pool is not a candidate",
            with_rc(vec![node("a1", "a", Some("true")), tainted_node("t1", "tainted", "false")]),
            Verdict::Allow,
            &[],
        ),
        Case {
            spec: {
                let mut s = ro_spec();
                s["tolerations"] =
                    json!([{ "key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule" }]);
                s
            },
            ..base(
                "toleration lets the pod onto the tainted pool",
                with_rc(vec![node("a1", "a", Some("true")), tainted_node("t1", "tainted", "false")]),
                Verdict::Warn,
                &["relaxed-read-only-partial"],
            )
        },
        Case {
            spec: {
                let mut s = ro_spec();
                s["nodeName"] = json!("b1");
                s
            },
            ..base("nodeName pins to a node without the flag", mixed(), Verdict::Deny, &["relaxed-read-only-missing"])
        },
        Case {
            spec: {
                let mut s = ro_spec();
                s["nodeName"] = json!("a1");
                s
            },
            ..base("nodeName pins to a node with the flag", mixed(), Verdict::Allow, &[])
        },
        Case {
            spec: {
                let mut s = ro_spec();
                s["nodeSelector"] = json!({ POOL: "good" });
                s
            },
            ..base("nodeSelector picks the good pool", mixed(), Verdict::Allow, &[])
        },
        Case {
            spec: {
                let mut s = ro_spec();
                s["affinity"] = json!({ "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                    { "matchExpressions": [{ "key": POOL, "operator": "NotIn", "values": ["good"] }] }
                ] } } });
                s
            },
            ..base("affinity excludes the good pool", mixed(), Verdict::Deny, &["relaxed-read-only-missing"])
        },
        Case {
            docs: {
                let mut d = mixed();
                d.push(
                    node("c1", "cordoned", Some("false"))
                        .replace("kind: Node", "kind: Node\nspec: {unschedulable: true}"),
                );
                d
            },
            says: &["bad"],
            ..base("cordoned nodes are not candidates", mixed(), Verdict::Warn, &["relaxed-read-only-partial"])
        },
        Case {
            docs: with_rc(vec![node("b1", "bad", Some("false")), namespace("sandbox", Some("warn"))]),
            namespace: "sandbox",
            ..base("namespace label warn overrides enforce", vec![], Verdict::Warn, &["relaxed-read-only-missing"])
        },
        Case {
            docs: with_rc(vec![node("b1", "bad", Some("false")), namespace("sandbox", Some("audit"))]),
            namespace: "sandbox",
            ..base("namespace label audit: allowed silently", vec![], Verdict::Allow, &["relaxed-read-only-missing"])
        },
        Case {
            docs: with_rc(vec![node("b1", "bad", Some("false")), namespace("sandbox", Some("warn"))]),
            namespace: "sandbox",
            policy: Policy { namespace_overrides: false, ..Policy::default() },
            ..base("namespace labels ignored when configured", vec![], Verdict::Deny, &["relaxed-read-only-missing"])
        },
        Case {
            docs: with_rc(vec![node("b1", "bad", Some("false")), namespace("sandbox", Some("bogus"))]),
            namespace: "sandbox",
            ..base("invalid namespace mode falls back to global", vec![], Verdict::Deny, &["relaxed-read-only-missing"])
        },
        Case {
            docs: with_rc(vec![node("b1", "bad", Some("false"))]),
            namespace: "kube-system",
            ..base("exempt namespace is skipped", vec![], Verdict::Skip, &[])
        },
        Case {
            docs: with_rc(vec![node("b1", "bad", Some("false"))]),
            policy: Policy { mode: Mode::Warn, ..Policy::default() },
            ..base("global warn", vec![], Verdict::Warn, &["relaxed-read-only-missing"])
        },
    ]
}

#[test]
fn verdict_table() {
    for case in cases() {
        let state = cluster_with(&case.docs, &case.policy);
        let d = decide_in(&pod(case.spec.clone()), case.namespace, Some(&state), &case.policy);
        assert_eq!(d.verdict, case.verdict, "{}: {d:#?}", case.name);
        assert_eq!(rules(&d), case.rules, "{}", case.name);
        let text = d.message.clone().unwrap_or_else(|| d.warnings.join("\n"));
        for s in case.says {
            assert!(text.contains(s), "{}: {s:?} missing from {text}", case.name);
        }
        if d.verdict != Verdict::Deny && d.verdict != Verdict::Skip {
            assert_eq!(
                patched(&pod(case.spec.clone()), &d)["metadata"]["annotations"][ANNOTATION],
                "true",
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn denial_lists_first_pools_then_counts_the_rest() {
    let mut docs = vec![RUNTIME_CLASS.to_string()];
    docs.extend((0..9).map(|i| node(&format!("n{i}"), &format!("pool-{i}"), Some("false"))));
    let d = decide(&pod(ro_spec()), Some(&cluster(&docs)), &Policy::default());
    let msg = d.message.unwrap();
    assert!(msg.contains("pool-0 (1 node labelled sysbox-ro.dev/relaxed-read-only=false set by hand)"), "{msg}");
    assert!(msg.contains("and 4 more"), "{msg}");
    assert!(!msg.contains("pool-8"), "{msg}");
}

fn steer_policy() -> Policy {
    Policy { steer: true, ..Policy::default() }
}

fn required_terms(object: &Value) -> &Value {
    &object["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
}

#[test]
fn steer_without_existing_affinity_creates_the_term() {
    let state = cluster(&with_rc(vec![node("a1", "good", Some("true")), node("b1", "bad", Some("false"))]));
    let object = pod(ro_spec());
    let d = decide(&object, Some(&state), &steer_policy());
    assert_eq!(d.verdict, Verdict::Warn);
    assert!(d.warnings[0].contains("steered"), "{:?}", d.warnings);
    let out = patched(&object, &d);
    assert_eq!(
        required_terms(&out),
        &json!([{ "matchExpressions": [{ "key": FLAG, "operator": "In", "values": ["true"] }] }])
    );
    assert_eq!(out["metadata"]["annotations"][ANNOTATION], "true");
    // Reinvoked on its own result: now only good nodes are candidates; no patch.
    let again = decide(&out, Some(&state), &steer_policy());
    assert_eq!((again.verdict, again.patch.len()), (Verdict::Allow, 0));
}

#[test]
fn steer_adds_the_requirement_to_every_existing_term() {
    let state = cluster(&with_rc(vec![
        node("a1", "good", Some("true")),
        node("b1", "bad", Some("false")),
        node("a2", "good2", Some("true")),
    ]));
    let mut spec = ro_spec();
    spec["affinity"] = json!({ "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
        { "matchExpressions": [{ "key": POOL, "operator": "In", "values": ["good", "bad"] }] },
        { "matchFields": [{ "key": "metadata.name", "operator": "In", "values": ["a2"] }] }
    ] } } });
    let object = pod(spec);
    let d = decide(&object, Some(&state), &steer_policy());
    let out = patched(&object, &d);
    let terms = required_terms(&out).as_array().unwrap();
    assert_eq!(terms.len(), 2);
    for t in terms {
        assert!(t["matchExpressions"].as_array().unwrap().iter().any(|e| e["key"] == FLAG), "{t}");
    }
    assert!(decide(&out, Some(&state), &steer_policy()).patch.is_empty());
}

#[test]
fn no_steer_when_the_label_does_not_tell_good_nodes_apart() {
    // The good pool has the flag only according to the ConfigMap: requiring
    // the label would leave the pod nowhere to go.
    let state = cluster(&with_rc(vec![
        node("a1", "good", None),
        node("b1", "bad", Some("false")),
        mgr_configmap("--relaxed-read-only"),
    ]));
    let d = decide(&pod(ro_spec()), Some(&state), &steer_policy());
    assert_eq!(d.verdict, Verdict::Warn);
    let out = patched(&pod(ro_spec()), &d);
    assert!(out["spec"].get("affinity").is_none(), "{out}");
}

#[test]
fn templates_are_judged_not_steered() {
    use sysbox_ro_webhook::engine::Kind;
    let state = cluster(&with_rc(vec![node("a1", "good", Some("true")), node("b1", "bad", Some("false"))]));
    let d = decide(&workload(Kind::Deployment, ro_spec()), Some(&state), &steer_policy());
    assert_eq!(d.verdict, Verdict::Warn);
    assert!(d.patch.is_empty());
}

#[test]
fn runtime_class_scheduling_is_merged_for_templates() {
    use sysbox_ro_webhook::engine::Kind;
    // The RuntimeClass selects sysbox-runtime=running: the plain node is not a candidate.
    let plain = "apiVersion: v1\nkind: Node\nmetadata: {name: plain, labels: {kubernetes.io/hostname: plain, sysbox-ro.dev/relaxed-read-only: \"false\"}}\n";
    let state = cluster(&with_rc(vec![node("a1", "good", Some("true")), plain.into()]));
    let d = decide(&workload(Kind::Deployment, ro_spec()), Some(&state), &Policy::default());
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

#[test]
fn findings_carry_their_action_pools_and_nodes() {
    use sysbox_ro_webhook::engine::{Action, Kind, Rule, Subject};
    let finding = |d: &sysbox_ro_webhook::engine::Decision, rule: Rule| {
        let f = d.findings.iter().find(|f| f.rule == rule).unwrap_or_else(|| panic!("{rule} in {:?}", d.findings));
        (f.action, f.pools.clone(), f.pool_count, f.nodes)
    };
    let mixed = cluster(&with_rc(vec![
        node("s1", "strict", Some("false")),
        node("s2", "strict", Some("false")),
        node("g1", "good", Some("true")),
    ]));
    let d = decide(&pod(ro_spec()), Some(&mixed), &Policy::default());
    assert_eq!(
        d.subject,
        Some(Subject { kind: Kind::Pod, namespace: "default".into(), name: "p".into() }),
        "the decision names its object"
    );
    assert_eq!(finding(&d, Rule::FlagPartial), (Action::Warn, vec!["strict".to_string()], 1, 2));

    let strict = cluster(&with_rc(vec![node("s1", "strict", Some("false")), node("t1", "tight", None)]));
    let d = decide(&pod(ro_spec()), Some(&strict), &Policy::default());
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(finding(&d, Rule::FlagMissing), (Action::Deny, vec!["strict".into(), "tight".into()], 2, 2));
    let audit = Policy { mode: Mode::Audit, ..Policy::default() };
    let d = decide(&pod(ro_spec()), Some(&strict), &audit);
    assert_eq!((d.verdict, finding(&d, Rule::FlagMissing).0), (Verdict::Allow, Action::Audit));

    let d = decide(&pod(ro_spec()), None, &Policy::default());
    assert_eq!(finding(&d, Rule::PoolsNotEvaluated), (Action::Note, vec![], 0, 0));
}
