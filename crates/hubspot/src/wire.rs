//! Wire-encoding quirks shared by HubSpot's JSON: ids that are strings in v3 and numbers in v4
//! and webhooks (hubspot-api.md §0), property values that should be strings but sometimes are
//! numbers or booleans, and `context` maps whose values are lists or single strings.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serializer};

/// A value HubSpot sends as a string, a number, a bool or null.
///
/// Deserialized by hand rather than as an untagged enum: an untagged enum buffers every
/// value before trying the variants (two allocations per string), and a page of records
/// is mostly such values.
enum Scalar {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl de::Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, a number or a boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::UInt(v), Scalar::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Self::Str(s) => s,
            Self::Int(n) => n.to_string(),
            Self::UInt(n) => n.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

/// Deserializes an id sent as `"512"` or `512`.
pub(crate) fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let raw = Scalar::deserialize(deserializer)?.into_string();
    raw.trim()
        .parse()
        .map_err(|_| de::Error::custom(format_args!("invalid HubSpot id {raw:?}")))
}

/// Deserializes an optional id (`null`, absent, `"512"` or `512`).
pub(crate) fn opt_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Option::<Scalar>::deserialize(deserializer)? {
        None => Ok(None),
        Some(s) => {
            let raw = s.into_string();
            if raw.is_empty() {
                return Ok(None);
            }
            raw.parse()
                .map(Some)
                .map_err(|_| de::Error::custom("invalid HubSpot id"))
        }
    }
}

/// Serializes an id the v3 way: as a string of digits.
pub(crate) fn id_as_string<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// Deserializes `properties`: name → string or null, coercing numbers and booleans; a
/// name sent twice keeps its last value.
///
/// The pairs are gathered into a vector and the map is built from it in one go (sorted,
/// then filled node by node), not through an intermediate map of [`Scalar`]s: a page of
/// records is mostly property values, and the map of each record was the largest share
/// of decoding.
pub(crate) fn property_values<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    deserializer.deserialize_option(PropertyValues)
}

/// [`property_values`]' visitor: `null` or an object of scalars.
struct PropertyValues;

impl<'de> de::Visitor<'de> for PropertyValues {
    type Value = BTreeMap<String, Option<String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of property values, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(32));
        while let Some((name, value)) = map.next_entry::<String, Option<Scalar>>()? {
            pairs.push((name, value.map(Scalar::into_string)));
        }
        Ok(pairs.into_iter().collect())
    }
}

/// Deserializes an error `context`: name → list of strings (a single string is a list of one).
pub(crate) fn lenient_context<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Option<Scalar>>),
        One(Option<Scalar>),
    }
    let raw = Option::<BTreeMap<String, OneOrMany>>::deserialize(deserializer)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let values = match v {
                OneOrMany::Many(items) => items
                    .into_iter()
                    .flatten()
                    .map(Scalar::into_string)
                    .collect(),
                OneOrMany::One(item) => item.into_iter().map(Scalar::into_string).collect(),
            };
            (k, values)
        })
        .collect())
}

/// Deserializes `null` as the type's default.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "id")]
        id: u64,
        #[serde(deserialize_with = "property_values", default)]
        properties: BTreeMap<String, Option<String>>,
        #[serde(deserialize_with = "lenient_context", default)]
        context: BTreeMap<String, Vec<String>>,
    }

    #[test]
    fn ids_and_values_are_coerced() {
        let p: Probe = serde_json::from_str(
            r#"{"id":"29022297485","properties":{"a":"x","b":null,"amount":100,"ok":true,
                              "f":1.5,"neg":-3,"big":18446744073709551615},
                "context":{"ids":["1","2"],"one":"3"}}"#,
        )
        .expect("parses");
        assert_eq!(p.id, 29_022_297_485);
        assert_eq!(p.properties["a"].as_deref(), Some("x"));
        assert_eq!(p.properties["b"], None);
        assert_eq!(p.properties["amount"].as_deref(), Some("100"));
        assert_eq!(p.properties["ok"].as_deref(), Some("true"));
        assert_eq!(p.properties["f"].as_deref(), Some("1.5"));
        assert_eq!(p.properties["neg"].as_deref(), Some("-3"));
        assert_eq!(p.properties["big"].as_deref(), Some("18446744073709551615"));
        assert_eq!(p.context["ids"], vec!["1", "2"]);
        assert_eq!(p.context["one"], vec!["3"]);
        let n: Probe = serde_json::from_str(r#"{"id":7}"#).expect("numeric id");
        assert_eq!(n.id, 7);
        assert!(serde_json::from_str::<Probe>(r#"{"id":"abc"}"#).is_err());
    }

    #[test]
    fn properties_null_repeated_and_unordered() {
        let p: Probe = serde_json::from_str(r#"{"id":1,"properties":null}"#).expect("null");
        assert!(p.properties.is_empty());
        let p: Probe =
            serde_json::from_str(r#"{"id":1,"properties":{"z":"1","a":"2","z":"3","m":null}}"#)
                .expect("parses");
        let got: Vec<(&str, Option<&str>)> = p
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(got, [("a", Some("2")), ("m", None), ("z", Some("3"))]);
        assert!(serde_json::from_str::<Probe>(r#"{"id":1,"properties":{"a":[1]}}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"id":1,"properties":[]}"#).is_err());
    }
}
