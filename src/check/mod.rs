//! `check`: the CI policy dry-run. Each object of the manifest files becomes
//! a review through [`crate::intake`] and is decided by
//! [`crate::engine::decide`], as `serve` does for an AdmissionReview, so a CI
//! run and the live webhook give the same verdict and patch for the same
//! object and cluster state.
//!
//! Input is streamed document by document ([`check_reader`]): each document
//! is parsed, each object in it (the items of a `List`) judged, the result
//! handed to a [`Report`] and, with `--mutated-out`, the document written out
//! patched or verbatim before the next one is read. Reports that need totals
//! up front (JUnit, SARIF) keep only the small per-object [`Record`]s.
//!
//! Exit status: 0 when nothing is denied; 1 when something is denied or a
//! document gets the `error` verdict (and with `--fail-on warn`, on any
//! warning); 2 for unusable arguments or input, including an input in which
//! no document at all could be read.

pub mod config;
pub mod input;
pub mod json;
pub mod junit;
pub mod mutated;
pub mod nodes;
pub mod sarif;
pub mod text;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use json_patch::PatchOperation;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{self, ClusterState};
use crate::engine::subject::json_type;
pub use crate::engine::Verdict;
use crate::engine::{self, Action, Decision, Kind, Rule};
use crate::intake;
use crate::manifest::{self, Documents, ManifestError};
use crate::metrics::Metrics;
use crate::policy::{Mode, Policy};
pub use config::{CheckConfig, ColorChoice, FailOn, OutputFormat};
use input::{Origin, Source};
use mutated::{Discard, DocSink, DocWriter};

/// Exit status 1: something denied (or an `error` verdict; warnings too with `--fail-on warn`).
pub const EXIT_FAILED: u8 = 1;
/// Exit status 2: unusable arguments or input.
pub const EXIT_USAGE: u8 = 2;

/// What every object is judged with.
pub struct Context {
    pub policy: Policy,
    /// `None`: no cluster state, the node-pool verdict is not evaluated.
    pub cluster: Option<Arc<ClusterState>>,
    /// Namespace for objects whose manifest names none.
    pub default_namespace: String,
}

impl FailOn {
    /// Whether an object with this verdict makes the run fail (exit 1).
    pub fn fails(self, verdict: Verdict) -> bool {
        match verdict {
            Verdict::Deny | Verdict::Error => true,
            Verdict::Warn => self == FailOn::Warn,
            Verdict::Allow | Verdict::Skip => false,
        }
    }
}

/// How reports grade what a finding did: it denied the object (`error`),
/// was shown as a warning (`warning`), or was only recorded (`note`: audit
/// mode, and notes about the evaluation).
pub fn level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Warn => "warning",
        Action::Audit | Action::Note => "note",
    }
}

fn serialize_level<S: serde::Serializer>(action: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level(*action))
}

/// One finding of one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRecord {
    #[serde(skip)]
    pub rule: Rule,
    /// The rule's stable id ([`Rule::id`]).
    #[serde(rename = "rule")]
    pub rule_id: &'static str,
    /// What the decision did with it, reported as its [`level`].
    #[serde(rename = "level", serialize_with = "serialize_level")]
    pub action: Action,
    pub message: String,
}

/// The result for one object (or for one document that could not be read).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The input as reports name it (path as given, or `<stdin>`).
    pub file: String,
    /// 0-based index of the document in its file.
    pub document: usize,
    /// 0-based index within a `List` document, `null` otherwise.
    pub item: Option<usize>,
    /// 1-based line the document starts on.
    pub line: usize,
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub verdict: Verdict,
    /// The mode the decision was made in (`null` when skipped before one applied).
    pub mode: Option<Mode>,
    pub message: String,
    pub warnings: Vec<String>,
    pub findings: Vec<FindingRecord>,
    pub patch: Vec<PatchOperation>,
}

