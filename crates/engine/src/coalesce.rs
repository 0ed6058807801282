//! Coalescing a record's rapid PostgreSQL changes (its pending outbox entries) into the one
//! net change the merge sees, so an edit burst makes one HubSpot call and no intermediate
//! value is ever sent (lessons item 15): INSERT then UPDATEs → one create with the final
//! values; UPDATE × n → the last value of each changed column, with the newest version;
//! UPDATE then DELETE → delete only; INSERT then DELETE → nothing; DELETE then INSERT → a
//! re-created (restored) row with the inserted values.
//!
//! Pure: the store reads and acknowledges the entries; this only folds them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{FieldValue, Observed, SideRecord, Version};

/// The statement an outbox entry captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutboxOp {
    /// `INSERT`: `fields` holds the whole new row.
    Insert,
    /// `UPDATE`: `fields` holds the changed columns' new values.
    Update,
    /// `DELETE` (or `archived_at` set): `fields` is ignored.
    Delete,
}

/// One captured change of one record, values in canonical HubSpot form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxChange {
    /// The change's PostgreSQL version: commit time and outbox id (commit order).
    pub version: Version,
    /// What the statement did.
    pub op: OutboxOp,
    /// Column values (see [`OutboxOp`]).
    pub fields: BTreeMap<String, FieldValue>,
}

/// A record's net change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Coalesced {
    /// No net change (no entries, or created and deleted again).
    Nothing,
    /// A new row: every column with the version that last set it.
    Create(BTreeMap<String, Observed>),
    /// An existing row changed: the changed columns' final values and versions.
    Update(BTreeMap<String, Observed>),
    /// An existing row was deleted, at this version.
    Delete(Version),
    /// An existing row was deleted and inserted again (at `version`) with these values.
    Recreate(Version, BTreeMap<String, Observed>),
}

impl Coalesced {
    /// The merge's view of the net change (`None` for [`Coalesced::Nothing`]).
    #[must_use]
    pub fn into_side_record(self) -> Option<SideRecord> {
        match self {
            Coalesced::Nothing => None,
            Coalesced::Create(f) | Coalesced::Update(f) => Some(SideRecord::Live(f)),
            Coalesced::Delete(v) => Some(SideRecord::Archived(v)),
            Coalesced::Recreate(v, f) => Some(SideRecord::Restored(v, f)),
        }
    }
}

