//! `check` throughput: manifests per second through the whole per-document
//! pipeline of [`check::check_reader`] (split the stream, parse, judge with
//! the engine, render the report, and with `--mutated-out` patch and write
//! the document) over 10,000 documents generated in memory, judged against
//! `examples/cluster-state.yaml`.
//!
//!     cargo bench --bench check_throughput
//!
//! Criterion reports the time per 10,000 documents and the throughput
//! (elements/s); the bench then prints manifests/second for each report
//! format, the median of a few extra runs, and the same for the floors under
//! `check`: the least each stage of the pipeline costs on its own over the
//! same stream (split it into documents; split and run the YAML parser,
//! dropping its events; split and build each object's JSON value), so the
//! share of each stage, and what is left to win above the parser, can be
//! read off one run.

use std::hint::black_box;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use sysbox_ro_webhook::check::mutated::{Discard, DocSink, DocWriter};
use sysbox_ro_webhook::check::{self, ClusterSource, Context, FailOn, OutputFormat, Totals, Verdict};
use sysbox_ro_webhook::cluster::snapshot;
use sysbox_ro_webhook::manifest;
use sysbox_ro_webhook::policy::{Mode, Policy};

// The binary's allocator, so that the figures are the binary's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "support/check_mix.rs"]
mod check_mix;

const DOCUMENTS: usize = 10_000;

fn stream() -> String {
    check_mix::stream(DOCUMENTS)
}

fn context() -> Context {
    let policy = Policy::default();
    assert_eq!(policy.mode, Mode::Enforce);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-state.yaml");
    let (state, _) = snapshot::load(&[path], &policy.nodes).expect("examples/cluster-state.yaml loads");
    Context { policy, cluster: Some(Arc::new(state)), default_namespace: "default".into() }
}

/// The JUnit report built with the `quick-junit` crate instead of the
/// hand-written writer, to compare their cost (same cases, same verdicts).
struct QuickJunit {
    report: quick_junit::Report,
    suite: Option<quick_junit::TestSuite>,
}

impl check::Report for QuickJunit {
    fn begin_file(&mut self, file: &str) -> io::Result<()> {
        self.suite = Some(quick_junit::TestSuite::new(file));
        Ok(())
    }
    fn object(&mut self, r: &check::Record) -> io::Result<()> {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};
        let mut status = match r.verdict {
            Verdict::Deny => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Verdict::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
            Verdict::Skip => TestCaseStatus::skipped(),
            _ => TestCaseStatus::success(),
        };
        if r.verdict != Verdict::Allow && r.verdict != Verdict::Warn {
            status.set_message(r.message.as_str()).set_type(r.verdict.as_str());
        }
        let mut case = TestCase::new(format!("doc {}: {}", r.document, r.subject()), status);
        case.set_classname(r.file.as_str());
        case.extra.insert("file".into(), r.file.as_str().into());
        case.extra.insert("line".into(), r.line.to_string().into());
        if !r.warnings.is_empty() {
            let lines: Vec<String> = r.warnings.iter().map(|w| format!("warning: {w}")).collect();
            case.set_system_out(lines.join("\n"));
        }
        self.suite.as_mut().expect("begin_file first").add_test_case(case);
        Ok(())
    }
    fn end_file(&mut self, _file: &str) -> io::Result<()> {
        self.report.add_test_suites(self.suite.take());
        Ok(())
    }
    fn finish(&mut self, _: &Totals) -> io::Result<()> {
        self.report.serialize(io::sink()).map_err(io::Error::other)
    }
}

/// One pass over the whole stream; returns the totals.
fn check_once(input: &[u8], ctx: &Context, format: OutputFormat, mutated: bool) -> Totals {
    let mut report = check::make_report(format, Box::new(io::sink()), false, FailOn::Deny, true);
    check_with(input, ctx, report.as_mut(), mutated)
}

/// The same pass with the JUnit report of the `quick-junit` crate.
fn check_quick_junit(input: &[u8], ctx: &Context) -> Totals {
    let mut report = QuickJunit { report: quick_junit::Report::new("sysbox-ro-webhook check"), suite: None };
    check_with(input, ctx, &mut report, false)
}

/// A floor under `check`: the first stages of its pipeline alone.
#[derive(Clone, Copy)]
enum Floor {
    /// `manifest::Documents`: the stream cut into documents.
    Split,
    /// The documents, each run through `saphyr-parser` with its events dropped.
    Events,
    /// The documents, each read into its objects' JSON values and dropped.
    Values,
}

