//! Verdict tables with nodes not yet created: Karpenter NodePools and declared
//! node groups that scale from zero, next to existing nodes.

mod common;

use common::*;
use serde_json::{json, Value};
use sysbox_ro_webhook::engine::{Kind, Verdict};
use sysbox_ro_webhook::policy::{Mode, Policy};

/// A NodePool whose nodes run Sysbox (they carry the RuntimeClass's
/// `sysbox-runtime: running`); `flag` goes in the template labels; `extra`
/// is more YAML under `spec.template.spec`; `status` replaces the Ready status.
fn node_pool(name: &str, flag: Option<&str>, extra: &str, status: Option<&str>) -> String {
    let flag = flag.map(|f| format!("\n        {FLAG}: \"{f}\"")).unwrap_or_default();
    let status = status.unwrap_or("status:\n  conditions:\n  - {type: Ready, status: \"True\"}\n");
    format!(
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: {name}\nspec:\n  template:\n    metadata:\n      labels:\n        sysbox-runtime: running{flag}\n    spec:\n      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}\n      requirements:\n      - {{key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}}\n{extra}{status}"
    )
}

fn node_groups(yaml: &str) -> String {
    let indented: String = yaml.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sysbox-ro-node-groups\n  namespace: kube-system\ndata:\n  node-groups.yaml: |\n{indented}"
    )
}

fn with_rc(mut docs: Vec<String>) -> Vec<String> {
    docs.insert(0, RUNTIME_CLASS.into());
    docs
}

struct Case {
    name: &'static str,
    docs: Vec<String>,
    spec: Value,
    kind: Kind,
    mode: Mode,
    verdict: Verdict,
    rules: &'static [&'static str],
    /// Substrings of the denial message, else of the warnings and finding messages.
    says: &'static [&'static str],
}

