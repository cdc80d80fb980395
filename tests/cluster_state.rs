//! Loading cluster state from files: formats, notes for what is passed over,
//! and errors that name the file and the document.

use std::io::Write;
use std::path::PathBuf;

use sysbox_ro_webhook::cluster::{snapshot, MgrIntent};
use sysbox_ro_webhook::policy::NodePolicy;

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    path
}

#[test]
fn kubectl_yaml_and_json_lists_load_with_notes_for_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = file(
        &dir,
        "nodes.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: n1, labels: {agentpool: p1}}\n\
         - apiVersion: v1\n  kind: Secret\n  metadata: {name: stray}\n\
         - apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n",
    );
    let json = file(
        &dir,
        "more.json",
        r#"{"apiVersion":"v1","kind":"NodeList","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"n2"}}]}"#,
    );
    let cms = file(
        &dir,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: kube-system}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sysbox-operational-attributes, namespace: kube-system}\n\
         data: {SYSBOX_MGR_CONFIG: \"--relaxed-read-only\"}\n",
    );
    let (state, notes) = snapshot::load(&[yaml, json, cms], &NodePolicy::default()).unwrap();
    assert_eq!(state.nodes.node_count(), 2);
    assert_eq!(state.mgr, MgrIntent::ConfigMap(Some(true)));
    assert!(notes.iter().any(|n| n.contains("Secret") && n.contains("stray")), "{notes:?}");
    // Pods (which `audit` streams from the same files) are counted, never noted one by one.
    assert!(notes.iter().any(|n| n == "1 Pods and ReplicaSets passed over (only audit reads them)"), "{notes:?}");
    assert!(!notes.iter().any(|n| n.contains("\"p\"")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("kube-system/other")), "{notes:?}");
}

#[test]
fn broken_document_is_an_error_naming_file_document_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "state.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [broken\n");
    let err = snapshot::load(&[path], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("state.yaml") && err.contains("document 1") && err.contains("line 5"), "{err}");
}

#[test]
fn malformed_object_is_an_error_naming_kind_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "state.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: [a, b]}\n");
    let err = snapshot::load(&[path], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("state.yaml") && err.contains("Node") && err.contains("n1"), "{err}");
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let err = snapshot::load(&[PathBuf::from("/nonexistent/cluster.yaml")], &NodePolicy::default()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cluster.yaml"), "{err}");
}

#[test]
fn deep_nesting_fails_fast_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("brackets.yaml", format!("items: {}", "[".repeat(1_000_000))),
        ("flow.yaml", format!("items: {}1{}", "{a: ".repeat(100_000), "}".repeat(100_000))),
        ("block.yaml", "- ".repeat(500_000)),
        ("brackets.json", format!("{{\"items\": {}", "[".repeat(1_000_000))),
        ("nested.json", format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000))),
    ] {
        let path = file(&dir, name, &text);
        let err = snapshot::load(&[path], &NodePolicy::default()).unwrap_err().to_string();
        assert!(err.contains(name) && (err.contains("nesting") || err.contains("recursion")), "{err}");
    }
}

#[test]
fn list_items_are_read_one_at_a_time_and_checked_to_be_a_list() {
    let dir = tempfile::tempdir().unwrap();
    // kubectl prints `kind: List` after the items.
    let list = file(
        &dir,
        "list.yaml",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: n1}\n\
         - apiVersion: v1\n  kind: Node\n  metadata: {name: n2, labels: [bad]}\nkind: List\n",
    );
    let err = snapshot::load(&[list], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("n2") && err.contains("line 6"), "{err}");
    let fake = file(
        &dir,
        "fake.yaml",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: n1}\nkind: Pod\n",
    );
    let err = snapshot::load(&[fake], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("not a List"), "{err}");
    let json = file(
        &dir,
        "fake.json",
        r#"{"items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}],"kind":"Pod"}"#,
    );
    let err = snapshot::load(&[json], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("not a List"), "{err}");
    let cut = dir.path().join("cut.yaml");
    std::fs::write(&cut, b"apiVersion: v1\nkind: Node\nmetadata: {name: \xff}\n").unwrap();
    let err = snapshot::load(&[cut], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn a_snapshot_without_nodes_is_an_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = file(&dir, "empty.yaml", "");
    let classes = file(
        &dir,
        "rc.yaml",
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: sysbox-runc}\nhandler: sysbox-runc\n",
    );
    let err = snapshot::load(&[empty.clone(), classes.clone()], &NodePolicy::default()).unwrap_err().to_string();
    assert!(err.contains("no Node") && err.contains("empty.yaml") && err.contains("rc.yaml"), "{err}");
    let allowed = NodePolicy { allow_empty_snapshot: true, ..NodePolicy::default() };
    let (state, _) = snapshot::load(&[empty, classes], &allowed).unwrap();
    assert_eq!(state.nodes.node_count(), 0);
}
