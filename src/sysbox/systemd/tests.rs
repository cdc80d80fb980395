//! One case per rule, each with the systemd source it comes from (systemd
//! main branch: src/basic/extract-word.c, src/basic/escape.c,
//! src/core/load-fragment.c config_parse_exec, src/shared/specifier.c,
//! src/basic/env-util.c replace_env_argv, src/shared/conf-parser.c,
//! src/core/service.c service_verify; systemd.service(5), systemd.syntax(7)).

use super::*;

fn split(s: &str) -> Vec<String> {
    split_command_line(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn words_are_separated_by_whitespace_runs() {
    // extract-word.c: separators default to WHITESPACE, coalesced.
    assert_eq!(split("/bin/a  b\tc \r d"), ["/bin/a", "b", "c", "d"]);
}

#[test]
fn quotes_group_and_are_removed_anywhere_in_a_word() {
    // extract-word.c: `IN_SET(c, '\'', '"') && (flags & EXTRACT_UNQUOTE)` starts a quote anywhere.
    assert_eq!(split(r#"/bin/a "b c" 'd "e"' f"g h"i"#), ["/bin/a", "b c", "d \"e\"", "fg hi"]);
    assert_eq!(split(r#"/bin/a "" ''"#), ["/bin/a", "", ""]);
}

#[test]
fn unbalanced_quotes_are_an_error() {
    // extract-word.c: `if (c == 0) { ... return -EINVAL; }` inside quotes;
    // load-fragment.c: a later word failing gives -ENOEXEC.
    assert_eq!(split_command_line(r#"/bin/a "b"#), Err(SplitError::UnbalancedQuoting));
    assert_eq!(split_command_line("/bin/a 'b\\'"), Err(SplitError::UnbalancedQuoting));
}

#[test]
fn c_escapes_are_decoded_inside_and_outside_quotes() {
    // escape.c cunescape_one: \a \b \f \n \r \t \v \\ \" \' \s \xHH \uHHHH \UHHHHHHHH \ooo
    assert_eq!(
        split(r#"/bin/a \s x\ty "q\"q" \x41 \101 \u00e9 \U0001F600"#),
        ["/bin/a", " ", "x\ty", "q\"q", "A", "A", "é", "😀"]
    );
    // An escaped space does not split.
    assert_eq!(split(r"/bin/a b\sc"), ["/bin/a", "b c"]);
}

#[test]
fn unknown_escapes_stay_verbatim() {
    // extract_first_word_and_warn: retry with EXTRACT_UNESCAPE_RELAX, "Ignoring unknown escape sequences".
    assert_eq!(split(r"/bin/a \q \x4 \x00 \8"), ["/bin/a", r"\q", r"\x4", r"\x00", r"\8"]);
    // A trailing backslash outside quotes is kept too.
    assert_eq!(split(r"/bin/a b\"), ["/bin/a", r"b\"]);
    // escape.c: "Don't allow NUL bytes", octal above 255 refused.
    assert_eq!(split(r"/bin/a \000 \400"), ["/bin/a", r"\000", r"\400"]);
}

#[test]
fn semicolon_separates_commands() {
    // load-fragment.c: `if (p[0] == ';' && (!p[1] || strchr(WHITESPACE, p[1])))`
    let c = parse_exec_value("/bin/a x ; /bin/b y", "u.service").unwrap();
    assert_eq!(c.iter().map(|c| c.argv.clone()).collect::<Vec<_>>(), [vec!["/bin/a", "x"], vec!["/bin/b", "y"]]);
    assert_eq!(split_command_line("/bin/a ; /bin/b"), Err(SplitError::MoreThanOneCommand(2)));
    // `\;` is a literal argument; `a;` is part of a word.
    assert_eq!(split(r"/bin/a \; b; ;c"), ["/bin/a", ";", "b;", ";c"]);
    // A trailing lone ";" ends the only command.
    assert_eq!(split("/bin/a b ;"), ["/bin/a", "b"]);
}

#[test]
fn executable_prefixes_are_stripped() {
    // load-fragment.c: '-', '@', ':', '+', '!', '!!' prefixes.
    let c = &parse_exec_value("-:+/bin/a b", "u.service").unwrap()[0];
    assert_eq!((c.path.as_str(), c.argv.clone()), ("/bin/a", vec!["/bin/a".to_string(), "b".into()]));
    assert!(c.prefixes.ignore_failure && c.prefixes.no_env_expand && c.prefixes.privileged);
    // '@': the second word is argv[0].
    let c = &parse_exec_value("@/bin/a name b", "u.service").unwrap()[0];
    assert_eq!((c.path.as_str(), c.argv.clone()), ("/bin/a", vec!["name".to_string(), "b".into()]));
    // '!!' is ambient magic; '+' and '!' exclude each other.
    assert!(parse_exec_value("!!/bin/a", "u.service").unwrap()[0].prefixes.ambient_magic);
    assert_eq!(parse_exec_value("+!/bin/a", "u.service").unwrap_err().error, SplitError::InvalidPath("!/bin/a".into()));
    // '|' (systemd 258): the words go through a shell.
    assert!(parse_exec_value("|/bin/a b", "u.service").unwrap()[0].prefixes.via_shell);
    // Each prefix once: the second '-' is part of the path.
    assert_eq!(parse_exec_value("--/bin/a", "u.service"), Ok(vec![]));
}

#[test]
fn bad_executables_fail_the_unit_unless_ignored() {
    // load-fragment.c: "Empty path in command line", "Executable path specifies a directory", ...
    assert_eq!(parse_exec_value("@", "u.service").unwrap_err().error, SplitError::EmptyPath);
    assert_eq!(parse_exec_value("/bin/", "u.service").unwrap_err().error, SplitError::PathIsDirectory("/bin/".into()));
    assert_eq!(parse_exec_value("@/bin/a", "u.service").unwrap_err().error, SplitError::EmptyArgv0);
    // `return ignore ? 0 : -ENOEXEC`: with '-' the line is dropped quietly.
    assert_eq!(parse_exec_value("-/bin/ x", "u.service"), Ok(vec![]));
    // `if (r <= 0) return 0;`: a first word that does not decode drops the line without error.
    assert_eq!(parse_exec_value("\"/bin/a", "u.service"), Ok(vec![]));
    assert_eq!(split_command_line("\"/bin/a"), Err(SplitError::Empty));
}

#[test]
fn specifiers() {
    // specifier.c specifier_printf: %% is %, unknown alphanumerics fail with -EBADSLT,
    // other %x stay, a trailing % stays.
    assert_eq!(
        split("/bin/a %% %n %N %p %i %j %t %S 100%! x%"),
        ["/bin/a", "%", "sysbox-mgr.service", "sysbox-mgr", "sysbox-mgr", "", "mgr", "/run", "/var/lib", "100%!", "x%"]
    );
    // unit-name.c unit_name_unescape: the unescaped forms turn '-' into '/'.
    assert_eq!(split("/bin/a %P %J %f %I"), ["/bin/a", "sysbox/mgr", "mgr", "/sysbox/mgr", ""]);
    assert_eq!(parse_exec_value("/bin/a %I %f", "getty@tty\\x2d1.service").unwrap()[0].argv[1..], ["tty-1", "/tty-1"]);
    assert_eq!(split_command_line("/bin/a %k"), Err(SplitError::UnknownSpecifier('k')));
    assert_eq!(split_command_line("/bin/a %9"), Err(SplitError::UnknownSpecifier('9')));
    let c = &parse_exec_value("/bin/a --log=/x/%H", "u.service").unwrap()[0];
    assert_eq!((c.argv[1].as_str(), c.node_specifiers.clone()), ("--log=/x/%H", vec!['H']));
}

#[test]
fn environment_expansion() {
    // env-util.c replace_env_argv: "$FOO" alone is split, "${FOO}" inside a word is as-is.
    let env: BTreeMap<String, String> =
        [("A".to_string(), "x  'y z'".to_string()), ("B".into(), "--b".into())].into_iter().collect();
    let argv: Vec<String> = [
        "/bin/a",
        "$A",
        "pre${A}post",
        "$B",
        "$UNSET",
        "${UNSET}x",
        "$$A",
        "a$B",
        "${A:-d}",
        "${B",
        "$",
        "$a-b",
        "${}y",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = expand_env(&argv, &env).unwrap();
    assert_eq!(e.argv, ["/bin/a", "x", "y z", "prex  'y z'post", "--b", "x", "$A", "a$B", "${A:-d}", "${B", "y"]);
    assert_eq!(e.unset, ["UNSET"]);
    // env-util.c: invalid names resolve like unset ones, on every node.
    assert_eq!(e.invalid, ["", "a-b"]);
}

/// A unit's own variables multiplying its text: counted, not built, and
/// refused past what execve(2) accepts, as the exec would be.
#[test]
fn environment_that_multiplies_the_command_is_counted_not_built() {
    let unit = |env_value: &str, exec: &str| format!("[Service]\nEnvironment=\"X={env_value}\"\nExecStart={exec}\n");
    let big = "a".repeat(60_000);
    // 120 `${X}` in one word, and 120 `$X` words: 7.2 MB each, past the 6 MiB ceiling.
    for exec in
        [format!("/usr/bin/sysbox-mgr {}", "${X}".repeat(120)), format!("/usr/bin/sysbox-mgr {}", "$X ".repeat(120))]
    {
        match resolve_service(&unit(&big, &exec), &[], "sysbox-mgr.service") {
            Err(UnitError::ExpandsPastExec(t)) => assert!(t.bytes > MAX_ARGV_BYTES, "{t:?}"),
            other => panic!("{other:?}"),
        }
    }
    // The worst a 4 MiB unit allows (a 1 MiB value, a 1 MiB line of references)
    // is refused without building it.
    let started = std::time::Instant::now();
    let most = MAX_LINE_BYTES - 100;
    let bomb = unit(&"b".repeat(most), &format!("/usr/bin/sysbox-mgr {}", "${X}".repeat(most / 4)));
    assert!(matches!(resolve_service(&bomb, &[], "sysbox-mgr.service"), Err(UnitError::ExpandsPastExec(_))));
    // A value of blanks splits into no word however often `$X` names it: split once.
    let blanks = unit(&" ".repeat(most), &format!("/usr/bin/sysbox-mgr{}", " $X".repeat(most / 3)));
    let s = resolve_service(&blanks, &[], "sysbox-mgr.service").unwrap();
    assert_eq!(s.argv, ["/usr/bin/sysbox-mgr"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    // Within the ceiling the command is built as before.
    let s = resolve_service(&unit("--relaxed-read-only", "/usr/bin/sysbox-mgr $X ${X}"), &[], "u.service").unwrap();
    assert_eq!(s.argv, ["/usr/bin/sysbox-mgr", "--relaxed-read-only", "--relaxed-read-only"]);
}

const UNIT: &str = "[Unit]
Description=sysbox-mgr (part of the Sysbox container runtime)
PartOf=sysbox.service

[Service]
Type=simple
Type=notify
ExecStart=/usr/bin/sysbox-mgr --disable-inner-image-preload
TimeoutStartSec=45
";

#[test]
fn the_shipped_unit() {
    // sysbox-pkgr k8s/systemd/sysbox-mgr.service
    assert_eq!(
        effective_exec_start(UNIT, &[]).unwrap().unwrap(),
        ["/usr/bin/sysbox-mgr", "--disable-inner-image-preload"]
    );
    assert_eq!(resolve_service(UNIT, &[], "sysbox-mgr.service").unwrap().service_type, "notify");
}

#[test]
fn drop_ins_reset_and_append() {
    // load-fragment.c: `if (isempty(rvalue)) { /* An empty assignment resets the list */`
    let reset = "[Service]\nExecStart=\nExecStart=/usr/bin/sysbox-mgr --relaxed-read-only\n";
    assert_eq!(effective_exec_start(UNIT, &[reset]).unwrap().unwrap(), ["/usr/bin/sysbox-mgr", "--relaxed-read-only"]);
    // service.c service_verify: more than one ExecStart= only for Type=oneshot.
    let append = "[Service]\nExecStart=/usr/bin/sysbox-mgr --relaxed-read-only\n";
    assert_eq!(effective_exec_start(UNIT, &[append]), Err(UnitError::MoreThanOneExecStart(2)));
    let oneshot = "[Service]\nType=oneshot\n";
    assert_eq!(resolve_service(UNIT, &[append, oneshot], "x.service").unwrap().argv[0], "/usr/bin/sysbox-mgr");
    // "Service has no ExecStart=": reset and nothing after.
    assert_eq!(effective_exec_start(UNIT, &["[Service]\nExecStart=\n"]), Ok(None));
    // A drop-in's ExecStart outside [Service] does nothing.
    assert_eq!(effective_exec_start(UNIT, &["[Unit]\nExecStart=\n"]).unwrap().unwrap().len(), 2);
}

#[test]
fn unit_file_lines() {
    // conf-parser.c / systemd.syntax(7): comments, continuation with the
    // backslash turned into a space, comment lines inside a continuation skipped.
    let unit = "# c\n[Service]\n  ; c\nExecStart=/usr/bin/sysbox-mgr \\\n# skipped\n  --relaxed-read-only\\\\\nType=notify\r\n";
    let a = parse_unit_file(unit, 0).unwrap();
    assert_eq!(a[0].value, r"/usr/bin/sysbox-mgr    --relaxed-read-only\\");
    assert_eq!((a[0].line, a[1].key.as_str(), a[1].value.as_str()), (4, "Type", "notify"));
    // Three trailing backslashes: the last is unescaped and continues; the
    // scan restarts on each joined line.
    let a = parse_unit_file("[Service]\nExecStart=/a x\\\\\\\n\\\\\ny=1\n", 0).unwrap();
    assert_eq!(a[0].value, "/a x\\\\ \\\\");
    assert_eq!((a[1].key.as_str(), a.len()), ("y", 2));
    // An unterminated section header fails the file.
    assert_eq!(parse_unit_file("[Service\nExecStart=/a\n", 2), Err(UnitError::BadSectionHeader { file: 2, line: 1 }));
    assert_eq!(parse_unit_file("[Ser\"vice]\n", 0), Err(UnitError::BadSectionHeader { file: 0, line: 1 }));
    // A bad ExecStart fails the unit.
    assert!(matches!(
        effective_exec_start("[Service]\nExecStart=/usr/bin/sysbox-mgr \"x\n", &[]),
        Err(UnitError::BadExecStart { line: 2, error: SplitError::UnbalancedQuoting, .. })
    ));
    // Environment= feeds expansion.
    let env = "[Service]\nEnvironment=\"FLAGS=--relaxed-read-only --log-level=debug\" X=1\nExecStart=/usr/bin/sysbox-mgr $FLAGS\n";
    assert_eq!(
        effective_exec_start(env, &[]).unwrap().unwrap(),
        ["/usr/bin/sysbox-mgr", "--relaxed-read-only", "--log-level=debug"]
    );
    // ':' turns expansion off.
    let raw = "[Service]\nEnvironment=FLAGS=x\nExecStart=:/usr/bin/sysbox-mgr $FLAGS\n";
    assert_eq!(effective_exec_start(raw, &[]).unwrap().unwrap(), ["/usr/bin/sysbox-mgr", "$FLAGS"]);
}

#[test]
fn line_ends() {
    // fileio.c read_line: \n, \r, \r\n, \n\r and NUL end a line; \n\n and \r\r are two.
    let text = "[Service]\r\nA=1\rB=2\n\rC=3\n\nD=4\0E=5\r\rF=6";
    let keys: Vec<String> = parse_unit_file(text, 0).unwrap().into_iter().map(|a| a.key).collect();
    assert_eq!(keys, ["A", "B", "C", "D", "E", "F"]);
    let lines: Vec<usize> = parse_unit_file(text, 0).unwrap().into_iter().map(|a| a.line).collect();
    assert_eq!(lines, [2, 3, 4, 6, 7, 9]);
}

#[test]
fn size_bounds() {
    let long = format!("[Service]\nExecStart=/a {}\n", "x".repeat(MAX_LINE_BYTES + 1));
    assert_eq!(effective_exec_start(&long, &[]), Err(UnitError::LineTooLong { file: 0, line: 2 }));
    let big = "#".repeat(MAX_UNIT_BYTES / 2 + 1);
    assert_eq!(effective_exec_start(&big, &[&big]), Err(UnitError::TooLarge));
}
