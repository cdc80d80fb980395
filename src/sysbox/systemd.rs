//! How systemd turns a service unit's `ExecStart=` into the argv it execs.
//!
//! Pure functions over strings, after systemd's own code (main branch, 2025):
//! unit files are read line-wise by `src/shared/conf-parser.c`
//! (`config_parse`, `parse_line`), `ExecStart=` values are split by
//! `config_parse_exec` (`src/core/load-fragment.c`) with
//! `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`
//! (`src/basic/extract-word.c`, escapes from `cunescape_one` in
//! `src/basic/escape.c`), `%` specifiers are resolved by `specifier_printf`
//! (`src/shared/specifier.c`), `$VAR`/`${VAR}` are expanded at exec time by
//! `replace_env_argv` (`src/basic/env-util.c`), and `service_verify`
//! (`src/core/service.c`) refuses a non-oneshot service with other than one
//! `ExecStart=`. The user-facing summary is systemd.service(5) "Command
//! lines" and systemd.syntax(7).

use std::collections::BTreeMap;
use std::fmt;

use super::mgr_flags::{arg_cost, ARGV_END_COST, MAX_ARGV_BYTES};

/// systemd's `LONG_LINE_MAX`: a longer unit-file line makes the whole file
/// fail to load.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// How much unit text (unit plus drop-ins) this module reads at all.
pub const MAX_UNIT_BYTES: usize = 4 * MAX_LINE_BYTES;

/// How many words one command line may produce here (the kernel refuses far
/// fewer in practice; see `mgr_flags::MAX_ARGV_BYTES`).
pub const MAX_WORDS: usize = 1 << 20;

/// `PATH_MAX` and `FILENAME_MAX`-style limits of systemd's path checks.
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

const WHITESPACE: &[u8] = b" \t\n\r";

/// Why a command line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A quote without its closing quote (or a backslash at the very end
    /// inside quotes): "Unbalanced quoting".
    UnbalancedQuoting,
    /// A `%` followed by a letter or digit systemd does not know.
    UnknownSpecifier(char),
    /// The executable word is empty (`-`, `@` alone, or nothing).
    EmptyPath,
    /// The executable contains control characters, quotes or backslashes.
    UnsafePath(String),
    /// The executable names a directory (ends in `/`).
    PathIsDirectory(String),
    /// Neither an absolute path nor a valid file name.
    InvalidPath(String),
    /// `@path` with no word after it for argv[0].
    EmptyArgv0,
    /// More than one command (`;` separated) where only one may run.
    MoreThanOneCommand(usize),
    /// The value produces more words than this model reads.
    TooManyWords,
    /// No command at all.
    Empty,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::UnbalancedQuoting => f.write_str("unbalanced quoting"),
            SplitError::UnknownSpecifier(c) => write!(f, "unknown specifier %{c}"),
            SplitError::EmptyPath => f.write_str("empty executable path"),
            SplitError::UnsafePath(p) => write!(f, "executable name contains special characters: {p:?}"),
            SplitError::PathIsDirectory(p) => write!(f, "executable path specifies a directory: {p:?}"),
            SplitError::InvalidPath(p) => write!(f, "neither a valid executable name nor an absolute path: {p:?}"),
            SplitError::EmptyArgv0 => f.write_str("empty executable name or zeroeth argument"),
            SplitError::MoreThanOneCommand(n) => write!(f, "{n} commands separated by ';' where one may run"),
            SplitError::TooManyWords => write!(f, "more than {MAX_WORDS} words"),
            SplitError::Empty => f.write_str("no command"),
        }
    }
}

impl std::error::Error for SplitError {}

/// The prefixes of the executable word (systemd.service(5), table
/// "Special executable prefixes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefixes {
    /// `-`: a failure of the command is ignored (and so are parse errors of
    /// this line).
    pub ignore_failure: bool,
    /// `@`: the second word is argv[0].
    pub separate_argv0: bool,
    /// `:`: no environment variable substitution.
    pub no_env_expand: bool,
    /// `+`: full privileges.
    pub privileged: bool,
    /// `!`: sandboxing without credential changes.
    pub no_setuid: bool,
    /// `!!`: like `!` on kernels without ambient capabilities (systemd 258
    /// and later ignore it).
    pub ambient_magic: bool,
    /// `|` (systemd 258 and later): the words go to a shell, which then
    /// decides the real argv; older versions refuse the path.
    pub via_shell: bool,
}

/// One command of an `ExecStart=` line, before environment expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    pub path: String,
    /// argv including argv[0], specifiers resolved, `$VAR` not yet expanded.
    pub argv: Vec<String>,
    pub prefixes: Prefixes,
    /// Specifiers whose value depends on the node (`%H`, `%m`, ...): they
    /// stand in the words as `%X` unresolved.
    pub node_specifiers: Vec<char>,
}

