//! JSON documents, with the items of a `List` read one at a time: a first
//! pass that skips everything but the top-level `kind` (kubectl prints it
//! after the items), then, for a `List`, a pass that hands each element of
//! `items` to the caller as soon as it is read. serde_json bounds nesting at
//! 128 levels on its own.
//!
//! Also the reading of a value trimmed as it is read ([`Keep`], [`Kept`]):
//! only the members named are built, the rest is checked exactly as a
//! `Value` would be and passed over ([`Skip`]).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Parses a whole JSON document.
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str(text)
}

/// Calls `each(object, item)` for the items of a `List` one at a time, or
/// once with the whole value (`item` `None`). Returns whether it was a `List`.
pub fn for_each_object(text: &str, each: &mut dyn FnMut(Value, Option<usize>)) -> serde_json::Result<Option<bool>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let head = HeadKind.deserialize(&mut de)?;
    de.end()?;
    let is_list = matches!(&head, Head::Object { kind: Some(k), items: true } if k.ends_with("List"));
    if !is_list {
        let value: Value = serde_json::from_str(text)?;
        if value.is_null() {
            return Ok(None);
        }
        each(value, None);
        return Ok(Some(false));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    ListItems { each }.deserialize(&mut de)?;
    de.end()?;
    Ok(Some(true))
}

enum Head {
    Object { kind: Option<String>, items: bool },
    Other,
}

/// Skips a document, keeping the top-level `kind` and whether `items` is an array.
struct HeadKind;

impl<'de> DeserializeSeed<'de> for HeadKind {
    type Value = Head;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Head, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadKind {
    type Value = Head;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON document")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let (mut kind, mut items) = (None, false);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "kind" => kind = map.next_value::<Value>()?.as_str().map(str::to_owned),
                "items" => items = map.next_value::<IsArray>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Head::Object { kind, items })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Head, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Head::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Head, E> {
        Ok(Head::Other)
    }
    fn visit_unit<E>(self) -> Result<Head, E> {
        Ok(Head::Other)
    }
}

/// Whether a value is an array, without keeping it.
struct IsArray(bool);

impl<'de> serde::Deserialize<'de> for IsArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsArray;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IsArray, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsArray(true))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IsArray, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsArray(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_unit<E>(self) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// Hands each element of the top-level `items` to `each`, skipping the rest.
pub struct ListItems<'a> {
    pub each: &'a mut dyn FnMut(Value, Option<usize>),
}

impl<'de> DeserializeSeed<'de> for ListItems<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListItems<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a List")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                map.next_value_seed(Each { each: &mut *self.each, skip_status_of: &[] })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Each<'a> {
    each: &'a mut dyn FnMut(Value, Option<usize>),
    /// Kinds whose items are read without their `status` ([`Item`]).
    skip_status_of: &'a [&'a str],
}

impl<'de> DeserializeSeed<'de> for Each<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Each<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the items of a List")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(item) = seq.next_element_seed(Item { skip_status_of: self.skip_status_of })? {
            (self.each)(item, Some(i));
            i += 1;
        }
        Ok(())
    }
}

/// The key serde_json's own `Value` reader gives a special meaning to (a
/// raw value: its string is parsed as JSON), kept so that an item reads the
/// same as through `Value`.
const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

/// Whether `key` is [`RAW_VALUE_KEY`]: a reader that does not build
/// `Value`s refuses a mapping with it rather than read it differently.
pub fn is_raw_value_key(key: &str) -> bool {
    key == RAW_VALUE_KEY
}

