//! Validation and normalisation of property values on write (hubspot-api.md §4.3–4.4, §9.4):
//! every value becomes a string; numbers, booleans, dates (midnight UTC, read back as
//! `YYYY-MM-DD`), datetimes (read back as ISO-8601 with milliseconds and `Z`), enumeration
//! options and `;`-joined multi-checkbox values; read-only properties are refused. Failures are
//! collected into HubSpot's "Property values were not valid" 400 body.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ErrorDetail};
use crate::properties::{PropId, PropType, PropertyDef, PropertyRegistry};
use crate::records::iso_millis;

/// Longest string value accepted (HubSpot's 65,536-character limit).
const MAX_VALUE_CHARS: usize = 65_536;

/// One rejected property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// The property name as sent.
    pub name: String,
    /// HubSpot's token (`PROPERTY_DOESNT_EXIST`, `INVALID_OPTION`…).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl InvalidValue {
    fn new(name: &str, code: &'static str, message: String) -> Self {
        Self {
            name: name.to_owned(),
            code,
            message,
        }
    }
}

/// The 400 body for a list of invalid values (the message embeds the JSON list; `errors[]`
/// repeats it structurally).
pub fn invalid_values_error(invalid: &[InvalidValue]) -> ApiError {
    // Built by hand to keep HubSpot's key order (isValid, message, error, name).
    let list: Vec<String> = invalid
        .iter()
        .map(|i| {
            format!(
                "{{\"isValid\":false,\"message\":{},\"error\":{},\"name\":{}}}",
                Value::from(i.message.as_str()),
                Value::from(i.code),
                Value::from(i.name.as_str())
            )
        })
        .collect();
    let mut err = ApiError::validation(format!(
        "Property values were not valid: [{}]",
        list.join(",")
    ));
    for i in invalid {
        let mut context = Map::new();
        context.insert("propertyName".into(), json!([i.name]));
        err = err.with_detail(ErrorDetail {
            message: i.message.clone(),
            code: Some(i.code.to_owned()),
            context: Some(context),
        });
    }
    err
}

/// Turns a JSON value from a request into the string HubSpot would store (numbers and booleans
/// are tolerated and coerced; `null` clears). Objects and arrays are refused.
pub fn coerce(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Validates the `properties` object of a write against the registry. Returns normalised
/// `(property, value)` pairs (`""` = clear) or every problem found.
pub fn validate_input(
    registry: &PropertyRegistry,
    input: &Map<String, Value>,
    allow_read_only: bool,
) -> Result<Vec<(PropId, String)>, Vec<InvalidValue>> {
    let mut out = Vec::with_capacity(input.len());
    let mut invalid = Vec::new();
    for (name, raw) in input {
        let Some((id, def)) = registry.live(name) else {
            invalid.push(InvalidValue::new(
                name,
                "PROPERTY_DOESNT_EXIST",
                format!("Property \"{name}\" does not exist"),
            ));
            continue;
        };
        if def.read_only_value && !allow_read_only {
            invalid.push(InvalidValue::new(
                name,
                "READ_ONLY_VALUE",
                format!("\"{name}\" is a read only property; its value cannot be set."),
            ));
            continue;
        }
        let Some(text) = coerce(raw) else {
            invalid.push(InvalidValue::new(
                name,
                "INVALID_PROPERTY_VALUE",
                format!("Property \"{name}\" must be a string, number or boolean, not {raw}"),
            ));
            continue;
        };
        match normalise(def, &text) {
            Ok(v) => out.push((id, v)),
            Err((code, message)) => invalid.push(InvalidValue::new(name, code, message)),
        }
    }
    if invalid.is_empty() {
        Ok(out)
    } else {
        Err(invalid)
    }
}

/// Normalises one value for one property; `""` always clears.
pub fn normalise(def: &PropertyDef, raw: &str) -> Result<String, (&'static str, String)> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    if raw.chars().count() > MAX_VALUE_CHARS {
        return Err((
            "INVALID_PROPERTY_VALUE",
            format!(
                "Property \"{}\" exceeds the {MAX_VALUE_CHARS}-character limit",
                def.name
            ),
        ));
    }
    let trimmed = raw.trim();
    let strict = !matches!(def.prop_type, PropType::String | PropType::PhoneNumber);
    if strict && trimmed.len() != raw.len() {
        return Err((
            "INVALID_PROPERTY_VALUE",
            format!(
                "{raw:?} has leading or trailing whitespace, which is not allowed for {} properties",
                def.prop_type.as_str()
            ),
        ));
    }
    match def.prop_type {
        PropType::String | PropType::PhoneNumber => Ok(raw.to_owned()),
        PropType::Number => number(raw),
        PropType::Bool => boolean(raw),
        PropType::Date => date(raw).map(|d| d.format("%Y-%m-%d").to_string()),
        PropType::Datetime => datetime_millis(raw).map(iso_millis).ok_or((
            "INVALID_DATETIME",
            format!("{raw} is not a valid datetime; use epoch milliseconds or ISO-8601"),
        )),
        PropType::Enumeration => enumeration(def, raw),
    }
}

