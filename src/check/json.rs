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
    /// One object's text, reused from object to object.
    buf: Vec<u8>,
}

impl<'w> JsonReport<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Self {
        JsonReport { out, started: false, objects: 0, buf: Vec::new() }
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

/// Appends `value` to `buf` as [`indented`] writes it, without the
/// intermediate strings.
pub(crate) fn push_indented(buf: &mut Vec<u8>, value: &impl Serialize, by: usize) -> io::Result<()> {
    serde_json::to_writer_pretty(Indent { out: buf, by }, value).map_err(io::Error::other)
}

/// Appends what is written to a buffer, each newline followed by `by`
/// spaces. (Serialised JSON holds newlines only between tokens, never
/// inside a string.)
struct Indent<'b> {
    out: &'b mut Vec<u8>,
    by: usize,
}

impl Write for Indent<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.out.extend_from_slice(&rest[..=i]);
            self.out.resize(self.out.len() + self.by, b' ');
            rest = &rest[i + 1..];
        }
        self.out.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Report for JsonReport<'_> {
    fn object(&mut self, record: &Record) -> io::Result<()> {
        self.start()?;
        self.buf.clear();
        if self.objects > 0 {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(b"\n    ");
        push_indented(&mut self.buf, record, 4)?;
        self.out.write_all(&self.buf)?;
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
