//! The webhook over a real TLS socket: certificates from `certs`, rotation by
//! a Kubernetes-style `..data` symlink swap under concurrent requests, broken
//! pairs, start-up errors, and slow clients.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sysbox_ro_webhook::certs::{self, CertsConfig};
use sysbox_ro_webhook::cluster::{snapshot, Source, StaticView};
use sysbox_ro_webhook::metrics::Metrics;
use sysbox_ro_webhook::policy::Policy;
use sysbox_ro_webhook::serve::{self, tls::ReloadingCert, ServeConfig, MIN_BODY_LIMIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod net;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn issue(out: &Path, ca: Option<&Path>) -> PathBuf {
    let cfg = CertsConfig {
        service: "sysbox-ro-webhook".into(),
        namespace: "sysbox-ro-webhook".into(),
        out: out.into(),
        dns: vec!["localhost".into()],
        ip: vec!["127.0.0.1".parse().unwrap()],
        days: 1,
        force: true,
        ca: ca.map(|d| (d.join("ca.crt"), d.join("ca.key"))),
    };
    certs::generate(&cfg).expect("certificates generate");
    out.into()
}

/// A Secret-volume-like folder: `<dir>/tls.crt -> ..data/tls.crt`, `..data -> ..<version>`.
struct SecretVolume {
    dir: PathBuf,
    version: usize,
}

impl SecretVolume {
    fn new(dir: &Path, from: &Path) -> SecretVolume {
        let mut v = SecretVolume { dir: dir.into(), version: 0 };
        v.publish_files(&std::fs::read(from.join("tls.crt")).unwrap(), &std::fs::read(from.join("tls.key")).unwrap());
        for f in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(f), dir.join(f)).unwrap();
        }
        v
    }

    /// Writes a new version folder and swaps `..data` to it atomically, as the kubelet does.
    fn publish_files(&mut self, cert: &[u8], key: &[u8]) {
        self.version += 1;
        let name = format!("..v{}", self.version);
        let version_dir = self.dir.join(&name);
        std::fs::create_dir_all(&version_dir).unwrap();
        std::fs::write(version_dir.join("tls.crt"), cert).unwrap();
        std::fs::write(version_dir.join("tls.key"), key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        if self.version > 1 {
            std::fs::remove_dir_all(self.dir.join(format!("..v{}", self.version - 1))).unwrap();
        }
    }

    fn publish(&mut self, from: &Path) {
        self.publish_files(
            &std::fs::read(from.join("tls.crt")).unwrap(),
            &std::fs::read(from.join("tls.key")).unwrap(),
        );
    }
}

fn config(cert: &Path, key: &Path) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: cert.into(),
        tls_key: key.into(),
        tls_reload_interval: Duration::from_millis(100),
        max_body_bytes: MIN_BODY_LIMIT,
        max_inflight_body_bytes: 2 * MIN_BODY_LIMIT,
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(3),
        max_connections: 64,
        default_timeout: Duration::from_secs(10),
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(2),
        policy: Policy::default(),
        cluster: Source::Snapshot(vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-state.yaml")]),
        audit: None,
    }
}

async fn start(cert: &Path, key: &Path) -> serve::Running {
    let policy = Policy::default();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-state.yaml");
    let (state, _) = snapshot::load(&[example], &policy.nodes).unwrap();
    serve::start(config(cert, key), Arc::new(StaticView(Arc::new(state))), Arc::new(Metrics::new()), provider())
        .await
        .expect("server starts")
}

fn client(ca_dir: &Path) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tls_info(true)
        // a new connection (and handshake) per request, to see rotations
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn review_body() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews/pod-create.json")).unwrap()
}

