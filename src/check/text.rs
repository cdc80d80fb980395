//! `-o text`: one line per object as it is judged, its warnings indented
//! below it, then a summary line. Colour only when asked or on a terminal.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::FailOn;
use super::{ClusterSource, Record, Report, Totals, Verdict};
use crate::engine::messages::plural;
use crate::limits::escape_controls;

pub struct TextReport<'w> {
    out: Box<dyn Write + 'w>,
    color: bool,
    fail_on: FailOn,
    /// One object's lines, reused from object to object.
    line: String,
}

impl<'w> TextReport<'w> {
    pub fn new(out: Box<dyn Write + 'w>, color: bool, fail_on: FailOn) -> Self {
        TextReport { out, color, fail_on, line: String::new() }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        paint(self.color, code, text)
    }

    fn verdict(&self, v: Verdict) -> String {
        verdict(self.color, v)
    }
}

/// `text` in the SGR colour `code` when `color`.
pub fn paint(color: bool, code: &str, text: &str) -> String {
    let mut out = String::new();
    push_paint(&mut out, color, code, text);
    out
}

/// [`paint`], appended to `out`.
fn push_paint(out: &mut String, color: bool, code: &str, text: &str) {
    if color {
        out.push_str("\x1b[");
        out.push_str(code);
        out.push('m');
        out.push_str(text);
        out.push_str("\x1b[0m");
    } else {
        out.push_str(text);
    }
}

/// The SGR colour of a verdict: green allow, yellow warn, red deny.
fn verdict_code(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "32",
        Verdict::Warn => "33",
        Verdict::Deny => "1;31",
        Verdict::Skip => "2",
        Verdict::Error => "1;35",
    }
}

/// A verdict as the text reports print it: green allow, yellow warn, red deny.
pub fn verdict(color: bool, v: Verdict) -> String {
    paint(color, verdict_code(v), v.as_str())
}

/// [`verdict`], appended to `out`.
fn push_verdict(out: &mut String, color: bool, v: Verdict) {
    push_paint(out, color, verdict_code(v), v.as_str());
}

impl Report for TextReport<'_> {
    fn object(&mut self, r: &Record) -> io::Result<()> {
        // Paths, names and messages come from the input: their control
        // characters are written as escapes, so an object name holding ESC or
        // a newline cannot drive the terminal or forge a report line. The
        // line is built in a buffer kept across objects and written at once:
        // `location: verdict: message`, as `Record::location` and
        // `Record::subject` put them (escaping part by part is the same as
        // escaping the whole, the separators being printable).
        let line = &mut self.line;
        line.clear();
        line.push_str(&escape_controls(&r.file));
        let _ = match r.item {
            Some(i) => write!(line, ":{} doc {} item {i}", r.line, r.document),
            None => write!(line, ":{} doc {}", r.line, r.document),
        };
        if let Some(kind) = r.kind.as_deref() {
            let name = match r.name.as_deref() {
                Some(n) if !n.is_empty() => n,
                _ => "<unnamed>",
            };
            line.push(' ');
            line.push_str(&escape_controls(kind));
            line.push(' ');
            if let Some(ns) = r.namespace.as_deref() {
                line.push_str(&escape_controls(ns));
                line.push('/');
            }
            line.push_str(&escape_controls(name));
        }
        line.push_str(": ");
        push_verdict(line, self.color, r.verdict);
        line.push_str(": ");
        line.push_str(&escape_controls(&r.message));
        match r.patch.len() {
            0 => {}
            1 => line.push_str(" (patch: 1 operation)"),
            n => {
                let _ = write!(line, " (patch: {n} operations)");
            }
        }
        line.push('\n');
        for w in &r.warnings {
            line.push_str("    ");
            push_paint(line, self.color, "33", "warning");
            line.push_str(": ");
            line.push_str(&escape_controls(w));
            line.push('\n');
        }
        self.out.write_all(line.as_bytes())
    }

    fn end_file(&mut self, _file: &str) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, t: &Totals) -> io::Result<()> {
        let parts = [
            (t.allow, Verdict::Allow),
            (t.warn, Verdict::Warn),
            (t.deny, Verdict::Deny),
            (t.skip, Verdict::Skip),
            (t.error, Verdict::Error),
        ]
        .map(|(n, v)| format!("{n} {}", self.verdict(v)))
        .join(", ");
        let pools = match t.cluster_state {
            ClusterSource::File | ClusterSource::Live if !t.node_pools_evaluated => {
                "node-pool verdict not evaluated (the cluster view holds no Node)"
            }
            ClusterSource::File => "node pools evaluated against --cluster-state",
            ClusterSource::Live => "node pools evaluated against the live cluster",
            ClusterSource::None => "node-pool verdict not evaluated (no --cluster-state or --live)",
        };
        let status = match t.exit_code {
            0 => self.paint("32", "passed"),
            1 => {
                let why = if self.fail_on == FailOn::Warn { "denied, error or warning" } else { "denied or error" };
                self.paint("1;31", &format!("failed ({why})"))
            }
            _ => self.paint("1;35", "failed (no document could be read)"),
        };
        if let Some(nodes) = &t.node_labels {
            for note in &nodes.notes {
                writeln!(self.out, "nodes: {}", escape_controls(note))?;
            }
            let label = self.paint("33", "warning");
            for w in &nodes.warnings {
                writeln!(self.out, "nodes: {label}: {}", escape_controls(w))?;
            }
        }
        writeln!(
            self.out,
            "summary: {} ({parts}) in {} from {}; {pools}; {status}",
            plural(t.objects, "object"),
            plural(t.documents, "document"),
            plural(t.files, "file"),
        )?;
        self.out.flush()
    }
}
