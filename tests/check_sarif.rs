//! `check -o sarif` against real SARIF validators: Microsoft's SARIF
//! Multitool (npm) and jsonschema (PyPI) with the SARIF 2.1.0 schema that
//! the Multitool package ships. `tests/check/validate-sarif.sh` installs both
//! into `${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}`; without them
//! this test fails and says how to install them, unless
//! `SYSBOX_RO_SKIP_SARIF_VALIDATOR=1`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const SCRIPT: &str = "tests/check/validate-sarif.sh";

fn script(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run bash")
}

/// Whether the validators are there; fails the test when they are not,
/// unless skipping was asked for.
fn validators_installed() -> bool {
    if script(&["installed"]).status.success() {
        return true;
    }
    if std::env::var("SYSBOX_RO_SKIP_SARIF_VALIDATOR").is_ok_and(|v| v == "1") {
        eprintln!("SARIF validators not installed; skipped (SYSBOX_RO_SKIP_SARIF_VALIDATOR=1)");
        return false;
    }
    panic!(
        "the SARIF validators are not installed. Install them with `bash {SCRIPT}` (npm @microsoft/sarif-multitool \
         and PyPI jsonschema, into ${{SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}}), or set \
         SYSBOX_RO_SKIP_SARIF_VALIDATOR=1 to skip this test"
    );
}

fn sarif(args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook"));
    cmd.env_clear().current_dir(env!("CARGO_MANIFEST_DIR")).args(["check", "-o", "sarif"]).args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn validate(files: &[&Path]) -> Output {
    let mut args = vec!["validate"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    script(&args)
}

#[test]
fn sarif_reports_pass_the_sarif_validators() {
    if !validators_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifests_abs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests/pod-dind.yaml");
    let reports = [
        (
            "with-cluster",
            sarif(&["-f", "tests/data/manifests", "--cluster-state", "examples/cluster-state.yaml"], None),
        ),
        ("no-cluster", sarif(&["-f", "tests/data/manifests"], None)),
        (
            "warn-mode",
            sarif(
                &["-f", "tests/data/manifests", "--mode", "audit", "--cluster-state", "examples/cluster-state.yaml"],
                None,
            ),
        ),
        (
            "stdin-absolute",
            sarif(
                &["-f", "-", "-f", manifests_abs.to_str().unwrap()],
                Some("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i}]}\n"),
            ),
        ),
    ];
    let mut paths = Vec::new();
    for (name, text) in &reports {
        let log: Value = serde_json::from_str(text).unwrap();
        assert_eq!(log["version"], "2.1.0");
        let p = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    // The reports do carry results of every level, and an error result for the broken document.
    let with_cluster: Value = serde_json::from_str(&reports[0].1).unwrap();
    let levels: std::collections::BTreeSet<&str> =
        with_cluster["runs"][0]["results"].as_array().unwrap().iter().map(|r| r["level"].as_str().unwrap()).collect();
    assert_eq!(levels.into_iter().collect::<Vec<_>>(), ["error", "warning"]);
    let audit: Value = serde_json::from_str(&reports[2].1).unwrap();
    assert!(audit["runs"][0]["results"].as_array().unwrap().iter().any(|r| r["level"] == "note"));

    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = validate(&refs);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "SARIF validation failed:\n{said}");
    assert_eq!(said.matches("valid SARIF 2.1.0 (0 problems)").count(), reports.len(), "{said}");

    // Control: the validators do reject a log that breaks the schema.
    let mut broken = with_cluster.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    broken["runs"][0]["results"][1].as_object_mut().unwrap().remove("message");
    let bad = dir.path().join("broken.sarif");
    std::fs::write(&bad, serde_json::to_string_pretty(&broken).unwrap()).unwrap();
    let out = validate(&[&bad]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("'fatal' is not one of"), "{said}");
    assert!(said.contains("message"), "{said}");
}
