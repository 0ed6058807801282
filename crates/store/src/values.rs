//! HubSpot property values ⇄ PostgreSQL column values.
//!
//! HubSpot sends every property value as a string. [`ColumnType::for_property`] decides a
//! column's PostgreSQL type from the property's `type` and `fieldType`;
//! [`to_sql_text`] validates a HubSpot string for that type and turns it into the text form
//! that the upsert casts in SQL (`$n::text[]` → `::numeric`, `::date`, …). A value that does
//! not parse becomes NULL plus a reason (the caller records a [`ValueIssue`]) so that the
//! rest of the row still syncs. The empty string is HubSpot's "no value" and becomes NULL
//! without an issue.
//!
//! The reverse, [`SqlValue::to_hubspot`], turns a value read back from a typed column into
//! the string HubSpot accepts on writes, in HubSpot's own read form so that an echo compares
//! equal as a string: numbers canonical (no exponent, no trailing zeros), dates
//! `YYYY-MM-DD`, datetimes ISO-8601 UTC with milliseconds and `Z`, booleans `true`/`false`,
//! multi-select values joined by `;`. [`canonical_hubspot`] gives the same canonical form
//! for a raw HubSpot string, for comparisons against a shadow copy.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

pub use crate::encoding::canonical_decimal;
use crate::encoding::{
    MicrosTruncate, array_literal, format_date, parse_array_literal, parse_bool, parse_date,
    parse_datetime, split_multi,
};

/// The PostgreSQL type of a property column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnType {
    /// `TEXT`: string, textarea, phone numbers, single-select enumerations, unknown types.
    Text,
    /// `NUMERIC`: exact decimals, no float loss.
    Numeric,
    /// `DATE`: HubSpot date properties (midnight UTC).
    Date,
    /// `TIMESTAMPTZ`: HubSpot datetime properties.
    Timestamptz,
    /// `TEXT[]`: multi-select (checkbox) enumerations.
    TextArray,
    /// `BOOLEAN`: HubSpot `bool` properties.
    Boolean,
}

impl ColumnType {
    /// The column type for a HubSpot property `type` and `fieldType` (interface.md's table).
    /// Types hubsync does not know (`json`, `object_coordinates`, future ones) map to `TEXT`
    /// so their values are kept verbatim. A legacy yes/no `enumeration`/`booleancheckbox`
    /// stays `TEXT`: it is an enumeration whose option values are not guaranteed booleans.
    pub fn for_property(hs_type: &str, field_type: &str) -> Self {
        match hs_type {
            "number" => Self::Numeric,
            "date" => Self::Date,
            "datetime" => Self::Timestamptz,
            "bool" => Self::Boolean,
            "enumeration" if field_type == "checkbox" => Self::TextArray,
            _ => Self::Text,
        }
    }

    /// The SQL type name used in DDL and casts.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Text => "TEXT",
            Self::Numeric => "NUMERIC",
            Self::Date => "DATE",
            Self::Timestamptz => "TIMESTAMPTZ",
            Self::TextArray => "TEXT[]",
            Self::Boolean => "BOOLEAN",
        }
    }

    /// Parses [`ColumnType::sql`]'s output back (as stored in the catalog).
    pub fn from_sql(name: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Numeric,
            Self::Date,
            Self::Timestamptz,
            Self::TextArray,
            Self::Boolean,
        ]
        .into_iter()
        .find(|t| t.sql() == name)
    }
}

/// A value that could not be stored in its column: the column got NULL (or, for text with
/// NUL bytes, the cleaned text) and the rest of the row synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueIssue {
    /// The HubSpot record the value belongs to.
    pub hs_object_id: i64,
    /// The HubSpot property name.
    pub property: String,
    /// The value as HubSpot sent it.
    pub raw: String,
    /// Why it was not accepted, e.g. `not a number`.
    pub reason: String,
}

