//! sysbox-mgr's command line, read the way sysbox-mgr reads it.
//!
//! sysbox-mgr (`main.go`) declares its flags with urfave/cli v1.22.14, which
//! hands `os.Args[1:]` to a Go `flag.FlagSet` (`flag.ContinueOnError`), then
//! checks the parsed set (two spellings of one flag, `--help`, `--version`),
//! runs the app's `Before` (log level) and its `Action` (profiling options),
//! and only then starts the daemon. Any error on that path ends in
//! `logrus.Fatal`: the process exits and the node runs no Sysbox at all.
//!
//! [`parse`] follows that path step by step, without I/O. Every rule names
//! the upstream line it comes from; `docs/sysbox-mgr-flags.md` explains them
//! and the differential test in `tests/mgrflags` holds this module to the
//! real urfave/cli code.

use std::collections::BTreeSet;
use std::fmt;

/// The longest argument `execve(2)` accepts: `MAX_ARG_STRLEN`, 32 pages of
/// 4 KiB including the terminating NUL (include/uapi/linux/binfmts.h). A
/// longer one makes the exec fail with `E2BIG`.
pub const MAX_ARG_BYTES: usize = 32 * 4096 - 1;

/// The most argument bytes (strings, their NULs and one pointer each) any
/// `execve(2)` accepts: the kernel caps the argument and environment area at
/// three quarters of `_STK_LIM` (8 MiB), whatever the stack limit
/// (fs/exec.c, `bprm_stack_limits`). More than this never starts.
pub const MAX_ARGV_BYTES: usize = 8 * 1024 * 1024 / 4 * 3;

/// How much of a value a [`NotStartReason`] keeps for its message.
const SHOWN: usize = 80;

/// What kind of value a flag takes (urfave/cli v1.22.14 `flag_bool.go`,
/// `flag_bool_t.go`, `flag_string.go`: `set.Bool` and `set.String`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `cli.BoolFlag` (default false) or `cli.BoolTFlag` (default true).
    Bool { default: bool },
    /// `cli.StringFlag`: takes a value, from `=value` or the next argument.
    String,
}

/// One flag as sysbox-mgr declares it; `names` are the comma-separated
/// spellings of its `Name` (urfave/cli `eachName`), each a Go flag of its own.
struct FlagDef {
    names: &'static [&'static str],
    kind: Kind,
}

const BOOL: Kind = Kind::Bool { default: false };
const BOOL_T: Kind = Kind::Bool { default: true };

/// sysbox-mgr's flags, in `app.Flags` order (sysbox-mgr `main.go`,
/// <https://github.com/nestybox/sysbox-mgr/blob/master/main.go>), followed by
/// the two urfave/cli appends in `App.Setup` (app.go): `HelpFlag`
/// (`help, h`) and `VersionFlag` (`version, v`). The order matters: the
/// two-spellings check walks this list and reports the first clash.
const FLAGS: &[FlagDef] = &[
    FlagDef { names: &["log", "l"], kind: Kind::String },
    FlagDef { names: &["log-level"], kind: Kind::String },
    FlagDef { names: &["log-format"], kind: Kind::String },
    FlagDef { names: &["alias-dns"], kind: BOOL_T },
    FlagDef { names: &["cpu-profiling"], kind: BOOL },
    FlagDef { names: &["memory-profiling"], kind: BOOL },
    FlagDef { names: &["data-root"], kind: Kind::String },
    FlagDef { names: &["disable-shiftfs"], kind: BOOL },
    FlagDef { names: &["disable-shiftfs-on-fuse"], kind: BOOL },
    FlagDef { names: &["disable-shiftfs-precheck"], kind: BOOL },
    FlagDef { names: &["disable-idmapped-mount"], kind: BOOL },
    FlagDef { names: &["disable-rootfs-cloning"], kind: BOOL },
    FlagDef { names: &["disable-ovfs-on-idmapped-mount"], kind: BOOL },
    FlagDef { names: &["disable-inner-image-preload"], kind: BOOL },
    FlagDef { names: &["ignore-sysfs-chown"], kind: BOOL },
    FlagDef { names: &["allow-trusted-xattr"], kind: BOOL },
    FlagDef { names: &["honor-caps"], kind: BOOL },
    FlagDef { names: &["syscont-mode"], kind: BOOL_T },
    FlagDef { names: &["relaxed-read-only"], kind: BOOL },
    FlagDef { names: &["fsuid-map-fail-on-error"], kind: BOOL },
    FlagDef { names: &["help", "h"], kind: BOOL },
    FlagDef { names: &["version", "v"], kind: BOOL },
];