fn number(raw: &str) -> Result<String, (&'static str, String)> {
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(body.contains('.') && frac.is_empty());
    if digits_ok {
        Ok(raw.to_owned())
    } else {
        Err(("INVALID_INTEGER", format!("{raw} was not a valid number.")))
    }
}

fn boolean(raw: &str) -> Result<String, (&'static str, String)> {
    match raw.to_ascii_lowercase().as_str() {
        "true" => Ok("true".into()),
        "false" => Ok("false".into()),
        _ => Err((
            "INVALID_BOOLEAN",
            format!("{raw} is not a valid boolean; use \"true\" or \"false\""),
        )),
    }
}

/// Parses a date value: `YYYY-MM-DD`, epoch ms at midnight UTC, or an ISO datetime at
/// midnight UTC.
pub fn date(raw: &str) -> Result<NaiveDate, (&'static str, String)> {
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d);
    }
    let ms = datetime_millis(raw).ok_or((
        "INVALID_DATE",
        format!("{raw} is not a valid date; use YYYY-MM-DD or epoch milliseconds at midnight UTC"),
    ))?;
    let dt = DateTime::<Utc>::from_timestamp_millis(ms)
        .ok_or(("INVALID_DATE", format!("{raw} is out of range")))?;
    if dt.time() != NaiveTime::MIN {
        return Err((
            "INVALID_DATE",
            format!(
                "{raw} is at {} UTC, not midnight!",
                dt.format("%H:%M:%S%.3f")
            ),
        ));
    }
    Ok(dt.date_naive())
}

/// Parses epoch milliseconds, RFC 3339 / ISO-8601, or `YYYY-MM-DD` (midnight UTC) into ms.
pub fn datetime_millis(raw: &str) -> Option<i64> {
    if let Ok(ms) = raw.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(dt.and_utc().timestamp_millis());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
}

fn enumeration(def: &PropertyDef, raw: &str) -> Result<String, (&'static str, String)> {
    if def.field_type == "booleancheckbox" && def.options.is_empty() {
        return boolean(raw);
    }
    if def.external_options {
        return Ok(raw.to_owned());
    }
    let allowed = |v: &str| def.options.iter().any(|o| o.value == v);
    let not_allowed = |v: &str| {
        let list: Vec<&str> = def.options.iter().map(|o| o.value.as_str()).collect();
        (
            "INVALID_OPTION",
            format!(
                "{v} was not one of the allowed options: [{}]",
                list.join(", ")
            ),
        )
    };
    if def.is_multi() {
        let mut chosen: Vec<&str> = Vec::new();
        for part in raw.split(';').filter(|p| !p.is_empty()) {
            if !allowed(part) {
                return Err(not_allowed(part));
            }
            if !chosen.contains(&part) {
                chosen.push(part);
            }
        }
        Ok(chosen.join(";"))
    } else if allowed(raw) {
        Ok(raw.to_owned())
    } else {
        Err(not_allowed(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::PropertyDef;

    fn def(t: PropType, f: &str) -> PropertyDef {
        PropertyDef::builtin("p", "P", t, f, "g")
    }

    #[test]
    fn dates_must_be_midnight_and_read_back_as_iso_dates() {
        let d = def(PropType::Date, "date");
        assert_eq!(normalise(&d, "1430438400000").as_deref(), Ok("2015-05-01"));
        assert_eq!(normalise(&d, "2015-05-01").as_deref(), Ok("2015-05-01"));
        assert!(normalise(&d, "1430438400001").is_err());
    }

    #[test]
    fn datetimes_become_iso_millis_z() {
        let d = def(PropType::Datetime, "date");
        assert_eq!(
            normalise(&d, "1430438400123").as_deref(),
            Ok("2015-05-01T00:00:00.123Z")
        );
        assert_eq!(
            normalise(&d, "2024-09-19T04:30:45-08:00").as_deref(),
            Ok("2024-09-19T12:30:45.000Z")
        );
    }

    #[test]
    fn numbers_refuse_separators_and_spaces() {
        let d = def(PropType::Number, "number");
        assert!(normalise(&d, "1234.5").is_ok());
        assert!(normalise(&d, "1,000").is_err());
        assert!(normalise(&d, " 17").is_err());
        assert!(normalise(&d, "1e5").is_err());
    }

    #[test]
    fn checkbox_values_are_semicolon_joined_options() {
        let d = def(PropType::Enumeration, "checkbox").with_options(&[("a", "A"), ("b", "B")]);
        assert_eq!(normalise(&d, "a;b;a").as_deref(), Ok("a;b"));
        assert!(normalise(&d, "a;c").is_err());
    }
}
