//! The object under review, as the engine reads it: either a whole JSON
//! [`Value`] (`check`, `audit`, and in `serve` the rare request read whole),
//! or [`ObjectView`], the members the engine reads, read by `serve` straight
//! from the AdmissionReview's text with nothing else built.
//!
//! Every read of the object the engine makes goes through [`Object`]: its
//! name and namespace, the check of its shape, the RuntimeClass, the pod
//! template's view, where the annotation goes, the affinity the steering
//! patch extends. For a `Value` each is the reading of
//! [`super::subject`] and [`super::patch`]; for an [`ObjectView`] it is the
//! same answer, read from fields already typed.
//!
//! ## Why an `ObjectView` answers as the `Value` would
//!
//! [`ObjectView`] is only ever the result of a read that succeeded, and the
//! read fails (the caller then reads the object as a `Value`) on anything
//! whose reading could differ:
//!
//! - every member the engine reads is read with the type the engine's views
//!   or [`super::subject::check_shape`] require of it (the object and each
//!   step to the pod template a mapping, `metadata` a mapping of string
//!   `name`, `generateName`, `namespace` and mappings of strings `labels` and
//!   `annotations`, the pod spec's fields as [`PodSpecView`] types them), so
//!   a read that succeeds is one on which `check_shape` and
//!   [`super::subject::read_template`] succeed too, at every kind's template
//!   path; `null` reads as absent in both;
//! - a string the views lend ([`Text`]) must be readable in place, as it is
//!   from a `Value`: one with an escape fails the read;
//! - a mapping with serde_json's raw-value key (which its `Value` reader
//!   parses again as JSON) fails the read;
//! - a repeated member replaces the earlier one, as in a `Value`;
//! - `nodeSelector`, `affinity` and `tolerations` are built as `Value`s
//!   first, exactly as the whole reading builds them, then typed from those
//!   (and the affinity's `Value` is what the steering patch walks);
//! - every member not read is passed over by [`Skip`], which checks it as a
//!   `Value` would be checked (nesting within 128 levels, escapes, numbers in
//!   range), so the read fails on every body the whole reading refuses.
//!
//! `tests/reading.rs` holds the answers to the whole reading's, byte for
//! byte, over every object of the test data, every value at every path,
//! generated objects and hostile bodies, and counts the bodies read this way
//! rather than by the fallback (every generated object with sound values).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::patch::AnnotationSlot;
use super::subject::{
    self, ContainerView, EnvFromView, EnvSourceRef, EnvVarView, Kind, PodSpecView, SecurityContextView, SubjectError,
    Template, Text,
};
use crate::manifest::json::{is_raw_value_key, Skip};

/// The object under review.
#[derive(Debug, Clone, Copy)]
pub enum Object<'a> {
    /// The whole object.
    Json(&'a Value),
    /// The members the engine reads, read straight from the body.
    View(&'a ObjectView<'a>),
}

static NULL: Value = Value::Null;