const RELAXED_READ_ONLY: usize = 18;
const LOG: usize = 0;
const LOG_LEVEL: usize = 1;
const CPU_PROFILING: usize = 4;
const MEMORY_PROFILING: usize = 5;
const HELP: usize = 20;
const VERSION: usize = 21;

/// The log levels sysbox-mgr's `app.Before` accepts; any other value ends in
/// `logrus.Fatalf("'%v' log-level option not recognized")` (main.go). An
/// empty value means `info`.
const LOG_LEVELS: &[&str] = &["", "debug", "info", "warning", "error", "fatal"];

/// Whether sysbox-mgr gets past its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It parses its flags and goes on to start the daemon (which may still
    /// fail for reasons outside the command line: host checks, the log file).
    Starts,
    /// It exits before starting: the node runs no Sysbox at all.
    WouldNotStart(NotStartReason),
}

/// Why sysbox-mgr exits at start. Values are cut to a readable length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStartReason {
    /// One argument is longer than `execve(2)` accepts (`E2BIG`).
    ArgumentTooLong { index: usize, bytes: usize },
    /// All arguments together exceed what `execve(2)` accepts (`E2BIG`).
    ArgumentListTooLong { bytes: usize },
    /// `-`, `--` followed by `-` or `=`, or `-=`: Go's "bad flag syntax".
    BadFlagSyntax(String),
    /// A flag sysbox-mgr does not declare: "flag provided but not defined".
    UndefinedFlag(String),
    /// A boolean flag with a value `strconv.ParseBool` refuses.
    InvalidBoolean { flag: String, value: String },
    /// A string flag last on the line, with nothing to take as its value.
    NeedsArgument(String),
    /// Both spellings of one flag (`--log` and `-l`, `-h` and `--help`, ...).
    TwoFormsOfSameFlag { first: String, second: String },
    /// `-h`/`--help` (true): prints the help and exits.
    HelpRequested,
    /// `-v`/`--version` (true): prints the version and exits.
    VersionRequested,
    /// The first positional argument is urfave/cli's built-in `help`
    /// command (`help` or `h`): prints help and exits.
    HelpCommand(String),
    /// `--log-level` with a value sysbox-mgr does not know.
    UnknownLogLevel(String),
    /// `--cpu-profiling` and `--memory-profiling` together.
    ProfilingConflict,
}

impl fmt::Display for NotStartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotStartReason::ArgumentTooLong { index, bytes } => write!(
                f,
                "argument {} is {bytes} bytes, more than execve(2) accepts ({MAX_ARG_BYTES}): the exec fails",
                index + 1
            ),
            NotStartReason::ArgumentListTooLong { bytes } => write!(
                f,
                "the arguments take {bytes} bytes, more than execve(2) ever accepts ({MAX_ARGV_BYTES}): the exec fails"
            ),
            NotStartReason::BadFlagSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            NotStartReason::UndefinedFlag(name) => write!(f, "unknown flag -{name}"),
            NotStartReason::InvalidBoolean { flag, value } => {
                write!(f, "invalid boolean value {value:?} for -{flag}")
            }
            NotStartReason::NeedsArgument(name) => write!(f, "flag -{name} needs a value and none follows"),
            NotStartReason::TwoFormsOfSameFlag { first, second } => {
                write!(f, "two forms of the same flag: -{first} and -{second}")
            }
            NotStartReason::HelpRequested => f.write_str("-h/--help is set: sysbox-mgr prints its help and exits"),
            NotStartReason::VersionRequested => {
                f.write_str("-v/--version is set: sysbox-mgr prints its version and exits")
            }
            NotStartReason::HelpCommand(word) => {
                write!(f, "the first non-flag argument {word:?} runs the built-in help command, which exits")
            }
            NotStartReason::UnknownLogLevel(level) => {
                write!(f, "--log-level {level:?} is not one of debug, info, warning, error, fatal: sysbox-mgr exits")
            }
            NotStartReason::ProfilingConflict => {
                f.write_str("--cpu-profiling and --memory-profiling together: sysbox-mgr refuses the combination")
            }
        }
    }
}

