//! Reading Kubernetes manifests: YAML streams (`---`-separated documents),
//! JSON, and `List` objects, document by document, with the line each
//! document starts on. Used by the cluster snapshot and by `check`.
//!
//! Every input is bounded: a document may hold at most
//! [`MAX_DOCUMENT_BYTES`], nesting at most [`yaml::MAX_DEPTH`] levels (YAML
//! and JSON alike), and the items of a `List` are read one at a time
//! ([`Document::for_each_object`]), so a `List` costs what the same objects
//! as a stream of documents cost.

pub mod json;
pub mod yaml;

use std::io::BufRead;

use serde_json::Value;

/// The largest document read whole (its text is held while it is read).
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;

/// The most room a document's text starts with (it grows past it as needed).
const INITIAL_TEXT_CAPACITY_MAX: usize = 64 << 10;

/// One document of a stream, before parsing.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based position of the document in its stream.
    pub index: usize,
    /// 1-based line the document's content starts on.
    pub line: usize,
    /// 1-based line of the first line of `text`.
    pub text_line: usize,
    pub text: String,
    /// Set when the document was larger than the limit: its size in bytes
    /// so far (`text` is then empty and the document does not parse).
    pub oversized: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("document {index} (line {line}): {message}")]
    Parse { index: usize, line: usize, message: String },
}

/// Splits a stream into YAML documents lazily, so a large input is never held
/// whole. A line `---` (optionally followed by a comment or content) starts a
/// document; `...` ends one. Documents holding only comments and blank lines
/// are skipped, as kubectl does.
pub struct Documents<R> {
    reader: R,
    line_no: usize,
    index: usize,
    pending: Option<(usize, String)>,
    done: bool,
    limit: usize,
    /// The line being read, reused from line to line.
    line: Vec<u8>,
    /// Size of the last document's text: the next one starts with room for
    /// as much (capped), instead of growing line by line.
    last_len: usize,
}

impl<R: BufRead> Documents<R> {
    pub fn new(reader: R) -> Self {
        Self::with_limit(reader, MAX_DOCUMENT_BYTES)
    }

    /// Documents larger than `limit` bytes come back empty, marked
    /// [`Document::oversized`], and the stream goes on after them.
    pub fn with_limit(reader: R, limit: usize) -> Self {
        Documents { reader, line_no: 0, index: 0, pending: None, done: false, limit, line: Vec::new(), last_len: 0 }
    }

    /// Lines read so far; after a read error, the failing line is the next one.
    pub fn lines_read(&self) -> usize {
        self.line_no
    }
}

fn is_blank_or_comment(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

impl<R: BufRead> Iterator for Documents<R> {
    type Item = Result<Document, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let mut text = String::with_capacity(self.last_len.min(INITIAL_TEXT_CAPACITY_MAX));
            let mut start = self.line_no + 1;
            if let Some((s, carried)) = self.pending.take() {
                start = s;
                text = carried;
            }
            let text_line = start;
            let mut oversized: Option<usize> = None;
            let mut saw_content = !is_blank_or_comment(&text);
            loop {
                let read =
                    read_line_bounded(&mut self.reader, &mut self.line, self.limit.saturating_add(1)).and_then(|n| {
                        match std::str::from_utf8(&self.line) {
                            Ok(line) => Ok((n, line)),
                            Err(_) => Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "stream did not contain valid UTF-8",
                            )),
                        }
                    });
                let line = match read {
                    Ok((0, _)) => {
                        self.done = true;
                        break;
                    }
                    Ok((_, line)) => line,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(ManifestError::Io(e)));
                    }
                };
                self.line_no += 1;
                let line = line.trim_end_matches(['\n', '\r']);
                let marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
                if marker || line == "..." {
                    // Content after `--- ` on the marker line belongs to the next document.
                    let rest = if marker { line[3..].trim_start() } else { "" };
                    if !rest.is_empty() && !rest.starts_with('#') {
                        self.pending = Some((self.line_no, format!("{rest}\n")));
                    }
                    break;
                }
                let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
                if !saw_content && !blank {
                    saw_content = true;
                    start = self.line_no;
                }
                if let Some(size) = &mut oversized {
                    *size += line.len() + 1;
                    continue;
                }
                if text.len() + line.len() + 1 > self.limit {
                    // Keep counting, but no longer holding, what is left of it.
                    oversized = Some(text.len() + line.len() + 1);
                    text = String::new();
                    continue;
                }
                text.push_str(line);
                text.push('\n');
            }
            if saw_content || oversized.is_some() || !is_blank_or_comment(&text) {
                self.last_len = text.len();
                let doc = Document { index: self.index, line: start, text_line, text, oversized };
                self.index += 1;
                return Some(Ok(doc));
            }
        }
    }
}

impl Document {
    fn is_json(&self) -> bool {
        let trimmed = self.text.trim_start();
        trimmed.starts_with('{') || trimmed.starts_with('[')
    }

    fn error(&self, message: impl Into<String>) -> ManifestError {
        ManifestError::Parse { index: self.index, line: self.line, message: message.into() }
    }

    fn too_large(&self) -> Result<(), ManifestError> {
        match self.oversized {
            Some(size) => Err(self.error(format!(
                "the document is larger than {} MiB ({} MiB read), the most one document may hold; split it",
                MAX_DOCUMENT_BYTES >> 20,
                size >> 20
            ))),
            None => Ok(()),
        }
    }

