//! `serve` builds only what the engine reads of a reviewed object
//! (`engine::subject::READ`) and passes over the rest as it parses it. These
//! tests hold that reading to the whole one (`admission::review_whole`, the
//! object as a `serde_json::Value`, as every other shell reads it): for every
//! object of the repository's test data and fuzz corpora, wrapped in
//! AdmissionReviews of each operation, for every value put at every path of
//! those objects, for generated pods and workloads, and for hostile bodies
//! (truncated, too deep, bad UTF-8, numbers out of range, wrong types), the
//! answer is the same bytes (allowed, status, warnings, patch, audit
//! annotations), the logged outcome is the same, and an unusable body gets
//! the same error.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sysbox_ro_webhook::admission::{self, Endpoint};
use sysbox_ro_webhook::cluster::snapshot::Objects;
use sysbox_ro_webhook::cluster::ClusterState;
use sysbox_ro_webhook::engine::Kind;
use sysbox_ro_webhook::manifest::{self, Documents};
use sysbox_ro_webhook::policy::{Mode, Policy};

/// How `serve` read a body: answered or not (an HTTP error), and whether from
/// the engine's view read straight from the body (`engine::object`) rather
/// than the fallbacks.
#[derive(Clone, Copy)]
struct Read {
    answered: bool,
    viewed: bool,
}

/// Asserts that the trimmed and the whole reading give the same answer to
/// `body` on both endpoints; says how it was read.
fn same(body: &[u8], cluster: Option<&ClusterState>, policy: &Policy) -> Read {
    let mut answered = false;
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let trimmed = admission::review(body, endpoint, cluster, policy);
        let whole = admission::review_whole(body, endpoint, cluster, policy);
        let text = || String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
        match (trimmed, whole) {
            (Ok((t, to)), Ok((w, wo))) => {
                let (t, w) = (serde_json::to_string(&t).unwrap(), serde_json::to_string(&w).unwrap());
                assert_eq!(t, w, "answers differ for {}", text());
                assert_eq!(format!("{to:?}"), format!("{wo:?}"), "outcomes differ for {}", text());
                answered = true;
            }
            (Err(t), Err(w)) => assert_eq!(t, w, "errors differ for {}", text()),
            (t, w) => panic!("one reading answered, the other did not, for {}:\n{t:?}\n{w:?}", text()),
        }
    }
    let viewed = admission::reads_view(body);
    assert!(answered || !viewed, "a body read as a view must be answered");
    Read { answered, viewed }
}

fn review_body(object: &Value, operation: &str, old: Option<&Value>) -> Vec<u8> {
    let (api_version, kind) = manifest::type_of(object);
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let mut request = json!({
        "uid": "7c4e1e4e-reading",
        "kind": { "group": group, "version": version, "kind": kind },
        "resource": { "group": group, "version": version, "resource": format!("{}s", kind.to_lowercase()) },
        "namespace": object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default"),
        "name": object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""),
        "operation": operation,
        "userInfo": { "username": "ci@example.com", "groups": ["system:authenticated"] },
        "object": object,
        "dryRun": false,
        "options": { "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1" },
    });
    if let Some(old) = old {
        request["oldObject"] = old.clone();
    }
    serde_json::to_vec(&json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request }))
        .unwrap()
}

fn files(dir: &str, out: &mut Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&root) else { return };
    let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_str().unwrap(), out);
        } else {
            out.push(path);
        }
    }
}

/// Every object of the manifests, cluster states, fidelity and audit data,
/// and of the manifest fuzz corpus, as `check` reads them.
fn objects() -> Vec<Value> {
    let mut paths = Vec::new();
    for dir in ["tests/data", "fuzz/corpus/manifest_stream", "examples"] {
        files(dir, &mut paths);
    }
    let mut out = Vec::new();
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "yaml" | "yml" | "json" | "") {
            continue;
        }
        let Ok(text) = std::fs::read(&path) else { continue };
        for doc in Documents::new(text.as_slice()).flatten() {
            if let Ok(value) = doc.parse() {
                for object in manifest::expand_lists(value) {
                    // A review body in the data is an object too: its own object counts.
                    if let Some(inner) = object.pointer("/request/object") {
                        out.push(inner.clone());
                    }
                    out.push(object);
                }
            }
        }
    }
    assert!(out.len() > 60, "the test data holds objects: {}", out.len());
    out
}

