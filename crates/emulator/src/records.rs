//! Records of one object type and their indexes: compact property values (one text buffer per
//! record), property history, the id-ordered store with `(modified, id)` and `(created, id)`
//! indexes for search, and unique-value indexes (email) for `idProperty` and 409s.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::events::ChangeSource;
use crate::properties::PropId;

/// Epoch milliseconds as HubSpot prints them: ISO-8601 UTC with milliseconds and `Z`.
pub fn iso_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time in epoch milliseconds.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Property values of one record, kept compact: sorted `(property, end offset)` slots over
/// one shared text buffer. An absent slot means "no value" (read as JSON `null`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    slots: Box<[(PropId, u32)]>,
    text: Box<str>,
}

impl Values {
    /// Builds from `(property, value)` pairs; empty values are dropped, later pairs win.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (PropId, &'a str)>) -> Self {
        let mut sorted: Vec<(PropId, &str)> = pairs.into_iter().collect();
        sorted.sort_by_key(|(p, _)| *p);
        let mut dedup: Vec<(PropId, &str)> = Vec::with_capacity(sorted.len());
        for (p, v) in sorted {
            match dedup.last_mut() {
                Some(last) if last.0 == p => last.1 = v,
                _ => dedup.push((p, v)),
            }
        }
        let mut text = String::with_capacity(dedup.iter().map(|(_, v)| v.len()).sum());
        let mut slots = Vec::with_capacity(dedup.len());
        for (p, v) in dedup {
            if v.is_empty() {
                continue;
            }
            text.push_str(v);
            slots.push((p, u32::try_from(text.len()).unwrap_or(u32::MAX)));
        }
        Self {
            slots: slots.into_boxed_slice(),
            text: text.into_boxed_str(),
        }
    }

    /// The value of `prop`, if set.
    pub fn get(&self, prop: PropId) -> Option<&str> {
        let i = self.slots.binary_search_by_key(&prop, |(p, _)| *p).ok()?;
        Some(self.slot_text(i))
    }

    fn slot_text(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.slots[i - 1].1 as usize
        };
        let end = self.slots[i].1 as usize;
        self.text.get(start..end).unwrap_or("")
    }

    /// Every set value.
    pub fn iter(&self) -> impl Iterator<Item = (PropId, &str)> {
        (0..self.slots.len()).map(|i| (self.slots[i].0, self.slot_text(i)))
    }

    /// Applies changes (`""` clears) and returns the new bag.
    pub fn with_changes(&self, changes: &[(PropId, String)]) -> Self {
        let pairs = self
            .iter()
            .chain(changes.iter().map(|(p, v)| (*p, v.as_str())));
        Self::from_pairs(pairs)
    }

    /// Number of set values.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no value is set.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// One recorded value change (`propertiesWithHistory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The property.
    pub prop: PropId,
    /// The new value (empty when cleared).
    pub value: Box<str>,
    /// When (ms).
    pub at: i64,
    /// Who.
    pub source: ChangeSource,
}

/// One CRM record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record id.
    pub id: u64,
    /// Creation time (ms).
    pub created: i64,
    /// Last modification time (ms).
    pub modified: i64,
    /// When archived (ms), if archived.
    pub archived_at: Option<i64>,
    /// Property values.
    pub values: Values,
    /// Changes since creation, oldest first (`None` until the first update).
    pub history: Option<Box<Vec<Change>>>,
    /// How the record was created.
    pub source: ChangeSource,
}

impl Record {
    /// History of one property, newest first. Values set at creation appear with the creation
    /// time and source.
    pub fn history_of(&self, prop: PropId) -> Vec<(String, i64, ChangeSource)> {
        let mut out: Vec<(String, i64, ChangeSource)> = Vec::new();
        let changes = self.history.as_deref().map(Vec::as_slice).unwrap_or(&[]);
        for c in changes.iter().rev().filter(|c| c.prop == prop) {
            out.push((c.value.to_string(), c.at, c.source));
        }
        if out.is_empty()
            && let Some(v) = self.values.get(prop)
        {
            out.push((v.to_owned(), self.created, self.source));
        }
        out
    }

    /// Records `changes` in the history, keeping the pre-change value of a property the first
    /// time it changes.
    pub fn remember(&mut self, changes: &[(PropId, String)], at: i64, source: ChangeSource) {
        let history = self.history.get_or_insert_with(Default::default);
        for (prop, value) in changes {
            if !history.iter().any(|c| c.prop == *prop)
                && let Some(old) = self.values.get(*prop)
            {
                history.push(Change {
                    prop: *prop,
                    value: old.into(),
                    at: self.created,
                    source: self.source,
                });
            }
            history.push(Change {
                prop: *prop,
                value: value.as_str().into(),
                at,
                source,
            });
        }
    }
}

/// The records of one object type with their indexes. Archived records stay in `records` but
/// leave the search indexes and unique indexes.
#[derive(Debug, Default)]
pub struct ObjectStore {
    records: BTreeMap<u64, Record>,
    by_modified: BTreeSet<(i64, u64)>,
    by_created: BTreeSet<(i64, u64)>,
    unique: HashMap<PropId, HashMap<Box<str>, u64>>,
    live: usize,
}

