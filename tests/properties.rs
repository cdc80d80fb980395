//! Properties of the mutation over generated pods: the returned patch applies
//! to the original JSON, yields the annotated (and, when steering, steered)
//! pod without touching anything else, and a second review of that result
//! returns no patch (idempotent under `reinvocationPolicy: IfNeeded`).

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sysbox_ro_webhook::engine::Verdict;
use sysbox_ro_webhook::policy::{Mode, Policy};

fn annotations() -> impl Strategy<Value = Option<Value>> {
    let value = prop_oneof![Just(json!("true")), Just(json!("false")), Just(json!("")), Just(json!("yes"))];
    let key = prop_oneof![
        Just(ANNOTATION.to_string()),
        Just("a/b~c".to_string()),
        Just("other".to_string()),
        "[a-z]{1,8}(/[a-z~]{1,6})?"
    ];
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        prop::collection::btree_map(key, value, 0..4).prop_map(|m| Some(json!(m))),
    ]
}

fn containers() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (any::<Option<bool>>(), "[a-z]{1,6}").prop_map(|(ro, name)| {
            let mut c = json!({ "name": name, "image": "docker:27-dind" });
            if let Some(ro) = ro {
                c["securityContext"] = json!({ "readOnlyRootFilesystem": ro });
            }
            c
        }),
        1..4,
    )
}

fn affinity() -> impl Strategy<Value = Option<Value>> {
    let expr = prop_oneof![
        Just(json!({ "key": POOL, "operator": "In", "values": ["good", "bad"] })),
        Just(json!({ "key": POOL, "operator": "NotIn", "values": ["good2"] })),
        Just(json!({ "key": "sysbox-runtime", "operator": "Exists" })),
    ];
    let term = prop::collection::vec(expr, 0..3).prop_map(|e| {
        if e.is_empty() {
            json!({})
        } else {
            json!({ "matchExpressions": e })
        }
    });
    prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        Just(Some(json!({ "podAntiAffinity": {} }))),
        prop::collection::vec(term, 1..3).prop_map(|terms| Some(json!({
            "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": terms } }
        }))),
    ]
}

fn pods() -> impl Strategy<Value = Value> {
    (annotations(), containers(), affinity(), any::<bool>()).prop_map(|(ann, containers, aff, select_good)| {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!("p"));
        if let Some(a) = ann {
            metadata.insert("annotations".into(), a);
        }
        let mut spec = json!({ "runtimeClassName": "sysbox-runc", "hostUsers": false, "containers": containers });
        if let Some(a) = aff {
            spec["affinity"] = a;
        }
        if select_good {
            spec["nodeSelector"] = json!({ POOL: "good" });
        }
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec })
    })
}

fn without(mut v: Value, pointer_parent: &str, key: &str) -> Value {
    if let Some(Value::Object(m)) = v.pointer_mut(pointer_parent) {
        m.remove(key);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn patch_annotates_only_and_is_idempotent(
        object in pods(),
        steer in any::<bool>(),
        mode in prop_oneof![Just(Mode::Enforce), Just(Mode::Warn), Just(Mode::Audit)],
    ) {
        let state = cluster(&[
            RUNTIME_CLASS.into(),
            node("g1", "good", Some("true")),
            node("g2", "good2", Some("true")),
            node("b1", "bad", Some("false")),
        ]);
        let policy = Policy { steer, mode, ..Policy::default() };
        let first = decide(&object, Some(&state), &policy);
        match first.verdict {
            Verdict::Skip | Verdict::Deny | Verdict::Error => prop_assert!(first.patch.is_empty()),
            Verdict::Allow | Verdict::Warn => {
                let out = patched(&object, &first);
                prop_assert_eq!(&out["metadata"]["annotations"][ANNOTATION], &json!("true"));
                // Other annotations are kept as they were.
                if let Some(Value::Object(before)) = object["metadata"].get("annotations") {
                    for (k, v) in before.iter().filter(|(k, _)| k.as_str() != ANNOTATION) {
                        prop_assert_eq!(&out["metadata"]["annotations"][k], v);
                    }
                }
                // Nothing else changes, except the steering affinity.
                let strip = |v: &Value| without(without(v.clone(), "/metadata", "annotations"), "/spec", "affinity");
                prop_assert_eq!(strip(&out), strip(&object));
                if !steer {
                    prop_assert_eq!(out["spec"].get("affinity"), object["spec"].get("affinity"));
                }
                let second = decide(&out, Some(&state), &policy);
                prop_assert!(second.patch.is_empty(), "second review patched: {:?}", second.patch);
                prop_assert_ne!(second.verdict, Verdict::Deny);
            }
        }
    }
}
