//! The layers of `src/` (docs/architecture.md), checked: a module uses only
//! modules of lower layers, nothing below `main`/`cli` knows clap, and the
//! pure layers (engine, intake, policy, ...) use no async runtime, HTTP
//! server or Kubernetes client.
//!
//! Reads every `.rs` file under `src/` and collects the crate modules it
//! names (`crate::x`, and `super::x` from a file directly under `src/`) and
//! the external crates it names, outside comments.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules, highest layer first. A module may use modules of
/// lower layers only; modules of one layer do not use each other.
const LAYERS: &[(i32, &[&str])] = &[
    // The binary, and its command line.
    (8, &["main"]),
    (7, &["cli"]),
    // The webhook server, which also runs the audit on a timer.
    (6, &["serve"]),
    // The audit of running pods, which reports through check's renderers.
    (5, &["audit"]),
    // Shells: each runs the engine (or the cluster view) in its own way.
    (4, &["check", "certs", "agent", "explain"]),
    // AdmissionReview in and out.
    (3, &["admission"]),
    // The subject of a review, from a request or a manifest; the bounds of
    // what an answer may carry.
    (2, &["intake", "limits"]),
    // The pure decision.
    (1, &["engine"]),
    // What the engine knows about the cluster.
    (0, &["cluster"]),
];

/// Leaves (layer -1): plain data, parsers and counters that use no other
/// module of the crate.
const LEAVES: &[&str] = &["policy", "manifest", "metrics", "sysbox", "printable", "regular_file", "logging"];

/// External crates each module must not use.
const CLAP: &str = "clap";
const IMPURE: &[&str] = &["tokio", "axum", "axum_server", "hyper", "hyper_util", "kube", "rustls", "clap"];

fn pure(module: &str) -> bool {
    matches!(module, "engine" | "intake" | "policy" | "manifest" | "sysbox" | "limits" | "printable")
}

fn rank(module: &str) -> Option<i32> {
    if LEAVES.contains(&module) {
        return Some(-1);
    }
    LAYERS.iter().find(|(_, ms)| ms.contains(&module)).map(|(r, _)| *r)
}

/// The top-level module a file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments;
/// a `//` inside a string cuts the string, which only loses text).
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.lines() {
        let mut line = line;
        if in_block {
            match line.find("*/") {
                Some(end) => {
                    line = &line[end + 2..];
                    in_block = false;
                }
                None => continue,
            }
        }
        if let Some(start) = line.find("/*") {
            in_block = !line[start..].contains("*/");
            line = &line[..start];
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Identifiers that follow `prefix` (e.g. `crate::`), with `{a, b}` groups expanded one level.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let n = ident(part.trim());
                if !n.is_empty() {
                    names.insert(n);
                }
            }
        } else {
            let n = ident(rest);
            if !n.is_empty() {
                names.insert(n);
            }
        }
    }
    names
}

/// External crates a file names: `use x::`, `x::` at the start of a path.
fn crates_named(code: &str, candidates: &[&str]) -> BTreeSet<String> {
    candidates
        .iter()
        .filter(|c| {
            let path = format!("{c}::");
            code.match_indices(&path).any(|(i, _)| {
                let before = code[..i].chars().next_back();
                !before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == ':')
            }) || code.contains(&format!("use {c};"))
        })
        .map(|c| c.to_string())
        .collect()
}

/// Every rule broken in `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap().display().to_string();
        let module = module_of(src, file);
        if rel == "lib.rs" {
            continue;
        }
        let Some(own) = rank(&module) else {
            problems.push(format!(
                "src/{rel}: module `{module}` has no layer: add it to LAYERS or LEAVES in tests/layering.rs \
                 (and to docs/architecture.md)"
            ));
            continue;
        };
        let text = code(&std::fs::read_to_string(file).unwrap());
        let mut used = names_after(&text, "crate::");
        if !rel.contains('/') {
            // `super::x` in a file at the top is `crate::x`.
            used.extend(names_after(&text, "super::"));
        }
        used.extend(names_after(&text, "sysbox_ro_webhook::"));
        for other in used.iter().filter(|m| **m != module) {
            match rank(other) {
                Some(r) if r < own && !(own == -1 && r == -1) => {}
                Some(_) => problems.push(format!("src/{rel}: `{module}` uses `{other}`, which is not below it")),
                None => {} // not a module (a macro or an item of lib.rs)
            }
        }
        let forbidden: &[&str] = if pure(&module) {
            IMPURE
        } else if module == "main" || module == "cli" {
            &[]
        } else {
            &[CLAP]
        };
        for krate in crates_named(&text, forbidden) {
            problems.push(format!("src/{rel}: `{module}` uses the crate `{krate}`"));
        }
        if module != "main" && module != "cli" && text.contains("derive(") && text.contains("ValueEnum") {
            problems.push(format!("src/{rel}: `{module}` derives clap's ValueEnum"));
        }
    }
    problems
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

/// The checker itself catches what it is there to catch.
#[test]
fn the_checker_sees_forbidden_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    std::fs::create_dir_all(src.join("engine")).unwrap();
    std::fs::create_dir_all(src.join("serve")).unwrap();
    std::fs::create_dir_all(src.join("check")).unwrap();
    let write = |path: &str, text: &str| std::fs::write(src.join(path), text).unwrap();
    write("engine/mod.rs", "use crate::cli::Cli;\nuse crate::policy::Policy; // crate::serve in a comment\n");
    write("engine/patch.rs", "pub fn f() { tokio::spawn(async {}); }\n");
    write("serve/mod.rs", "use crate::{admission, check};\nuse clap::Parser;\n");
    write("check/mod.rs", "use crate::{admission, agent};\n");
    write("policy.rs", "#[derive(clap::ValueEnum)]\npub enum Mode { A }\n");
    write("stray.rs", "pub fn f() {}\n");
    let problems = violations(src).join("\n");
    for want in [
        "`engine` uses `cli`",
        "src/engine/patch.rs: `engine` uses the crate `tokio`",
        "`check` uses `agent`",
        "src/serve/mod.rs: `serve` uses the crate `clap`",
        "src/policy.rs: `policy` uses the crate `clap`",
        "`policy` derives clap's ValueEnum",
        "module `stray` has no layer",
    ] {
        assert!(problems.contains(want), "missing {want:?} in:\n{problems}");
    }
    for not in ["`engine` uses `policy`", "uses `serve`", "`serve` uses `admission`", "`serve` uses `check`"] {
        assert!(!problems.contains(not), "unexpected {not:?} in:\n{problems}");
    }
}