impl<'a> Object<'a> {
    /// No object (a request without one).
    pub fn none() -> Object<'static> {
        Object::Json(&NULL)
    }

    /// The whole object, when it was read whole.
    pub fn json(self) -> Option<&'a Value> {
        match self {
            Object::Json(v) => Some(v),
            Object::View(_) => None,
        }
    }

    /// How the object names itself: `metadata.name`, else
    /// `metadata.generateName` (empty strings count as absent).
    pub fn name(self) -> Option<&'a str> {
        match self {
            Object::Json(v) => subject::object_name(v),
            Object::View(o) => {
                let meta = o.metadata.as_ref()?;
                let field = |f: &Option<Text<'a>>| f.map(|t| t.0).filter(|s| !s.is_empty());
                field(&meta.name).or_else(|| field(&meta.generate_name))
            }
        }
    }

    /// `metadata.namespace`, if not empty.
    pub fn namespace(self) -> Option<&'a str> {
        match self {
            Object::Json(v) => v.get("metadata")?.get("namespace")?.as_str(),
            Object::View(o) => o.metadata.as_ref()?.namespace.map(|t| t.0),
        }
        .filter(|s| !s.is_empty())
    }

    /// [`subject::check_shape`]: an [`ObjectView`] was only read if its shape
    /// passes it.
    pub fn check_shape(self, kind: Kind) -> Result<(), SubjectError> {
        match self {
            Object::Json(v) => subject::check_shape(kind, v),
            Object::View(_) => Ok(()),
        }
    }

    /// `spec.runtimeClassName` of the pod (template), `""` if absent.
    pub fn runtime_class(self, kind: Kind) -> &'a str {
        match self {
            Object::Json(v) => subject::at(v, kind.template_path())
                .and_then(|t| t.get("spec")?.get("runtimeClassName"))
                .and_then(Value::as_str),
            Object::View(o) => o.template(kind).and_then(|t| t.spec?.view.runtime_class_name).map(|t| t.0),
        }
        .unwrap_or("")
    }

    /// The pod (template)'s view, [`subject::read_template`].
    pub fn template(self, kind: Kind) -> Result<Option<Template<'a>>, SubjectError> {
        match self {
            Object::Json(v) => subject::read_template(kind, v),
            Object::View(o) => Ok(o.template(kind).and_then(|t| {
                Some(Template {
                    path: kind.template_path(),
                    annotations: t.annotations(),
                    spec: Cow::Borrowed(&t.spec?.view),
                })
            })),
        }
    }

    /// Where the annotation `key` goes on the pod (template).
    pub fn annotation_slot(self, kind: Kind, key: &str) -> AnnotationSlot<'a> {
        match self {
            Object::Json(v) => AnnotationSlot::of(v, kind.template_path(), key),
            Object::View(o) => match o.template(kind) {
                None => AnnotationSlot::NoHolder,
                Some(t) => match t.metadata {
                    None => AnnotationSlot::NoMetadata,
                    Some(meta) => match &meta.annotations {
                        None => AnnotationSlot::NoAnnotations,
                        Some(a) => match subject::Annotations::Read(a).get(key) {
                            Some(value) => AnnotationSlot::Present(Some(value)),
                            None => AnnotationSlot::Absent,
                        },
                    },
                },
            },
        }
    }

    /// `spec.affinity` of the pod (template), as JSON (`null` and absent
    /// are `None`).
    pub fn affinity(self, kind: Kind) -> Option<&'a Value> {
        match self {
            Object::Json(v) => subject::at(v, kind.template_path())?.get("spec")?.get("affinity"),
            Object::View(o) => o.template(kind)?.spec?.affinity.as_ref(),
        }
        .filter(|a| !a.is_null())
    }
}

/// The members of an object the engine reads, of every kind, read straight
/// from JSON text (see the module's documentation for when a read fails).
#[derive(Debug, Default)]
pub struct ObjectView<'a> {
    pub metadata: Option<MetaView<'a>>,
    /// A PodTemplate's (boxed, as the other kinds' are: a view is moved
    /// whole through each layer of the request as it is read).
    pub template: Option<Box<TemplateView<'a>>>,
    /// A Pod's spec, or a workload's (with its template).
    pub spec: Option<SpecView<'a>>,
}

impl<'a> ObjectView<'a> {
    /// The pod, or the pod template at `kind`'s [`Kind::template_path`].
    fn template(&self, kind: Kind) -> Option<PodRef<'_, 'a>> {
        let spec = self.spec.as_ref();
        match kind {
            Kind::Pod => Some(PodRef { metadata: self.metadata.as_ref(), spec: spec.map(|s| &s.pod) }),
            Kind::PodTemplate => self.template.as_deref().map(PodRef::of),
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::ReplicaSet | Kind::Job => {
                spec?.template.as_deref().map(PodRef::of)
            }
            Kind::CronJob => spec?.job_template.as_ref()?.spec.as_ref()?.template.as_ref().map(PodRef::of),
        }
    }
}

/// A pod or pod template within an [`ObjectView`].
struct PodRef<'r, 'a> {
    metadata: Option<&'r MetaView<'a>>,
    spec: Option<&'r PodSpecRead<'a>>,
}