/// The scalar visits of a visitor that builds [`Value`]s, as `Value`'s own
/// deserialiser makes them (a non-finite float cannot occur in JSON input).
macro_rules! scalars_as_values {
    () => {
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}

/// One item of a `List`, read as a `Value` is, except that the `status` of an
/// object whose `kind` (given before it, as kubectl prints it) is one of
/// `skip_status_of` is parsed and passed over without being built: it is
/// checked as JSON within the same nesting bound ([`Skip`]), but costs no
/// memory. A `status` before the `kind` is read and kept as any field.
struct Item<'a> {
    skip_status_of: &'a [&'a str],
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.skip_status_of.is_empty() {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    scalars_as_values!();
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        // Whether `kind` named a trimmed kind, and whether a `status` was passed over.
        let (mut trimmed, mut skipped) = (false, false);
        while let Some(key) = map.next_key::<String>()? {
            if fields.is_empty() && !skipped && key == RAW_VALUE_KEY {
                let text: String = map.next_value()?;
                return serde_json::from_str(&text).map_err(serde::de::Error::custom);
            }
            if trimmed && key == "status" {
                map.next_value_seed(Skip)?;
                skipped = true;
                continue;
            }
            let value: Value = map.next_value()?;
            if key == "kind" {
                if skipped {
                    // The `status` passed over may belong to another kind.
                    return Err(serde::de::Error::custom("duplicate key \"kind\""));
                }
                trimmed = value.as_str().is_some_and(|k| self.skip_status_of.contains(&k));
            }
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// Parses one JSON value and keeps nothing of it. Unlike `IgnoredAny`, which
/// serde_json skips without a nesting bound and without checking what a
/// `Value` checks (UTF-8 in strings, surrogate escapes, numbers out of
/// range), it goes through `deserialize_any`, so nesting stays bounded at 128
/// levels and every error is the one a `Value` would give, at the same place.
/// Strings are not copied (unless they hold escapes, into serde_json's own
/// scratch buffer) and nothing is allocated.
pub struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Skip.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while let Some(key) = map.next_key_seed(MemberKey(&[]))? {
            if first && matches!(key, Member::Raw) {
                return reparse_raw(&mut map, |de| Skip.deserialize(de));
            }
            first = false;
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// Which parts of a JSON value to build ([`Kept`]); everything else is
/// parsed and passed over as [`Skip`] does. Where a value does not have the
/// shape a `Keep` expects (a list where a mapping was expected, a string
/// where a list was), it is kept whole, so a reader of the kept value sees
/// the same wrong type it would have seen in the whole value.
#[derive(Debug)]
pub enum Keep {
    /// The whole value.
    All,
    /// Of a mapping, these members, each as its own `Keep` says.
    Members(&'static [(&'static str, Keep)]),
    /// Of a list, each element as this `Keep` says.
    Each(&'static Keep),
}

impl Keep {
    /// The `Keep` of a member of a mapping (`None`: not kept).
    pub fn member(&self, key: &str) -> Option<&'static Keep> {
        match self {
            Keep::All => Some(&Keep::All),
            Keep::Members(members) => members.iter().find(|(k, _)| *k == key).map(|(_, keep)| keep),
            Keep::Each(_) => None,
        }
    }

    /// The `Keep` of the elements of a list.
    pub fn element(&self) -> Option<&'static Keep> {
        match self {
            Keep::All => Some(&Keep::All),
            Keep::Each(keep) => Some(keep),
            Keep::Members(_) => None,
        }
    }

    /// What of `value` this keeps, from a whole `Value`: the value [`Kept`]
    /// reads from the same text.
    pub fn trim(&self, value: &Value) -> Value {
        match (self, value) {
            (Keep::Members(_), Value::Object(map)) => {
                Value::Object(map.iter().filter_map(|(k, v)| Some((k.clone(), self.member(k)?.trim(v)))).collect())
            }
            (Keep::Each(keep), Value::Array(items)) => Value::Array(items.iter().map(|v| keep.trim(v)).collect()),
            _ => value.clone(),
        }
    }
}

/// Reads a JSON value keeping only what its [`Keep`] says, as it is read:
/// the result equals `keep.trim(&value)` of the whole `Value`, and every
/// error (syntax, nesting deeper than 128 levels anywhere, bad UTF-8,
/// numbers out of range) is the one reading the whole `Value` gives, at the
/// same place, because every byte goes through the same `deserialize_any`
/// calls a `Value` makes. What is passed over costs no memory.
#[derive(Clone, Copy)]
pub struct Kept(pub &'static Keep);

impl<'de> DeserializeSeed<'de> for Kept {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Keep::All => serde::Deserialize::deserialize(d),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Kept {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    scalars_as_values!();
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Some(keep) = self.0.element() else {
            return serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq));
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Kept(keep))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Keep::Members(members) = self.0 else {
            return serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map));
        };
        let mut fields = serde_json::Map::new();
        let mut first = true;
        while let Some(key) = map.next_key_seed(MemberKey(members))? {
            match key {
                Member::Raw if first => return reparse_raw(&mut map, |de| self.deserialize(de)),
                Member::Kept(name, keep) => {
                    // A repeated member replaces the earlier one, as in a `Value`.
                    fields.insert(name.to_owned(), map.next_value_seed(Kept(keep))?);
                }
                Member::Raw | Member::Other => map.next_value_seed(Skip)?,
            }
            first = false;
        }
        Ok(Value::Object(fields))
    }
}

