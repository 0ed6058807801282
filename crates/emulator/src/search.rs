//! CRM search (hubspot-api.md §7): filter groups (AND inside a group, OR across groups) with
//! every documented operator, one sort, free-text `query`, offset paging with the 10,000 cap,
//! and index lag (records changed within the lag are not yet visible).
//!
//! Planning: a group with a range/equality filter on `lastmodifieddate`/`hs_lastmodifieddate`,
//! `createdate` or `hs_object_id` reads only that index range. When there is one group and the
//! sort follows the same index, results stream in index order with no sort step.

// Search errors are HTTP answers.
#![allow(clippy::result_large_err)]

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::error::ApiError;
use crate::properties::{Derived, PropId, PropType, PropertyDef};
use crate::property_values::datetime_millis;
use crate::records::Record;
use crate::render::value_of;
use crate::state::{Crm, ObjectTable};

/// Offsets at or past this fail with 400 (§7.3).
pub const MAX_OFFSET: usize = 10_000;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `EQ`
    Eq,
    /// `NEQ`
    Neq,
    /// `LT`
    Lt,
    /// `LTE`
    Lte,
    /// `GT`
    Gt,
    /// `GTE`
    Gte,
    /// `BETWEEN` (`value`..=`highValue`)
    Between,
    /// `IN` (`values`)
    In,
    /// `NOT_IN` (`values`)
    NotIn,
    /// `HAS_PROPERTY`
    HasProperty,
    /// `NOT_HAS_PROPERTY`
    NotHasProperty,
    /// `CONTAINS_TOKEN`
    ContainsToken,
    /// `NOT_CONTAINS_TOKEN`
    NotContainsToken,
}

impl Op {
    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "EQ" => Self::Eq,
            "NEQ" => Self::Neq,
            "LT" => Self::Lt,
            "LTE" => Self::Lte,
            "GT" => Self::Gt,
            "GTE" => Self::Gte,
            "BETWEEN" => Self::Between,
            "IN" => Self::In,
            "NOT_IN" => Self::NotIn,
            "HAS_PROPERTY" => Self::HasProperty,
            "NOT_HAS_PROPERTY" => Self::NotHasProperty,
            "CONTAINS_TOKEN" => Self::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Self::NotContainsToken,
            _ => return None,
        })
    }
}

/// One filter as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// `propertyName`.
    pub property: String,
    /// `operator`.
    pub op: Op,
    /// `value`.
    pub value: Option<String>,
    /// `highValue` (BETWEEN).
    pub high_value: Option<String>,
    /// `values` (IN / NOT_IN).
    pub values: Vec<String>,
}

/// A parsed search request.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Filter groups (ORed); filters inside are ANDed.
    pub groups: Vec<Vec<Filter>>,
    /// Sort property and ascending flag.
    pub sort: Option<(String, bool)>,
    /// Free text.
    pub text: Option<String>,
    /// Page size.
    pub limit: usize,
    /// Row offset.
    pub offset: usize,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Matching records in total (may exceed 10,000).
    pub total: usize,
    /// Ids of this page, in order.
    pub ids: Vec<u64>,
    /// Offset of the next page, if there are more results.
    pub next: Option<usize>,
}

/// A comparable value.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Num(f64),
    Text(String),
}

impl Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Num(a), Self::Num(b)) => a.total_cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Num(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Num(_)) => Ordering::Greater,
        }
    }
}

fn numeric(def: &PropertyDef) -> bool {
    def.derived.is_some()
        || matches!(
            def.prop_type,
            PropType::Number | PropType::Date | PropType::Datetime
        )
}

/// Parses a filter value for a property (dates as epoch ms; numbers as f64; text lower-cased).
fn key_of(def: &PropertyDef, text: &str) -> Option<Key> {
    if def.derived == Some(Derived::ObjectId) || def.prop_type == PropType::Number {
        return text.trim().parse::<f64>().ok().map(Key::Num);
    }
    if numeric(def) {
        #[allow(clippy::cast_precision_loss)]
        return datetime_millis(text.trim()).map(|ms| Key::Num(ms as f64));
    }
    Some(Key::Text(text.to_lowercase()))
}

struct Compiled<'a> {
    prop: PropId,
    def: &'a PropertyDef,
    op: Op,
    keys: Vec<Key>,
    raw: Vec<String>,
}

