//! What Sysbox, the kubelet, the admission plugins and the DaemonSet
//! controller really do, case by case. Each case names the upstream source
//! it holds the engine to:
//!
//! - sysbox-runc `libsysbox/syscont/spec.go` (nestybox/sysbox-runc master,
//!   081856cc): `getSysboxEnvVarConfigs` and helpers (lines 978-1075),
//!   `IdRangeMin` (44), `validateIDMappings` (411-419), `sysMgrSetupMounts` (900, 931);
//! - Kubernetes v1.35.4: `pkg/kubelet/kubelet_pods.go`, `pkg/kubelet/envvars/envvars.go`,
//!   `third_party/forked/golang/expansion/expand.go`,
//!   `pkg/controller/daemon/util/daemonset_util.go`,
//!   `plugin/pkg/admission/defaulttolerationseconds/admission.go`,
//!   `plugin/pkg/admission/runtimeclass/admission.go`.

mod common;

use common::*;
use serde_json::{json, Value};
use sysbox_ro_webhook::cluster::services::{ClusterIp, ServiceIndex};
use sysbox_ro_webhook::engine::{Kind, Verdict};
use sysbox_ro_webhook::policy::Policy;

struct Case {
    name: &'static str,
    /// Cluster state documents (the RuntimeClass is added).
    docs: Vec<String>,
    object: Value,
    verdict: Verdict,
    rules: &'static [&'static str],
    /// Substrings of the denial message, else of the warnings.
    says: &'static [&'static str],
    /// Substrings the text must not contain.
    not_says: &'static [&'static str],
}

fn case(
    name: &'static str,
    docs: Vec<String>,
    object: Value,
    verdict: Verdict,
    rules: &'static [&'static str],
) -> Case {
    Case { name, docs, object, verdict, rules, says: &[], not_says: &[] }
}

fn crio_node(name: &str, pool: &str, flag: Option<&str>) -> String {
    node(name, pool, flag).replace("    sysbox-install", "    crio-runtime: running\n    sysbox-install")
}

fn tainted(node_yaml: String, key: &str, effect: &str) -> String {
    format!("{node_yaml}spec:\n  taints:\n  - {{key: {key}, effect: {effect}}}\n")
}

fn cordoned(node_yaml: String) -> String {
    format!("{node_yaml}spec:\n  unschedulable: true\n")
}

fn service(namespace: &str, name: &str, cluster_ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  clusterIP: \"{cluster_ip}\"\n  ports:\n  - {{port: 80}}\n"
    )
}

fn good() -> Vec<String> {
    vec![node("a1", "good", Some("true"))]
}

fn mixed() -> Vec<String> {
    vec![node("a1", "good", Some("true")), node("b1", "bad", Some("false"))]
}

/// A read-only Sysbox pod whose container has `env`.
fn with_env(env: Value) -> Value {
    let mut spec = ro_spec();
    spec["containers"][0]["env"] = env;
    pod(spec)
}

fn with_env_from(env_from: Value) -> Value {
    let mut spec = ro_spec();
    spec["containers"][0]["envFrom"] = env_from;
    pod(spec)
}

fn spec_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut spec = ro_spec();
    f(&mut spec);
    spec
}

fn annotated(mut object: Value, value: &str) -> Value {
    object["metadata"]["annotations"] = json!({ "io.kubernetes.cri-o.userns-mode": value });
    object
}

fn annotated_template(kind: Kind, spec: Value, value: &str) -> Value {
    let mut o = workload(kind, spec);
    o["spec"]["template"]["metadata"]["annotations"] = json!({ "io.kubernetes.cri-o.userns-mode": value });
    o
}

fn no_host_users(spec: &mut Value) {
    spec.as_object_mut().unwrap().remove("hostUsers");
}