impl<'r, 'a> PodRef<'r, 'a> {
    fn of(t: &'r TemplateView<'a>) -> Self {
        PodRef { metadata: t.metadata.as_ref(), spec: t.spec.as_ref() }
    }

    fn annotations(&self) -> subject::Annotations<'r> {
        subject::Annotations::Read(self.metadata.and_then(|m| m.annotations.as_deref()).unwrap_or(&[]))
    }
}

/// `metadata`, of the object or of a pod template.
#[derive(Debug, Default)]
pub struct MetaView<'a> {
    pub name: Option<Text<'a>>,
    pub generate_name: Option<Text<'a>>,
    pub namespace: Option<Text<'a>>,
    /// In the order written; [`subject::Annotations::get`] takes the last of
    /// a repeated key.
    pub annotations: Option<Vec<(Cow<'a, str>, Cow<'a, str>)>>,
}

/// A pod spec's [`PodSpecView`], and its affinity as JSON for the steering
/// patch.
#[derive(Debug, Default)]
pub struct PodSpecRead<'a> {
    pub view: PodSpecView<'a>,
    pub affinity: Option<Value>,
}

/// A pod template: `metadata` and `spec`.
#[derive(Debug, Default)]
pub struct TemplateView<'a> {
    pub metadata: Option<MetaView<'a>>,
    pub spec: Option<PodSpecRead<'a>>,
}

/// `spec` of the object: a Pod's spec, or a workload's, whose template is
/// `template` (or, for a CronJob, `jobTemplate.spec.template`).
#[derive(Debug, Default)]
pub struct SpecView<'a> {
    pub pod: PodSpecRead<'a>,
    pub template: Option<Box<TemplateView<'a>>>,
    pub job_template: Option<Box<JobTemplateView<'a>>>,
}

/// A CronJob's `jobTemplate`, and its `spec`.
#[derive(Debug, Default)]
pub struct JobTemplateView<'a> {
    pub spec: Option<JobSpecView<'a>>,
}

#[derive(Debug, Default)]
pub struct JobSpecView<'a> {
    pub template: Option<TemplateView<'a>>,
}

// ---------------------------------------------------------------------------
// Reading: each view lists the members it reads; a mapping is read member by
// member and every other member is passed over by `Skip`.

/// A view read from a JSON mapping member by member.
trait Members<'de>: Default {
    /// For errors only (a failed read is never shown).
    const WHAT: &'static str;
    /// The member names read, in the order [`Members::read`] takes their index.
    const NAMES: &'static [&'static str];
    /// Reads the member `NAMES[index]`.
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error>;
}

/// Reads `T` from a mapping (a view is never read from anything else).
struct MembersOf<T>(PhantomData<T>);

impl<'de, T: Members<'de>> Visitor<'de> for MembersOf<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::WHAT)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut view = T::default();
        while let Some(key) = map.next_key_seed(KeyOf(T::NAMES))? {
            match key {
                Some(index) => view.read(index, &mut map)?,
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(view)
    }
}

/// A view, as a member's value: `Option<Body<T>>` reads `null` as absent.
struct Body<T>(T);

impl<'de, T: Members<'de>> Deserialize<'de> for Body<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MembersOf(PhantomData)).map(Body)
    }
}

fn views<T>(list: Option<Vec<Body<T>>>) -> Option<Vec<T>> {
    list.map(|l| l.into_iter().map(|b| b.0).collect())
}

/// Classifies a member name against a view's names without copying it; the
/// raw-value key fails the read.
struct KeyOf(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyOf {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyOf {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        if is_raw_value_key(key) {
            return Err(E::custom("a raw value is read whole"));
        }
        Ok(self.0.iter().position(|n| *n == key))
    }
}

/// A member read as JSON, as the whole reading builds it.
fn json<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Value, A::Error> {
    map.next_value::<Value>()
}

/// A JSON value typed as the views type it (`T::deserialize(&Value)`, what
/// the whole reading does to the same member).
fn typed<'v, T: Deserialize<'v>, E: serde::de::Error>(value: &'v Value) -> Result<T, E> {
    T::deserialize(value).map_err(E::custom)
}

impl<'de> Members<'de> for ObjectView<'de> {
    const WHAT: &'static str = "an object";
    const NAMES: &'static [&'static str] = &["metadata", "template", "spec"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.metadata = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
            1 => self.template = map.next_value::<Option<Body<_>>>()?.map(|b| Box::new(b.0)),
            _ => self.spec = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ObjectView<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Body::deserialize(d).map(|b| b.0)
    }
}

