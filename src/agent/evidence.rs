//! What a node's sysbox-mgr really runs with, read from the host's files.
//!
//! The ground truth is the running process: sysbox-mgr writes its pid to `/run/sysbox/sysmgr.pid`
//! (`sysboxMgrPidFile` in sysbox-mgr's `main.go`), and the kernel shows its command line,
//! NUL-separated, in `/proc/<pid>/cmdline`. A pid file can outlive its process (sysbox-mgr killed
//! with SIGKILL never removes it) and the pid can be reused by another process, so the process is
//! believed to be sysbox-mgr only when its `comm` says so and its executable (`/proc/<pid>/exe`)
//! is a file named `sysbox-mgr`. What is configured but maybe not running yet is the `ExecStart`
//! of the `sysbox-mgr.service` unit as systemd resolves it (unit file plus drop-ins); a
//! difference between the two is a pending restart. See docs/agent.md for the sources.
//!
//! [`observe`] does blocking file I/O and must run off the async runtime.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::host::{self, ReadError, Resolved};

/// sysbox-mgr's pid file, as the host sees it.
pub const PID_FILE: &str = "/run/sysbox/sysmgr.pid";
/// Where sysbox-deploy-k8s records the Sysbox version it installed.
pub const VERSION_FILE: &str = "/var/lib/sysbox-deploy-k8s/sysbox_installed_version";
/// The unit that starts sysbox-mgr.
pub const UNIT: &str = "sysbox-mgr.service";
/// systemd's search path for system units, highest precedence first (systemd.unit(5), "Unit File
/// Load Path"); `/lib/systemd/system` is where Debian and Ubuntu packages (and sysbox-deploy-k8s)
/// put units, the same folder as `/usr/lib/systemd/system` on merged-/usr systems.
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// Drop-in folders that apply to `sysbox-mgr.service`, least specific first: every service
/// (`service.d`), units whose name starts `sysbox-` (`sysbox-.service.d`) and the unit itself
/// (systemd.unit(5), "drop-in" directories and prefix drop-ins, systemd 246 and later).
pub const DROP_IN_DIRS: &[&str] = &["service.d", "sysbox-.service.d", "sysbox-mgr.service.d"];

/// The name the kernel gives sysbox-mgr (`comm`, the executable's base name).
pub const PROCESS_NAME: &str = "sysbox-mgr";

/// Size limits of what is read from the host.
pub mod limits {
    /// A pid file holds a decimal pid and a newline.
    pub const PID_FILE: usize = 32;
    /// `comm` is at most 16 bytes (TASK_COMM_LEN) plus a newline.
    pub const COMM: usize = 64;
    /// The part of the command line that is parsed; a longer one makes the flag unknown.
    pub const CMDLINE: usize = 128 * 1024;
    /// `/proc/<pid>/status`.
    pub const STATUS: usize = 16 * 1024;
    /// The target of `/proc/<pid>/exe`.
    pub const EXE: usize = 4096;
    /// One unit file or drop-in.
    pub const UNIT_FILE: usize = 64 * 1024;
    /// Drop-in files considered per folder and in all.
    pub const DROP_INS: usize = 64;
    /// The installed-version file.
    pub const VERSION_FILE: usize = 256;
    /// Bytes of raw arguments kept in the evidence (Node annotations share 256 KiB in all).
    pub const EVIDENCE_ARGS: usize = 4096;
}

/// Whether sysbox-mgr runs on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// A verified sysbox-mgr process runs.
    Running,
    /// No sysbox-mgr runs: no pid file, or it names a process that is gone or is something else.
    Stopped,
    /// The agent could not tell (unreadable files, a timeout).
    Unknown,
}

