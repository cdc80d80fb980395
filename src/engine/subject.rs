//! What is under review: the kinds the engine judges, where each keeps its
//! pod template, typed read-only views of the parts the policy reads, and
//! [`READ`], every member of an object the engine reads, kept beside the
//! views so that the two change together. The views are read from the
//! original JSON; nothing is ever serialised back.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use serde::Deserialize;
use serde_json::Value;

use crate::manifest::json::Keep;

/// A kind whose pods (or pod templates) the engine judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    PodTemplate,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
    CronJob,
}

impl Kind {
    /// Every kind the engine judges.
    pub const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::PodTemplate,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ReplicaSet,
        Kind::Job,
        Kind::CronJob,
    ];

    /// From an API group (`""` for core) and kind.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Some(match (group, kind) {
            ("", "Pod") => Kind::Pod,
            ("", "PodTemplate") => Kind::PodTemplate,
            ("apps", "Deployment") => Kind::Deployment,
            ("apps", "StatefulSet") => Kind::StatefulSet,
            ("apps", "DaemonSet") => Kind::DaemonSet,
            ("apps", "ReplicaSet") => Kind::ReplicaSet,
            ("batch", "Job") => Kind::Job,
            ("batch", "CronJob") => Kind::CronJob,
            _ => return None,
        })
    }

    /// From a manifest's `apiVersion` and `kind`.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::from_group_kind(group, kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::PodTemplate => "PodTemplate",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
        }
    }

    /// JSON Pointer tokens of the object holding `metadata` and `spec` of the pod.
    pub fn template_path(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &[],
            Kind::PodTemplate => &["template"],
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::ReplicaSet | Kind::Job => {
                &["spec", "template"]
            }
            Kind::CronJob => &["spec", "jobTemplate", "spec", "template"],
        }
    }

    pub fn is_pod(self) -> bool {
        self == Kind::Pod
    }
}

/// The members of a pod spec [`PodSpecView`] reads, then `extra` ones.
macro_rules! pod_spec_members {
    ($($extra:expr),*) => {
        &[
            ("runtimeClassName", Keep::All),
            ("nodeName", Keep::All),
            ("nodeSelector", Keep::All),
            ("affinity", Keep::All),
            ("tolerations", Keep::All),
            ("hostNetwork", Keep::All),
            ("hostPID", Keep::All),
            ("hostIPC", Keep::All),
            ("hostUsers", Keep::All),
            ("enableServiceLinks", Keep::All),
            ("shareProcessNamespace", Keep::All),
            ("containers", CONTAINERS),
            ("initContainers", CONTAINERS),
            ("ephemeralContainers", CONTAINERS),
            $($extra),*
        ]
    };
}

/// Every member of a reviewed object that [`decide`](super::decide) and what
/// it calls read, for every kind (the pod template at each kind's
/// [`Kind::template_path`]): when the engine's view read from the body
/// ([`super::object::ObjectView`], the same members) refuses a body, `serve`
/// builds only these of its object and parses the rest without keeping it
/// (`crate::intake::ReadObject`, `docs/architecture.md`). Read by:
///
/// - `metadata` (of the object and of its template): `name`, `generateName`
///   and `namespace` by [`object_name`] and `crate::intake::identify`;
///   `labels` and `annotations` by [`check_shape`], [`Template::annotation`]
///   and [`super::patch::annotate`];
/// - the pod spec: each field of [`PodSpecView`], of [`ContainerView`] and of
///   [`SecurityContextView`] ([`read_template`]; `affinity` and `tolerations`
///   whole, as Kubernetes' own types read them; `runtimeClassName` also by
///   [`check_shape`]), `affinity` again by [`super::patch::steer`].
///
/// A member left out here would read as absent: a Sysbox pod could be
/// admitted without its annotation. The unit tests below hold this list to
/// the views' fields and to every kind's template path; `tests/reading.rs`
/// holds the answers given on a trimmed object to those on the whole one.
/// One read is not here: an UPDATE compares the whole templates of the
/// object and its stored version (in `decide`), so such a request is read
/// whole.
pub static READ: Keep = Keep::Members(&[
    ("metadata", METADATA),
    // PodTemplate
    ("template", TEMPLATE),
    // a Pod's spec; the templates of the workloads (spec.template) and of a
    // CronJob (spec.jobTemplate.spec.template)
    (
        "spec",
        Keep::Members(pod_spec_members![
            ("template", TEMPLATE),
            ("jobTemplate", Keep::Members(&[("spec", Keep::Members(&[("template", TEMPLATE)]))]))
        ]),
    ),
]);