/// Sends one review; returns the DER of the certificate the server presented.
async fn call(client: &reqwest::Client, addr: std::net::SocketAddr) -> Result<Vec<u8>, String> {
    let resp = client
        .post(format!("https://127.0.0.1:{}/mutate?timeout=5s", addr.port()))
        .header("content-type", "application/json")
        .body(review_body())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let cert = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        .ok_or("no peer certificate")?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != 200 || body["response"]["uid"] != "7f0b2c1e-5d3a-4c7e-9a51-2b8f6e4d1a90" {
        return Err(format!("{status}: {body}"));
    }
    Ok(cert)
}

fn leaf_der(dir: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(dir.join("tls.crt")).unwrap().next().unwrap().unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn symlink_swap_rotation_under_load_has_zero_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let first = issue(&tmp.path().join("first"), None);
    let second = issue(&tmp.path().join("second"), Some(&first));
    let mut volume = SecretVolume::new(
        &{
            let d = tmp.path().join("volume");
            std::fs::create_dir_all(&d).unwrap();
            d
        },
        &first,
    );
    let running = start(&volume.dir.join("tls.crt"), &volume.dir.join("tls.key")).await;
    let addr = running.addr;
    let client = client(&first);
    assert_eq!(call(&client, addr).await.unwrap(), leaf_der(&first));

    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, ok, failures) = (client.clone(), ok.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < stop {
                match call(&client, addr).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        failures.lock().unwrap().push(e);
                        0
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    volume.publish(&second);
    let swapped = Instant::now();
    let mut seen_new = None;
    while swapped.elapsed() < Duration::from_secs(2) {
        if call(&client, addr).await.unwrap() == leaf_der(&second) {
            seen_new = Some(swapped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    assert!(failures.is_empty(), "{} failed requests, first: {:?}", failures.len(), failures.first());
    assert!(ok.load(Ordering::Relaxed) > 50, "the load actually ran");
    let took = seen_new.expect("new certificate served within 2 s of the swap");
    eprintln!("rotation visible after {took:?}, {} requests ok", ok.load(Ordering::Relaxed));
    let metrics = running.state.metrics.encode();
    assert!(metrics.contains(r#"sysbox_ro_tls_reloads_total{result="success"} 1"#), "{metrics}");
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn broken_new_pair_keeps_the_old_certificate_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let first = issue(&tmp.path().join("first"), None);
    let other = issue(&tmp.path().join("other"), Some(&first));
    let dir = tmp.path().join("volume");
    std::fs::create_dir_all(&dir).unwrap();
    let mut volume = SecretVolume::new(&dir, &first);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    let client = client(&first);
    // a certificate with somebody else's key, then garbage
    volume
        .publish_files(&std::fs::read(first.join("tls.crt")).unwrap(), &std::fs::read(other.join("tls.key")).unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call(&client, running.addr).await.unwrap(), leaf_der(&first));
    volume.publish_files(b"not a certificate", b"not a key");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call(&client, running.addr).await.unwrap(), leaf_der(&first));
    let metrics = running.state.metrics.encode();
    assert!(metrics.contains(r#"sysbox_ro_tls_reloads_total{result="failure"} 2"#), "{metrics}");
    // and a good pair afterwards is picked up
    volume.publish(&other);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call(&client, running.addr).await.unwrap(), leaf_der(&other));
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unreadable_pair_at_start_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let m = Metrics::new();
    let missing = tmp.path().join("nope.crt");
    let err = ReloadingCert::load(&missing, &dir.join("tls.key"), provider(), &m).unwrap_err();
    assert!(err.to_string().contains("nope.crt"), "{err}");
    std::fs::write(tmp.path().join("bad.key"), "garbage").unwrap();
    let err = ReloadingCert::load(&dir.join("tls.crt"), &tmp.path().join("bad.key"), provider(), &m).unwrap_err();
    assert!(err.to_string().contains("bad.key"), "{err}");
    let err = ReloadingCert::load(&dir.join("tls.key"), &dir.join("tls.key"), provider(), &m).unwrap_err();
    assert!(err.to_string().contains("tls.key"), "{err}");
}

#[tokio::test]
async fn slow_client_is_cut_off_and_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    // Opens TCP and sends nothing: the handshake timeout (500 ms here) closes it.
    let mut idle = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("server closes the idle connection");
    assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let _ = idle.write_all(b"x").await;
    assert!(call(&client(&dir), running.addr).await.is_ok());
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn plain_http_gets_no_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    let mut conn = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    conn.write_all(
        b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut reply)).await;
    // The server ends the connection (at the latest when the 500 ms handshake
    // timeout passes) instead of leaving it open.
    match read.expect("the server closes a plain-HTTP connection instead of leaving it open") {
        Ok(_) => {}
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted),
            "{e}"
        ),
    }
    assert!(!reply.starts_with(b"HTTP/"), "plain HTTP must not be served: {:?}", String::from_utf8_lossy(&reply));
    // At most a TLS alert record comes back.
    assert!(reply.is_empty() || reply[0] == 0x15, "not a TLS alert: {reply:?}");
    running.shutdown(Duration::from_secs(1)).await;
}

/// `GET` on the admin port over plain HTTP; the status code, or an error.
async fn admin_get(addr: std::net::SocketAddr, path: &str) -> Result<u16, String> {
    let exchange = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).await?;
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| "no answer within 2 s".to_string())?
        .map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&reply[..reply.len().min(12)]).into_owned();
    head.strip_prefix("HTTP/1.1 ").and_then(|s| s.get(..3)).and_then(|s| s.parse().ok()).ok_or(head)
}