    fn yaml_error(&self, e: yaml::YamlError) -> ManifestError {
        if e.line == 0 {
            return self.error(e.message);
        }
        self.error(format!("{} at line {} column {}", e.message, self.text_line + e.line - 1, e.col))
    }

    /// Parses the document (YAML or JSON) into a JSON value. `null` documents
    /// come back as `Value::Null`.
    pub fn parse(&self) -> Result<Value, ManifestError> {
        self.too_large()?;
        if self.is_json() {
            json::from_str(&self.text).map_err(|e| self.error(e.to_string()))
        } else {
            yaml::from_str(&self.text).map_err(|e| self.yaml_error(e))
        }
    }

    /// Calls `each(object, item, line)` for every object of the document: the
    /// items of a `List` one at a time (`item` is the position in `items`),
    /// or the document itself (`item` `None`). Returns whether the document
    /// was a `List` (`None` for an empty document). The items of a `List`
    /// are never all held at once.
    pub fn for_each_object(
        &self,
        each: &mut dyn FnMut(Value, Option<usize>, usize),
    ) -> Result<Option<bool>, ManifestError> {
        self.too_large()?;
        if self.is_json() {
            return json::for_each_object(&self.text, &mut |v, i| each(v, i, self.line))
                .map_err(|e| self.error(e.to_string()));
        }
        let line0 = self.text_line;
        let mut stream = |v: Value, i: usize, line: usize| {
            each(v, Some(i), line0 + line - 1);
            Ok(())
        };
        let mut items = yaml::Items::Stream { assume_list: yaml_kind_is_list(&self.text), each: &mut stream };
        let mut loader = yaml::Loader::from_text(&self.text);
        let loaded = loader.next_document(&mut items).map_err(|e| self.yaml_error(e))?;
        if let Some(extra) = loader.next_document(&mut yaml::Items::Keep).map_err(|e| self.yaml_error(e))? {
            return Err(self.error(format!("a second document at line {} without `---`", line0 + extra.line - 1)));
        }
        let Some(loaded) = loaded else { return Ok(None) };
        if loaded.streamed.is_some() {
            let (_, kind) = type_of(&loaded.value);
            if !kind.ends_with("List") {
                return Err(self
                    .error(format!("top-level `items` were read as a List's, but the kind is {kind:?}, not a List")));
            }
            return Ok(Some(true));
        }
        if loaded.value.is_null() {
            return Ok(None);
        }
        let list = is_list(&loaded.value);
        for (i, object) in expand_lists(loaded.value).into_iter().enumerate() {
            each(object, list.then_some(i), self.line);
        }
        Ok(Some(list))
    }
}

/// Whether a YAML text has a top-level `kind` (a line starting in column
/// 0) ending in `List`, as `kubectl get -o yaml` prints after the items.
/// Only a hint for reading `items` one at a time; the kind read decides.
fn yaml_kind_is_list(text: &str) -> bool {
    text.lines().any(|l| {
        let rest =
            l.strip_prefix("kind:").or_else(|| l.strip_prefix("\"kind\":")).or_else(|| l.strip_prefix("'kind':"));
        rest.is_some_and(|r| {
            let v = r.split(" #").next().unwrap_or("").trim().trim_matches(['"', '\'']);
            v.ends_with("List")
        })
    })
}

/// `BufRead::read_until(b'\n')` into `bytes` (cleared first), but stops
/// (with `InvalidData`) once a line would exceed `limit` bytes, so one
/// endless line cannot fill memory. The caller checks the bytes are UTF-8.
fn read_line_bounded<R: BufRead>(reader: &mut R, bytes: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    bytes.clear();
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if bytes.len() + chunk.len() > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line longer than {} MiB", limit >> 20),
            ));
        }
        bytes.extend_from_slice(chunk);
        let n = chunk.len();
        reader.consume(n);
        if found {
            break;
        }
    }
    Ok(bytes.len())
}

/// Whether a value is a `List` object (kind `List` or `*List` with an `items` array).
pub fn is_list(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array)
}

/// Expands `List` objects (kind `List` or `*List` with `items`) into their
/// items; any other value comes back as itself.
pub fn expand_lists(value: Value) -> Vec<Value> {
    if !is_list(&value) {
        return vec![value];
    }
    match value {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `apiVersion` and `kind` of a manifest object, empty when absent.
pub fn type_of(value: &Value) -> (&str, &str) {
    let s = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("");
    (s("apiVersion"), s("kind"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(s: &str) -> Vec<Document> {
        Documents::new(s.as_bytes()).map(Result::unwrap).collect()
    }

    #[test]
    fn splits_documents_with_start_lines() {
        let d = docs("# header\n---\na: 1\n---\n# only a comment\n---\n\nb: 2\n...\n--- c: 3\n");
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].index, d[0].line), (0, 3));
        assert_eq!((d[1].index, d[1].line), (1, 8));
        assert_eq!(d[2].parse().unwrap(), serde_json::json!({"c": 3}));
    }

    #[test]
    fn json_and_lists() {
        let d = docs(r#"{"kind":"List","items":[{"kind":"Node"},{"kind":"Pod"}]}"#);
        let items = expand_lists(d[0].parse().unwrap());
        assert_eq!(items.len(), 2);
        assert_eq!(type_of(&items[1]).1, "Pod");
    }

    #[test]
    fn broken_document_reports_index_and_line() {
        let d = docs("a: 1\n---\nb: [unclosed\n");
        assert!(d[0].parse().is_ok());
        match d[1].parse() {
            Err(ManifestError::Parse { index: 1, line: 3, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