/// A failure reading one `ExecStart=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLineError {
    pub error: SplitError,
    /// With the `-` prefix systemd only warns and ignores the rest of the
    /// line; otherwise the unit fails to load ("bad-setting").
    pub ignored: bool,
}

/// `unit_name_unescape` (src/basic/unit-name.c): `-` stands for `/` and
/// `\xNN` for a byte.
fn unit_name_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' => out.push(b'/'),
            b'\\' if b.get(i + 1) == Some(&b'x') => {
                let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
                match (hex(b.get(i + 2)), hex(b.get(i + 3))) {
                    (Some(h), Some(l)) => {
                        out.push((h << 4 | l) as u8);
                        i += 3;
                    }
                    _ => out.push(b'\\'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    to_string(out)
}

/// The value specifier `%c` takes for unit `unit_name` in the system
/// manager: `None` when systemd does not know the letter, `Some(None)` when
/// the value depends on the node (host name, machine id, ...).
fn specifier_value(c: char, unit_name: &str) -> Option<Option<String>> {
    // "name@instance.type": %N drops the type, %p the instance too.
    let prefix_instance = unit_name.rsplit_once('.').map_or(unit_name, |(n, _)| n);
    let (prefix, instance) = match prefix_instance.split_once('@') {
        Some((p, i)) => (p, i),
        None => (prefix_instance, ""),
    };
    let last_component = prefix.rsplit('-').next().unwrap_or(prefix);
    let value = match c {
        'n' => Some(unit_name.to_string()),
        'N' => Some(prefix_instance.to_string()),
        'p' => Some(prefix.to_string()),
        'P' => Some(unit_name_unescape(prefix)),
        'i' => Some(instance.to_string()),
        'I' => Some(unit_name_unescape(instance)),
        'j' => Some(last_component.to_string()),
        'J' => Some(unit_name_unescape(last_component)),
        'f' => Some(format!("/{}", unit_name_unescape(if instance.is_empty() { prefix } else { instance }))),
        't' => Some("/run".into()),
        'S' => Some("/var/lib".into()),
        'C' => Some("/var/cache".into()),
        'L' => Some("/var/log".into()),
        'E' => Some("/etc".into()),
        'T' => Some("/tmp".into()),
        'V' => Some("/var/tmp".into()),
        'u' | 'g' => Some("root".into()),
        'U' | 'G' => Some("0".into()),
        'h' => Some("/root".into()),
        's' => Some("/bin/sh".into()),
        // Node-dependent: architecture, boot id, host names, machine id,
        // kernel release, os-release fields, credentials, fragment paths.
        'a' | 'A' | 'b' | 'B' | 'd' | 'D' | 'H' | 'l' | 'm' | 'M' | 'o' | 'q' | 'v' | 'w' | 'W' | 'y' | 'Y' => None,
        _ => return None,
    };
    Some(value)
}

/// `specifier_printf`: `%%` is `%`, a known specifier its value, an unknown
/// letter or digit an error, any other `%x` and a trailing `%` stay as they
/// are.
fn resolve_specifiers(word: &str, unit_name: &str, node: &mut Vec<char>) -> Result<String, SplitError> {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('%'),
            Some('%') => out.push('%'),
            Some(x) => match specifier_value(x, unit_name) {
                Some(Some(v)) => out.push_str(&v),
                Some(None) => {
                    if !node.contains(&x) {
                        node.push(x);
                    }
                    out.push('%');
                    out.push(x);
                }
                None if x.is_ascii_alphanumeric() => return Err(SplitError::UnknownSpecifier(x)),
                None => {
                    out.push('%');
                    out.push(x);
                }
            },
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq)]
enum Extract {
    /// Bad escape, trailing backslash or unbalanced quote (`-EINVAL`).
    Invalid,
}

/// `cunescape_one`: the escape after a backslash at `p[0]`; returns the
/// bytes it stands for and how many input bytes it used.
fn cunescape_one(p: &[u8]) -> Option<(Vec<u8>, usize)> {
    let hex = |c: u8| (c as char).to_digit(16);
    let one = |b: u8| Some((vec![b], 1));
    match *p.first()? {
        b'a' => one(0x07),
        b'b' => one(0x08),
        b'f' => one(0x0c),
        b'n' => one(b'\n'),
        b'r' => one(b'\r'),
        b't' => one(b'\t'),
        b'v' => one(0x0b),
        b'\\' => one(b'\\'),
        b'"' => one(b'"'),
        b'\'' => one(b'\''),
        b's' => one(b' '),
        b'x' => {
            let v = hex(*p.get(1)?)? << 4 | hex(*p.get(2)?)?;
            // "Don't allow NUL bytes"
            (v != 0).then(|| (vec![v as u8], 3))
        }
        b'u' | b'U' => {
            let n = if p[0] == b'u' { 4 } else { 8 };
            let mut v: u32 = 0;
            for i in 1..=n {
                v = v << 4 | hex(*p.get(i)?)?;
            }
            // "Don't allow 0 chars"; `\U` also refuses what
            // `unichar_is_valid` refuses, `\u` takes any 16-bit value.
            if v == 0 || (n == 8 && !unichar_is_valid(v)) {
                return None;
            }
            Some((utf8_encode(v), n + 1))
        }
        b'0'..=b'7' => {
            let oct = |c: u8| (b'0'..=b'7').contains(&c).then(|| u32::from(c - b'0'));
            let v = oct(p[0])? << 6 | oct(*p.get(1)?)? << 3 | oct(*p.get(2)?)?;
            (v != 0 && v <= 255).then(|| (vec![v as u8], 3))
        }
        _ => None,
    }
}

/// systemd's `unichar_is_valid` (src/basic/utf8.c).
fn unichar_is_valid(c: u32) -> bool {
    c < 0x11_0000 && (c & 0xFFFF_F800) != 0xD800 && !(0xFDD0..=0xFDEF).contains(&c) && (c & 0xFFFE) != 0xFFFE
}

/// `utf8_encode_unichar`: UTF-8 bytes of a code point, surrogates included
/// (they then fail UTF-8 validation later, as in systemd).
fn utf8_encode(c: u32) -> Vec<u8> {
    match c {
        0..=0x7f => vec![c as u8],
        0x80..=0x7ff => vec![0xc0 | (c >> 6) as u8, 0x80 | (c & 0x3f) as u8],
        0x800..=0xffff => vec![0xe0 | (c >> 12) as u8, 0x80 | ((c >> 6) & 0x3f) as u8, 0x80 | (c & 0x3f) as u8],
        _ => vec![
            0xf0 | ((c >> 18) & 0x07) as u8,
            0x80 | ((c >> 12) & 0x3f) as u8,
            0x80 | ((c >> 6) & 0x3f) as u8,
            0x80 | (c & 0x3f) as u8,
        ],
    }
}

/// `extract_first_word(p, EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE[|EXTRACT_UNESCAPE_RELAX])`.
/// Returns the word and where the next one starts, `None` at the end.
fn extract_word(s: &[u8], mut i: usize, relax: bool) -> Result<Option<(Vec<u8>, usize)>, Extract> {
    // Skip leading separators.
    while i < s.len() && WHITESPACE.contains(&s[i]) {
        i += 1;
    }
    if i >= s.len() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    loop {
        let Some(&c) = s.get(i) else {
            // End of input: fine outside quotes, unbalanced inside.
            return match quote {
                None => Ok(Some((out, i))),
                Some(_) => Err(Extract::Invalid),
            };
        };
        if c == b'\\' {
            i += 1;
            let Some(&e) = s.get(i) else {
                // Trailing backslash: kept verbatim only when relaxed and unquoted.
                if relax && quote.is_none() {
                    out.push(b'\\');
                    return Ok(Some((out, i)));
                }
                return Err(Extract::Invalid);
            };
            match cunescape_one(&s[i..]) {
                Some((bytes, used)) => {
                    out.extend_from_slice(&bytes);
                    i += used;
                }
                None if relax => {
                    out.push(b'\\');
                    out.push(e);
                    i += 1;
                }
                None => return Err(Extract::Invalid),
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => out.push(c),
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if WHITESPACE.contains(&c) => {
                // Skip the coalesced separators after the word.
                while i < s.len() && WHITESPACE.contains(&s[i]) {
                    i += 1;
                }
                return Ok(Some((out, i)));
            }
            None => out.push(c),
        }
        i += 1;
    }
}

/// `extract_first_word_and_warn`: an invalid escape is kept verbatim (with a
/// warning) by retrying relaxed; what still fails is unbalanced quoting.
fn extract_word_and_warn(s: &[u8], i: usize) -> Result<Option<(Vec<u8>, usize)>, SplitError> {
    match extract_word(s, i, false) {
        Ok(w) => Ok(w),
        Err(Extract::Invalid) => extract_word(s, i, true).map_err(|_| SplitError::UnbalancedQuoting),
    }
}

fn to_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// systemd's `string_is_safe`: no control characters, quotes or backslashes.
fn string_is_safe(s: &str) -> bool {
    !s.bytes().any(|b| b < b' ' || b == 0x7f || b == b'\\' || b == b'"' || b == b'\'')
}

fn path_is_valid(p: &str) -> bool {
    !p.is_empty() && p.len() < PATH_MAX && p.split('/').all(|c| c.len() <= NAME_MAX)
}

fn filename_is_valid(p: &str) -> bool {
    !p.is_empty() && p != "." && p != ".." && !p.contains('/') && p.len() <= NAME_MAX
}

/// `config_parse_exec` for one non-empty `ExecStart=` value of unit
/// `unit_name`: the commands it appends, or the error that stops it.
///
/// As in systemd, a problem with the very first word of a command only
/// makes systemd skip the rest of the line (the commands before it stay);
/// other errors fail the unit unless the command has the `-` prefix.
pub fn parse_exec_value(value: &str, unit_name: &str) -> Result<Vec<ExecCommand>, ExecLineError> {
    let s = value.as_bytes();
    let mut commands = Vec::new();
    let mut words_total = 0usize;
    let mut p = 0usize;
    loop {
        // A lone ";" as first word is a separator (`if (streq(firstword, ";"))`).
        let first = match extract_word_and_warn(s, p) {
            Ok(Some((w, next))) => {
                p = next;
                w
            }
            // `if (r <= 0) return 0;`: end of line, or a first word that
            // does not decode: the rest of the line is skipped, no error.
            Ok(None) | Err(_) => return Ok(commands),
        };
        if first == b";" {
            continue;
        }
        let first = to_string(first);
        let mut prefixes = Prefixes::default();
        let mut rest = first.as_str();
        while let Some(c) = rest.chars().next() {
            let any_priv = prefixes.privileged || prefixes.no_setuid || prefixes.ambient_magic;
            match c {
                '-' if !prefixes.ignore_failure => prefixes.ignore_failure = true,
                '@' if !prefixes.separate_argv0 => prefixes.separate_argv0 = true,
                ':' if !prefixes.no_env_expand => prefixes.no_env_expand = true,
                '+' if !any_priv => prefixes.privileged = true,
                '!' if !any_priv => prefixes.no_setuid = true,
                '!' if !(prefixes.privileged || prefixes.ambient_magic) => {
                    prefixes.no_setuid = false;
                    prefixes.ambient_magic = true;
                }
                '|' if !prefixes.via_shell => prefixes.via_shell = true,
                _ => break,
            }
            rest = &rest[1..];
        }
        let ignored = prefixes.ignore_failure;
        let fail = |error: SplitError| Err(ExecLineError { error, ignored });
        // With `-`, every error below ends the line quietly (`return ignore ? 0 : -ENOEXEC`).
        macro_rules! bail {
            ($e:expr) => {{
                if ignored {
                    return Ok(commands);
                }
                return fail($e);
            }};
        }
        let mut node_specifiers = Vec::new();
        let path = match resolve_specifiers(rest, unit_name, &mut node_specifiers) {
            Ok(p) => p,
            Err(e) => bail!(e),
        };
        if path.is_empty() {
            bail!(SplitError::EmptyPath);
        }
        if !string_is_safe(&path) {
            bail!(SplitError::UnsafePath(path));
        }
        if path.ends_with('/') {
            bail!(SplitError::PathIsDirectory(path));
        }
        let valid = if path.starts_with('/') { path_is_valid(&path) } else { filename_is_valid(&path) };
        if !valid {
            bail!(SplitError::InvalidPath(path));
        }
        let mut argv: Vec<String> = Vec::new();
        if !prefixes.separate_argv0 {
            argv.push(path.clone());
        }
        let mut semicolon = false;
        while p < s.len() {
            // An unquoted ";" word separates commands.
            if s[p] == b';' && s.get(p + 1).is_none_or(|c| WHITESPACE.contains(c)) {
                p += 1;
                while p < s.len() && WHITESPACE.contains(&s[p]) {
                    p += 1;
                }
                semicolon = true;
                break;
            }
            // "\;" as a word is a literal ";" argument.
            if s[p] == b'\\' && s.get(p + 1) == Some(&b';') && s.get(p + 2).is_none_or(|c| WHITESPACE.contains(c)) {
                p += 2;
                while p < s.len() && WHITESPACE.contains(&s[p]) {
                    p += 1;
                }
                argv.push(";".into());
                continue;
            }
            let word = match extract_word_and_warn(s, p) {
                Ok(Some((w, next))) => {
                    p = next;
                    w
                }
                Ok(None) => break,
                Err(e) => bail!(e),
            };
            words_total += 1;
            if words_total > MAX_WORDS {
                bail!(SplitError::TooManyWords);
            }
            match resolve_specifiers(&to_string(word), unit_name, &mut node_specifiers) {
                Ok(w) => argv.push(w),
                Err(e) => bail!(e),
            }
        }
        if argv.is_empty() {
            bail!(SplitError::EmptyArgv0);
        }
        commands.push(ExecCommand { path, argv, prefixes, node_specifiers });
        if !semicolon {
            return Ok(commands);
        }
    }
}

/// Split one `ExecStart=` value into argv (argv[0] included) as systemd
/// does for a unit of any name, requiring exactly one command. Specifiers
/// are resolved for a unit named `sysbox-mgr.service`; `$VAR` stays as
/// written (see [`expand_env`]).
pub fn split_command_line(s: &str) -> Result<Vec<String>, SplitError> {
    let commands = parse_exec_value(s, "sysbox-mgr.service").map_err(|e| e.error)?;
    match commands.len() {
        0 => Err(SplitError::Empty),
        1 => Ok(commands.into_iter().next().map(|c| c.argv).unwrap_or_default()),
        n => Err(SplitError::MoreThanOneCommand(n)),
    }
}

fn env_name_is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && !b[0].is_ascii_digit() && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// argv after `replace_env_argv`, and the variables it found unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub argv: Vec<String>,
    /// Valid names referenced but not in the environment (expanded to
    /// nothing here; a node's manager may set them).
    pub unset: Vec<String>,
    /// References that are not valid variable names (`$`, `$a-b`, `${}`):
    /// systemd always expands them to nothing.
    pub invalid: Vec<String>,
}

/// Record a reference that found no value: `unset` or `invalid`.
fn missing(name: &str, unset: &mut Vec<String>, invalid: &mut Vec<String>) {
    let list = if env_name_is_valid(name) { unset } else { invalid };
    if !list.iter().any(|u| u == name) {
        list.push(name.to_string());
    }
}

/// A piece of a word as `replace_env_full` reads it.
enum Piece<'w> {
    /// Text kept as it is (`$$` gives `$`).
    Text(&'w [u8]),
    /// A `${NAME}` reference: the variable's value, or `None` when it is
    /// unset or not a valid name (then it expands to nothing).
    Var(&'w str, Option<&'w str>),
}

/// `replace_env_full` with no flags, piece by piece: `${NAME}` is replaced
/// (by nothing when unset or invalid), `$$` becomes `$`, anything else stays.
fn word_pieces<'w>(word: &'w str, env: &'w BTreeMap<String, String>, mut piece: impl FnMut(Piece<'w>)) {
    let b = word.as_bytes();
    let (mut i, mut text) = (0, 0);
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                piece(Piece::Text(&b[text..=i]));
                i += 2;
                text = i;
                continue;
            }
            if b[i + 1] == b'{' {
                // `${NAME}`; a `:` inside (`${A:-b}`) is not supported without
                // flags and leaves the text as it is; so does a missing `}`.
                let body_start = i + 2;
                let close = b[body_start..].iter().position(|&c| c == b'}' || c == b':');
                if let Some(k) = close {
                    if b[body_start + k] == b'}' {
                        piece(Piece::Text(&b[text..i]));
                        let name = &word[body_start..body_start + k];
                        piece(Piece::Var(name, value_of(env, name)));
                        i = body_start + k + 1;
                        text = i;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    piece(Piece::Text(&b[text..]));
}

fn replace_env_in_word(
    word: &str,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
    invalid: &mut Vec<String>,
) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(word.len());
    word_pieces(word, env, |p| match p {
        Piece::Text(t) => out.extend_from_slice(t),
        Piece::Var(_, Some(v)) => out.extend_from_slice(v.as_bytes()),
        Piece::Var(name, None) => missing(name, unset, invalid),
    });
    to_string(out)
}

/// Split a variable's value as `strv_split_full(EXTRACT_RELAX|EXTRACT_UNQUOTE)`:
/// quotes are removed, a backslash takes the next byte literally, and an
/// unbalanced quote simply ends the word.
fn split_env_value(v: &str) -> Vec<String> {
    let s = v.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && WHITESPACE.contains(&s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return words;
        }
        let mut out = Vec::new();
        let mut quote: Option<u8> = None;
        while i < s.len() {
            let c = s[i];
            i += 1;
            if c == b'\\' {
                match s.get(i) {
                    Some(&e) => {
                        out.push(e);
                        i += 1;
                    }
                    None => break,
                }
                continue;
            }
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => out.push(c),
                None if c == b'\'' || c == b'"' => quote = Some(c),
                None if WHITESPACE.contains(&c) => break,
                None => out.push(c),
            }
        }
        words.push(to_string(out));
    }
}