impl Floor {
    const ALL: [(&'static str, Floor); 3] =
        [("split", Floor::Split), ("split+yaml events", Floor::Events), ("split+json values", Floor::Values)];
}

/// One pass of a floor; returns the documents (and objects) seen.
#[inline(never)]
fn floor_with(input: &[u8], floor: Floor) -> (usize, usize) {
    let (mut documents, mut units) = (0, 0);
    for doc in manifest::Documents::new(input) {
        let doc = doc.expect("the stream splits");
        documents += 1;
        match floor {
            Floor::Split => units += doc.text.len(),
            Floor::Events => {
                for event in saphyr_parser::Parser::new_from_str(&doc.text) {
                    black_box(event.expect("the mix parses"));
                    units += 1;
                }
            }
            Floor::Values => {
                doc.for_each_object(&mut |value, _, _| {
                    black_box(value);
                    units += 1;
                })
                .expect("the mix parses");
            }
        }
    }
    (documents, units)
}

/// One pass with `report`: what callgrind counts with `SYSBOX_RO_CHECK_ONCE`.
#[inline(never)]
fn check_with(input: &[u8], ctx: &Context, report: &mut dyn check::Report, mutated: bool) -> Totals {
    let mut totals = Totals::new(ClusterSource::File);
    let mut writer = DocWriter::new(io::sink());
    let sink: &mut dyn DocSink = if mutated { &mut writer } else { &mut Discard };
    check::check_reader(input, "bench.yaml", ctx, report, sink, &mut totals).expect("check runs");
    totals.exit_code = totals.status(FailOn::Deny);
    report.finish(&totals).expect("report renders");
    totals
}

fn bench(c: &mut Criterion) {
    let ctx = context();
    let input = stream();
    let totals = check_once(input.as_bytes(), &ctx, OutputFormat::Text, false);
    assert_eq!(totals.documents, DOCUMENTS);
    assert!(totals.allow > 0 && totals.warn > 0 && totals.deny > 0 && totals.skip > 0, "{totals:?}");

    let cases = [
        ("text", OutputFormat::Text, false),
        ("json", OutputFormat::Json, false),
        ("sarif", OutputFormat::Sarif, false),
        ("junit", OutputFormat::Junit, false),
        ("text+mutated-out", OutputFormat::Text, true),
    ];
    let mut group = c.benchmark_group("check_10k_documents");
    group.throughput(Throughput::Elements(DOCUMENTS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    for (name, format, mutated) in cases {
        group.bench_function(name, |b| {
            b.iter(|| black_box(check_once(black_box(input.as_bytes()), &ctx, format, mutated)))
        });
    }
    group.bench_function("junit (quick-junit crate)", |b| {
        b.iter(|| black_box(check_quick_junit(black_box(input.as_bytes()), &ctx)))
    });
    group.finish();

    println!("\ncheck throughput over {DOCUMENTS} documents ({} bytes), median of 5 runs:", input.len());
    let runs = cases
        .iter()
        .map(|&(name, format, mutated)| (name, Some((format, mutated))))
        .chain([("junit (quick-junit)", None)]);
    for (name, case) in runs {
        print_median(name, || match case {
            Some((format, mutated)) => {
                black_box(check_once(input.as_bytes(), &ctx, format, mutated));
            }
            None => {
                black_box(check_quick_junit(input.as_bytes(), &ctx));
            }
        });
    }
    println!("floors under check (the first stages alone), median of 5 runs:");
    for (name, floor) in Floor::ALL {
        print_median(name, || {
            black_box(floor_with(input.as_bytes(), floor));
        });
    }
}

/// Runs `pass` five times and prints the median as manifests per second.
fn print_median(name: &str, mut pass: impl FnMut()) {
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            pass();
            start.elapsed()
        })
        .collect();
    runs.sort();
    let median = runs[runs.len() / 2];
    println!(
        "  {name:<20} {:>9.0} manifests/s  ({:.1} ms per {DOCUMENTS})",
        DOCUMENTS as f64 / median.as_secs_f64(),
        median.as_secs_f64() * 1e3
    );
}

fn main() {
    // `SYSBOX_RO_CHECK_ONCE=junit|quick-junit|sarif|text|json`: one pass, then
    // exit; for instruction counts that a shared machine cannot blur:
    //   valgrind --tool=callgrind --toggle-collect='*check_with*' BENCH_BINARY
    // `SYSBOX_RO_CHECK_ONCE=split|events|values`: one pass of that floor,
    //   valgrind --tool=callgrind --toggle-collect='*floor_with*' BENCH_BINARY
    if let Ok(format) = std::env::var("SYSBOX_RO_CHECK_ONCE") {
        let (ctx, input) = (context(), stream());
        let floor = match format.as_str() {
            "split" => Some(Floor::Split),
            "events" => Some(Floor::Events),
            "values" => Some(Floor::Values),
            _ => None,
        };
        if let Some(floor) = floor {
            let (documents, units) = floor_with(input.as_bytes(), floor);
            assert_eq!(documents, DOCUMENTS);
            eprintln!("{format}: {documents} documents, {units} units");
            return;
        }
        let totals = match format.as_str() {
            "quick-junit" => check_quick_junit(input.as_bytes(), &ctx),
            "junit" => check_once(input.as_bytes(), &ctx, OutputFormat::Junit, false),
            "text" => check_once(input.as_bytes(), &ctx, OutputFormat::Text, false),
            "json" => check_once(input.as_bytes(), &ctx, OutputFormat::Json, false),
            "sarif" => check_once(input.as_bytes(), &ctx, OutputFormat::Sarif, false),
            other => panic!("SYSBOX_RO_CHECK_ONCE={other}: not a report format"),
        };
        eprintln!("{format}: {} documents, {} objects", totals.documents, totals.objects);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