fn compile<'a>(table: &'a ObjectTable, f: &Filter) -> Result<Compiled<'a>, ApiError> {
    let (prop, def) = table.props.live(&f.property).ok_or_else(|| {
        ApiError::validation(format!(
            "There was a problem with the request: property \"{}\" does not exist",
            f.property
        ))
        .with_context("propertyName", [f.property.clone()])
    })?;
    let missing = |what: &str| {
        ApiError::validation(format!(
            "Invalid input JSON: Cannot build Filter, some of required attributes are not set [{what}]"
        ))
    };
    let raw: Vec<String> = match f.op {
        Op::HasProperty | Op::NotHasProperty => {
            if f.value.is_some() || f.high_value.is_some() || !f.values.is_empty() {
                return Err(ApiError::validation(format!(
                    "Operator {:?} does not take a value (filter on {})",
                    f.op, f.property
                )));
            }
            Vec::new()
        }
        Op::In | Op::NotIn => {
            if f.values.is_empty() {
                return Err(missing("values"));
            }
            f.values.clone()
        }
        Op::Between => vec![
            f.value.clone().ok_or_else(|| missing("value"))?,
            f.high_value.clone().ok_or_else(|| missing("highValue"))?,
        ],
        _ => vec![f.value.clone().ok_or_else(|| missing("value"))?],
    };
    let tokens = matches!(f.op, Op::ContainsToken | Op::NotContainsToken);
    let mut keys = Vec::new();
    if !tokens {
        for r in &raw {
            keys.push(key_of(def, r).ok_or_else(|| {
                ApiError::validation(format!(
                    "{r} is not a valid value for property {}",
                    f.property
                ))
            })?);
        }
    }
    Ok(Compiled {
        prop,
        def,
        op: f.op,
        keys,
        raw: raw.iter().map(|r| r.to_lowercase()).collect(),
    })
}

/// The key of a derived property, read straight from the record (no formatting).
#[allow(clippy::cast_precision_loss)]
fn derived_key(def: &PropertyDef, r: &Record) -> Option<Key> {
    Some(Key::Num(match def.derived? {
        Derived::ObjectId => r.id as f64,
        Derived::Created => r.created as f64,
        Derived::Modified => r.modified as f64,
        Derived::PrimaryCompany => return None,
    }))
}

fn record_keys(crm: &Crm, c: &Compiled<'_>, table: &ObjectTable, r: &Record) -> Vec<Key> {
    if let Some(k) = derived_key(c.def, r) {
        return vec![k];
    }
    let Some(v) = value_of(crm, table, r, c.prop) else {
        return Vec::new();
    };
    if c.def.is_multi() {
        return v.split(';').filter_map(|p| key_of(c.def, p)).collect();
    }
    key_of(c.def, &v).into_iter().collect()
}

fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    rest.is_empty()
}

fn contains_token(value: &str, pattern: &str) -> bool {
    let value = value.to_lowercase();
    if pattern.contains('*') {
        glob(pattern, &value) || tokens(&value).any(|t| glob(pattern, &t))
    } else {
        value == pattern || tokens(&value).any(|t| t == pattern)
    }
}

fn matches(crm: &Crm, c: &Compiled<'_>, table: &ObjectTable, r: &Record) -> bool {
    match c.op {
        Op::HasProperty => return value_of(crm, table, r, c.prop).is_some(),
        Op::NotHasProperty => return value_of(crm, table, r, c.prop).is_none(),
        Op::ContainsToken | Op::NotContainsToken => {
            let hit =
                value_of(crm, table, r, c.prop).is_some_and(|v| contains_token(&v, &c.raw[0]));
            return hit == (c.op == Op::ContainsToken);
        }
        _ => {}
    }
    let have = record_keys(crm, c, table, r);
    let any = |f: &dyn Fn(&Key) -> bool| have.iter().any(f);
    let eq = |k: &Key, w: &Key| k.cmp(w) == Ordering::Equal;
    match c.op {
        Op::Eq => any(&|k| eq(k, &c.keys[0])),
        Op::Neq => !any(&|k| eq(k, &c.keys[0])),
        Op::Lt => any(&|k| k.cmp(&c.keys[0]) == Ordering::Less),
        Op::Lte => any(&|k| k.cmp(&c.keys[0]) != Ordering::Greater),
        Op::Gt => any(&|k| k.cmp(&c.keys[0]) == Ordering::Greater),
        Op::Gte => any(&|k| k.cmp(&c.keys[0]) != Ordering::Less),
        Op::Between => {
            any(&|k| k.cmp(&c.keys[0]) != Ordering::Less && k.cmp(&c.keys[1]) != Ordering::Greater)
        }
        Op::In => any(&|k| c.keys.iter().any(|w| eq(k, w))),
        Op::NotIn => !any(&|k| c.keys.iter().any(|w| eq(k, w))),
        _ => false,
    }
}

/// An index range a group can be answered from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    Modified(i64, i64),
    Created(i64, i64),
    Id(u64, u64),
    Scan,
}