fn reload_failures(running: &serve::Running) -> usize {
    let text = running.state.metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"sysbox_ro_tls_reloads_total{result="failure"} "#))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_huge_certificate_file_never_stalls_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let first = issue(&tmp.path().join("first"), None);
    let dir = tmp.path().join("volume");
    std::fs::create_dir_all(&dir).unwrap();
    let mut volume = SecretVolume::new(&dir, &first);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    let client = client(&first);
    let key = std::fs::read(first.join("tls.key")).unwrap();

    // tls.crt becomes a FIFO nobody writes to: opening it for reading
    // would block for ever.
    volume.publish_files(b"placeholder", &key);
    let fifo = dir.join("..data").join("tls.crt");
    std::fs::remove_file(&fifo).unwrap();
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let waited = Instant::now();
    while reload_failures(&running) == 0 && waited.elapsed() < Duration::from_secs(5) {
        assert_eq!(admin_get(running.admin_addr, "/healthz").await, Ok(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reload_failures(&running) >= 1, "a FIFO is refused, not waited on");
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(call(&client, running.addr).await.unwrap(), leaf_der(&first));
        assert_eq!(admin_get(running.admin_addr, "/metrics").await, Ok(200));
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A 100 MB file (sparse: it costs no disk) is refused by its size.
    volume.publish_files(b"placeholder", &key);
    let huge = dir.join("..data").join("tls.crt");
    std::fs::File::create(&huge).unwrap().set_len(100 << 20).unwrap();
    let before = reload_failures(&running);
    let waited = Instant::now();
    while reload_failures(&running) == before && waited.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reload_failures(&running) > before, "a huge file is refused");
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(call(&client, running.addr).await.unwrap(), leaf_der(&first));
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn certificate_reads_refuse_fifos_devices_and_huge_files_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let m = Metrics::new();
    let fifo = tmp.path().join("fifo.crt");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let huge = tmp.path().join("huge.crt");
    std::fs::File::create(&huge).unwrap().set_len(100 << 20).unwrap();
    for (cert, words) in [
        (fifo.as_path(), "not a regular file"),
        (Path::new("/dev/zero"), "not a regular file"),
        (huge.as_path(), "larger than"),
    ] {
        let started = Instant::now();
        let err = ReloadingCert::load(cert, &dir.join("tls.key"), provider(), &m).unwrap_err().to_string();
        assert!(err.contains(&cert.display().to_string()) && err.contains(words), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

fn refused(running: &serve::Running, port: &str) -> usize {
    let text = running.state.metrics.encode();
    let prefix = format!("sysbox_ro_connections_refused_total{{port=\"{port}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_port_cuts_slow_headers_and_caps_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    let admin = running.admin_addr;
    // Clients sending their headers a byte every 100 ms are cut off at the
    // header timeout (500 ms here).
    let slow: Vec<_> = (0..5)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut tcp = std::net::TcpStream::connect(admin).unwrap();
                for b in b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().cycle().take(100) {
                    use std::io::Write as _;
                    if tcp.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                started.elapsed()
            })
        })
        .collect();
    for t in slow {
        let held = t.join().unwrap();
        assert!(held < Duration::from_secs(4), "a slow client held the admin port for {held:?}");
    }
    assert_eq!(net::http_get(admin, "/healthz"), Ok(200));

    // Past the cap, connections are closed at once and counted; the port
    // serves again once they are gone.
    let idle: Vec<_> =
        (0..serve::ADMIN_MAX_CONNECTIONS + 6).map(|_| std::net::TcpStream::connect(admin).unwrap()).collect();
    let waited = Instant::now();
    while refused(&running, "admin") < 6 && waited.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused(&running, "admin") >= 6, "{}", running.state.metrics.encode());
    drop(idle);
    let waited = Instant::now();
    while net::http_get(admin, "/healthz") != Ok(200) && waited.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(net::http_get(admin, "/healthz"), Ok(200));
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_port_speaks_http1_only_and_bounds_what_precedes_a_body() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    let (addr, ca) = (running.addr, dir.clone());
    let results = tokio::task::spawn_blocking(move || {
        // HTTP/2 with prior knowledge after a handshake without ALPN.
        let mut h2 = net::tls_connect(addr, &ca, &[]).unwrap();
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let h2_reply = net::exchange(&mut h2, &preface);
        // Offering only h2 in ALPN fails the handshake.
        let alpn_h2 = net::tls_connect(addr, &ca, &[b"h2"]).err();
        // 200 headers.
        let mut many = net::tls_connect(addr, &ca, &[]).unwrap();
        let mut req = b"POST /mutate HTTP/1.1\r\nhost: x\r\n".to_vec();
        for i in 0..200 {
            req.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"content-length: 0\r\n\r\n");
        let many_reply = net::exchange(&mut many, &req);
        // Expect: 100-continue for a body over the limit: refused before it is sent.
        let mut expect = net::tls_connect(addr, &ca, &[]).unwrap();
        let big = format!(
            "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            MIN_BODY_LIMIT + 1
        );
        let expect_reply = net::exchange(&mut expect, big.as_bytes());
        (h2_reply, alpn_h2, many_reply, expect_reply)
    })
    .await
    .unwrap();
    let (h2_reply, alpn_h2, many_reply, expect_reply) = results;
    assert!(!(h2_reply.len() >= 9 && h2_reply[3] == 4), "an HTTP/2 SETTINGS frame came back: {h2_reply:?}");
    assert!(alpn_h2.is_some(), "a client that only speaks h2 is refused at the handshake");
    assert_eq!(net::status_of(&many_reply), Some(431), "{:?}", String::from_utf8_lossy(&many_reply));
    let text = String::from_utf8_lossy(&expect_reply);
    assert_eq!(net::status_of(&expect_reply), Some(413), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
    running.shutdown(Duration::from_secs(1)).await;
}

/// Sends one review on a kept-alive TLS connection and reads its response:
/// the status, or None when the server closed the connection instead.
fn review_on(conn: &mut net::TlsStream) -> Option<u16> {
    net::post_review(conn, &review_body()).map(|(status, _)| status)
}

/// How long until the server closes `conn`, reading (and dropping) anything it sends.
fn time_to_close(conn: &mut net::TlsStream) -> Duration {
    use std::io::Read as _;
    let since = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => {}
        }
    }
}