/// `replace_env_argv`: a word that is exactly `$NAME` becomes the variable's
/// value split into words (none when unset); elsewhere only `${NAME}` and
/// `$$` are replaced.
///
/// A unit's own variables can multiply its text: a 1 MiB `ExecStart=` line of
/// `${X}` references to a 1 MiB `X` would expand to hundreds of gigabytes.
/// systemd would build that and execve(2) would refuse it, so the expanded
/// size is counted first, without building anything, and past what execve
/// ever accepts ([`MAX_ARGV_BYTES`]) the service cannot start: `Err` with the
/// bytes counted (at least that many). A variable's split is made once,
/// while counting, however often `$NAME` names it, and found again by its
/// name (a value may be a megabyte long).
pub fn expand_env(argv: &[String], env: &BTreeMap<String, String>) -> Result<Expanded, ArgvTooLong> {
    // Counted first, as execve counts: each word, then the NULL pointer.
    let mut splits: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut bytes = ARGV_END_COST;
    for word in argv {
        match whole_word_reference(word) {
            Some(name) => {
                if let Some(v) = value_of(env, name) {
                    let words = splits.entry(name).or_insert_with(|| split_env_value(v));
                    bytes = words.iter().fold(bytes, |b, w| b.saturating_add(arg_cost(w.len())));
                }
            }
            None => {
                let mut len = 0usize;
                word_pieces(word, env, |p| match p {
                    Piece::Text(t) => len = len.saturating_add(t.len()),
                    Piece::Var(_, v) => len = len.saturating_add(v.map_or(0, str::len)),
                });
                bytes = bytes.saturating_add(arg_cost(len));
            }
        }
        if bytes > MAX_ARGV_BYTES {
            return Err(ArgvTooLong { bytes });
        }
    }
    // Within the ceiling: build it, with the splits made while counting.
    let mut out = Vec::with_capacity(argv.len());
    let (mut unset, mut invalid) = (Vec::new(), Vec::new());
    for word in argv {
        match whole_word_reference(word) {
            Some(name) => match splits.get(name) {
                Some(words) => out.extend_from_slice(words),
                None => missing(name, &mut unset, &mut invalid),
            },
            None => out.push(replace_env_in_word(word, env, &mut unset, &mut invalid)),
        }
    }
    Ok(Expanded { argv: out, unset, invalid })
}

