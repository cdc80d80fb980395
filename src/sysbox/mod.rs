//! What Sysbox itself does with its configuration, modelled from its source.
//!
//! [`mgr_flags`] reads sysbox-mgr's command line as sysbox-mgr does;
//! [`systemd`] turns a unit's `ExecStart=` into that command line as systemd
//! does; [`installed_mgr`] puts the two together for the
//! `SYSBOX_MGR_CONFIG` value the Sysbox installer pastes into the unit, so
//! the ConfigMap, the node agent and `check` all get one answer.

pub mod mgr_flags;
pub mod systemd;

pub use mgr_flags::{MgrCommandLine, NotStartReason, Outcome};
pub use systemd::{SplitError, UnitError};

/// The executable the installer's sed command looks for, and replaces with
/// itself followed by the flags (sysbox-pkgr `k8s/scripts/sysbox-deploy-k8s.sh`,
/// `config_sysbox`).
pub const MGR_BINARY: &str = "/usr/bin/sysbox-mgr";

/// The `ExecStart=` value of sysbox-pkgr's `k8s/systemd/sysbox-mgr.service`.
pub const UNIT_EXEC_START: &str = "/usr/bin/sysbox-mgr --disable-inner-image-preload";

/// What a node that (re)installs Sysbox ends up running for a
/// `SYSBOX_MGR_CONFIG` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstalledMgr {
    /// systemd runs sysbox-mgr with `argv` (argv[0] included); `mgr` says
    /// whether sysbox-mgr gets past its command line, and with which flag.
    Runs { exec_start: String, argv: Vec<String>, mgr: MgrCommandLine },
    /// systemd refuses the unit the installer writes: it fails to load, or
    /// keeps no single `ExecStart=`, and sysbox-mgr never runs.
    UnitRefused { exec_start: String, error: UnitError },
    /// The installer's own command fails: it exits after having stopped
    /// Sysbox on the node, so the node runs no Sysbox.
    InstallerFails(String),
    /// The outcome depends on something this model does not know or
    /// follow (the node's systemd environment, GNU sed escapes).
    Unpredictable(String),
}

impl InstalledMgr {
    /// `Some(true)` when sysbox-mgr starts, `Some(false)` when it certainly
    /// does not, `None` when it cannot be told.
    pub fn starts(&self) -> Option<bool> {
        match self {
            InstalledMgr::Runs { mgr, .. } => Some(mgr.starts()),
            InstalledMgr::UnitRefused { .. } | InstalledMgr::InstallerFails(_) => Some(false),
            InstalledMgr::Unpredictable(_) => None,
        }
    }

    /// Whether the running sysbox-mgr has `--relaxed-read-only`: `Some` only
    /// when it starts.
    pub fn relaxed_read_only(&self) -> Option<bool> {
        match self {
            InstalledMgr::Runs { mgr, .. } => mgr.effective_relaxed_read_only(),
            _ => None,
        }
    }

    /// Why sysbox-mgr would not run, when it certainly would not.
    pub fn not_start_reason(&self) -> Option<String> {
        match self {
            InstalledMgr::Runs { mgr, .. } => match &mgr.outcome {
                Outcome::WouldNotStart(r) => Some(r.to_string()),
                Outcome::Starts => None,
            },
            InstalledMgr::UnitRefused { error, .. } => Some(format!("systemd refuses the sysbox-mgr unit: {error}")),
            InstalledMgr::InstallerFails(why) => Some(why.clone()),
            InstalledMgr::Unpredictable(_) => None,
        }
    }
}

/// The sysbox-mgr command line a node gets from the installer for this
/// `SYSBOX_MGR_CONFIG` value, read as systemd and sysbox-mgr read it.
///
/// The installer runs (under `set -o errexit`)
/// `sed -i "/^ExecStart=/ s|/usr/bin/sysbox-mgr|/usr/bin/sysbox-mgr ${SYSBOX_MGR_CONFIG}|"`
/// on the unit when the value is not empty, so the unit's line becomes
/// `ExecStart=/usr/bin/sysbox-mgr <value> --disable-inner-image-preload`.
/// Inside sed's replacement `&` stands for the matched text; a newline ends
/// the sed script early; `|` ends the replacement and a backslash starts a
/// GNU sed escape, which this model does not follow.
pub fn installed_mgr(config: &str) -> InstalledMgr {
    // `if [ -n "$SYSBOX_MGR_CONFIG" ]`: an empty value leaves the unit as shipped.
    let exec_start =
        if config.is_empty() {
            UNIT_EXEC_START.to_string()
        } else {
            // sed reads its script left to right: whichever of a newline, `|`
            // or a backslash comes first decides what happens to the rest.
            match config.find(['\n', '|', '\\']).map(|i| config.as_bytes()[i]) {
                Some(b'\n') => {
                    return InstalledMgr::InstallerFails(
                        "the value contains a newline, which breaks the installer's sed command \
                     (\"unterminated `s' command\"); the installer exits after stopping Sysbox"
                            .into(),
                    )
                }
                Some(b'|') => return InstalledMgr::Unpredictable(
                    "the value contains '|', the delimiter of the installer's sed command: it ends the replacement \
                     early"
                        .into(),
                ),
                Some(_) => {
                    return InstalledMgr::Unpredictable(
                        "the value contains a backslash, which the installer's sed command rewrites (GNU sed escapes)"
                            .into(),
                    )
                }
                None => {}
            }
            if config.contains('\0') {
                return InstalledMgr::Unpredictable(
                    "the value contains a NUL byte, which no environment variable carries".into(),
                );
            }
            // In sed's replacement, `&` is the matched text.
            let pasted = config.replace('&', MGR_BINARY);
            let rest = &UNIT_EXEC_START[MGR_BINARY.len()..];
            // systemd strips whitespace around an assignment's value.
            format!("{MGR_BINARY} {pasted}{rest}").trim_matches([' ', '\t']).to_string()
        };
    // The unit as the installer leaves it, read as systemd reads it: a
    // carriage return in the value ends the line there, a `;` adds a second
    // command, an over-long line fails the file.
    let unit = format!("[Service]\nType=notify\nExecStart={exec_start}\n");
    let service = match systemd::resolve_service(&unit, &[], "sysbox-mgr.service") {
        Ok(service) => service,
        Err(error) => return InstalledMgr::UnitRefused { exec_start, error },
    };
    if !service.command.node_specifiers.is_empty() {
        let list: Vec<String> = service.command.node_specifiers.iter().map(|c| format!("%{c}")).collect();
        return InstalledMgr::Unpredictable(format!(
            "the value uses systemd specifiers whose value depends on the node: {}",
            list.join(", ")
        ));
    }
    // The shipped unit has no Environment=: every variable comes from the
    // node's service manager (DefaultEnvironment=, set-environment, ...).
    if !service.unset_variables.is_empty() {
        return InstalledMgr::Unpredictable(format!(
            "the value refers to environment variables that systemd takes from the node: ${}",
            service.unset_variables.join(", $")
        ));
    }
    let argv = service.argv;
    let mgr = mgr_flags::parse(argv.get(1..).unwrap_or_default());
    InstalledMgr::Runs { exec_start, argv, mgr }
}

#[cfg(test)]
mod tests;
