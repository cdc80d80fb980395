//! Replays the fuzzing corpora (`fuzz/corpus/<target>/`: the seeds and what
//! fuzzing runs found) through the fuzz targets: none may panic. `make fuzz`
//! runs the fuzzers themselves.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "{}: empty corpus", dir.display());
    for path in entries {
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{target}: {} panics", path.display());
    }
}

#[test]
fn admission_review_corpus() {
    replay("admission_review", targets::admission_review);
}

#[test]
fn manifest_stream_corpus() {
    replay("manifest_stream", targets::manifest_stream);
}

#[test]
fn cluster_state_corpus() {
    replay("cluster_state", targets::cluster_state);
}

#[test]
fn flags_corpus() {
    replay("flags", targets::flags);
}