/// The AdmissionReview bodies of the repository, as they are.
fn bodies() -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    for dir in ["tests/data/reviews", "fuzz/corpus/admission_review"] {
        files(dir, &mut paths);
    }
    for example in ["examples/review-pod.json", "examples/review-deployment.json"] {
        paths.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(example));
    }
    let out: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(out.len() >= 12);
    out
}

fn load(paths: &[&str], policy: &Policy) -> ClusterState {
    let mut objects = Objects::default();
    for p in paths {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
        objects.read(std::fs::read(&path).unwrap().as_slice(), &path, &policy.nodes).unwrap();
    }
    objects.into_state(&policy.nodes)
}

fn policies() -> Vec<Policy> {
    vec![
        Policy::default(),
        Policy { mode: Mode::Warn, steer: true, annotate_templates: true, ..Policy::default() },
        Policy { mode: Mode::Audit, ..Policy::default() },
    ]
}

fn clusters(policy: &Policy) -> Vec<Option<ClusterState>> {
    let mut out = vec![None, Some(load(&["examples/cluster-state.yaml"], policy))];
    let mut paths = Vec::new();
    files("tests/data/cluster", &mut paths);
    for p in &paths {
        let rel = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_str().unwrap().to_owned();
        out.push(Some(load(&[&rel], policy)));
    }
    out.push(Some(load(&["tests/data/fidelity/cluster.yaml"], policy)));
    out
}

/// The object with its pod template's first container image changed: a
/// difference in a member the trimmed reading does not keep.
fn with_other_image(object: &Value) -> Value {
    let mut old = object.clone();
    for base in ["", "/template", "/spec/template", "/spec/jobTemplate/spec/template"] {
        if let Some(c) = old.pointer_mut(&format!("{base}/spec/containers/0")).and_then(Value::as_object_mut) {
            c.insert("image".into(), json!("docker:26-dind"));
        }
    }
    old
}

#[test]
fn every_object_of_the_test_data_gets_the_same_answer() {
    let objects = objects();
    let (mut answered, mut viewed) = (0, 0);
    for policy in policies() {
        for cluster in clusters(&policy) {
            for object in &objects {
                let other = with_other_image(object);
                for (operation, old) in
                    [("CREATE", None), ("UPDATE", Some(object)), ("UPDATE", Some(&other)), ("UPDATE", None)]
                {
                    let read = same(&review_body(object, operation, old), cluster.as_ref(), &policy);
                    answered += usize::from(read.answered);
                    viewed += usize::from(read.viewed);
                }
            }
        }
    }
    assert!(answered > 1000, "{answered}");
    // CREATE and UPDATE without a stored object are read as views, unless
    // the object holds what a view does not read as the whole reading does.
    assert!(viewed * 5 > answered * 2, "{viewed} of {answered} read as views");
}

#[test]
fn every_review_body_of_the_repository_gets_the_same_answer() {
    let policy = Policy::default();
    for cluster in clusters(&policy) {
        for body in bodies() {
            same(&body, cluster.as_ref(), &policy);
        }
    }
}

/// Every path of `value`, as JSON Pointer tokens.
fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(k.clone());
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(i.to_string());
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer(tokens: &[String]) -> String {
    tokens.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect()
}

