//! The HTTPS webhook endpoints: `POST /mutate` and `POST /validate`.
//! Everything here is transport: limits, content types, deadlines, memory,
//! metrics and logs. The answer itself comes from [`crate::admission::review`].

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures::future::{self, BoxFuture};
use futures::FutureExt as _;
use tokio::time::Instant;

use super::budget::Held;
use super::guard::{self, http_error};
use super::AppState;
use crate::admission::{self, Endpoint, Outcome};
use crate::engine::{Action, Kind, Operation, Rule, Verdict};
use crate::metrics::{FindingLabels, RequestLabels, FINDING_SLOTS, LATENCY_SLOTS, REQUEST_SLOTS};
use crate::printable::Printable;

/// The longest deadline a client may ask for: the apiserver's largest
/// `timeoutSeconds` for a webhook is 30.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Bodies up to this size are judged on the async worker that read them;
/// larger ones on the blocking pool, so a huge review never holds up the
/// connections sharing that worker.
pub const INLINE_DECISION_BYTES: usize = 256 << 10;

/// The webhook's service: `POST /mutate` and `POST /validate` behind the
/// guard.
pub fn router(state: AppState) -> guard::Guarded<Endpoints> {
    let (metrics, serving, in_flight) = (state.metrics.clone(), state.serving.clone(), state.in_flight.clone());
    guard::guard_webhook(Endpoints(Arc::new(state)), metrics, serving, in_flight)
}

/// The two endpoints, told apart by path and method without a router (an
/// axum router clones and boxes the route's service and runs its extractors
/// for every request). An unknown path is a JSON 404; a wrong method a bare
/// 405 with `Allow: POST`, which the guard turns into a JSON error as it
/// does a router's. The state is shared, not cloned field by field.
#[derive(Clone)]
pub struct Endpoints(Arc<AppState>);

impl<B> tower_service::Service<axum::http::Request<B>> for Endpoints
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let endpoint = match request.uri().path() {
            "/mutate" => Endpoint::Mutate,
            "/validate" => Endpoint::Validate,
            path => return future::ready(Ok(guard::not_found(&self.0.metrics, path))).boxed(),
        };
        if request.method() != Method::POST {
            let mut refused = Response::new(Body::empty());
            *refused.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return future::ready(Ok(refused)).boxed();
        }
        let state = self.0.clone();
        async move { Ok(handle(state, endpoint, request.map(Body::new)).await) }.boxed()
    }
}

/// The deadline of a request: its `?timeout=` (as the apiserver writes it,
/// e.g. `10s`), at most [`MAX_REQUEST_TIMEOUT`]; `default` when absent or
/// unreadable.
pub fn request_timeout(query: Option<&str>, default: Duration) -> Duration {
    let asked = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("timeout="))).and_then(parse_go_duration);
    asked.filter(|d| !d.is_zero()).unwrap_or(default).min(MAX_REQUEST_TIMEOUT)
}

/// Parses a Go duration (`time.ParseDuration`: `10s`, `1m30s`, `1.5h`,
/// `500ms`, `0`) in exact integer nanoseconds. Anything Go rejects, and any
/// value Go cannot hold (over 2^63-1 ns, about 292 years), is `None`.
/// Negative durations are `None` too: a deadline cannot lie in the past.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    const MAX_NANOS: u128 = i64::MAX as u128;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let mut whole: u128 = 0;
        for d in int_digits.bytes() {
            whole = whole.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
            if whole > MAX_NANOS {
                return None;
            }
        }
        let mut nanos = whole.checked_mul(unit_nanos)?;
        // Fractions past 1 ns of the unit cannot change the result.
        let (mut frac, mut scale) = (0u128, 1u128);
        for d in frac_digits.bytes().take(20) {
            frac = frac * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        nanos = nanos.checked_add(frac * unit_nanos / scale)?;
        total = total.checked_add(nanos)?;
        if total > MAX_NANOS {
            return None;
        }
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Only `identity` (or no `Content-Encoding`) is read. The apiserver never
/// compresses a webhook request, and decoding would let a small body expand
/// past `--max-body-bytes` before it is measured; so anything else is 415.
fn identity_encoding(headers: &HeaderMap) -> Result<(), String> {
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| "a Content-Encoding that is not text".to_string())?;
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("identity") {
                return Err(format!(
                    "Content-Encoding {:?} is not accepted; send the AdmissionReview uncompressed",
                    Printable(coding).to_string()
                ));
            }
        }
    }
    Ok(())
}

