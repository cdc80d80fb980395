//! AFL++ harness: `targets::cluster_state` on each input (see `fuzz/run.sh`).

#[path = "../../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::cluster_state(data));
}