impl Record {
    fn error(file: &str, document: usize, line: usize, message: String) -> Record {
        Record {
            file: file.to_owned(),
            document,
            item: None,
            line,
            api_version: None,
            kind: None,
            namespace: None,
            name: None,
            verdict: Verdict::Error,
            mode: None,
            message,
            warnings: Vec::new(),
            findings: Vec::new(),
            patch: Vec::new(),
        }
    }

    /// `Kind namespace/name` as far as known, for one-line reports.
    pub fn subject(&self) -> String {
        let name = match self.name.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => "<unnamed>",
        };
        match (self.kind.as_deref(), self.namespace.as_deref()) {
            (None, _) => String::new(),
            (Some(k), Some(ns)) => format!("{k} {ns}/{name}"),
            (Some(k), None) => format!("{k} {name}"),
        }
    }

    /// `file:line`, with the document index (and the item of a List).
    pub fn location(&self) -> String {
        match self.item {
            Some(i) => format!("{}:{} doc {} item {i}", self.file, self.line, self.document),
            None => format!("{}:{} doc {}", self.file, self.line, self.document),
        }
    }
}

/// Where the cluster state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterSource {
    File,
    Live,
    None,
}

/// Counts over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub files: usize,
    pub documents: usize,
    pub objects: usize,
    pub allow: usize,
    pub warn: usize,
    pub deny: usize,
    pub skip: usize,
    pub error: usize,
    pub cluster_state: ClusterSource,
    pub node_pools_evaluated: bool,
    /// With a cluster state: who set the nodes' flag labels, and warnings about them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<nodes::NodeLabels>,
    pub exit_code: u8,
    /// Documents that parsed (whatever they held).
    #[serde(skip)]
    pub parsed_documents: usize,
}

impl Totals {
    pub fn new(cluster_state: ClusterSource) -> Totals {
        Totals {
            files: 0,
            documents: 0,
            objects: 0,
            allow: 0,
            warn: 0,
            deny: 0,
            skip: 0,
            error: 0,
            cluster_state,
            node_pools_evaluated: cluster_state != ClusterSource::None,
            node_labels: None,
            exit_code: 0,
            parsed_documents: 0,
        }
    }

    /// Counts one record's verdict.
    pub fn count(&mut self, r: &Record) {
        self.objects += 1;
        match r.verdict {
            Verdict::Allow => self.allow += 1,
            Verdict::Warn => self.warn += 1,
            Verdict::Deny => self.deny += 1,
            Verdict::Skip => self.skip += 1,
            Verdict::Error => self.error += 1,
        }
    }

    /// The exit status for these totals (see the module docs).
    pub fn status(&self, fail_on: FailOn) -> u8 {
        if self.parsed_documents == 0 {
            EXIT_USAGE
        } else if self.deny > 0 || self.error > 0 || (fail_on == FailOn::Warn && self.warn > 0) {
            EXIT_FAILED
        } else {
            0
        }
    }
}

/// A report format. Records arrive file by file, in input order.
pub trait Report {
    fn begin_file(&mut self, _file: &str) -> io::Result<()> {
        Ok(())
    }
    fn object(&mut self, record: &Record) -> io::Result<()>;
    fn end_file(&mut self, _file: &str) -> io::Result<()> {
        Ok(())
    }
    /// Writes what is left; `totals.exit_code` is final.
    fn finish(&mut self, totals: &Totals) -> io::Result<()>;
}

/// Keeps every record (tests and tools).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Record>);

impl Report for Collect {
    fn object(&mut self, record: &Record) -> io::Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
    fn finish(&mut self, _: &Totals) -> io::Result<()> {
        Ok(())
    }
}

fn meta_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// Judges one object exactly as `serve` would on CREATE.
pub fn judge(object: &Value, ctx: &Context) -> Result<(Decision, String, String), engine::SubjectError> {
    let review = intake::from_manifest(object, &ctx.default_namespace);
    let decision = engine::decide(&review, ctx.cluster.as_deref(), &ctx.policy)?;
    Ok((decision, review.namespace.to_owned(), review.name.to_owned()))
}

