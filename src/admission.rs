//! AdmissionReview (`admission.k8s.io/v1`) in and out: parsing with clear
//! errors (`read`), the engine call on the subject [`crate::intake`]
//! derives, and the response (`respond`: uid echoed, base64 JSON Patch,
//! warnings, 403 denials, audit annotations).
//!
//! Of the object under review only what the engine reads is built: its
//! typed view, read straight from the body ([`crate::engine::object`]), or
//! for a body that view refuses, the same members as a `Value`
//! ([`crate::intake::ReadObject`]); the rest of the body is parsed and
//! checked as it would be for a whole `Value`, and passed over. An UPDATE
//! that carries its stored object is read whole, because the engine compares
//! whole templates. [`review_whole`] reads every request whole: it is the
//! reference `serve`'s reading is held to (`tests/reading.rs`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::ClusterState;
use crate::engine::object::ObjectView;
use crate::engine::{self, Decision, SubjectError, Texts};
use crate::intake::{self, AdmissionRequest, AsObject, IntakeError, Present, ReadObject};
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
struct ReviewIn<R> {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<R>,
}

/// Why the engine could not be asked about a request that has a uid (the
/// answer is a 400 AdmissionReview, not an HTTP error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unreadable {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Subject(#[from] SubjectError),
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
    pub decision: Result<Decision, Unreadable>,
}

/// The AdmissionReview sent back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

impl ReviewOut {
    /// The review as JSON, in a buffer sized for it up front: written into a
    /// small buffer that doubles as it fills, a pod's answer (1 to 2 KB with
    /// its patch and warnings) moved three times on the way.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let r = &self.response;
        let texts = r.uid.len()
            + r.patch.as_ref().map_or(0, String::len)
            + r.warnings.iter().map(|w| w.len() + 3).sum::<usize>()
            + r.status.as_ref().map_or(0, |s| s.message.len())
            + r.audit_annotations.as_ref().map_or(0, |a| a.findings.len());
        let mut out = Vec::with_capacity(texts + 256);
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }
}

/// `response` of the AdmissionReview (`admission.k8s.io/v1` AdmissionResponse).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<PatchType>,
    /// The JSON Patch, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<AuditAnnotations>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PatchType {
    #[serde(rename = "JSONPatch")]
    JsonPatch,
}

/// The `metav1.Status` of a refused request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

/// Recorded in the API server's audit log with the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditAnnotations {
    pub verdict: &'static str,
    /// Rule ids, comma-separated.
    pub findings: String,
}

/// Answers one AdmissionReview body. `Err` means no usable review (no uid):
/// the caller answers with an HTTP error instead.
///
/// The object is read as the engine's view of it, straight from the body
/// ([`ObjectView`]); a body that view cannot read exactly as the whole
/// reading would (an escape in a name, a wrong type, a malformed body: see
/// [`crate::engine::object`]) is read again with only the engine's members
/// built ([`ReadObject`]), which gives the whole reading's answer and errors.
/// An UPDATE that carries its stored object is read whole.
pub fn review(
    body: &[u8],
    endpoint: Endpoint,
    cluster: Option<&ClusterState>,
    policy: &Policy,
) -> Result<(ReviewOut, Outcome), RequestError> {
    let text = utf8(body)?;
    match parse::<ObjectView, Present>(text) {
        Ok((uid, request)) if !request.compares_stored_object() => {
            return answer(uid, request.without_stored_object(), endpoint, cluster, policy);
        }
        Ok(_) => {}
        Err(_) => {
            let (uid, request) = parse::<ReadObject, Present>(text)?;
            if !request.compares_stored_object() {
                return answer(uid, request.without_stored_object(), endpoint, cluster, policy);
            }
        }
    }
    let (uid, request) = parse::<Value, Value>(text)?;
    answer(uid, request, endpoint, cluster, policy)
}

/// Whether [`review`] answers this body from the engine's view of its object
/// read straight from the body (no fallback), for tests and benchmarks.
pub fn reads_view(body: &[u8]) -> bool {
    utf8(body).is_ok_and(|text| {
        parse::<ObjectView, Present>(text).is_ok_and(|(_, request)| !request.compares_stored_object())
    })
}

