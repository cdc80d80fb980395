//! The end-to-end harness: a real etcd + kube-apiserver (tests/e2e/control-plane.sh), kubectl,
//! and the real `sysbox-ro-webhook serve` binary on loopback, wired together the way a cluster
//! wires them, with every process stopped by a guard when the test ends (or panics).
//!
//! - [`agent`]: the node agent process, a fake host root and the sysbox-mgr stand-in it reads;
//! - [`cluster`]: the control plane guard, kubectl, the work folder;
//! - [`webhook`]: the webhook process, its Secret-volume-like certificate folder, its admin port;
//! - [`objects`]: the API objects the scenarios stage (nodes, pods, workloads);
//! - [`env`]: everything above set up once and shared by the scenarios.
#![allow(dead_code)]

pub mod agent;
pub mod cluster;
pub mod env;
pub mod objects;
pub mod webhook;

use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it returns `Some`, for at most `within`; `None` on timeout.
pub fn poll<T>(within: Duration, every: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// The last `n` lines of a log file, for failure messages.
pub fn tail(path: &std::path::Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            format!("--- last lines of {}:\n{}", path.display(), lines[start..].join("\n"))
        }
        Err(e) => format!("--- {} unreadable: {e}", path.display()),
    }
}