#[allow(clippy::cast_possible_truncation)]
fn bounds(c: &Compiled<'_>) -> Option<(i64, i64)> {
    let num = |k: &Key| match k {
        Key::Num(n) => Some(n.floor() as i64),
        Key::Text(_) => None,
    };
    Some(match c.op {
        Op::Eq => (num(&c.keys[0])?, num(&c.keys[0])?),
        Op::Gt => (num(&c.keys[0])?.saturating_add(1), i64::MAX),
        Op::Gte => (num(&c.keys[0])?, i64::MAX),
        Op::Lt => (i64::MIN, num(&c.keys[0])?.saturating_sub(1)),
        Op::Lte => (i64::MIN, num(&c.keys[0])?),
        Op::Between => (num(&c.keys[0])?, num(&c.keys[1])?),
        _ => return None,
    })
}

fn plan(group: &[Compiled<'_>]) -> Plan {
    let mut best = Plan::Scan;
    for c in group {
        let Some((lo, hi)) = bounds(c) else { continue };
        let narrowed = match (c.def.derived, best) {
            (Some(Derived::Modified), Plan::Modified(a, b)) => Plan::Modified(a.max(lo), b.min(hi)),
            (Some(Derived::Modified), _) => Plan::Modified(lo, hi),
            (Some(Derived::Created), Plan::Scan | Plan::Id(..)) => Plan::Created(lo, hi),
            (Some(Derived::Created), Plan::Created(a, b)) => Plan::Created(a.max(lo), b.min(hi)),
            (Some(Derived::ObjectId), Plan::Scan) => Plan::Id(
                u64::try_from(lo.max(0)).unwrap_or(0),
                u64::try_from(hi.max(0)).unwrap_or(0),
            ),
            (_, other) => other,
        };
        best = narrowed;
    }
    best
}

/// Which index a derived property lives in (0 none, 1 modified, 2 created).
fn plan_of(def: &PropertyDef) -> u8 {
    match def.derived {
        Some(Derived::Modified) => 1,
        Some(Derived::Created) => 2,
        _ => 0,
    }
}

fn plan_of_plan(p: Plan) -> u8 {
    match p {
        Plan::Modified(..) => 1,
        Plan::Created(..) => 2,
        _ => 3,
    }
}

/// The ids of a date-index range, in index order.
fn index_range(
    table: &ObjectTable,
    p: Plan,
) -> Option<Box<dyn DoubleEndedIterator<Item = u64> + '_>> {
    let store = &table.store;
    match p {
        Plan::Modified(lo, hi) => Some(Box::new(store.modified_range(lo, hi).map(|(_, id)| id))),
        Plan::Created(lo, hi) => Some(Box::new(store.created_range(lo, hi).map(|(_, id)| id))),
        _ => None,
    }
}

fn candidates<'a>(
    table: &'a ObjectTable,
    plan: Plan,
) -> Box<dyn DoubleEndedIterator<Item = &'a Record> + 'a> {
    let store = &table.store;
    match plan {
        Plan::Modified(lo, hi) => Box::new(
            store
                .modified_range(lo, hi)
                .filter_map(|(_, id)| store.get(id)),
        ),
        Plan::Created(lo, hi) => Box::new(
            store
                .created_range(lo, hi)
                .filter_map(|(_, id)| store.get(id)),
        ),
        Plan::Id(lo, hi) => Box::new(store.id_range(lo, hi)),
        Plan::Scan => Box::new(store.live_records()),
    }
}