const METADATA: Keep = Keep::Members(&[
    ("name", Keep::All),
    ("generateName", Keep::All),
    ("namespace", Keep::All),
    ("labels", Keep::All),
    ("annotations", Keep::All),
]);

const TEMPLATE: Keep = Keep::Members(&[("metadata", METADATA), ("spec", Keep::Members(pod_spec_members![]))]);

const CONTAINERS: Keep = Keep::Each(&Keep::Members(&[
    ("name", Keep::All),
    ("securityContext", Keep::Members(&[("readOnlyRootFilesystem", Keep::All), ("privileged", Keep::All)])),
    ("env", Keep::All),
    ("envFrom", Keep::All),
]));

/// How an object names itself: `metadata.name`, else `metadata.generateName`
/// (empty strings count as absent).
pub fn object_name(object: &Value) -> Option<&str> {
    let meta = object.get("metadata")?;
    let field = |k: &str| meta.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    field("name").or_else(|| field("generateName"))
}

/// Follows pointer tokens through objects.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(*k))
}

/// A string of the reviewed object, read in place: the views borrow their
/// strings from the [`Value`] or the request body instead of copying each
/// name and environment value on every decision. It reads like `String`
/// does, errors included ("expected a string"). A `&Value` can always lend
/// its strings; the body cannot lend one that holds an escape, and such a
/// body is read as a `Value` instead ([`super::object`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Text<'a>(pub &'a str);

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Text<'a> {
        Text(s)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Lend<'a>(std::marker::PhantomData<Text<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Lend<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(v))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Text<'a>, E> {
                // only from a reader that cannot lend its strings (not a &Value)
                Err(E::custom("a string that cannot be read in place"))
            }
        }
        d.deserialize_str(Lend(std::marker::PhantomData))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityContextView {
    pub read_only_root_filesystem: Option<bool>,
    pub privileged: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVarView<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub value: Option<Text<'a>>,
    pub value_from: Option<serde::de::IgnoredAny>,
}

/// A `configMapRef` or `secretRef` of `envFrom`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvSourceRef<'a> {
    #[serde(borrow)]
    pub name: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvFromView<'a> {
    #[serde(borrow)]
    pub prefix: Option<Text<'a>>,
    #[serde(borrow)]
    pub config_map_ref: Option<EnvSourceRef<'a>>,
    #[serde(borrow)]
    pub secret_ref: Option<EnvSourceRef<'a>>,
}

impl EnvFromView<'_> {
    /// "ConfigMap web-env", "Secret db" (`None` for a source of another kind).
    pub fn source(&self) -> Option<String> {
        match (&self.config_map_ref, &self.secret_ref) {
            (Some(r), _) => Some(["ConfigMap ", r.name.as_deref().unwrap_or_default()].concat()),
            (None, Some(r)) => Some(["Secret ", r.name.as_deref().unwrap_or_default()].concat()),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerView<'a> {
    #[serde(borrow)]
    pub name: Option<Text<'a>>,
    pub security_context: Option<SecurityContextView>,
    #[serde(borrow)]
    pub env: Option<Vec<EnvVarView<'a>>>,
    #[serde(borrow)]
    pub env_from: Option<Vec<EnvFromView<'a>>>,
}

/// The fields of a pod spec the policy reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpecView<'a> {
    #[serde(borrow)]
    pub runtime_class_name: Option<Text<'a>>,
    #[serde(borrow)]
    pub node_name: Option<Text<'a>>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub affinity: Option<Affinity>,
    pub tolerations: Option<Vec<Toleration>>,
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    pub host_users: Option<bool>,
    pub enable_service_links: Option<bool>,
    pub share_process_namespace: Option<bool>,
    #[serde(borrow)]
    pub containers: Option<Vec<ContainerView<'a>>>,
    #[serde(borrow)]
    pub init_containers: Option<Vec<ContainerView<'a>>>,
    #[serde(borrow)]
    pub ephemeral_containers: Option<Vec<ContainerView<'a>>>,
}

