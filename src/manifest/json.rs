//! JSON documents, with the items of a `List` read one at a time: a first
//! pass that skips everything but the top-level `kind` (kubectl prints it
//! after the items), then, for a `List`, a pass that hands each element of
//! `items` to the caller as soon as it is read. serde_json bounds nesting at
//! 128 levels on its own.

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
                map.next_value_seed(Each { each: &mut *self.each })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Each<'a> {
    each: &'a mut dyn FnMut(Value, Option<usize>),
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
        while let Some(item) = seq.next_element::<Value>()? {
            (self.each)(item, Some(i));
            i += 1;
        }
        Ok(())
    }
}

/// A top-level object read from a stream, its `items` (when an array)
/// handed to `each` one at a time and left out of the object. For readers
/// that cannot look ahead for the `kind`: the caller checks afterwards that
/// an object whose items were handed out is a `List`.
pub struct TopLevel<'a> {
    pub each: &'a mut dyn FnMut(Value, usize) -> Result<(), String>,
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
