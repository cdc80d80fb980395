//! The binary's own behaviour at its edges: start-up errors, `certs`, `version`.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook"))
}

#[test]
fn serve_with_unreadable_certificate_exits_naming_the_file() {
    let out = bin()
        .args(["serve", "--tls-cert", "/nonexistent/tls.crt", "--tls-key", "/nonexistent/tls.key"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--cluster-state", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster-state.yaml")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/tls.crt"), "{stderr}");
}

#[test]
fn serve_with_broken_cluster_state_exits_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.yaml");
    std::fs::write(&state, "kind: [\n").unwrap();
    let out = bin()
        .args(["serve", "--cluster-state"])
        .arg(&state)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("state.yaml"));
}

#[test]
fn certs_writes_the_pair_prints_the_bundle_and_refuses_to_overwrite() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("c");
    let run = |extra: &[&str]| {
        bin()
            .args(["certs", "--service", "hook", "--namespace", "ns", "--ip", "127.0.0.1", "--out"])
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let bundle = String::from_utf8(first.stdout).unwrap();
    let ca = std::fs::read(out_dir.join("ca.crt")).unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(bundle.trim()).unwrap(), ca);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out_dir.join("tls.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    let pem = std::fs::read(out_dir.join("tls.crt")).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans: Vec<String> =
        cert.subject_alternative_name().unwrap().unwrap().value.general_names.iter().map(|n| n.to_string()).collect();
    for want in [
        "DNSName(hook)",
        "DNSName(hook.ns)",
        "DNSName(hook.ns.svc)",
        "DNSName(hook.ns.svc.cluster.local)",
        "IPAddress(7f:00:00:01)",
    ] {
        assert!(sans.iter().any(|s| s == want), "{want} not in {sans:?}");
    }
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(out_dir.join("ca.crt")).unwrap(), ca, "nothing overwritten");
    let forced = run(&["--force"]);
    assert!(forced.status.success());
}

#[test]
fn certs_rotation_with_the_same_ca_keeps_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path();
    let gen = |extra: &[&str]| bin().args(["certs", "--out"]).arg(c).args(extra).output().unwrap();
    let first = gen(&[]);
    assert!(first.status.success());
    let ca = c.join("ca.crt").display().to_string();
    let key = c.join("ca.key").display().to_string();
    let old_leaf = std::fs::read(c.join("tls.crt")).unwrap();
    let second = gen(&["--force", "--ca-cert", &ca, "--ca-key", &key]);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(first.stdout, second.stdout, "same caBundle");
    assert_ne!(std::fs::read(c.join("tls.crt")).unwrap(), old_leaf, "new serving certificate");
}

#[test]
fn version_prints_the_crate_version() {
    let out = bin().arg("version").output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains(env!("CARGO_PKG_VERSION")));
}