/// sysbox-mgr's reading of one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgrCommandLine {
    pub outcome: Outcome,
    /// The value sysbox-mgr's flag set holds for `relaxed-read-only` after
    /// parsing (sysbox-mgr's default, false, when not mentioned). Only
    /// meaningful to the node when `outcome` is [`Outcome::Starts`].
    pub relaxed_read_only: bool,
    /// Whether the flag was set on the command line (a mention that failed to
    /// parse, such as `--relaxed-read-only=yes`, does not count).
    pub mentioned: bool,
    /// The arguments left after the flags (Go's `FlagSet.Args()`), which
    /// sysbox-mgr ignores unless the first is `help` or `h`.
    pub positional: Vec<String>,
    /// `--log`/`-l`: sysbox-mgr opens this file at start and exits when it
    /// cannot; whether it can depends on the node, not the command line.
    pub log_file: Option<String>,
    /// The arguments as given (after argv[0]).
    pub args: Vec<String>,
}

impl MgrCommandLine {
    pub fn starts(&self) -> bool {
        self.outcome == Outcome::Starts
    }

    /// The flag as the running daemon has it: `Some` only when it starts.
    pub fn effective_relaxed_read_only(&self) -> Option<bool> {
        self.starts().then_some(self.relaxed_read_only)
    }
}

/// Go's `strconv.ParseBool`, which `flag`'s boolean `Set` uses.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

#[derive(Debug, Clone)]
enum Value {
    Bool(bool),
    String(String),
}

/// The parsed flag set: one value per Go flag name, and which names parsing
/// set (Go's `FlagSet.actual`, what `Visit` walks).
struct FlagSet {
    values: Vec<Vec<Value>>,
    visited: Vec<Vec<bool>>,
}

impl FlagSet {
    fn new() -> FlagSet {
        let values = FLAGS
            .iter()
            .map(|d| {
                let v = match d.kind {
                    Kind::Bool { default } => Value::Bool(default),
                    Kind::String => Value::String(String::new()),
                };
                vec![v; d.names.len()]
            })
            .collect();
        let visited = FLAGS.iter().map(|d| vec![false; d.names.len()]).collect();
        FlagSet { values, visited }
    }

    fn lookup(name: &str) -> Option<(usize, usize)> {
        FLAGS.iter().enumerate().find_map(|(i, d)| d.names.iter().position(|n| *n == name).map(|j| (i, j)))
    }

    /// urfave/cli `normalizeFlags` (context.go): a flag set under one of its
    /// spellings is copied to the others; set under two, it is an error.
    fn normalize(&mut self) -> Result<(), NotStartReason> {
        for (i, def) in FLAGS.iter().enumerate() {
            if def.names.len() == 1 {
                continue;
            }
            let mut set_as: Option<usize> = None;
            for (j, name) in def.names.iter().enumerate() {
                if self.visited[i][j] {
                    if let Some(first) = set_as {
                        // The message names the later spelling first, as urfave/cli does.
                        return Err(NotStartReason::TwoFormsOfSameFlag {
                            first: (*name).to_string(),
                            second: def.names[first].to_string(),
                        });
                    }
                    set_as = Some(j);
                }
            }
            if let Some(j) = set_as {
                let v = self.values[i][j].clone();
                self.values[i].iter_mut().for_each(|slot| *slot = v.clone());
            }
        }
        Ok(())
    }