/// The outcome of converting one HubSpot string for its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The SQL text to cast into the column, or `None` for NULL.
    pub value: Option<String>,
    /// Set when the raw value was rejected (value is then NULL) or repaired.
    pub problem: Option<&'static str>,
}

impl Conversion {
    fn ok(value: Option<String>) -> Self {
        Self {
            value,
            problem: None,
        }
    }

    fn invalid(reason: &'static str) -> Self {
        Self {
            value: None,
            problem: Some(reason),
        }
    }
}

/// Converts one HubSpot value for a column of type `ty` into the SQL text form the upsert
/// casts. Never fails the row: a bad value yields NULL and a problem.
pub fn to_sql_text(ty: ColumnType, raw: &str) -> Conversion {
    if raw.is_empty() {
        return Conversion::ok(None);
    }
    match ty {
        ColumnType::Text => {
            let (clean, problem) = strip_nul(raw);
            Conversion {
                value: Some(clean),
                problem,
            }
        }
        ColumnType::Numeric => match canonical_decimal(raw) {
            Some(n) => Conversion::ok(Some(n)),
            None => Conversion::invalid("not a number"),
        },
        ColumnType::Date => match parse_date(raw) {
            Ok(d) => Conversion::ok(Some(format_date(d))),
            Err(reason) => Conversion::invalid(reason),
        },
        ColumnType::Timestamptz => match parse_datetime(raw) {
            Some(t) => Conversion::ok(Some(t.to_rfc3339_opts(SecondsFormat::Micros, true))),
            None => Conversion::invalid(DATETIME_PROBLEM),
        },
        ColumnType::Boolean => match parse_bool(raw) {
            Some(b) => Conversion::ok(Some(b.to_string())),
            None => Conversion::invalid(BOOLEAN_PROBLEM),
        },
        ColumnType::TextArray => {
            let (clean, problem) = strip_nul(raw);
            let items = split_multi(&clean);
            let value = (!items.is_empty()).then(|| array_literal(&items));
            Conversion { value, problem }
        }
    }
}

/// A converted value in the form the upsert binds: binary for the types whose PostgreSQL
/// binary form hubsync produces exactly (no text round trip on either side), text cast in
/// SQL for the rest (numbers keep every digit, multi-selects are array literals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlParam {
    /// Text cast to the column type (`TEXT`, `NUMERIC`, `TEXT[]`).
    Text(String),
    /// A `TIMESTAMPTZ`, truncated to PostgreSQL's microseconds.
    Timestamp(DateTime<Utc>),
    /// A `DATE`.
    Date(NaiveDate),
    /// A `BOOLEAN`.
    Boolean(bool),
}

impl SqlParam {
    /// The same value in [`to_sql_text`]'s text form.
    pub fn to_sql_text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Timestamp(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
            Self::Date(d) => format_date(*d),
            Self::Boolean(b) => b.to_string(),
        }
    }
}

/// [`to_sql_text`]'s outcome in bind form: the same values and the same problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamConversion {
    /// The value to bind, or `None` for NULL.
    pub value: Option<SqlParam>,
    /// Set when the raw value was rejected (value is then NULL) or repaired.
    pub problem: Option<&'static str>,
}

/// Converts one HubSpot value for a column of type `ty` into the value the upsert binds;
/// accepts and rejects exactly what [`to_sql_text`] does.
pub fn to_sql_param(ty: ColumnType, raw: &str) -> ParamConversion {
    let typed = |value: Option<SqlParam>, reason: &'static str| ParamConversion {
        problem: value.is_none().then_some(reason),
        value,
    };
    if raw.is_empty() {
        return ParamConversion {
            value: None,
            problem: None,
        };
    }
    match ty {
        ColumnType::Timestamptz => typed(
            parse_datetime(raw).map(|t| SqlParam::Timestamp(t.with_nanosecond_micros())),
            DATETIME_PROBLEM,
        ),
        ColumnType::Date => match parse_date(raw) {
            Ok(d) => typed(Some(SqlParam::Date(d)), ""),
            Err(reason) => typed(None, reason),
        },
        ColumnType::Boolean => typed(parse_bool(raw).map(SqlParam::Boolean), BOOLEAN_PROBLEM),
        ColumnType::Text | ColumnType::Numeric | ColumnType::TextArray => {
            let text = to_sql_text(ty, raw);
            ParamConversion {
                value: text.value.map(SqlParam::Text),
                problem: text.problem,
            }
        }
    }
}

