//! Engine table tests: scope, mutation, hygiene and modes (no cluster I/O).

mod common;

use common::*;
use serde_json::{json, Value};
use sysbox_ro_webhook::engine::{Kind, Object, Verdict};
use sysbox_ro_webhook::policy::{Mode, Policy};

fn good_cluster() -> sysbox_ro_webhook::cluster::ClusterState {
    cluster(&[RUNTIME_CLASS.into(), node("a1", "a", Some("true")), node("a2", "a", Some("true"))])
}

fn template_annotations(kind: Kind, object: &Value) -> Option<&Value> {
    let mut v = object;
    for k in kind.template_path() {
        v = &v[*k];
    }
    v.get("metadata").and_then(|m| m.get("annotations"))
}

#[test]
fn every_kind_is_judged_on_its_template() {
    let state = good_cluster();
    for kind in Kind::ALL {
        let object = workload(kind, ro_spec());
        let d = decide(&object, Some(&state), &Policy::default());
        assert_eq!(d.verdict, Verdict::Allow, "{kind:?}: {d:?}");
        // Pods are annotated; templates are judged but not rewritten by default.
        assert_eq!(d.patch.is_empty(), kind != Kind::Pod, "{kind:?}");
        let annotate = Policy { annotate_templates: true, ..Policy::default() };
        let d = decide(&object, Some(&state), &annotate);
        let out = patched(&object, &d);
        assert_eq!(template_annotations(kind, &out).and_then(|a| a.get(ANNOTATION)), Some(&json!("true")), "{kind:?}");
    }
}

#[test]
fn denial_reaches_workloads_at_apply_time() {
    let state = cluster(&[RUNTIME_CLASS.into(), node("s1", "strict", Some("false"))]);
    for kind in Kind::ALL {
        let d = decide(&workload(kind, ro_spec()), Some(&state), &Policy::default());
        assert_eq!(d.verdict, Verdict::Deny, "{kind:?}");
        assert!(d.patch.is_empty(), "a denial carries no patch");
        assert!(d.message.as_deref().unwrap().contains(kind.as_str()), "message names the object");
    }
}

#[test]
fn read_only_root_on_any_container_type_is_in_scope() {
    let state = good_cluster();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let mut spec = ro_spec();
        spec["containers"] = json!([{ "name": "main", "image": "x" }]);
        spec[list] = json!([{ "name": "c", "image": "x", "securityContext": { "readOnlyRootFilesystem": true } }]);
        let d = decide(&pod(spec), Some(&state), &Policy::default());
        assert_eq!(d.verdict, Verdict::Allow, "{list}");
        assert!(!d.patch.is_empty(), "{list}");
    }
}

#[test]
fn out_of_scope_objects_are_untouched() {
    let state = good_cluster();
    let p = Policy::default();
    let mut not_ro = ro_spec();
    not_ro["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    let mut no_class = ro_spec();
    no_class.as_object_mut().unwrap().remove("runtimeClassName");
    let mut runc = ro_spec();
    runc["runtimeClassName"] = json!("runc");
    let service = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "s" }, "spec": {} });
    for (name, object) in [
        ("not read-only", pod(not_ro)),
        ("no runtimeClassName", pod(no_class)),
        ("other runtime class", pod(runc)),
        ("other kind", service),
    ] {
        let d = decide(&object, Some(&state), &p);
        assert_eq!(d.verdict, Verdict::Skip, "{name}");
        assert!(d.patch.is_empty() && d.warnings.is_empty() && d.message.is_none(), "{name}");
    }
}

