//! The control plane (started and stopped with tests/e2e/control-plane.sh), kubectl, and the
//! work folder that holds their files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder for the run: certificates, logs, the control plane's data. Removed when
/// the test passes; kept (and its path printed) when it fails or `SYSBOX_RO_E2E_KEEP=1`.
pub struct WorkDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    pub keep: bool,
}

impl WorkDir {
    pub fn new() -> WorkDir {
        let dir =
            tempfile::Builder::new().prefix("sysbox-ro-e2e.").tempdir().expect("cannot create a temporary folder");
        let path = dir.path().to_path_buf();
        let keep = std::env::var("SYSBOX_RO_E2E_KEEP").is_ok_and(|v| v == "1");
        WorkDir { dir: Some(dir), path, keep }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep || std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("e2e: kept the work folder (logs, certificates) at {}", kept.display());
            }
        }
    }
}

/// The folder with etcd, kube-apiserver and kubectl: `SYSBOX_RO_CONTROL_PLANE_BIN` or
/// `CONTROL_PLANE_BIN`, else whatever tests/e2e/build-control-plane.sh builds or finds in its
/// cache (a cold build takes minutes; tests/e2e/run.sh does it before the tests start).
pub fn control_plane_bin() -> PathBuf {
    for var in ["SYSBOX_RO_CONTROL_PLANE_BIN", "CONTROL_PLANE_BIN"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let bin = PathBuf::from(v);
            for exe in ["etcd", "kube-apiserver", "kubectl"] {
                assert!(bin.join(exe).is_file(), "{var}={} has no {exe}", bin.display());
            }
            return bin;
        }
    }
    let script = repo_root().join("tests/e2e/build-control-plane.sh");
    eprintln!("e2e: {} (reuses its cache; a cold build takes minutes)", script.display());
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed ({})", script.display(), out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim();
    assert!(!last.is_empty(), "{} printed no bin folder", script.display());
    PathBuf::from(last)
}

/// etcd and kube-apiserver on loopback, stopped on drop (and by the script's watchdog if this
/// process dies without unwinding).
pub struct ControlPlane {
    dir: PathBuf,
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub apiserver_url: String,
    pub ca_file: PathBuf,
}

fn script() -> PathBuf {
    repo_root().join("tests/e2e/control-plane.sh")
}