/// `NAME` when the word is exactly `$NAME` (not `${...}` or `$$...`): the
/// form whose value is split into words.
fn whole_word_reference(word: &str) -> Option<&str> {
    let b = word.as_bytes();
    (b.first() == Some(&b'$') && !matches!(b.get(1), Some(b'{') | Some(b'$'))).then(|| &word[1..])
}

/// The value a reference to `name` finds: none when unset or when `name` is
/// not a valid variable name.
fn value_of<'e>(env: &'e BTreeMap<String, String>, name: &str) -> Option<&'e str> {
    env.get(name).filter(|_| env_name_is_valid(name)).map(String::as_str)
}

/// An `ExecStart=` whose expanded arguments take more than [`MAX_ARGV_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgvTooLong {
    /// Bytes counted when the count passed the ceiling (the whole may be more).
    pub bytes: usize,
}

/// Why a unit would not run its `ExecStart=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    /// More text than this model reads, or a line over systemd's limit.
    TooLarge,
    /// A line over `LONG_LINE_MAX`: systemd fails to load the file.
    LineTooLong { file: usize, line: usize },
    /// A section header without its closing `]`: the file fails to load.
    BadSectionHeader { file: usize, line: usize },
    /// An `ExecStart=` value systemd refuses: the unit fails to load.
    BadExecStart { file: usize, line: usize, error: SplitError },
    /// No `ExecStart=` remains: "Service has no ExecStart=... Refusing."
    NoExecStart,
    /// "Service has more than one ExecStart= setting, which is only allowed
    /// for Type=oneshot services. Refusing."
    MoreThanOneExecStart(usize),
    /// The unit's variables expand `ExecStart=` past what execve(2) accepts:
    /// the service fails to start (E2BIG).
    ExpandsPastExec(ArgvTooLong),
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |file: &usize| if *file == 0 { "the unit".to_string() } else { format!("drop-in {file}") };
        match self {
            UnitError::TooLarge => write!(f, "unit text over {MAX_UNIT_BYTES} bytes"),
            UnitError::LineTooLong { file, line } => {
                write!(f, "{} line {line} is over {MAX_LINE_BYTES} bytes", name(file))
            }
            UnitError::BadSectionHeader { file, line } => {
                write!(f, "{} line {line}: invalid section header", name(file))
            }
            UnitError::BadExecStart { file, line, error } => {
                write!(f, "{} line {line}: ExecStart= refused: {error}", name(file))
            }
            UnitError::NoExecStart => f.write_str("the service has no ExecStart="),
            UnitError::MoreThanOneExecStart(n) => {
                write!(f, "the service has {n} ExecStart= commands, allowed only for Type=oneshot")
            }
            UnitError::ExpandsPastExec(t) => write!(
                f,
                "Environment= expands ExecStart= to at least {} bytes of arguments, more than execve(2) ever \
                 accepts ({MAX_ARGV_BYTES}): the service fails to start",
                t.bytes
            ),
        }
    }
}

