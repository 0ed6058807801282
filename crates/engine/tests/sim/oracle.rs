//! What the configured policy dictates after a round, computed from the recorded history
//! alone (docs/conflicts.md): per record, live or gone; per live field, the value both
//! sides must hold — or, under `manual`, the two values left in place with an open conflict.
//!
//! Per field, against the value both sides agreed on after the previous round: a side
//! *changed* it when its last edit differs from that value; changed on one side → that
//! side's value; on both to the same value → that value; to different values → a conflict,
//! settled by the policy (`hubspot-wins`, `postgres-wins`; `last-write-wins` by source
//! versions: either side may win, and the loser must be in the audit log or the conflicts
//! table). A delete on either side wins over every update of the round; a HubSpot restore
//! brings the record back with its agreed values; a HubSpot merge leaves the loser
//! tombstoned with the survivor's id and fills the survivor's empty fields with the loser's
//! values.

use std::collections::BTreeMap;

use hubsync_engine::policy::ConflictPolicy;

use super::script::{FIELDS, Op, Side};

/// The value a field must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldExpect {
    /// Both sides hold this value.
    Value(Option<String>),
    /// Both sides hold one of the two (`last-write-wins`); the other is the loser.
    Either(Option<String>, Option<String>),
    /// Both sides hold the value; the overridden one (`loser`) must be recorded.
    Won {
        value: Option<String>,
        loser: Option<String>,
    },
    /// `manual`: each side keeps its own value and a conflict is open.
    Manual {
        hubspot: Option<String>,
        postgres: Option<String>,
    },
}

/// What a record must look like after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordExpect {
    /// Archived in HubSpot, deleted or archived in PostgreSQL.
    Gone,
    /// Merged away in HubSpot into record `survivor`: no live copy on either side, the row
    /// tombstoned with the survivor's HubSpot id.
    MergedInto(usize),
    /// One live copy on each side with these fields.
    Live([FieldExpect; 3]),
}

/// The agreed values of a record's fields.
pub(crate) type Values = [Option<String>; 3];

/// The history's model: per record, whether it is live and its agreed values (kept for
/// gone records: a restore brings them back).
#[derive(Debug, Default)]
pub(crate) struct Model {
    records: BTreeMap<usize, (bool, Values)>,
}

impl Model {
    /// Expectations after a round whose edits were `ops`, in order.
    pub(crate) fn expect(
        &self,
        ops: &[&Op],
        policy: impl Fn(usize) -> ConflictPolicy,
    ) -> BTreeMap<usize, RecordExpect> {
        let mut out = BTreeMap::new();
        let mut touched: BTreeMap<usize, Vec<&Op>> = BTreeMap::new();
        for op in ops {
            for rec in op.recs() {
                touched.entry(rec).or_default().push(op);
            }
        }
        for (rec, agreed) in &self.records {
            if !touched.contains_key(rec) {
                let e = match agreed {
                    (false, _) => RecordExpect::Gone,
                    (true, v) => RecordExpect::Live(v.clone().map(FieldExpect::Value)),
                };
                out.insert(*rec, e);
            }
        }
        for (rec, ops) in touched {
            let base = self.records.get(&rec).cloned();
            let merged = ops.iter().find_map(|op| match op {
                Op::Merge { survivor, loser } if *loser == rec => Some(*survivor),
                _ => None,
            });
            let e = match merged {
                Some(survivor) => RecordExpect::MergedInto(survivor),
                None => record(base, &ops, &policy, |loser| self.values(loser)),
            };
            out.insert(rec, e);
        }
        out
    }

    /// Records the agreed state after a successful round.
    pub(crate) fn commit(&mut self, rec: usize, live: bool, values: Values) {
        self.records.insert(rec, (live, values));
    }

    /// The agreed values of a record.
    pub(crate) fn values(&self, rec: usize) -> Values {
        self.records
            .get(&rec)
            .map(|r| r.1.clone())
            .unwrap_or_default()
    }
}

fn record(
    base: Option<(bool, Values)>,
    ops: &[&Op],
    policy: &impl Fn(usize) -> ConflictPolicy,
    agreed_of: impl Fn(usize) -> Values,
) -> RecordExpect {
    let (live, mut agreed) = base.unwrap_or_default();
    let mut last: [[Option<Option<String>>; 2]; 3] = Default::default();
    let mut deleted = !live;
    for op in ops {
        match op {
            Op::Create { side, value, .. } => {
                agreed = Values::default();
                deleted = false;
                last[0][idx(*side)] = Some(Some(value.clone()));
            }
            Op::Update {
                side, field, value, ..
            } => last[*field][idx(*side)] = Some(value.clone()),
            Op::Delete { .. } => deleted = true,
            Op::Restore { .. } => deleted = false,
            // Associations: checked against HubSpot by `check::links`.
            Op::Link { .. } => {}
            // The survivor's empty fields take the loser's values: a HubSpot-side change.
            Op::Merge { loser, .. } => {
                let from = agreed_of(*loser);
                for (f, v) in from.iter().enumerate() {
                    let now = last[f][0].clone().unwrap_or_else(|| agreed[f].clone());
                    if now.is_none() && v.is_some() {
                        last[f][0] = Some(v.clone());
                    }
                }
            }
        }
    }
    if deleted {
        return RecordExpect::Gone;
    }
    let fields = std::array::from_fn(|f| {
        let a = &agreed[f];
        let changed = |s: usize| last[f][s].clone().filter(|v| v != a);
        match (changed(0), changed(1)) {
            (None, None) => FieldExpect::Value(a.clone()),
            (Some(h), None) => FieldExpect::Value(h),
            (None, Some(p)) => FieldExpect::Value(p),
            (Some(h), Some(p)) if h == p => FieldExpect::Value(h),
            (Some(h), Some(p)) => match policy(f) {
                ConflictPolicy::HubSpotWins => FieldExpect::Won { value: h, loser: p },
                ConflictPolicy::PostgresWins => FieldExpect::Won { value: p, loser: h },
                ConflictPolicy::LastWriteWins => FieldExpect::Either(h, p),
                ConflictPolicy::Manual => FieldExpect::Manual {
                    hubspot: h,
                    postgres: p,
                },
            },
        }
    });
    RecordExpect::Live(fields)
}

fn idx(side: Side) -> usize {
    match side {
        Side::HubSpot => 0,
        Side::Postgres => 1,
    }
}

/// The field names, for reports.
pub(crate) fn field_name(f: usize) -> &'static str {
    FIELDS[f]
}