#[test]
fn renamed_runtime_class_counts_by_handler_and_names_fall_back() {
    let renamed =
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: docker-in-docker}\nhandler: sysbox-runc\n";
    let decoy = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: sysbox-runc}\nhandler: runc\n";
    let state = cluster(&[renamed.into(), decoy.into(), node("a1", "a", Some("true"))]);
    let mut spec = ro_spec();
    spec["runtimeClassName"] = json!("docker-in-docker");
    assert_eq!(decide(&pod(spec), Some(&state), &Policy::default()).verdict, Verdict::Allow);
    // A class named sysbox-runc whose handler is not Sysbox is not Sysbox.
    assert_eq!(decide(&pod(ro_spec()), Some(&state), &Policy::default()).verdict, Verdict::Skip);
    // Without a cluster view, the configured names decide.
    let d = decide(&pod(ro_spec()), None, &Policy::default());
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(rules(&d), vec!["pools-not-evaluated"]);
    assert!(!d.patch.is_empty());
}

#[test]
fn annotation_patch_escapes_creates_and_is_idempotent() {
    let state = good_cluster();
    let p = Policy { annotation_key: "example.com/ro~mode".into(), ..Policy::default() };
    let object = pod(ro_spec());
    let d = decide(&object, Some(&state), &p);
    let ops = serde_json::to_value(&d.patch).unwrap();
    assert_eq!(
        ops,
        json!([{ "op": "add", "path": "/metadata/annotations", "value": { "example.com/ro~mode": "true" } }])
    );
    let out = patched(&object, &d);
    let again = decide(&out, Some(&state), &p);
    assert!(again.patch.is_empty(), "reinvocation yields no patch");
    let mut with_other = object.clone();
    with_other["metadata"]["annotations"] = json!({ "keep": "me" });
    let d = decide(&with_other, Some(&state), &p);
    let ops = serde_json::to_value(&d.patch).unwrap();
    assert_eq!(ops[0]["path"], "/metadata/annotations/example.com~1ro~0mode");
    assert_eq!(patched(&with_other, &d)["metadata"]["annotations"]["keep"], "me");
}

#[test]
fn unknown_fields_survive_the_patch() {
    let state = good_cluster();
    let mut object = pod(ro_spec());
    object["spec"]["someFutureField"] = json!({ "nested": [1, 2, 3] });
    object["metadata"]["futureMeta"] = json!("x");
    let d = decide(&object, Some(&state), &Policy::default());
    let out = patched(&object, &d);
    assert_eq!(out["spec"]["someFutureField"], object["spec"]["someFutureField"]);
    assert_eq!(out["metadata"]["futureMeta"], "x");
}

fn hygiene_cases() -> Vec<(&'static str, Value, &'static str)> {
    let mut env = ro_spec();
    env["containers"][0]["env"] = json!([{ "name": "SYSBOX_RELAXED_READ_ONLY", "value": "TRUE" }]);
    let mut bad_value = ro_spec();
    bad_value["containers"][0]["env"] = json!([{ "name": "SYSBOX_HONOR_CAPS", "value": "yes" }]);
    let mut privileged = ro_spec();
    privileged["containers"][0]["securityContext"]["privileged"] = json!(true);
    let mut host_net = ro_spec();
    host_net["hostNetwork"] = json!(true);
    let mut host_pid = ro_spec();
    host_pid["hostPID"] = json!(true);
    let mut host_ipc = ro_spec();
    host_ipc["hostIPC"] = json!(true);
    vec![
        ("unknown SYSBOX_ var", env, "sysbox-env"),
        ("bad value", bad_value, "sysbox-env"),
        ("privileged", privileged, "sysbox-unsupported-setting"),
        ("hostNetwork", host_net, "sysbox-unsupported-setting"),
        ("hostPID", host_pid, "sysbox-unsupported-setting"),
        ("hostIPC", host_ipc, "sysbox-unsupported-setting"),
    ]
}

#[test]
fn hygiene_denies_in_enforce_and_warns_otherwise() {
    let state = good_cluster();
    for (name, spec, rule) in hygiene_cases() {
        let object = pod(spec);
        let d = decide(&object, Some(&state), &Policy::default());
        assert_eq!(d.verdict, Verdict::Deny, "{name}");
        assert_eq!(rules(&d), vec![rule], "{name}");
        let warn = Policy { mode: Mode::Warn, ..Policy::default() };
        let d = decide(&object, Some(&state), &warn);
        assert_eq!(d.verdict, Verdict::Warn, "{name}");
        assert!(!d.patch.is_empty(), "{name}: admitted pods are annotated");
        let audit = Policy { mode: Mode::Audit, ..Policy::default() };
        let d = decide(&object, Some(&state), &audit);
        assert_eq!((d.verdict, d.warnings.len()), (Verdict::Allow, 0), "{name}: audit is silent");
        assert_eq!(rules(&d), vec![rule], "{name}: audit keeps the finding");
    }
}

