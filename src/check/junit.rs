//! `-o junit`: one `<testsuite>` per input file and one `<testcase>` per
//! object. A denial (and, with `--fail-on warn`, a warning) is a
//! `<failure>`, an `error` verdict an `<error>`, a skipped object
//! `<skipped>`; warnings are also in `<system-out>`.
//!
//! The root element carries the totals, so each file's suite is rendered
//! when the file ends and the suites are written at the end.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::FailOn;
use super::{Record, Report, Totals, Verdict};

pub struct JunitReport<'w> {
    out: Box<dyn Write + 'w>,
    fail_on: FailOn,
    /// The current file's test cases, rendered.
    cases: String,
    counts: Counts,
    suites: String,
    all: Counts,
    pools_evaluated: bool,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn attrs(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot
/// carry are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

impl<'w> JunitReport<'w> {
    /// `pools_evaluated`: whether a cluster state was given (else each suite
    /// says the node-pool verdict was not evaluated).
    pub fn new(out: Box<dyn Write + 'w>, fail_on: FailOn, pools_evaluated: bool) -> Self {
        JunitReport {
            pools_evaluated,
            out,
            fail_on,
            cases: String::new(),
            counts: Counts::default(),
            suites: String::new(),
            all: Counts::default(),
        }
    }
}

impl Report for JunitReport<'_> {
    fn begin_file(&mut self, _file: &str) -> io::Result<()> {
        self.cases.clear();
        self.counts = Counts::default();
        Ok(())
    }

    fn object(&mut self, r: &Record) -> io::Result<()> {
        self.counts.tests += 1;
        let subject = r.subject();
        let name = match (subject.is_empty(), r.item) {
            (true, _) => format!("doc {}", r.document),
            (false, None) => format!("doc {}: {subject}", r.document),
            (false, Some(i)) => format!("doc {} item {i}: {subject}", r.document),
        };
        let c = &mut self.cases;
        let _ = write!(
            c,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\"",
            escape(&r.file),
            escape(&name),
            escape(&r.file),
            r.line
        );
        let body_message = if r.warnings.is_empty() {
            r.message.clone()
        } else {
            format!(
                "{}\n{}",
                r.message,
                r.warnings.iter().map(|w| format!("warning: {w}")).collect::<Vec<_>>().join("\n")
            )
        };
        let mut inner = String::new();
        match r.verdict {
            Verdict::Deny | Verdict::Warn if self.fail_on.fails(r.verdict) => {
                self.counts.failures += 1;
                let summary = if r.verdict == Verdict::Deny {
                    r.message.as_str()
                } else {
                    r.warnings.first().map_or("", String::as_str)
                };
                let _ = writeln!(
                    inner,
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                    r.verdict.as_str(),
                    escape(summary),
                    escape(&body_message)
                );
            }
            Verdict::Error => {
                self.counts.errors += 1;
                let _ = writeln!(
                    inner,
                    "      <error type=\"error\" message=\"{}\">{}</error>",
                    escape(&r.message),
                    escape(&r.message)
                );
            }
            Verdict::Skip => {
                self.counts.skipped += 1;
                let _ = writeln!(inner, "      <skipped message=\"{}\"/>", escape(&r.message));
            }
            _ => {}
        }
        if !r.warnings.is_empty() {
            let lines: Vec<String> = r.warnings.iter().map(|w| format!("warning: {w}")).collect();
            let _ = writeln!(inner, "      <system-out>{}</system-out>", escape(&lines.join("\n")));
        }
        if inner.is_empty() {
            c.push_str("/>\n");
        } else {
            let _ = writeln!(c, ">\n{inner}    </testcase>");
        }
        Ok(())
    }

    fn end_file(&mut self, file: &str) -> io::Result<()> {
        let _ = writeln!(self.suites, "  <testsuite name=\"{}\" {}>", escape(file), self.counts.attrs());
        if !self.pools_evaluated {
            let _ = writeln!(
                self.suites,
                "    <properties>\n      <property name=\"node-pools\" value=\"not evaluated (no --cluster-state or --live)\"/>\n    </properties>"
            );
        }
        let _ = writeln!(self.suites, "{}  </testsuite>", self.cases);
        let (a, c) = (&mut self.all, self.counts);
        a.tests += c.tests;
        a.failures += c.failures;
        a.errors += c.errors;
        a.skipped += c.skipped;
        self.cases.clear();
        Ok(())
    }

    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        writeln!(self.out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(self.out, "<testsuites name=\"sysbox-ro-webhook check\" {}>", self.all.attrs())?;
        self.out.write_all(self.suites.as_bytes())?;
        writeln!(self.out, "</testsuites>")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(escape("a<b>&\"c'\u{1}\n"), "a&lt;b&gt;&amp;&quot;c&apos;\n");
    }
}