fn cases() -> Vec<Case> {
    vec![
        // ---- per-container environment: sysbox-runc spec.go getSysboxEnvVarConfigs
        // spec.go:1022-1023: booleans take exactly TRUE or FALSE.
        Case {
            says: &["SYSBOX_HONOR_CAPS=\"true\" must be exactly TRUE or FALSE"],
            ..case(
                "boolean spelled in lower case",
                good(),
                with_env(json!([{ "name": "SYSBOX_HONOR_CAPS", "value": "true" }])),
                Verdict::Deny,
                &["sysbox-env"],
            )
        },
        // spec.go:1041-1046: SYSBOX_SKIP_UID_SHIFT non-empty, no whitespace.
        case(
            "skip-uid-shift with a space",
            good(),
            with_env(json!([{ "name": "SYSBOX_SKIP_UID_SHIFT", "value": "/a, /b" }])),
            Verdict::Deny,
            &["sysbox-env"],
        ),
        case(
            "skip-uid-shift empty",
            good(),
            with_env(json!([{ "name": "SYSBOX_SKIP_UID_SHIFT", "value": "" }])),
            Verdict::Deny,
            &["sysbox-env"],
        ),
        // spec.go:1064-1070: every comma-separated path absolute.
        case(
            "skip-uid-shift with a relative path",
            good(),
            with_env(json!([{ "name": "SYSBOX_SKIP_UID_SHIFT", "value": "/a,var/lib" }])),
            Verdict::Deny,
            &["sysbox-env"],
        ),
        case(
            "skip-uid-shift with absolute paths",
            good(),
            with_env(json!([{ "name": "SYSBOX_SKIP_UID_SHIFT", "value": "/var/lib/a,/data" }])),
            Verdict::Allow,
            &[],
        ),
        // spec.go:992-995: the entry is split on every '='.
        Case {
            says: &["splits the entry on every '='"],
            ..case(
                "value holding '='",
                good(),
                with_env(json!([{ "name": "SYSBOX_SKIP_UID_SHIFT", "value": "/a=b" }])),
                Verdict::Deny,
                &["sysbox-env"],
            )
        },
        // kubelet_pods.go:797-800: an envFrom prefix is put before every key;
        // no accepted name starts with SYSBOX_CI_, so every key is refused.
        Case {
            says: &["prefix SYSBOX_CI_"],
            ..case(
                "envFrom prefix that can only make unknown SYSBOX_ names",
                good(),
                with_env_from(json!([{ "prefix": "SYSBOX_CI_", "configMapRef": { "name": "ci" } }])),
                Verdict::Deny,
                &["sysbox-env"],
            )
        },
        // The prefix SYSBOX_ could make SYSBOX_HONOR_CAPS from a key HONOR_CAPS: not guessed.
        case(
            "envFrom prefix SYSBOX_ is unverified",
            good(),
            with_env_from(json!([{ "prefix": "SYSBOX_", "secretRef": { "name": "s" } }])),
            Verdict::Warn,
            &["sysbox-env-unverified"],
        ),
        Case {
            says: &["ConfigMap app-env"],
            ..case(
                "envFrom without prefix is unverified",
                good(),
                with_env_from(json!([{ "configMapRef": { "name": "app-env" } }])),
                Verdict::Warn,
                &["sysbox-env-unverified"],
            )
        },
        case(
            "envFrom with a prefix that cannot start SYSBOX_",
            good(),
            with_env_from(json!([{ "prefix": "APP_", "configMapRef": { "name": "app-env" } }])),
            Verdict::Allow,
            &[],
        ),
        // kubelet_pods.go:843-849 with expand.go: $(VAR) is replaced by an earlier entry's value.
        case(
            "reference to an earlier literal TRUE",
            good(),
            with_env(json!([
                { "name": "CAPS", "value": "TRUE" },
                { "name": "SYSBOX_HONOR_CAPS", "value": "$(CAPS)" }
            ])),
            Verdict::Allow,
            &[],
        ),
        case(
            "reference expanding to a bad value",
            good(),
            with_env(json!([
                { "name": "CAPS", "value": "yes" },
                { "name": "SYSBOX_HONOR_CAPS", "value": "$(CAPS)" }
            ])),
            Verdict::Deny,
            &["sysbox-env"],
        ),
        // A reference the view cannot resolve is never called invalid.
        Case {
            not_says: &["must be exactly"],
            ..case(
                "reference to an unknown variable",
                good(),
                with_env(json!([{ "name": "SYSBOX_HONOR_CAPS", "value": "$(FROM_ELSEWHERE)" }])),
                Verdict::Warn,
                &["sysbox-env-unverified"],
            )
        },
        // expand.go:85-87: "$$" is an escaped '$', so "$$(CAPS)" is the literal "$(CAPS)".
        case(
            "escaped reference is literal text",
            good(),
            with_env(json!([
                { "name": "CAPS", "value": "TRUE" },
                { "name": "SYSBOX_HONOR_CAPS", "value": "$$(CAPS)" }
            ])),
            Verdict::Deny,
            &["sysbox-env"],
        ),
        // kubelet_pods.go:961: later entries replace earlier ones of the same name.
        case(
            "the last definition wins",
            good(),
            with_env(json!([
                { "name": "SYSBOX_HONOR_CAPS", "value": "yes" },
                { "name": "SYSBOX_HONOR_CAPS", "value": "FALSE" }
            ])),
            Verdict::Allow,
            &[],
        ),
        // spec.go:900 (sysMgrSetupMounts): without system-container mode there are
        // no implicit mounts to make read-only: the flag does not matter.
        Case {
            not_says: &["relaxed-read-only"],
            ..case(
                "SYSBOX_SYSCONT_MODE=FALSE is out of the relaxed-read-only question",
                vec![node("b1", "bad", Some("false"))],
                with_env(json!([{ "name": "SYSBOX_SYSCONT_MODE", "value": "FALSE" }])),
                Verdict::Allow,
                &[],
            )
        },
        case(
            "SYSBOX_SYSCONT_MODE=FALSE is still in scope for hygiene",
            vec![node("b1", "bad", Some("false"))],
            with_env(json!([
                { "name": "SYSBOX_SYSCONT_MODE", "value": "FALSE" },
                { "name": "SYSBOX_NOPE", "value": "1" }
            ])),
            Verdict::Deny,
            &["sysbox-env"],
        ),
        // ---- service links: envvars.go:45-59 (names), kubelet_pods.go:717 (same namespace, links enabled)
        Case {
            says: &["sysbox-cache", "SYSBOX_CACHE_SERVICE_HOST", "enableServiceLinks: false", "rename"],
            ..case(
                "a sysbox-* Service in the pod's namespace",
                vec![node("a1", "good", Some("true")), service("default", "sysbox-cache", "10.0.0.7")],
                pod(ro_spec()),
                Verdict::Deny,
                &["sysbox-service-links"],
            )
        },
        case(
            "enableServiceLinks: false",
            vec![node("a1", "good", Some("true")), service("default", "sysbox", "10.0.0.7")],
            pod(spec_with(|s| s["enableServiceLinks"] = json!(false))),
            Verdict::Allow,
            &[],
        ),
        // kubelet_pods.go:703 and envvars.go:40: no cluster IP, no links.
        case(
            "headless sysbox Service",
            vec![node("a1", "good", Some("true")), service("default", "sysbox", "None")],
            pod(ro_spec()),
            Verdict::Allow,
            &[],
        ),
        case(
            "sysbox Service in another namespace",
            vec![node("a1", "good", Some("true")), service("other", "sysbox", "10.0.0.7")],
            pod(ro_spec()),
            Verdict::Allow,
            &[],
        ),
        // envvars.go:64-70: "sysboxcache" gives SYSBOXCACHE_..., not SYSBOX_.
        case(
            "Service named sysboxcache",
            vec![node("a1", "good", Some("true")), service("default", "sysboxcache", "10.0.0.7")],
            pod(ro_spec()),
            Verdict::Allow,
            &[],
        ),
        // ---- DaemonSets: daemonset_util.go:48-101, daemon_controller.go:1319-1327
        Case {
            says: &["1 node of those 2", "Pools lacking the flag: bad"],
            ..case(
                "DaemonSet on mixed pools is certain to fail on some",
                mixed(),
                workload(Kind::DaemonSet, ro_spec()),
                Verdict::Deny,
                &["relaxed-read-only-daemonset"],
            )
        },
        case(
            "Deployment on mixed pools is a risk",
            mixed(),
            workload(Kind::Deployment, ro_spec()),
            Verdict::Warn,
            &["relaxed-read-only-partial"],
        ),
        // daemonset_util.go:89-93: daemon pods tolerate node.kubernetes.io/unschedulable.
        case(
            "DaemonSet reaches a cordoned node without the flag",
            vec![node("a1", "good", Some("true")), cordoned(node("c1", "cordoned", Some("false")))],
            workload(Kind::DaemonSet, ro_spec()),
            Verdict::Deny,
            &["relaxed-read-only-daemonset"],
        ),
        case(
            "a Deployment does not",
            vec![node("a1", "good", Some("true")), cordoned(node("c1", "cordoned", Some("false")))],
            workload(Kind::Deployment, ro_spec()),
            Verdict::Allow,
            &[],
        ),
        // daemonset_util.go:71-75: disk-pressure NoSchedule is tolerated.
        case(
            "DaemonSet reaches a disk-pressure node",
            vec![
                node("a1", "good", Some("true")),
                tainted(node("d1", "full", Some("false")), "node.kubernetes.io/disk-pressure", "NoSchedule"),
            ],
            workload(Kind::DaemonSet, ro_spec()),
            Verdict::Deny,
            &["relaxed-read-only-daemonset"],
        ),
        // daemonset_util.go:95-101: network-unavailable only for host-network pods.
        case(
            "network-unavailable keeps a DaemonSet without hostNetwork away",
            vec![
                node("a1", "good", Some("true")),
                tainted(node("n1", "nonet", Some("false")), "node.kubernetes.io/network-unavailable", "NoSchedule"),
            ],
            workload(Kind::DaemonSet, ro_spec()),
            Verdict::Allow,
            &[],
        ),
        case(
            "network-unavailable does not keep a host-network DaemonSet away",
            vec![
                node("a1", "good", Some("true")),
                tainted(node("n1", "nonet", Some("false")), "node.kubernetes.io/network-unavailable", "NoSchedule"),
            ],
            workload(Kind::DaemonSet, spec_with(|s| s["hostNetwork"] = json!(true))),
            Verdict::Deny,
            &["sysbox-unsupported-setting", "relaxed-read-only-daemonset"],
        ),
        // ---- what admission adds before any webhook
        // defaulttolerationseconds/admission.go:142-160: not-ready and unreachable
        // NoExecute for 300 s, so a pod pinned to a node with only that taint runs there.
        case(
            "DefaultTolerationSeconds lets a pinned pod onto a not-ready node",
            vec![tainted(node("b1", "bad", Some("false")), "node.kubernetes.io/not-ready", "NoExecute")],
            pod(spec_with(|s| s["nodeName"] = json!("b1"))),
            Verdict::Deny,
            &["relaxed-read-only-missing"],
        ),
        // runtimeclass/admission.go:204-206: a conflicting nodeSelector is refused.
        Case {
            says: &["sysbox-runtime=\"installing\"", "sysbox-runtime=\"running\"", "RuntimeClass admission plugin"],
            not_says: &["cannot be scheduled"],
            ..case(
                "nodeSelector conflicting with the RuntimeClass",
                good(),
                pod(spec_with(|s| s["nodeSelector"] = json!({ "sysbox-runtime": "installing" }))),
                Verdict::Deny,
                &["runtime-class-conflict"],
            )
        },
        case(
            "a workload whose pods the plugin would refuse",
            good(),
            workload(Kind::Deployment, spec_with(|s| s["nodeSelector"] = json!({ "sysbox-runtime": "installing" }))),
            Verdict::Deny,
            &["runtime-class-conflict"],
        ),
        // ---- user namespaces, pool by pool
        case(
            "CRI-O annotation on CRI-O nodes",
            vec![crio_node("a1", "crio", Some("true"))],
            annotated(pod(spec_with(no_host_users)), "auto:size=65536"),
            Verdict::Allow,
            &[],
        ),
        Case {
            says: &["containerd pools plain"],
            not_says: &["crio"],
            ..case(
                "CRI-O annotation where some pools run containerd",
                vec![crio_node("a1", "crio", Some("true")), node("c1", "plain", Some("true"))],
                annotated(pod(spec_with(no_host_users)), "auto:size=65536"),
                Verdict::Warn,
                &["sysbox-user-namespace"],
            )
        },
        // spec.go:44 and 411-419: at least 65536 IDs from 0.
        Case {
            says: &["65536", "crio"],
            ..case(
                "CRI-O annotation with too few IDs",
                vec![crio_node("a1", "crio", Some("true"))],
                annotated(pod(spec_with(no_host_users)), "auto:size=4096"),
                Verdict::Deny,
                &["sysbox-user-namespace-size"],
            )
        },
        case(
            "too few IDs, but only containerd nodes: the annotation is ignored there",
            good(),
            annotated_template(Kind::Deployment, spec_with(no_host_users), "auto:size=4096"),
            Verdict::Warn,
            &["sysbox-user-namespace"],
        ),
        case(
            "hostUsers: false works everywhere",
            mixed().into_iter().take(1).collect(),
            pod(ro_spec()),
            Verdict::Allow,
            &[],
        ),
        case(
            "shareProcessNamespace warns",
            good(),
            pod(spec_with(|s| s["shareProcessNamespace"] = json!(true))),
            Verdict::Warn,
            &["sysbox-share-process-namespace"],
        ),
        Case {
            says: &["unsupported"],
            not_says: &["will not start"],
            ..case(
                "privileged is unsupported, still denied",
                good(),
                pod(spec_with(|s| s["containers"][0]["securityContext"]["privileged"] = json!(true))),
                Verdict::Deny,
                &["sysbox-unsupported-setting"],
            )
        },
        // ---- what the messages say
        Case {
            says: &["intended"],
            ..case(
                "a verdict resting on the ConfigMap says intended",
                vec![node("a1", "a", None), mgr_configmap("--relaxed-read-only")],
                pod(ro_spec()),
                Verdict::Warn,
                &["relaxed-read-only-from-configmap"],
            )
        },
        Case {
            says: &["Sysbox 0.6.5+", "drain it first", "sysbox-ro-webhook explain relaxed-read-only-missing"],
            ..case(
                "the denial's fix",
                vec![node("b1", "bad", Some("false"))],
                pod(ro_spec()),
                Verdict::Deny,
                &["relaxed-read-only-missing"],
            )
        },
    ]
}