fn judge_object(object: &Value, at: (&str, usize, Option<usize>, usize), ctx: &Context) -> Record {
    let (file, document, item, line) = at;
    let (api_version, kind) = manifest::type_of(object);
    let mut record = Record::error(file, document, line, String::new());
    record.item = item;
    if !object.is_object() {
        record.message = format!(
            "not a Kubernetes object: the {} is a {}",
            if item.is_some() { "item" } else { "document" },
            json_type(object)
        );
        return record;
    }
    // As kubectl: an object without a string apiVersion and kind cannot be
    // applied, so it is an error, never a silent skip.
    for field in ["apiVersion", "kind"] {
        let problem = match object.get(field) {
            None | Some(Value::Null) => Some("is missing".to_owned()),
            Some(Value::String(s)) if s.is_empty() => Some("is empty".to_owned()),
            Some(Value::String(_)) => None,
            Some(other) => Some(format!("must be a string, not a {}", json_type(other))),
        };
        if let Some(problem) = problem {
            record.name = meta_str(object, "name").map(str::to_owned);
            record.message = format!("not a Kubernetes object: {field} {problem}");
            return record;
        }
    }
    record.api_version = Some(api_version.to_owned()).filter(|s| !s.is_empty());
    record.kind = Some(kind.to_owned());
    let judged = Kind::from_type(api_version, kind).is_some();
    match judge(object, ctx) {
        Err(e) => {
            record.namespace = Some(meta_str(object, "namespace").unwrap_or(&ctx.default_namespace).to_owned());
            record.name = engine::subject::object_name(object).map(str::to_owned);
            record.message = format!("the engine cannot read this object: {e}");
        }
        Ok((decision, namespace, name)) => {
            // Judged kinds are namespaced; for other kinds only the manifest knows.
            record.namespace = if judged { Some(namespace) } else { meta_str(object, "namespace").map(str::to_owned) };
            record.name = Some(name).filter(|n| !n.is_empty());
            record.verdict = decision.verdict;
            record.mode = decision.mode;
            record.message = match (&decision.message, decision.verdict) {
                (Some(denial), Verdict::Deny) => denial.clone(),
                _ => decision.summary(|rule| match rule {
                    Rule::PoolsNotEvaluated => "node pools not evaluated",
                    other => other.id(),
                }),
            };
            record.findings = decision
                .findings
                .iter()
                .map(|f| FindingRecord {
                    rule: f.rule,
                    rule_id: f.rule.id(),
                    action: f.action,
                    message: f.message.clone(),
                })
                .collect();
            record.warnings = decision.warnings;
            record.patch = decision.patch;
        }
    }
    record
}

/// Judges one document, reporting each object's record as it is judged (so
/// the items of a `List` are never all held), and returns, when patched, its
/// new text for `--mutated-out` (`None`: write the original text). With
/// `render` (`--mutated-out`) the document's records are kept until its
/// patches have been applied, so a patch that cannot be applied marks them.
fn judge_document(
    doc: &manifest::Document,
    file: &str,
    ctx: &Context,
    totals: &mut Totals,
    report: &mut dyn Report,
    render: bool,
) -> io::Result<Option<String>> {
    let mut kept: Vec<Record> = Vec::new();
    let mut failed: Option<io::Error> = None;
    let mut emit = |r: Record, totals: &mut Totals, report: &mut dyn Report| {
        if failed.is_none() {
            totals.count(&r);
            if let Err(e) = report.object(&r) {
                failed = Some(e);
            }
        }
    };
    let read = doc.for_each_object(&mut |object, item, line| {
        let r = judge_object(&object, (file, doc.index, item, line), ctx);
        if render {
            kept.push(r);
        } else {
            emit(r, totals, report);
        }
    });
    let text = match read {
        Err(e) => {
            let message = match e {
                ManifestError::Parse { message, .. } => format!("document does not parse: {message}"),
                other => other.to_string(),
            };
            kept.push(Record::error(file, doc.index, doc.line, message));
            None
        }
        Ok(_) => {
            totals.parsed_documents += 1;
            let patches: Vec<(Option<usize>, &[PatchOperation])> =
                kept.iter().filter(|r| !r.patch.is_empty()).map(|r| (r.item, r.patch.as_slice())).collect();
            if patches.is_empty() {
                None
            } else {
                match mutated::rewrite(&doc.text, &patches) {
                    Ok(text) => Some(text),
                    Err(e) => {
                        // Cannot happen for patches computed from this very document; if
                        // it does, say so rather than write a half-patched file.
                        for r in kept.iter_mut().filter(|r| !r.patch.is_empty()) {
                            r.verdict = Verdict::Error;
                            r.message = format!("the patch cannot be applied to the manifest text: {e}");
                        }
                        None
                    }
                }
            }
        }
    };
    for r in kept {
        emit(r, totals, report);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(text),
    }
}