/// Each path of each object given each kind of value, and taken away: kept
/// members with wrong types must fail (or pass) the same way, and members
/// passed over must not matter.
#[test]
fn any_value_at_any_path_gets_the_same_answer() {
    let policy = Policy { steer: true, ..Policy::default() };
    let cluster = load(&["examples/cluster-state.yaml"], &policy);
    let replacements = [
        json!(null),
        json!(true),
        json!(false),
        json!("sysbox-runc"),
        json!(7),
        json!(-1.5),
        json!([]),
        json!([{}]),
        json!({}),
        json!({ "x": 1 }),
    ];
    let mut objects = objects();
    objects.retain(|o| o.pointer("/spec").is_some() || o.pointer("/template").is_some());
    objects.dedup();
    let (mut cases, mut viewed) = (0, 0);
    for object in objects.iter().take(40) {
        let mut all = Vec::new();
        paths(object, &mut Vec::new(), &mut all);
        for path in all.iter().skip(1) {
            let p = pointer(path);
            for r in &replacements {
                let mut changed = object.clone();
                *changed.pointer_mut(&p).unwrap() = r.clone();
                viewed += usize::from(same(&review_body(&changed, "CREATE", None), Some(&cluster), &policy).viewed);
                cases += 1;
            }
            let (parent, last) = path.split_at(path.len() - 1);
            let mut removed = object.clone();
            match removed.pointer_mut(&pointer(parent)) {
                Some(Value::Object(m)) => {
                    m.remove(&last[0]);
                }
                Some(Value::Array(a)) => {
                    a.remove(last[0].parse::<usize>().unwrap());
                }
                _ => unreachable!(),
            }
            same(&review_body(&removed, "CREATE", None), Some(&cluster), &policy);
        }
    }
    assert!(cases > 5000, "{cases}");
    // Most values at most paths are read as views: paths the views do not read
    // and sound values at those they do.
    assert!(viewed * 2 > cases, "{viewed} of {cases} read as views");
}

fn review_text(object_text: &str) -> String {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"default","operation":"CREATE","object":{object_text}}}}}"#
    )
}

/// A read-only Sysbox pod whose text holds `skipped` in a member the engine
/// does not read and `kept` in one it does (`hostUsers`).
fn pod_text(skipped: &str, kept: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p","managedFields":[{{"fieldsV1":{skipped}}}]}},"spec":{{"runtimeClassName":"sysbox-runc","hostUsers":{kept},"containers":[{{"name":"c","image":"x","securityContext":{{"readOnlyRootFilesystem":true}}}}]}}}}"#
    )
}

