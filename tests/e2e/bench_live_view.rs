//! The live cluster view at scale: thousands of Node objects shaped like real ones (cloud and
//! node pool labels, the Sysbox labels, taints, and a status of addresses, capacity, conditions,
//! nodeInfo and 40 images: about 8 KB of JSON each, 9 KB as listed), created through a real
//! kube-apiserver; then the release `serve` started against it through its kubeconfig, a few
//! times over.
//! It prints figures; it asserts only that the run did what it claims (every node stored with
//! its status, the view ready with every node, the verdict flipping with the label).
//!
//!     cargo test --release --test e2e -- --ignored live_view_scale --nocapture
//!
//! `SYSBOX_RO_LIVE_VIEW_NODES` sets the node count (default 5000), `SYSBOX_RO_LIVE_VIEW_STARTS`
//! how many times `serve` is started (default 3), `SYSBOX_RO_LIVE_VIEW_FLIPS` how many label
//! flips are timed (default 10).
//!
//! Per start: wall time from spawn to `/readyz` 200 (polled every 10 ms), the CPU time the
//! process spent by then, its peak RSS (VmHWM) at that moment, and the LIST responses for nodes
//! the apiserver sent meanwhile, with their bytes (its `apiserver_response_sizes` histogram).
//! After the flips: VmRSS once the process has been idle a few seconds. A flip is one merge
//! patch of the node's flag label through kube-rs; its time is from the patch's answer to the
//! first AdmissionReview posted straight to `serve` (no apiserver in between, one kept-alive TLS
//! connection, a review every 2 ms) whose verdict is the new one.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::generated;
use crate::support::cluster::{control_plane_bin, ControlPlane, Kubectl, WorkDir};
use crate::support::objects::{self, FLAG};
use crate::support::webhook::{metric_sum, tls_to, ServingCerts, Watchdog, Webhook, WebhookArgs};

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Creates (and status writes, and taint patches) in flight at once.
const IN_FLIGHT: usize = 32;
const NAMESPACE: &str = "live-view";
/// How long one start may take to turn ready.
const READY_WITHIN: Duration = Duration::from_secs(300);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The generated nodes, as the API returns them; metadata the apiserver sets is dropped.
fn generated_nodes(count: usize) -> Vec<Value> {
    let mut nodes = Vec::with_capacity(count);
    generated::for_each_node(count, |mut n| {
        if let Some(meta) = n["metadata"].as_object_mut() {
            for set_by_server in ["resourceVersion", "uid", "creationTimestamp"] {
                meta.remove(set_by_server);
            }
        }
        nodes.push(n);
        Ok(())
    })
    .expect("generated nodes");
    nodes
}

/// Stores one node as a kubelet and the cloud's controllers leave it: created, its status
/// written through the `status` subresource when the create dropped it, and its taints set to
/// the generated ones (the apiserver's TaintNodesByCondition adds `not-ready` on create, which
/// the node lifecycle controller would lift once the node is Ready; none runs here).
async fn store_node(api: &Api<Node>, node: Value) -> Result<usize, String> {
    let name = node["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let typed: Node = serde_json::from_value(node.clone()).map_err(|e| format!("{name}: {e}"))?;
    let created = api.create(&PostParams::default(), &typed).await.map_err(|e| format!("create {name}: {e}"))?;
    if created.status.as_ref().and_then(|s| s.images.as_ref()).is_none_or(Vec::is_empty) {
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({ "status": node["status"] })))
            .await
            .map_err(|e| format!("status of {name}: {e}"))?;
    }
    let taints = node.pointer("/spec/taints").cloned().unwrap_or(Value::Null);
    api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "taints": taints } })))
        .await
        .map_err(|e| format!("taints of {name}: {e}"))?;
    Ok(serde_json::to_vec(&node).map(|b| b.len()).unwrap_or(0))
}

/// One field of /proc/PID/status (`VmHWM`, `VmRSS`), in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What the apiserver says it answered to LISTs of nodes so far: (responses, bytes), from
/// `apiserver_response_sizes` (the initial list is paged LISTs; watch streams are not counted).
fn node_lists(kubectl: &Kubectl) -> (f64, f64) {
    let text = kubectl.run(&["get", "--raw", "/metrics"], None).expect_ok().stdout;
    let labels = [("resource", "nodes"), ("verb", "LIST")];
    (
        metric_sum(&text, "apiserver_response_sizes_count", &labels),
        metric_sum(&text, "apiserver_response_sizes_sum", &labels),
    )
}

/// User plus system CPU time of the process so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A dry-run AdmissionReview of `pod`, as the apiserver would send it.
fn review_body(pod: &Value) -> Vec<u8> {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5ca1e000-0000-4000-8000-000000000001",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "namespace": NAMESPACE,
            "name": pod["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": { "username": "bench" },
            "object": pod,
            "dryRun": true
        }
    })
    .to_string()
    .into_bytes()
}

