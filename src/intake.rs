//! Intake: what is under review, derived in one place from what each shell
//! receives. `serve` gets an AdmissionReview request ([`from_admission`]),
//! `check` a manifest document ([`from_manifest`]); both become the engine's
//! [`Review`] by the same rules:
//!
//! - kind: the request's group and kind (a subresource is not judged), or
//!   the manifest's `apiVersion` and `kind`;
//! - namespace: the one the request names, else the object's
//!   `metadata.namespace`, else the default (`check -n`; none for a request);
//! - name: the one the request names, else the object's `metadata.name`, else
//!   its `metadata.generateName`;
//! - operation: the request's; a manifest is judged as a CREATE.
//!
//! Of a request's object, `serve` reads only what the engine reads: the
//! engine's view of it, read straight from the body
//! ([`crate::engine::object::ObjectView`]), or, for a body that view
//! refuses, the same members built as a `Value` ([`ReadObject`], the members
//! named in [`crate::engine::subject::READ`]).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::engine::object::ObjectView;
use crate::engine::subject;
use crate::engine::{Kind, Object, Operation, Review};
use crate::manifest;
use crate::manifest::json::{Kept, Skip};

/// The fields of an AdmissionReview `request` the webhook reads. `O` is how
/// `object` is read, `P` how `oldObject` is: whole (`Value`), or, by
/// [`crate::admission`], [`ReadObject`] and [`Present`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<O = Value, P = Value> {
    pub uid: Option<String>,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    pub object: Option<O>,
    pub old_object: Option<P>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// An object with only the members the engine reads
/// ([`crate::engine::subject::READ`]), read straight from the body: the rest
/// is parsed, checked as a `Value` would be (nesting within 128 levels, every
/// error the same and at the same place) and passed over without being built.
#[derive(Debug)]
pub struct ReadObject(pub Value);

impl<'de> Deserialize<'de> for ReadObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::DeserializeSeed::deserialize(Kept(&subject::READ), d).map(ReadObject)
    }
}

/// A value that is there (not `null`), parsed and checked as a `Value` would
/// be but not kept.
#[derive(Debug)]
pub struct Present;

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::DeserializeSeed::deserialize(Skip, d).map(|()| Present)
    }
}

/// How a request's object is held: whole, trimmed, or as the engine's view
/// of it read from the body.
pub trait AsObject {
    fn as_object(&self) -> Object<'_>;
}

impl AsObject for Value {
    fn as_object(&self) -> Object<'_> {
        Object::Json(self)
    }
}

impl AsObject for ReadObject {
    fn as_object(&self) -> Object<'_> {
        Object::Json(&self.0)
    }
}

impl AsObject for ObjectView<'_> {
    fn as_object(&self) -> Object<'_> {
        Object::View(self)
    }
}

impl<O> AdmissionRequest<O, Present> {
    /// Whether the engine would compare this request's object with its
    /// stored one (an UPDATE that carries `oldObject`): it compares whole
    /// templates, so such a request must be read whole.
    pub fn compares_stored_object(&self) -> bool {
        self.operation.as_deref().and_then(Operation::parse) == Some(Operation::Update) && self.old_object.is_some()
    }

