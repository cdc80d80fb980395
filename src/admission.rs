//! AdmissionReview (`admission.k8s.io/v1`) in and out: parsing with clear
//! errors, the engine call, and the response (uid echoed, base64 JSON Patch,
//! warnings, 403 denials, audit annotations).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cluster::ClusterState;
use crate::engine::{self, Decision, Kind, Operation, Review};
use crate::limits;
use crate::policy::Policy;

/// Which endpoint answered: the mutating one patches, the validating one never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// A request that cannot be answered with an AdmissionReview (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("malformed AdmissionReview JSON: {0}")]
    Malformed(String),
    #[error("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got {api_version:?} {kind:?}")]
    WrongType { api_version: String, kind: String },
    #[error("AdmissionReview has no request")]
    MissingRequest,
    #[error("AdmissionReview request has no uid")]
    MissingUid,
    #[error("AdmissionReview request uid is {0} bytes long; at most {MAX_UID_BYTES} are accepted")]
    UidTooLong(usize),
}

/// Longest request uid accepted. The apiserver sends a UUID (36 bytes); the
/// uid is echoed and logged, so a longer one is refused rather than copied.
pub const MAX_UID_BYTES: usize = 128;

impl RequestError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RequestError::Malformed(_) => "malformed",
            RequestError::WrongType { .. } => "wrong_type",
            RequestError::MissingRequest => "missing_request",
            RequestError::MissingUid => "missing_uid",
            RequestError::UidTooLong(_) => "uid_too_long",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<RequestIn>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GroupVersionKind {
    group: String,
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: Option<String>,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// What was decided, for logs and metrics.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub uid: String,
    /// API group and kind of the request, as sent.
    pub group: String,
    pub kind: String,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub dry_run: bool,
    /// `Err` holds the message of a request the engine could not read.
    pub decision: Result<Decision, String>,
}

/// Answers one AdmissionReview body. `Err` means no usable review (no uid):
/// the caller answers with an HTTP error instead.
pub fn review(
    body: &[u8],
    endpoint: Endpoint,
    cluster: Option<&ClusterState>,
    policy: &Policy,
) -> Result<(Value, Outcome), RequestError> {
    let input: ReviewIn = serde_json::from_slice(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let api_version = input.api_version.unwrap_or_default();
    let kind = input.kind.unwrap_or_default();
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(RequestError::WrongType { api_version, kind });
    }
    let req = input.request.ok_or(RequestError::MissingRequest)?;
    let uid = req.uid.filter(|u| !u.is_empty()).ok_or(RequestError::MissingUid)?;
    if uid.len() > MAX_UID_BYTES {
        return Err(RequestError::UidTooLong(uid.len()));
    }

    let namespace = req
        .namespace
        .filter(|n| !n.is_empty())
        .or_else(|| req.object.as_ref()?.pointer("/metadata/namespace")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = req
        .name
        .filter(|n| !n.is_empty())
        .or_else(|| req.object.as_ref().and_then(engine::subject::object_name).map(str::to_owned))
        .unwrap_or_default();
    let operation = req.operation.unwrap_or_default();
    let judged_kind = match req.sub_resource.as_deref() {
        None | Some("") => Kind::from_group_kind(&req.kind.group, &req.kind.kind),
        Some(_) => None,
    };
    let decision = match (Operation::parse(&operation), req.object.as_ref()) {
        (None, _) => Err(format!("unknown operation {operation:?}")),
        (Some(op @ (Operation::Create | Operation::Update)), None) if judged_kind.is_some() => {
            Err(format!("{} request has no object", op.as_str()))
        }
        (Some(op), object) => {
            let null = Value::Null;
            let review = Review {
                kind: judged_kind,
                operation: op,
                namespace: &namespace,
                name: &name,
                object: object.unwrap_or(&null),
                old_object: req.old_object.as_ref(),
            };
            engine::decide(&review, cluster, policy).map_err(|e| e.to_string())
        }
    };
    let mut response = json!({ "uid": uid, "allowed": true });
    match &decision {
        Ok(d) => {
            response["allowed"] = json!(d.allowed());
            if let Some(message) = &d.message {
                response["status"] = json!({ "code": 403, "reason": "Forbidden", "message": limits::message(message) });
            }
            if !d.warnings.is_empty() {
                response["warnings"] = json!(limits::warnings(&d.warnings));
            }
            if endpoint == Endpoint::Mutate && d.allowed() && !d.patch.is_empty() {
                let patch = serde_json::to_vec(&d.patch).expect("patch operations serialise");
                response["patchType"] = json!("JSONPatch");
                response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
            }
            if !d.findings.is_empty() || d.verdict != engine::Verdict::Skip {
                let rules = limits::audit_list(d.findings.iter().map(|f| f.rule.id()));
                response["auditAnnotations"] = json!({ "verdict": d.verdict.as_str(), "findings": rules });
            }
        }
        Err(message) => {
            response["allowed"] = json!(false);
            response["status"] = json!({
                "code": 400,
                "reason": "BadRequest",
                "message": limits::message(&format!("sysbox-ro-webhook cannot read this request: {message}")),
            });
        }
    }
    let outcome = Outcome {
        uid,
        group: req.kind.group,
        kind: if req.kind.kind.is_empty() { "unknown".into() } else { req.kind.kind },
        operation,
        namespace,
        name,
        dry_run: req.dry_run.unwrap_or(false),
        decision,
    };
    let out = json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response });
    Ok((out, outcome))
}