/// Checks one stream of manifests: every document is parsed, judged,
/// reported and (patched or verbatim) written to `out` before the next one
/// is read. Errors are those of writing the report or `out`; problems of the
/// input become `error` records.
pub fn check_reader<R: BufRead>(
    reader: R,
    file: &str,
    ctx: &Context,
    report: &mut dyn Report,
    out: &mut dyn DocSink,
    totals: &mut Totals,
) -> io::Result<()> {
    totals.files += 1;
    report.begin_file(file)?;
    let mut docs = Documents::new(reader);
    let mut next_index = 0;
    while let Some(doc) = docs.next() {
        let doc = match doc {
            Ok(doc) => doc,
            Err(e) => {
                totals.documents += 1;
                let line = docs.lines_read() + 1;
                let r = Record::error(file, next_index, line, format!("cannot read the rest of the input: {e}"));
                totals.count(&r);
                report.object(&r)?;
                break;
            }
        };
        totals.documents += 1;
        next_index = doc.index + 1;
        let text = judge_document(&doc, file, ctx, totals, report, out.wants_documents())?;
        out.document(text.as_deref().unwrap_or(&doc.text))?;
    }
    report.end_file(file)
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    ClusterState(#[from] crate::cluster::snapshot::SnapshotError),
    #[error("live cluster: {0}")]
    Live(#[source] cluster::OpenError),
    #[error("live cluster: {0}")]
    LiveUnusable(String),
    #[error("--mutated-out {}: {source}", path.display())]
    MutatedOut {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--mutated-out: {first} and {second} would both be written to {}; check them in separate runs", out.display())]
    MutatedCollision { first: String, second: String, out: PathBuf },
    #[error("--mutated-out would overwrite the input {}", path.display())]
    MutatedOverwrite { path: PathBuf },
    #[error("cannot write the report: {0}")]
    Report(#[source] io::Error),
}

/// Where `--mutated-out` goes.
enum MutatedTarget {
    None,
    Stdout,
    Dir(PathBuf),
}

fn mutated_target(config: &CheckConfig, sources: &[Source]) -> Result<MutatedTarget, CheckError> {
    let Some(dir) = &config.mutated_out else { return Ok(MutatedTarget::None) };
    if dir.as_os_str() == "-" {
        return Ok(MutatedTarget::Stdout);
    }
    std::fs::create_dir_all(dir).map_err(|source| CheckError::MutatedOut { path: dir.clone(), source })?;
    let mut taken: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
    for s in sources.iter().filter(|s| !matches!(s.origin, Origin::Unreadable { .. })) {
        let out = dir.join(&s.mirror);
        if let Some(first) = taken.insert(out.clone(), &s.display) {
            return Err(CheckError::MutatedCollision { first: first.to_owned(), second: s.display.clone(), out });
        }
        if let (Origin::File(input), Ok(existing)) = (&s.origin, std::fs::canonicalize(&out)) {
            if std::fs::canonicalize(input).is_ok_and(|i| i == existing) {
                return Err(CheckError::MutatedOverwrite { path: input.clone() });
            }
        }
    }
    Ok(MutatedTarget::Dir(dir.clone()))
}

fn load_cluster(config: &CheckConfig) -> Result<(Option<Arc<ClusterState>>, ClusterSource), CheckError> {
    let nodes = &config.policy.nodes;
    match &config.cluster {
        None => Ok((None, ClusterSource::None)),
        Some(source @ cluster::Source::Snapshot(_)) => {
            // Loading files needs no runtime: the future completes at its first poll.
            let opened = futures::executor::block_on(cluster::open(source, nodes, Arc::new(Metrics::new()))).map_err(
                |e| match e {
                    cluster::OpenError::Snapshot(e) => CheckError::ClusterState(e),
                    other => CheckError::Live(other),
                },
            )?;
            for note in opened.notes {
                tracing::debug!(%note, "cluster state");
            }
            Ok((Some(opened.view.state()), ClusterSource::File))
        }
        Some(source @ cluster::Source::Live { .. }) => Ok((Some(live_state(source, config)?), ClusterSource::Live)),
    }
}

/// The live cluster through the same view `serve` uses, synced once.
fn live_state(source: &cluster::Source, config: &CheckConfig) -> Result<Arc<ClusterState>, CheckError> {
    let timeout = config.live_timeout;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CheckError::LiveUnusable(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        let opened =
            cluster::open(source, &config.policy.nodes, Arc::new(Metrics::new())).await.map_err(|e| match e {
                cluster::OpenError::NoAnswer(t) => CheckError::LiveUnusable(format!(
                    "the API server did not answer within {}s (--live-timeout)",
                    t.as_secs_f64()
                )),
                other => CheckError::Live(other),
            })?;
        if !cluster::wait_ready(opened.view.as_ref(), timeout).await {
            return Err(CheckError::LiveUnusable(format!(
                "the cluster view did not sync within {}s (can this identity list and watch Nodes, RuntimeClasses, \
                 Namespaces, Services and the sysbox-mgr ConfigMap?)",
                timeout.as_secs_f64()
            )));
        }
        // A snapshot of the synced view; the watches stop with the runtime.
        Ok(opened.view.state())
    });
    runtime.shutdown_background();
    result
}

/// Whether to colour a report written to a stream (`NO_COLOR` and `TERM=dumb` honoured).
pub fn use_color(choice: ColorChoice, stream_is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            stream_is_terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

/// Builds the report for `-o`.
pub fn make_report<'w>(
    format: OutputFormat,
    out: Box<dyn Write + 'w>,
    color: bool,
    fail_on: FailOn,
    pools_evaluated: bool,
) -> Box<dyn Report + 'w> {
    make_report_with(format, out, color, fail_on, pools_evaluated, None)
}

/// [`make_report`], with where the rule documents are published (SARIF `helpUri`).
pub fn make_report_with<'w>(
    format: OutputFormat,
    out: Box<dyn Write + 'w>,
    color: bool,
    fail_on: FailOn,
    pools_evaluated: bool,
    rule_docs_url: Option<&str>,
) -> Box<dyn Report + 'w> {
    match format {
        OutputFormat::Text => Box::new(text::TextReport::new(out, color, fail_on)),
        OutputFormat::Json => Box::new(json::JsonReport::new(out)),
        OutputFormat::Junit => Box::new(junit::JunitReport::new(out, fail_on, pools_evaluated)),
        OutputFormat::Sarif => Box::new(sarif::SarifReport::new(out).with_rule_docs_url(rule_docs_url)),
    }
}