impl<'de> Members<'de> for MetaView<'de> {
    const WHAT: &'static str = "metadata";
    const NAMES: &'static [&'static str] = &["name", "generateName", "namespace", "labels", "annotations"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.name = map.next_value()?,
            1 => self.generate_name = map.next_value()?,
            2 => self.namespace = map.next_value()?,
            3 => map.next_value::<Option<Strings<false>>>().map(drop)?,
            _ => self.annotations = map.next_value::<Option<Strings<true>>>()?.map(|s| s.0),
        }
        Ok(())
    }
}

/// A mapping of strings (`labels`, `annotations`), its pairs kept when
/// `KEEP`; any other value fails the read, as it fails `check_shape`.
struct Strings<'a, const KEEP: bool>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de, const KEEP: bool> Deserialize<'de> for Strings<'de, KEEP> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StringsOf::<KEEP>)
    }
}

struct StringsOf<const KEEP: bool>;

impl<'de, const KEEP: bool> Visitor<'de> for StringsOf<KEEP> {
    type Value = Strings<'de, KEEP>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        if KEEP {
            while let Some(key) = map.next_key_seed(AnyStr)? {
                if is_raw_value_key(&key) {
                    return Err(A::Error::custom("a raw value is read whole"));
                }
                pairs.push((key, map.next_value_seed(AnyStr)?));
            }
        } else {
            while map.next_key_seed(KeyOf(&[]))?.is_some() {
                map.next_value_seed(AnyStr)?;
            }
        }
        Ok(Strings(pairs))
    }
}

/// A string, lent when it can be, copied when it holds an escape.
struct AnyStr;

impl<'de> DeserializeSeed<'de> for AnyStr {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AnyStr {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

impl<'de> Members<'de> for TemplateView<'de> {
    const WHAT: &'static str = "a pod template";
    const NAMES: &'static [&'static str] = &["metadata", "spec"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.metadata = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
            _ => self.spec = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for JobTemplateView<'de> {
    const WHAT: &'static str = "a job template";
    const NAMES: &'static [&'static str] = &["spec"];
    fn read<A: MapAccess<'de>>(&mut self, _: usize, map: &mut A) -> Result<(), A::Error> {
        self.spec = map.next_value::<Option<Body<_>>>()?.map(|b| b.0);
        Ok(())
    }
}

impl<'de> Members<'de> for JobSpecView<'de> {
    const WHAT: &'static str = "a job spec";
    const NAMES: &'static [&'static str] = &["template"];
    fn read<A: MapAccess<'de>>(&mut self, _: usize, map: &mut A) -> Result<(), A::Error> {
        self.template = map.next_value::<Option<Body<_>>>()?.map(|b| b.0);
        Ok(())
    }
}

/// The members of a pod spec [`PodSpecRead`] reads, in its index order, then
/// `extra` ones.
macro_rules! pod_spec_names {
    ($($extra:expr),*) => {
        &[
            "runtimeClassName",
            "nodeName",
            "nodeSelector",
            "affinity",
            "tolerations",
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "hostUsers",
            "enableServiceLinks",
            "shareProcessNamespace",
            "containers",
            "initContainers",
            "ephemeralContainers",
            $($extra),*
        ]
    };
}

const POD_SPEC: &[&str] = pod_spec_names![];

