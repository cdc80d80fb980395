//! Reading Kubernetes manifests: YAML streams (`---`-separated documents),
//! JSON, and `List` objects, document by document, with the line each
//! document starts on. Used by the cluster snapshot and by `check`.

use std::io::BufRead;

use serde_json::Value;

/// One document of a stream, before parsing.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based position of the document in its stream.
    pub index: usize,
    /// 1-based line the document's content starts on.
    pub line: usize,
    pub text: String,
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
}

impl<R: BufRead> Documents<R> {
    pub fn new(reader: R) -> Self {
        Documents { reader, line_no: 0, index: 0, pending: None, done: false }
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
            let mut text = String::new();
            let mut start = self.line_no + 1;
            if let Some((s, carried)) = self.pending.take() {
                start = s;
                text = carried;
            }
            let mut saw_content = !is_blank_or_comment(&text);
            let mut buf = String::new();
            loop {
                buf.clear();
                match self.reader.read_line(&mut buf) {
                    Ok(0) => {
                        self.done = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.done = true;
                        return Some(Err(ManifestError::Io(e)));
                    }
                }
                self.line_no += 1;
                let line = buf.trim_end_matches(['\n', '\r']);
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
                text.push_str(line);
                text.push('\n');
            }
            if saw_content || !is_blank_or_comment(&text) {
                let doc = Document { index: self.index, line: start, text };
                self.index += 1;
                return Some(Ok(doc));
            }
        }
    }
}

impl Document {
    /// Parses the document (YAML or JSON) into a JSON value. `null` documents
    /// come back as `Value::Null`.
    pub fn parse(&self) -> Result<Value, ManifestError> {
        let trimmed = self.text.trim_start();
        let result = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            serde_json::from_str::<Value>(&self.text).map_err(|e| e.to_string())
        } else {
            serde_yaml::from_str::<Value>(&self.text).map_err(|e| e.to_string())
        };
        result.map_err(|message| ManifestError::Parse { index: self.index, line: self.line, message })
    }
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
