//! `-o sarif`: SARIF 2.1.0 for code-scanning tools. One rule per kind of
//! finding (the engine's [`Rule::ALL`] plus `manifest-error` for documents
//! that cannot be read), one result per finding, located at the input file
//! and the line where the object's document starts. Results are the
//! `serde-sarif` crate's types, streamed one by one as objects are judged
//! (measured against `json!` values: `docs/check-throughput.md`).

use std::io::{self, Write};

use serde_json::{json, Value};

use super::input::STDIN_DISPLAY;
use super::json::{indented, push_indented};
use super::{level, ClusterSource, Record, Report, Totals, Verdict};
use crate::engine::{Action, Rule};
use serde_sarif::sarif;

/// The rule of results for documents that do not parse or objects the engine cannot read.
pub const MANIFEST_ERROR: &str = "manifest-error";

/// Streams the log: the rules are known up front, each result is written as
/// its object is judged, and the invocation (with the exit code) comes last.
pub struct SarifReport<'w> {
    out: Box<dyn Write + 'w>,
    started: bool,
    results: usize,
    /// Where the rule documents (`docs/rules/`) are published, for `helpUri`.
    rule_docs_url: Option<String>,
    /// One result's text, reused from result to result.
    buf: Vec<u8>,
}

impl<'w> SarifReport<'w> {
    pub fn new(out: Box<dyn Write + 'w>) -> Self {
        SarifReport { out, started: false, results: 0, rule_docs_url: None, buf: Vec::new() }
    }

    /// Rules get a `helpUri`: `BASE/<rule>.md`.
    pub fn with_rule_docs_url(mut self, base: Option<&str>) -> Self {
        self.rule_docs_url = base.map(str::to_owned);
        self
    }

    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let tool = json!({
            "driver": {
                "name": "sysbox-ro-webhook",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules(self.rule_docs_url.as_deref()),
            }
        });
        write!(
            self.out,
            "{{\n  \"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\",\n  \"version\": \"2.1.0\",\n  \
             \"runs\": [\n    {{\n      \"tool\": {},\n      \"results\": [",
            indented(&tool, 6)?
        )
    }

    fn result(&mut self, result: sarif::Result) -> io::Result<()> {
        self.start()?;
        self.buf.clear();
        if self.results > 0 {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(b"\n        ");
        push_indented(&mut self.buf, &result, 8)?;
        self.out.write_all(&self.buf)?;
        self.results += 1;
        Ok(())
    }
}

/// "relaxed-read-only-missing" → "RelaxedReadOnlyMissing".
fn pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn sentence(s: &str) -> String {
    let s = s.trim_end();
    if s.ends_with(['.', '!', '?']) {
        s.to_owned()
    } else {
        format!("{s}.")
    }
}

/// What the rule's findings do, by the action `enforce` mode takes on them.
fn treatment(rule: Rule) -> &'static str {
    match rule.default_action() {
        Action::Note | Action::Audit => "A note about the evaluation itself; never shown by the webhook.",
        Action::Deny => "Denied in enforce mode, a warning in warn mode, recorded only in audit mode.",
        Action::Warn => "A warning in enforce and warn mode, recorded only in audit mode.",
    }
}

/// The rule descriptors, in the order results refer to them by index. The
/// help is the rule's document (what `explain` prints); with `docs_url`,
/// `helpUri` points at its published copy.
pub fn rules(docs_url: Option<&str>) -> Vec<Value> {
    let mut rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|&r| {
            let mut rule = json!({
                "id": r.id(),
                "name": pascal(r.id()),
                "shortDescription": { "text": sentence(r.summary()) },
                "fullDescription": { "text": format!("{} {}", sentence(r.summary()), treatment(r)) },
                "help": {
                    "text": format!(
                        "{} Full explanation and fix: `sysbox-ro-webhook explain {}` ({}).",
                        treatment(r),
                        r.id(),
                        r.document_path()
                    ),
                    "markdown": r.document(),
                },
                "defaultConfiguration": { "level": level(r.default_action()) },
                "properties": { "enforceable": r.enforceable() },
            });
            if let Some(base) = docs_url {
                rule["helpUri"] = json!(format!("{}/{}.md", base.trim_end_matches('/'), r.id()));
            }
            rule
        })
        .collect();
    rules.push(json!({
        "id": MANIFEST_ERROR,
        "name": pascal(MANIFEST_ERROR),
        "shortDescription": { "text": "A document that does not parse, or an object the engine cannot read." },
        "fullDescription": {
            "text": "A document that does not parse as YAML or JSON, or an object whose pod spec has fields of the \
                     wrong type. The webhook would refuse such an object; the other documents are still checked."
        },
        "help": { "text": "Fix the document so that kubectl can apply it." },
        "defaultConfiguration": { "level": "error" },
        "properties": { "enforceable": true },
    }));
    rules
}