impl<'de> PodSpecRead<'de> {
    fn read_member<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        let v = &mut self.view;
        match index {
            0 => v.runtime_class_name = map.next_value()?,
            1 => v.node_name = map.next_value()?,
            2 => v.node_selector = typed(&json(map)?)?,
            3 => {
                let affinity = json(map)?;
                v.affinity = typed(&affinity)?;
                self.affinity = Some(affinity);
            }
            4 => v.tolerations = typed(&json(map)?)?,
            5 => v.host_network = map.next_value()?,
            6 => v.host_pid = map.next_value()?,
            7 => v.host_ipc = map.next_value()?,
            8 => v.host_users = map.next_value()?,
            9 => v.enable_service_links = map.next_value()?,
            10 => v.share_process_namespace = map.next_value()?,
            11 => v.containers = views(map.next_value()?),
            12 => v.init_containers = views(map.next_value()?),
            _ => v.ephemeral_containers = views(map.next_value()?),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for PodSpecRead<'de> {
    const WHAT: &'static str = "a pod spec";
    const NAMES: &'static [&'static str] = POD_SPEC;
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        self.read_member(index, map)
    }
}

/// A Pod's spec fields, then a workload's template members.
const SPEC: &[&str] = pod_spec_names!["template", "jobTemplate"];

impl<'de> Members<'de> for SpecView<'de> {
    const WHAT: &'static str = "a spec";
    const NAMES: &'static [&'static str] = SPEC;
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index.checked_sub(POD_SPEC.len()) {
            None => self.pod.read_member(index, map)?,
            Some(0) => self.template = map.next_value::<Option<Body<_>>>()?.map(|b| Box::new(b.0)),
            Some(_) => self.job_template = map.next_value::<Option<Body<_>>>()?.map(|b| Box::new(b.0)),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for ContainerView<'de> {
    const WHAT: &'static str = "a container";
    const NAMES: &'static [&'static str] = &["name", "securityContext", "env", "envFrom"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.name = map.next_value()?,
            1 => self.security_context = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
            2 => self.env = views(map.next_value()?),
            _ => self.env_from = views(map.next_value()?),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for SecurityContextView {
    const WHAT: &'static str = "a security context";
    const NAMES: &'static [&'static str] = &["readOnlyRootFilesystem", "privileged"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.read_only_root_filesystem = map.next_value()?,
            _ => self.privileged = map.next_value()?,
        }
        Ok(())
    }
}

impl<'de> Members<'de> for EnvVarView<'de> {
    const WHAT: &'static str = "an environment variable";
    const NAMES: &'static [&'static str] = &["name", "value", "valueFrom"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.name = map.next_value()?,
            1 => self.value = map.next_value()?,
            _ => self.value_from = map.next_value::<Option<Present>>()?.map(|_| serde::de::IgnoredAny),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for EnvFromView<'de> {
    const WHAT: &'static str = "an environment source";
    const NAMES: &'static [&'static str] = &["prefix", "configMapRef", "secretRef"];
    fn read<A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.prefix = map.next_value()?,
            1 => self.config_map_ref = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
            _ => self.secret_ref = map.next_value::<Option<Body<_>>>()?.map(|b| b.0),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for EnvSourceRef<'de> {
    const WHAT: &'static str = "a reference";
    const NAMES: &'static [&'static str] = &["name"];
    fn read<A: MapAccess<'de>>(&mut self, _: usize, map: &mut A) -> Result<(), A::Error> {
        self.name = map.next_value()?;
        Ok(())
    }
}

/// A value that is there (not `null`), checked as [`Skip`] checks it; a
/// mapping with the raw-value key fails the read (as the first member, its
/// `Value` could be `null`).
struct Present;

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PresentVisitor)
    }
}

struct PresentVisitor;

