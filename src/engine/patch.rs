//! JSON Patch (RFC 6902) operations computed against the object's original
//! JSON: only the members that must change are touched, missing parents are
//! created, and nothing is emitted when the object is already right, so a
//! reinvocation yields no patch.

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use serde_json::{json, Value};

use super::subject::at;

/// The JSON Pointer to `base` then `rest`, each token encoded by jsonptr
/// (RFC 6901), written into one buffer of the right size rather than grown
/// token by token as `PointerBuf::from_tokens` does.
fn pointer(base: &[&str], rest: &[&str]) -> PointerBuf {
    let tokens = || base.iter().chain(rest).copied();
    let mut text = String::with_capacity(tokens().map(|t| t.len() + 2).sum());
    for token in tokens() {
        text.push('/');
        text.push_str(Token::new(token).encoded());
    }
    // Encoded tokens always parse; the fallback only keeps a panic out.
    PointerBuf::parse(text).unwrap_or_else(|_| PointerBuf::from_tokens(tokens()))
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// What the object holds where an annotation goes: the pod (template)'s
/// `metadata.annotations[key]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationSlot<'a> {
    /// No mapping where the pod (template) should be.
    NoHolder,
    /// `metadata` absent or `null`.
    NoMetadata,
    /// `metadata` or `annotations` is not a mapping.
    NotAMapping,
    /// `annotations` absent or `null`.
    NoAnnotations,
    /// No such key.
    Absent,
    /// The key, with its value if a string.
    Present(Option<&'a str>),
}

impl<'a> AnnotationSlot<'a> {
    /// Of a whole object, the pod (template) at `base`.
    pub fn of(object: &'a Value, base: &[&str], key: &str) -> AnnotationSlot<'a> {
        let Some(template) = at(object, base).filter(|t| t.is_object()) else { return AnnotationSlot::NoHolder };
        let metadata = match template.get("metadata") {
            None | Some(Value::Null) => return AnnotationSlot::NoMetadata,
            Some(m @ Value::Object(_)) => m,
            Some(_) => return AnnotationSlot::NotAMapping,
        };
        match metadata.get("annotations") {
            Some(Value::Object(annotations)) => match annotations.get(key) {
                Some(v) => AnnotationSlot::Present(v.as_str()),
                None => AnnotationSlot::Absent,
            },
            None | Some(Value::Null) => AnnotationSlot::NoAnnotations,
            Some(_) => AnnotationSlot::NotAMapping,
        }
    }
}

/// Sets `metadata.annotations[key] = value` on the pod (template) at `base`,
/// whose annotation is at `slot`.
pub fn annotate(slot: AnnotationSlot<'_>, base: &[&str], key: &str, value: &str) -> Vec<PatchOperation> {
    match slot {
        // Never replace a member that is not a mapping: that would drop it.
        AnnotationSlot::NoHolder | AnnotationSlot::NotAMapping => vec![],
        AnnotationSlot::NoMetadata => {
            vec![add(pointer(base, &["metadata"]), json!({ "annotations": { key: value } }))]
        }
        AnnotationSlot::NoAnnotations => vec![add(pointer(base, &["metadata", "annotations"]), json!({ key: value }))],
        AnnotationSlot::Absent => vec![add(pointer(base, &["metadata", "annotations", key]), json!(value))],
        AnnotationSlot::Present(Some(v)) if v == value => vec![],
        AnnotationSlot::Present(_) => vec![PatchOperation::Replace(ReplaceOperation {
            path: pointer(base, &["metadata", "annotations", key]),
            value: json!(value),
        })],
    }
}

/// The requirement steering adds to every required node-selector term.
pub fn flag_requirement(label: &str) -> Value {
    json!({ "key": label, "operator": "In", "values": ["true"] })
}

/// Adds `label In ["true"]` to every non-empty required node-selector term of
/// the pod spec at `base`, whose `affinity` is `affinity` (terms are ORed,
/// so each needs it), or creates the required affinity. Empty terms select
/// no node and are left as they are.
pub fn steer(affinity: Option<&Value>, base: &[&str], label: &str) -> Vec<PatchOperation> {
    let requirement = flag_requirement(label);
    let chain =
        ["spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"];
    // How many members of the chain exist (not null); "spec" itself always does.
    let mut node = affinity.filter(|v| !v.is_null());
    let mut depth = if node.is_some() { 2 } else { 1 };
    while depth < chain.len() {
        match node.and_then(|n| n.get(chain[depth])).filter(|v| !v.is_null()) {
            Some(next) => {
                node = Some(next);
                depth += 1;
            }
            None => break,
        }
    }
    if depth < chain.len() {
        // Create the first missing member with everything below it.
        let mut value = json!([{ "matchExpressions": [requirement] }]);
        for k in chain[depth + 1..].iter().rev() {
            value = json!({ *k: value });
        }
        return vec![add(pointer(base, &chain[..=depth]), value)];
    }
    let terms = node.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut ops = Vec::new();
    if terms.is_empty() {
        ops.push(add(pointer(base, &[&chain[..], &["-"]].concat()), json!({ "matchExpressions": [requirement] })));
        return ops;
    }
    for (i, term) in terms.iter().enumerate() {
        let exprs = term.get("matchExpressions").and_then(Value::as_array);
        let fields = term.get("matchFields").and_then(Value::as_array);
        if exprs.is_none_or(|e| e.is_empty()) && fields.is_none_or(|f| f.is_empty()) {
            continue; // an empty term selects no node; adding to it would widen it
        }
        let idx = i.to_string();
        match exprs {
            Some(e) if e.iter().any(|x| x == &requirement) => {}
            Some(_) => ops.push(add(
                pointer(base, &[&chain[..], &[idx.as_str(), "matchExpressions", "-"]].concat()),
                requirement.clone(),
            )),
            None => ops.push(add(
                pointer(base, &[&chain[..], &[idx.as_str(), "matchExpressions"]].concat()),
                json!([requirement.clone()]),
            )),
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(mut doc: Value, ops: &[PatchOperation]) -> Value {
        json_patch::patch(&mut doc, ops).unwrap();
        doc
    }

    const KEY: &str = "sysbox-ro.dev/relaxed-read-only";

    fn annotate_whole(doc: &Value, base: &[&str], key: &str, value: &str) -> Vec<PatchOperation> {
        annotate(AnnotationSlot::of(doc, base, key), base, key, value)
    }

    fn steer_pod(doc: &Value, label: &str) -> Vec<PatchOperation> {
        steer(doc["spec"].get("affinity"), &[], label)
    }

    #[test]
    fn annotation_paths_escape_slash_and_tilde() {
        let ops = annotate_whole(&json!({"metadata": {"annotations": {}}}), &[], "a~b/c", "true");
        assert_eq!(serde_json::to_value(&ops).unwrap()[0]["path"], "/metadata/annotations/a~0b~1c");
    }

    #[test]
    fn pointers_are_what_jsonptr_encodes() {
        let tokens = ["", "~", "/", "~1", "/~0", "a~b/c~", "\u{e9}t\u{e9}/\u{2603}", "spec", "0", " "];
        for a in tokens {
            for b in tokens {
                let want = PointerBuf::from_tokens([a, "metadata", b]);
                assert_eq!(pointer(&[a], &["metadata", b]), want, "{a:?} {b:?}");
            }
        }
        assert_eq!(pointer(&[], &[]), PointerBuf::new());
    }

    #[test]
    fn annotation_created_replaced_or_left() {
        let doc = json!({"metadata": {"name": "p"}});
        let out = apply(doc.clone(), &annotate_whole(&doc, &[], KEY, "true"));
        assert_eq!(out["metadata"]["annotations"][KEY], "true");
        assert!(annotate_whole(&out, &[], KEY, "true").is_empty());
        let wrong = json!({"metadata": {"annotations": {KEY: "false", "x": "y"}}});
        let out = apply(wrong.clone(), &annotate_whole(&wrong, &[], KEY, "true"));
        assert_eq!(out["metadata"]["annotations"], json!({KEY: "true", "x": "y"}));
        let null = json!({"metadata": {"annotations": null}});
        assert_eq!(
            apply(null.clone(), &annotate_whole(&null, &[], KEY, "true"))["metadata"]["annotations"][KEY],
            "true"
        );
        let no_meta = json!({"spec": {"template": {"spec": {}}}});
        let out = apply(no_meta.clone(), &annotate_whole(&no_meta, &["spec", "template"], KEY, "true"));
        assert_eq!(out["spec"]["template"]["metadata"]["annotations"][KEY], "true");
    }

    #[test]
    fn steer_creates_affinity_at_every_depth() {
        let label = "flag";
        let expect = json!([{ "matchExpressions": [flag_requirement(label)] }]);
        for doc in [
            json!({"spec": {}}),
            json!({"spec": {"affinity": {}}}),
            json!({"spec": {"affinity": {"podAffinity": {}, "nodeAffinity": null}}}),
            json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}}}),
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}}}),
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}}),
        ] {
            let out = apply(doc.clone(), &steer_pod(&doc, label));
            let terms = &out["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"];
            assert_eq!(terms, &expect, "from {doc}");
            assert!(steer_pod(&out, label).is_empty(), "idempotent from {doc}");
        }
    }

    #[test]
    fn steer_adds_to_every_term_but_not_empty_ones() {
        let doc = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
            {}
        ]}}}}});
        let out = apply(doc.clone(), &steer_pod(&doc, "flag"));
        let terms = &out["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(terms[0]["matchExpressions"][1], flag_requirement("flag"));
        assert_eq!(terms[1]["matchExpressions"][0], flag_requirement("flag"));
        assert_eq!(terms[2], json!({}));
        assert!(steer_pod(&out, "flag").is_empty());
    }
}