    fn bool(&self, i: usize) -> bool {
        // After normalize every spelling holds the same value; urfave/cli's
        // checkHelp/checkVersion ask each spelling, so any true counts.
        self.values[i].iter().any(|v| matches!(v, Value::Bool(true)))
    }

    fn string(&self, i: usize) -> &str {
        match &self.values[i][0] {
            Value::String(s) => s,
            Value::Bool(_) => "",
        }
    }

    fn mentioned(&self, i: usize) -> bool {
        self.visited[i].iter().any(|v| *v)
    }
}

/// Parse sysbox-mgr's arguments (argv without argv[0]) as sysbox-mgr does.
pub fn parse(args: &[impl AsRef<str>]) -> MgrCommandLine {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut set = FlagSet::new();
    let mut positional: &[&str] = &[];

    let outcome = match exec_limits(&args).and_then(|()| parse_flags(&args, &mut set, &mut positional)) {
        Err(e) => {
            // urfave/cli App.Run (app.go): normalizeFlags runs on what was
            // parsed before the error and its error is reported first.
            let nerr = set.normalize().err();
            Outcome::WouldNotStart(nerr.unwrap_or(e))
        }
        Ok(()) => match set.normalize().and_then(|()| after_parse(&set, positional)) {
            Err(e) => Outcome::WouldNotStart(e),
            Ok(()) => Outcome::Starts,
        },
    };

    MgrCommandLine {
        outcome,
        relaxed_read_only: set.bool(RELAXED_READ_ONLY),
        mentioned: set.mentioned(RELAXED_READ_ONLY),
        positional: positional.iter().map(|s| s.to_string()).collect(),
        log_file: set.mentioned(LOG).then(|| set.string(LOG).to_string()).filter(|p| !p.is_empty()),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// What one argument of `len` bytes takes of [`MAX_ARGV_BYTES`], as execve(2)
/// counts it: its bytes, its NUL and its pointer.
pub fn arg_cost(len: usize) -> usize {
    len.saturating_add(1 + std::mem::size_of::<u64>())
}

/// What the closing NULL pointer of an argument list takes.
pub const ARGV_END_COST: usize = std::mem::size_of::<u64>();

/// execve(2) refuses argument lists the kernel cannot copy (fs/exec.c):
/// sysbox-mgr never runs, and nothing longer is ever looked at.
fn exec_limits(args: &[&str]) -> Result<(), NotStartReason> {
    // argv[0] (`/usr/bin/sysbox-mgr`) and the closing NULL pointer count too.
    let mut total: usize = arg_cost("/usr/bin/sysbox-mgr".len()) + ARGV_END_COST;
    for (index, a) in args.iter().enumerate() {
        if a.len() > MAX_ARG_BYTES {
            return Err(NotStartReason::ArgumentTooLong { index, bytes: a.len() });
        }
        total = total.saturating_add(arg_cost(a.len()));
        if total > MAX_ARGV_BYTES {
            return Err(NotStartReason::ArgumentListTooLong { bytes: total });
        }
    }
    Ok(())
}

/// Go's `flag.FlagSet.Parse` with `parseOne` (src/flag/flag.go), over
/// sysbox-mgr's flag set. On success `positional` holds `FlagSet.Args()`.
fn parse_flags<'a>(
    args: &'a [&'a str],
    set: &mut FlagSet,
    positional: &mut &'a [&'a str],
) -> Result<(), NotStartReason> {
    let mut i = 0;
    while i < args.len() {
        let s = args[i];
        let b = s.as_bytes();
        // flag.go parseOne: `if len(s) < 2 || s[0] != '-'` ends the flags; the
        // argument stays for Args().
        if b.len() < 2 || b[0] != b'-' {
            break;
        }
        let mut minuses = 1;
        if b[1] == b'-' {
            minuses = 2;
            // `"--" terminates the flags` and is itself dropped.
            if b.len() == 2 {
                i += 1;
                break;
            }
        }
        let name = &s[minuses..];
        // `if len(name) == 0 || name[0] == '-' || name[0] == '='`
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(NotStartReason::BadFlagSyntax(shown(s)));
        }
        i += 1;
        // `for i := 1; i < len(name); i++ { if name[i] == '=' ...`: the value
        // follows the first `=` after the name's first byte.
        // (`=` is ASCII, so the byte position is a char boundary.)
        let (name, value) = match name.as_bytes()[1..].iter().position(|&c| c == b'=') {
            Some(k) => (&name[..k + 1], Some(&name[k + 2..])),
            None => (name, None),
        };
        let Some((fi, fj)) = FlagSet::lookup(name) else {
            // `flag provided but not defined` (help/h are defined here).
            return Err(NotStartReason::UndefinedFlag(shown(name)));
        };
        match FLAGS[fi].kind {
            // `if fv, ok := flag.Value.(boolFlag); ok && fv.IsBoolFlag()`: a
            // boolean takes `=value` or nothing, never the next argument.
            Kind::Bool { .. } => {
                let v = match value {
                    None => true,
                    Some(v) => parse_go_bool(v)
                        .ok_or_else(|| NotStartReason::InvalidBoolean { flag: name.to_string(), value: shown(v) })?,
                };
                set.values[fi][fj] = Value::Bool(v);
            }
            // `It must have a value, which might be the next argument.`
            Kind::String => {
                let v = match value {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1]
                    }
                    None => return Err(NotStartReason::NeedsArgument(name.to_string())),
                };
                set.values[fi][fj] = Value::String(v.to_string());
            }
        }
        // `f.actual[name] = flag` once the value is set.
        set.visited[fi][fj] = true;
    }
    *positional = &args[i..];
    Ok(())
}