/// Folds one record's entries, in version order whatever order they are given in.
#[must_use]
pub fn coalesce(entries: &[OutboxChange]) -> Coalesced {
    let mut sorted: Vec<&OutboxChange> = entries.iter().collect();
    sorted.sort_by_key(|e| e.version);
    let Some(first) = sorted.first() else {
        return Coalesced::Nothing;
    };
    let existed_before = first.op != OutboxOp::Insert;
    let mut exists = existed_before;
    // Set once the row was (re)inserted within these entries: its version.
    let mut inserted: Option<Version> = None;
    let mut deleted: Option<Version> = None;
    let mut fields: BTreeMap<String, Observed> = BTreeMap::new();
    for e in sorted {
        let stamp = |f: &BTreeMap<String, FieldValue>| {
            f.iter()
                .map(|(k, v)| (k.clone(), Observed::new(v.clone(), e.version)))
                .collect()
        };
        match e.op {
            OutboxOp::Insert => {
                fields = stamp(&e.fields);
                inserted = Some(e.version);
                exists = true;
            }
            OutboxOp::Update if exists => {
                let changed: BTreeMap<String, Observed> = stamp(&e.fields);
                fields.extend(changed);
            }
            // An update of a row that is not there cannot be captured; ignore it.
            OutboxOp::Update => {}
            OutboxOp::Delete => {
                fields.clear();
                inserted = None;
                deleted = Some(e.version);
                exists = false;
            }
        }
    }
    match (existed_before, exists, inserted, deleted) {
        (false, false, _, _) => Coalesced::Nothing,
        (false, true, _, _) => Coalesced::Create(fields),
        (true, false, _, Some(v)) => Coalesced::Delete(v),
        (true, true, Some(v), _) => Coalesced::Recreate(v, fields),
        (true, true, None, _) => Coalesced::Update(fields),
        // existed, gone, but no delete seen: unreachable by construction; no net change.
        (true, false, _, None) => Coalesced::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn change(seq: i64, op: OutboxOp, fields: &[(&str, Option<&str>)]) -> OutboxChange {
        OutboxChange {
            version: Version::postgres(seq * 10, seq),
            op,
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        }
    }

    fn values(c: &Coalesced) -> BTreeMap<String, FieldValue> {
        match c {
            Coalesced::Create(f) | Coalesced::Update(f) | Coalesced::Recreate(_, f) => f
                .iter()
                .map(|(k, o)| (k.clone(), o.value.clone()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    #[test]
    fn insert_then_updates_is_one_create() {
        let c = coalesce(&[
            change(
                1,
                OutboxOp::Insert,
                &[("email", Some("a")), ("phone", None)],
            ),
            change(2, OutboxOp::Update, &[("phone", Some("1"))]),
            change(3, OutboxOp::Update, &[("email", Some("b"))]),
        ]);
        assert!(matches!(c, Coalesced::Create(_)));
        let expected = [("email", Some("b")), ("phone", Some("1"))]
            .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)));
        assert_eq!(values(&c), BTreeMap::from(expected));
    }

    #[test]
    fn updates_keep_last_value_and_newest_version() {
        let c = coalesce(&[
            change(5, OutboxOp::Update, &[("email", Some("c"))]),
            change(
                4,
                OutboxOp::Update,
                &[("email", Some("b")), ("phone", Some("9"))],
            ),
        ]);
        let Coalesced::Update(f) = c else {
            panic!("expected an update, got {c:?}")
        };
        assert_eq!(
            f["email"],
            Observed::new(Some("c".into()), Version::postgres(50, 5))
        );
        assert_eq!(f["phone"].version, Version::postgres(40, 4));
    }

    #[test]
    fn deletes() {
        let update_delete = coalesce(&[
            change(1, OutboxOp::Update, &[("email", Some("b"))]),
            change(2, OutboxOp::Delete, &[]),
        ]);
        assert_eq!(update_delete, Coalesced::Delete(Version::postgres(20, 2)));
        let insert_delete = coalesce(&[
            change(1, OutboxOp::Insert, &[]),
            change(2, OutboxOp::Delete, &[]),
        ]);
        assert_eq!(insert_delete, Coalesced::Nothing);
        let recreate = coalesce(&[
            change(1, OutboxOp::Delete, &[]),
            change(2, OutboxOp::Insert, &[("email", Some("x"))]),
        ]);
        assert!(matches!(recreate, Coalesced::Recreate(v, _) if v == Version::postgres(20, 2)));
        assert_eq!(coalesce(&[]), Coalesced::Nothing);
        assert!(matches!(
            recreate.into_side_record(),
            Some(SideRecord::Restored(_, f)) if f.len() == 1
        ));
    }

    /// A row's state: `None` when absent.
    type Row = Option<BTreeMap<String, FieldValue>>;

    fn apply_entry(row: Row, e: &OutboxChange) -> Row {
        match e.op {
            OutboxOp::Insert => Some(e.fields.clone()),
            OutboxOp::Update => row.map(|mut r| {
                r.extend(e.fields.clone());
                r
            }),
            OutboxOp::Delete => None,
        }
    }

    fn apply_net(row: Row, c: &Coalesced) -> Row {
        match c {
            Coalesced::Nothing => row,
            Coalesced::Create(_) | Coalesced::Recreate(..) => Some(values(c)),
            Coalesced::Update(_) => row.map(|mut r| {
                r.extend(values(c));
                r
            }),
            Coalesced::Delete(_) => None,
        }
    }

    /// A valid history for a row that exists at the start iff `exists`: no insert of an
    /// existing row, no update or delete of a missing one.
    fn history() -> impl Strategy<Value = (bool, Vec<OutboxChange>)> {
        let step = (
            0u8..3,
            proptest::collection::btree_map(
                prop_oneof![Just("email"), Just("phone"), Just("stage")].prop_map(str::to_owned),
                prop_oneof![
                    Just(None),
                    Just(Some("a".to_owned())),
                    Just(Some("b".to_owned()))
                ],
                0..3,
            ),
        );
        (any::<bool>(), proptest::collection::vec(step, 0..10)).prop_map(|(start, steps)| {
            let mut exists = start;
            let mut out = Vec::new();
            for (i, (kind, fields)) in steps.into_iter().enumerate() {
                let op = match (exists, kind) {
                    (false, _) => OutboxOp::Insert,
                    (true, 0) => OutboxOp::Delete,
                    (true, _) => OutboxOp::Update,
                };
                exists = op != OutboxOp::Delete;
                let seq = i64::try_from(i).unwrap_or(i64::MAX) + 1;
                out.push(OutboxChange {
                    version: Version::postgres(seq, seq),
                    op,
                    fields,
                });
            }
            (start, out)
        })
    }

    proptest! {
        /// Applying the net change equals applying the entries one by one, whatever order
        /// the entries are handed over in, and every field carries the version of the
        /// entry that last set it.
        #[test]
        fn coalescing_preserves_the_final_state((start, entries) in history(),
                                                 rotate in 0usize..10) {
            let initial: Row = start.then(|| {
                BTreeMap::from([("email".to_owned(), Some("orig".to_owned()))])
            });
            let one_by_one = entries.iter().fold(initial.clone(), apply_entry);
            let mut shuffled = entries.clone();
            if !shuffled.is_empty() {
                let n = rotate % shuffled.len();
                shuffled.rotate_left(n);
            }
            let net = coalesce(&shuffled);
            prop_assert_eq!(apply_net(initial, &net), one_by_one);
            if let Coalesced::Create(f) | Coalesced::Update(f) | Coalesced::Recreate(_, f) = &net {
                for (name, obs) in f {
                    let last = entries.iter().rev().find(|e| e.fields.contains_key(name)
                        || e.op == OutboxOp::Delete);
                    prop_assert_eq!(last.map(|e| e.version), Some(obs.version));
                }
            }
        }
    }
}