/// The key a unique value is indexed under (case-insensitive, as HubSpot treats emails).
pub fn unique_key(value: &str) -> Box<str> {
    value.trim().to_lowercase().into_boxed_str()
}

impl ObjectStore {
    /// Declares `prop` unique: its values are indexed from now on.
    pub fn add_unique(&mut self, prop: PropId) {
        if self.unique.contains_key(&prop) {
            return;
        }
        let mut index = HashMap::new();
        for r in self.records.values().filter(|r| r.archived_at.is_none()) {
            if let Some(v) = r.values.get(prop) {
                index.insert(unique_key(v), r.id);
            }
        }
        self.unique.insert(prop, index);
    }

    /// The live record holding `value` in unique property `prop`.
    pub fn find_unique(&self, prop: PropId, value: &str) -> Option<u64> {
        self.unique.get(&prop)?.get(&unique_key(value)).copied()
    }

    /// True when `prop` has a unique index.
    pub fn is_unique(&self, prop: PropId) -> bool {
        self.unique.contains_key(&prop)
    }

    /// Reserves space in the unique indexes (seeding).
    pub fn reserve(&mut self, additional: usize) {
        for index in self.unique.values_mut() {
            index.reserve(additional);
        }
    }

    /// A record, archived or not.
    pub fn get(&self, id: u64) -> Option<&Record> {
        self.records.get(&id)
    }

    /// A live record.
    pub fn live(&self, id: u64) -> Option<&Record> {
        self.records.get(&id).filter(|r| r.archived_at.is_none())
    }

    /// Number of live records.
    pub fn live_count(&self) -> usize {
        self.live
    }

    /// Inserts or replaces a record, keeping indexes right.
    pub fn put(&mut self, record: Record) {
        if let Some(old) = self.records.remove(&record.id) {
            self.unindex(&old);
        }
        self.index(&record);
        self.records.insert(record.id, record);
    }

    /// Removes a record entirely (hard delete).
    pub fn remove(&mut self, id: u64) -> Option<Record> {
        let old = self.records.remove(&id)?;
        self.unindex(&old);
        Some(old)
    }

    fn index(&mut self, r: &Record) {
        if r.archived_at.is_some() {
            return;
        }
        self.live += 1;
        self.by_modified.insert((r.modified, r.id));
        self.by_created.insert((r.created, r.id));
        for (prop, index) in &mut self.unique {
            if let Some(v) = r.values.get(*prop) {
                index.insert(unique_key(v), r.id);
            }
        }
    }

    fn unindex(&mut self, r: &Record) {
        if r.archived_at.is_some() {
            return;
        }
        self.live = self.live.saturating_sub(1);
        self.by_modified.remove(&(r.modified, r.id));
        self.by_created.remove(&(r.created, r.id));
        for (prop, index) in &mut self.unique {
            if let Some(v) = r.values.get(*prop) {
                let key = unique_key(v);
                if index.get(&key) == Some(&r.id) {
                    index.remove(&key);
                }
            }
        }
    }

    /// Records with id > `after` in id order, archived or live as asked.
    pub fn page_after(&self, after: u64, archived: bool) -> impl Iterator<Item = &Record> {
        self.records
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .map(|(_, r)| r)
            .filter(move |r| r.archived_at.is_some() == archived)
    }

    /// Live records in id order.
    pub fn live_records(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.records.values().filter(|r| r.archived_at.is_none())
    }

    /// Live records with `lo <= modified <= hi`, in `(modified, id)` order.
    pub fn modified_range(&self, lo: i64, hi: i64) -> impl DoubleEndedIterator<Item = (i64, u64)> {
        self.by_modified.range((lo, 0)..=(hi, u64::MAX)).copied()
    }

    /// Live records with `lo <= created <= hi`, in `(created, id)` order.
    pub fn created_range(&self, lo: i64, hi: i64) -> impl DoubleEndedIterator<Item = (i64, u64)> {
        self.by_created.range((lo, 0)..=(hi, u64::MAX)).copied()
    }

    /// Live records with `lo <= id <= hi`.
    pub fn id_range(&self, lo: u64, hi: u64) -> impl DoubleEndedIterator<Item = &Record> {
        self.records
            .range(lo..=hi)
            .map(|(_, r)| r)
            .filter(|r| r.archived_at.is_none())
    }

    /// Removes every record.
    pub fn clear(&mut self) {
        self.records.clear();
        self.by_modified.clear();
        self.by_created.clear();
        for index in self.unique.values_mut() {
            index.clear();
        }
        self.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_clear() {
        let v = Values::from_pairs([(3, "c"), (1, "a"), (2, ""), (1, "aa")]);
        assert_eq!(v.get(1), Some("aa"));
        assert_eq!(v.get(2), None);
        assert_eq!(v.get(3), Some("c"));
        let w = v.with_changes(&[(3, String::new()), (7, "x".into())]);
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![(1, "aa"), (7, "x")]);
    }

    #[test]
    fn iso_has_millis_and_z() {
        assert_eq!(iso_millis(1_430_438_400_000), "2015-05-01T00:00:00.000Z");
    }
}