/// Why a datetime value was rejected.
const DATETIME_PROBLEM: &str = "not a datetime (ISO-8601 or epoch milliseconds)";
/// Why a boolean value was rejected.
const BOOLEAN_PROBLEM: &str = "not a boolean (true/false)";

/// The canonical HubSpot form of a raw HubSpot value for type `ty` (what reading the stored
/// column back with [`SqlValue::to_hubspot`] yields), `Ok(None)` for the empty value, or the
/// reason it is invalid.
///
/// # Errors
/// The reason string when the value does not parse for `ty`.
pub fn canonical_hubspot(ty: ColumnType, raw: &str) -> Result<Option<String>, &'static str> {
    let conversion = to_sql_text(ty, raw);
    match (conversion.value, conversion.problem) {
        (None, Some(reason)) => Err(reason),
        (None, None) => Ok(None),
        (Some(text), _) => Ok(SqlValue::from_sql_text(ty, &text).map(|v| v.to_hubspot())),
    }
}

/// A value read back from a typed column.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// From `TEXT`.
    Text(String),
    /// From `NUMERIC`, in PostgreSQL's text output (exact).
    Numeric(String),
    /// From `DATE`.
    Date(NaiveDate),
    /// From `TIMESTAMPTZ`.
    Timestamp(DateTime<Utc>),
    /// From `TEXT[]` (NULL elements dropped).
    TextArray(Vec<String>),
    /// From `BOOLEAN`.
    Boolean(bool),
}

impl SqlValue {
    /// The string HubSpot accepts on writes for this value, in HubSpot's read form.
    pub fn to_hubspot(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Numeric(n) => canonical_decimal(n).unwrap_or_else(|| n.clone()),
            Self::Date(d) => format_date(*d),
            Self::Timestamp(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            Self::TextArray(items) => items.join(";"),
            Self::Boolean(b) => b.to_string(),
        }
    }

    /// Parses the SQL text form produced by [`to_sql_text`] (used by tests and by
    /// [`canonical_hubspot`]; PostgreSQL does the real parsing on writes).
    fn from_sql_text(ty: ColumnType, text: &str) -> Option<Self> {
        Some(match ty {
            ColumnType::Text => Self::Text(text.to_owned()),
            ColumnType::Numeric => Self::Numeric(text.to_owned()),
            ColumnType::Date => Self::Date(parse_date(text).ok()?),
            ColumnType::Timestamptz => {
                Self::Timestamp(parse_datetime(text)?.with_nanosecond_micros())
            }
            ColumnType::Boolean => Self::Boolean(parse_bool(text)?),
            ColumnType::TextArray => Self::TextArray(parse_array_literal(text)?),
        })
    }
}

