//! YAML documents into JSON values, event by event (`saphyr-parser`), with
//! the bounds a hostile input needs: nesting depth, alias expansion, and
//! duplicate keys refused. The items of a top-level `items` sequence can be
//! handed out one at a time instead of being collected, so a `List` costs
//! one item's memory, not the whole document's.
//!
//! Scalars resolve as the YAML 1.2 core schema says (`null`/`~`, `true`/
//! `false`, decimal, octal `0o` and hexadecimal `0x` integers, floats);
//! quoted and block scalars are strings. `.inf` and `.nan` have no JSON form
//! and become `null`. Merge keys (`<<: *base`) are applied, as Kubernetes'
//! YAML reader does.

use std::collections::HashMap;

use saphyr_parser::{Event, Input, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// Deepest nesting of mappings and sequences accepted (serde_json's own
/// limit for JSON; Kubernetes objects stay far below it).
pub const MAX_DEPTH: usize = 128;

/// Most values that aliases may copy into one stream, so that a few bytes
/// of nested aliases (the "billion laughs") cannot build gigabytes.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// A YAML error with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at line {} column {}", self.message, self.line, self.col)
    }
}

fn at(span: &Span, message: impl Into<String>) -> YamlError {
    YamlError { message: message.into(), line: span.start.line(), col: span.start.col() + 1 }
}

/// What the caller wants done with the elements of the top-level mapping's
/// `items` sequence.
pub enum Items<'a> {
    /// Keep them in the value, like any other field.
    Keep,
    /// Hand each element to the callback (index, line) instead of keeping it,
    /// when the top-level mapping is a `List`: its `kind` ends in `List`, or
    /// `items` comes before `kind` and `assume_list` says so. The value then
    /// comes back without `items`.
    Stream { assume_list: bool, each: &'a mut dyn FnMut(Value, usize, usize) -> Result<(), String> },
}

/// One document read.
#[derive(Debug)]
pub struct Loaded {
    /// The document (`Value::Null` when empty); without `items` when they were streamed.
    pub value: Value,
    /// How many items were handed to the callback; `None` when not streamed.
    pub streamed: Option<usize>,
    /// The line the document's content starts on.
    pub line: usize,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
        merges: Vec<Value>,
    },
    Streamed {
        count: usize,
        line: usize,
    },
    /// A mapping (`map` `Some`) or sequence in a subtree passed over
    /// ([`Loader::skip_status_of`]): checked as it is read, never built.
    Passed {
        map: Option<PassedMap>,
        all_mappings: bool,
    },
}

/// What a passed-over mapping keeps to give the errors a built one gives.
struct PassedMap {
    /// Its keys so far, for duplicates (merge keys `<<` are not counted, as in a built mapping).
    keys: std::collections::HashSet<String>,
    /// The key read, waiting for its value: whether it is the merge key.
    key: Option<bool>,
    /// The first merge value that is not a mapping or a list of mappings, raised at the end.
    bad_merge: Option<&'static str>,
}

/// The kind of a value passed over, for the merge keys that take it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Mapping,
    /// A sequence of mappings only.
    Mappings,
    /// A sequence that holds something other than a mapping.
    Sequence,
    Scalar,
}

impl Shape {
    fn of(value: &Value) -> Shape {
        match value {
            Value::Object(_) => Shape::Mapping,
            Value::Array(items) if items.iter().all(Value::is_object) => Shape::Mappings,
            Value::Array(_) => Shape::Sequence,
            _ => Shape::Scalar,
        }
    }
}

/// A value finished: built (with its anchor), or passed over.
enum Done {
    Built(Value, usize),
    Passed(Shape),
}

/// Reads the documents of a parser one at a time.
pub struct Loader<'input, T: Input> {
    parser: Parser<'input, T>,
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    started: bool,
    finished: bool,
    doc_line: usize,
    /// Objects of these kinds are read without their `status`.
    skip_status_of: &'static [&'static str],
}

impl<'input> Loader<'input, saphyr_parser::StrInput<'input>> {
    pub fn from_text(text: &'input str) -> Self {
        Loader::new(Parser::new_from_str(text))
    }
}