async fn handle(state: Arc<AppState>, endpoint: Endpoint, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let metrics = &state.metrics;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        let message = format!("content type must be application/json, got {content_type:?}");
        return http_error(metrics, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", &message);
    }
    if let Err(message) = identity_encoding(headers) {
        return http_error(metrics, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_content_encoding", &message);
    }
    let limit = state.max_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(&state, limit);
    }
    let timeout = request_timeout(parts.uri.query(), state.default_timeout);
    // What the head says has been read; it is not kept while the body is.
    drop(parts);
    let deadline = started + timeout;

    // Memory: every body being read or judged holds its size in the budget
    // (the whole limit when it does not say its size up front).
    let weight = declared.map_or(limit, |n| n as usize).max(1);
    let Some(permit) = state.body_budget.acquire(weight, deadline).await else {
        let message = format!("too many large reviews in progress; none finished within {timeout:?}");
        let mut busy = http_error(metrics, StatusCode::SERVICE_UNAVAILABLE, "busy", &message);
        busy.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return busy;
    };

    let bytes = match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if over {
                too_large(&state, limit)
            } else {
                let message = format!("cannot read request body: {e}");
                http_error(metrics, StatusCode::BAD_REQUEST, "body_read", &message)
            };
        }
        Err(_) => {
            let message = format!("request body not received within {timeout:?}");
            return http_error(metrics, StatusCode::REQUEST_TIMEOUT, "request_timeout", &message);
        }
    };
    let (answer, permit) = decide(&state, endpoint, bytes, deadline, permit).await;
    let response = match answer {
        Ok(Ok((review, outcome))) => {
            record(&state, endpoint, &outcome, started.elapsed());
            match review.to_json() {
                Ok(json) => {
                    let mut ok = Response::new(Body::from(json));
                    ok.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    ok
                }
                Err(e) => http_error(metrics, StatusCode::INTERNAL_SERVER_ERROR, "serialise", &e.to_string()),
            }
        }
        Ok(Err(e)) => http_error(metrics, StatusCode::BAD_REQUEST, e.label(), &e.to_string()),
        Err(response) => response,
    };
    // The permit is held until the answer is serialised (or, when the
    // deadline passed first, until the judging that still runs is done).
    drop(permit);
    response
}

type Answer = Result<(admission::ReviewOut, Outcome), admission::RequestError>;

/// Judges the body: small ones here, large ones on the blocking pool within
/// the deadline. `Err` is the HTTP answer when that did not work out. The
/// budget `permit` comes back with the answer; a judging that outlives the
/// deadline keeps it until it ends, so its memory stays counted.
async fn decide(
    state: &AppState,
    endpoint: Endpoint,
    bytes: Bytes,
    deadline: Instant,
    permit: Held,
) -> (Result<Answer, Response>, Option<Held>) {
    let cluster = state.cluster.state();
    if bytes.len() <= INLINE_DECISION_BYTES {
        return (Ok(admission::review(&bytes, endpoint, Some(&cluster), &state.policy)), Some(permit));
    }
    let policy = state.policy.clone();
    let job =
        tokio::task::spawn_blocking(move || (admission::review(&bytes, endpoint, Some(&cluster), &policy), permit));
    let answer = match tokio::time::timeout_at(deadline, job).await {
        Ok(Ok((answer, permit))) => return (Ok(answer), Some(permit)),
        Ok(Err(e)) if e.is_panic() => guard::panic_response(&state.metrics, e.into_panic().as_ref()),
        Ok(Err(e)) => http_error(&state.metrics, StatusCode::SERVICE_UNAVAILABLE, "cancelled", &e.to_string()),
        Err(_) => http_error(
            &state.metrics,
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            "the review was not judged within its timeout",
        ),
    };
    (Err(answer), None)
}

