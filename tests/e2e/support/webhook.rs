//! The webhook under test: the real `sysbox-ro-webhook serve` binary, its certificates in a
//! folder laid out like a Kubernetes Secret volume, its admin port, and a watchdog that stops it
//! if the test process dies without unwinding.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{poll, tail};

pub const EXE: &str = env!("CARGO_BIN_EXE_sysbox-ro-webhook");

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// The serving certificate, in a folder laid out as the kubelet lays out a Secret volume:
/// `tls.crt -> ..data/tls.crt`, `..data -> ..<version>`. A rotation writes a new version folder
/// and swaps `..data` with a rename, as the kubelet's atomic writer does.
pub struct ServingCerts {
    pub volume: PathBuf,
    issued: PathBuf,
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
    /// base64 of ca.crt, printed by `certs`: the MutatingWebhookConfiguration's caBundle.
    pub ca_bundle: String,
    version: u32,
}

fn run_certs(args: &[&str], out: &Path) -> String {
    let output = Command::new(EXE)
        .arg("certs")
        .args(args)
        .arg("--out")
        .arg(out)
        .args(["--ip", "127.0.0.1", "--days", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("run sysbox-ro-webhook certs");
    assert!(output.status.success(), "sysbox-ro-webhook certs failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl ServingCerts {
    /// A new CA and a first serving certificate (SAN 127.0.0.1) from `certs`.
    pub fn new(root: &Path) -> ServingCerts {
        let issued = root.join("issued");
        let first = issued.join("1");
        let ca_bundle = run_certs(&[], &first);
        let volume = root.join("tls");
        std::fs::create_dir_all(&volume).expect("mkdir tls");
        let mut certs = ServingCerts {
            volume,
            issued,
            ca_cert: first.join("ca.crt"),
            ca_key: first.join("ca.key"),
            ca_bundle,
            version: 0,
        };
        certs.publish(&first);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), certs.volume.join(name)).expect("symlink");
        }
        certs
    }

    pub fn cert_path(&self) -> PathBuf {
        self.volume.join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.volume.join("tls.key")
    }

    /// Issues a new serving certificate from the same CA (`certs --ca-cert --ca-key`, so the
    /// caBundle stays) and swaps it in. Returns the new certificate's DER.
    pub fn rotate(&mut self) -> Vec<u8> {
        let next = self.issued.join((self.version + 1).to_string());
        let ca_cert = self.ca_cert.to_str().expect("utf-8 path").to_owned();
        let ca_key = self.ca_key.to_str().expect("utf-8 path").to_owned();
        run_certs(&["--ca-cert", &ca_cert, "--ca-key", &ca_key, "--force"], &next);
        self.publish(&next);
        first_cert_der(&self.cert_path())
    }

    /// Copies `issued/tls.*` into `..vN` and points `..data` at it atomically; the previous
    /// version folder is removed afterwards, as the kubelet does.
    fn publish(&mut self, issued: &Path) {
        let old = self.version;
        self.version += 1;
        let dir_name = format!("..v{}", self.version);
        let dir = self.volume.join(&dir_name);
        std::fs::create_dir(&dir).expect("mkdir version folder");
        for name in ["tls.crt", "tls.key"] {
            std::fs::copy(issued.join(name), dir.join(name)).expect("copy certificate");
        }
        let tmp = self.volume.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&dir_name, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, self.volume.join("..data")).expect("rename ..data_tmp over ..data");
        if old > 0 {
            std::fs::remove_dir_all(self.volume.join(format!("..v{old}"))).expect("remove old version folder");
        }
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_cert).expect("read ca.crt")
    }
}

/// The DER of the first certificate in a PEM file.
pub fn first_cert_der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let cert = CertificateDer::pem_slice_iter(&pem).next().expect("a PEM certificate").expect("valid PEM");
    cert.to_vec()
}