/// [`review`] with the whole object built, as every shell but `serve` hands
/// it to the engine: the reference for the trimmed reading.
pub fn review_whole(
    body: &[u8],
    endpoint: Endpoint,
    cluster: Option<&ClusterState>,
    policy: &Policy,
) -> Result<(ReviewOut, Outcome), RequestError> {
    let (uid, request) = parse::<Value, Value>(utf8(body)?)?;
    answer(uid, request, endpoint, cluster, policy)
}

fn answer<O: AsObject>(
    uid: String,
    request: AdmissionRequest<O>,
    endpoint: Endpoint,
    cluster: Option<&ClusterState>,
    policy: &Policy,
) -> Result<(ReviewOut, Outcome), RequestError> {
    let decision = intake::from_admission(&request)
        .map_err(Unreadable::from)
        // The response shows the denial and the warnings only: the findings'
        // other texts are not built (`engine::Texts`).
        .and_then(|review| engine::decide_with(&review, cluster, policy, Texts::Shown).map_err(Unreadable::from));
    let response = respond(uid.clone(), &decision, endpoint);
    let (namespace, name) = intake::identify(
        request.object.as_ref().map(AsObject::as_object),
        request.namespace.as_deref(),
        request.name.as_deref(),
        "",
    );
    let outcome = Outcome {
        uid,
        group: request.kind.group.clone(),
        kind: if request.kind.kind.is_empty() { "unknown".into() } else { request.kind.kind.clone() },
        operation: request.operation.clone().unwrap_or_default(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        dry_run: request.dry_run.unwrap_or(false),
        decision,
    };
    Ok((ReviewOut { api_version: "admission.k8s.io/v1", kind: "AdmissionReview", response }, outcome))
}

/// The body as text: one UTF-8 check of the whole body (the standard
/// library's, a word at a time), then readers that trust it: `from_slice`
/// would check each string on its own, a ninth of a pod review's
/// instructions and a quarter of its mispredicted branches
/// (docs/architecture.md). The same bodies are refused: a byte that is not
/// UTF-8 is invalid inside a string and outside one.
fn utf8(body: &[u8]) -> Result<&str, RequestError> {
    std::str::from_utf8(body).map_err(|e| RequestError::Malformed(format!("the body is not UTF-8: {e}")))
}

/// The request of a well-formed AdmissionReview, and its uid.
fn parse<'de, O, P>(text: &'de str) -> Result<(String, AdmissionRequest<O, P>), RequestError>
where
    O: Deserialize<'de>,
    P: Deserialize<'de>,
{
    let input: ReviewIn<AdmissionRequest<O, P>> =
        serde_json::from_str(text).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let api_version = input.api_version.unwrap_or_default();
    let kind = input.kind.unwrap_or_default();
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(RequestError::WrongType { api_version, kind });
    }
    let mut request = input.request.ok_or(RequestError::MissingRequest)?;
    let uid = request.uid.take().filter(|u| !u.is_empty()).ok_or(RequestError::MissingUid)?;
    if uid.len() > MAX_UID_BYTES {
        return Err(RequestError::UidTooLong(uid.len()));
    }
    Ok((uid, request))
}

/// The response for a decision: the mutating endpoint sends the patch of an
/// admitted object, the validating one never does.
fn respond(uid: String, decision: &Result<Decision, Unreadable>, endpoint: Endpoint) -> Response {
    let mut response = Response {
        uid,
        allowed: true,
        status: None,
        warnings: Vec::new(),
        patch_type: None,
        patch: None,
        audit_annotations: None,
    };
    match decision {
        Ok(d) => {
            response.allowed = d.allowed();
            response.status = d.message.as_ref().map(|message| Status {
                code: 403,
                reason: "Forbidden",
                message: limits::message(message),
            });
            response.warnings = limits::warnings(&d.warnings);
            if endpoint == Endpoint::Mutate && d.allowed() && !d.patch.is_empty() {
                let patch = serde_json::to_vec(&d.patch).expect("patch operations serialise");
                response.patch_type = Some(PatchType::JsonPatch);
                response.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch));
            }
            if !d.findings.is_empty() || d.verdict != engine::Verdict::Skip {
                let rules = limits::audit_list(d.findings.iter().map(|f| f.rule.id()));
                response.audit_annotations = Some(AuditAnnotations { verdict: d.verdict.as_str(), findings: rules });
            }
        }
        Err(e) => {
            response.allowed = false;
            response.status = Some(Status {
                code: 400,
                reason: "BadRequest",
                message: limits::message(&format!("sysbox-ro-webhook cannot read this request: {e}")),
            });
        }
    }
    response
}
