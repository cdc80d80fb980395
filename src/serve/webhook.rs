//! The HTTPS webhook endpoints: `POST /mutate` and `POST /validate`.
//! Everything here is transport: limits, content types, deadlines, metrics
//! and logs. The answer itself comes from [`crate::admission::review`].

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::admission::{self, Endpoint, Outcome};
use crate::engine::{Action, Rule, Verdict};
use crate::metrics::{EndpointLabels, ErrorLabels, FindingLabels, RequestLabels};

pub fn router(state: AppState) -> Router {
    Router::new().route("/mutate", post(mutate)).route("/validate", post(validate)).with_state(state)
}

async fn mutate(State(s): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Body) -> Response {
    handle(s, Endpoint::Mutate, q, headers, body).await
}

async fn validate(State(s): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Body) -> Response {
    handle(s, Endpoint::Validate, q, headers, body).await
}

/// An HTTP error with a JSON body, for requests that cannot get an AdmissionReview back.
fn http_error(state: &AppState, status: StatusCode, reason: &'static str, message: String) -> Response {
    state.metrics.request_errors.get_or_create(&ErrorLabels { reason }).inc();
    tracing::warn!(status = status.as_u16(), reason, %message, "request refused");
    (status, Json(json!({ "code": status.as_u16(), "reason": reason, "error": message }))).into_response()
}

/// Parses the apiserver's `?timeout=10s` (a Go duration such as `10s`, `1m30s`, `500ms`).
pub fn parse_timeout(query: Option<&str>) -> Option<Duration> {
    let value = query?.split('&').find_map(|kv| kv.strip_prefix("timeout="))?;
    parse_go_duration(value)
}

fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total.is_finite() && total > 0.0).then(|| Duration::from_secs_f64(total))
}

async fn handle(
    state: AppState,
    endpoint: Endpoint,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return http_error(
            &state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("content type must be application/json, got {content_type:?}"),
        );
    }
    let limit = state.max_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(&state, limit);
    }
    let deadline = parse_timeout(query.as_deref()).unwrap_or(state.default_timeout);
    let work = async {
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(e) => {
                let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                return Err(if over {
                    too_large(&state, limit)
                } else {
                    http_error(&state, StatusCode::BAD_REQUEST, "body_read", format!("cannot read request body: {e}"))
                });
            }
        };
        let cluster = state.cluster.state();
        Ok(admission::review(&bytes, endpoint, Some(&cluster), &state.policy))
    };
    let result = match tokio::time::timeout(deadline, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(response)) => return response,
        Err(_) => {
            return http_error(
                &state,
                StatusCode::GATEWAY_TIMEOUT,
                "deadline_exceeded",
                format!("request not complete within its timeout of {deadline:?}"),
            )
        }
    };
    match result {
        Err(e) => http_error(&state, StatusCode::BAD_REQUEST, e.label(), e.to_string()),
        Ok((review, outcome)) => {
            record(&state, endpoint, &outcome, started.elapsed());
            (StatusCode::OK, Json(review)).into_response()
        }
    }
}

fn too_large(state: &AppState, limit: usize) -> Response {
    http_error(
        state,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("request body exceeds the limit of {limit} bytes (--max-body-bytes)"),
    )
}

/// One log line and the metrics for an answered review.
fn record(state: &AppState, endpoint: Endpoint, outcome: &Outcome, elapsed: Duration) {
    let m = &state.metrics;
    m.latency.get_or_create(&EndpointLabels { endpoint: endpoint.as_str() }).observe(elapsed.as_secs_f64());
    match &outcome.decision {
        Ok(d) => {
            m.requests
                .get_or_create(&RequestLabels {
                    endpoint: endpoint.as_str(),
                    kind: outcome.kind.clone(),
                    operation: outcome.operation.clone(),
                    verdict: d.verdict.as_str(),
                })
                .inc();
            for f in d.findings.iter().filter(|f| f.action != Action::Note) {
                m.findings.get_or_create(&FindingLabels { rule: f.rule.id(), action: f.action.as_str() }).inc();
            }
            let rules = d.rule_ids();
            let level_info = d.verdict != Verdict::Skip;
            macro_rules! log {
                ($lvl:ident) => {
                    tracing::$lvl!(
                        endpoint = endpoint.as_str(),
                        uid = %outcome.uid,
                        kind = %outcome.kind,
                        operation = %outcome.operation,
                        namespace = %outcome.namespace,
                        name = %outcome.name,
                        dry_run = outcome.dry_run,
                        verdict = d.verdict.as_str(),
                        mode = d.mode.map(|m| m.as_str()).unwrap_or("-"),
                        findings = %rules,
                        patch_ops = d.patch.len(),
                        reason = %d.summary(Rule::id),
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
            m.requests
                .get_or_create(&RequestLabels {
                    endpoint: endpoint.as_str(),
                    kind: outcome.kind.clone(),
                    operation: outcome.operation.clone(),
                    verdict: "error",
                })
                .inc();
            tracing::warn!(uid = %outcome.uid, kind = %outcome.kind, namespace = %outcome.namespace,
                name = %outcome.name, error = %unreadable, "admission request unreadable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_timeout(Some("timeout=10s")), Some(Duration::from_secs(10)));
        assert_eq!(parse_timeout(Some("a=b&timeout=1m30s")), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout(Some("timeout=500ms")), Some(Duration::from_millis(500)));
        assert_eq!(parse_timeout(Some("timeout=abc")), None);
        assert_eq!(parse_timeout(Some("timeout=0s")), None);
        assert_eq!(parse_timeout(None), None);
    }
}