    /// The request without its stored object, for a request the engine
    /// does not compare with it
    /// ([`compares_stored_object`](Self::compares_stored_object) false).
    pub fn without_stored_object(self) -> AdmissionRequest<O> {
        AdmissionRequest {
            uid: self.uid,
            kind: self.kind,
            sub_resource: self.sub_resource,
            name: self.name,
            namespace: self.namespace,
            operation: self.operation,
            object: self.object,
            old_object: None,
            dry_run: self.dry_run,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupVersionKind {
    pub group: String,
    pub kind: String,
}

/// A request the engine cannot be asked about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    #[error("{} request has no object", .0.as_str())]
    NoObject(Operation),
}

/// The namespace and name of an object: those `given` (by the request) when
/// not empty, else the object's own, else `default_namespace` and `""`.
pub fn identify<'a>(
    object: Option<Object<'a>>,
    given_namespace: Option<&'a str>,
    given_name: Option<&'a str>,
    default_namespace: &'a str,
) -> (&'a str, &'a str) {
    let own_namespace = || object?.namespace();
    let namespace = given_namespace.filter(|s| !s.is_empty()).or_else(own_namespace).unwrap_or(default_namespace);
    let name = given_name.filter(|s| !s.is_empty()).or_else(|| object?.name()).unwrap_or("");
    (namespace, name)
}

/// The review of an AdmissionReview request.
pub fn from_admission<O: AsObject>(request: &AdmissionRequest<O>) -> Result<Review<'_>, IntakeError> {
    let raw = request.operation.as_deref().unwrap_or("");
    let operation = Operation::parse(raw).ok_or_else(|| IntakeError::UnknownOperation(raw.to_owned()))?;
    let kind = match request.sub_resource.as_deref() {
        None | Some("") => Kind::from_group_kind(&request.kind.group, &request.kind.kind),
        Some(_) => None,
    };
    let object = request.object.as_ref().map(AsObject::as_object);
    if object.is_none() && kind.is_some() && matches!(operation, Operation::Create | Operation::Update) {
        return Err(IntakeError::NoObject(operation));
    }
    let (namespace, name) = identify(object, request.namespace.as_deref(), request.name.as_deref(), "");
    Ok(Review {
        kind,
        operation,
        namespace,
        name,
        object: object.unwrap_or(Object::none()),
        old_object: request.old_object.as_ref(),
    })
}

/// The review of one object of a manifest, as `kubectl create` would send it.
pub fn from_manifest<'a>(object: &'a Value, default_namespace: &'a str) -> Review<'a> {
    let (api_version, kind) = manifest::type_of(object);
    let (namespace, name) = identify(Some(Object::Json(object)), None, None, default_namespace);
    Review {
        kind: Kind::from_type(api_version, kind),
        operation: Operation::Create,
        namespace,
        name,
        object: Object::Json(object),
        old_object: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_request_names_win_then_the_object_then_the_default() {
        let o = json!({ "metadata": { "namespace": "own", "generateName": "gen-" } });
        let o = Some(Object::Json(&o));
        assert_eq!(identify(o, Some("req"), Some("r"), "dflt"), ("req", "r"));
        assert_eq!(identify(o, Some(""), Some(""), "dflt"), ("own", "gen-"));
        assert_eq!(identify(Some(Object::Json(&json!({}))), None, None, "dflt"), ("dflt", ""));
    }

    #[test]
    fn manifest_and_request_of_one_object_agree() {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "generateName": "web-", "namespace": "prod" }, "spec": {}
        });
        let request: AdmissionRequest = serde_json::from_value(json!({
            "uid": "u", "kind": { "group": "apps", "version": "v1", "kind": "Deployment" },
            "namespace": "prod", "name": "", "operation": "CREATE", "object": object,
        }))
        .unwrap();
        let (a, m) = (from_admission(&request).unwrap(), from_manifest(&object, "default"));
        assert_eq!((a.kind, a.operation, a.namespace, a.name), (m.kind, m.operation, m.namespace, m.name));
        assert_eq!((m.kind, m.namespace, m.name), (Some(Kind::Deployment), "prod", "web-"));
    }

    #[test]
    fn unreadable_requests() {
        let req = |v: Value| serde_json::from_value::<AdmissionRequest>(v).unwrap();
        let no_object = req(json!({ "kind": { "kind": "Pod" }, "operation": "CREATE" }));
        assert_eq!(from_admission(&no_object).unwrap_err(), IntakeError::NoObject(Operation::Create));
        let bad_op = req(json!({ "kind": { "kind": "Pod" }, "operation": "PATCH", "object": {} }));
        assert_eq!(from_admission(&bad_op).unwrap_err(), IntakeError::UnknownOperation("PATCH".into()));
        let delete = req(json!({ "kind": { "kind": "Pod" }, "operation": "DELETE" }));
        assert_eq!(from_admission(&delete).unwrap().object.json(), Some(&Value::Null));
    }
}