/// Which list a container comes from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Container,
    Init,
    Ephemeral,
}

impl ContainerKind {
    pub fn label(self) -> &'static str {
        match self {
            ContainerKind::Container => "container",
            ContainerKind::Init => "init container",
            ContainerKind::Ephemeral => "ephemeral container",
        }
    }
}

impl<'a> PodSpecView<'a> {
    pub fn all_containers(&self) -> impl Iterator<Item = (ContainerKind, &ContainerView<'a>)> {
        fn list<'l, 'a>(
            l: &'l Option<Vec<ContainerView<'a>>>,
            k: ContainerKind,
        ) -> impl Iterator<Item = (ContainerKind, &'l ContainerView<'a>)> {
            l.iter().flatten().map(move |c| (k, c))
        }
        list(&self.containers, ContainerKind::Container)
            .chain(list(&self.init_containers, ContainerKind::Init))
            .chain(list(&self.ephemeral_containers, ContainerKind::Ephemeral))
    }

    pub fn has_read_only_root(&self) -> bool {
        self.all_containers()
            .any(|(_, c)| c.security_context.as_ref().and_then(|s| s.read_only_root_filesystem) == Some(true))
    }
}

/// A pod or pod template as found in the reviewed object.
pub struct Template<'a> {
    pub path: &'static [&'static str],
    pub annotations: Annotations<'a>,
    /// Read from a whole object, or lent by one read from the body
    /// ([`super::object::ObjectView`]).
    pub spec: Cow<'a, PodSpecView<'a>>,
}

/// The annotations of a pod or template.
#[derive(Debug, Clone, Copy)]
pub enum Annotations<'a> {
    /// Its `metadata`, if a mapping, in a whole object.
    Json(Option<&'a Value>),
    /// As read from the body (a repeated key: the last one counts).
    Read(&'a [(Cow<'a, str>, Cow<'a, str>)]),
}

impl<'a> Annotations<'a> {
    /// The value of `key`, if a string.
    pub fn get(self, key: &str) -> Option<&'a str> {
        match self {
            Annotations::Json(metadata) => metadata?.get("annotations")?.get(key)?.as_str(),
            Annotations::Read(pairs) => pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_ref()),
        }
    }
}

impl Template<'_> {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {path}: {message}")]
pub struct SubjectError {
    pub kind: &'static str,
    pub path: String,
    pub message: String,
}

