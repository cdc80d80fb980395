//! The node agent under test: the real `sysbox-ro-webhook agent` binary reading a fake host root
//! whose pid file names a real process, `examples/sysbox_mgr_stand_in.rs`, copied to
//! `<root>/usr/bin/sysbox-mgr` so that the kernel calls it `sysbox-mgr` and shows the command line
//! it was started with. `<root>/proc` is a link to the real `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::{repo_root, Kubectl};
use super::webhook::{free_port, http_get, EXE};
use super::{poll, tail};

/// The stand-in, built next to the binary under test (same profile). tests/e2e/run.sh builds it
/// before the tests; it is built here only when missing or older than its source.
fn stand_in_exe() -> PathBuf {
    let bin_dir = Path::new(EXE).parent().expect("the binary's folder");
    let exe = bin_dir.join("examples/sysbox_mgr_stand_in");
    let source = repo_root().join("examples/sysbox_mgr_stand_in.rs");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&exe).is_some() && modified(&exe) >= modified(&source) {
        return exe;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root()).args(["build", "--locked", "--example", "sysbox_mgr_stand_in"]);
    if bin_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run cargo build --example sysbox_mgr_stand_in");
    assert!(
        out.status.success(),
        "cargo build --example sysbox_mgr_stand_in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exe.is_file(), "{} was not built", exe.display());
    exe
}

/// A host root: `proc` (the real one), `usr/bin/sysbox-mgr`, the unit and the install state.
pub struct FakeHost {
    pub root: PathBuf,
}

pub const UNIT: &str = "/lib/systemd/system/sysbox-mgr.service";
pub const PID_FILE: &str = "/run/sysbox/sysmgr.pid";

impl FakeHost {
    pub fn new(root: &Path) -> FakeHost {
        std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir usr/bin");
        std::fs::create_dir_all(root.join("run/sysbox")).expect("mkdir run/sysbox");
        std::os::unix::fs::symlink("/proc", root.join("proc")).expect("link proc");
        std::fs::copy(stand_in_exe(), root.join("usr/bin/sysbox-mgr")).expect("copy the stand-in");
        let host = FakeHost { root: root.to_path_buf() };
        host.write("/var/lib/sysbox-deploy-k8s/sysbox_installed_version", "0.6.7\n");
        host
    }

    pub fn write(&self, host_path: &str, text: &str) {
        let p = self.root.join(host_path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write a host file");
    }

    /// The unit as sysbox-deploy-k8s writes it, with `flags` pasted after the program.
    pub fn unit(&self, flags: &str) {
        self.write(
            UNIT,
            &format!(
                "[Unit]\nDescription=sysbox-mgr (part of the Sysbox container runtime)\nPartOf=sysbox.service\n\n\
                 [Service]\nType=notify\nExecStart=/usr/bin/sysbox-mgr {flags} --disable-inner-image-preload\n\
                 TimeoutStartSec=45\nTimeoutStopSec=90\nRestart=on-failure\n"
            ),
        );
    }

    pub fn pid_file(&self) -> PathBuf {
        self.root.join(PID_FILE.trim_start_matches('/'))
    }

    /// Starts `<root>/usr/bin/sysbox-mgr ARGS` and waits for its pid file.
    pub fn start_mgr(&self, args: &[&str]) -> StandIn {
        let child = Command::new(self.root.join("usr/bin/sysbox-mgr"))
            .args(args)
            .env("STAND_IN_PID_FILE", self.pid_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sysbox-mgr stand-in");
        let pid = child.id();
        let written = poll(Duration::from_secs(10), Duration::from_millis(20), || {
            let text = std::fs::read_to_string(self.pid_file()).ok()?;
            (text.trim() == pid.to_string()).then_some(())
        });
        assert!(written.is_some(), "the stand-in did not write its pid file");
        StandIn { child, pid }
    }
}

/// A running stand-in sysbox-mgr.
pub struct StandIn {
    child: Child,
    pub pid: u32,
}

impl StandIn {
    /// SIGTERM: it removes its pid file and exits, as sysbox-mgr's `Stop` does.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let _ = self.child.wait();
    }

    /// SIGKILL: the pid file stays behind, naming a process that is gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kubeconfig that authenticates with `token` (no client certificate).
pub fn token_kubeconfig(path: &Path, server: &str, ca_file: &Path, token: &str) {
    let ca = std::fs::read(ca_file).expect("read the apiserver CA");
    let ca_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca);
    let kc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{ "name": "e2e", "cluster": { "server": server, "certificate-authority-data": ca_b64 } }],
        "users": [{ "name": "agent", "user": { "token": token } }],
        "contexts": [{ "name": "agent", "context": { "cluster": "e2e", "user": "agent" } }],
        "current-context": "agent"
    });
    std::fs::write(path, kc.to_string()).expect("write the agent's kubeconfig");
}