fn strip_nul(raw: &str) -> (String, Option<&'static str>) {
    if raw.contains('\0') {
        (raw.replace('\0', ""), Some("contained NUL bytes (removed)"))
    } else {
        (raw.to_owned(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::year_in_range;
    use chrono::NaiveTime;
    use proptest::prelude::*;

    fn sql(ty: ColumnType, raw: &str) -> Option<String> {
        to_sql_text(ty, raw).value
    }

    #[test]
    fn type_mapping_follows_the_interface() {
        let table = [
            ("string", "text", ColumnType::Text),
            ("string", "textarea", ColumnType::Text),
            ("phone_number", "phonenumber", ColumnType::Text),
            ("number", "number", ColumnType::Numeric),
            ("date", "date", ColumnType::Date),
            ("datetime", "date", ColumnType::Timestamptz),
            ("enumeration", "select", ColumnType::Text),
            ("enumeration", "radio", ColumnType::Text),
            ("enumeration", "checkbox", ColumnType::TextArray),
            ("bool", "booleancheckbox", ColumnType::Boolean),
            ("object_coordinates", "text", ColumnType::Text),
        ];
        for (hs_type, field_type, expected) in table {
            assert_eq!(
                ColumnType::for_property(hs_type, field_type),
                expected,
                "{hs_type}/{field_type}"
            );
            assert_eq!(ColumnType::from_sql(expected.sql()), Some(expected));
        }
    }

    #[test]
    fn empty_is_null_without_issue() {
        for ty in [
            ColumnType::Text,
            ColumnType::Numeric,
            ColumnType::Date,
            ColumnType::TextArray,
        ] {
            assert_eq!(
                to_sql_text(ty, ""),
                Conversion {
                    value: None,
                    problem: None
                }
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(sql(ColumnType::Numeric, "17").as_deref(), Some("17"));
        assert_eq!(
            sql(ColumnType::Numeric, "1234.50").as_deref(),
            Some("1234.5")
        );
        assert_eq!(sql(ColumnType::Numeric, "-0.000").as_deref(), Some("0"));
        assert_eq!(sql(ColumnType::Numeric, "1e3").as_deref(), Some("1000"));
        assert_eq!(
            sql(ColumnType::Numeric, "1.5E-3").as_deref(),
            Some("0.0015")
        );
        assert_eq!(sql(ColumnType::Numeric, ".5").as_deref(), Some("0.5"));
        assert_eq!(
            sql(
                ColumnType::Numeric,
                "123456789012345678901234567890.123456789"
            )
            .as_deref(),
            Some("123456789012345678901234567890.123456789")
        );
        for bad in [
            "abc", "1,000", "NaN", "Infinity", "1e99999", ".", "-", "1.2.3", "0x10",
        ] {
            let c = to_sql_text(ColumnType::Numeric, bad);
            assert_eq!(c.value, None, "{bad}");
            assert!(c.problem.is_some(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            sql(ColumnType::Date, "2015-05-01").as_deref(),
            Some("2015-05-01")
        );
        assert_eq!(
            sql(ColumnType::Date, "1430438400000").as_deref(),
            Some("2015-05-01")
        );
        assert_eq!(
            sql(ColumnType::Date, "2015-05-01T00:00:00.000Z").as_deref(),
            Some("2015-05-01")
        );
        for bad in [
            "2024-13-45",
            "1430438400001",
            "yesterday",
            "0000-01-01",
            "2024-1-5",
        ] {
            let c = to_sql_text(ColumnType::Date, bad);
            assert_eq!(c.value, None, "{bad}");
            assert!(c.problem.is_some(), "{bad}");
        }
    }

    #[test]
    fn datetimes() {
        let iso = "2019-10-30T03:30:17.883Z";
        assert_eq!(
            sql(ColumnType::Timestamptz, iso).as_deref(),
            Some("2019-10-30T03:30:17.883000Z")
        );
        assert_eq!(
            sql(ColumnType::Timestamptz, "1572406217883").as_deref(),
            Some("2019-10-30T03:30:17.883000Z")
        );
        assert_eq!(
            sql(ColumnType::Timestamptz, "2019-10-30T05:30:17.883+02:00").as_deref(),
            Some("2019-10-30T03:30:17.883000Z")
        );
        assert_eq!(
            canonical_hubspot(ColumnType::Timestamptz, "1572406217883"),
            Ok(Some(iso.into()))
        );
        assert!(
            to_sql_text(ColumnType::Timestamptz, "2019-02-30T00:00:00Z")
                .problem
                .is_some()
        );
    }

    #[test]
    fn booleans_and_checkboxes() {
        assert_eq!(sql(ColumnType::Boolean, "TRUE").as_deref(), Some("true"));
        assert!(to_sql_text(ColumnType::Boolean, "yes").problem.is_some());
        assert_eq!(
            sql(ColumnType::TextArray, "a;b c;\"q\\").as_deref(),
            Some(r#"{"a","b c","\"q\\"}"#)
        );
        assert_eq!(sql(ColumnType::TextArray, ";;"), None);
        assert_eq!(
            canonical_hubspot(ColumnType::TextArray, ";a;;b"),
            Ok(Some("a;b".into()))
        );
    }

    #[test]
    fn nul_bytes_are_removed_and_reported() {
        let c = to_sql_text(ColumnType::Text, "a\0b");
        assert_eq!(c.value.as_deref(), Some("ab"));
        assert!(c.problem.is_some());
    }

    proptest! {
        #[test]
        fn dates_round_trip(days in 0i64..2_900_000) {
            let d = NaiveDate::from_ymd_opt(1, 1, 1).unwrap() + chrono::Duration::days(days);
            prop_assume!(year_in_range(chrono::Datelike::year(&d)));
            let raw = format_date(d);
            prop_assert_eq!(canonical_hubspot(ColumnType::Date, &raw), Ok(Some(raw.clone())));
            let ms = d.and_time(NaiveTime::MIN).and_utc().timestamp_millis().to_string();
            prop_assert_eq!(canonical_hubspot(ColumnType::Date, &ms), Ok(Some(raw)));
        }

        #[test]
        fn datetimes_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            let t = DateTime::from_timestamp_millis(ms).unwrap();
            let iso = t.to_rfc3339_opts(SecondsFormat::Millis, true);
            prop_assert_eq!(canonical_hubspot(ColumnType::Timestamptz, &iso), Ok(Some(iso.clone())));
            prop_assert_eq!(canonical_hubspot(ColumnType::Timestamptz, &ms.to_string()), Ok(Some(iso)));
        }

        #[test]
        fn checkboxes_round_trip(items in proptest::collection::vec("[^;\u{0}]{1,12}", 1..6)) {
            let raw = items.join(";");
            prop_assert_eq!(canonical_hubspot(ColumnType::TextArray, &raw), Ok(Some(raw.clone())));
        }

        #[test]
        fn bind_form_matches_text_form(raw in "[0-9TZ:.+ -]{0,30}|true|FALSE|yes|a;b|", ty in 0usize..6) {
            let ty = [ColumnType::Text, ColumnType::Numeric, ColumnType::Date,
                      ColumnType::Timestamptz, ColumnType::TextArray, ColumnType::Boolean][ty];
            let text = to_sql_text(ty, &raw);
            let param = to_sql_param(ty, &raw);
            prop_assert_eq!(param.problem, text.problem);
            prop_assert_eq!(param.value.map(|v| v.to_sql_text()), text.value);
        }

        #[test]
        fn bind_form_of_valid_times_matches_text_form(
            secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000,
        ) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
            for raw in [t.to_rfc3339_opts(SecondsFormat::Nanos, true),
                        t.timestamp_millis().to_string(), t.format("%Y-%m-%d").to_string()] {
                for ty in [ColumnType::Date, ColumnType::Timestamptz] {
                    let text = to_sql_text(ty, &raw);
                    let param = to_sql_param(ty, &raw);
                    prop_assert_eq!(param.problem, text.problem);
                    prop_assert_eq!(param.value.map(|v| v.to_sql_text()), text.value);
                }
            }
        }

        #[test]
        fn never_panics(raw in any::<String>()) {
            for ty in [ColumnType::Text, ColumnType::Numeric, ColumnType::Date,
                       ColumnType::Timestamptz, ColumnType::TextArray, ColumnType::Boolean] {
                let _ = canonical_hubspot(ty, &raw);
            }
        }
    }
}