/// Posts one review on a kept-alive TLS connection and returns `response.allowed`, or why not.
fn allowed(conn: &mut TlsStream, body: &[u8]) -> Result<bool, String> {
    let head = format!(
        "POST /mutate?timeout=10s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body)).map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no content-length: {head}"))?;
            if reply.len() >= end + 4 + length {
                if !head.starts_with("http/1.1 200") {
                    return Err(head);
                }
                let v: Value = serde_json::from_slice(&reply[end + 4..end + 4 + length]).map_err(|e| e.to_string())?;
                return v["response"]["allowed"].as_bool().ok_or_else(|| format!("no response.allowed: {v}"));
            }
        }
        match conn.read(&mut buf) {
            Ok(0) => return Err("the webhook closed the connection".into()),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// What one start of `serve` cost.
struct Start {
    ready: Duration,
    cpu: Duration,
    hwm_kib: u64,
    /// LIST responses for nodes and their bytes, as the apiserver counted them.
    lists: f64,
    listed_bytes: f64,
}

fn started(control_plane: &ControlPlane, certs: &ServingCerts, work: &WorkDir) -> (Webhook, Start) {
    let (logs, run) = (work.path().join("logs"), work.path().join("run"));
    let kubectl = control_plane.kubectl();
    let kubeconfig = &control_plane.kubeconfig;
    let (lists_before, bytes_before) = node_lists(&kubectl);
    let t = Instant::now();
    let webhook = Webhook::start_within(kubeconfig, certs, WebhookArgs::default(), None, &logs, &run, READY_WITHIN);
    let ready = t.elapsed();
    let pid = webhook.pid();
    let (cpu, hwm_kib) = (cpu_time(pid), proc_status_kib(pid, "VmHWM"));
    let (lists, bytes) = node_lists(&kubectl);
    let start = Start { ready, cpu, hwm_kib, lists: lists - lists_before, listed_bytes: bytes - bytes_before };
    (webhook, start)
}

/// The view holds every node: `sysbox_ro_cluster_nodes` (summed over its labels) says so.
fn nodes_in_view(webhook: &Webhook) -> f64 {
    metric_sum(&webhook.metrics(), "sysbox_ro_cluster_nodes", &[])
}

/// Patches the flag label of `node` and times how long until the webhook's verdict on `pod`
/// turns to `allowed`: (the patch's round trip, from its answer to the new verdict).
fn flip(
    rt: &tokio::runtime::Runtime,
    api: &Api<Node>,
    node: &str,
    to: bool,
    conn: &mut TlsStream,
    body: &[u8],
) -> (Duration, Duration) {
    let patch = Patch::Merge(json!({ "metadata": { "labels": { FLAG: to.to_string() } } }));
    let sent = Instant::now();
    rt.block_on(api.patch(node, &PatchParams::default(), &patch)).expect("label patch");
    let answered = Instant::now();
    let deadline = answered + Duration::from_secs(30);
    loop {
        let verdict = allowed(conn, body).expect("a review answer");
        if verdict == to {
            return (answered - sent, answered.elapsed());
        }
        assert!(Instant::now() < deadline, "the verdict did not follow {FLAG}={to} on {node} within 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "a benchmark on a real kube-apiserver: cargo test --release --test e2e -- --ignored live_view_scale --nocapture"]
fn live_view_scale() {
    let count = env_number("SYSBOX_RO_LIVE_VIEW_NODES", 5000);
    let starts = env_number("SYSBOX_RO_LIVE_VIEW_STARTS", 3).max(1);
    let flips = env_number("SYSBOX_RO_LIVE_VIEW_FLIPS", 10).max(1);

    let work = WorkDir::new();
    let t = Instant::now();
    let control_plane = ControlPlane::start(&work.path().join("control-plane"), &control_plane_bin());
    eprintln!("live view: control plane up ({:.1}s)", t.elapsed().as_secs_f64());
    let kubectl = control_plane.kubectl();
    let _watchdog = Watchdog::start(&work.path().join("run"), &work.path().join("logs"));
    let version = kubectl.run(&["version", "-o", "json"], None).expect_ok().json();
    let server = version["serverVersion"]["gitVersion"].as_str().unwrap_or("?").to_owned();
    kubectl.apply(&objects::list(generated::head_objects())).expect_ok();
    kubectl.apply(&objects::namespace(NAMESPACE, None)).expect_ok();
    let certs = ServingCerts::new(&work.path().join("pki"));

    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let api: Api<Node> = rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&control_plane.kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("client config");
        Api::all(Client::try_from(config).expect("client"))
    });

    // --- setup: the nodes, created concurrently ------------------------------------------------
    let nodes = generated_nodes(count);
    // The node whose label flips: flag false, Sysbox running, untainted, not cordoned.
    let target = nodes
        .iter()
        .find(|n| {
            let labels = &n["metadata"]["labels"];
            labels[FLAG] == "false"
                && labels["sysbox-runtime"] == "running"
                && n.pointer("/spec/taints").is_none()
                && n.pointer("/spec/unschedulable").is_none()
        })
        .map(|n| n["metadata"]["name"].as_str().expect("a name").to_owned())
        .expect("a generated node with the flag false, Sysbox running, no taint");
    let t = Instant::now();
    let sizes: Vec<usize> = rt
        .block_on(
            futures::stream::iter(nodes)
                .map(|n| {
                    let api = api.clone();
                    async move { store_node(&api, n).await }
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect(),
        )
        .unwrap_or_else(|e| panic!("storing the nodes: {e}"));
    let setup = t.elapsed();
    let object_bytes: usize = sizes.iter().sum();
    // What a LIST of all nodes returns, as JSON (what kube-rs asks for).
    let list = kubectl.run(&["get", "--raw", "/api/v1/nodes"], None).expect_ok();
    let listed: Value = serde_json::from_str(&list.stdout).expect("a NodeList");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), count, "every node stored");
    let with_images = items.iter().filter(|n| n.pointer("/status/images/0").is_some()).count();
    assert_eq!(with_images, count, "every node stored with its status (images included)");
    let list_bytes = list.stdout.len();
    drop(listed);

    // --- serve, started `starts` times ---------------------------------------------------------
    let mut runs = Vec::new();
    let mut last = None;
    for i in 0..starts {
        let (webhook, start) = started(&control_plane, &certs, &work);
        assert_eq!(nodes_in_view(&webhook) as usize, count, "start {i}: the view holds every node once ready");
        runs.push(start);
        if i + 1 < starts {
            webhook.stop();
        } else {
            last = Some(webhook);
        }
    }
    let webhook = last.expect("the last start keeps running");
    let pid = webhook.pid();

    // --- the verdict follows one node's label --------------------------------------------------
    let pod = objects::pod(NAMESPACE, "ro", objects::sysbox_spec(&[("kubernetes.io/hostname", &target)]));
    let body = review_body(&pod);
    let mut conn = tls_to(webhook.port, &certs.ca_pem(), Duration::from_secs(10)).expect("TLS to the webhook");
    assert_eq!(allowed(&mut conn, &body), Ok(false), "{target} has the flag false: the pod is denied");
    let (mut patches, mut seen) = (Vec::new(), Vec::new());
    for i in 0..flips {
        let (patch, took) = flip(&rt, &api, &target, i % 2 == 0, &mut conn, &body);
        patches.push(patch);
        seen.push(took);
    }
    std::thread::sleep(Duration::from_secs(5));
    let rss_kib = proc_status_kib(pid, "VmRSS");
    let hwm_after = proc_status_kib(pid, "VmHWM");

    // --- figures -------------------------------------------------------------------------------
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!("live view of {count} nodes on kube-apiserver {server}, 127.0.0.1 ({cpus} CPUs, webhook built {profile})");
    println!("load average at the end: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!(
        "setup: {count} nodes created, status written, taints set in {:.1} s ({IN_FLIGHT} in flight, {:.0} nodes/s)",
        setup.as_secs_f64(),
        count as f64 / setup.as_secs_f64()
    );
    println!(
        "node objects: {:.1} KB each as generated (JSON), LIST /api/v1/nodes {:.1} MB",
        object_bytes as f64 / count as f64 / 1e3,
        list_bytes as f64 / 1e6
    );
    println!(
        "{:<8}{:>10}{:>10}{:>12}{:>14}{:>16}",
        "start", "ready ms", "CPU ms", "VmHWM MiB", "node LISTs", "LISTed MB"
    );
    for (i, s) in runs.iter().enumerate() {
        println!(
            "{:<8}{:>10.0}{:>10.0}{:>12.1}{:>14.0}{:>16.1}",
            i + 1,
            ms(s.ready),
            ms(s.cpu),
            mib(s.hwm_kib),
            s.lists,
            s.listed_bytes / 1e6
        );
    }
    println!(
        "last start, after {flips} label flips and 5 s idle: VmRSS {:.1} MiB (VmHWM {:.1} MiB)",
        mib(rss_kib),
        mib(hwm_after)
    );
    let worst = seen.iter().max().copied().unwrap_or_default();
    println!(
        "label flip to verdict, reviews posted straight to serve: median {:.0} ms, max {:.0} ms over {flips} flips \
         (label patch round trip median {:.1} ms)",
        ms(median(seen)),
        ms(worst),
        ms(median(patches))
    );
    drop(conn);
    webhook.stop();
}