/// A TLS connection to `port` verified against `ca_pem` for the name 127.0.0.1 (what the
/// apiserver does with `clientConfig.url` and `caBundle`), handshake done, reads timing out
/// after `read_timeout`.
pub fn tls_to(
    port: u16,
    ca_pem: &[u8],
    read_timeout: Duration,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(read_timeout)).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// Connects to `port` over TLS as [`tls_to`] does and returns the leaf certificate served.
pub fn served_certificate(port: u16, ca_pem: &[u8]) -> Result<Vec<u8>, String> {
    let mut tls = tls_to(port, ca_pem, Duration::from_secs(5))?;
    let leaf = tls.conn.peer_certificates().and_then(|c| c.first()).ok_or("no peer certificate")?.to_vec();
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(leaf)
}

/// The client ports of the established IPv4 connections to `port` on this machine (for the
/// webhook's port: the apiserver's connections to it, and any probe of ours still open).
pub fn connections_to(port: u16) -> std::collections::BTreeSet<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let hex_port = |addr: &str| addr.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
            // 01: ESTABLISHED
            (*state == "01" && hex_port(local)? == port).then(|| hex_port(remote)).flatten()
        })
        .collect()
}

/// A plain HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut sock = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(2))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(sock, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = String::new();
    sock.read_to_string(&mut raw)?;
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Sums the samples of metric `name` whose labels include every `label="value"` pair given.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(p) => p,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        if labels.iter().all(|(k, v)| label_text.split(',').any(|pair| pair == format!("{k}=\"{v}\""))) {
            sum += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    sum
}

/// How a webhook process is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookArgs {
    pub steer: bool,
    /// `--audit-interval` in seconds: the audit on a timer.
    pub audit_interval: Option<u32>,
}

/// A running `sysbox-ro-webhook serve`, stopped on drop.
pub struct Webhook {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub args: WebhookArgs,
    pub log: PathBuf,
    pidfile: PathBuf,
}

impl Webhook {
    /// Starts the webhook watching the live cluster through `kubeconfig` and waits until its
    /// `/readyz` says the listener is up and the cluster view synced. `port` keeps the webhook
    /// URL of an earlier process (the registered configuration points at it); without it, free
    /// ports are picked (and picked again if another process takes one first).
    pub fn start(
        kubeconfig: &Path,
        certs: &ServingCerts,
        args: WebhookArgs,
        port: Option<u16>,
        logs: &Path,
        run: &Path,
    ) -> Webhook {
        Webhook::start_within(kubeconfig, certs, args, port, logs, run, Duration::from_secs(30))
    }

