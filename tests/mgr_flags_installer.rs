//! The installer step of the SYSBOX_MGR_CONFIG model against the real thing:
//! generated values go through the very command sysbox-deploy-k8s.sh runs
//! (`config_sysbox`: `sed -i "/^ExecStart=/ s|/usr/bin/sysbox-mgr|/usr/bin/sysbox-mgr ${SYSBOX_MGR_CONFIG}|"`)
//! with the system's sed, and the unit it writes is read back with the
//! systemd model. Wherever `installed_mgr` claims to know the outcome, it
//! must match: the same ExecStart line and argv, or sed failing.

use std::io::Write;
use std::process::{Command, Stdio};

use sysbox_ro_webhook::sysbox::{installed_mgr, systemd, InstalledMgr};

mod rng;
use rng::Rng;

/// A unit with the shipped ExecStart= line (sysbox-pkgr k8s/systemd/sysbox-mgr.service).
const UNIT: &str = "[Unit]\nDescription=sysbox-mgr\n\n[Service]\nType=notify\n\
                    ExecStart=/usr/bin/sysbox-mgr --disable-inner-image-preload\nTimeoutStartSec=45\n";

/// Runs the installer's sed once per value, each on a fresh copy of the
/// unit, and prints per value its exit status and the resulting unit,
/// NUL-separated.
const SCRIPT: &str = r#"
set -u
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s' "$UNIT" > "$work/template"
while IFS= read -r -d '' SYSBOX_MGR_CONFIG; do
  cp "$work/template" "$work/sysbox-mgr.service"
  if [ -n "$SYSBOX_MGR_CONFIG" ]; then
    sed -i "/^ExecStart=/ s|/usr/bin/sysbox-mgr|/usr/bin/sysbox-mgr ${SYSBOX_MGR_CONFIG}|" "$work/sysbox-mgr.service" 2>/dev/null
    status=$?
  else
    status=0
  fi
  printf '%s\0' "$status"
  cat "$work/sysbox-mgr.service"
  printf '\0'
done
"#;

const PIECES: &[&str] = &[
    "--relaxed-read-only",
    "-relaxed-read-only=false",
    "--log-level=debug",
    "--data-root",
    "/var/lib/sysbox",
    " ",
    "  ",
    "\t",
    "\"",
    "'",
    "&",
    "\\&",
    "\\",
    "\\n",
    "|",
    "\n",
    "\r",
    "\rExecStart=/bin/x",
    ";",
    "%n",
    "%%",
    "$",
    "$X",
    "${X}",
    "#",
    "=",
    "é",
    "--",
    "-h",
];

fn value(rng: &mut Rng) -> String {
    let n = rng.next() % 7;
    (0..n).map(|_| rng.pick(PIECES)).collect()
}

#[test]
fn the_installers_sed_writes_what_the_model_says() {
    let mut rng = Rng(0x5eed_0000_5ed0_0001);
    let values: Vec<String> = (0..1500).map(|_| value(&mut rng)).collect();

    let mut child = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .env("UNIT", UNIT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bash (the installer's own shell) and sed must be installed");
    let mut input = Vec::new();
    for v in &values {
        input.extend_from_slice(v.as_bytes());
        input.push(0);
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("installer script output");
    writer.join().expect("writer thread").expect("write values");
    assert!(out.status.success(), "installer script failed");
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let fields: Vec<&str> = text.split('\0').collect();
    assert_eq!(fields.len(), values.len() * 2 + 1, "one status and one unit per value");

    let (mut compared, mut failures_seen) = (0, 0);
    let mut disagreements = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let (status, unit) = (fields[2 * i], fields[2 * i + 1]);
        let sed_failed = status != "0";
        failures_seen += usize::from(sed_failed);
        let model = installed_mgr(v);
        let agrees = match &model {
            InstalledMgr::InstallerFails(_) => sed_failed,
            InstalledMgr::Unpredictable(why) if why.contains("sed") => continue,
            InstalledMgr::Runs { exec_start, argv, .. } => {
                compared += 1;
                !sed_failed
                    && unit.contains(&format!("\nExecStart={exec_start}\n"))
                    && systemd::effective_exec_start(unit, &[]).ok().flatten().as_ref() == Some(argv)
            }
            InstalledMgr::UnitRefused { exec_start, .. } => {
                compared += 1;
                !sed_failed
                    && unit.contains(&format!("\nExecStart={exec_start}\n"))
                    && systemd::effective_exec_start(unit, &[]).is_err_or_none()
            }
            // Node-dependent values: sed must still have written the line.
            InstalledMgr::Unpredictable(_) => !sed_failed,
        };
        if !agrees {
            disagreements.push(format!("value {v:?}: sed status {status}, unit:\n{unit}\nmodel: {model:?}"));
        }
    }
    eprintln!("{} values: {compared} compared line by line, {failures_seen} made sed fail", values.len());
    assert!(compared > values.len() / 3, "only {compared} values compared");
    assert!(failures_seen > 10, "the generator must make sed fail sometimes ({failures_seen})");
    assert!(disagreements.is_empty(), "{} disagreements; first: {}", disagreements.len(), disagreements[0]);
}

trait ErrOrNone {
    fn is_err_or_none(&self) -> bool;
}

impl<T, E> ErrOrNone for Result<Option<T>, E> {
    fn is_err_or_none(&self) -> bool {
        !matches!(self, Ok(Some(_)))
    }
}