/// A member name, classified without copying it.
enum Member {
    /// One of the kept members: its name and what of it to keep.
    Kept(&'static str, &'static Keep),
    /// [`RAW_VALUE_KEY`].
    Raw,
    Other,
}

struct MemberKey(&'static [(&'static str, Keep)]);

impl<'de> DeserializeSeed<'de> for MemberKey {
    type Value = Member;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberKey {
    type Value = Member;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Member, E> {
        Ok(match self.0.iter().find(|(k, _)| *k == key) {
            Some((name, keep)) => Member::Kept(name, keep),
            None if key == RAW_VALUE_KEY => Member::Raw,
            None => Member::Other,
        })
    }
}

/// A mapping whose first key is [`RAW_VALUE_KEY`]: serde_json's `Value`
/// reader takes its value as a string of JSON and parses that instead of
/// the mapping; this does the same with `seed`, with the same errors.
fn reparse_raw<'de, A: MapAccess<'de>, T>(
    map: &mut A,
    read: impl for<'a> FnOnce(&mut serde_json::Deserializer<serde_json::de::StrRead<'a>>) -> serde_json::Result<T>,
) -> Result<T, A::Error> {
    let text = map.next_value_seed(RawText)?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let value = read(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(serde::de::Error::custom)
}

/// The string of a raw value, read as serde_json reads it.
struct RawText;

impl<'de> DeserializeSeed<'de> for RawText {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for RawText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("raw value")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
}

/// A top-level object read from a stream, its `items` (when an array)
/// handed to `each` one at a time and left out of the object. For readers
/// that cannot look ahead for the `kind`: the caller checks afterwards that
/// an object whose items were handed out is a `List`.
pub struct TopLevel<'a> {
    pub each: &'a mut dyn FnMut(Value, usize) -> Result<(), String>,
    /// Items of these kinds are handed out without their `status`, which is
    /// passed over as it is read, never built ([`Item`]).
    pub skip_status_of: &'a [&'a str],
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    /// The object without `items`, and how many items were handed out.
    type Value = (serde_json::Map<String, Value>, Option<usize>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = (serde_json::Map<String, Value>, Option<usize>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object or List")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut count = None;
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) || (key == "items" && count.is_some()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            if key == "items" {
                let mut n = 0;
                let mut failed = None;
                map.next_value_seed(Each {
                    skip_status_of: self.skip_status_of,
                    each: &mut |item, _| {
                        if failed.is_none() {
                            if let Err(e) = (self.each)(item, n) {
                                failed = Some(e);
                            }
                        }
                        n += 1;
                    },
                })?;
                if let Some(e) = failed {
                    return Err(serde::de::Error::custom(e));
                }
                count = Some(n);
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        Ok((fields, count))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn objects(text: &str) -> (Option<bool>, Vec<(Value, Option<usize>)>) {
        let mut seen = Vec::new();
        let list = for_each_object(text, &mut |v, i| seen.push((v, i))).unwrap();
        (list, seen)
    }

    #[test]
    fn lists_with_kind_after_items_are_read_item_by_item() {
        let (list, seen) = objects(r#"{"apiVersion":"v1","items":[{"kind":"Pod"},{"kind":"Node"}],"kind":"List"}"#);
        assert_eq!(list, Some(true));
        assert_eq!(seen, [(json!({"kind": "Pod"}), Some(0)), (json!({"kind": "Node"}), Some(1))]);
    }

    /// Reads `text` (an object with `items`) as the snapshot reader does, trimming Nodes.
    fn trimmed_items(text: &str) -> Result<Vec<Value>, serde_json::Error> {
        let mut seen = Vec::new();
        let mut each = |v: Value, _: usize| {
            seen.push(v);
            Ok(())
        };
        let mut de = serde_json::Deserializer::from_str(text);
        TopLevel { each: &mut each, skip_status_of: &["Node"] }.deserialize(&mut de)?;
        de.end()?;
        Ok(seen)
    }

    #[test]
    fn node_status_is_passed_over_as_it_is_read() {
        let items = [
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a"}, "spec": {}, "status": {"images": [{"names": ["x"], "sizeBytes": 1}]}}),
            json!({"kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running"}}),
            json!(5),
            json!("text"),
            json!(null),
            json!([1, {"status": 2}]),
            json!({}),
            json!({"kind": 7, "status": 1.5}),
        ];
        let text = json!({"kind": "List", "items": items}).to_string();
        let mut expected: Vec<Value> = items.to_vec();
        expected[0].as_object_mut().unwrap().remove("status");
        assert_eq!(trimmed_items(&text).unwrap(), expected);
        // Without kinds to trim, every item reads as a `Value`.
        let mut seen = Vec::new();
        let mut each = |v: Value, _: usize| {
            seen.push(v);
            Ok(())
        };
        TopLevel { each: &mut each, skip_status_of: &[] }
            .deserialize(&mut serde_json::Deserializer::from_str(&text))
            .unwrap();
        assert_eq!(seen, items);
        // A `status` before the `kind` is kept (`json!` sorts keys, so the text is written out).
        let before = r#"{"kind":"List","items":[{"status":{"kept":true},"kind":"Node"}]}"#;
        assert_eq!(trimmed_items(before).unwrap(), [json!({"status": {"kept": true}, "kind": "Node"})]);
    }

    #[test]
    fn a_passed_over_status_is_still_checked() {
        let item = |status: &str| format!(r#"{{"kind":"List","items":[{{"kind":"Node","status":{status}}}]}}"#);
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (status, error) in [
            (deep.as_str(), "recursion limit exceeded"),
            ("[1e999]", "number out of range"),
            (r#"{"a":"\q"}"#, "invalid escape"),
            ("{\"a\" 1}", "expected `:`"),
            ("[1,]", "trailing comma"),
            // serde_json's `Value` reads a mapping whose first key is its raw-value token as the JSON of its string.
            (r#"{"$serde_json::private::RawValue":"[1,"}"#, "EOF while parsing"),
            (r#"{"$serde_json::private::RawValue":5}"#, "expected raw value"),
            (r#"{"$serde_json::private::RawValue":"1","b":2}"#, "trailing comma"),
        ] {
            let (trimmed, whole) =
                (trimmed_items(&item(status)).unwrap_err(), serde_json::from_str::<Value>(&item(status)).unwrap_err());
            assert!(trimmed.to_string().contains(error), "{status}: {trimmed}");
            assert_eq!(trimmed.to_string(), whole.to_string(), "{status}");
        }
        // Within the bound, a deep status is passed over.
        let ok = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        assert_eq!(trimmed_items(&item(&ok)).unwrap(), [json!({"kind": "Node"})]);
        // A second `kind` after a passed-over status is refused: the status may have been another kind's.
        let twice = r#"{"kind":"List","items":[{"kind":"Node","status":{},"kind":"Pod"}]}"#;
        assert!(trimmed_items(twice).unwrap_err().to_string().contains("duplicate key \"kind\""));
    }

    #[test]
    fn other_documents_come_whole() {
        let text = r#"{"kind":"Foo","items":[1,2]}"#;
        assert_eq!(objects(text), (Some(false), vec![(json!({"kind": "Foo", "items": [1, 2]}), None)]));
        assert_eq!(objects("null"), (None, vec![]));
        assert_eq!(objects(r#""hello""#).1, [(json!("hello"), None)]);
        assert!(for_each_object("{\"kind\":\"List\",\"items\":[}", &mut |_, _| {}).is_err());
        assert!(for_each_object(&"[".repeat(1_000_000), &mut |_, _| {}).is_err());
    }
}
