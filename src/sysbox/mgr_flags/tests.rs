//! One case per rule, each with the upstream line it comes from. Sources:
//! sysbox-mgr main.go (nestybox/sysbox-mgr aaeff6c), urfave/cli v1.22.14
//! (app.go, parse.go, context.go, help.go, flag.go) and Go's src/flag/flag.go.

use super::*;

fn p(line: &str) -> MgrCommandLine {
    parse(&line.split_whitespace().collect::<Vec<_>>())
}

fn not_start(line: &str) -> NotStartReason {
    match p(line).outcome {
        Outcome::WouldNotStart(r) => r,
        Outcome::Starts => panic!("{line:?} starts"),
    }
}

fn flag(line: &str) -> (bool, bool) {
    let m = p(line);
    assert!(m.starts(), "{line:?} does not start: {:?}", m.outcome);
    (m.relaxed_read_only, m.mentioned)
}

#[test]
fn indexes_name_the_flags_they_stand_for() {
    assert_eq!(FLAGS[RELAXED_READ_ONLY].names, ["relaxed-read-only"]);
    assert_eq!(FLAGS[LOG].names, ["log", "l"]);
    assert_eq!(FLAGS[LOG_LEVEL].names, ["log-level"]);
    assert_eq!(FLAGS[CPU_PROFILING].names, ["cpu-profiling"]);
    assert_eq!(FLAGS[MEMORY_PROFILING].names, ["memory-profiling"]);
    assert_eq!(FLAGS[HELP].names, ["help", "h"]);
    assert_eq!(FLAGS[VERSION].names, ["version", "v"]);
    // main.go declares 20 flags; urfave/cli adds help and version.
    assert_eq!(FLAGS.len(), 22);
}

#[test]
fn default_is_off() {
    // main.go: cli.BoolFlag{Name: "relaxed-read-only"} (default false)
    assert_eq!(flag(""), (false, false));
    assert_eq!(flag("--disable-inner-image-preload"), (false, false));
}

#[test]
fn one_or_two_dashes() {
    // flag.go parseOne: `if s[1] == '-' { numMinuses++ ...`
    assert_eq!(flag("--relaxed-read-only"), (true, true));
    assert_eq!(flag("-relaxed-read-only"), (true, true));
}

#[test]
fn boolean_values_only_after_equals_in_parse_bool_spellings() {
    // flag.go: boolFlag `if hasValue { fv.Set(value) }`; boolValue.Set is strconv.ParseBool
    for v in ["1", "t", "T", "TRUE", "true", "True"] {
        assert_eq!(flag(&format!("--relaxed-read-only={v}")), (true, true), "{v}");
    }
    for v in ["0", "f", "F", "FALSE", "false", "False"] {
        assert_eq!(flag(&format!("--relaxed-read-only={v}")), (false, true), "{v}");
    }
    for v in ["yes", "no", "on", "tRUE", "", " true", "2"] {
        assert_eq!(
            parse(&[format!("--relaxed-read-only={v}")]).outcome,
            Outcome::WouldNotStart(NotStartReason::InvalidBoolean {
                flag: "relaxed-read-only".into(),
                value: v.into()
            }),
            "{v:?}"
        );
    }
}

#[test]
fn a_boolean_never_takes_the_next_argument() {
    // flag.go: a bool flag "doesn't need an arg"; `false` is then the first
    // non-flag argument and parsing stops there.
    let m = p("--relaxed-read-only false --bogus");
    assert!(m.starts());
    assert_eq!((m.relaxed_read_only, m.positional.clone()), (true, vec!["false".to_string(), "--bogus".to_string()]));
}

#[test]
fn last_mention_wins() {
    // flag.go: every occurrence calls Value.Set again.
    assert_eq!(flag("--relaxed-read-only=true --relaxed-read-only=false"), (false, true));
    assert_eq!(flag("--relaxed-read-only=false -relaxed-read-only"), (true, true));
}

#[test]
fn parsing_stops_at_the_first_non_flag() {
    // flag.go parseOne: `if len(s) < 2 || s[0] != '-' { return false, nil }`
    let m = p("--log-level=debug stray --relaxed-read-only");
    assert_eq!((m.starts(), m.relaxed_read_only, m.mentioned), (true, false, false));
    assert_eq!(m.positional, ["stray", "--relaxed-read-only"]);
    // A lone "-" is a non-flag too.
    assert_eq!(p("- --relaxed-read-only").positional, ["-", "--relaxed-read-only"]);
    // So is the empty string.
    let m = parse(&["", "--relaxed-read-only"]);
    assert_eq!((m.starts(), m.mentioned), (true, false));
}