/// The agent's objects of the default install (namespace, ServiceAccount, RBAC, policy), as
/// `kubectl kustomize deploy/overlays/cert-manager` renders them, without the DaemonSet.
pub fn rendered_agent_objects(kubectl: &Kubectl) -> Value {
    let overlay = repo_root().join("deploy/overlays/cert-manager");
    let run = kubectl.run(&["kustomize", overlay.to_str().expect("utf-8 path")], None).expect_ok();
    let mut items = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&run.stdout) {
        let y: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("kustomize output is YAML");
        let v = serde_json::to_value(y).expect("YAML converts to JSON");
        let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if name.starts_with("sysbox-ro-agent") && v["kind"] != "DaemonSet" {
            items.push(v);
        }
    }
    assert!(items.len() >= 6, "the default install has the agent's objects: {items:?}");
    json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

/// A running `sysbox-ro-webhook agent`, stopped on drop.
pub struct Agent {
    child: Child,
    pub admin_port: u16,
    pub log: PathBuf,
    pidfile: PathBuf,
}

impl Agent {
    pub fn start(kubeconfig: &Path, node: &str, host: &FakeHost, interval: &str, logs: &Path, run: &Path) -> Agent {
        let admin_port = free_port();
        let log = logs.join(format!("agent-{node}.log"));
        let log_file = std::fs::File::create(&log).expect("create the agent log");
        let mut cmd = Command::new(EXE);
        cmd.arg("agent")
            .arg("--node-name")
            .arg(node)
            .arg("--host-root")
            .arg(&host.root)
            .args(["--interval", interval])
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{admin_port}"))
            .arg("--kubeconfig")
            .arg(kubeconfig);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SYSBOXRO_") || key == "NODE_NAME" {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("KUBECONFIG").env("SYSBOXRO_LOG", "info");
        cmd.stdin(Stdio::null()).stdout(log_file.try_clone().expect("dup log")).stderr(log_file);
        let mut child = cmd.spawn().expect("spawn sysbox-ro-webhook agent");
        // The webhook watchdog stops every process of this binary listed as run/webhook-*.pid.
        let pidfile = run.join(format!("webhook-agent-{}.pid", child.id()));
        std::fs::write(&pidfile, child.id().to_string()).expect("write the agent pid file");
        let up = poll(Duration::from_secs(20), Duration::from_millis(50), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the agent exited with {status}:\n{}", tail(&log, 30));
            }
            matches!(http_get(admin_port, "/healthz"), Ok((200, _))).then_some(())
        });
        assert!(up.is_some(), "the agent's /healthz did not answer:\n{}", tail(&log, 30));
        Agent { child, admin_port, log, pidfile }
    }

    #[track_caller]
    pub fn metrics(&self) -> String {
        match http_get(self.admin_port, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics of the agent: {other:?}\n{}", tail(&self.log, 20)),
        }
    }

    /// SIGTERM; the agent must exit 0 within 10 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = poll(Duration::from_secs(10), Duration::from_millis(50), || self.child.try_wait().ok().flatten());
        let _ = std::fs::remove_file(&self.pidfile);
        match status {
            Some(s) => assert!(s.success(), "the agent exited with {s} after SIGTERM:\n{}", tail(&self.log, 20)),
            None => panic!("the agent ignored SIGTERM for 10 s"),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}