impl std::error::Error for UnitError {}

/// One `key=value` assignment of a unit file, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// 0 for the unit file, 1.. for the drop-ins in the order given.
    pub file: usize,
    /// 1-based line number of the assignment's first physical line.
    pub line: usize,
}

/// Read one unit file as `config_parse` does (the caller passes the file
/// as text: systemd refuses a file that is not UTF-8): comment lines (`#`, `;`) are
/// skipped even inside a continuation, a line ending in an unescaped
/// backslash continues on the next (the backslash becomes a space), `[Name]`
/// opens a section, `key=value` lines are stripped of surrounding
/// whitespace, and lines without `=` are ignored.
pub fn parse_unit_file(text: &str, file: usize) -> Result<Vec<Assignment>, UnitError> {
    if text.len() > MAX_UNIT_BYTES {
        return Err(UnitError::TooLarge);
    }
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut continuation: Option<(String, usize)> = None;
    let mut text = text;
    // A UTF-8 byte order mark at the start is skipped.
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        text = rest;
    }
    for (n, raw) in lines(text).enumerate() {
        let line_no = n + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(UnitError::LineTooLong { file, line: line_no });
        }
        let trimmed = raw.trim_start_matches([' ', '\t', '\n', '\r']);
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        // systemd rescans the whole joined line for a trailing unescaped
        // backslash; the part joined before ends in the space that replaced
        // one, so scanning only the new part gives the same answer in
        // linear time.
        let (mut joined, start) = match continuation.take() {
            Some((mut c, start)) => {
                c.push_str(raw);
                (c, start)
            }
            None => (raw.to_string(), line_no),
        };
        if joined.len() > MAX_LINE_BYTES {
            return Err(UnitError::LineTooLong { file, line: start });
        }
        let mut escaped = false;
        for b in raw.bytes() {
            escaped = if escaped { false } else { b == b'\\' };
        }
        if escaped {
            joined.pop();
            joined.push(' ');
            continuation = Some((joined, start));
            continue;
        }
        parse_line(&joined, file, start, &mut section, &mut out)?;
    }
    if let Some((joined, start)) = continuation {
        parse_line(&joined, file, start, &mut section, &mut out)?;
    }
    Ok(out)
}