#[test]
fn double_dash_ends_the_flags_and_is_dropped() {
    // flag.go: `if len(s) == 2 { // "--" terminates the flags; f.args = f.args[1:]`
    let m = p("-- --relaxed-read-only");
    assert_eq!((m.starts(), m.mentioned, m.positional.clone()), (true, false, vec!["--relaxed-read-only".to_string()]));
}

#[test]
fn value_flags_take_the_next_argument() {
    // flag.go: "It must have a value, which might be the next argument."
    // main.go: log/l, log-level, log-format, data-root are cli.StringFlag.
    for f in ["--data-root", "-data-root", "--log", "-l", "--log-format", "--log-level"] {
        let m = p(&format!("{f} --relaxed-read-only"));
        if f == "--log-level" {
            // ... and the level "--relaxed-read-only" is then refused by app.Before.
            assert_eq!(
                m.outcome,
                Outcome::WouldNotStart(NotStartReason::UnknownLogLevel("--relaxed-read-only".into()))
            );
        } else {
            assert_eq!((m.starts(), m.mentioned), (true, false), "{f}");
        }
    }
    // `=value` works for value flags too (flag.go: the `=` split is for every flag).
    assert_eq!(flag("--data-root=/x --relaxed-read-only"), (true, true));
    assert_eq!(flag("--data-root= --relaxed-read-only"), (true, true));
}

#[test]
fn value_flag_at_the_end_needs_an_argument() {
    // flag.go: `if !hasValue { return false, f.failf("flag needs an argument: -%s", name) }`
    assert_eq!(not_start("--relaxed-read-only --data-root"), NotStartReason::NeedsArgument("data-root".into()));
    assert_eq!(not_start("-l"), NotStartReason::NeedsArgument("l".into()));
}

#[test]
fn unknown_flags_stop_sysbox_mgr() {
    // flag.go: `return false, f.failf("flag provided but not defined: -%s", name)`;
    // app.go Run returns the error, main.go `logrus.Fatal(err)`.
    assert_eq!(
        not_start("--relaxed-read-only --relaxed-readonly"),
        NotStartReason::UndefinedFlag("relaxed-readonly".into())
    );
    assert_eq!(not_start("--Relaxed-Read-Only"), NotStartReason::UndefinedFlag("Relaxed-Read-Only".into()));
    assert_eq!(not_start("--relaxed-read-only-foo"), NotStartReason::UndefinedFlag("relaxed-read-only-foo".into()));
    // Flags of sysbox-fs or of other Sysbox versions are unknown here.
    assert_eq!(
        not_start("--allow-immutable-remounts"),
        NotStartReason::UndefinedFlag("allow-immutable-remounts".into())
    );
    // The flag set is complete: every declared name parses.
    for name in flag_names() {
        if !["help", "h", "version", "v"].contains(&name) {
            let arg = if takes_value(name) { format!("--{name}=x") } else { format!("--{name}") };
            let m = parse(&[arg.as_str()]);
            assert!(m.starts() || name == "log-level", "{name}: {:?}", m.outcome);
        }
    }
}

#[test]
fn bad_flag_syntax() {
    // flag.go: `if len(name) == 0 || name[0] == '-' || name[0] == '='`
    for a in ["---relaxed-read-only", "-=x", "--=true", "-="] {
        assert_eq!(parse(&[a]).outcome, Outcome::WouldNotStart(NotStartReason::BadFlagSyntax(a.into())), "{a}");
    }
}

#[test]
fn the_name_ends_at_the_first_equals_after_its_first_byte() {
    // flag.go: `for i := 1; i < len(name); i++ { if name[i] == '=' {`
    assert_eq!(
        not_start("--relaxed-read-only==true"),
        NotStartReason::InvalidBoolean { flag: "relaxed-read-only".into(), value: "=true".into() }
    );
    assert_eq!(flag("--log-format=a=b --relaxed-read-only"), (true, true));
    // Non-ASCII names are just unknown, never a crash.
    assert_eq!(not_start("-é=1"), NotStartReason::UndefinedFlag("é".into()));
}

#[test]
fn two_spellings_of_one_flag_stop_sysbox_mgr() {
    // context.go normalizeFlags: "Cannot use two forms of the same flag"
    assert_eq!(
        not_start("--log /a -l /b"),
        NotStartReason::TwoFormsOfSameFlag { first: "l".into(), second: "log".into() }
    );
    assert!(matches!(not_start("-h=false --help=false"), NotStartReason::TwoFormsOfSameFlag { .. }));
    assert!(matches!(not_start("-v=false -version=0"), NotStartReason::TwoFormsOfSameFlag { .. }));
    // One spelling twice is fine.
    assert!(p("-l /a -l /b --relaxed-read-only").starts());
    // app.go: the normalize error is reported before the parse error.
    assert!(matches!(not_start("-l /a --log /b --bogus"), NotStartReason::TwoFormsOfSameFlag { .. }));
}