    /// [`Webhook::start`], allowing `ready_within` for `/readyz` (a large cluster lists longer).
    pub fn start_within(
        kubeconfig: &Path,
        certs: &ServingCerts,
        args: WebhookArgs,
        port: Option<u16>,
        logs: &Path,
        run: &Path,
        ready_within: Duration,
    ) -> Webhook {
        std::fs::create_dir_all(logs).expect("mkdir logs");
        std::fs::create_dir_all(run).expect("mkdir run");
        let mut last_failure = String::new();
        for attempt in 1..=3 {
            let port = port.unwrap_or_else(free_port);
            let admin_port = free_port();
            let n = std::fs::read_dir(logs).map(|d| d.count()).unwrap_or(0);
            let log = logs.join(format!("webhook-{n}.log"));
            let log_file = std::fs::File::create(&log).expect("create webhook log");
            let mut cmd = Command::new(EXE);
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--admin-listen")
                .arg(format!("127.0.0.1:{admin_port}"))
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--tls-cert")
                .arg(certs.cert_path())
                .arg("--tls-key")
                .arg(certs.key_path())
                .args(["--tls-reload-interval", "0.5", "--shutdown-delay", "0", "--shutdown-grace", "2"]);
            if args.steer {
                cmd.arg("--steer");
            }
            if let Some(seconds) = args.audit_interval {
                cmd.arg("--audit-interval").arg(seconds.to_string());
            }
            // Only the flags above: no SYSBOXRO_* setting of the caller's environment leaks in.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("SYSBOXRO_") {
                    cmd.env_remove(key);
                }
            }
            cmd.env_remove("KUBECONFIG").env("SYSBOXRO_LOG", "info");
            cmd.stdin(Stdio::null()).stdout(log_file.try_clone().expect("dup log")).stderr(log_file);
            let child = cmd.spawn().expect("spawn sysbox-ro-webhook serve");
            let pidfile = run.join(format!("webhook-{}.pid", child.id()));
            std::fs::write(&pidfile, child.id().to_string()).expect("write pid file");
            let mut webhook = Webhook { child, port, admin_port, args: args.clone(), log, pidfile };
            match webhook.wait_ready(ready_within) {
                Ok(()) => return webhook,
                Err(e) => {
                    last_failure = format!("attempt {attempt}: {e}\n{}", tail(&webhook.log, 30));
                    let bind_lost = std::fs::read_to_string(&webhook.log).is_ok_and(|l| l.contains("cannot listen"));
                    drop(webhook);
                    if !bind_lost {
                        break;
                    }
                }
            }
        }
        panic!("the webhook did not become ready:\n{last_failure}");
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            match http_get(self.admin_port, "/readyz") {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => last = format!("{code} {}", body.trim()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("/readyz not ready within {within:?}: {last}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the log until `probe` finds what it looks for in it, for at most 5 s. The
    /// webhook's log is written by a thread of its own, in batches a few milliseconds after
    /// the event (and after any count the event raised), so a file read once can miss a line
    /// that is on its way.
    pub fn log_until<T>(&self, mut probe: impl FnMut(&str) -> Option<T>) -> Option<T> {
        poll(Duration::from_secs(5), Duration::from_millis(50), || {
            probe(&std::fs::read_to_string(&self.log).unwrap_or_default())
        })
    }

    /// The `/metrics` text.
    #[track_caller]
    pub fn metrics(&self) -> String {
        match http_get(self.admin_port, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics: {other:?}"),
        }
    }

    /// AdmissionReviews answered for objects of `kind`, any verdict.
    pub fn requests(&self, kind: &str) -> f64 {
        metric_sum(&self.metrics(), "sysbox_ro_admission_requests_total", &[("kind", kind)])
    }

    /// SIGTERM (a graceful drain), then SIGKILL if it has not exited within 10 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = std::fs::remove_file(&self.pidfile);
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let exited = poll(Duration::from_secs(10), Duration::from_millis(50), || {
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_none() {
            eprintln!("e2e: webhook {} ignored SIGTERM for 10s; killing it", self.child.id());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Stops every webhook listed in `run/webhook-*.pid` once the test process is gone, for the
/// case where it dies without unwinding (SIGKILL, abort). Stopped itself on drop.
pub struct Watchdog {
    child: Child,
}

impl Watchdog {
    pub fn start(run: &Path, logs: &Path) -> Watchdog {
        std::fs::create_dir_all(run).expect("mkdir run");
        std::fs::create_dir_all(logs).expect("mkdir logs");
        let log = std::fs::File::create(logs.join("webhook-watchdog.log")).expect("create watchdog log");
        let script = r#"
            owner=$1 run=$2 exe=$3
            while kill -0 "$owner" 2>/dev/null; do sleep 1; done
            echo "owner $owner is gone; stopping the webhooks it started"
            for f in "$run"/webhook-*.pid; do
              [ -f "$f" ] || continue
              pid=$(cat "$f")
              running=$(readlink "/proc/$pid/exe" 2>/dev/null)
              case "${running% (deleted)}" in
                "$exe") kill -TERM "$pid"; echo "stopped $pid" ;;
              esac
              rm -f "$f"
            done
        "#;
        let exe = std::fs::canonicalize(EXE).expect("canonical webhook path");
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("webhook-watchdog")
            .arg(std::process::id().to_string())
            .arg(run)
            .arg(exe)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn the webhook watchdog");
        Watchdog { child }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