/// The lines of a unit file as `read_line` (src/basic/fileio.c) cuts them:
/// a line ends at `\n`, `\r` or NUL; a run of different end characters
/// (`\r\n`, `\n\r`) is one end, a repeated one (`\n\n`, `\r\r`) ends an
/// empty line too, and nothing follows a NUL in the same end.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    const NONE: u8 = 0;
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut eol = NONE;
        let mut end = None;
        while i < bytes.len() {
            let kind = match bytes[i] {
                b'\n' => 1,
                b'\r' => 2,
                0 => 4,
                _ => NONE,
            };
            if eol != NONE && (eol & 4 != 0 || kind == NONE || eol & kind != 0) {
                break;
            }
            if kind != NONE {
                end.get_or_insert(i);
                eol |= kind;
            }
            i += 1;
        }
        let line = &text[start..end.unwrap_or(i)];
        start = i;
        // Text after the last line end is a last line, unless there is none.
        if i >= bytes.len() && eol == NONE {
            done = true;
            if line.is_empty() {
                return None;
            }
        }
        Some(line)
    })
}

fn parse_line(
    l: &str,
    file: usize,
    line: usize,
    section: &mut Option<String>,
    out: &mut Vec<Assignment>,
) -> Result<(), UnitError> {
    let l = l.trim_matches([' ', '\t', '\n', '\r']);
    if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
        return Ok(());
    }
    if let Some(h) = l.strip_prefix('[') {
        // "Invalid section header", "Bad characters in section header".
        let Some(name) = h.strip_suffix(']').filter(|n| string_is_safe(n)) else {
            return Err(UnitError::BadSectionHeader { file, line });
        };
        *section = Some(name.to_string());
        return Ok(());
    }
    // An assignment outside any section, or without '=', is ignored.
    let (Some(sec), Some((k, v))) = (section.as_ref(), l.split_once('=')) else {
        return Ok(());
    };
    out.push(Assignment {
        section: sec.clone(),
        key: k.trim_matches([' ', '\t', '\n', '\r']).to_string(),
        value: v.trim_matches([' ', '\t', '\n', '\r']).to_string(),
        file,
        line,
    });
    Ok(())
}

