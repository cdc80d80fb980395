//! The installer's pasting of SYSBOX_MGR_CONFIG (sysbox-pkgr
//! k8s/scripts/sysbox-deploy-k8s.sh `config_sysbox`) into the shipped unit
//! (k8s/systemd/sysbox-mgr.service), then systemd and sysbox-mgr.

use super::*;

fn runs(config: &str) -> MgrCommandLine {
    match installed_mgr(config) {
        InstalledMgr::Runs { mgr, .. } => mgr,
        other => panic!("{config:?}: {other:?}"),
    }
}

#[test]
fn empty_value_leaves_the_unit_as_shipped() {
    // `if [ -n "$SYSBOX_MGR_CONFIG" ]`
    let InstalledMgr::Runs { argv, mgr, .. } = installed_mgr("") else { panic!() };
    assert_eq!(argv, ["/usr/bin/sysbox-mgr", "--disable-inner-image-preload"]);
    assert_eq!(mgr.effective_relaxed_read_only(), Some(false));
}

#[test]
fn the_value_goes_before_the_units_own_flag() {
    // sed "s|/usr/bin/sysbox-mgr|/usr/bin/sysbox-mgr ${SYSBOX_MGR_CONFIG}|"
    let InstalledMgr::Runs { exec_start, argv, .. } = installed_mgr("--relaxed-read-only") else { panic!() };
    assert_eq!(exec_start, "/usr/bin/sysbox-mgr --relaxed-read-only --disable-inner-image-preload");
    assert_eq!(argv.len(), 3);
    // So a value flag at the end swallows the unit's own flag, and a stray
    // word hides it.
    assert_eq!(runs("--relaxed-read-only --data-root").outcome, Outcome::Starts);
    assert_eq!(runs("--relaxed-read-only stray").positional, ["stray", "--disable-inner-image-preload"]);
}

#[test]
fn systemd_quoting_applies() {
    assert_eq!(runs("'--relaxed-read-only'").effective_relaxed_read_only(), Some(true));
    assert_eq!(runs("--log-level \"debug\" --relaxed-read-only=\"false\"").effective_relaxed_read_only(), Some(false));
    assert_eq!(
        installed_mgr("--relaxed-read-only \"x"),
        InstalledMgr::UnitRefused {
            exec_start: "/usr/bin/sysbox-mgr --relaxed-read-only \"x --disable-inner-image-preload".into(),
            error: UnitError::BadExecStart { file: 0, line: 3, error: SplitError::UnbalancedQuoting }
        }
    );
    assert_eq!(installed_mgr("--a ; /bin/x").starts(), Some(false));
}

#[test]
fn sysbox_mgr_refusals_surface() {
    let m = installed_mgr("--relaxed-read-only=yes");
    assert_eq!((m.starts(), m.relaxed_read_only()), (Some(false), None));
    assert!(m.not_start_reason().unwrap().contains("invalid boolean value"));
    assert_eq!(installed_mgr("-h").starts(), Some(false));
}

#[test]
fn what_sed_does_to_the_value() {
    // In sed's replacement `&` is the matched text.
    assert_eq!(runs("--log=/a&b").log_file.as_deref(), Some("/a/usr/bin/sysbox-mgrb"));
    assert!(matches!(installed_mgr("--relaxed-read-only\n"), InstalledMgr::InstallerFails(_)));
    assert!(matches!(installed_mgr("--relaxed-read-only|x"), InstalledMgr::Unpredictable(_)));
    assert!(matches!(installed_mgr(r"--relaxed-read-only \x"), InstalledMgr::Unpredictable(_)));
}

#[test]
fn node_dependent_values_are_not_guessed() {
    assert!(matches!(installed_mgr("$FLAGS"), InstalledMgr::Unpredictable(_)));
    assert!(matches!(installed_mgr("--log=/var/log/%H.log"), InstalledMgr::Unpredictable(_)));
    // Invalid names expand to nothing on every node: `$` alone drops the word.
    assert_eq!(runs("--data-root $ --relaxed-read-only").effective_relaxed_read_only(), Some(false));
    // `$` elsewhere in a word is literal; `$$` is `$`.
    assert_eq!(runs("--log=/a$b --relaxed-read-only").effective_relaxed_read_only(), Some(true));
    assert_eq!(runs("--log=$$x").log_file.as_deref(), Some("$x"));
}

#[test]
fn a_line_systemd_cannot_read_fails_the_unit() {
    // conf-parser.c: read_line with LONG_LINE_MAX, "Line too long".
    let value = format!("--log={}", "x".repeat(systemd::MAX_LINE_BYTES));
    assert!(matches!(installed_mgr(&value), InstalledMgr::UnitRefused { error: UnitError::LineTooLong { .. }, .. }));
}

#[test]
fn a_carriage_return_ends_the_unit_line() {
    // fileio.c read_line: '\r' ends a line; the rest is a line of its own.
    let InstalledMgr::Runs { argv, .. } = installed_mgr("--relaxed-read-only\r--x") else { panic!() };
    assert_eq!(argv, ["/usr/bin/sysbox-mgr", "--relaxed-read-only"]);
    // ... which can be an assignment: a second ExecStart= for a notify service.
    assert!(matches!(
        installed_mgr("--relaxed-read-only\rExecStart=/bin/true"),
        InstalledMgr::UnitRefused { error: UnitError::MoreThanOneExecStart(2), .. }
    ));
    assert!(matches!(installed_mgr("a\0b"), InstalledMgr::Unpredictable(_)));
}
