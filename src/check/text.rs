//! `-o text`: one line per object as it is judged, its warnings indented
//! below it, then a summary line. Colour only when asked or on a terminal.

use std::io::{self, Write};

use super::FailOn;
use super::{ClusterSource, Record, Report, Totals, Verdict};
use crate::engine::messages::plural;
use crate::limits::escape_controls;

pub struct TextReport<'w> {
    out: Box<dyn Write + 'w>,
    color: bool,
    fail_on: FailOn,
}

impl<'w> TextReport<'w> {
    pub fn new(out: Box<dyn Write + 'w>, color: bool, fail_on: FailOn) -> Self {
        TextReport { out, color, fail_on }
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
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A verdict as the text reports print it: green allow, yellow warn, red deny.
pub fn verdict(color: bool, v: Verdict) -> String {
    let code = match v {
        Verdict::Allow => "32",
        Verdict::Warn => "33",
        Verdict::Deny => "1;31",
        Verdict::Skip => "2",
        Verdict::Error => "1;35",
    };
    paint(color, code, v.as_str())
}

impl Report for TextReport<'_> {
    fn object(&mut self, r: &Record) -> io::Result<()> {
        // Paths, names and messages come from the input: their control
        // characters are written as escapes, so an object name holding ESC or
        // a newline cannot drive the terminal or forge a report line.
        let subject = r.subject();
        let mut line = escape_controls(&r.location()).into_owned();
        if !subject.is_empty() {
            line.push(' ');
            line.push_str(&escape_controls(&subject));
        }
        let mut message = escape_controls(&r.message).into_owned();
        if !r.patch.is_empty() {
            message.push_str(&format!(" (patch: {})", plural(r.patch.len(), "operation")));
        }
        let line = format!("{line}: {}: {message}", self.verdict(r.verdict));
        writeln!(self.out, "{line}")?;
        let label = self.paint("33", "warning");
        for w in &r.warnings {
            writeln!(self.out, "    {label}: {}", escape_controls(w))?;
        }
        Ok(())
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