impl ControlPlane {
    pub fn start(dir: &Path, bin: &Path) -> ControlPlane {
        let mut cp = ControlPlane {
            dir: dir.to_path_buf(),
            bin: bin.to_path_buf(),
            kubeconfig: dir.join("kubeconfig"),
            apiserver_url: String::new(),
            ca_file: PathBuf::new(),
        };
        // The guard exists before the start: `stop` also cleans up after a failed start.
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir)
            .env("CONTROL_PLANE_BIN", bin)
            .env("CONTROL_PLANE_OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("cannot run control-plane.sh");
        assert!(
            out.status.success(),
            "control-plane.sh start failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.join("control-plane.env")).expect("control-plane.env");
        for line in env.lines() {
            match line.split_once('=') {
                Some(("APISERVER_URL", v)) => cp.apiserver_url = v.to_owned(),
                Some(("CA_FILE", v)) => cp.ca_file = PathBuf::from(v),
                Some(("KUBECONFIG", v)) => cp.kubeconfig = PathBuf::from(v),
                _ => {}
            }
        }
        assert!(cp.apiserver_url.starts_with("https://127.0.0.1:"), "control-plane.env: {env}");
        cp
    }

    pub fn kubectl(&self) -> Kubectl {
        Kubectl { exe: self.bin.join("kubectl"), kubeconfig: self.kubeconfig.clone() }
    }

    pub fn apiserver_log(&self) -> PathBuf {
        self.dir.join("logs/kube-apiserver.log")
    }

    /// Runs a control-plane.sh sub-command on this control plane (`stop-apiserver`,
    /// `start-apiserver`, with an optional apiserver name) and returns its stdout, trimmed.
    pub fn control(&self, command: &str, name: Option<&str>) -> String {
        let out = Command::new("bash")
            .arg(script())
            .arg(command)
            .arg(&self.dir)
            .args(name)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run control-plane.sh");
        assert!(
            out.status.success(),
            "control-plane.sh {command} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Output to a file, not a pipe: if this process is killed while `stop` runs, a pipe
        // would kill `stop` with SIGPIPE halfway (its watchdog already gone) and leak etcd.
        let log_path = self.dir.join("logs/stop.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path);
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("stop").arg(&self.dir).stdin(Stdio::null());
        if let Ok(log) = log {
            if let Ok(dup) = log.try_clone() {
                cmd.stdout(dup).stderr(log);
            }
        }
        match cmd.status() {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("e2e: control-plane.sh stop exited {status}; see {}", log_path.display()),
            Err(e) => eprintln!("e2e: cannot run control-plane.sh stop: {e}"),
        }
    }
}

/// kubectl against the test cluster.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub exe: PathBuf,
    pub kubeconfig: PathBuf,
}

/// What one kubectl run printed.
#[derive(Debug, Clone)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    fn describe(&self) -> String {
        format!("`{}` exited {}\nstdout:\n{}\nstderr:\n{}", self.command, self.status, self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn expect_ok(self) -> Run {
        assert!(self.success(), "expected success: {}", self.describe());
        self
    }

    #[track_caller]
    pub fn expect_failure(self) -> Run {
        assert!(!self.success(), "expected a failure: {}", self.describe());
        self
    }

    /// The lines kubectl printed as `Warning: ...` (the apiserver's warning headers).
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr.lines().filter_map(|l| l.strip_prefix("Warning: ")).collect()
    }

    #[track_caller]
    pub fn expect_no_warning(self) -> Run {
        assert!(self.warnings().is_empty(), "expected no warning: {}", self.describe());
        self
    }

    #[track_caller]
    pub fn expect_warning(self, text: &str) -> Run {
        assert!(self.warnings().contains(&text), "expected the warning {text:?}: {}", self.describe());
        self
    }

    #[track_caller]
    pub fn expect_stderr(self, parts: &[&str]) -> Run {
        for part in parts {
            assert!(self.stderr.contains(part), "expected {part:?} in stderr: {}", self.describe());
        }
        self
    }

    /// stdout as JSON (`-o json`).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }

    /// stdout as YAML (`-o yaml`), converted to JSON values.
    #[track_caller]
    pub fn yaml(&self) -> Value {
        let y: serde_norway::Value =
            serde_norway::from_str(&self.stdout).unwrap_or_else(|e| panic!("not YAML ({e}): {}", self.describe()));
        serde_json::to_value(y).expect("YAML converts to JSON")
    }
}

impl Kubectl {
    /// Runs kubectl with `args`, feeding `stdin` (a manifest) when given.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).arg("--request-timeout=30s").args(args);
        cmd.env_remove("KUBECONFIG").env("NO_COLOR", "1");
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let command = format!("kubectl {}", args.join(" "));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.exe.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes()).expect("write kubectl stdin");
        }
        let out = child.wait_with_output().expect("wait for kubectl");
        Run {
            command,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl apply -f -` of one object (or a List).
    pub fn apply(&self, object: &Value) -> Run {
        self.run(&["apply", "-f", "-"], Some(&object.to_string()))
    }

    /// `kubectl apply --dry-run=server -o json -f -`: what the apiserver would store.
    pub fn dry_run(&self, object: &Value) -> Run {
        self.run(&["apply", "--dry-run=server", "-o", "json", "-f", "-"], Some(&object.to_string()))
    }

    /// `kubectl get ... -o json`, which must succeed.
    #[track_caller]
    pub fn get(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        self.run(&all, None).expect_ok().json()
    }

    /// Whether `kubectl get KIND NAME -n NS` finds the object.
    #[track_caller]
    pub fn exists(&self, ns: &str, kind: &str, name: &str) -> bool {
        let run = self.run(&["get", kind, name, "-n", ns, "-o", "name", "--ignore-not-found"], None).expect_ok();
        !run.stdout.trim().is_empty()
    }
}