fn case(name: &'static str, docs: Vec<String>, verdict: Verdict, rules: &'static [&'static str]) -> Case {
    Case { name, docs, spec: ro_spec(), kind: Kind::Pod, mode: Mode::Enforce, verdict, rules, says: &[] }
}

fn with(mut spec: Value, key: &str, value: Value) -> Value {
    spec[key] = value;
    spec
}

fn cases() -> Vec<Case> {
    let strict = || node("s1", "ci-strict", Some("false"));
    let relaxed = || node("r1", "ci-relaxed", Some("true"));
    vec![
        // (a) only an empty, flagged pool can take the pod: it will have the flag
        case("only a flagged NodePool", with_rc(vec![strict().replace("sysbox-runtime: running", "other: x"), node_pool("ci-relaxed", Some("true"), "", None)]), Verdict::Allow, &[]),
        // (b) a flagged NodePool and an unflagged existing node: mixed, not denied
        Case {
            says: &["ci-strict", "1 node and 1 pool of nodes not yet created"],
            ..case("flagged NodePool beside an unflagged node", with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "", None)]), Verdict::Warn, &["relaxed-read-only-partial"])
        },
        // (c) flagged existing nodes and an unflagged NodePool: Karpenter may place it there
        Case {
            says: &["NodePool ci-new (not yet created", "template labels the nodes sysbox-ro.dev/relaxed-read-only=false"],
            ..case("unflagged NodePool beside flagged nodes", with_rc(vec![relaxed(), node_pool("ci-new", Some("false"), "", None)]), Verdict::Warn, &["relaxed-read-only-partial"])
        },
        Case {
            says: &["NodePool ci-new (not yet created: no sysbox-ro.dev/relaxed-read-only label in its template and no ConfigMap"],
            ..case("NodePool without the label and no ConfigMap", with_rc(vec![strict(), node_pool("ci-new", None, "", None)]), Verdict::Deny, &["relaxed-read-only-missing"])
        },
        Case {
            says: &["NodePool ci-new (new)"],
            ..case(
                "NodePool without the label, ConfigMap intends the flag",
                with_rc(vec![relaxed(), node_pool("ci-new", None, "", None), mgr_configmap("--relaxed-read-only")]),
                Verdict::Warn,
                &["relaxed-read-only-from-configmap"],
            )
        },
        // incompatible by requirement: the pod asks for s390x, which the NodePool never makes
        case(
            "NodePool incompatible by requirement",
            with_rc(vec![strict().replace("sysbox-install: \"yes\"", "kubernetes.io/arch: s390x"), node_pool("ci-relaxed", Some("true"), "", None)]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        // incompatible by taint: the pod does not tolerate the NodePool's taint
        case(
            "NodePool incompatible by taint",
            with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "      taints:\n      - {key: dedicated, value: ci, effect: NoSchedule}\n", None)]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        Case {
            spec: with(ro_spec(), "tolerations", json!([{"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"}])),
            ..case(
                "NodePool taint tolerated",
                with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "      taints:\n      - {key: dedicated, value: ci, effect: NoSchedule}\n", None)]),
                Verdict::Warn,
                &["relaxed-read-only-partial"],
            )
        },
        case(
            "startup taints need no toleration",
            with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "      startupTaints:\n      - {key: sysbox-installing, effect: NoSchedule}\n", None)]),
            Verdict::Warn,
            &["relaxed-read-only-partial"],
        ),
        // at its limit: provides nothing new, and the message says so
        Case {
            says: &["NodePool ci-relaxed (at its limit: cpu 64 of 64)"],
            ..case(
                "flagged NodePool at its limit",
                with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "", None).replace("  template:\n", "  limits: {cpu: \"64\"}\n  template:\n").replace("status:\n", "status:\n  resources: {cpu: \"64\", nodes: \"16\"}\n")]),
                Verdict::Deny,
                &["relaxed-read-only-missing"],
            )
        },
        Case {
            says: &["NodePool ci-relaxed could host it but will create none"],
            ..case(
                "only a NodePool at its limit",
                with_rc(vec![node_pool("ci-relaxed", Some("true"), "", None).replace("  template:\n", "  limits: {nodes: \"3\"}\n  template:\n").replace("status:\n", "status:\n  resources: {nodes: \"3\"}\n")]),
                Verdict::Warn,
                &["no-candidate-nodes"],
            )
        },
        case(
            "a NodePool not Ready creates nothing",
            with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "", Some("status:\n  conditions:\n  - {type: Ready, status: \"False\"}\n"))]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        // a pod pinned to a node never waits for a new one
        Case {
            spec: with(ro_spec(), "nodeName", json!("s1")),
            ..case("nodeName ignores NodePools", with_rc(vec![strict(), node_pool("ci-relaxed", Some("true"), "", None)]), Verdict::Deny, &["relaxed-read-only-missing"])
        },
        // a DaemonSet's pods go to nodes created later too
        Case {
            kind: Kind::DaemonSet,
            says: &["NodePool ci-new (not yet created:", "nodes created later included"],
            ..case("DaemonSet and an unflagged NodePool", with_rc(vec![relaxed(), node_pool("ci-new", Some("false"), "", None)]), Verdict::Deny, &["relaxed-read-only-daemonset"])
        },
        Case {
            mode: Mode::Warn,
            ..case("warn mode: unflagged NodePool only", with_rc(vec![node_pool("ci-new", Some("false"), "", None)]), Verdict::Warn, &["relaxed-read-only-missing"])
        },
        // declared node groups
        Case {
            says: &["node group ci-relaxed (not yet created:"],
            ..case(
                "declared group without the flag",
                with_rc(vec![relaxed(), node_groups("nodeGroups:\n- name: ci-relaxed\n  labels: {sysbox-runtime: running, sysbox-ro.dev/relaxed-read-only: \"false\"}")]),
                Verdict::Warn,
                &["relaxed-read-only-partial"],
            )
        },
        case(
            "declared flagged group beside an unflagged node",
            with_rc(vec![strict(), node_groups("nodeGroups:\n- name: ci-relaxed\n  labels: {sysbox-runtime: running, sysbox-ro.dev/relaxed-read-only: \"true\"}")]),
            Verdict::Warn,
            &["relaxed-read-only-partial"],
        ),
        case(
            "declared group tainted",
            with_rc(vec![strict(), node_groups("nodeGroups:\n- name: ci-relaxed\n  labels: {sysbox-runtime: running, sysbox-ro.dev/relaxed-read-only: \"true\"}\n  taints: [{key: dedicated, value: ci, effect: NoExecute}]")]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        case(
            "declared group without the RuntimeClass's label",
            with_rc(vec![strict(), node_groups("nodeGroups:\n- name: ci-relaxed\n  labels: {sysbox-ro.dev/relaxed-read-only: \"true\"}")]),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
    ]
    .into_iter()
    .map(|mut c| {
        if c.name == "NodePool incompatible by requirement" {
            c.spec = with(ro_spec(), "nodeSelector", json!({"kubernetes.io/arch": "s390x"}));
        }
        c
    })
    .collect()
}

#[test]
fn verdict_table_with_nodes_not_yet_created() {
    let mut failures = Vec::new();
    for c in cases() {
        let state = cluster(&c.docs);
        let policy = Policy { mode: c.mode, ..Policy::default() };
        let object = if c.kind == Kind::Pod { pod(c.spec.clone()) } else { workload(c.kind, c.spec.clone()) };
        let d = decide(&object, Some(&state), &policy);
        let text = d.message.clone().unwrap_or_default()
            + &d.warnings.join("\n")
            + &d.findings.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("\n");
        let missing: Vec<_> = c.says.iter().filter(|s| !text.contains(*s)).collect();
        if d.verdict != c.verdict || rules(&d) != c.rules || !missing.is_empty() {
            failures.push(format!(
                "{}: got {:?} {:?}, want {:?} {:?}; missing {missing:?} in:\n{text}",
                c.name,
                d.verdict,
                rules(&d),
                c.verdict,
                c.rules
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn warnings_fit_kubectl_with_many_pools_to_come() {
    let mut docs = vec![node("s1", "ci-strict", Some("false"))];
    for i in 0..12 {
        docs.push(node_pool(&format!("a-rather-long-nodepool-name-{i}"), Some("false"), "", None));
    }
    docs.push(node_pool("ci-relaxed", Some("true"), "", None));
    let d = decide(&pod(ro_spec()), Some(&cluster(&with_rc(docs))), &Policy::default());
    assert_eq!(d.verdict, Verdict::Warn);
    for w in &d.warnings {
        assert!(w.chars().count() <= 120, "{w}");
    }
    let f = &d.findings[0];
    assert_eq!((f.pools.len(), f.pool_count), (5, 13), "{f:?}");
}

#[test]
fn steering_reaches_flagged_nodepools_and_settles() {
    let state = cluster(&with_rc(vec![
        node("s1", "ci-strict", Some("false")),
        node_pool("ci-relaxed", Some("true"), "", None),
        node_pool("ci-plain", None, "", None),
    ]));
    let policy = Policy { steer: true, ..Policy::default() };
    let object = pod(ro_spec());
    let d = decide(&object, Some(&state), &policy);
    assert_eq!(d.verdict, Verdict::Warn);
    assert!(d.warnings.iter().any(|w| w.contains("steered")), "{:?}", d.warnings);
    let out = patched(&object, &d);
    // Steered, the pod fits only the flagged NodePool: reinvocation changes nothing.
    let again = decide(&out, Some(&state), &policy);
    assert_eq!((again.verdict, again.patch.len()), (Verdict::Allow, 0), "{again:?}");
}

#[test]
fn no_steering_when_a_flagged_pool_to_come_rests_on_the_configmap() {
    let state = cluster(&with_rc(vec![
        node("s1", "ci-strict", Some("false")),
        node_pool("ci-plain", None, "", None),
        mgr_configmap("--relaxed-read-only"),
    ]));
    let d = decide(&pod(ro_spec()), Some(&state), &Policy { steer: true, ..Policy::default() });
    assert_eq!(d.verdict, Verdict::Warn);
    assert!(!d.warnings.iter().any(|w| w.contains("steered")), "{:?}", d.warnings);
}

#[test]
fn a_cluster_state_of_nodepools_alone_is_not_empty() {
    let state = cluster(&with_rc(vec![node_pool("ci-relaxed", Some("true"), "", None)]));
    let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
    assert_eq!((d.verdict, rules(&d)), (Verdict::Allow, vec![]));
    assert_eq!(d.patch.len(), 1, "annotated: {:?}", d.patch);
}