/// `config_parse_environ`: words (quotes and C escapes decoded, specifiers
/// resolved) that are valid `NAME=value` assignments; an empty value resets.
fn apply_environment(value: &str, unit_name: &str, env: &mut BTreeMap<String, String>) {
    if value.is_empty() {
        env.clear();
        return;
    }
    let s = value.as_bytes();
    let mut p = 0;
    // Strict extraction: invalid syntax ignores the rest of the line.
    while let Ok(Some((w, next))) = extract_word(s, p, false) {
        p = next;
        let mut node = Vec::new();
        let Ok(word) = resolve_specifiers(&to_string(w), unit_name, &mut node) else {
            continue;
        };
        if let Some((k, v)) = word.split_once('=') {
            if env_name_is_valid(k) {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
}

/// What a service's `[Service]` section resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceExec {
    /// The single `ExecStart=` command, environment expanded unless `:`.
    pub command: ExecCommand,
    /// argv as the process receives it (with `command.prefixes.via_shell`,
    /// the words a shell then interprets).
    pub argv: Vec<String>,
    /// Variables the command references that no `Environment=` sets; the
    /// node's manager may still provide some (PATH, INVOCATION_ID, ...).
    pub unset_variables: Vec<String>,
    /// The last valid `Type=` (default `simple`).
    pub service_type: String,
}

const SERVICE_TYPES: &[&str] = &["simple", "exec", "forking", "oneshot", "dbus", "notify", "notify-reload", "idle"];

/// Resolve the `ExecStart=` of unit `unit_name` from its unit file and its
/// drop-ins (in the order systemd reads them: sorted by file name).
pub fn resolve_service(unit: &str, dropins: &[&str], unit_name: &str) -> Result<ServiceExec, UnitError> {
    let total = dropins.iter().fold(unit.len(), |acc, d| acc.saturating_add(d.len()));
    if total > MAX_UNIT_BYTES {
        return Err(UnitError::TooLarge);
    }
    let mut exec: Vec<ExecCommand> = Vec::new();
    let mut env = BTreeMap::new();
    let mut service_type = "simple".to_string();
    for (file, text) in std::iter::once(unit).chain(dropins.iter().copied()).enumerate() {
        for a in parse_unit_file(text, file)? {
            if a.section != "Service" {
                continue;
            }
            match a.key.as_str() {
                "ExecStart" if a.value.is_empty() => exec.clear(),
                "ExecStart" => match parse_exec_value(&a.value, unit_name) {
                    Ok(cmds) => exec.extend(cmds),
                    Err(e) => return Err(UnitError::BadExecStart { file: a.file, line: a.line, error: e.error }),
                },
                "Type" if SERVICE_TYPES.contains(&a.value.as_str()) => service_type = a.value,
                "Environment" => apply_environment(&a.value, unit_name, &mut env),
                _ => {}
            }
        }
    }
    match exec.len() {
        0 => return Err(UnitError::NoExecStart),
        1 => {}
        n if service_type != "oneshot" => return Err(UnitError::MoreThanOneExecStart(n)),
        _ => {}
    }
    let command = exec.swap_remove(0);
    let (argv, unset_variables) = if command.prefixes.no_env_expand {
        (command.argv.clone(), Vec::new())
    } else {
        let e = expand_env(&command.argv, &env).map_err(UnitError::ExpandsPastExec)?;
        (e.argv, e.unset)
    };
    Ok(ServiceExec { command, argv, unset_variables, service_type })
}

/// The argv (argv[0] included) a service runs, from its unit text and
/// drop-ins, as systemd resolves them for `sysbox-mgr.service`, with the
/// unit's own `Environment=` expanded (variables from elsewhere count as
/// unset; [`resolve_service`] lists them). `Ok(None)` when no `ExecStart=`
/// remains, which systemd refuses to start; `Err` for the other reasons the
/// service cannot run.
pub fn effective_exec_start(unit: &str, dropins: &[&str]) -> Result<Option<Vec<String>>, UnitError> {
    match resolve_service(unit, dropins, "sysbox-mgr.service") {
        Ok(s) => Ok(Some(s.argv)),
        Err(UnitError::NoExecStart) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
