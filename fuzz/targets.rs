//! The fuzz targets' entry points, shared by the fuzzers (`fuzz/src/bin/`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`). Each takes any bytes
//! and must return without panicking; errors are the expected answer to
//! most inputs.

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use clap::Parser as _;
use sysbox_ro_webhook::admission::{self, Endpoint};
use sysbox_ro_webhook::check::mutated::Discard;
use sysbox_ro_webhook::check::{self, ClusterSource, Context, FailOn, OutputFormat, Totals};
use sysbox_ro_webhook::cli::{Cli, Command};
use sysbox_ro_webhook::cluster::snapshot::Objects;
use sysbox_ro_webhook::cluster::ClusterState;
use sysbox_ro_webhook::policy::Policy;

/// The example cluster the reviews and manifests are judged against.
fn cluster() -> &'static (Policy, Arc<ClusterState>) {
    static CLUSTER: OnceLock<(Policy, Arc<ClusterState>)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let policy = Policy::default();
        let mut objects = Objects::default();
        objects
            .read(
                include_str!("../examples/cluster-state.yaml").as_bytes(),
                Path::new("cluster-state.yaml"),
                &policy.nodes,
            )
            .expect("the example cluster state loads");
        let state = Arc::new(objects.into_state(&policy.nodes));
        (policy, state)
    })
}

/// An AdmissionReview body, as `POST /mutate` and `/validate` receive it.
pub fn admission_review(data: &[u8]) {
    let (policy, state) = cluster();
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let _ = admission::review(data, endpoint, Some(state), policy);
    }
}

/// A stream of manifests, as `check -f` reads it, reported in JSON.
pub fn manifest_stream(data: &[u8]) {
    let (policy, state) = cluster();
    let ctx = Context { policy: policy.clone(), cluster: Some(state.clone()), default_namespace: "default".into() };
    let mut report = check::make_report(OutputFormat::Json, Box::new(io::sink()), false, FailOn::Deny, true);
    let mut totals = Totals::new(ClusterSource::File);
    let _ = check::check_reader(data, "fuzz.yaml", &ctx, report.as_mut(), &mut Discard, &mut totals);
    let _ = report.finish(&totals);
}

/// A cluster-state file, as `--cluster-state` reads it.
pub fn cluster_state(data: &[u8]) {
    let policy = Policy::default();
    let mut objects = Objects::default();
    if objects.read(data, Path::new("fuzz.yaml"), &policy.nodes).is_ok() {
        let _ = objects.into_state(&policy.nodes);
    }
}

/// Command-line arguments, NUL-separated, through the parser and into configs.
pub fn flags(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let args = std::iter::once("sysbox-ro-webhook").chain(text.split('\0'));
    if let Ok(cli) = Cli::try_parse_from(args) {
        match &cli.command {
            Command::Serve(args) => {
                let _ = args.to_config();
            }
            Command::Check(args) => {
                let _ = args.to_config();
            }
            _ => {}
        }
    }
}