/// The production clocks: 10 s for a request's headers, counted from its
/// first byte; a kept-alive connection idle for longer than that (as
/// kube-apiserver keeps them, up to 90 s) still serves; past the idle
/// timeout (20 s here, 120 s by default) it is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_survives_idle_spells_and_half_headers_are_cut_at_the_header_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let policy = Policy::default();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-state.yaml");
    let (state, _) = snapshot::load(&[example], &policy.nodes).unwrap();
    let config = ServeConfig {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(20),
        ..config(&dir.join("tls.crt"), &dir.join("tls.key"))
    };
    let running = serve::start(config, Arc::new(StaticView(Arc::new(state))), Arc::new(Metrics::new()), provider())
        .await
        .expect("server starts");
    let (addr, ca) = (running.addr, dir.clone());
    let pause = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut conn = net::tls_connect(addr, &ca, &[]).unwrap();
        conn.sock.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let first = review_on(&mut conn);
        // Longer than the header timeout, shorter than the idle timeout.
        std::thread::sleep(Duration::from_secs(15));
        let after_pause = review_on(&mut conn);
        // Half a header, then nothing.
        let _ = conn.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-ty");
        let _ = conn.flush();
        (first, after_pause, time_to_close(&mut conn))
    });
    let (addr, ca) = (running.addr, dir.clone());
    let idle = tokio::task::spawn_blocking(move || {
        let mut conn = net::tls_connect(addr, &ca, &[]).unwrap();
        conn.sock.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let first = review_on(&mut conn);
        (first, time_to_close(&mut conn))
    });
    let (first, after_pause, half_header_cut) = pause.await.unwrap();
    let (idle_first, idle_closed) = idle.await.unwrap();
    assert_eq!(first, Some(200));
    assert_eq!(after_pause, Some(200), "a connection idle for 15 s was closed under the next request");
    assert!(
        half_header_cut >= Duration::from_millis(9_500) && half_header_cut < Duration::from_secs(13),
        "half a header held the connection for {half_header_cut:?}, not the 10 s header timeout"
    );
    assert_eq!(idle_first, Some(200));
    assert!(
        idle_closed >= Duration::from_millis(19_500) && idle_closed < Duration::from_secs(24),
        "an idle connection was closed after {idle_closed:?}, not the 20 s idle timeout"
    );
    running.shutdown(Duration::from_secs(1)).await;
}