impl<'input, T: Input> Loader<'input, T> {
    pub fn new(parser: Parser<'input, T>) -> Self {
        Loader {
            parser,
            anchors: HashMap::new(),
            alias_nodes: 0,
            started: false,
            finished: false,
            doc_line: 1,
            skip_status_of: &[],
        }
    }

    /// Reads the objects of these kinds (a document, or an item of a streamed
    /// `List`) without their `status`, when their `kind` comes before it: the
    /// status is parsed and checked as any value (nesting, aliases, duplicate
    /// and merge keys, tags), then comes back as `null`, without having been
    /// built. A status with an anchor of its own, or before the `kind`, is read whole.
    pub fn skip_status_of(mut self, kinds: &'static [&'static str]) -> Self {
        self.skip_status_of = kinds;
        self
    }

    fn event(&mut self) -> Result<(Event<'input>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => {
                Err(YamlError { message: e.info().to_owned(), line: e.marker().line(), col: e.marker().col() + 1 })
            }
            None => Err(YamlError { message: "unexpected end of input".into(), line: 0, col: 0 }),
        }
    }

    /// The line the current (or last) document starts on, for errors.
    pub fn document_line(&self) -> usize {
        self.doc_line
    }

    /// The next document, `None` at the end of the stream. After an error
    /// the loader must not be used again.
    pub fn next_document(&mut self, items: &mut Items<'_>) -> Result<Option<Loaded>, YamlError> {
        if self.finished {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            match self.event()? {
                (Event::StreamStart, _) => {}
                (_, span) => return Err(at(&span, "expected the start of the stream")),
            }
        }
        let line = match self.event()? {
            (Event::StreamEnd, _) => {
                self.finished = true;
                return Ok(None);
            }
            (Event::DocumentStart(_), span) => {
                self.doc_line = span.start.line();
                span.start.line()
            }
            (_, span) => return Err(at(&span, "expected the start of a document")),
        };
        // Anchors do not cross documents.
        self.anchors.clear();
        let (value, streamed, content_line) = self.node(items)?;
        match self.event()? {
            (Event::DocumentEnd, _) => {}
            (_, span) => return Err(at(&span, "expected the end of the document")),
        }
        Ok(Some(Loaded { value, streamed, line: content_line.unwrap_or(line) }))
    }

    /// Reads one node (the document's root) with an explicit stack, so depth
    /// costs heap within [`MAX_DEPTH`], never the call stack.
    fn node(&mut self, items: &mut Items<'_>) -> Result<(Value, Option<usize>, Option<usize>), YamlError> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut kind: Option<String> = None;
        let mut streamed: Option<usize> = None;
        let mut first_line = None;
        // Whether the object being read (the document, or the current item
        // of a streamed List) is of a kind whose status is passed over.
        // (`top` for the document, `item` for the current item of a streamed List).
        let (mut trimmed_top, mut trimmed_item) = (false, false);
        loop {
            let (event, span) = self.event()?;
            if first_line.is_none() {
                first_line = Some(span.start.line());
                self.doc_line = span.start.line();
            }
            if let Some(Frame::Streamed { line, .. }) = stack.last_mut() {
                *line = span.start.line();
            }
            let done = match event {
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing => {
                    return Err(at(&span, "unexpected document boundary inside a node"));
                }
                Event::MappingStart(anchor, _) => {
                    if expects_key(&stack) {
                        return Err(at(&span, "a mapping key must be a scalar"));
                    }
                    if anchor == 0 && self.passes_over(&stack, trimmed_top, trimmed_item) {
                        let map = PassedMap { keys: Default::default(), key: None, bad_merge: None };
                        push(&mut stack, Frame::Passed { map: Some(map), all_mappings: true }, &span)?;
                        continue;
                    }
                    if matches!(stack[..], [Frame::Map { .. }, Frame::Streamed { .. }]) {
                        // a new item of the List
                        trimmed_item = false;
                    }
                    push(&mut stack, Frame::Map { map: Map::new(), key: None, anchor, merges: Vec::new() }, &span)?;
                    continue;
                }
                Event::SequenceStart(anchor, _) => {
                    if expects_key(&stack) {
                        return Err(at(&span, "a mapping key must be a scalar"));
                    }
                    if anchor == 0 && self.passes_over(&stack, trimmed_top, trimmed_item) {
                        push(&mut stack, Frame::Passed { map: None, all_mappings: true }, &span)?;
                        continue;
                    }
                    let stream_here = match (&stack[..], &*items) {
                        ([Frame::Map { key: Some(k), .. }], Items::Stream { assume_list, .. }) => {
                            k == "items"
                                && anchor == 0
                                && (kind.as_deref().map_or(*assume_list, |k| k.ends_with("List")))
                        }
                        _ => false,
                    };
                    let frame = if stream_here {
                        Frame::Streamed { count: 0, line: span.start.line() }
                    } else {
                        Frame::Seq { items: Vec::new(), anchor }
                    };
                    push(&mut stack, frame, &span)?;
                    continue;
                }
                Event::MappingEnd => match stack.pop() {
                    Some(Frame::Map { mut map, key: None, anchor, merges }) => {
                        for merge in merges {
                            merge_into(&mut map, merge).map_err(|m| at(&span, m))?;
                        }
                        Done::Built(Value::Object(map), anchor)
                    }
                    Some(Frame::Passed { map: Some(map), .. }) => {
                        if let Some(m) = map.bad_merge {
                            return Err(at(&span, m));
                        }
                        passed_or_null(&stack, Shape::Mapping)
                    }
                    _ => return Err(at(&span, "unbalanced end of mapping")),
                },
                Event::SequenceEnd => match stack.pop() {
                    Some(Frame::Seq { items, anchor }) => Done::Built(Value::Array(items), anchor),
                    Some(Frame::Streamed { count, .. }) => {
                        streamed = Some(count);
                        // The field stays, empty: the List's other fields are kept.
                        Done::Built(Value::Array(Vec::new()), 0)
                    }
                    Some(Frame::Passed { map: None, all_mappings }) => {
                        passed_or_null(&stack, if all_mappings { Shape::Mappings } else { Shape::Sequence })
                    }
                    _ => return Err(at(&span, "unbalanced end of sequence")),
                },
                Event::Scalar(text, style, anchor, tag) => {
                    if let Some(Frame::Map { key: key @ None, map, .. }) = stack.last_mut() {
                        // A key: its text, whatever it would resolve to.
                        let k = text.into_owned();
                        if map.contains_key(&k) {
                            return Err(at(&span, format!("duplicate key {k:?}")));
                        }
                        if anchor != 0 {
                            self.anchors.insert(anchor, (Value::String(k.clone()), 1));
                        }
                        *key = Some(k);
                        continue;
                    }
                    if let Some(Frame::Passed { map: Some(m @ PassedMap { key: None, .. }), .. }) = stack.last_mut() {
                        let k = text.into_owned();
                        if anchor != 0 {
                            self.anchors.insert(anchor, (Value::String(k.clone()), 1));
                        }
                        m.take_key(k).map_err(|e| at(&span, e))?;
                        continue;
                    }
                    if anchor == 0 && matches!(stack.last(), Some(Frame::Passed { .. })) {
                        // Only a tag can make a scalar wrong.
                        if tag.is_some() {
                            resolve(&text, style, tag.as_deref()).map_err(|m| at(&span, m))?;
                        }
                        Done::Passed(Shape::Scalar)
                    } else {
                        Done::Built(resolve(&text, style, tag.as_deref()).map_err(|m| at(&span, m))?, anchor)
                    }
                }
                Event::Alias(id) => {
                    let Some((value, nodes)) = self.anchors.get(&id) else {
                        return Err(at(&span, "alias to an unknown anchor"));
                    };
                    self.alias_nodes = self.alias_nodes.saturating_add(*nodes);
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        return Err(at(&span, format!("aliases expand to more than {MAX_ALIAS_NODES} values")));
                    }
                    let value = value.clone();
                    if let Some(Frame::Map { key: key @ None, map, .. }) = stack.last_mut() {
                        match value {
                            Value::String(s) if map.contains_key(&s) => {
                                return Err(at(&span, format!("duplicate key {s:?}")))
                            }
                            Value::String(s) => *key = Some(s),
                            _ => return Err(at(&span, "a mapping key must be a scalar")),
                        }
                        continue;
                    }
                    if let Some(Frame::Passed { map: Some(m @ PassedMap { key: None, .. }), .. }) = stack.last_mut() {
                        match value {
                            Value::String(s) => m.take_key(s).map_err(|e| at(&span, e))?,
                            _ => return Err(at(&span, "a mapping key must be a scalar")),
                        }
                        continue;
                    }
                    Done::Built(value, 0)
                }
            };
            let (value, anchor) = match done {
                Done::Built(value, anchor) => (value, anchor),
                Done::Passed(shape) => {
                    place_passed(stack.last_mut(), shape);
                    continue;
                }
            };
            if anchor != 0 {
                let nodes = count_nodes(&value);
                self.anchors.insert(anchor, (value.clone(), nodes));
            }
            // Place the finished value in its parent.
            let top_level = stack.len() == 1;
            let item_level = matches!(stack[..], [_, Frame::Streamed { .. }, Frame::Map { .. }]);
            match stack.last_mut() {
                None => return Ok((value, streamed, first_line)),
                // an anchored value inside a passed-over subtree: built for its aliases only
                frame @ Some(Frame::Passed { .. }) => place_passed(frame, Shape::of(&value)),
                Some(Frame::Seq { items, .. }) => items.push(value),
                Some(Frame::Streamed { count, line }) => {
                    if let Items::Stream { each, .. } = items {
                        each(value, *count, *line).map_err(|m| at(&span, m))?;
                    }
                    *count += 1;
                }
                Some(Frame::Map { map, key, merges, .. }) => {
                    let Some(k) = key.take() else {
                        return Err(at(&span, "a mapping key must be a scalar"));
                    };
                    if k == "<<" {
                        merges.push(value);
                        continue;
                    }
                    if top_level && k == "kind" {
                        kind = value.as_str().map(str::to_owned);
                    }
                    if k == "kind" && (top_level || item_level) {
                        let trims = value.as_str().is_some_and(|k| self.skip_status_of.contains(&k));
                        *(if top_level { &mut trimmed_top } else { &mut trimmed_item }) = trims;
                    }
                    map.insert(k, value);
                }
            }
        }
    }
}

