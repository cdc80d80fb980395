//! Writes the benchmark inputs: a cluster state of N nodes and the
//! AdmissionReview bodies.
//!
//!     cargo run --release --example gen_cluster -- cluster --nodes 5000 [--list] > cluster.yaml
//!     cargo run --release --example gen_cluster -- bodies --out DIR
//!
//! `cluster` writes YAML: one document per object, or with `--list` the nodes
//! in one `List` as `kubectl get nodes -o yaml` prints them. `bodies` writes
//! `pod.json` (a read-only Sysbox pod, about 6 KB), `deployment.json` and
//! `pod-1mib.json` into DIR.

#[path = "../benches/support/mod.rs"]
mod support;

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: gen_cluster cluster --nodes N [--list]\n       gen_cluster bodies --out DIR");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    match args.first().map(String::as_str) {
        Some("cluster") => {
            let Some(nodes) = flag("--nodes").and_then(|n| n.parse::<usize>().ok()) else { return usage() };
            let layout =
                if args.iter().any(|a| a == "--list") { support::Layout::List } else { support::Layout::Stream };
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            if let Err(e) = support::write_cluster(&mut out, nodes, layout).and_then(|()| out.flush()) {
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