#[test]
fn hygiene_rules_can_be_turned_off() {
    let state = good_cluster();
    let mut p = Policy::default();
    p.hygiene.sysbox_env = false;
    p.hygiene.unsupported_settings = false;
    p.hygiene.user_namespace = false;
    for (name, spec, _) in hygiene_cases() {
        assert_eq!(decide(&pod(spec), Some(&state), &p).verdict, Verdict::Allow, "{name}");
    }
    let mut no_userns = ro_spec();
    no_userns.as_object_mut().unwrap().remove("hostUsers");
    assert_eq!(decide(&pod(no_userns), Some(&state), &p).verdict, Verdict::Allow);
}

#[test]
fn accepted_sysbox_env_passes_and_value_from_is_unverified() {
    let state = good_cluster();
    let mut spec = ro_spec();
    spec["containers"][0]["env"] = json!([
        { "name": "SYSBOX_HONOR_CAPS", "value": "TRUE" },
        { "name": "SYSBOX_SKIP_UID_SHIFT", "value": "/data,/cache" },
    ]);
    assert_eq!(decide(&pod(spec.clone()), Some(&state), &Policy::default()).verdict, Verdict::Allow);
    // A value the spec does not show is neither accepted nor refused: it is said so.
    spec["containers"][0]["env"].as_array_mut().unwrap().push(
        json!({ "name": "SYSBOX_SYSCONT_MODE", "valueFrom": { "configMapKeyRef": { "name": "c", "key": "k" } } }),
    );
    let d = decide(&pod(spec), Some(&state), &Policy::default());
    assert_eq!((d.verdict, rules(&d)), (Verdict::Warn, vec!["sysbox-env-unverified"]));
    assert!(d.warnings[0].contains("SYSBOX_SYSCONT_MODE"), "{:?}", d.warnings);
}

#[test]
fn user_namespace_warning_and_crio_annotation() {
    let state = good_cluster();
    let mut spec = ro_spec();
    spec.as_object_mut().unwrap().remove("hostUsers");
    let object = pod(spec);
    let d = decide(&object, Some(&state), &Policy::default());
    assert_eq!(d.verdict, Verdict::Warn, "never denied, only warned");
    assert_eq!(rules(&d), vec!["sysbox-user-namespace"]);
    let mut crio = object.clone();
    crio["metadata"]["annotations"] = json!({ "io.kubernetes.cri-o.userns-mode": "auto:size=65536" });
    // The annotation is honoured on CRI-O nodes only (sysbox-deploy-k8s labels them crio-runtime=running).
    let crio_nodes = cluster(&[
        RUNTIME_CLASS.into(),
        node("a1", "a", Some("true")).replace("sysbox-install", "crio-runtime: running\n    sysbox-install"),
    ]);
    assert_eq!(decide(&crio, Some(&crio_nodes), &Policy::default()).verdict, Verdict::Allow);
    let d = decide(&crio, Some(&state), &Policy::default());
    assert_eq!((d.verdict, rules(&d)), (Verdict::Warn, vec!["sysbox-user-namespace"]));
    assert!(d.warnings[0].contains("containerd pools a"), "{:?}", d.warnings);
}

#[test]
fn mode_off_skips_entirely() {
    let state = cluster(&[RUNTIME_CLASS.into(), node("s1", "strict", Some("false"))]);
    let off = Policy { mode: Mode::Off, ..Policy::default() };
    let d = decide(&pod(ro_spec()), Some(&state), &off);
    assert_eq!(d.verdict, Verdict::Skip);
    assert!(d.patch.is_empty());
}

