//! `-o text`: one line per object as it is judged, its warnings indented
//! below it, then a summary line. Colour only when asked or on a terminal.

use std::io::{self, Write};

use super::FailOn;
use super::{ClusterSource, Record, Report, Totals, Verdict};
use crate::engine::messages::plural;

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
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn verdict(&self, v: Verdict) -> String {
        let code = match v {
            Verdict::Allow => "32",
            Verdict::Warn => "33",
            Verdict::Deny => "1;31",
            Verdict::Skip => "2",
            Verdict::Error => "1;35",
        };
        self.paint(code, v.as_str())
    }
}

impl Report for TextReport<'_> {
    fn object(&mut self, r: &Record) -> io::Result<()> {
        let subject = r.subject();
        let mut line = r.location();
        if !subject.is_empty() {
            line.push(' ');
            line.push_str(&subject);
        }
        let mut message = r.message.clone();
        if !r.patch.is_empty() {
            message.push_str(&format!(" (patch: {})", plural(r.patch.len(), "operation")));
        }
        let line = format!("{line}: {}: {message}", self.verdict(r.verdict));
        writeln!(self.out, "{line}")?;
        let label = self.paint("33", "warning");
        for w in &r.warnings {
            writeln!(self.out, "    {label}: {w}")?;
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
                writeln!(self.out, "nodes: {note}")?;
            }
            let label = self.paint("33", "warning");
            for w in &nodes.warnings {
                writeln!(self.out, "nodes: {label}: {w}")?;
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