#[test]
fn hostile_bodies_get_the_same_errors() {
    let policy = Policy::default();
    let cluster = load(&["examples/cluster-state.yaml"], &policy);
    let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let nest_maps = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    let mut values: Vec<String> = vec![
        "false".into(),
        "1e999".into(),
        "-1e400".into(),
        "18446744073709551616".into(),
        "-9223372036854775809".into(),
        "1.5".into(),
        r#""\ud800""#.into(),
        r#""\udc00x""#.into(),
        r#""\q""#.into(),
        r#""\u12""#.into(),
        "\"tab\there\"".into(),
        "[1,]".into(),
        "{\"a\" 1}".into(),
        "{\"a\":1,}".into(),
        "tru".into(),
        "nul".into(),
        "01".into(),
        "-".into(),
        "1.".into(),
        "1e".into(),
        r#"{"$serde_json::private::RawValue":"{\"x\":1}"}"#.into(),
        r#"{"$serde_json::private::RawValue":"[1,"}"#.into(),
        r#"{"$serde_json::private::RawValue":5}"#.into(),
        r#"{"$serde_json::private::RawValue":"1","b":2}"#.into(),
        r#"{"a":1,"$serde_json::private::RawValue":"x"}"#.into(),
        r#"{"a":1,"a":{"b":2}}"#.into(),
    ];
    for depth in [100, 120, 123, 124, 125, 126, 127, 128, 129, 200, 5000] {
        values.push(nest(depth));
        values.push(nest_maps(depth));
    }
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for v in &values {
        bodies.push(review_text(&pod_text(v, "false")).into_bytes());
        bodies.push(review_text(&pod_text("{}", v)).into_bytes());
        // In a kept mapping, as a member of it.
        bodies.push(review_text(&pod_text("{}", &format!(r#"false,"nodeSelector":{v}"#))).into_bytes());
        bodies.push(review_text(&pod_text("{}", &format!(r#"false,"affinity":{v}"#))).into_bytes());
        // As the object, the metadata, the spec.
        bodies.push(review_text(v).into_bytes());
        bodies.push(review_text(&format!(r#"{{"metadata":{v},"spec":{{}}}}"#)).into_bytes());
        bodies.push(review_text(&format!(r#"{{"metadata":{{}},"spec":{v}}}"#)).into_bytes());
        bodies.push(review_text(&format!(r#"{{"spec":{{"containers":{v}}}}}"#)).into_bytes());
        bodies.push(review_text(&format!(r#"{{"spec":{{"containers":[{v}]}}}}"#)).into_bytes());
    }
    // Bad UTF-8 in a passed-over string and in a kept one.
    let with_string = pod_text(r#""x""#, "false");
    for (at, needle) in [("managed", r#""x""#), ("kept", r#""c""#)] {
        let text = review_text(&with_string);
        let i = text.find(needle).unwrap() + 1;
        let mut b = text.into_bytes();
        b[i] = 0xff;
        bodies.push(b);
        let _ = at;
    }
    // Duplicate kept members: the last one counts, in both readings.
    bodies.push(
        review_text(
            r#"{"metadata":{"name":"a","name":"b"},"spec":{"runtimeClassName":"runc","runtimeClassName":"sysbox-runc","hostUsers":false,"containers":[{"name":"c","securityContext":{"readOnlyRootFilesystem":false,"readOnlyRootFilesystem":true}}]}}"#,
        )
        .into_bytes(),
    );
    // Repeated annotations, the engine's own and one a rule reads.
    for (first, last) in [("false", "true"), ("true", "false")] {
        bodies.push(
            review_text(&format!(
                r#"{{"metadata":{{"annotations":{{"sysbox-ro.dev/relaxed-read-only":"{first}","io.kubernetes.cri-o.userns-mode":"auto","sysbox-ro.dev/relaxed-read-only":"{last}","io.kubernetes.cri-o.userns-mode":"private"}}}},"spec":{{"runtimeClassName":"sysbox-runc","hostUsers":true,"containers":[{{"name":"c","securityContext":{{"readOnlyRootFilesystem":true}}}}]}}}}"#
            ))
            .into_bytes(),
        );
    }
    for body in &bodies {
        same(body, Some(&cluster), &policy);
    }
    // Every prefix of a real review: the error of a body cut anywhere.
    let real = review_body(&pod(ro_spec()), "CREATE", None);
    for n in 0..real.len() {
        same(&real[..n], Some(&cluster), &policy);
    }
    // Every single byte changed to each of a few characters that matter to JSON.
    for i in (0..real.len()).step_by(3) {
        for c in [b'"', b'{', b']', b',', b'\\', b'0', b' ', 0x80] {
            let mut b = real.clone();
            b[i] = c;
            same(&b, Some(&cluster), &policy);
        }
    }
}

/// A member the engine reads with a value of any kind, sometimes a sound one.
fn any_value(sound: Vec<Value>, odd_weight: u32) -> impl Strategy<Value = Option<Value>> {
    let odd = prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(false)),
        Just(json!("x")),
        Just(json!(1)),
        Just(json!([])),
        Just(json!({})),
    ];
    prop_oneof![
        3 => Just(None),
        3 => proptest::sample::select(sound).prop_map(Some),
        odd_weight => odd.prop_map(Some),
    ]
}

fn container(odd: u32) -> impl Strategy<Value = Value> {
    (
        any_value(vec![json!("dind"), json!("c")], odd),
        any_value(vec![json!(true), json!(false)], odd),
        any_value(vec![json!(true), json!(false)], odd),
        any_value(
            vec![
                json!([{ "name": "SYSBOX_HONOR_CAPS", "value": "TRUE" }]),
                json!([{ "name": "SYSBOX_BOGUS", "value": "1" }]),
                json!([{ "name": "SYSBOX_SYSCONT_MODE", "value": "FALSE" }]),
                json!([{ "name": "A", "valueFrom": { "fieldRef": { "fieldPath": "x" } } }]),
            ],
            odd,
        ),
        any_value(
            vec![json!([{ "configMapRef": { "name": "c" } }]), json!([{ "prefix": "SYSBOX_", "secretRef": {} }])],
            odd,
        ),
        any_value(vec![json!({ "capabilities": { "add": ["SYS_ADMIN"] } }), json!(null)], odd),
    )
        .prop_map(|(name, ro, privileged, env, env_from, extra_sc)| {
            let mut c = Map::new();
            c.insert("image".into(), json!("docker:27-dind"));
            c.insert("ports".into(), json!([{ "containerPort": 2375 }]));
            if let Some(n) = name {
                c.insert("name".into(), n);
            }
            let mut sc = match extra_sc {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            if let Some(v) = ro {
                sc.insert("readOnlyRootFilesystem".into(), v);
            }
            if let Some(v) = privileged {
                sc.insert("privileged".into(), v);
            }
            if !sc.is_empty() {
                c.insert("securityContext".into(), Value::Object(sc));
            }
            if let Some(v) = env {
                c.insert("env".into(), v);
            }
            if let Some(v) = env_from {
                c.insert("envFrom".into(), v);
            }
            Value::Object(c)
        })
}

fn pod_spec(odd: u32) -> impl Strategy<Value = Value> {
    let flags = || any_value(vec![json!(true), json!(false)], odd);
    (
        (
            any_value(vec![json!("sysbox-runc"), json!("runc"), json!("")], odd),
            any_value(vec![json!("good-1"), json!("nope")], odd),
            any_value(vec![json!({ POOL: "good" }), json!({ POOL: "bad" }), json!({ "sysbox-runtime": "other" })], odd),
            any_value(
                vec![
                    json!({ "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                    { "matchExpressions": [{ "key": POOL, "operator": "In", "values": ["good", "bad"] }] }
                ] } } }),
                    json!({ "podAntiAffinity": {} }),
                ],
                odd,
            ),
            any_value(vec![json!([{ "operator": "Exists" }]), json!([{ "key": "k", "effect": "NoSchedule" }])], odd),
        ),
        (flags(), flags(), flags(), flags(), flags(), flags()),
        (
            prop::collection::vec(container(odd), 0..3),
            prop::option::of(prop::collection::vec(container(odd), 0..2)),
            prop::option::of(prop::collection::vec(container(odd), 0..2)),
        ),
    )
        .prop_map(|((rc, node, sel, aff, tol), (hn, hp, hi, hu, esl, spn), (cs, init, eph))| {
            let mut s = Map::new();
            s.insert("restartPolicy".into(), json!("Always"));
            s.insert("volumes".into(), json!([{ "name": "v", "emptyDir": {} }]));
            for (k, v) in [
                ("runtimeClassName", rc),
                ("nodeName", node),
                ("nodeSelector", sel),
                ("affinity", aff),
                ("tolerations", tol),
                ("hostNetwork", hn),
                ("hostPID", hp),
                ("hostIPC", hi),
                ("hostUsers", hu),
                ("enableServiceLinks", esl),
                ("shareProcessNamespace", spn),
            ] {
                if let Some(v) = v {
                    s.insert(k.into(), v);
                }
            }
            s.insert("containers".into(), json!(cs));
            if let Some(i) = init {
                s.insert("initContainers".into(), json!(i));
            }
            if let Some(e) = eph {
                s.insert("ephemeralContainers".into(), json!(e));
            }
            Value::Object(s)
        })
}

fn metadata(odd: u32) -> impl Strategy<Value = Value> {
    (
        any_value(vec![json!("p"), json!("")], odd),
        any_value(vec![json!("web-")], odd),
        any_value(vec![json!("default"), json!("kube-system"), json!("")], odd),
        any_value(vec![json!({ "app": "x" })], odd),
        any_value(
            vec![
                json!({ ANNOTATION: "true" }),
                json!({ ANNOTATION: "false" }),
                json!({ "io.kubernetes.cri-o.userns-mode": "auto:size=1024" }),
                json!({ "io.kubernetes.cri-o.userns-mode": "auto" }),
            ],
            odd,
        ),
    )
        .prop_map(|(name, generate, namespace, labels, annotations)| {
            let mut m = Map::new();
            m.insert("uid".into(), json!("0f4c"));
            m.insert("managedFields".into(), json!([{ "manager": "kubectl", "fieldsV1": { "f:spec": {} } }]));
            for (k, v) in [
                ("name", name),
                ("generateName", generate),
                ("namespace", namespace),
                ("labels", labels),
                ("annotations", annotations),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
}

/// Generated pods and workloads: each member the engine reads present or
/// not, with a sound value or one of the wrong type, among members it does
/// not read. (The strategy's value is deeply nested tuples, whose generation
/// needs more stack than a test thread has in a debug build: it runs on a
/// thread of its own.)
#[test]
fn generated_pods_and_workloads_get_the_same_answer() {
    // With wrong types among the members read (most objects then have one,
    // and are read by the fallbacks), and with sound values only (read as
    // views).
    for odd in [1, 0] {
        generated(odd);
    }
}

fn generated(odd: u32) {
    let run = move || {
        let strategy = (
            proptest::sample::select(Kind::ALL.to_vec()),
            pod_spec(odd),
            metadata(odd),
            metadata(odd),
            proptest::sample::select(vec!["CREATE", "UPDATE"]),
            0usize..3,
        );
        let config = ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() };
        let policies = policies();
        let clusters: Vec<ClusterState> = policies.iter().map(|p| load(&["examples/cluster-state.yaml"], p)).collect();
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let viewed = std::cell::Cell::new(0);
        let result = runner.run(&strategy, |(kind, spec, object_meta, template_meta, operation, i)| {
            let mut object = workload(kind, spec);
            object["metadata"] = object_meta;
            object["status"] = json!({ "phase": "Pending", "conditions": [{ "type": "PodScheduled" }] });
            if let Some(t) = kind.template_path_pointer().and_then(|p| object.pointer_mut(&p)) {
                t["metadata"] = template_meta;
            }
            let old = with_other_image(&object);
            let old = (operation == "UPDATE").then_some(&old);
            same(&review_body(&object, operation, old), Some(&clusters[i]), &policies[i]);
            let read = same(&review_body(&object, operation, None), None, &policies[i]);
            viewed.set(viewed.get() + usize::from(read.viewed));
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        // Objects with sound values only are read as views.
        if odd == 0 {
            assert_eq!(viewed.get(), 384, "read as views");
        }
    };
    std::thread::Builder::new().stack_size(32 << 20).spawn(run).unwrap().join().unwrap();
}

/// The pointer of a kind's template, for the generator.
trait TemplatePointer {
    fn template_path_pointer(self) -> Option<String>;
}

impl TemplatePointer for Kind {
    fn template_path_pointer(self) -> Option<String> {
        let path = self.template_path();
        (!path.is_empty()).then(|| path.iter().map(|t| format!("/{t}")).collect())
    }
}

/// A pod of about 1 MiB, most of it in `managedFields` and annotations the
/// engine reads (annotations are kept whole) or not (managed fields).
#[test]
fn a_large_review_gets_the_same_answer() {
    let policy = Policy::default();
    let cluster = load(&["examples/cluster-state.yaml"], &policy);
    let mut object = pod(ro_spec());
    let fields: Vec<Value> =
        (0..4000).map(|i| json!({ "manager": format!("m{i}"), "fieldsV1": { "f:metadata": { "f:labels": { format!("f:l{i}"): {} } } } })).collect();
    object["metadata"]["managedFields"] = json!(fields);
    let annotations: Map<String, Value> = (0..2000).map(|i| (format!("a{i}"), json!("v".repeat(100)))).collect();
    object["metadata"]["annotations"] = Value::Object(annotations);
    let body = review_body(&object, "CREATE", None);
    assert!(body.len() > 500_000, "{}", body.len());
    let read = same(&body, Some(&cluster), &policy);
    assert!(read.answered && read.viewed);
}