/// One observation of a node's sysbox-mgr: published as JSON in the Node annotation
/// `sysbox-ro.dev/sysbox-mgr`. Field names are a stable, additive contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// When the agent looked (RFC 3339, UTC).
    pub observed_at: String,
    pub state: State,
    /// Why the state is not `running`, or why the flag is unknown although it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How the process was recognised as sysbox-mgr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
    /// `--relaxed-read-only` of the running process as sysbox-mgr's own flag parsing reads it;
    /// absent when unknown (not running, unreadable, a command line the parser cannot follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaxed_read_only: Option<bool>,
    /// The running process's arguments after the program name (at most 4 KiB of them).
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_truncated: bool,
    /// What the systemd unit would start next time.
    pub configured: Configured,
    /// The running flag differs from the configured one: a restart of sysbox-mgr would change it.
    pub restart_pending: bool,
    /// From sysbox-deploy-k8s's install state, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysbox_version: Option<String>,
    /// Things the agent could not read or make sense of, for people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The sysbox-mgr command line the systemd unit configures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configured {
    /// The unit file used (host path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Drop-ins applied, in order (host paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_ins: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaxed_read_only: Option<bool>,
    /// sysbox-mgr would exit at start with this command line (an unknown flag, a bad value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_not_start: Option<String>,
    /// Why the configured flag is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Evidence {
    /// The node label value this evidence supports: the running process's flag, or none.
    pub fn label(&self) -> Option<bool> {
        match self.state {
            State::Running => self.relaxed_read_only,
            State::Stopped | State::Unknown => None,
        }
    }

    /// The evidence as JSON without `observedAt`: two observations that agree on everything else
    /// have the same fingerprint, and the agent writes only when the fingerprint changes.
    pub fn fingerprint(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = v.as_object_mut() {
            map.remove("observedAt");
        }
        v
    }

    /// Evidence for an observation that could not finish (a read that hung).
    pub fn unknown(observed_at: String, reason: String) -> Evidence {
        Evidence {
            observed_at,
            state: State::Unknown,
            reason: Some(reason),
            pid: None,
            verified_by: None,
            relaxed_read_only: None,
            args: Vec::new(),
            args_truncated: false,
            configured: Configured::default(),
            restart_pending: false,
            sysbox_version: None,
            problems: Vec::new(),
        }
    }
}

/// A problem met while observing, with a stable reason for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `pid_file_missing`, `pid_file_invalid`, `process_gone`, `not_sysbox_mgr`,
    /// `proc_unreadable`, `cmdline_unparsable`, `unit_missing`, `unit_unreadable`,
    /// `unit_unparsable`, `version_unreadable`, `host_unreadable`.
    pub reason: &'static str,
    pub message: String,
}

/// What one observation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub evidence: Evidence,
    pub problems: Vec<Problem>,
}

/// What the flag parser and systemd's command-line rules make of a command line: the two
/// questions the agent asks of `crate::sysbox`.
pub trait Interpreter {
    /// `Ok(flag)` when sysbox-mgr would start with these arguments (after the program name),
    /// `Err(reason)` when it would exit at start.
    fn relaxed_read_only(&self, args: &[String]) -> Result<bool, String>;
    /// The effective `ExecStart` argv (program first) of a unit and its drop-ins, in order.
    fn exec_start(&self, unit: &str, drop_ins: &[String]) -> Result<Vec<String>, String>;
}

/// Reads everything under `root` (the host's `/`, e.g. `/host`) and returns the evidence.
/// Blocking.
pub fn observe(root: &Path, observed_at: String, sysbox: &dyn Interpreter) -> Observation {
    let mut problems = Vec::new();
    let process = read_process(root, &mut problems);
    let mut evidence = Evidence::unknown(observed_at, String::new());
    evidence.reason = None;
    match process {
        ProcessState::Running { pid, verified_by, args, truncated } => {
            evidence.state = State::Running;
            evidence.pid = Some(pid);
            evidence.verified_by = Some(verified_by);
            let (kept, cut) = bounded_args(&args);
            evidence.args = kept;
            evidence.args_truncated = cut || truncated;
            if truncated {
                let message = format!("the command line of pid {pid} is longer than {} bytes", limits::CMDLINE);
                evidence.reason = Some(format!("{message}; the flag cannot be read"));
                problems.push(Problem { reason: "cmdline_unparsable", message });
            } else {
                match sysbox.relaxed_read_only(&args) {
                    Ok(flag) => evidence.relaxed_read_only = Some(flag),
                    Err(why) => {
                        let message = format!(
                            "the running sysbox-mgr's command line is one sysbox-mgr would refuse ({why}); \
                             the flag is unknown"
                        );
                        evidence.reason = Some(message.clone());
                        problems.push(Problem { reason: "cmdline_unparsable", message });
                    }
                }
            }
        }
        ProcessState::Stopped { pid, why } => {
            evidence.state = State::Stopped;
            evidence.pid = pid;
            evidence.reason = Some(why);
        }
        ProcessState::Unknown { pid, why } => {
            evidence.state = State::Unknown;
            evidence.pid = pid;
            evidence.reason = Some(why);
        }
    }
    evidence.configured = read_configured(root, sysbox, &mut problems);
    evidence.restart_pending = evidence.state == State::Running
        && evidence.relaxed_read_only.is_some()
        && (evidence.configured.would_not_start.is_some()
            || (evidence.configured.relaxed_read_only.is_some()
                && evidence.configured.relaxed_read_only != evidence.relaxed_read_only));
    evidence.sysbox_version = read_version(root, &mut problems);
    evidence.problems = problems.iter().map(|p| p.message.clone()).collect();
    Observation { evidence, problems }
}