/// With short clocks (500 ms header, 3 s idle), a slowloris on a kept-alive
/// connection is cut at the header timeout counted from its first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_after_an_idle_spell_are_cut_at_the_header_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = issue(&tmp.path().join("c"), None);
    let running = start(&dir.join("tls.crt"), &dir.join("tls.key")).await;
    let (addr, ca) = (running.addr, dir.clone());
    let (first, second, cut) = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut conn = net::tls_connect(addr, &ca, &[]).unwrap();
        let first = review_on(&mut conn);
        std::thread::sleep(Duration::from_millis(1_500));
        let second = review_on(&mut conn);
        std::thread::sleep(Duration::from_millis(1_000));
        // A byte every 100 ms, never finishing the header; the read between
        // bytes waits 100 ms for the server to close.
        conn.sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let mut cut = None;
        for b in b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().cycle().take(60) {
            let _ = conn.write_all(&[*b]).and_then(|_| conn.flush());
            match std::io::Read::read(&mut conn, &mut buf) {
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                _ => {
                    cut = Some(started.elapsed());
                    break;
                }
            }
        }
        (first, second, cut)
    })
    .await
    .unwrap();
    assert_eq!(first, Some(200));
    assert_eq!(second, Some(200), "a connection idle for 3x the header timeout was closed");
    let cut = cut.expect("a slowloris kept the connection open for 6 s");
    assert!(cut < Duration::from_secs(2), "a slowloris held the connection for {cut:?}");
    running.shutdown(Duration::from_secs(1)).await;
}