#[test]
fn warnings_fit_kubectl() {
    let many: Vec<String> =
        (0..30).map(|i| node(&format!("n{i}"), &format!("a-long-node-pool-name-number-{i}"), Some("false"))).collect();
    let mut docs = vec![RUNTIME_CLASS.to_string()];
    docs.extend(many);
    let state = cluster(&docs);
    let warn = Policy { mode: Mode::Warn, ..Policy::default() };
    let mut spec = ro_spec();
    spec["containers"][0]["env"] =
        json!([{ "name": "SYSBOX_A_VERY_LONG_VARIABLE_NAME_THAT_GOES_ON_AND_ON_AND_ON", "value": "x" }]);
    spec["hostNetwork"] = json!(true);
    spec.as_object_mut().unwrap().remove("hostUsers");
    let d = decide(&pod(spec), Some(&state), &warn);
    assert!(d.warnings.len() >= 3);
    for w in &d.warnings {
        assert!(w.chars().count() <= 120, "{} chars: {w}", w.chars().count());
    }
}

#[test]
fn update_that_keeps_the_template_is_not_denied() {
    use sysbox_ro_webhook::engine::{decide as run, Operation, Review};
    let state = cluster(&[RUNTIME_CLASS.into(), node("s1", "strict", Some("false"))]);
    let old = workload(Kind::Deployment, ro_spec());
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    fn review<'a>(object: &'a Value, old: &'a Value) -> Review<'a> {
        Review {
            kind: Some(Kind::Deployment),
            operation: Operation::Update,
            namespace: "default",
            name: "w",
            object: Object::Json(object),
            old_object: Some(old),
        }
    }
    let d = run(&review(&scaled, &old), Some(&state), &Policy::default()).unwrap();
    assert_eq!(d.verdict, Verdict::Warn, "unrelated update goes through with the warning");
    let mut changed = old.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("docker:28-dind");
    let d = run(&review(&changed, &old), Some(&state), &Policy::default()).unwrap();
    assert_eq!(d.verdict, Verdict::Deny, "a template change is judged like a create");
}

#[test]
fn wrongly_typed_spec_is_an_error_not_a_panic() {
    let mut object = pod(ro_spec());
    object["spec"]["containers"] = json!("not a list");
    let review = sysbox_ro_webhook::engine::Review {
        kind: Some(Kind::Pod),
        operation: sysbox_ro_webhook::engine::Operation::Create,
        namespace: "default",
        name: "p",
        object: Object::Json(&object),
        old_object: None,
    };
    let err = sysbox_ro_webhook::engine::decide(&review, None, &Policy::default()).unwrap_err();
    assert!(err.to_string().contains("/spec"), "{err}");
}

#[test]
fn many_offending_containers_make_one_bounded_finding() {
    // Every container breaks the same rule: the decision holds one finding
    // naming the first few containers and counting the rest, not one finding
    // per container (a 100,000-container review would otherwise carry
    // 100,000 findings and a message of megabytes).
    let mut spec = ro_spec();
    let container = spec["containers"][0].clone();
    let containers: Vec<Value> = (0..1000)
        .map(|i| {
            let mut c = container.clone();
            c["name"] = json!(format!("c{i}"));
            c["env"] = json!([{ "name": "SYSBOX_HONOR_CAPS", "value": "yes" }]);
            c
        })
        .collect();
    spec["containers"] = json!(containers);
    let d = decide(&pod(spec), Some(&good_cluster()), &Policy::default());
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    let env: Vec<_> = d.findings.iter().filter(|f| f.rule.id() == "sysbox-env").collect();
    assert_eq!(env.len(), 1, "one finding for the rule, not one per container");
    let message = &env[0].message;
    assert!(message.contains("container \"c0\"") && message.contains("container \"c4\""), "{message}");
    assert!(!message.contains("container \"c5\""), "only the first five are named: {message}");
    assert!(message.contains("and 995 more containers"), "{message}");
    assert!(message.len() < 2_000, "bounded: {} bytes", message.len());
}
