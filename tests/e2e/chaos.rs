//! An API server outage under a running `serve` with a live cluster view.
//!
//! What is asserted, and why it is the intended behaviour (docs/architecture.md, "When the API
//! server is away"): while kube-apiserver is down the webhook keeps answering reviews from its
//! last synced state and stays ready (stale but serving: only an apiserver calls the webhook, so
//! a not-ready webhook could only hurt the other, healthy apiservers of an HA control plane),
//! while `sysbox_ro_cluster_watch_last_event_age_seconds` keeps growing for an alert to see.
//! A node label changed meanwhile (through a second apiserver on the same etcd, as another
//! control-plane replica would) reaches the view once the first apiserver is back: its fresh
//! watch cache starts after the webhook's last resourceVersion, so resuming the watch gets
//! 410 Gone ("too old resource version") and the watcher relists.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::env::Env;
use crate::support::objects::{self, FLAG, NOT_READY_TAINT};
use crate::support::poll;
use crate::support::webhook::{http_get, metric_sum, tls_to};

const NODE: &str = "chaos-1";
const POOL: &str = "chaos";

/// POSTs an AdmissionReview for `pod` straight to the webhook (no apiserver in between) and
/// returns `response.allowed`.
fn review_directly(port: u16, ca_pem: &[u8], pod: &Value) -> Result<bool, String> {
    let mut tls = tls_to(port, ca_pem, Duration::from_secs(10))?;
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "c4a05000-0000-4000-8000-000000000001",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "namespace": pod["metadata"]["namespace"],
            "name": pod["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": { "username": "e2e" },
            "object": pod,
            "dryRun": true
        }
    })
    .to_string();
    let head = format!(
        "POST /mutate?timeout=10s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        review.len()
    );
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    tls.write_all(review.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // The server closes after the answer (connection: close); a missing close_notify is fine.
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{head}\n{body}"));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    v["response"]["allowed"].as_bool().ok_or_else(|| format!("no response.allowed: {body}"))
}

fn node_watch_age(env: &Env) -> f64 {
    metric_sum(&env.webhook().metrics(), "sysbox_ro_cluster_watch_last_event_age_seconds", &[("kind", "Node")])
}

pub fn apiserver_outage_stale_but_serving(env: &mut Env) {
    let ns = "s15-chaos";
    env.namespace(ns, None);
    env.kubectl.apply(&objects::sysbox_node(NODE, POOL, Some("false"), &[])).expect_ok();
    env.kubectl.run(&["taint", "nodes", NODE, NOT_READY_TAINT], None);
    let pod = objects::sysbox_pod(ns, "ro", POOL);
    let (port, admin, ca) = (env.port, env.webhook().admin_port, env.certs.ca_pem());
    let denied = poll(Duration::from_secs(10), Duration::from_millis(200), || {
        (review_directly(port, &ca, &pod) == Ok(false)).then_some(())
    });
    assert!(denied.is_some(), "the view never saw {NODE} with the flag false");

    // --- the apiserver goes away -------------------------------------------------------------
    env.control_plane.control("stop-apiserver", None);
    let down = Instant::now();
    let age_at_stop = node_watch_age(env);
    // A second apiserver on the same etcd changes the label while the first one is down.
    let other = env.control_plane.control("start-apiserver", Some("kube-apiserver-2"));
    let server = format!("--server={}", other.lines().last().unwrap_or_default());
    env.kubectl.run(&[&server, "label", "node", NODE, &format!("{FLAG}=true"), "--overwrite"], None).expect_ok();
    let labelled = env.kubectl.run(&[&server, "get", "node", NODE, "-o", "json"], None).expect_ok().json();
    assert_eq!(labelled["metadata"]["labels"][FLAG], "true");
    env.control_plane.control("stop-apiserver", Some("kube-apiserver-2"));
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down.elapsed()));

    // Stale but serving: the last synced state answers, readiness holds, the age grows.
    assert_eq!(
        review_directly(port, &ca, &pod),
        Ok(false),
        "with the apiserver down the webhook answers from its last state (the label it saw)"
    );
    assert_eq!(http_get(admin, "/readyz").map(|(s, _)| s).ok(), Some(200), "ready while stale");
    let age_down = node_watch_age(env);
    assert!(
        age_down >= age_at_stop + 4.0,
        "the Node watch age grows while the apiserver is down: {age_at_stop} s at the stop, {age_down} s {:.0} s later",
        down.elapsed().as_secs_f64()
    );
    eprintln!(
        "e2e:     apiserver down {:.1} s: reviews answered from the last state, /readyz 200, Node watch age {age_down:.1} s",
        down.elapsed().as_secs_f64()
    );

    // --- the apiserver comes back ------------------------------------------------------------
    env.control_plane.control("start-apiserver", None);
    let back = Instant::now();
    // The watcher's backoff (up to 30 s between tries) bounds how soon it reconnects.
    let resynced = poll(Duration::from_secs(60), Duration::from_millis(250), || {
        (review_directly(port, &ca, &pod) == Ok(true)).then_some(back.elapsed())
    });
    let took = resynced.unwrap_or_else(|| {
        panic!("the view did not pick up the label changed while the apiserver was down\n{}", env.diagnostics())
    });
    let age_after = node_watch_age(env);
    assert!(age_after < age_down, "the Node watch age drops after the resync: {age_after} s");
    eprintln!("e2e:     apiserver back: label seen after {:.1} s", took.as_secs_f64());
    // Forced: the restarted apiserver's watch cache begins after the view's last resourceVersion.
    let gone = env
        .webhook()
        .log_until(|log| {
            log.lines()
                .find(|l| l.contains("watch failed") && (l.contains("410") || l.contains("too old")))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no 410 Gone in the webhook's log after the restart:\n{}", env.diagnostics()));
    eprintln!("e2e:     410 Gone answered by a relist: {gone}");
    // Admission through the apiserver works again, with the new label.
    env.kubectl.dry_run(&pod).expect_ok();
}
