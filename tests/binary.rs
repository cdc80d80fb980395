//! The binary's own behaviour at its edges: start-up errors, `certs`, `version`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod net;

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

/// A `serve` process on loopback ports with fresh certificates.
struct Served {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    certs: tempfile::TempDir,
}

fn serve(grace: &str) -> Served {
    serve_with(grace, "0")
}

fn serve_with(grace: &str, delay: &str) -> Served {
    let certs = tempfile::tempdir().unwrap();
    let made = bin().args(["certs", "--ip", "127.0.0.1", "--dns", "localhost", "--out"]).arg(certs.path()).output();
    assert!(made.unwrap().status.success());
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--shutdown-grace", grace, "--shutdown-delay", delay, "--tls-cert"])
        .arg(certs.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.path().join("tls.key"))
        .args(["--cluster-state", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster-state.yaml")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The "serving" log line names both bound ports.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).ok()?;
            (v["message"] == "serving").then_some(v)
        })
        .expect("the server logs that it is serving");
    std::thread::spawn(move || lines.for_each(drop));
    let addr = serving["addr"].as_str().unwrap().parse().unwrap();
    let admin = serving["admin_addr"].as_str().unwrap().parse().unwrap();
    Served { child, addr, admin, certs }
}

fn signal(child: &Child, sig: libc::c_int) {
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

/// Sends the head and the first half of a review, so the request is in
/// flight until the rest is written.
fn half_sent_review(s: &Served) -> (net::TlsStream, Vec<u8>) {
    let body = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews/pod-create.json")).unwrap();
    let mut conn = net::tls_connect(s.addr, s.certs.path(), &[]).unwrap();
    let head = format!(
        "POST /mutate?timeout=20s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body[..body.len() / 2]).unwrap();
    conn.flush().unwrap();
    let rest = body[body.len() / 2..].to_vec();
    (conn, rest)
}

fn wait_for_status(admin: SocketAddr, path: &str, want: u16) -> Result<u16, String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let got = net::http_get(admin, path);
        if got == Ok(want) || Instant::now() > until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_in_flight_requests_while_readyz_says_503() {
    let mut s = serve("10");
    assert_eq!(wait_for_status(s.admin, "/readyz", 200), Ok(200));
    let (mut conn, rest) = half_sent_review(&s);
    std::thread::sleep(Duration::from_millis(200));
    signal(&s.child, libc::SIGTERM);
    // The admin port keeps answering while the webhook drains.
    assert_eq!(wait_for_status(s.admin, "/readyz", 503), Ok(503));
    assert_eq!(net::http_get(s.admin, "/healthz"), Ok(200));
    // The request in flight is answered in full.
    conn.write_all(&rest).unwrap();
    conn.flush().unwrap();
    let mut reply = vec![0u8; 64 << 10];
    let n = conn.read(&mut reply).unwrap();
    assert_eq!(net::status_of(&reply[..n]), Some(200), "{}", String::from_utf8_lossy(&reply[..n]));
    drop(conn);
    assert_eq!(wait_exit(&mut s.child, Duration::from_secs(8)), Some(0), "clean drain exits 0");
}

#[test]
fn a_second_signal_ends_the_drain_and_the_exit_status_says_requests_were_dropped() {
    let mut s = serve("30");
    assert_eq!(wait_for_status(s.admin, "/readyz", 200), Ok(200));
    let (conn, _rest) = half_sent_review(&s);
    std::thread::sleep(Duration::from_millis(200));
    signal(&s.child, libc::SIGTERM);
    assert_eq!(wait_for_status(s.admin, "/readyz", 503), Ok(503));
    signal(&s.child, libc::SIGINT);
    assert_eq!(wait_exit(&mut s.child, Duration::from_secs(5)), Some(3), "a cut drain exits 3");
    drop(conn);
}

#[test]
fn sigterm_with_nothing_in_flight_exits_0_at_once() {
    let mut s = serve("30");
    assert_eq!(wait_for_status(s.admin, "/readyz", 200), Ok(200));
    signal(&s.child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut s.child, Duration::from_secs(5)), Some(0));
}

/// One review on `conn`: the response head (lower-cased) and the status,
/// or None when the connection was closed instead.
fn review_on(conn: &mut net::TlsStream) -> Option<(u16, String)> {
    let body = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews/pod-create.json")).unwrap();
    net::post_review(conn, &body)
}

/// SIGTERM with `--shutdown-delay 2`: /readyz fails at once, but for the
/// delay every review is answered, on kept-alive and new connections alike,
/// each answer saying `Connection: close`; then new connections are refused,
/// the request in flight is still answered, and the process exits 0.
#[test]
fn sigterm_keeps_serving_through_the_shutdown_delay_then_drains_and_exits_0() {
    let mut s = serve_with("10", "2");
    assert_eq!(wait_for_status(s.admin, "/readyz", 200), Ok(200));
    let mut kept = net::tls_connect(s.addr, s.certs.path(), &[]).unwrap();
    let (status, head) = review_on(&mut kept).expect("answered before the signal");
    assert_eq!(status, 200);
    assert!(!head.contains("connection: close"), "{head}");
    let (mut in_flight, rest) = half_sent_review(&s);
    std::thread::sleep(Duration::from_millis(200));

    signal(&s.child, libc::SIGTERM);
    let signalled = Instant::now();
    assert_eq!(wait_for_status(s.admin, "/readyz", 503), Ok(503));
    assert!(signalled.elapsed() < Duration::from_secs(1), "readiness failed only after {:?}", signalled.elapsed());
    // Within the delay: the kept-alive connection and a new one are served.
    let (status, head) = review_on(&mut kept).expect("a kept-alive connection is served during the delay");
    assert_eq!(status, 200);
    assert!(head.contains("connection: close"), "answers during the delay close the connection: {head}");
    let mut fresh =
        net::tls_connect(s.addr, s.certs.path(), &[]).expect("new connections are accepted during the delay");
    let (status, head) = review_on(&mut fresh).expect("a new connection is served during the delay");
    assert_eq!(status, 200);
    assert!(head.contains("connection: close"), "{head}");
    assert!(signalled.elapsed() < Duration::from_millis(1_800), "the checks above took {:?}", signalled.elapsed());
    assert!(s.child.try_wait().unwrap().is_none(), "still running during the delay");

    // After the delay: no new connections, the one in flight is answered.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(signalled.elapsed()) + Duration::from_millis(500));
    assert!(net::tls_connect(s.addr, s.certs.path(), &[]).is_err(), "new connections are refused after the delay");
    assert!(s.child.try_wait().unwrap().is_none(), "waits for the request in flight");
    in_flight.write_all(&rest).unwrap();
    in_flight.flush().unwrap();
    let (status, _) = net::read_response(&mut in_flight).expect("the request in flight is answered");
    assert_eq!(status, 200);
    drop(in_flight);
    assert_eq!(wait_exit(&mut s.child, Duration::from_secs(8)), Some(0), "clean drain exits 0");
}