fn open_mirror(dir: &Path, rel: &Path) -> Result<DocWriter<BufWriter<File>>, CheckError> {
    let path = dir.join(rel);
    let err = |source| CheckError::MutatedOut { path: path.clone(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    Ok(DocWriter::new(BufWriter::new(File::create(&path).map_err(err)?)))
}

/// Runs `check`; the exit status is the run's (see the module docs).
pub fn run(config: &CheckConfig) -> ExitCode {
    match run_checked(config) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run_checked(config: &CheckConfig) -> Result<u8, CheckError> {
    let sources = input::resolve(&config.files)?;
    let target = mutated_target(config, &sources)?;
    let (cluster, cluster_source) = load_cluster(config)?;
    // A view without nodes (an allowed empty snapshot, an empty live
    // cluster) evaluates no node pool; reports must not claim otherwise.
    let pools_evaluated = cluster.as_ref().is_some_and(|c| c.nodes.node_count() > 0);
    let ctx = Context { policy: config.policy.clone(), cluster, default_namespace: config.default_namespace.clone() };

    // With the mutated manifests on stdout, the report goes to stderr.
    let (report_out, terminal): (Box<dyn Write>, bool) = match target {
        MutatedTarget::Stdout => (Box::new(BufWriter::new(io::stderr().lock())), io::stderr().is_terminal()),
        _ => (Box::new(BufWriter::new(io::stdout().lock())), io::stdout().is_terminal()),
    };
    let mut report = make_report_with(
        config.output,
        report_out,
        use_color(config.color, terminal),
        config.fail_on,
        pools_evaluated,
        config.rule_docs_url.as_deref(),
    );
    let mut stdout_docs = match target {
        MutatedTarget::Stdout => Some(DocWriter::new(BufWriter::new(io::stdout().lock()))),
        _ => None,
    };
    let mut totals = Totals::new(cluster_source);
    totals.node_pools_evaluated = pools_evaluated;
    if let Some(cluster) = &ctx.cluster {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        totals.node_labels = Some(nodes::summarize(&cluster.provenance, &config.policy.nodes, now));
    }
    let fatal = |e: io::Error| CheckError::Report(e);

    let mut unusable_arguments = false;
    for src in &sources {
        if let Origin::Unreadable { message, named } = &src.origin {
            // Reported where it was found; the run goes on. A named path
            // that cannot be read is an unusable argument (exit 2).
            totals.files += 1;
            let r = Record::error(&src.display, 0, 1, message.clone());
            totals.count(&r);
            report_one(report.as_mut(), &r).map_err(fatal)?;
            if *named {
                unusable_arguments = true;
                eprintln!("error: {}: {message}", src.display);
            }
            continue;
        }
        let mut dir_docs = match &target {
            MutatedTarget::Dir(dir) => Some(open_mirror(dir, &src.mirror)?),
            _ => None,
        };
        let sink: &mut dyn DocSink = match (&mut dir_docs, &mut stdout_docs) {
            (Some(w), _) => w,
            (None, Some(w)) => w,
            (None, None) => &mut Discard,
        };
        let name = src.display.as_str();
        match &src.origin {
            Origin::Stdin => check_reader(io::stdin().lock(), name, &ctx, report.as_mut(), sink, &mut totals),
            Origin::Unreadable { .. } => Ok(()),
            Origin::File(path) => match File::open(path) {
                Ok(f) => {
                    check_reader(BufReader::with_capacity(1 << 16, f), name, &ctx, report.as_mut(), sink, &mut totals)
                }
                Err(e) => {
                    // Readable when resolved, gone now: report it and go on.
                    totals.files += 1;
                    let r = Record::error(name, 0, 1, format!("cannot open: {e}"));
                    totals.count(&r);
                    report_one(report.as_mut(), &r)
                }
            },
        }
        .map_err(fatal)?;
        if let (Some(w), MutatedTarget::Dir(dir)) = (dir_docs, &target) {
            w.into_inner().map_err(|source| CheckError::MutatedOut { path: dir.join(&src.mirror), source })?;
        }
    }
    if let Some(w) = stdout_docs {
        w.into_inner().map_err(fatal)?;
    }
    totals.exit_code = if unusable_arguments { EXIT_USAGE } else { totals.status(config.fail_on) };
    report.finish(&totals).map_err(fatal)?;
    drop(report);
    if totals.parsed_documents == 0 {
        if totals.documents == 0 {
            eprintln!("error: no Kubernetes manifests found in the input");
        } else if totals.documents == 1 {
            eprintln!("error: the only document in the input could not be read");
        } else {
            eprintln!("error: none of the {} documents in the input could be read", totals.documents);
        }
    }
    Ok(totals.exit_code)
}

fn report_one(report: &mut dyn Report, r: &Record) -> io::Result<()> {
    report.begin_file(&r.file)?;
    report.object(r)?;
    report.end_file(&r.file)
}
