//! AFL++ harness: `targets::admission_review` on each input (see `fuzz/run.sh`).

#[path = "../../targets.rs"]
mod targets;

fn main() {
    afl::fuzz!(|data: &[u8]| targets::admission_review(data));
}
