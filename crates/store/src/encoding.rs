//! HubSpot's text encodings of values (hubspot-api.md §9.4) and PostgreSQL's array literal:
//! strict parsers and canonical formatters, no I/O. [`crate::values`] builds on them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Largest decimal exponent accepted in a number (`1e1000`); beyond it PostgreSQL's
/// `NUMERIC` input would fail the whole statement.
const MAX_EXPONENT: i64 = 1000;

/// Longest number string accepted.
const MAX_NUMBER_LEN: usize = 1000;

/// PostgreSQL keeps microseconds; drop anything finer so that local round trips match it.
pub(crate) trait MicrosTruncate {
    fn with_nanosecond_micros(self) -> Self;
}

impl MicrosTruncate for DateTime<Utc> {
    fn with_nanosecond_micros(self) -> Self {
        use chrono::Timelike;
        let nanos = self.nanosecond() / 1000 * 1000;
        self.with_nanosecond(nanos).unwrap_or(self)
    }
}

/// Canonical decimal text: optional `-`, no leading zeros, no exponent, no trailing
/// fractional zeros, `0` for zero. `None` when `raw` is not a finite decimal number.
pub fn canonical_decimal(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_NUMBER_LEN {
        return None;
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], parse_exponent(&rest[i + 1..])?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let point = i64::try_from(int_part.len()).ok()? + exponent;
    let (int_digits, frac_digits): (String, String) = if point <= 0 {
        let zeros = usize::try_from(-point).ok()?;
        (
            String::new(),
            "0".repeat(zeros) + std::str::from_utf8(&digits).ok()?,
        )
    } else {
        let p = usize::try_from(point).ok()?;
        if p >= digits.len() {
            let mut int = String::from_utf8(digits).ok()?;
            int.push_str(&"0".repeat(p - int.len()));
            (int, String::new())
        } else {
            (
                String::from_utf8(digits[..p].to_vec()).ok()?,
                String::from_utf8(digits[p..].to_vec()).ok()?,
            )
        }
    };
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = frac_digits.trim_end_matches('0');
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Some("0".to_owned());
    }
    let mut out = String::with_capacity(int_digits.len() + frac_digits.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    });
    if !frac_digits.is_empty() {
        out.push('.');
        out.push_str(frac_digits);
    }
    Some(out)
}

fn parse_exponent(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = s.parse().ok()?;
    (value.abs() <= MAX_EXPONENT).then_some(value)
}

pub(crate) fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Years PostgreSQL and HubSpot both represent plainly (4 digits, no year 0).
pub(crate) fn year_in_range(year: i32) -> bool {
    (1..=9999).contains(&year)
}

/// `YYYY-MM-DD`, or epoch milliseconds / an ISO datetime that falls on midnight UTC.
pub(crate) fn parse_date(raw: &str) -> Result<NaiveDate, &'static str> {
    let s = raw.trim();
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let ok_digits = b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        return ok_digits
            .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .flatten()
            .filter(|d| year_in_range(chrono::Datelike::year(d)))
            .ok_or("not a valid date (YYYY-MM-DD)");
    }
    let t = parse_datetime(s).ok_or("not a date (YYYY-MM-DD or epoch milliseconds)")?;
    if t.time() == NaiveTime::MIN {
        Ok(t.date_naive())
    } else {
        Err("date is not at midnight UTC")
    }
}

/// Epoch milliseconds, RFC 3339 (any offset, normalised to UTC), an ISO datetime without
/// offset (taken as UTC) or a bare `YYYY-MM-DD` (midnight UTC).
pub(crate) fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    let parsed = if is_epoch_millis(s) {
        DateTime::from_timestamp_millis(s.parse().ok()?)?
    } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.with_timezone(&Utc)
    } else if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        t.and_utc()
    } else {
        let b = s.as_bytes();
        if b.len() != 10 {
            return None;
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()?
            .and_time(NaiveTime::MIN)
            .and_utc()
    };
    year_in_range(chrono::Datelike::year(&parsed)).then_some(parsed)
}

fn is_epoch_millis(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn parse_bool(raw: &str) -> Option<bool> {
    let s = raw.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// HubSpot's `;`-joined multi-select value, empty items dropped.
pub(crate) fn split_multi(raw: &str) -> Vec<&str> {
    raw.split(';').filter(|item| !item.is_empty()).collect()
}

/// A PostgreSQL array literal with every element quoted: `{"a","b \"c\""}`.
pub(crate) fn array_literal(items: &[&str]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for ch in item.chars() {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Parses what [`array_literal`] writes (quoted elements only).
pub(crate) fn parse_array_literal(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut item = String::new();
                loop {
                    match chars.next()? {
                        '\\' => item.push(chars.next()?),
                        '"' => break,
                        other => item.push(other),
                    }
                }
                items.push(item);
            }
            ',' => {}
            _ => return None,
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decimal_canonical_is_idempotent_and_exact(int in "-?[0-9]{1,40}", frac in "[0-9]{0,20}") {
            let raw = if frac.is_empty() { int } else { format!("{int}.{frac}") };
            let canon = canonical_decimal(&raw).expect("valid decimal");
            prop_assert_eq!(canonical_decimal(&canon), Some(canon.clone()));
            let exp = canonical_decimal(&format!("{raw}e3")).expect("valid");
            let back = canonical_decimal(&format!("{exp}e-3")).expect("valid");
            prop_assert_eq!(back, canon);
        }

    }
}
