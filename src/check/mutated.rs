//! `--mutated-out`: the manifests as the webhook would store them. A document
//! the engine patches is rewritten (YAML stays YAML with its key order and
//! leading comments, JSON stays JSON); every other document is copied
//! verbatim from its original text, so a diff shows only the patches.
//!
//! The patch is applied to an order-preserving YAML tree, not to the JSON the
//! engine read: the engine's JSON maps are sorted, and writing them back would
//! reorder every key of a patched document.

use std::io::{self, Write};

use json_patch::jsonptr::PointerBuf;
use json_patch::PatchOperation;
use serde_norway::Value as Yaml;

/// Where the documents of one output stream go.
pub trait DocSink {
    /// Writes one document (its text ends with a newline).
    fn document(&mut self, text: &str) -> io::Result<()>;
    /// Whether documents are written at all (else patched ones need not be rendered).
    fn wants_documents(&self) -> bool {
        true
    }
}

/// A YAML stream: documents separated by `---` lines.
pub struct DocWriter<W: Write> {
    out: W,
    written: usize,
}

impl<W: Write> DocWriter<W> {
    pub fn new(out: W) -> Self {
        DocWriter { out, written: 0 }
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> DocSink for DocWriter<W> {
    fn document(&mut self, text: &str) -> io::Result<()> {
        if self.written > 0 {
            self.out.write_all(b"---\n")?;
        }
        self.out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        self.written += 1;
        Ok(())
    }
}

/// A sink that drops everything (no `--mutated-out`).
pub struct Discard;

impl DocSink for Discard {
    fn document(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn wants_documents(&self) -> bool {
        false
    }
}

/// Whether a document's text is JSON (as [`crate::manifest::Document::parse`] decides).
pub fn is_json(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('{') || t.starts_with('[')
}

/// The document with the patches applied. `patches` pairs the index of an
/// item of a `List` document (`None` for the document itself) with the
/// operations for that object.
pub fn rewrite(text: &str, patches: &[(Option<usize>, &[PatchOperation])]) -> Result<String, String> {
    let mut root: Yaml = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    for (item, ops) in patches {
        let target = match item {
            None => &mut root,
            Some(i) => root
                .get_mut("items")
                .and_then(|items| items.get_mut(*i))
                .ok_or_else(|| format!("List item {i} not found"))?,
        };
        apply(target, ops)?;
    }
    if is_json(text) {
        let mut json = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
        json.push('\n');
        return Ok(json);
    }
    let body = serde_norway::to_string(&root).map_err(|e| e.to_string())?;
    Ok(format!("{}{body}", leading_comments(text)))
}

/// The comment and blank lines before a document's first content line, such
/// as Helm's `# Source: chart/templates/x.yaml`.
fn leading_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if !(t.is_empty() || t.starts_with('#')) {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn tokens(path: &PointerBuf) -> Vec<String> {
    path.tokens().map(|t| t.decoded().into_owned()).collect()
}

fn to_yaml(value: &serde_json::Value) -> Result<Yaml, String> {
    serde_norway::to_value(value).map_err(|e| e.to_string())
}

fn index(tok: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && tok == "-" {
        return Ok(len);
    }
    let valid = !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) && (tok == "0" || !tok.starts_with('0'));
    let i: usize = if valid { tok.parse().map_err(|_| format!("bad array index {tok:?}"))? } else { usize::MAX };
    let max = if allow_end { len } else { len.saturating_sub(1) };
    if i == usize::MAX || (i > max) || (!allow_end && len == 0) {
        return Err(format!("array index {tok:?} out of range"));
    }
    Ok(i)
}

fn get_mut<'a>(root: &'a mut Yaml, path: &[String]) -> Result<&'a mut Yaml, String> {
    let mut node = root;
    for tok in path {
        node = match node {
            Yaml::Mapping(m) => m.get_mut(tok.as_str()).ok_or_else(|| format!("no member {tok:?}"))?,
            Yaml::Sequence(s) => {
                let i = index(tok, s.len(), false)?;
                &mut s[i]
            }
            _ => return Err(format!("cannot descend into a scalar at {tok:?}")),
        };
    }
    Ok(node)
}

fn add(root: &mut Yaml, path: &[String], value: Yaml) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *root = value;
        return Ok(());
    };
    match get_mut(root, parent)? {
        Yaml::Mapping(m) => {
            // An existing member is replaced where it stands.
            m.insert(Yaml::String(last.clone()), value);
        }
        Yaml::Sequence(s) => {
            let i = index(last, s.len(), true)?;
            s.insert(i, value);
        }
        _ => return Err(format!("cannot add {last:?} to a scalar")),
    }
    Ok(())
}

