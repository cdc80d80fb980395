//! Lays out the release binary's code so that the functions every admission
//! request runs sit next to each other.
//!
//! `link/hot-functions.txt` lists those functions by symbol name, hottest
//! first (`benches/hot_functions.sh` writes it from callgrind runs of
//! `serve`). For release builds of the binary this script hands the list to
//! the linker as `--symbol-ordering-file`: the few hundred functions a request
//! runs then fill well under a megabyte instead of being spread over the
//! whole 16 MB of code, so they share pages (instruction TLB) and cache sets
//! with each other, not with cold code. BENCHMARKS.md, "Hot functions laid out together",
//! measures it: about 5% less CPU per request.
//!
//! Only rust-lld (the default linker for x86_64-unknown-linux-gnu since Rust
//! 1.90) is known to take the option; GNU ld rejects it. So the list is used
//! only for that target, from that Rust version on, when no other linker is
//! configured, and never when `SYSBOX_RO_LINK_ORDER=0`. Symbols the list names
//! but the binary lacks (another toolchain or lock file renames them) are
//! skipped without a warning: a stale list costs the speed-up, never the build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const LIST: &str = "link/hot-functions.txt";

fn main() {
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-env-changed=SYSBOX_RO_LINK_ORDER");
    if let Some(list) = ordering_list() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", list.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The list's path when this build should use it.
fn ordering_list() -> Option<PathBuf> {
    if env::var("SYSBOX_RO_LINK_ORDER").as_deref() == Ok("0") {
        return None;
    }
    if env::var("PROFILE").as_deref() != Ok("release")
        || env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
    {
        return None;
    }
    // Another linker, set in Cargo's configuration or in the flags, may be GNU ld.
    if env::var_os("RUSTC_LINKER").is_some() {
        return None;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "link-self-contained", "fuse-ld"].iter().any(|f| flags.contains(f)) {
        return None;
    }
    if rustc_minor()? < 90 {
        return None;
    }
    let list = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR")?).join(LIST);
    list.is_file().then_some(list)
}

/// The minor version of the compiler building this crate ("rustc 1.95.0 ..." is 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var_os("RUSTC")?;
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