/// Runs a search. Records modified after `visible_until` (ms) are not yet indexed.
pub fn run(
    crm: &Crm,
    table: &ObjectTable,
    query: &Query,
    text_props: &[String],
    visible_until: Option<i64>,
) -> Result<Page, ApiError> {
    if query.offset >= MAX_OFFSET {
        return Err(ApiError::validation(format!(
            "Search results are limited to {MAX_OFFSET} records: paging past offset {MAX_OFFSET} is not \
             supported (after={}). Narrow the search with filters instead.",
            query.offset
        ))
        .with_context("after", [query.offset.to_string()]));
    }
    let groups: Vec<Vec<Compiled<'_>>> = query
        .groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|f| compile(table, f))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let sort = match &query.sort {
        Some((name, asc)) => {
            let (prop, def) = table.props.live(name).ok_or_else(|| {
                ApiError::validation(format!("Sort property \"{name}\" does not exist"))
            })?;
            Some((prop, def, *asc))
        }
        None => None,
    };
    let text_ids: Vec<PropId> = text_props
        .iter()
        .filter_map(|n| table.props.id(n))
        .collect();
    let words: Vec<String> = query
        .text
        .as_deref()
        .map(|t| tokens(t).collect())
        .unwrap_or_default();
    let keep = |r: &Record, group: &[Compiled<'_>]| {
        visible_until.is_none_or(|t| r.modified <= t)
            && group.iter().all(|c| matches(crm, c, table, r))
            && (words.is_empty()
                || words.iter().all(|w| {
                    text_ids.iter().any(|p| {
                        r.values
                            .get(*p)
                            .is_some_and(|v| tokens(v).any(|t| t.starts_with(w.as_str())))
                    })
                }))
    };
    let end = (query.offset + query.limit).min(MAX_OFFSET);
    // Streaming: one group whose index matches the sort.
    let sort_derived = match sort {
        None => Some((Derived::ObjectId, true)),
        Some((_, def, asc)) => def.derived.map(|d| (d, asc)),
    };
    if groups.len() <= 1
        && let Some((derived, asc)) = sort_derived
    {
        let group: &[Compiled<'_>] = groups.first().map(Vec::as_slice).unwrap_or(&[]);
        let p = match (plan(group), derived) {
            (p @ Plan::Modified(..), Derived::Modified) => Some(p),
            (p @ Plan::Created(..), Derived::Created) => Some(p),
            (p @ Plan::Id(..), Derived::ObjectId) => Some(p),
            (Plan::Scan, Derived::Modified) => Some(Plan::Modified(i64::MIN, i64::MAX)),
            (Plan::Scan, Derived::Created) => Some(Plan::Created(i64::MIN, i64::MAX)),
            (Plan::Scan, Derived::ObjectId) => Some(Plan::Scan),
            _ => None,
        };
        if let Some(p) = p {
            let covered = visible_until.is_none()
                && words.is_empty()
                && group
                    .iter()
                    .all(|c| bounds(c).is_some() && plan_of(c.def) == plan_of_plan(p));
            if covered && let Some(index) = index_range(table, p) {
                // Every filter is the index range itself: count and page without the records.
                let iter: Box<dyn Iterator<Item = u64>> = if asc {
                    Box::new(index)
                } else {
                    Box::new(index.rev())
                };
                let mut total = 0;
                let mut ids = Vec::with_capacity(query.limit);
                for id in iter {
                    if total >= query.offset && total < end {
                        ids.push(id);
                    }
                    total += 1;
                }
                return Ok(page(total, ids, query));
            }
            let iter = candidates(table, p);
            let iter: Box<dyn Iterator<Item = &Record>> =
                if asc { iter } else { Box::new(iter.rev()) };
            let mut total = 0;
            let mut ids = Vec::with_capacity(query.limit);
            for r in iter.filter(|r| keep(r, group)) {
                if total >= query.offset && total < end {
                    ids.push(r.id);
                }
                total += 1;
            }
            return Ok(page(total, ids, query));
        }
    }
    let mut hits: Vec<&Record> = Vec::new();
    let mut seen = HashSet::new();
    let all_groups: Vec<&[Compiled<'_>]> = if groups.is_empty() {
        vec![&[]]
    } else {
        groups.iter().map(Vec::as_slice).collect()
    };
    for group in all_groups {
        for r in candidates(table, plan(group)).filter(|r| keep(r, group)) {
            if seen.insert(r.id) {
                hits.push(r);
            }
        }
    }
    match sort {
        Some((prop, def, asc)) => {
            let key = |r: &Record| {
                derived_key(def, r)
                    .or_else(|| value_of(crm, table, r, prop).and_then(|v| key_of(def, &v)))
            };
            let mut keyed: Vec<(Option<Key>, u64)> = hits.iter().map(|r| (key(r), r.id)).collect();
            keyed.sort_by(|(a, ida), (b, idb)| {
                let ord = match (a, b) {
                    (Some(a), Some(b)) => a.cmp(b),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                let ord = if asc { ord } else { ord.reverse() };
                ord.then(ida.cmp(idb))
            });
            let total = keyed.len();
            let ids = keyed
                .into_iter()
                .skip(query.offset)
                .take(end.saturating_sub(query.offset))
                .map(|(_, id)| id)
                .collect();
            Ok(page(total, ids, query))
        }
        None => {
            let mut ids: Vec<u64> = hits.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            let total = ids.len();
            let ids = ids
                .into_iter()
                .skip(query.offset)
                .take(end.saturating_sub(query.offset))
                .collect();
            Ok(page(total, ids, query))
        }
    }
}

fn page(total: usize, ids: Vec<u64>, query: &Query) -> Page {
    let next_offset = query.offset + ids.len();
    let next = (next_offset < total && !ids.is_empty()).then_some(next_offset);
    Page { total, ids, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_tokens() {
        assert!(contains_token("ann@example.com", "*@example.com"));
        assert!(contains_token("Ann Smith", "smith"));
        assert!(!contains_token("Ann Smith", "smi"));
        assert!(contains_token("Ann Smith", "smi*"));
    }
}