fn remove(root: &mut Yaml, path: &[String]) -> Result<Yaml, String> {
    let (last, parent) = path.split_last().ok_or("cannot remove the whole document")?;
    match get_mut(root, parent)? {
        Yaml::Mapping(m) => m.shift_remove(last.as_str()).ok_or_else(|| format!("no member {last:?}")),
        Yaml::Sequence(s) => {
            let i = index(last, s.len(), false)?;
            Ok(s.remove(i))
        }
        _ => Err(format!("cannot remove {last:?} from a scalar")),
    }
}

/// Applies RFC 6902 operations to a YAML tree, all or nothing.
pub fn apply(doc: &mut Yaml, ops: &[PatchOperation]) -> Result<(), String> {
    let mut work = doc.clone();
    for op in ops {
        match op {
            PatchOperation::Add(o) => add(&mut work, &tokens(&o.path), to_yaml(&o.value)?)?,
            PatchOperation::Replace(o) => *get_mut(&mut work, &tokens(&o.path))? = to_yaml(&o.value)?,
            PatchOperation::Remove(o) => {
                remove(&mut work, &tokens(&o.path))?;
            }
            PatchOperation::Move(o) => {
                let value = remove(&mut work, &tokens(&o.from))?;
                add(&mut work, &tokens(&o.path), value)?;
            }
            PatchOperation::Copy(o) => {
                let value = get_mut(&mut work, &tokens(&o.from))?.clone();
                add(&mut work, &tokens(&o.path), value)?;
            }
            PatchOperation::Test(o) => {
                let path = tokens(&o.path);
                let found = get_mut(&mut work, &path)?;
                let found = serde_json::to_value(&*found).map_err(|e| e.to_string())?;
                if found != o.value {
                    return Err(format!("test failed at /{}", path.join("/")));
                }
            }
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: serde_json::Value) -> Vec<PatchOperation> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn keeps_key_order_and_leading_comments() {
        let text = "# Source: chart/templates/pod.yaml\nkind: Pod\napiVersion: v1\nmetadata:\n  name: p\n  labels: {z: '1', a: '2'}\nspec: {}\n";
        let patch = ops(json!([{"op": "add", "path": "/metadata/annotations", "value": {"k/x": "true"}}]));
        let out = rewrite(text, &[(None, &patch)]).unwrap();
        assert!(out.starts_with("# Source: chart/templates/pod.yaml\nkind: Pod\napiVersion: v1\n"), "{out}");
        assert!(out.find("z: '1'").unwrap() < out.find("a: '2'").unwrap(), "{out}");
        let back: serde_json::Value = serde_norway::from_str(&out).unwrap();
        assert_eq!(back["metadata"]["annotations"]["k/x"], "true");
    }

    #[test]
    fn patches_list_items_and_json_stays_json() {
        let text = r#"{"kind": "List", "items": [{"kind": "Service"}, {"kind": "Pod", "metadata": {}}]}"#;
        let patch = ops(json!([{"op": "add", "path": "/metadata/annotations", "value": {"a": "true"}}]));
        let out = rewrite(text, &[(Some(1), &patch)]).unwrap();
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["items"][1]["metadata"]["annotations"]["a"], "true");
        assert_eq!(back["items"][0], json!({"kind": "Service"}));
        assert!(rewrite(text, &[(Some(5), &patch)]).is_err());
    }

    #[test]
    fn operations_match_json_patch() {
        let base = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        let cases = [
            json!([{"op": "add", "path": "/a/b/-", "value": 4}]),
            json!([{"op": "add", "path": "/a/b/0", "value": 0}]),
            json!([{"op": "replace", "path": "/c", "value": "y"}]),
            json!([{"op": "remove", "path": "/a/b/1"}]),
            json!([{"op": "move", "from": "/c", "path": "/d"}]),
            json!([{"op": "copy", "from": "/a", "path": "/e"}]),
            json!([{"op": "test", "path": "/c", "value": "x"}, {"op": "add", "path": "/a/~1k", "value": true}]),
        ];
        for case in cases {
            let p = ops(case.clone());
            let mut want = base.clone();
            json_patch::patch(&mut want, &p).unwrap();
            let mut got = serde_norway::to_value(&base).unwrap();
            apply(&mut got, &p).unwrap();
            assert_eq!(serde_json::to_value(&got).unwrap(), want, "{case}");
        }
        for bad in [
            json!([{"op": "replace", "path": "/nope", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/9", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/01", "value": 1}]),
            json!([{"op": "test", "path": "/c", "value": "z"}]),
        ] {
            let mut doc = serde_norway::to_value(&base).unwrap();
            assert!(apply(&mut doc, &ops(bad.clone())).is_err(), "{bad}");
            assert_eq!(serde_json::to_value(&doc).unwrap(), base, "all or nothing: {bad}");
        }
    }

    #[test]
    fn stream_separators() {
        let mut w = DocWriter::new(Vec::new());
        w.document("a: 1\n").unwrap();
        w.document("b: 2").unwrap();
        assert_eq!(String::from_utf8(w.into_inner().unwrap()).unwrap(), "a: 1\n---\nb: 2\n");
    }
}