/// What urfave/cli's `App.Run` and sysbox-mgr do once the flags parse.
fn after_parse(set: &FlagSet, positional: &[&str]) -> Result<(), NotStartReason> {
    // app.go: `if !a.HideHelp && checkHelp(context) { ShowAppHelp; return nil }`
    if set.bool(HELP) {
        return Err(NotStartReason::HelpRequested);
    }
    // app.go: `if !a.HideVersion && checkVersion(context)`. sysbox-mgr's
    // release builds set app.Version (its Makefile passes -X main.version),
    // so the version flag exists.
    if set.bool(VERSION) {
        return Err(NotStartReason::VersionRequested);
    }
    // sysbox-mgr main.go app.Before: the log-level switch; its default case
    // is logrus.Fatalf. (The log file is opened first; see `log_file`.)
    let level = set.string(LOG_LEVEL);
    if set.mentioned(LOG_LEVEL) && !LOG_LEVELS.contains(&level) {
        return Err(NotStartReason::UnknownLogLevel(shown(level)));
    }
    // app.go: `if args.Present() { c := a.Command(args.First()) ... }`: the
    // only command is urfave/cli's own `help` (alias `h`), added by Setup.
    if let Some(first) = positional.first() {
        if *first == "help" || *first == "h" {
            return Err(NotStartReason::HelpCommand((*first).to_string()));
        }
    }
    // sysbox-mgr main.go runProfiler: "Unsupported parameter combination".
    if set.bool(CPU_PROFILING) && set.bool(MEMORY_PROFILING) {
        return Err(NotStartReason::ProfilingConflict);
    }
    Ok(())
}

/// The flag names sysbox-mgr accepts (every spelling), for messages and tests.
pub fn flag_names() -> BTreeSet<&'static str> {
    FLAGS.iter().flat_map(|d| d.names.iter().copied()).collect()
}

/// Whether `name` (without dashes) is a sysbox-mgr flag that takes a value.
pub fn takes_value(name: &str) -> bool {
    FlagSet::lookup(name).is_some_and(|(i, _)| FLAGS[i].kind == Kind::String)
}

#[cfg(test)]
mod tests;
