//! Differential test of where a pod can land: thousands of generated
//! pod/node pairs judged by our `Placement` and by Kubernetes' own
//! `k8s.io/component-helpers` (the Go program in `tests/schedref`). Any
//! disagreement fails the test and prints the case.
//!
//! What it covers: the NodeAffinity filter (`nodeSelector` and required node
//! affinity, through `nodeaffinity.GetRequiredNodeAffinity`) and the
//! TaintToleration filter (`NoSchedule`/`NoExecute` taints against
//! tolerations). `spec.nodeName`, cordoned nodes, the RuntimeClass merge and
//! the node index are not compared with Go here; their unit tests are in
//! `src/cluster/scheduling.rs` and `src/cluster/pools.rs`.
//!
//! Needs Go (it builds the reference once into the cache); without it the
//! test fails: there is no switch that turns it into a pass.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, Pod, PodSpec,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};
use sysbox_ro_webhook::cluster::scheduling::{scheduler_filters_effect, Placement};

mod rng;
use rng::Rng;

const KEYS: &[&str] = &[
    "zone",
    "pool",
    "cpu",
    "example.com/tier",
    "kubernetes.io/hostname",
    "sysbox-ro.dev/relaxed-read-only",
    "Bad Key",
    "a/b/c",
    "-lead",
    "UPPER.example.com/x",
];
const VALUES: &[&str] =
    &["a", "b", "true", "false", "1", "10", "-5", "+7", "007", "abc", "", "x_y.z", "bad value", "9223372036854775808"];
const NUMBERS: &[&str] = &["1", "4", "10", "007", "-5"];
const NAMES: &[&str] = &["n1", "n2", "node-a"];

fn values(rng: &mut Rng) -> Option<Vec<String>> {
    match rng.below(5) {
        0 => None,
        1 => Some(vec![]),
        n => Some((0..n - 1).map(|_| rng.pick(VALUES).to_string()).collect()),
    }
}

fn requirement(rng: &mut Rng, field: bool) -> NodeSelectorRequirement {
    let operator = rng.pick(&["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Bogus"]).to_string();
    if field {
        let key = rng.pick(&["metadata.name", "metadata.name", "spec.unknown"]).to_string();
        let vals = match rng.below(4) {
            0 => Some(vec![]),
            1 => Some(vec![rng.pick(NAMES).to_string(), rng.pick(NAMES).to_string()]),
            _ => Some(vec![rng.pick(NAMES).to_string()]),
        };
        let operator = if rng.chance(85) { rng.pick(&["In", "NotIn"]).to_string() } else { operator };
        return NodeSelectorRequirement { key, operator, values: vals };
    }
    if (operator == "Gt" || operator == "Lt") && rng.chance(80) {
        // Mostly well-formed comparisons against numeric node labels, equal values included.
        return NodeSelectorRequirement {
            key: "cpu".into(),
            operator,
            values: Some(vec![rng.pick(NUMBERS).to_string()]),
        };
    }
    NodeSelectorRequirement { key: rng.pick(KEYS).to_string(), operator, values: values(rng) }
}

fn pod(rng: &mut Rng) -> Pod {
    let node_selector = rng.chance(40).then(|| {
        (0..1 + rng.below(2)).map(|_| (rng.pick(&KEYS[..6]).to_string(), rng.pick(&VALUES[..6]).to_string())).collect()
    });
    let affinity = rng.chance(75).then(|| {
        let terms = (0..rng.below(4))
            .map(|_| NodeSelectorTerm {
                match_expressions: rng.chance(85).then(|| (0..rng.below(3)).map(|_| requirement(rng, false)).collect()),
                match_fields: rng.chance(25).then(|| (0..rng.below(2) + 1).map(|_| requirement(rng, true)).collect()),
            })
            .collect();
        Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: rng
                    .chance(90)
                    .then_some(NodeSelector { node_selector_terms: terms }),
                ..Default::default()
            }),
            ..Default::default()
        }
    });
    let tolerations = rng.chance(70).then(|| {
        (0..rng.below(4))
            .map(|_| Toleration {
                key: rng.chance(85).then(|| rng.pick(&["dedicated", "sysbox-runtime", "", "gpu"]).to_string()),
                operator: rng.chance(85).then(|| rng.pick(&["Equal", "Exists", "", "Bogus"]).to_string()),
                value: rng.chance(70).then(|| rng.pick(&["ci", "not-running", "", "true"]).to_string()),
                effect: rng
                    .chance(70)
                    .then(|| rng.pick(&["NoSchedule", "NoExecute", "PreferNoSchedule", ""]).to_string()),
                toleration_seconds: None,
            })
            .collect()
    });
    Pod {
        metadata: ObjectMeta { name: Some("p".into()), ..Default::default() },
        spec: Some(PodSpec { node_selector, affinity, tolerations, containers: vec![], ..Default::default() }),
        status: None,
    }
}