impl<'input, T: Input> Loader<'input, T> {
    /// Whether a mapping or sequence starting here is passed over: it is the
    /// `status` of an object whose kind says so, or inside one.
    fn passes_over(&self, stack: &[Frame], trimmed_top: bool, trimmed_item: bool) -> bool {
        match stack {
            [.., Frame::Passed { .. }] => true,
            [Frame::Map { key: Some(k), .. }] => trimmed_top && k == "status",
            [_, Frame::Streamed { .. }, Frame::Map { key: Some(k), .. }] => trimmed_item && k == "status",
            _ => false,
        }
    }
}

/// Whether the innermost mapping waits for a key.
fn expects_key(stack: &[Frame]) -> bool {
    matches!(
        stack.last(),
        Some(Frame::Map { key: None, .. } | Frame::Passed { map: Some(PassedMap { key: None, .. }), .. })
    )
}

impl PassedMap {
    fn take_key(&mut self, key: String) -> Result<(), String> {
        let merge = key == "<<";
        if !merge {
            if self.keys.contains(&key) {
                return Err(format!("duplicate key {key:?}"));
            }
            self.keys.insert(key);
        }
        self.key = Some(merge);
        Ok(())
    }
}

/// A passed-over value finished: its shape goes to the passed-over parent,
/// or, at the root of the subtree, `null` takes its place.
fn passed_or_null(stack: &[Frame], shape: Shape) -> Done {
    match stack.last() {
        Some(Frame::Passed { .. }) => Done::Passed(shape),
        _ => Done::Built(Value::Null, 0),
    }
}

