//! How long the live view takes to decode a page of Nodes, as it does
//! (`cluster::node_watch::WatchedNode`: status passed over) and as a whole
//! `Node` would be: the same `NodeList` bytes, three rounds of each, in turn.
//!
//!     cargo run --release --example gen_cluster -- cluster --nodes 5000 --json > c5000.json
//!     python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); \
//!       json.dump({"apiVersion":"v1","kind":"NodeList","metadata":{},"items":[i for i in d["items"] if i["kind"]=="Node"]}, sys.stdout)' \
//!       c5000.json > nodes.json
//!     cargo run --release --example decode_nodes -- nodes.json

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::core::ObjectList;
use sysbox_ro_webhook::cluster::node_watch::WatchedNode;

fn timed<T>(decode: impl FnOnce() -> serde_json::Result<ObjectList<T>>) -> Result<(usize, Duration), String>
where
    T: Clone,
{
    let start = Instant::now();
    let list = decode().map_err(|e| e.to_string())?;
    let took = start.elapsed();
    Ok((list.items.len(), took))
}

fn main() -> Result<(), String> {
    let path = std::env::args().nth(1).ok_or("usage: decode_nodes NODELIST.json")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    println!("{path}: {} bytes", bytes.len());
    for round in 1..=3 {
        let (n, whole) = timed(|| serde_json::from_slice::<ObjectList<Node>>(&bytes))?;
        let (m, watched) = timed(|| serde_json::from_slice::<ObjectList<WatchedNode>>(&bytes))?;
        println!(
            "round {round}: Node {n} in {:.1} ms; WatchedNode {m} in {:.1} ms ({:.2}x)",
            whole.as_secs_f64() * 1e3,
            watched.as_secs_f64() * 1e3,
            watched.as_secs_f64() / whole.as_secs_f64()
        );
    }
    Ok(())
}