/// The pid in the pid file, if it holds one; cheap enough to poll every second.
pub fn read_pid(root: &Path) -> Result<Option<u32>, String> {
    match read_host(root, PID_FILE, limits::PID_FILE) {
        Ok(Some(bytes)) => parse_pid(&bytes).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

enum ProcessState {
    Running { pid: u32, verified_by: String, args: Vec<String>, truncated: bool },
    Stopped { pid: Option<u32>, why: String },
    Unknown { pid: Option<u32>, why: String },
}

fn read_process(root: &Path, problems: &mut Vec<Problem>) -> ProcessState {
    let mut problem = |reason: &'static str, message: String| {
        problems.push(Problem { reason, message: message.clone() });
        message
    };
    let pid = match read_host(root, PID_FILE, limits::PID_FILE) {
        Ok(Some(bytes)) => match parse_pid(&bytes) {
            Ok(pid) => pid,
            Err(e) => {
                return ProcessState::Unknown { pid: None, why: problem("pid_file_invalid", e) };
            }
        },
        Ok(None) => {
            let why = format!("{PID_FILE} does not exist: sysbox-mgr is not running");
            return ProcessState::Stopped { pid: None, why: problem("pid_file_missing", why) };
        }
        Err(e) => {
            let why = format!("cannot read the pid file: {e}");
            return ProcessState::Unknown { pid: None, why: problem("host_unreadable", why) };
        }
    };
    let proc_dir = root.join("proc").join(pid.to_string());
    let gone = |p: &mut dyn FnMut(&'static str, String) -> String| ProcessState::Stopped {
        pid: Some(pid),
        why: p("process_gone", format!("{PID_FILE} names pid {pid}, which is not running (a stale pid file)")),
    };
    let comm = match host::read_regular(&proc_dir.join("comm"), limits::COMM, false) {
        Ok(b) => String::from_utf8_lossy(&b.data).trim_end_matches('\n').to_owned(),
        Err(e) if e.is_missing() => return gone(&mut problem),
        Err(e) => {
            let why = format!("cannot read /proc/{pid}/comm: {}", strip_root(root, &e.to_string()));
            return ProcessState::Unknown { pid: Some(pid), why: problem("proc_unreadable", why) };
        }
    };
    if comm != PROCESS_NAME {
        let why = format!("{PID_FILE} names pid {pid}, which is {comm:?}, not sysbox-mgr (a stale pid file)");
        return ProcessState::Stopped { pid: Some(pid), why: problem("not_sysbox_mgr", why) };
    }
    let cmdline = match host::read_regular(&proc_dir.join("cmdline"), limits::CMDLINE, true) {
        Ok(b) => b,
        Err(e) if e.is_missing() => return gone(&mut problem),
        Err(e) => {
            let why = format!("cannot read /proc/{pid}/cmdline: {}", strip_root(root, &e.to_string()));
            return ProcessState::Unknown { pid: Some(pid), why: problem("proc_unreadable", why) };
        }
    };
    if cmdline.data.is_empty() {
        // A zombie (or a kernel thread) has no command line: it no longer serves anything.
        let why = format!("pid {pid} has exited (it has no command line left)");
        return ProcessState::Stopped { pid: Some(pid), why: problem("process_gone", why) };
    }
    let mut argv = split_cmdline(&cmdline.data);
    let verified_by = match host::read_link(&proc_dir.join("exe"), limits::EXE) {
        Ok(target) => {
            // After an upgrade replaced the binary, the link ends in " (deleted)".
            let path = target.strip_suffix(" (deleted)").unwrap_or(&target);
            if base_name(path) != PROCESS_NAME {
                let why = format!("{PID_FILE} names pid {pid}, which runs {path}, not sysbox-mgr (a stale pid file)");
                return ProcessState::Stopped { pid: Some(pid), why: problem("not_sysbox_mgr", why) };
            }
            format!("comm and exe ({path})")
        }
        Err(e) if e.is_missing() => return gone(&mut problem),
        Err(e) if e.is_denied() => {
            // Reading another user's exe link (or a more privileged process's) takes
            // CAP_SYS_PTRACE; comm, cmdline and status are world-readable. A process that is not
            // sysbox-mgr would have to be root and name itself sysbox-mgr twice over.
            let argv0 = argv.first().map(String::as_str).unwrap_or_default();
            let uid = real_uid(&proc_dir);
            if base_name(argv0) != PROCESS_NAME || uid != Some(0) {
                let why = format!(
                    "{PID_FILE} names pid {pid}, whose argv[0] is {argv0:?} and uid {}, not root's sysbox-mgr \
                     (a stale pid file)",
                    uid.map_or_else(|| "unknown".to_owned(), |u| u.to_string())
                );
                return ProcessState::Stopped { pid: Some(pid), why: problem("not_sysbox_mgr", why) };
            }
            "comm, argv[0] and uid 0 (exe not readable)".to_owned()
        }
        Err(e) => {
            let why = format!("cannot read /proc/{pid}/exe: {}", strip_root(root, &e.to_string()));
            return ProcessState::Unknown { pid: Some(pid), why: problem("proc_unreadable", why) };
        }
    };
    let args = if argv.is_empty() { Vec::new() } else { argv.split_off(1) };
    ProcessState::Running { pid, verified_by, args, truncated: cmdline.truncated }
}

/// `/proc/<pid>/cmdline`: arguments each ended by a NUL. A process may have rewritten its
/// argument area (then the last one may lack its NUL); bytes that are not UTF-8 are kept as
/// replacement characters.
pub fn split_cmdline(data: &[u8]) -> Vec<String> {
    let data = data.strip_suffix(b"\0").unwrap_or(data);
    data.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn parse_pid(bytes: &host::Bytes) -> Result<u32, String> {
    let text = std::str::from_utf8(&bytes.data).map_err(|_| format!("{PID_FILE} does not hold a pid (not text)"))?;
    let t = text.trim();
    // Linux pids are 1 to 4,194,304 (PID_MAX_LIMIT).
    match t.parse::<u32>() {
        Ok(pid) if (1..=4_194_304).contains(&pid) && t.bytes().all(|b| b.is_ascii_digit()) => Ok(pid),
        _ => Err(format!("{PID_FILE} does not hold a pid: {:?}", truncate_chars(t, 32))),
    }
}

fn real_uid(proc_dir: &Path) -> Option<u32> {
    let status = host::read_regular(&proc_dir.join("status"), limits::STATUS, true).ok()?;
    let text = String::from_utf8_lossy(&status.data);
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line["Uid:".len()..].split_whitespace().next()?.parse().ok()
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Keeps the first arguments up to [`limits::EVIDENCE_ARGS`] bytes (each argument cut to that
/// too); says whether any were left out.
fn bounded_args(args: &[String]) -> (Vec<String>, bool) {
    let mut kept = Vec::new();
    let mut used = 0;
    for a in args {
        let room = limits::EVIDENCE_ARGS.saturating_sub(used);
        if room == 0 {
            return (kept, true);
        }
        if a.len() > room {
            let mut end = room;
            while !a.is_char_boundary(end) {
                end -= 1;
            }
            kept.push(a[..end].to_owned());
            return (kept, true);
        }
        used += a.len();
        kept.push(a.clone());
    }
    (kept, false)
}

/// Reads a host file (following links inside the root); `Ok(None)` when it does not exist.
fn read_host(root: &Path, host_path: &str, limit: usize) -> Result<Option<host::Bytes>, ReadError> {
    let path = match host::resolve(root, host_path)? {
        Resolved::Path(p) => p,
        Resolved::DevNull => return Ok(Some(host::Bytes { data: Vec::new(), truncated: false })),
    };
    match host::read_regular(&path, limit, false) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Error text with the agent's host-root prefix taken out, so the evidence names host paths.
fn strip_root(root: &Path, text: &str) -> String {
    let prefix = root.display().to_string();
    if prefix.is_empty() || prefix == "/" {
        return text.to_owned();
    }
    text.replace(&prefix, "")
}

/// The unit file systemd would load: the first `sysbox-mgr.service` along the search path.
/// `Ok(None)` when there is none; `Err` for a masked unit or an unreadable file.
fn find_unit(root: &Path) -> Result<Option<(String, String)>, (&'static str, String)> {
    for dir in UNIT_DIRS {
        let host_path = format!("{dir}/{UNIT}");
        match host::resolve(root, &host_path) {
            Ok(Resolved::DevNull) => {
                return Err(("unit_unparsable", format!("{host_path} is masked (a link to /dev/null)")));
            }
            Ok(Resolved::Path(path)) => match host::read_regular(&path, limits::UNIT_FILE, false) {
                Ok(b) => return Ok(Some((host_path, String::from_utf8_lossy(&b.data).into_owned()))),
                Err(e) if e.is_missing() => continue,
                Err(e) => return Err(("unit_unreadable", strip_root(root, &e.to_string()))),
            },
            Err(e) => return Err(("unit_unreadable", strip_root(root, &e.to_string()))),
        }
    }
    Ok(None)
}

/// The drop-ins systemd would apply, in the order it applies them: all `*.conf` files of the
/// drop-in folders along the search path, a file name in a folder of higher precedence hiding
/// the same name further down, sorted by file name; a drop-in linked to /dev/null is masked.
fn find_drop_ins(root: &Path) -> Result<Vec<(String, PathBuf)>, (&'static str, String)> {
    let mut chosen: std::collections::BTreeMap<String, Option<(String, PathBuf)>> = Default::default();
    for dir in UNIT_DIRS {
        // The unit's own folder first: for one file name it takes precedence over prefix folders.
        for d in DROP_IN_DIRS.iter().rev() {
            let folder = format!("{dir}/{d}");
            let resolved = match host::resolve(root, &folder) {
                Ok(Resolved::Path(p)) => p,
                Ok(Resolved::DevNull) => continue,
                Err(e) => return Err(("unit_unreadable", strip_root(root, &e.to_string()))),
            };
            let names = host::list_dir(&resolved, limits::DROP_INS)
                .map_err(|e| ("unit_unreadable", strip_root(root, &e.to_string())))?;
            for name in names.into_iter().filter(|n| n.ends_with(".conf")) {
                if chosen.contains_key(&name) {
                    continue;
                }
                let host_path = format!("{folder}/{name}");
                let entry = match host::resolve(root, &host_path) {
                    Ok(Resolved::DevNull) => None,
                    Ok(Resolved::Path(p)) => Some((host_path, p)),
                    Err(e) => return Err(("unit_unreadable", strip_root(root, &e.to_string()))),
                };
                chosen.insert(name, entry);
                if chosen.len() > limits::DROP_INS {
                    return Err(("unit_unreadable", format!("more than {} drop-ins for {UNIT}", limits::DROP_INS)));
                }
            }
        }
    }
    Ok(chosen.into_values().flatten().collect())
}

fn read_configured(root: &Path, sysbox: &dyn Interpreter, problems: &mut Vec<Problem>) -> Configured {
    let mut configured = Configured::default();
    let mut fail = |configured: &mut Configured, reason: &'static str, message: String| {
        configured.reason = Some(message.clone());
        problems.push(Problem { reason, message });
    };
    let (unit_path, unit_text) = match find_unit(root) {
        Ok(Some(found)) => found,
        Ok(None) => {
            fail(&mut configured, "unit_missing", format!("no {UNIT} unit in {}", UNIT_DIRS.join(", ")));
            return configured;
        }
        Err((reason, message)) => {
            fail(&mut configured, reason, message);
            return configured;
        }
    };
    configured.unit = Some(unit_path);
    let drop_ins = match find_drop_ins(root) {
        Ok(d) => d,
        Err((reason, message)) => {
            fail(&mut configured, reason, message);
            return configured;
        }
    };
    let mut texts = Vec::with_capacity(drop_ins.len());
    for (host_path, path) in drop_ins {
        match host::read_regular(&path, limits::UNIT_FILE, false) {
            Ok(b) => {
                texts.push(String::from_utf8_lossy(&b.data).into_owned());
                configured.drop_ins.push(host_path);
            }
            // Gone between listing and reading: systemd would not see it either.
            Err(e) if e.is_missing() => {}
            Err(e) => {
                fail(&mut configured, "unit_unreadable", strip_root(root, &e.to_string()));
                return configured;
            }
        }
    }
    let argv = match sysbox.exec_start(&unit_text, &texts) {
        Ok(argv) => argv,
        Err(why) => {
            fail(&mut configured, "unit_unparsable", format!("the ExecStart of {UNIT} cannot be read: {why}"));
            return configured;
        }
    };
    match sysbox.relaxed_read_only(argv.get(1..).unwrap_or_default()) {
        Ok(flag) => configured.relaxed_read_only = Some(flag),
        Err(why) => configured.would_not_start = Some(why),
    }
    configured
}

fn read_version(root: &Path, problems: &mut Vec<Problem>) -> Option<String> {
    let mut problem = |message: String| {
        problems.push(Problem { reason: "version_unreadable", message });
        None
    };
    match read_host(root, VERSION_FILE, limits::VERSION_FILE) {
        Ok(None) => None,
        Ok(Some(b)) => {
            let text = String::from_utf8_lossy(&b.data);
            let v = text.trim();
            let plausible = !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_' | '~'));
            if plausible {
                Some(v.to_owned())
            } else {
                problem(format!("{VERSION_FILE} does not hold a version: {:?}", truncate_chars(v, 32)))
            }
        }
        Err(e) => problem(strip_root(root, &e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::SysboxRules;

    /// A fake host root in a temporary folder.
    struct Host {
        dir: tempfile::TempDir,
    }

    impl Host {
        fn new() -> Host {
            Host { dir: tempfile::tempdir().unwrap() }
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        fn write(&self, host_path: &str, data: impl AsRef<[u8]>) -> &Host {
            let p = self.root().join(host_path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
            self
        }

        fn link(&self, host_path: &str, target: &str) -> &Host {
            let p = self.root().join(host_path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
            self
        }

        /// A process in the fake /proc: comm, NUL-separated cmdline, exe link, status.
        fn process(&self, pid: u32, comm: &str, exe: &str, argv: &[&str], uid: u32) -> &Host {
            let mut cmdline = Vec::new();
            for a in argv {
                cmdline.extend_from_slice(a.as_bytes());
                cmdline.push(0);
            }
            self.write(&format!("/proc/{pid}/comm"), format!("{comm}\n"))
                .write(&format!("/proc/{pid}/cmdline"), cmdline)
                .write(&format!("/proc/{pid}/status"), format!("Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"))
                .link(&format!("/proc/{pid}/exe"), exe)
        }

        fn mgr(&self, pid: u32, args: &[&str]) -> &Host {
            let mut argv = vec!["/usr/bin/sysbox-mgr"];
            argv.extend_from_slice(args);
            self.write(PID_FILE, format!("{pid}\n")).process(pid, "sysbox-mgr", "/usr/bin/sysbox-mgr", &argv, 0)
        }

        fn observe(&self) -> Observation {
            observe(self.root(), "2026-01-01T00:00:00Z".into(), &SysboxRules)
        }
    }

    fn reasons(o: &Observation) -> Vec<&'static str> {
        o.problems.iter().map(|p| p.reason).collect()
    }

    const UNIT: &str = "[Unit]\nDescription=sysbox-mgr\n\n[Service]\nType=notify\n\
        ExecStart=/usr/bin/sysbox-mgr --disable-inner-image-preload\nRestart=on-failure\n";

    #[test]
    fn no_pid_file_means_stopped_and_no_label() {
        let o = Host::new().observe();
        assert_eq!(o.evidence.state, State::Stopped);
        assert_eq!(o.evidence.label(), None);
        assert!(o.evidence.reason.as_deref().unwrap().contains("does not exist"), "{:?}", o.evidence.reason);
        assert!(reasons(&o).contains(&"pid_file_missing"));
    }

    #[test]
    fn running_with_and_without_the_flag() {
        let on = Host::new();
        on.mgr(4242, &["--relaxed-read-only", "--disable-inner-image-preload"]);
        let o = on.observe();
        assert_eq!(o.evidence.state, State::Running, "{:?}", o.evidence);
        assert_eq!(o.evidence.pid, Some(4242));
        assert_eq!(o.evidence.label(), Some(true));
        assert_eq!(o.evidence.args, ["--relaxed-read-only", "--disable-inner-image-preload"]);
        assert_eq!(o.evidence.verified_by.as_deref(), Some("comm and exe (/usr/bin/sysbox-mgr)"));

        let off = Host::new();
        off.mgr(7, &["--disable-inner-image-preload"]);
        assert_eq!(off.observe().evidence.label(), Some(false));

        let explicit_off = Host::new();
        explicit_off.mgr(7, &["--relaxed-read-only", "--relaxed-read-only=false"]);
        assert_eq!(explicit_off.observe().evidence.label(), Some(false), "the last mention wins");
    }

    #[test]
    fn a_stale_pid_file_is_not_believed() {
        // The pid names no process at all.
        let gone = Host::new();
        gone.write(PID_FILE, "999\n");
        let o = gone.observe();
        assert_eq!((o.evidence.state, o.evidence.pid), (State::Stopped, Some(999)));
        assert!(reasons(&o).contains(&"process_gone"));

        // The pid was reused by another program.
        let other = Host::new();
        other.write(PID_FILE, "500").process(500, "sleep", "/usr/bin/sleep", &["sleep", "1000"], 0);
        let o = other.observe();
        assert_eq!(o.evidence.state, State::Stopped);
        assert!(reasons(&o).contains(&"not_sysbox_mgr"));
        assert!(o.evidence.reason.as_deref().unwrap().contains("\"sleep\""), "{:?}", o.evidence.reason);

        // A process that calls itself sysbox-mgr but runs another executable.
        let impostor = Host::new();
        impostor.write(PID_FILE, "501").process(
            501,
            "sysbox-mgr",
            "/usr/bin/python3",
            &["sysbox-mgr", "--relaxed-read-only"],
            0,
        );
        let o = impostor.observe();
        assert_eq!(o.evidence.state, State::Stopped);
        assert_eq!(o.evidence.label(), None);
        assert!(o.evidence.reason.as_deref().unwrap().contains("/usr/bin/python3"));

        // A zombie has no command line left.
        let zombie = Host::new();
        zombie.write(PID_FILE, "502").process(502, "sysbox-mgr", "/usr/bin/sysbox-mgr", &[], 0);
        assert_eq!(zombie.observe().evidence.state, State::Stopped);
    }

    #[test]
    fn an_upgraded_binary_still_counts() {
        let h = Host::new();
        h.mgr(10, &["--relaxed-read-only"]);
        std::fs::remove_file(h.root().join("proc/10/exe")).unwrap();
        h.link("/proc/10/exe", "/usr/bin/sysbox-mgr (deleted)");
        assert_eq!(h.observe().evidence.label(), Some(true));
    }

    #[test]
    fn a_bad_pid_file_is_unknown_and_never_blocks() {
        for content in ["", "abc", "-5", "0", "12 13", "99999999999"] {
            let h = Host::new();
            h.write(PID_FILE, content);
            let o = h.observe();
            assert_eq!(o.evidence.state, State::Unknown, "{content:?}");
            assert!(reasons(&o).contains(&"pid_file_invalid"), "{content:?}");
        }
        let big = Host::new();
        big.write(PID_FILE, "1".repeat(100));
        assert_eq!(big.observe().evidence.state, State::Unknown);

        let fifo = Host::new();
        std::fs::create_dir_all(fifo.root().join("run/sysbox")).unwrap();
        let path =
            std::ffi::CString::new(fifo.root().join("run/sysbox/sysmgr.pid").into_os_string().into_encoded_bytes())
                .unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let o = fifo.observe();
        assert_eq!(o.evidence.state, State::Unknown);
        assert!(o.evidence.reason.as_deref().unwrap().contains("FIFO"), "{:?}", o.evidence.reason);
    }

    #[test]
    fn cmdline_variants() {
        // Arguments that are not UTF-8 and an argument area rewritten without a final NUL.
        assert_eq!(
            split_cmdline(b"/usr/bin/sysbox-mgr\0--relaxed-read-only\0"),
            ["/usr/bin/sysbox-mgr", "--relaxed-read-only"]
        );
        assert_eq!(split_cmdline(b"a\0b"), ["a", "b"]);
        assert_eq!(split_cmdline(b"a\0\xff\0"), ["a", "\u{fffd}"]);
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);

        // A command line too long to read whole: the flag might be past the cut.
        let long = Host::new();
        let filler = "x".repeat(limits::CMDLINE);
        long.mgr(11, &["--log-level", &filler, "--relaxed-read-only"]);
        let o = long.observe();
        assert_eq!(o.evidence.state, State::Running);
        assert_eq!(o.evidence.label(), None, "unknown, not false");
        assert!(o.evidence.args_truncated);
        assert!(serde_json::to_string(&o.evidence).unwrap().len() < 2 * limits::EVIDENCE_ARGS);

        // Arguments sysbox-mgr itself would refuse: the parser and the process disagree.
        let odd = Host::new();
        odd.mgr(12, &["--no-such-flag", "--relaxed-read-only"]);
        let o = odd.observe();
        assert_eq!((o.evidence.state, o.evidence.label()), (State::Running, None));
        assert!(reasons(&o).contains(&"cmdline_unparsable"));
    }

    #[test]
    fn unit_and_drop_ins_give_the_configured_flag() {
        let h = Host::new();
        h.mgr(20, &["--disable-inner-image-preload"]).write("/lib/systemd/system/sysbox-mgr.service", UNIT);
        let o = h.observe();
        assert_eq!(o.evidence.configured.unit.as_deref(), Some("/lib/systemd/system/sysbox-mgr.service"));
        assert_eq!(o.evidence.configured.relaxed_read_only, Some(false));
        assert!(!o.evidence.restart_pending);

        // A drop-in that resets ExecStart and adds the flag: configured, not yet running.
        h.write(
            "/etc/systemd/system/sysbox-mgr.service.d/10-relaxed.conf",
            "[Service]\nExecStart=\nExecStart=/usr/bin/sysbox-mgr --relaxed-read-only --disable-inner-image-preload\n",
        );
        let o = h.observe();
        assert_eq!(o.evidence.configured.drop_ins, ["/etc/systemd/system/sysbox-mgr.service.d/10-relaxed.conf"]);
        assert_eq!(o.evidence.configured.relaxed_read_only, Some(true));
        assert_eq!(o.evidence.label(), Some(false), "the label follows the running process");
        assert!(o.evidence.restart_pending);

        // A later drop-in (by file name) wins; a masked one is left out.
        h.write(
            "/run/systemd/system/sysbox-mgr.service.d/20-off.conf",
            "[Service]\nExecStart=\nExecStart=/usr/bin/sysbox-mgr\n",
        );
        assert_eq!(h.observe().evidence.configured.relaxed_read_only, Some(false));
        h.link("/etc/systemd/system/sysbox-mgr.service.d/20-off.conf", "/dev/null");
        let o = h.observe();
        assert_eq!(o.evidence.configured.relaxed_read_only, Some(true), "{:?}", o.evidence.configured);
        assert_eq!(o.evidence.configured.drop_ins.len(), 1);

        // /etc overrides the unit in /lib.
        h.write("/etc/systemd/system/sysbox-mgr.service", "[Service]\nExecStart=/usr/bin/sysbox-mgr --bad-flag\n");
        std::fs::remove_dir_all(h.root().join("etc/systemd/system/sysbox-mgr.service.d")).unwrap();
        std::fs::remove_dir_all(h.root().join("run/systemd/system/sysbox-mgr.service.d")).unwrap();
        let o = h.observe();
        assert_eq!(o.evidence.configured.unit.as_deref(), Some("/etc/systemd/system/sysbox-mgr.service"));
        assert!(o.evidence.configured.would_not_start.is_some(), "{:?}", o.evidence.configured);
        assert!(o.evidence.restart_pending, "a restart would stop Sysbox on this node");
    }

    #[test]
    fn a_missing_or_masked_unit_leaves_the_configured_flag_unknown() {
        let h = Host::new();
        h.mgr(30, &["--relaxed-read-only"]);
        let o = h.observe();
        assert_eq!(o.evidence.configured.relaxed_read_only, None);
        assert!(reasons(&o).contains(&"unit_missing"));
        assert!(!o.evidence.restart_pending, "unknown is not a difference");

        h.write("/lib/systemd/system/sysbox-mgr.service", UNIT)
            .link("/etc/systemd/system/sysbox-mgr.service", "/dev/null");
        let o = h.observe();
        assert!(o.evidence.configured.reason.as_deref().unwrap().contains("masked"));

        let no_exec = Host::new();
        no_exec.mgr(31, &[]).write("/lib/systemd/system/sysbox-mgr.service", "[Service]\nType=notify\n");
        let o = no_exec.observe();
        assert!(reasons(&o).contains(&"unit_unparsable"), "{:?}", o.problems);
        assert_eq!(o.evidence.label(), Some(false), "the running process still decides the label");
    }

    #[test]
    fn the_installed_version() {
        let h = Host::new();
        assert_eq!(h.observe().evidence.sysbox_version, None);
        h.write(VERSION_FILE, "0.6.7\n");
        assert_eq!(h.observe().evidence.sysbox_version.as_deref(), Some("0.6.7"));
        h.write(VERSION_FILE, "<script>\n");
        let o = h.observe();
        assert_eq!(o.evidence.sysbox_version, None);
        assert!(reasons(&o).contains(&"version_unreadable"));
    }

    #[test]
    fn evidence_json_round_trips_and_keeps_its_field_names() {
        let h = Host::new();
        h.mgr(40, &["--relaxed-read-only"]).write(VERSION_FILE, "0.6.7");
        let e = h.observe().evidence;
        let v = serde_json::to_value(&e).unwrap();
        for key in
            ["observedAt", "state", "pid", "relaxedReadOnly", "args", "configured", "restartPending", "sysboxVersion"]
        {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["state"], "running");
        let back: Evidence = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