fn node(rng: &mut Rng) -> Node {
    let mut labels: BTreeMap<String, String> =
        (0..rng.below(6)).map(|_| (rng.pick(&KEYS[..6]).to_string(), rng.pick(VALUES).to_string())).collect();
    if rng.chance(60) {
        labels.insert("cpu".into(), rng.pick(NUMBERS).to_string());
    }
    let taints = rng.chance(50).then(|| {
        (0..1 + rng.below(2))
            .map(|_| Taint {
                key: rng.pick(&["dedicated", "sysbox-runtime", "gpu"]).to_string(),
                value: rng.chance(80).then(|| rng.pick(&["ci", "not-running", "", "true"]).to_string()),
                effect: rng.pick(&["NoSchedule", "NoExecute", "PreferNoSchedule"]).to_string(),
                time_added: None,
            })
            .collect()
    });
    Node {
        metadata: ObjectMeta {
            name: Some(if rng.chance(95) { rng.pick(NAMES).to_string() } else { String::new() }),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec { taints, ..Default::default() }),
        status: None,
    }
}

fn ours(pod: &Pod, node: &Node) -> (bool, bool) {
    let spec = pod.spec.as_ref().unwrap();
    let p = Placement::new(
        None,
        spec.node_selector.as_ref(),
        spec.affinity.as_ref(),
        spec.tolerations.as_deref().unwrap_or_default(),
        None,
    );
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    (p.affinity_matches(node), p.tolerates_taints(taints, scheduler_filters_effect))
}

fn reference_binary() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schedref/run.sh");
    let out = Command::new("bash").arg(script).stderr(Stdio::inherit()).output().expect("run tests/schedref/run.sh");
    assert!(out.status.success(), "building the Go reference failed (needs Go, see README)");
    String::from_utf8(out.stdout).unwrap().lines().last().expect("binary path").trim().to_string()
}

#[test]
fn placement_agrees_with_kubernetes_component_helpers() {
    let bin = reference_binary();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let cases: Vec<(Pod, Node)> = (0..5000).map(|_| (pod(&mut rng), node(&mut rng))).collect();
    let input = json!({ "cases": cases.iter().map(|(p, n)| json!({ "pod": p, "node": n })).collect::<Vec<_>>() });
    let mut child = Command::new(&bin).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start reference");
    child.stdin.take().unwrap().write_all(&serde_json::to_vec(&input).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference failed");
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());

    let mut disagreements = Vec::new();
    let (mut matched, mut tolerated) = (0, 0);
    for ((pod, node), expected) in cases.iter().zip(results) {
        let want = (expected["affinity"].as_bool().unwrap(), expected["taints"].as_bool().unwrap());
        let got = ours(pod, node);
        matched += usize::from(want.0);
        tolerated += usize::from(want.1);
        if got != want {
            disagreements
                .push(json!({ "pod": pod.spec, "node": node, "kubernetes": expected, "ours": [got.0, got.1] }));
        }
    }
    // The generator must exercise both outcomes of each filter.
    assert!(matched > 500 && matched < 4500, "affinity matched {matched} of 5000: generator is lopsided");
    assert!(tolerated > 500 && tolerated < 4500, "taints tolerated {tolerated} of 5000: generator is lopsided");
    assert!(
        disagreements.is_empty(),
        "{} disagreements with component-helpers; first: {}",
        disagreements.len(),
        serde_json::to_string_pretty(&disagreements[0]).unwrap()
    );
}