#[test]
fn fidelity_table() {
    let policy = Policy::default();
    for c in cases() {
        let mut docs = vec![RUNTIME_CLASS.to_string()];
        docs.extend(c.docs.iter().cloned());
        let state = cluster(&docs);
        let d = decide(&c.object, Some(&state), &policy);
        assert_eq!(d.verdict, c.verdict, "{}: {d:#?}", c.name);
        assert_eq!(rules(&d), c.rules, "{}", c.name);
        let text = d.message.clone().unwrap_or_else(|| d.warnings.join("\n"));
        for s in c.says {
            assert!(text.contains(s), "{}: {s:?} missing from {text}", c.name);
        }
        for s in c.not_says {
            assert!(!text.contains(s), "{}: {s:?} in {text}", c.name);
        }
        for w in &d.warnings {
            assert!(w.chars().count() <= 120, "{}: {w}", c.name);
        }
    }
}

#[test]
fn syscont_mode_off_pods_are_not_annotated() {
    let state = cluster(&[RUNTIME_CLASS.into(), node("a1", "good", Some("true"))]);
    let object = with_env(json!([{ "name": "SYSBOX_SYSCONT_MODE", "value": "FALSE" }]));
    let d = decide(&object, Some(&state), &Policy::default());
    assert!(d.patch.is_empty(), "the pod does not need the flag: {:?}", d.patch);
    assert!(d.notes.iter().any(|n| n.contains("SYSBOX_SYSCONT_MODE=FALSE")), "{:?}", d.notes);
    // A second read-only container in system-container mode brings the question back.
    let mut spec = ro_spec();
    spec["containers"][0]["env"] = json!([{ "name": "SYSBOX_SYSCONT_MODE", "value": "FALSE" }]);
    spec["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "dind2", "image": "docker", "securityContext": { "readOnlyRootFilesystem": true } }));
    let d = decide(&pod(spec), Some(&state), &Policy::default());
    assert!(!d.patch.is_empty());
}

#[test]
fn the_live_view_cannot_rule_out_a_headless_service() {
    // The live view watches Services metadata only: the cluster IP is unknown.
    let mut idx = ServiceIndex::default();
    idx.add("default", "sysbox", ClusterIp::Unknown);
    let state = cluster(&[RUNTIME_CLASS.into(), node("a1", "good", Some("true"))]).with_services(idx);
    let d = decide(&pod(ro_spec()), Some(&state), &Policy::default());
    assert_eq!((d.verdict, rules(&d)), (Verdict::Deny, vec!["sysbox-service-links"]));
    assert!(d.message.unwrap().contains("unless the Service is headless"));
}

#[test]
fn without_services_in_the_view_nothing_is_assumed() {
    let state = cluster(&[RUNTIME_CLASS.into(), node("a1", "good", Some("true"))]);
    assert!(state.services().is_none());
    assert_eq!(decide(&pod(ro_spec()), Some(&state), &Policy::default()).verdict, Verdict::Allow);
}

#[test]
fn daemonset_denial_counts_nodes_and_names_pools() {
    let mut docs = vec![RUNTIME_CLASS.to_string(), node("a1", "good", Some("true"))];
    docs.extend((0..3).map(|i| node(&format!("b{i}"), "bad", Some("false"))));
    docs.push(node("c1", "worse", None));
    let d = decide(&workload(Kind::DaemonSet, ro_spec()), Some(&cluster(&docs)), &Policy::default());
    let f = &d.findings[0];
    assert_eq!(
        (f.rule.id(), f.nodes, f.pools.as_slice()),
        ("relaxed-read-only-daemonset", 4, &["bad".to_string(), "worse".to_string()][..])
    );
    let msg = d.message.unwrap();
    assert!(msg.contains("4 nodes of those 5"), "{msg}");
}
