//! The decision engine alone, without HTTP or TLS: one decision for the 6 KB
//! read-only Sysbox pod against generated clusters of 10 and 5,000 nodes, the
//! Deployment, the JSON Patch builders, a whole AdmissionReview (parse,
//! decide, answer) for scale, and reviews (the 6 KB pod, the 1 MiB pod, a pod
//! with 4,000 `managedFields` entries) read as `serve` reads them against
//! read whole (`read/trimmed/*`, `read/whole/*`).
//!
//!     cargo bench --bench engine
//!
//! With `SYSBOX_RO_CALLGRIND=NODES:N1,N2` set, the binary instead calls
//! `run_decisions` with N1, then N2 decisions against NODES nodes, and exits;
//! `benches/callgrind.sh` counts the instructions of each call under
//! `valgrind --tool=callgrind --toggle-collect --dump-after`.
//!
//! `SYSBOX_RO_BENCH_NODEPOOLS=N` adds N Karpenter NodePools (the pod fits
//! them all) to the generated cluster, for the cost of judging nodes not yet
//! created.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::Value;
use sysbox_ro_webhook::admission::{self, Endpoint};
use sysbox_ro_webhook::cluster::capacity::Capacity;
use sysbox_ro_webhook::cluster::ClusterState;
use sysbox_ro_webhook::engine::{self, patch, Kind, Review, Texts};
use sysbox_ro_webhook::intake;
use sysbox_ro_webhook::policy::Policy;

/// A cluster state of `nodes` generated nodes. Built from the generated
/// objects directly (the same objects `gen_cluster` writes and `serve` loads),
/// which keeps the setup short under valgrind.
fn state(nodes: usize, policy: &Policy) -> ClusterState {
    let mut all: Vec<Node> = Vec::with_capacity(nodes);
    support::for_each_node(nodes, |mut n| {
        n.as_object_mut().expect("object").remove("status");
        all.push(serde_json::from_value(n).expect("generated nodes are Nodes"));
        Ok(())
    })
    .expect("generates");
    let head = support::head_objects();
    let of = |kind: &'static str| head.iter().filter(move |o| o["kind"] == kind).cloned();
    let rcs: Vec<RuntimeClass> = of("RuntimeClass").map(|o| serde_json::from_value(o).expect("RuntimeClass")).collect();
    let nss: Vec<Namespace> = of("Namespace").map(|o| serde_json::from_value(o).expect("Namespace")).collect();
    let cm: Option<ConfigMap> = of("ConfigMap").next().map(|o| serde_json::from_value(o).expect("ConfigMap"));
    let state = ClusterState::build(&all, &rcs, &nss, cm.as_ref(), &policy.nodes);
    match std::env::var("SYSBOX_RO_BENCH_NODEPOOLS").ok().and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => state.with_capacity(Capacity::build(&node_pools(n), None, &policy.nodes)),
        None => state,
    }
}

/// `n` Ready NodePools of Sysbox nodes that the review pod fits: half label
/// their nodes with the flag, every third is tainted with the taint the pod tolerates.
fn node_pools(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let taints = if i % 3 == 0 {
                serde_json::json!([{ "key": support::DEDICATED_TAINT.0, "value": support::DEDICATED_TAINT.1, "effect": "NoSchedule" }])
            } else {
                serde_json::json!([])
            };
            serde_json::json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": { "name": format!("ci-{i}") },
                "spec": {
                    "template": {
                        "metadata": { "labels": {
                            "sysbox-runtime": "running",
                            "sysbox-install": "yes",
                            "sysbox-ro.dev/relaxed-read-only": if i % 2 == 0 { "true" } else { "false" },
                        } },
                        "spec": {
                            "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "sysbox" },
                            "requirements": [
                                { "key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"] },
                                { "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1a", "eu-west-1b", "eu-west-1c"] },
                                { "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"] },
                            ],
                            "taints": taints,
                        },
                    },
                    "limits": { "cpu": "1000" },
                },
                "status": { "resources": { "cpu": "100" }, "conditions": [{ "type": "Ready", "status": "True" }] },
            })
        })
        .collect()
}

/// The review `check` and `serve` derive for the object (namespace `ci` when it names none).
fn review<'a>(kind: Kind, object: &'a Value) -> Review<'a> {
    let review = intake::from_manifest(object, "ci");
    assert_eq!(review.kind, Some(kind));
    review
}

/// The function callgrind counts: `n` decisions, each on the same input,
/// with the `texts` asked for.
#[inline(never)]
fn run_decisions(n: usize, review: &Review<'_>, cluster: &ClusterState, policy: &Policy, texts: Texts) -> usize {
    let mut patch_ops = 0;
    for _ in 0..n {
        let d = engine::decide_with(black_box(review), Some(cluster), policy, texts).expect("decides");
        patch_ops += black_box(d).patch.len();
    }
    patch_ops
}

