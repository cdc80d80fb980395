//! AFL++ harness: `targets::manifest_stream` on each input (see `fuzz/run.sh`).

#[path = "../../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::manifest_stream(data));
}
