//! `serve` asks the engine only for the texts an admission response shows
//! (`Texts::Shown`): the messages of findings that deny and the warnings of
//! findings that warn. Over every manifest of the test data, every cluster
//! state, every mode, and both a create and an update that leaves the
//! template as it was, that decision must be the full one (`Texts::All`,
//! what `check` and the audit report) with only the unshown texts left empty.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sysbox_ro_webhook::cluster::snapshot::Objects;
use sysbox_ro_webhook::cluster::ClusterState;
use sysbox_ro_webhook::engine::{self, Action, Decision, Operation, Review, Texts};
use sysbox_ro_webhook::manifest::{self, Documents};
use sysbox_ro_webhook::policy::{Mode, Policy};
use sysbox_ro_webhook::{intake, policy};

fn objects() -> Vec<Value> {
    let mut files = Vec::new();
    for dir in ["tests/data/manifests", "tests/data/manifests/kube-system", "tests/data/fidelity", "tests/data/audit"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read(&file).unwrap();
        for doc in Documents::new(text.as_slice()) {
            let Ok(Ok(value)) = doc.map(|d| d.parse()) else { continue };
            out.extend(manifest::expand_lists(value).into_iter().filter(Value::is_object));
        }
    }
    out
}

fn clusters(policy: &policy::NodePolicy) -> Vec<(String, Option<ClusterState>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir("tests/data/cluster").unwrap().map(|e| e.unwrap().path()).collect();
    paths.push(Path::new("tests/data/fidelity/cluster.yaml").to_path_buf());
    paths.sort();
    let mut out = vec![("none".to_owned(), None)];
    for path in paths {
        // read as the snapshot loader reads them, the empty view included
        let mut objects = Objects::default();
        objects.read(std::fs::read(&path).unwrap().as_slice(), &path, policy).unwrap();
        out.push((path.display().to_string(), Some(objects.into_state(policy))));
    }
    out
}

/// The full decision with the texts a response does not show emptied.
fn shown_part(mut d: Decision) -> Decision {
    for f in &mut d.findings {
        if f.action != Action::Deny {
            f.message.clear();
        }
        if f.action != Action::Warn {
            f.warning.clear();
        }
    }
    d
}

#[test]
fn shown_texts_are_the_full_decision_without_the_unshown_ones() {
    let objects = objects();
    assert!(objects.len() >= 30, "the test data holds {} objects", objects.len());
    let base = Policy::default();
    let clusters = clusters(&base.nodes);
    let (mut compared, mut emptied, mut denied) = (0, 0, 0);
    for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
        let policy = Policy { mode, ..base.clone() };
        for (name, cluster) in &clusters {
            for object in &objects {
                let created = intake::from_manifest(object, "default");
                let updated = Review { operation: Operation::Update, old_object: Some(object), ..created };
                for review in [created, updated] {
                    let all = engine::decide(&review, cluster.as_ref(), &policy);
                    let shown = engine::decide_with(&review, cluster.as_ref(), &policy, Texts::Shown);
                    let (Ok(all), Ok(shown)) = (all, shown) else { continue };
                    let at = || format!("{mode} {name} {:?} {}", review.operation, object["metadata"]);
                    emptied +=
                        all.findings.iter().filter(|f| f.action != Action::Deny && !f.message.is_empty()).count();
                    denied += usize::from(all.message.is_some());
                    assert_eq!(shown, shown_part(all), "{}", at());
                    compared += 1;
                }
            }
        }
    }
    eprintln!("{compared} decisions, {emptied} texts left out, {denied} denials");
    // The comparison covered decisions whose unshown texts were dropped, and denials.
    assert!(compared > 500 && emptied > 100 && denied > 20, "{compared} decisions, {emptied} texts, {denied} denials");
}