fn too_large(state: &AppState, limit: usize) -> Response {
    let message = format!("request body exceeds the limit of {limit} bytes (--max-body-bytes)");
    http_error(&state.metrics, StatusCode::PAYLOAD_TOO_LARGE, "too_large", &message)
}

// How an answer's metric label sets are numbered for `Metrics::answered`
// and `Metrics::finding`, which resolve each numbered family member once
// instead of hashing its labels on every request: each part is a closed
// enumeration, kind and operation with `other` as their last number. The
// test `every_label_set_has_a_slot_of_its_own` proves the numbers distinct
// and within the tables.
const KINDS: usize = Kind::ALL.len() + 1;
const OPERATIONS: usize = 5;
const VERDICTS: usize = 5;
const ACTIONS: usize = 4;
const _: () = assert!(2 * KINDS * OPERATIONS * VERDICTS <= REQUEST_SLOTS && 2 <= LATENCY_SLOTS);
const _: () = assert!(Rule::ALL.len() * ACTIONS <= FINDING_SLOTS);

fn request_slot(endpoint: Endpoint, kind: Option<Kind>, operation: Option<Operation>, verdict: Verdict) -> usize {
    let kind = kind.map_or(KINDS - 1, |k| k as usize);
    let operation = operation.map_or(OPERATIONS - 1, |o| o as usize);
    ((endpoint as usize * KINDS + kind) * OPERATIONS + operation) * VERDICTS + verdict as usize
}

fn finding_slot(rule: Rule, action: Action) -> usize {
    rule as usize * ACTIONS + action as usize
}