#[test]
fn help_and_version_exit() {
    // app.go Run: `if !a.HideHelp && checkHelp(context) { ShowAppHelp; return nil }`
    for a in ["-h", "--h", "-help", "--help", "-h=true", "--help=1"] {
        assert_eq!(
            parse(&[a, "--relaxed-read-only"]).outcome,
            Outcome::WouldNotStart(NotStartReason::HelpRequested),
            "{a}"
        );
    }
    // app.go Run: `if !a.HideVersion && checkVersion(context) { ShowVersion; return nil }`
    for a in ["-v", "--version", "-v=T"] {
        assert_eq!(parse(&[a]).outcome, Outcome::WouldNotStart(NotStartReason::VersionRequested), "{a}");
    }
    // Set to false they do nothing.
    assert_eq!(flag("-h=false -v=0 --relaxed-read-only"), (true, true));
    // Help wins over version (checked first).
    assert_eq!(not_start("-v -h"), NotStartReason::HelpRequested);
    // A parse error comes before help.
    assert_eq!(not_start("-h --bogus"), NotStartReason::UndefinedFlag("bogus".into()));
}

#[test]
fn the_help_command_exits() {
    // app.go Setup appends helpCommand (Name "help", Aliases ["h"]); Run:
    // `if args.Present() { c := a.Command(name); if c != nil { return c.Run(context) } }`
    assert_eq!(not_start("--relaxed-read-only help"), NotStartReason::HelpCommand("help".into()));
    assert_eq!(not_start("h"), NotStartReason::HelpCommand("h".into()));
    assert_eq!(not_start("-- help"), NotStartReason::HelpCommand("help".into()));
    // Only the first positional argument counts.
    assert!(p("--relaxed-read-only foo help").starts());
    assert!(p("Help").starts());
}

#[test]
fn log_level_must_be_known() {
    // main.go app.Before: switch logLevel { case "debug", "info", "warning",
    // "error", "fatal" ... default: logrus.Fatalf(...) }; "" keeps info.
    for l in ["debug", "info", "warning", "error", "fatal"] {
        assert!(p(&format!("--log-level {l}")).starts(), "{l}");
    }
    assert!(parse(&["--log-level", ""]).starts());
    for l in ["warn", "trace", "panic", "INFO"] {
        assert_eq!(not_start(&format!("--log-level={l}")), NotStartReason::UnknownLogLevel(l.into()));
    }
    // app.go: Before runs after the help and version checks.
    assert_eq!(not_start("--log-level=warn -h"), NotStartReason::HelpRequested);
}

#[test]
fn cpu_and_memory_profiling_together_stop_sysbox_mgr() {
    // main.go runProfiler: "Unsupported parameter combination: cpu and memory profiling"
    assert_eq!(not_start("--cpu-profiling --memory-profiling"), NotStartReason::ProfilingConflict);
    assert!(p("--cpu-profiling --memory-profiling=false").starts());
    // app.go: the help command runs before the Action.
    assert_eq!(not_start("--cpu-profiling --memory-profiling help"), NotStartReason::HelpCommand("help".into()));
}

#[test]
fn the_log_file_is_reported_not_judged() {
    // main.go app.Before opens ctx.GlobalString("log"); normalizeFlags copies -l to log.
    assert_eq!(p("-l /var/log/sysbox-mgr.log").log_file.as_deref(), Some("/var/log/sysbox-mgr.log"));
    assert_eq!(p("--log=").log_file, None);
}

#[test]
fn arguments_beyond_what_execve_accepts() {
    // include/uapi/linux/binfmts.h MAX_ARG_STRLEN (PAGE_SIZE * 32, NUL included).
    let long = "x".repeat(MAX_ARG_BYTES + 1);
    assert_eq!(
        parse(&["--relaxed-read-only", long.as_str()]).outcome,
        Outcome::WouldNotStart(NotStartReason::ArgumentTooLong { index: 1, bytes: MAX_ARG_BYTES + 1 })
    );
    let fits = "x".repeat(MAX_ARG_BYTES);
    assert!(parse(&["--relaxed-read-only", fits.as_str()]).starts());
    // fs/exec.c bprm_stack_limits: at most 6 MiB of strings and pointers.
    let many = vec!["-t"; MAX_ARGV_BYTES / 11 + 1];
    assert!(matches!(parse(&many).outcome, Outcome::WouldNotStart(NotStartReason::ArgumentListTooLong { .. })));
}

#[test]
fn messages_cut_long_values() {
    let value = "y".repeat(10_000);
    let r = not_start(&format!("--relaxed-read-only={value}"));
    assert!(r.to_string().len() < 300, "{}", r.to_string().len());
}
