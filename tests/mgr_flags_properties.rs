//! Properties of the sysbox-mgr command-line model over generated input:
//! hostile text never panics and stays within its bounds, systemd quoting
//! round-trips, and a plain SYSBOX_MGR_CONFIG value reaches sysbox-mgr as
//! its words followed by the unit's own flag.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sysbox_ro_webhook::sysbox::{installed_mgr, mgr_flags, systemd, InstalledMgr};

/// Characters that mean something to sed, systemd or the flag parser.
fn tricky() -> impl Strategy<Value = String> {
    // Compiled once: a `&str` strategy would parse its regex for every value.
    let word = proptest::string::string_regex("[a-zA-Z0-9é]{1,4}").expect("regex");
    prop::collection::vec(
        prop_oneof![
            Just("-".to_string()),
            Just("--".to_string()),
            Just("=".to_string()),
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("\n".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("\\".to_string()),
            Just(";".to_string()),
            Just("%".to_string()),
            Just("$".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("&".to_string()),
            Just("|".to_string()),
            Just("[Service]".to_string()),
            Just("ExecStart=".to_string()),
            Just("relaxed-read-only".to_string()),
            Just("help".to_string()),
            word,
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// systemd-safe words: letters, digits and a few punctuation marks, no
/// quotes, escapes, specifiers, variables or separators.
fn plain_word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("--relaxed-read-only".to_string()),
        Just("-relaxed-read-only=false".to_string()),
        Just("--log-level".to_string()),
        Just("--data-root".to_string()),
        Just("--".to_string()),
        Just("-h".to_string()),
        "[a-z0-9=/._-]{1,12}",
    ]
}

/// Quote a word for an ExecStart= line: double quotes, with `\`, `"`, `$`
/// and `%` escaped as systemd.service(5) describes.
fn quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn hostile_text_never_panics(text in tricky(), args in prop::collection::vec(tricky(), 0..8)) {
        let _ = mgr_flags::parse(&args);
        let _ = systemd::split_command_line(&text);
        let _ = systemd::effective_exec_start(&text, &[&text]);
        let installed = installed_mgr(&text);
        // A flag value is only ever reported for a sysbox-mgr that starts.
        if installed.relaxed_read_only().is_some() {
            prop_assert_eq!(installed.starts(), Some(true));
        }
        // Every certain refusal carries a reason.
        if installed.starts() == Some(false) {
            prop_assert!(installed.not_start_reason().is_some_and(|r| !r.is_empty()));
        }
    }

    #[test]
    fn quoted_words_split_back(words in prop::collection::vec("[ -~\t\né]{0,10}", 0..8)) {
        let line = std::iter::once("/usr/bin/sysbox-mgr".to_string())
            .chain(words.iter().map(|w| quote(w)))
            .collect::<Vec<_>>()
            .join(" ");
        let argv = systemd::split_command_line(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
        // `$$` survives the split and becomes `$` only at exec time.
        let expanded = systemd::expand_env(&argv, &Default::default()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(&expanded.argv[1..], &words[..]);
    }

    #[test]
    fn a_plain_value_reaches_sysbox_mgr_before_the_units_flag(words in prop::collection::vec(plain_word(), 0..8)) {
        let value = words.join(" ");
        let InstalledMgr::Runs { mgr, .. } = installed_mgr(&value) else {
            return Err(TestCaseError::fail(format!("{value:?} does not run")));
        };
        let mut expected = words.clone();
        expected.push("--disable-inner-image-preload".into());
        prop_assert_eq!(mgr, mgr_flags::parse(&expected));
    }
}

#[test]
fn large_hostile_input_is_bounded_in_time() {
    let started = Instant::now();
    let quotes = "\"'".repeat(400_000);
    let _ = installed_mgr(&quotes);
    let _ = systemd::effective_exec_start(&format!("[Service]\nExecStart=/a {quotes}\n"), &[]);
    let escapes = "\\".repeat(900_000);
    let _ = installed_mgr(&escapes);
    // 28 bytes each with NUL and pointer: 200,000 fit in execve's 6 MiB, 300,000 do not.
    let m = mgr_flags::parse(&vec!["--relaxed-read-only"; 200_000]);
    assert!(m.starts() && m.relaxed_read_only);
    let m = mgr_flags::parse(&vec!["--relaxed-read-only"; 300_000]);
    assert!(!m.starts());
    let continuation = "a\\\n".repeat(300_000);
    let _ = systemd::effective_exec_start(&continuation, &[]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}
