//! `-o json`: the schema in `docs/check-json-schema.md` (stable: additive
//! changes only). Objects are written as they are judged; the totals last.

use std::io::{self, Write};

use serde::Serialize;

use super::{Record, Report, Totals};

/// Bumped only for a change that is not additive.
pub const SCHEMA_VERSION: u32 = 1;

pub struct JsonReport<'w> {
    out: Box<dyn Write + 'w>,
    started: bool,
    objects: usize,
}

impl<'w> JsonReport<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Self {
        JsonReport { out, started: false, objects: 0 }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            let tool = serde_json::json!({ "name": "sysbox-ro-webhook", "version": env!("CARGO_PKG_VERSION") });
            write!(
                self.out,
                "{{\n  \"schemaVersion\": {SCHEMA_VERSION},\n  \"tool\": {},\n  \"objects\": [",
                indented(&tool, 2)?
            )?;
        }
        Ok(())
    }
}

/// Pretty JSON whose lines after the first are indented by `by` spaces.
pub(crate) fn indented(value: &impl Serialize, by: usize) -> io::Result<String> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    Ok(text.replace('\n', &format!("\n{}", " ".repeat(by))))
}

impl Report for JsonReport<'_> {
    fn object(&mut self, record: &Record) -> io::Result<()> {
        self.start()?;
        let sep = if self.objects == 0 { "" } else { "," };
        write!(self.out, "{sep}\n    {}", indented(record, 4)?)?;
        self.objects += 1;
        Ok(())
    }

    fn end_file(&mut self, _file: &str) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        self.start()?;
        let close = if self.objects == 0 { "]" } else { "\n  ]" };
        writeln!(self.out, "{close},\n  \"totals\": {}\n}}", indented(totals, 2)?)?;
        self.out.flush()
    }
}