/// Places a finished value's shape in the passed-over mapping or sequence on top of the stack.
fn place_passed(frame: Option<&mut Frame>, shape: Shape) {
    match frame {
        Some(Frame::Passed { map: Some(m), .. }) => {
            let merge = m.key.take() == Some(true);
            if merge && m.bad_merge.is_none() {
                m.bad_merge = match shape {
                    Shape::Mapping | Shape::Mappings => None,
                    Shape::Sequence => Some("a merge key (<<) takes mappings only"),
                    Shape::Scalar => Some("a merge key (<<) takes a mapping or a list of mappings"),
                };
            }
        }
        Some(Frame::Passed { map: None, all_mappings }) => *all_mappings &= shape == Shape::Mapping,
        _ => {}
    }
}

fn push(stack: &mut Vec<Frame>, frame: Frame, span: &Span) -> Result<(), YamlError> {
    if stack.len() >= MAX_DEPTH {
        return Err(at(span, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    stack.push(frame);
    Ok(())
}

/// `<<: mapping` or `<<: [mappings]`: keys not set explicitly come from the
/// merged mappings, the first one listed winning.
fn merge_into(map: &mut Map<String, Value>, merge: Value) -> Result<(), String> {
    let sources = match merge {
        Value::Object(m) => vec![m],
        Value::Array(list) => list
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m),
                _ => Err("a merge key (<<) takes mappings only".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("a merge key (<<) takes a mapping or a list of mappings".to_owned()),
    };
    for source in sources {
        for (k, v) in source {
            map.entry(k).or_insert(v);
        }
    }
    Ok(())
}

fn count_nodes(value: &Value) -> usize {
    match value {
        Value::Array(a) => 1 + a.iter().map(count_nodes).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// A scalar's JSON value: quoted and block scalars are strings; plain ones
/// resolve by the core schema; `!!str`, `!!int`, `!!float`, `!!bool` and
/// `!!null` force a type. Other tags are ignored.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag.filter(|t| t.is_yaml_core_schema()) {
        let bad = || format!("{text:?} is not a valid !!{}", tag.suffix);
        return match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.to_owned())),
            "null" => null(text).ok_or_else(bad),
            "bool" => boolean(text).ok_or_else(bad),
            "int" => integer(text).ok_or_else(bad),
            "float" => integer(text).or_else(|| float(text)).ok_or_else(bad),
            _ => Ok(Value::String(text.to_owned())),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(null(text)
        .or_else(|| boolean(text))
        .or_else(|| integer(text))
        .or_else(|| float(text))
        .unwrap_or_else(|| Value::String(text.to_owned())))
}

fn null(text: &str) -> Option<Value> {
    matches!(text, "" | "~" | "null" | "Null" | "NULL").then_some(Value::Null)
}

fn boolean(text: &str) -> Option<Value> {
    match text {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

fn integer(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(h) = digits.strip_prefix("0x").filter(|_| text == digits) {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o").filter(|_| text == digits) {
        (8, o)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix);
    match (negative, magnitude) {
        (false, Ok(n)) => Some(Value::Number(n.into())),
        (true, Ok(n)) if n <= i64::MAX as u64 + 1 => Some(Value::Number((0i64.wrapping_sub_unsigned(n)).into())),
        // Too large for 64 bits: as a float, as JSON readers do.
        _ if radix == 10 => float(text),
        _ => None,
    }
}

fn float(text: &str) -> Option<Value> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Value::Null);
    }
    let b = unsigned.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != b.len() {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    Some(Number::from_f64(f).map_or(Value::Null, Value::Number))
}

/// Parses a text that holds at most one document (`Value::Null` when it has none).
pub fn from_str(text: &str) -> Result<Value, YamlError> {
    let mut loader = Loader::from_text(text);
    let value = loader.next_document(&mut Items::Keep)?.map_or(Value::Null, |d| d.value);
    match loader.next_document(&mut Items::Keep)? {
        None => Ok(value),
        Some(d) => Err(YamlError { message: "more than one document".into(), line: d.line, col: 1 }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn core_schema_scalars() {
        let v = from_str(
            "a: ~\nb: true\nc: 0x1F\nd: -12\ne: 1.5e3\nf: '1'\ng: .inf\nh: yes\ni: 0o17\nj: 1_000\nk: !!str 5\nl: \"\"\nm:\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": null, "b": true, "c": 31, "d": -12, "e": 1500.0, "f": "1", "g": null, "h": "yes",
                   "i": 15, "j": "1_000", "k": "5", "l": "", "m": null})
        );
        assert_eq!(from_str("-9223372036854775808").unwrap(), json!(i64::MIN));
        assert_eq!(from_str("18446744073709551616").unwrap(), json!(18446744073709551616.0));
        assert_eq!(from_str("nan").unwrap(), json!("nan"));
        assert_eq!(from_str("infinity").unwrap(), json!("infinity"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = from_str("base: &b {x: 1, y: 2}\nc: *b\nd:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(v, json!({"base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 2}, "d": {"x": 1, "y": 3}}));
    }

    #[test]
    fn duplicate_keys_and_complex_keys_are_errors() {
        let e = from_str("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(e.message.contains("duplicate key \"a\"") && e.line == 3, "{e}");
        assert!(from_str("? [a]\n: 1\n").is_err());
        assert!(from_str("spec:\n  x: 1\n  x: 2\n").unwrap_err().message.contains("duplicate"));
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = from_str(&text).unwrap_err();
        assert!(e.message.contains("aliases expand"), "{e}");
    }

    #[test]
    fn deep_nesting_fails_with_a_position() {
        let ok = format!("{}1{}", "{a: ".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(from_str(&ok).is_ok());
        for text in [
            format!("{}1{}", "{a: ".repeat(10_000), "}".repeat(10_000)),
            format!("{}1{}", "{a: ".repeat(100_000), "}".repeat(100_000)),
            "[".repeat(1_000_000),
            "- ".repeat(500_000),
            "[{a: ".repeat(300_000),
        ] {
            let e = from_str(&text).unwrap_err();
            assert_eq!(e.line, 1, "{e}");
            assert!(e.message.contains("nesting deeper") || e.message.contains("recursion limit"), "{e}");
        }
        // Block nesting by indentation.
        let block: String = (0..200).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
        assert!(from_str(&block).unwrap_err().message.contains("nesting deeper"));
    }

    #[test]
    fn streams_items_of_lists_only() {
        let text = "apiVersion: v1\nitems:\n- kind: Pod\n  metadata: {name: a}\n- kind: Pod\n  metadata: {name: b}\nkind: List\n";
        let mut seen = Vec::new();
        let mut each = |v: Value, i: usize, line: usize| {
            seen.push((v["metadata"]["name"].as_str().unwrap().to_owned(), i, line));
            Ok(())
        };
        let mut loader = Loader::from_text(text);
        let doc = loader.next_document(&mut Items::Stream { assume_list: true, each: &mut each }).unwrap().unwrap();
        assert_eq!(doc.streamed, Some(2));
        assert_eq!(doc.value, json!({"apiVersion": "v1", "items": [], "kind": "List"}));
        assert_eq!(seen, [("a".to_owned(), 0, 3), ("b".to_owned(), 1, 5)]);

        // `kind` first decides without the assumption; a non-List keeps its items.
        let mut n = 0;
        let mut count = |_: Value, _: usize, _: usize| {
            n += 1;
            Ok(())
        };
        let mut loader = Loader::from_text("kind: Foo\nitems: [1, 2]\n");
        let doc = loader.next_document(&mut Items::Stream { assume_list: true, each: &mut count }).unwrap().unwrap();
        assert_eq!((doc.streamed, doc.value), (None, json!({"kind": "Foo", "items": [1, 2]})));
        assert_eq!(n, 0);
    }

    /// Every document of `text`, each item of a List on its own, read with
    /// the status of Nodes passed over (`trim`) or not.
    fn read_all(text: &str, trim: bool) -> Result<Vec<Value>, YamlError> {
        let mut seen = Vec::new();
        let mut loader = Loader::from_text(text).skip_status_of(if trim { &["Node"] } else { &[] });
        loop {
            let mut each = |v: Value, _: usize, _: usize| {
                seen.push(v);
                Ok(())
            };
            match loader.next_document(&mut Items::Stream { assume_list: true, each: &mut each })? {
                Some(doc) => seen.push(doc.value),
                None => return Ok(seen),
            }
        }
    }

    #[test]
    fn node_status_is_passed_over_with_every_check_kept() {
        let node = "kind: Node\nmetadata: {name: a}\nstatus:\n  images:\n  - names: [x, y]\n    sizeBytes: 1\n  conditions: [{type: Ready, status: 'True'}]\n";
        let list = format!(
            "apiVersion: v1\nitems:\n- {}\n- kind: Pod\n  status: {{a: 1}}\nkind: List\n",
            node.replace('\n', "\n  ").trim_end()
        );
        for text in [node.to_owned(), list] {
            let (trimmed, whole) = (read_all(&text, true).unwrap(), read_all(&text, false).unwrap());
            assert_ne!(trimmed, whole);
            let mut expected = whole.clone();
            for v in &mut expected {
                if v["kind"] == "Node" {
                    v["status"] = Value::Null;
                }
            }
            assert_eq!(trimmed, expected, "{text}");
        }
        // Read whole as before: other kinds, a status before the kind, an anchored status;
        // an alias to an anchor inside a passed-over status still resolves.
        for text in [
            "kind: Pod\nstatus: {phase: Running}\n",
            "status: {a: 1}\nkind: Node\n",
            "kind: Node\nstatus: &s {a: 1}\nspec: *s\n",
            "items:\n- status: {a: 1}\n  kind: Node\nkind: List\nstatus: {b: 2}\n",
        ] {
            assert_eq!(read_all(text, true).unwrap(), read_all(text, false).unwrap(), "{text}");
        }
        let aliased = "kind: Node\nstatus: {x: [&a {b: 1}, 2]}\nspec: *a\n";
        assert_eq!(read_all(aliased, true).unwrap(), [json!({"kind": "Node", "status": null, "spec": {"b": 1}})]);
        // Every error of a built status is raised, at the same place.
        let deep = format!("kind: Node\nstatus: {}1{}\n", "[".repeat(200), "]".repeat(200));
        let mut bomb = String::from("kind: Node\nstatus:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        for text in [
            "kind: Node\nstatus:\n  a: 1\n  a: 2\n",
            "kind: Node\nstatus: {x: {a: 1, b: 2, a: 3}}\n",
            "kind: Node\nstatus: {<<: 5}\n",
            "kind: Node\nstatus: {<<: [{a: 1}, 2]}\n",
            "kind: Node\nstatus: {x: !!int abc}\n",
            "kind: Node\nstatus: {? [a] : 1}\n",
            "kind: Node\nstatus: {x: *nowhere}\n",
            "kind: Node\nstatus: {x: 1}\nstatus: {}\n",
            "items:\n- kind: Node\n  status: [{a: 1, a: 2}]\nkind: List\n",
            &deep,
            &bomb,
        ] {
            let (trimmed, whole) = (read_all(text, true).unwrap_err(), read_all(text, false).unwrap_err());
            assert_eq!(trimmed, whole, "{text}");
        }
        // Merge keys that are right pass, as in a built mapping.
        let merges = "kind: Node\nstatus: {<<: [{a: 1}], b: {<<: {c: 1}}, c: &m {d: 1}, e: {<<: *m}}\n";
        assert_eq!(read_all(merges, true).unwrap(), [json!({"kind": "Node", "status": null})]);
    }

    #[test]
    fn multi_document_streams_and_errors_have_positions() {
        let mut loader = Loader::from_text("a: 1\n---\n---\nb: [2]\n");
        let mut docs = Vec::new();
        while let Some(d) = loader.next_document(&mut Items::Keep).unwrap() {
            docs.push((d.value, d.line));
        }
        assert_eq!(docs, [(json!({"a": 1}), 1), (Value::Null, 3), (json!({"b": [2]}), 4)]);
        let e = from_str("a: 1\nb: [unclosed\nc: 2\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }
}
