//! Writes the benchmark inputs: a cluster state of N nodes and the
//! AdmissionReview bodies.
//!
//!     cargo run --release --example gen_cluster -- cluster --nodes 5000 [--list | --json] > cluster.yaml
//!     cargo run --release --example gen_cluster -- bodies --out DIR
//!     cargo run --release --example gen_cluster -- pods --count 100000 [--list] [--json] > pods.yaml
//!     cargo run --release --example gen_cluster -- check-mix --count 10000 > mix.yaml
//!
//! `cluster` writes YAML: one document per object, or with `--list` the nodes
//! in one `List` as `kubectl get nodes -o yaml` prints them; with `--json` every
//! object in one JSON `List` (as `kubectl get ... -o json` prints it). `bodies` writes
//! `pod.json` (a read-only Sysbox pod, about 6 KB), `deployment.json` and
//! `pod-1mib.json` into DIR. `pods` writes `check` input: small Pods (every third
//! a read-only Sysbox pod), one document each, or with `--list` in one `List`
//! (kind after the items, as kubectl prints it); YAML, or JSON with `--json`.
//! `check-mix` writes the Helm-style mix that `benches/check_throughput.rs`
//! checks in memory (`--count`, a multiple of 10, documents).

#[path = "../benches/support/mod.rs"]
mod support;

#[path = "../benches/support/check_mix.rs"]
mod check_mix;

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: gen_cluster cluster --nodes N [--list | --json]\n       gen_cluster bodies --out DIR\n       \
         gen_cluster pods --count N [--list] [--json]\n       gen_cluster check-mix --count N"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    match args.first().map(String::as_str) {
        Some("cluster") => {
            let Some(nodes) = flag("--nodes").and_then(|n| n.parse::<usize>().ok()) else { return usage() };
            let layout = if args.iter().any(|a| a == "--json") {
                support::Layout::JsonList
            } else if args.iter().any(|a| a == "--list") {
                support::Layout::List
            } else {
                support::Layout::Stream
            };
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            if let Err(e) = support::write_cluster(&mut out, nodes, layout).and_then(|()| out.flush()) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Some("pods") => {
            let Some(count) = flag("--count").and_then(|n| n.parse::<usize>().ok()) else { return usage() };
            let list = args.iter().any(|a| a == "--list");
            let json = args.iter().any(|a| a == "--json");
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            if let Err(e) = write_pods(&mut out, count, list, json).and_then(|()| out.flush()) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Some("check-mix") => {
            let Some(count) = flag("--count").and_then(|n| n.parse::<usize>().ok()) else { return usage() };
            if count % check_mix::BLOCK_DOCUMENTS != 0 {
                eprintln!("error: --count must be a multiple of {}", check_mix::BLOCK_DOCUMENTS);
                return usage();
            }
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            let written = (0..count / check_mix::BLOCK_DOCUMENTS)
                .try_for_each(|i| out.write_all(check_mix::block(i).as_bytes()))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Some("bodies") => {
            let Some(dir) = flag("--out").map(PathBuf::from) else { return usage() };
            let bodies = [
                ("pod.json", support::review_pod()),
                ("deployment.json", support::review_deployment()),
                ("pod-1mib.json", support::review_big_pod(1 << 20)),
            ];
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("error: {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            for (name, body) in bodies {
                let path = dir.join(name);
                let bytes = serde_json::to_vec(&body).expect("bodies serialise");
                if let Err(e) = std::fs::write(&path, &bytes) {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

/// A small Pod; every third one is a read-only Sysbox pod.
fn small_pod(i: usize) -> serde_json::Value {
    let sysbox = i % 3 == 0;
    let mut spec = serde_json::json!({
        "containers": [{
            "name": "main",
            "image": "registry.example.com/ci/runner:1.4",
            "securityContext": { "readOnlyRootFilesystem": sysbox },
        }],
    });
    if sysbox {
        spec["runtimeClassName"] = "sysbox-runc".into();
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": format!("runner-{i}"), "namespace": "ci", "labels": { "app": "runner" } },
        "spec": spec,
    })
}

fn write_pods(out: &mut impl Write, count: usize, list: bool, json: bool) -> std::io::Result<()> {
    let yaml = |v: &serde_json::Value| serde_norway::to_string(v).map_err(std::io::Error::other);
    match (list, json) {
        (false, false) => {
            for i in 0..count {
                write!(out, "---\n{}", yaml(&small_pod(i))?)?;
            }
        }
        (false, true) => {
            for i in 0..count {
                serde_json::to_writer(&mut *out, &small_pod(i))?;
                writeln!(out)?;
            }
        }
        (true, false) => {
            writeln!(out, "apiVersion: v1\nitems:")?;
            for i in 0..count {
                for (j, line) in yaml(&small_pod(i))?.lines().enumerate() {
                    writeln!(out, "{}{line}", if j == 0 { "- " } else { "  " })?;
                }
            }
            writeln!(out, "kind: List\nmetadata:\n  resourceVersion: \"\"")?;
        }
        (true, true) => {
            writeln!(out, "{{\"apiVersion\": \"v1\", \"items\": [")?;
            for i in 0..count {
                serde_json::to_writer(&mut *out, &small_pod(i))?;
                writeln!(out, "{}", if i + 1 < count { "," } else { "" })?;
            }
            writeln!(out, "], \"kind\": \"List\", \"metadata\": {{\"resourceVersion\": \"\"}}}}")?;
        }
    }
    Ok(())
}
