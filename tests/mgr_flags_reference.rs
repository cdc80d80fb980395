//! Differential test of sysbox-mgr's command line: generated argument lists
//! read by `sysbox::mgr_flags::parse` and by sysbox-mgr's own flag set on
//! urfave/cli v1.22.14 (the Go program in `tests/mgrflags`). Any
//! disagreement on whether sysbox-mgr starts, on `--relaxed-read-only`, on
//! whether it was mentioned, or on the arguments left over fails the test and
//! prints the case.
//!
//! Needs Go (it builds the reference once into the cache): without it the
//! test fails: there is no way to skip it into a pass.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sysbox_ro_webhook::sysbox::mgr_flags::{self, Outcome};

mod rng;
use rng::Rng;

const CASES: usize = 20_000;

/// Every `strconv.ParseBool` spelling, and values it refuses.
const BOOL_VALUES: &[&str] = &[
    "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False", "yes", "no", "on", "", "tRUE",
    "2", " true", "true ", "=true", "\"true\"",
];
const LOG_LEVELS: &[&str] = &["debug", "info", "warning", "error", "fatal", "warn", "", "INFO", "trace"];
const STRING_VALUES: &[&str] = &["/var/lib/sysbox", "x", "", "json", "text", "--relaxed-read-only", "-h", "a=b"];
/// Words that are not sysbox-mgr flags, or are flags in a form it refuses.
const STRAY: &[&str] = &[
    "foo",
    "false",
    "true",
    "help",
    "h",
    "Help",
    "-",
    "",
    "--",
    "---relaxed-read-only",
    "-=",
    "--=true",
    "--bogus",
    "-relaxed-readonly",
    "--relaxed-read-only-foo",
    "--Relaxed-Read-Only",
    "--allow-immutable-remounts",
    "-é",
    "\"--relaxed-read-only\"",
    "'--relaxed-read-only'",
    " --relaxed-read-only",
    "--relaxed-read-only ",
    "-relaxed-read-only\t",
    "--log-level=debug --relaxed-read-only",
];

fn dashes(rng: &mut Rng) -> &'static str {
    if rng.chance(50) {
        "-"
    } else {
        "--"
    }
}