/// The name of a JSON value's type, as error messages say it.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// Checks the types of the members the engine reads or patches before any of
/// them is read, so a wrongly typed object is an error naming the field
/// rather than taken for one without it: the object and every step to the pod
/// (template) are mappings; `metadata` (of the object and of the template) is
/// a mapping whose `name`, `generateName` and `namespace` are strings and
/// whose `labels` and `annotations` map to strings; `runtimeClassName` is a
/// string. `null` counts as absent, as the API server reads it.
pub fn check_shape(kind: Kind, object: &Value) -> Result<(), SubjectError> {
    let fail = |path: &[&str], expected: &str, found: &Value| SubjectError {
        kind: kind.as_str(),
        path: format!("/{}", path.join("/")),
        message: format!("must be {expected}, not a {}", json_type(found)),
    };
    if !object.is_object() {
        return Err(fail(&[], "a mapping", object));
    }
    fn join<'p>(base: &[&'p str], rest: &[&'p str]) -> Vec<&'p str> {
        base.iter().chain(rest).copied().collect()
    }
    let check_metadata = |base: &[&str], holder: &Value| -> Result<(), SubjectError> {
        let path = |rest: &[&'static str]| join(base, rest);
        let meta = match holder.get("metadata") {
            None | Some(Value::Null) => return Ok(()),
            Some(m @ Value::Object(_)) => m,
            Some(other) => return Err(fail(&path(&["metadata"]), "a mapping", other)),
        };
        for field in ["name", "generateName", "namespace"] {
            match meta.get(field) {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(other) => return Err(fail(&path(&["metadata", field]), "a string", other)),
            }
        }
        for field in ["labels", "annotations"] {
            match meta.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    if let Some((k, v)) = map.iter().find(|(_, v)| !v.is_string()) {
                        return Err(fail(&join(base, &["metadata", field, k.as_str()]), "a string", v));
                    }
                }
                Some(other) => return Err(fail(&path(&["metadata", field]), "a mapping", other)),
            }
        }
        Ok(())
    };
    check_metadata(&[], object)?;
    let base = kind.template_path();
    let mut node = object;
    for (i, step) in base.iter().enumerate() {
        match node.get(*step) {
            None | Some(Value::Null) => return Ok(()),
            Some(next @ Value::Object(_)) => node = next,
            Some(other) => return Err(fail(&base[..=i], "a mapping", other)),
        }
    }
    if !base.is_empty() {
        check_metadata(base, node)?;
    }
    let spec_path = |rest: &[&'static str]| join(&join(base, &["spec"]), rest);
    match node.get("spec") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(spec)) => match spec.get("runtimeClassName") {
            None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
            Some(other) => Err(fail(&spec_path(&["runtimeClassName"]), "a string", other)),
        },
        Some(other) => Err(fail(&spec_path(&[]), "a mapping", other)),
    }
}

/// Reads the template's typed view. Fails only on a spec whose fields have the
/// wrong JSON types; unknown fields are ignored.
pub fn read_template<'a>(kind: Kind, object: &'a Value) -> Result<Option<Template<'a>>, SubjectError> {
    let path = kind.template_path();
    let Some(template) = at(object, path) else { return Ok(None) };
    let Some(spec) = template.get("spec") else { return Ok(None) };
    let spec = PodSpecView::deserialize(spec).map_err(|e| SubjectError {
        kind: kind.as_str(),
        path: format!("/{}", path.iter().chain(&["spec"]).copied().collect::<Vec<_>>().join("/")),
        message: e.to_string(),
    })?;
    Ok(Some(Template {
        path,
        annotations: Annotations::Json(template.get("metadata").filter(|m| m.is_object())),
        spec: Cow::Owned(spec),
    }))
}

#[cfg(test)]
pub(crate) mod tests_support {
    use serde::Deserialize;