/// `SYSBOX_RO_CALLGRIND=NODES:N1,N2,...`: builds the state once, then calls
/// `run_decisions` once per count (callgrind dumps after each call).
/// `SYSBOX_RO_CALLGRIND_TEXTS=shown` counts the decision `serve` asks for
/// (`Texts::Shown`); the default, `all`, the one `check` asks for.
fn callgrind(spec: &str) {
    let texts = match std::env::var("SYSBOX_RO_CALLGRIND_TEXTS").as_deref() {
        Ok("shown") => Texts::Shown,
        Ok("all") | Err(_) => Texts::All,
        Ok(other) => panic!("SYSBOX_RO_CALLGRIND_TEXTS={other}: all or shown"),
    };
    let (nodes, counts) = spec.split_once(':').expect("SYSBOX_RO_CALLGRIND=NODES:DECISIONS[,DECISIONS...]");
    let nodes: usize = nodes.parse().expect("NODES");
    let policy = Policy::default();
    let cluster = state(nodes, &policy);
    let object = support::object_of(&support::review_pod());
    let review = review(Kind::Pod, &object);
    // The script starts valgrind with instrumentation off: building 65,000
    // nodes instrumented takes most of an hour, uninstrumented a few minutes.
    start_callgrind_instrumentation();
    let d = engine::decide_with(&review, Some(&cluster), &policy, texts).expect("decides");
    eprintln!(
        "{nodes} nodes, {} node classes, texts {texts:?}; decision: {} ({}), {} patch operations",
        cluster.nodes.classes.len(),
        d.verdict.as_str(),
        d.summary(engine::Rule::id),
        d.patch.len()
    );
    for n in counts.split(',') {
        black_box(run_decisions(n.parse().expect("DECISIONS"), &review, &cluster, &policy, texts));
    }
}

/// Asks callgrind to start instrumenting (what `CALLGRIND_START_INSTRUMENTATION`
/// in valgrind's `callgrind.h` does): valgrind recognises the client-request
/// marker, four rotations of `rdi` by 128 bits in all followed by
/// `xchg rbx, rbx`, and reads the request from the six words `rax` points at.
/// Run natively the rotations leave `rdi` as it was and the exchange does
/// nothing, so `rdx` keeps its default. The request code is the tool base
/// `('C' << 24) | ('T' << 16)` plus 4, the fifth of callgrind's requests.
#[cfg(target_arch = "x86_64")]
fn start_callgrind_instrumentation() {
    const START_INSTRUMENTATION: u64 = ((b'C' as u64) << 24 | (b'T' as u64) << 16) + 4;
    let request: [u64; 6] = [START_INSTRUMENTATION, 0, 0, 0, 0, 0];
    let mut result: u64 = 0;
    // SAFETY: the sequence reads the array (alive for the whole block), changes
    // only `rdx` (declared) and restores `rdi` (declared as in and out).
    unsafe {
        std::arch::asm!(
            "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") request.as_ptr(),
            inout("rdx") result,
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
    black_box(result);
}

/// Elsewhere the script leaves instrumentation on from the start.
#[cfg(not(target_arch = "x86_64"))]
fn start_callgrind_instrumentation() {}

fn benches(c: &mut Criterion) {
    let policy = Policy::default();
    let pod_body = serde_json::to_vec(&support::review_pod()).expect("serialise");
    let pod = support::object_of(&support::review_pod());
    let deployment = support::object_of(&support::review_deployment());

    let mut group = c.benchmark_group("decide");
    for nodes in [10, 5000] {
        let cluster = state(nodes, &policy);
        let pod_review = review(Kind::Pod, &pod);
        let dep_review = review(Kind::Deployment, &deployment);
        group.bench_with_input(BenchmarkId::new("pod", nodes), &nodes, |b, _| {
            b.iter(|| engine::decide(black_box(&pod_review), Some(&cluster), &policy))
        });
        group.bench_with_input(BenchmarkId::new("deployment", nodes), &nodes, |b, _| {
            b.iter(|| engine::decide(black_box(&dep_review), Some(&cluster), &policy))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("patch");
    group.bench_function("annotate", |b| {
        b.iter(|| {
            let key = "sysbox-ro.dev/relaxed-read-only";
            patch::annotate(patch::AnnotationSlot::of(black_box(&pod), &[], key), &[], key, "true")
        })
    });
    group.bench_function("steer", |b| {
        b.iter(|| patch::steer(black_box(&pod)["spec"].get("affinity"), &[], "sysbox-ro.dev/relaxed-read-only"))
    });
    group.finish();

    // Parse, decide and answer: what the webhook does per request besides TLS and HTTP.
    let mut group = c.benchmark_group("review");
    let cluster = state(5000, &policy);
    group.throughput(Throughput::Bytes(pod_body.len() as u64));
    group.bench_function("pod/5000", |b| {
        b.iter(|| admission::review(black_box(&pod_body), Endpoint::Mutate, Some(&cluster), &policy).expect("answers"))
    });
    group.finish();

    // The same reviews read as `serve` reads them (only what the engine
    // reads of the object is built) and whole (`review_whole`, the reference).
    let mut managed = support::review_pod();
    let fields: Vec<Value> = (0..4000)
        .map(|i| {
            serde_json::json!({ "manager": format!("controller-{i}"), "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": { "f:metadata": { "f:labels": { format!("f:label-{i}"): {} } }, "f:status": { "f:phase": {} } } })
        })
        .collect();
    managed["request"]["object"]["metadata"]["managedFields"] = Value::Array(fields);
    let bodies = [
        ("pod", pod_body.clone()),
        ("pod-1mib", serde_json::to_vec(&support::review_big_pod(1 << 20)).expect("serialise")),
        ("managed-fields", serde_json::to_vec(&managed).expect("serialise")),
    ];
    let cluster = state(10, &policy);
    let mut group = c.benchmark_group("read");
    for (name, body) in &bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(BenchmarkId::new("trimmed", name), |b| {
            b.iter(|| admission::review(black_box(body), Endpoint::Mutate, Some(&cluster), &policy).expect("answers"))
        });
        group.bench_function(BenchmarkId::new("whole", name), |b| {
            b.iter(|| {
                admission::review_whole(black_box(body), Endpoint::Mutate, Some(&cluster), &policy).expect("answers")
            })
        });
    }
    group.finish();
}

fn main() {
    if let Ok(spec) = std::env::var("SYSBOX_RO_CALLGRIND") {
        callgrind(&spec);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
}