/// The position of a rule's descriptor in [`rules`].
fn rule_index(rule: Rule) -> usize {
    Rule::ALL.iter().position(|r| *r == rule).unwrap_or(Rule::ALL.len())
}

/// A URI reference for a reported file name: relative paths stay relative
/// (so code scanning resolves them against the repository), absolute ones
/// become `file://` URIs, stdin is `stdin`.
pub fn uri(file: &str) -> String {
    if file == STDIN_DISPLAY {
        return "stdin".to_owned();
    }
    let path = file.replace('\\', "/");
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn location(r: &Record) -> sarif::Location {
    let physical = sarif::PhysicalLocation::builder()
        .artifact_location(sarif::ArtifactLocation::builder().uri(uri(&r.file)).build())
        .region(sarif::Region::builder().start_line(r.line.max(1) as i64).build())
        .build();
    let mut loc = sarif::Location::builder().physical_location(physical).build();
    let subject = r.subject();
    if !subject.is_empty() {
        loc.logical_locations =
            Some(vec![sarif::LogicalLocation::builder().fully_qualified_name(subject).kind("resource").build()]);
    }
    loc
}

fn properties(r: &Record) -> sarif::PropertyBag {
    let bag = [
        ("verdict", json!(r.verdict.as_str())),
        ("document", json!(r.document)),
        ("item", json!(r.item)),
        ("kind", json!(r.kind)),
        ("namespace", json!(r.namespace)),
        ("name", json!(r.name)),
    ];
    let bag: std::collections::BTreeMap<String, Value> = bag.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    sarif::PropertyBag::builder().additional_properties(bag).build()
}

/// One result: a finding (or an unreadable document) of the object of `r`.
fn result(r: &Record, rule_id: &str, rule_index: usize, action: Action, message: &str) -> sarif::Result {
    let level = match action {
        Action::Deny => sarif::ResultLevel::Error,
        Action::Warn => sarif::ResultLevel::Warning,
        Action::Audit | Action::Note => sarif::ResultLevel::Note,
    };
    sarif::Result::builder()
        .rule_id(rule_id)
        .rule_index(rule_index as i64)
        .level(level)
        .message(sarif::Message::builder().text(sentence(message)).build())
        .locations(vec![location(r)])
        .properties(properties(r))
        .build()
}

impl Report for SarifReport<'_> {
    fn object(&mut self, r: &Record) -> io::Result<()> {
        if r.verdict == Verdict::Error {
            return self.result(result(r, MANIFEST_ERROR, Rule::ALL.len(), Action::Deny, &r.message));
        }
        for f in &r.findings {
            self.result(result(r, f.rule_id, rule_index(f.rule), f.action, &f.message))?;
        }
        Ok(())
    }

    fn end_file(&mut self, _file: &str) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        self.start()?;
        let mut notifications = Vec::new();
        if totals.cluster_state == ClusterSource::None {
            notifications.push(json!({
                "level": "note",
                "message": { "text": "The node-pool verdict was not evaluated: no --cluster-state or --live." },
            }));
        }
        let invocations = json!([{
            "executionSuccessful": totals.exit_code < super::EXIT_USAGE,
            "exitCode": totals.exit_code,
            "toolExecutionNotifications": notifications,
        }]);
        let properties = json!({
            "clusterState": totals.cluster_state,
            "nodePoolsEvaluated": totals.node_pools_evaluated,
            "totals": totals,
        });
        let close = if self.results == 0 { "]" } else { "\n      ]" };
        writeln!(
            self.out,
            "{close},\n      \"invocations\": {},\n      \"properties\": {}\n    }}\n  ]\n}}",
            indented(&invocations, 6)?,
            indented(&properties, 6)?
        )?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(uri("tests/data/a b.yaml"), "tests/data/a%20b.yaml");
        assert_eq!(uri("/tmp/x.yaml"), "file:///tmp/x.yaml");
        assert_eq!(uri(STDIN_DISPLAY), "stdin");
        assert_eq!(uri("ü.yaml"), "%C3%BC.yaml");
    }

    #[test]
    fn one_rule_per_engine_rule_in_index_order() {
        let rules = rules(Some("https://example.com/docs/rules/"));
        assert_eq!(rules.len(), Rule::ALL.len() + 1);
        assert_eq!(rules[0]["helpUri"], "https://example.com/docs/rules/relaxed-read-only-missing.md");
        assert!(rules[0]["help"]["text"].as_str().unwrap().contains("explain relaxed-read-only-missing"));
        assert!(super::rules(None)[0].get("helpUri").is_none());
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert_eq!(rules[i]["id"], r.id());
            assert_eq!(rule_index(*r), i);
        }
        assert_eq!(rules[Rule::ALL.len()]["id"], MANIFEST_ERROR);
        assert_eq!(pascal("relaxed-read-only-missing"), "RelaxedReadOnlyMissing");
    }
}