    /// The member names a derived `Deserialize` of a struct asks for.
    pub(crate) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        struct Probe(std::cell::Cell<&'static [&'static str]>);
        impl<'de> serde::Deserializer<'de> for &Probe {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.set(fields);
                Err(serde::de::Error::custom("probed"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
                unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        let probe = Probe(std::cell::Cell::new(&[]));
        let _ = T::deserialize(&probe);
        let fields = probe.0.get();
        assert!(!fields.is_empty());
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::fields_of;
    use super::*;

    fn kept<'k>(keep: &'k Keep, path: &[&str]) -> &'k Keep {
        path.iter().fold(keep, |k, step| k.member(step).unwrap_or_else(|| panic!("{path:?}: {step} is not kept")))
    }

    fn assert_keeps_view<'de, T: Deserialize<'de>>(keep: &Keep, what: &str) {
        for field in fields_of::<T>() {
            assert!(keep.member(field).is_some(), "{what}: {field} is read by the view but not kept");
        }
    }

    #[test]
    fn every_field_the_views_read_is_kept_at_every_kinds_template() {
        for kind in Kind::ALL {
            let base = kind.template_path();
            let what = format!("{} /{}", kind.as_str(), base.join("/"));
            for holder in [&[][..], base] {
                let meta = kept(&READ, &[holder, &["metadata"]].concat());
                for field in ["name", "generateName", "namespace", "labels", "annotations"] {
                    assert!(matches!(meta.member(field), Some(Keep::All)), "{what}: metadata.{field}");
                }
            }
            let spec = kept(&READ, &[base, &["spec"]].concat());
            assert_keeps_view::<PodSpecView>(spec, &what);
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                let container = spec.member(list).and_then(Keep::element).expect(list);
                assert_keeps_view::<ContainerView>(container, &format!("{what} {list}"));
                let sc = container.member("securityContext").unwrap();
                assert_keeps_view::<SecurityContextView>(sc, &format!("{what} {list} securityContext"));
                for whole in ["name", "env", "envFrom"] {
                    assert!(matches!(container.member(whole), Some(Keep::All)), "{what} {list} {whole}");
                }
            }
            // Read whole by Kubernetes' own types, and by the steering patch.
            for whole in ["affinity", "tolerations", "nodeSelector", "runtimeClassName"] {
                assert!(matches!(spec.member(whole), Some(Keep::All)), "{what} {whole}");
            }
        }
    }

    #[test]
    fn the_kept_object_is_the_whole_one_trimmed() {
        let whole = serde_json::json!({
            "kind": "Pod",
            "metadata": { "name": "p", "uid": "u", "labels": { "a": "b" }, "managedFields": [{ "manager": "m" }] },
            "spec": {
                "runtimeClassName": "sysbox-runc",
                "volumes": [{ "name": "v" }],
                "containers": [{ "name": "c", "image": "i", "securityContext": { "privileged": true, "runAsUser": 0 } }],
                "initContainers": "not a list"
            },
            "status": { "phase": "Pending" }
        });
        let read = crate::manifest::json::Kept(&READ);
        let kept: Value =
            serde::de::DeserializeSeed::deserialize(read, &mut serde_json::Deserializer::from_str(&whole.to_string()))
                .unwrap();
        assert_eq!(kept, READ.trim(&whole));
        assert_eq!(
            kept,
            serde_json::json!({
                "metadata": { "name": "p", "labels": { "a": "b" } },
                "spec": {
                    "runtimeClassName": "sysbox-runc",
                    "containers": [{ "name": "c", "securityContext": { "privileged": true } }],
                    "initContainers": "not a list"
                }
            })
        );
    }

    /// The views read their strings in place, and a wrong type reads as it
    /// would for a `String` field.
    #[test]
    fn views_lend_their_strings_and_report_wrong_types_as_strings_do() {
        let pod = serde_json::json!({"spec": {"runtimeClassName": "sysbox-runc", "containers": [
            {"name": "c", "env": [{"name": "SYSBOX_HONOR_CAPS", "value": "TRUE"}], "envFrom": [{"prefix": "P_"}]}
        ]}});
        let t = read_template(Kind::Pod, &pod).unwrap().unwrap();
        let in_place = pod["spec"]["containers"][0]["env"][0]["value"].as_str().unwrap();
        let read = t.spec.containers.as_ref().unwrap()[0].env.as_ref().unwrap()[0].value.unwrap();
        assert!(std::ptr::eq(read.0, in_place));
        assert_eq!(t.spec.runtime_class_name.as_deref(), Some("sysbox-runc"));
        for bad in [
            serde_json::json!({"spec": {"containers": [{"env": [{"name": 5}]}]}}),
            serde_json::json!({"spec": {"runtimeClassName": ["x"]}}),
            serde_json::json!({"spec": {"containers": [{"envFrom": [{"prefix": true}]}]}}),
        ] {
            let e = read_template(Kind::Pod, &bad).err().expect("a wrong type is an error");
            assert!(e.message.contains("expected a string") && !e.message.contains("borrowed"), "{}", e.message);
        }
    }
}
