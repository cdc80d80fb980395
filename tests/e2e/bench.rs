//! What the webhook costs a pod create, seen from the client: a few hundred sequential creates
//! of the same read-only Sysbox pod through kube-apiserver with the webhook registered and
//! without, in alternating blocks (so drift on a shared machine hits both sides alike).
//! It prints figures; it asserts only that each block ran in the mode it claims.
//!
//!     cargo test --release --test e2e -- --ignored bench:: --nocapture
//!
//! `SYSBOX_RO_BENCH_PODS` sets the creates per side (default 300).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::support::env::Env;
use crate::support::objects::{self, ANNOTATION};
use crate::support::poll;
use crate::support::webhook::{connections_to, metric_sum};

const NAMESPACE: &str = "bench";
const BLOCKS: usize = 3;
const WARMUP: usize = 20;

fn pod(name: &str) -> Pod {
    serde_json::from_value(objects::sysbox_pod(NAMESPACE, name, "relaxed")).expect("a Pod")
}

fn annotated(p: &Pod) -> bool {
    p.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION)).is_some_and(|v| v == "true")
}

/// Registers or removes the configuration, then waits until the apiserver acts on it: a
/// dry-run create comes back annotated (registered) or not (removed) three times in a row.
fn set_registered(env: &Env, rt: &tokio::runtime::Runtime, api: &Api<Pod>, on: bool) {
    if on {
        env.kubectl.apply(&env.registered).expect_ok();
    } else {
        env.kubectl
            .run(&["delete", "mutatingwebhookconfiguration", "sysbox-ro-webhook", "--ignore-not-found"], None)
            .expect_ok();
    }
    let dry = PostParams { dry_run: true, ..Default::default() };
    let mut streak = 0;
    let settled = poll(Duration::from_secs(60), Duration::from_millis(100), || {
        let created = rt.block_on(api.create(&dry, &pod("probe"))).ok()?;
        streak = if annotated(&created) == on { streak + 1 } else { 0 };
        (streak >= 3).then_some(())
    });
    assert!(
        settled.is_some(),
        "the apiserver did not {} the webhook within 60s",
        if on { "call" } else { "stop calling" }
    );
}

/// Creates `n` pods one after the other; returns each create's latency.
fn creates(
    rt: &tokio::runtime::Runtime,
    api: &Api<Pod>,
    prefix: &str,
    n: usize,
    expect_annotated: bool,
) -> Vec<Duration> {
    rt.block_on(async {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let p = pod(&format!("{prefix}-{i}"));
            let t = Instant::now();
            let created = api.create(&PostParams::default(), &p).await.expect("pod create");
            out.push(t.elapsed());
            assert_eq!(annotated(&created), expect_annotated, "{prefix}-{i}: created in the wrong mode");
        }
        out
    })
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Summary {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

fn summarise(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Summary {
        p50: percentile(&samples, 50.0),
        p90: percentile(&samples, 90.0),
        p99: percentile(&samples, 99.0),
        max: percentile(&samples, 100.0),
        mean,
    }
}

fn row(label: &str, n: &str, v: [f64; 5], signed: bool) {
    let cells: Vec<String> =
        v.iter().map(|x| if signed { format!("{x:>+10.2}") } else { format!("{x:>10.2}") }).collect();
    println!("{label:<22}{n:>8}{}", cells.concat());
}

#[test]
#[ignore = "a benchmark on a real kube-apiserver: cargo test --release --test e2e -- --ignored bench:: --nocapture"]
fn admission_latency() {
    let per_side: usize = std::env::var("SYSBOX_RO_BENCH_PODS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let per_block = per_side.div_ceil(BLOCKS);
    let env = Env::start();
    env.namespace(NAMESPACE, None);
    let version = env.kubectl.run(&["version", "-o", "json"], None).expect_ok().json();
    let server = version["serverVersion"]["gitVersion"].as_str().unwrap_or("?").to_owned();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let api: Api<Pod> = rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&env.control_plane.kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("client config");
        Api::namespaced(Client::try_from(config).expect("client"), NAMESPACE)
    });

    // Warm both paths (connections, caches) before measuring.
    set_registered(&env, &rt, &api, false);
    creates(&rt, &api, "warm-off", WARMUP, false);
    set_registered(&env, &rt, &api, true);
    creates(&rt, &api, "warm-on", WARMUP, true);

    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut reviews, mut review_seconds) = (0.0, 0.0);
    let mut connections = std::collections::BTreeSet::new();
    for block in 0..BLOCKS {
        // on, off, off, on, on, off: each side goes first as often as the other.
        let order = if block % 2 == 0 { [true, false] } else { [false, true] };
        for on in order {
            set_registered(&env, &rt, &api, on);
            let before = env.webhook().metrics();
            let samples = creates(&rt, &api, &format!("b{block}-{}", if on { "on" } else { "off" }), per_block, on);
            let after = env.webhook().metrics();
            if on {
                connections.extend(connections_to(env.port));
                let labels = [("endpoint", "mutate")];
                reviews += metric_sum(&after, "sysbox_ro_admission_duration_seconds_count", &labels)
                    - metric_sum(&before, "sysbox_ro_admission_duration_seconds_count", &labels);
                review_seconds += metric_sum(&after, "sysbox_ro_admission_duration_seconds_sum", &labels)
                    - metric_sum(&before, "sysbox_ro_admission_duration_seconds_sum", &labels);
                with.extend(samples);
            } else {
                without.extend(samples);
            }
        }
    }
    assert_eq!(reviews as usize, with.len(), "one AdmissionReview per create with the webhook");

    let (n_with, n_without) = (with.len(), without.len());
    let (w, wo) = (summarise(with), summarise(without));
    let cells = |s: &Summary| [ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean)];
    let (cw, cwo) = (cells(&w), cells(&wo));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!();
    println!("pod create latency through kube-apiserver {server} on 127.0.0.1 ({cpus} CPUs, webhook built {profile})");
    println!("sequential creates of one read-only Sysbox pod, kube-rs client, {BLOCKS} alternating blocks per side");
    println!(
        "{:<22}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "", "creates", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"
    );
    row("without the webhook", &n_without.to_string(), cwo, false);
    row("with the webhook", &n_with.to_string(), cw, false);
    row("difference", "", std::array::from_fn(|i| cw[i] - cwo[i]), true);
    println!(
        "apiserver connections to the webhook seen at block ends: {} (a new one means a new TLS handshake)",
        connections.len()
    );
    println!(
        "webhook's own time per review (its admission_duration_seconds): mean {:.3} ms",
        review_seconds / reviews * 1e3
    );
}