/// One argument (or a flag and its value) of a generated command line.
fn token(rng: &mut Rng, names: &[&'static str], out: &mut Vec<String>) {
    let d = dashes(rng);
    match rng.below(100) {
        // The flag that matters, in every form.
        0..=29 => match rng.below(3) {
            0 => out.push(format!("{d}relaxed-read-only")),
            _ => out.push(format!("{d}relaxed-read-only={}", rng.pick(BOOL_VALUES))),
        },
        // Any declared flag, without or with a value, in both dash spellings.
        30..=59 => {
            let mut name = rng.pick(names);
            // help and version end the run: keep them rarer.
            if ["h", "help", "v", "version"].contains(&name) && rng.chance(70) {
                name = "disable-shiftfs";
            }
            if mgr_flags::takes_value(name) {
                let value = if name == "log-level" { rng.pick(LOG_LEVELS) } else { rng.pick(STRING_VALUES) };
                match rng.below(3) {
                    0 => out.push(format!("{d}{name}={value}")),
                    // Value as the next argument; sometimes missing at the very end.
                    1 => {
                        out.push(format!("{d}{name}"));
                        if rng.chance(90) {
                            out.push(value.to_string());
                        }
                    }
                    // Followed by another flag, which it then takes as its value.
                    _ => out.push(format!("{d}{name}")),
                }
            } else if rng.chance(70) {
                out.push(format!("{d}{name}"));
            } else {
                out.push(format!("{d}{name}={}", rng.pick(BOOL_VALUES)));
            }
        }
        // Log levels directly after --log-level.
        60..=64 => {
            out.push(format!("{d}log-level"));
            out.push(rng.pick(LOG_LEVELS).to_string());
        }
        // The same alias twice, or both spellings.
        65..=67 => {
            let (a, b) = *[("l", "log"), ("log", "log"), ("h", "help"), ("v", "version"), ("l", "l")]
                .get(rng.below(5))
                .unwrap_or(&("l", "log"));
            let (va, vb) = if a == "h" || a == "v" { ("=false", "=0") } else { ("=x", "=y") };
            out.push(format!("{d}{a}{va}"));
            out.push(format!("{}{b}{vb}", dashes(rng)));
        }
        // Profiling options, which refuse each other.
        68..=71 => {
            out.push(format!("{d}cpu-profiling"));
            if rng.chance(60) {
                out.push(format!("{}memory-profiling{}", dashes(rng), if rng.chance(30) { "=false" } else { "" }));
            }
        }
        // Stray words and malformed flags.
        _ => out.push(rng.pick(STRAY).to_string()),
    }
}

fn command_line(rng: &mut Rng, names: &[&'static str]) -> Vec<String> {
    let mut args = Vec::new();
    for _ in 0..rng.below(7) {
        token(rng, names, &mut args);
    }
    // The installer's unit appends this flag after the ConfigMap's.
    if rng.chance(50) {
        args.push("--disable-inner-image-preload".into());
    }
    args
}

fn reference_binary() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mgrflags/run.sh");
    let out = Command::new("bash").arg(script).stderr(Stdio::inherit()).output().expect("run tests/mgrflags/run.sh");
    assert!(out.status.success(), "building the Go reference failed: it needs Go on PATH");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 path");
    stdout.lines().last().expect("binary path").trim().to_string()
}

#[test]
fn mgr_flags_agree_with_sysbox_mgrs_urfave_cli() {
    let bin = reference_binary();
    let names: Vec<&'static str> = mgr_flags::flag_names().into_iter().collect();
    let mut rng = Rng(0x5eed_f1a6_0000_0011);
    let cases: Vec<Vec<String>> = (0..CASES).map(|_| command_line(&mut rng, &names)).collect();

    let mut child = Command::new(&bin).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start reference");
    let input = serde_json::to_vec(&json!({ "cases": cases })).expect("encode cases");
    child.stdin.take().expect("stdin").write_all(&input).expect("write cases");
    let out = child.wait_with_output().expect("reference output");
    assert!(out.status.success(), "reference failed");
    let results: Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    let results = results["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());

    let mut disagreements = Vec::new();
    let (mut started, mut relaxed_on, mut mentioned_off) = (0, 0, 0);
    for (args, go) in cases.iter().zip(results) {
        let ours = mgr_flags::parse(args);
        let go_starts = go["starts"].as_bool().expect("starts");
        let ours_starts = ours.outcome == Outcome::Starts;
        let agree = if go_starts {
            started += 1;
            relaxed_on += usize::from(go["relaxed"].as_bool() == Some(true));
            mentioned_off += usize::from(go["mentioned"].as_bool() == Some(false));
            ours_starts
                && Some(ours.relaxed_read_only) == go["relaxed"].as_bool()
                && Some(ours.mentioned) == go["mentioned"].as_bool()
                && json!(ours.positional) == go["args"]
        } else {
            !ours_starts
        };
        if !agree {
            disagreements.push(json!({
                "args": args,
                "urfave_cli": go,
                "ours": {
                    "outcome": format!("{:?}", ours.outcome),
                    "relaxed": ours.relaxed_read_only,
                    "mentioned": ours.mentioned,
                    "positional": ours.positional,
                },
            }));
        }
    }
    eprintln!(
        "{CASES} cases: {started} start ({relaxed_on} with relaxed-read-only on, {mentioned_off} without a mention), {} do not",
        CASES - started
    );
    // The generator must exercise both outcomes, and both flag values among starts.
    assert!(started > CASES / 5 && started < CASES * 4 / 5, "{started} of {CASES} start: generator is lopsided");
    assert!(relaxed_on > started / 10 && relaxed_on < started * 9 / 10, "relaxed on in {relaxed_on} of {started}");
    assert!(mentioned_off > started / 10, "not mentioned in only {mentioned_off} of {started}");
    assert!(
        disagreements.is_empty(),
        "{} disagreements with urfave/cli; first: {}",
        disagreements.len(),
        serde_json::to_string_pretty(&disagreements[0]).unwrap_or_default()
    );
}