/// One log line and the metrics for an answered review. Every text that came
/// from the client is printed through [`Printable`].
fn record(state: &AppState, endpoint: Endpoint, outcome: &Outcome, elapsed: Duration) {
    let m = &state.metrics;
    let verdict = outcome.decision.as_ref().map_or(Verdict::Error, |d| d.verdict);
    let kind = Kind::from_group_kind(&outcome.group, &outcome.kind);
    let operation = Operation::parse(&outcome.operation);
    let labels = RequestLabels {
        endpoint: endpoint.as_str(),
        kind: kind.map_or("other", Kind::as_str),
        operation: operation.map_or("other", Operation::as_str),
        verdict: verdict.as_str(),
    };
    m.answered(endpoint as usize, request_slot(endpoint, kind, operation, verdict), labels, elapsed);
    match &outcome.decision {
        Ok(d) => {
            for f in d.findings.iter().filter(|f| f.action != Action::Note) {
                m.finding(
                    finding_slot(f.rule, f.action),
                    FindingLabels { rule: f.rule.id(), action: f.action.as_str() },
                );
            }
            let rules = d.rule_ids();
            let level_info = d.verdict != Verdict::Skip;
            macro_rules! log {
                ($lvl:ident) => {
                    tracing::$lvl!(
                        endpoint = endpoint.as_str(),
                        uid = %Printable(&outcome.uid),
                        kind = %Printable(&outcome.kind),
                        operation = %Printable(&outcome.operation),
                        namespace = %Printable(&outcome.namespace),
                        name = %Printable(&outcome.name),
                        dry_run = outcome.dry_run,
                        verdict = d.verdict.as_str(),
                        mode = d.mode.map(|m| m.as_str()).unwrap_or("-"),
                        findings = %rules,
                        patch_ops = d.patch.len(),
                        reason = %Printable(&d.summary(Rule::id)),
                        elapsed_us = elapsed.as_micros() as u64,
                        "admission decision"
                    )
                };
            }
            if level_info {
                log!(info);
            } else {
                log!(debug);
            }
        }
        Err(unreadable) => {
            tracing::warn!(uid = %Printable(&outcome.uid), kind = %Printable(&outcome.kind),
                namespace = %Printable(&outcome.namespace), name = %Printable(&outcome.name),
                error = %Printable(&unreadable.to_string()), "admission request unreadable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Exhaustive on purpose: a new variant stops the build here until the
    // lists below and the bounds of the numbering are raised with it.
    fn listed(o: Operation, v: Verdict, a: Action, e: Endpoint) {
        match o {
            Operation::Create | Operation::Update | Operation::Delete | Operation::Connect => {}
        }
        match v {
            Verdict::Allow | Verdict::Warn | Verdict::Deny | Verdict::Skip | Verdict::Error => {}
        }
        match a {
            Action::Deny | Action::Warn | Action::Audit | Action::Note => {}
        }
        match e {
            Endpoint::Mutate | Endpoint::Validate => {}
        }
    }

    #[test]
    fn every_label_set_has_a_slot_of_its_own() {
        listed(Operation::Create, Verdict::Allow, Action::Deny, Endpoint::Mutate);
        let operations =
            [Some(Operation::Create), Some(Operation::Update), Some(Operation::Delete), Some(Operation::Connect), None];
        let verdicts = [Verdict::Allow, Verdict::Warn, Verdict::Deny, Verdict::Skip, Verdict::Error];
        let actions = [Action::Deny, Action::Warn, Action::Audit, Action::Note];
        let kinds: Vec<Option<Kind>> = Kind::ALL.into_iter().map(Some).chain([None]).collect();
        let mut seen = std::collections::BTreeSet::new();
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            assert!((endpoint as usize) < LATENCY_SLOTS);
            for &kind in &kinds {
                for operation in operations {
                    for verdict in verdicts {
                        let i = request_slot(endpoint, kind, operation, verdict);
                        assert!(i < REQUEST_SLOTS, "{i} out of range");
                        assert!(seen.insert(i), "{endpoint:?} {kind:?} {operation:?} {verdict:?} shares slot {i}");
                    }
                }
            }
        }
        let findings: std::collections::BTreeSet<usize> =
            Rule::ALL.into_iter().flat_map(|r| actions.map(|a| finding_slot(r, a))).collect();
        assert_eq!(findings.len(), Rule::ALL.len() * actions.len());
        assert!(findings.iter().all(|&i| i < FINDING_SLOTS));
    }

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn go_durations() {
        let d = |s: &str| parse_go_duration(s);
        assert_eq!(d("10s"), Some(Duration::from_secs(10)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(d("1.s"), Some(Duration::from_secs(1)));
        assert_eq!(d("2h45m0.5s"), Some(Duration::from_millis(9_900_500)));
        assert_eq!(d("1µs1μs1us1ns"), Some(Duration::from_nanos(3001)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        // Go's largest duration, and one nanosecond more.
        assert_eq!(d("9223372036854775807ns"), Some(Duration::from_nanos(i64::MAX as u64)));
        for bad in [
            "",
            "abc",
            "10",
            ".s",
            "s",
            "-5s",
            "1e3s",
            "10x",
            "9223372036854775808ns",
            "18446744073709551616s",
            "99999999999999999999s",
            "5124095576030432h",
            "2562048h",
            "99999999999999999999999999999999999999999h",
        ] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn client_timeouts_are_capped_at_30_seconds() {
        let t = |q: &str| request_timeout(Some(q), TEN);
        assert_eq!(t("timeout=5s"), Duration::from_secs(5));
        assert_eq!(t("a=b&timeout=1m30s"), MAX_REQUEST_TIMEOUT);
        assert_eq!(t("timeout=2562047h"), MAX_REQUEST_TIMEOUT);
        // Beyond what Go can hold: unreadable, so the default.
        assert_eq!(t("timeout=99999999999h"), TEN);
        assert_eq!(t("timeout=0s"), TEN);
        assert_eq!(t("timeout=abc"), TEN);
        assert_eq!(request_timeout(None, TEN), TEN);
        assert_eq!(request_timeout(None, Duration::from_secs(600)), MAX_REQUEST_TIMEOUT);
    }
}