impl<'de> Visitor<'de> for PresentVisitor {
    type Value = Present;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Present, E> {
        Ok(Present)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Present, E> {
        Ok(Present)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Present, E> {
        Ok(Present)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Present, E> {
        Ok(Present)
    }
    fn visit_str<E>(self, _: &str) -> Result<Present, E> {
        Ok(Present)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Present, A::Error> {
        Skip.visit_seq(seq).map(|()| Present)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Present, A::Error> {
        while map.next_key_seed(KeyOf(&[]))?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(Present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each view reads every member its derived reading (over a `Value`) reads.
    #[test]
    fn the_body_views_read_every_member_the_value_views_read() {
        fn same<'de, V: Deserialize<'de>>(names: &[&str], what: &str) {
            let mut derived = subject::tests_support::fields_of::<V>().to_vec();
            let mut read = names.to_vec();
            derived.sort_unstable();
            read.sort_unstable();
            assert_eq!(read, derived, "{what}");
        }
        same::<PodSpecView>(POD_SPEC, "pod spec");
        assert_eq!(&SPEC[..POD_SPEC.len()], POD_SPEC);
        same::<ContainerView>(<ContainerView as Members>::NAMES, "container");
        same::<SecurityContextView>(<SecurityContextView as Members>::NAMES, "security context");
        same::<EnvVarView>(<EnvVarView as Members>::NAMES, "env");
        same::<EnvFromView>(<EnvFromView as Members>::NAMES, "envFrom");
        same::<EnvSourceRef>(<EnvSourceRef as Members>::NAMES, "env source");
    }

    fn read(text: &str) -> Result<ObjectView<'_>, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn what_the_whole_reading_reads_differently_fails_the_read() {
        for text in [
            // an escape in a lent string
            r#"{"spec":{"runtimeClassName":"sysbox\u002drunc"}}"#,
            // the raw-value key, at any depth the view reads
            r#"{"metadata":{"$serde_json::private::RawValue":"{}"}}"#,
            r#"{"metadata":{"labels":{"$serde_json::private::RawValue":"{}"}}}"#,
            r#"{"spec":{"containers":[{"env":[{"name":"A","valueFrom":{"$serde_json::private::RawValue":"null"}}]}]}}"#,
            // wrong types
            r#"{"metadata":{"labels":{"a":null}}}"#,
            r#"{"metadata":{"annotations":{"a":1}}}"#,
            r#"{"metadata":{"name":5}}"#,
            r#"{"spec":{"template":[]}}"#,
            r#"{"spec":{"hostNetwork":"true"}}"#,
            r#"{"spec":{"affinity":{"nodeAffinity":5}}}"#,
            // too deep where nothing is read
            &format!(r#"{{"status":{}1{}}}"#, "[".repeat(200), "]".repeat(200)),
            // a number out of range where nothing is read
            r#"{"status":{"n":1e999}}"#,
            "[]",
        ] {
            assert!(read(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_read_object_answers_as_the_whole_one() {
        let text = r#"{
            "metadata": {"name": "", "generateName": "web-", "namespace": "ci",
                         "annotations": {"a": "1", "k": "x\"y", "k": "last"}, "labels": {"l": "v"}},
            "spec": {"runtimeClassName": "sysbox-runc", "affinity": {"nodeAffinity": null},
                     "containers": [{"name": "c", "securityContext": {"readOnlyRootFilesystem": true},
                                     "env": [{"name": "A", "valueFrom": {"fieldRef": {}}}]}],
                     "volumes": [{"name": "v"}]},
            "status": {"phase": "Pending"}
        }"#;
        let whole: Value = serde_json::from_str(text).unwrap();
        let view = read(text).unwrap();
        let (j, v) = (Object::Json(&whole), Object::View(&view));
        assert_eq!((v.name(), v.namespace()), (j.name(), j.namespace()));
        assert_eq!((v.name(), v.namespace()), (Some("web-"), Some("ci")));
        assert_eq!(v.runtime_class(Kind::Pod), j.runtime_class(Kind::Pod));
        assert_eq!(v.runtime_class(Kind::Deployment), "");
        for key in ["a", "k", "none"] {
            assert_eq!(v.annotation_slot(Kind::Pod, key), j.annotation_slot(Kind::Pod, key), "{key}");
        }
        assert_eq!(v.annotation_slot(Kind::Pod, "k"), AnnotationSlot::Present(Some("last")));
        assert_eq!(v.affinity(Kind::Pod), j.affinity(Kind::Pod));
        assert_eq!(v.affinity(Kind::Pod), Some(&serde_json::json!({"nodeAffinity": null})));
        let (vt, jt) = (v.template(Kind::Pod).unwrap().unwrap(), j.template(Kind::Pod).unwrap().unwrap());
        assert_eq!(format!("{:?}", vt.spec), format!("{:?}", jt.spec));
        assert_eq!(vt.annotation("k"), jt.annotation("k"));
        assert!(v.template(Kind::Deployment).unwrap().is_none());
    }
}
