//! What Sysbox itself does with its configuration, modelled from its source.
//!
//! [`mgr_flags`] reads sysbox-mgr's command line as sysbox-mgr does;
//! [`systemd`] turns a unit's `ExecStart=` into that command line as systemd
//! does; [`installed_mgr`] puts the two together for the
//! `SYSBOX_MGR_CONFIG` value the Sysbox installer pastes into the unit, so
//! the ConfigMap, the node agent and `check` all get one answer.

pub mod mgr_flags;
pub mod systemd;

use std::collections::BTreeMap;

pub use mgr_flags::{MgrCommandLine, NotStartReason, Outcome};
pub use systemd::SplitError;

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
    /// systemd refuses the `ExecStart=` the installer writes: the unit fails
    /// to load and sysbox-mgr never runs.
    UnitRefused { exec_start: String, error: SplitError },
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
                Outcome::WouldNotStart(r) => Some(format!("sysbox-mgr exits at start: {r}")),
                Outcome::Starts => None,
            },
            InstalledMgr::UnitRefused { error, .. } => {
                Some(format!("systemd refuses the sysbox-mgr unit's ExecStart= ({error})"))
            }
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
    let exec_start = if config.is_empty() {
        UNIT_EXEC_START.to_string()
    } else {
        if config.contains('\n') {
            return InstalledMgr::InstallerFails(
                "the value contains a newline, which breaks the installer's sed command (\"unterminated `s' command\"); \
                 the installer exits after stopping Sysbox"
                    .into(),
            );
        }
        if config.contains('|') {
            return InstalledMgr::Unpredictable(
                "the value contains '|', the delimiter of the installer's sed command: it ends the replacement early"
                    .into(),
            );
        }
        if config.contains('\\') {
            return InstalledMgr::Unpredictable(
                "the value contains a backslash, which the installer's sed command rewrites (GNU sed escapes)".into(),
            );
        }
        if config.contains('\r') {
            return InstalledMgr::Unpredictable(
                "the value contains a carriage return, which ends a unit-file line".into(),
            );
        }
        // In sed's replacement, `&` is the matched text.
        let pasted = config.replace('&', MGR_BINARY);
        let rest = &UNIT_EXEC_START[MGR_BINARY.len()..];
        // systemd strips whitespace around an assignment's value.
        format!("{MGR_BINARY} {pasted}{rest}").trim_matches([' ', '\t']).to_string()
    };
    // conf-parser.c: a line over LONG_LINE_MAX fails the whole unit file.
    if "ExecStart=".len() + exec_start.len() > systemd::MAX_LINE_BYTES {
        return InstalledMgr::UnitRefused { exec_start, error: SplitError::LineTooLong };
    }
    let command = match systemd::parse_exec_value(&exec_start, "sysbox-mgr.service") {
        Err(e) => return InstalledMgr::UnitRefused { exec_start, error: e.error },
        Ok(commands) => match commands.len() {
            1 => commands.into_iter().next(),
            0 => return InstalledMgr::UnitRefused { exec_start, error: SplitError::Empty },
            n => return InstalledMgr::UnitRefused { exec_start, error: SplitError::MoreThanOneCommand(n) },
        },
    };
    let Some(command) = command else {
        return InstalledMgr::UnitRefused { exec_start, error: SplitError::Empty };
    };
    if !command.node_specifiers.is_empty() {
        let list: Vec<String> = command.node_specifiers.iter().map(|c| format!("%{c}")).collect();
        return InstalledMgr::Unpredictable(format!(
            "the value uses systemd specifiers whose value depends on the node: {}",
            list.join(", ")
        ));
    }
    // The shipped unit has no Environment=: every variable comes from the
    // node's service manager (DefaultEnvironment=, set-environment, ...).
    let expanded = systemd::expand_env(&command.argv, &BTreeMap::new());
    if !expanded.unset.is_empty() {
        return InstalledMgr::Unpredictable(format!(
            "the value refers to environment variables that systemd takes from the node: ${}",
            expanded.unset.join(", $")
        ));
    }
    let argv = expanded.argv;
    let mgr = mgr_flags::parse(argv.get(1..).unwrap_or_default());
    InstalledMgr::Runs { exec_start, argv, mgr }
}

#[cfg(test)]
mod tests;
