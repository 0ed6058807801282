//! Property tests of two-way sync's decisions as the product makes them: a HubSpot record
//! and its PostgreSQL row edited at random on both sides and synchronised by rounds that
//! run the pull's per-field decision ([`crate::two_way::inbound_field::decide`], with the
//! field-timestamp lookup `inbound` does) and the push's plan ([`super::plan`]). The
//! rounds carry the results out the way the I/O does: rows written, shadows stored in the
//! store's form and read back, manual conflicts kept open, outbox entries acknowledged,
//! HubSpot acknowledging a write with its `updatedAt` and stamping only changed values.
//! Declared from `pg_to_hs/plan.rs` (the push planner is private to the writer).

use std::collections::{BTreeMap, HashMap};

use chrono::DateTime;
use hubsync_store::{
    rows::StoredRow,
    schema::{ColumnMapping, TableMapping},
    state::outbox::{NetOp, RecordChange},
    values::ColumnType,
};
use proptest::prelude::*;

use super::{Action, Planned, plan};
use crate::clock::SkewRule;
use crate::merge::MergeContext;
use crate::model::{FieldValue, Observed, OpenConflict, ShadowField, Side, Version};
use crate::policy::{ConflictPolicy, Direction, FieldOverride, FieldRule, FieldRules};
use crate::two_way::TwoWayObject;
use crate::two_way::inbound_field::{InboundField, RowValue, decide};
use crate::two_way::shadow_io::{from_store, new_conflict, to_store};

const FIELDS: [&str; 3] = ["email", "firstname", "phone"];
const ID: i64 = 1;
const START: i64 = 1_700_000_000_000;

/// A HubSpot property: its value and when it was set.
#[derive(Debug, Clone)]
struct HsField {
    value: FieldValue,
    at: i64,
}

/// A pending outbox entry (one changed column).
#[derive(Debug, Clone)]
struct Entry {
    id: i64,
    column: String,
    at: i64,
}

/// An open manual conflict as `hubsync.conflicts` keeps it.
#[derive(Debug, Clone)]
struct StoredConflict {
    hubspot: FieldValue,
    hubspot_at: i64,
    postgres: FieldValue,
    postgres_entry: i64,
    detected_at: i64,
}

#[derive(Debug)]
struct World {
    object: TwoWayObject,
    now: i64,
    hs: BTreeMap<String, HsField>,
    hs_updated: i64,
    pg: BTreeMap<String, FieldValue>,
    pg_seen: i64,
    outbox: Vec<Entry>,
    next_entry: i64,
    shadow: HashMap<String, ShadowField>,
    conflicts: BTreeMap<String, StoredConflict>,
    /// Writes made to either side since the last reset.
    writes: usize,
}

fn mapping() -> TableMapping {
    let column = |p: &str| ColumnMapping {
        property: p.into(),
        column: p.into(),
        column_type: ColumnType::Text,
        hs_type: "string".into(),
        field_type: "text".into(),
        label: p.into(),
        read_only: false,
        type_changed: false,
    };
    TableMapping {
        schema: "hubspot".into(),
        object: "contacts".into(),
        table: "contacts".into(),
        columns: FIELDS.iter().map(|f| column(f)).collect(),
        unpromoted: Default::default(),
        primary_columns: vec![],
    }
}

impl World {
    /// A record synced with every field "base".
    fn synced(rules: FieldRules) -> World {
        let base = Some("base".to_owned());
        let mut shadow = ShadowField::blank(START);
        shadow.value.clone_from(&base);
        shadow.acknowledge(Side::HubSpot, Version::hubspot(START));
        World {
            object: TwoWayObject::new(mapping(), rules),
            now: START,
            hs: FIELDS
                .iter()
                .map(|f| {
                    let field = HsField {
                        value: base.clone(),
                        at: START,
                    };
                    ((*f).to_owned(), field)
                })
                .collect(),
            hs_updated: START,
            pg: FIELDS
                .iter()
                .map(|f| ((*f).to_owned(), base.clone()))
                .collect(),
            pg_seen: START,
            outbox: Vec::new(),
            next_entry: 1,
            shadow: FIELDS
                .iter()
                .map(|f| ((*f).to_owned(), shadow.clone()))
                .collect(),
            conflicts: BTreeMap::new(),
            writes: 0,
        }
    }

    fn ctx(&self) -> MergeContext {
        MergeContext {
            clock: self.object.clock,
            now_ms: self.now,
        }
    }

    fn edit(&mut self, side: Side, field: &str, value: FieldValue, dt: i64) {
        self.now += dt;
        match side {
            Side::HubSpot => {
                // HubSpot stamps (and reports) only values that change, each write a later
                // millisecond than the record's last one: versions are milliseconds, and a
                // report no newer than one seen is taken for a stale duplicate.
                self.now = self.now.max(self.hs_updated + 1);
                if self.hs[field].value != value {
                    let at = self.now;
                    self.hs.insert(field.to_owned(), HsField { value, at });
                    self.hs_updated = at;
                }
            }
            Side::Postgres => {
                // Only columns that flow to HubSpot are captured (docs: current limits).
                if self.pg[field] != value && self.object.writes_back(field) {
                    self.pg.insert(field.to_owned(), value);
                    self.capture(field);
                }
            }
        }
    }

    fn capture(&mut self, column: &str) {
        self.outbox.push(Entry {
            id: self.next_entry,
            column: column.to_owned(),
            at: self.now,
        });
        self.next_entry += 1;
    }

    /// The shadow of `field` as `shadow_io::load` returns it (open conflict attached).
    fn loaded(&self, field: &str) -> Option<ShadowField> {
        let stored = self.shadow.get(field).cloned();
        let Some(c) = self.conflicts.get(field) else {
            return stored;
        };
        let no_base = stored.is_none();
        let mut s = stored.unwrap_or_else(|| ShadowField::blank(0));
        s.conflict = Some(OpenConflict {
            hubspot: Observed::new(c.hubspot.clone(), Version::hubspot(c.hubspot_at)),
            postgres: Observed::new(
                c.postgres.clone(),
                Version::postgres(c.detected_at, c.postgres_entry),
            ),
            no_base,
        });
        Some(s)
    }

    fn store_shadow(&mut self, field: &str, s: &ShadowField) {
        let back = from_store(&to_store("contacts", ID, field, s));
        self.shadow.insert(field.to_owned(), back);
    }

    fn set_pg(&mut self, field: &str, value: FieldValue) {
        if self.pg[field] != value {
            self.pg.insert(field.to_owned(), value);
            self.writes += 1;
        }
    }

    /// HubSpot → PostgreSQL: the record read (every field, versioned by `updatedAt`),
    /// merged field by field as `two_way::inbound` does, and the row written.
    fn pull(&mut self) {
        let ctx = self.ctx();
        let record_version = Version::hubspot(self.hs_updated);
        for field in FIELDS {
            let rule = self.object.rules.resolve(field);
            let mut hubspot = Observed::new(self.hs[field].value.clone(), record_version);
            let postgres = self.pending(field);
            let stored = self.loaded(field);
            let run = |hubspot: &Observed| {
                let input = InboundField {
                    stored: stored.as_ref(),
                    echo: None,
                    hubspot,
                    postgres: postgres.as_ref(),
                };
                decide(input, rule, &ctx)
            };
            let mut d = run(&hubspot);
            if d.hubspot_won_by_time() {
                // The field's own timestamp, from its property history.
                hubspot.version = Version::hubspot(self.hs[field].at).min(record_version);
                d = run(&hubspot);
            }
            match d.row {
                RowValue::Leave => self.set_pg(field, hubspot.value.clone()),
                RowValue::Set(v) => self.set_pg(field, v),
                RowValue::Drop => {}
            }
            if let Some(s) = &d.shadow {
                self.store_shadow(field, s);
            }
            if let Some((base, open)) = &d.conflict {
                let c = new_conflict("contacts", ID, field, base.as_ref(), open);
                let stored = StoredConflict {
                    hubspot: c.hubspot_value,
                    hubspot_at: c.hubspot_version.map_or(0, |t| t.timestamp_millis()),
                    postgres: c.postgres_value,
                    postgres_entry: c.postgres_version.unwrap_or(0),
                    detected_at: self.now,
                };
                self.conflicts.insert(field.to_owned(), stored);
            }
            if d.resend {
                self.capture(field);
            }
        }
        self.pg_seen = self.hs_updated;
    }

    /// PostgreSQL's pending change of `field`: the row's value, versioned by the newest
    /// entry that changed the column.
    fn pending(&self, field: &str) -> Option<Observed> {
        let newest = self.outbox.iter().rev().find(|e| e.column == field)?;
        Some(Observed::new(
            self.pg[field].clone(),
            Version::postgres(newest.at, newest.id),
        ))
    }

    /// PostgreSQL → HubSpot: verify (records HubSpot changed since PostgreSQL last saw them
    /// are merged first), then the claimed entries coalesced and planned by
    /// [`super::plan`], and the plan carried out.
    fn push(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if self.hs_updated > self.pg_seen {
            self.pull();
        }
        let Some(last) = self.outbox.last().cloned() else {
            return;
        };
        let mut columns: Vec<String> = Vec::new();
        for e in &self.outbox {
            if !columns.contains(&e.column) {
                columns.push(e.column.clone());
            }
        }
        let change = RecordChange {
            object: "contacts".into(),
            row_key: "row".into(),
            hs_object_id: Some(ID),
            op: NetOp::Update,
            changed_columns: columns,
            old_row: None,
            new_row: None,
            version: last.id,
            changed_at: DateTime::from_timestamp_millis(last.at).unwrap_or_default(),
            entry_ids: self.outbox.iter().map(|e| e.id).collect(),
        };
        let row = StoredRow {
            row_id: uuid::Uuid::nil(),
            hs_object_id: Some(ID),
            properties: self.pg.clone().into_iter().collect(),
            primary: BTreeMap::new(),
            hubspot_updated_at: DateTime::from_timestamp_millis(self.pg_seen),
            archived_at: None,
            merged_into: None,
        };
        let shadows: HashMap<String, ShadowField> = FIELDS
            .iter()
            .filter_map(|f| Some(((*f).to_owned(), self.loaded(f)?)))
            .collect();
        let Planned {
            action, reverts, ..
        } = plan(
            &self.object,
            &change,
            Some(&row),
            Some(&shadows),
            &self.ctx(),
        );
        for (field, value) in reverts {
            self.set_pg(&field, value);
        }
        match action {
            Action::Nothing => {}
            Action::Update {
                properties,
                shadows,
                ..
            } => {
                self.writes += 1;
                self.now += 1;
                for (field, value) in properties {
                    let value = Some(value).filter(|v| !v.is_empty());
                    if self.hs[&field].value != value {
                        let at = self.now;
                        self.hs.insert(field, HsField { value, at });
                        self.hs_updated = at;
                    }
                }
                for (field, mut s) in shadows {
                    s.acknowledge(Side::HubSpot, Version::hubspot(self.hs_updated));
                    self.store_shadow(&field, &s);
                }
            }
            other => panic!("the world only updates: {other:?}"),
        }
        self.outbox.clear();
    }
}

#[derive(Debug, Clone)]
enum Step {
    Edit {
        side: Side,
        field: usize,
        value: FieldValue,
        dt: i64,
    },
    Pull,
    Push,
}

fn value() -> impl Strategy<Value = FieldValue> {
    prop::option::weighted(
        0.85,
        prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from),
    )
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::HubSpot), Just(Side::Postgres)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (side(), 0..FIELDS.len(), value(), 0i64..3_000)
            .prop_map(|(side, field, value, dt)| Step::Edit { side, field, value, dt }),
        1 => Just(Step::Pull),
        1 => Just(Step::Push),
    ]
}

fn policy() -> impl Strategy<Value = ConflictPolicy> {
    prop_oneof![
        Just(ConflictPolicy::LastWriteWins),
        Just(ConflictPolicy::HubSpotWins),
        Just(ConflictPolicy::PostgresWins),
        Just(ConflictPolicy::Manual),
    ]
}

fn skew() -> impl Strategy<Value = SkewRule> {
    (prop::sample::select(vec![0u64, 5, 1_000]), side()).prop_map(|(window_ms, tie_winner)| {
        SkewRule {
            window_ms,
            tie_winner,
        }
    })
}

/// Two-way rules with a policy and skew rule, and possibly one-way overrides.
fn rules() -> impl Strategy<Value = FieldRules> {
    let direction = prop_oneof![
        4 => Just(None),
        1 => Just(Some(Direction::HubSpotToPostgres)),
        1 => Just(Some(Direction::PostgresToHubSpot)),
    ];
    (policy(), skew(), direction, 0..FIELDS.len()).prop_map(|(policy, skew, dir, field)| {
        let rules = FieldRules::new(FieldRule {
            direction: Direction::TwoWay,
            policy,
        })
        .with_skew(skew);
        match dir {
            Some(d) => rules.with_override(
                FIELDS[field],
                FieldOverride {
                    direction: Some(d),
                    policy: None,
                },
            ),
            None => rules,
        }
    })
}

/// Runs `steps` (edits, pulls, pushes) on `w`.
fn run(w: &mut World, steps: &[Step]) {
    for s in steps {
        match s {
            Step::Edit {
                side,
                field,
                value,
                dt,
            } => w.edit(*side, FIELDS[*field], value.clone(), *dt),
            Step::Pull => w.pull(),
            Step::Push => w.push(),
        }
    }
}

/// A full pass as `hubsync sync --once` runs it: pull, then push.
fn pass(w: &mut World) {
    w.pull();
    w.push();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever happened, once both sides stop changing two passes settle every field
    /// without an open manual conflict to one value on both sides, and a further pass
    /// writes nothing to either side: every change made one trip, no ping-pong.
    #[test]
    fn sync_settles_and_then_writes_nothing(rules in rules(),
                                            steps in prop::collection::vec(step(), 0..24)) {
        let mut w = World::synced(rules);
        run(&mut w, &steps);
        pass(&mut w);
        pass(&mut w);
        w.writes = 0;
        pass(&mut w);
        prop_assert_eq!(w.writes, 0, "{:#?}", w);
        for field in FIELDS {
            if !w.conflicts.contains_key(field) {
                prop_assert_eq!(&w.hs[field].value, &w.pg[field], "{}: {:#?}", field, w);
            }
        }
    }

    /// The same field edited on both sides between two passes (other HubSpot fields
    /// edited before, between or after): the policy picks the value, `last-write-wins` by
    /// that field's own two timestamps under the skew rule, whatever the record's
    /// `updatedAt` says; `manual` writes nothing and keeps both values.
    #[test]
    fn the_policy_decides_a_two_sided_edit(policy in policy(), skew in skew(),
                                           hubspot_first in any::<bool>(),
                                           gaps in prop::array::uniform3(0i64..3_000),
                                           other_after in any::<bool>()) {
        let rules = FieldRules::new(FieldRule { direction: Direction::TwoWay, policy })
            .with_skew(skew);
        let mut w = World::synced(rules);
        let (field, other) = ("firstname", "phone");
        let h = Some("from-hubspot".to_owned());
        let p = Some("from-postgres".to_owned());
        let order = if hubspot_first {
            [Side::HubSpot, Side::Postgres]
        } else {
            [Side::Postgres, Side::HubSpot]
        };
        w.edit(order[0], field, if hubspot_first { h.clone() } else { p.clone() }, gaps[0]);
        w.edit(order[1], field, if hubspot_first { p.clone() } else { h.clone() }, gaps[1]);
        if other_after {
            w.edit(Side::HubSpot, other, Some("later".to_owned()), gaps[2]);
        }
        let hs_at = w.hs[field].at;
        let pg_entry = w.outbox.iter().find(|e| e.column == field).cloned();
        pass(&mut w);
        let (hs_now, pg_now) = (w.hs[field].value.clone(), w.pg[field].clone());
        let expected = match policy {
            ConflictPolicy::HubSpotWins => Some(h.clone()),
            ConflictPolicy::PostgresWins => Some(p.clone()),
            ConflictPolicy::Manual => None,
            ConflictPolicy::LastWriteWins => {
                let e = pg_entry.ok_or_else(|| TestCaseError::fail("no entry"))?;
                let d = skew.last_writer(Version::hubspot(hs_at), Version::postgres(e.at, e.id));
                Some(if d.winner == Side::HubSpot { h.clone() } else { p.clone() })
            }
        };
        match expected {
            Some(v) => {
                prop_assert_eq!(&hs_now, &v, "{:#?}", w);
                prop_assert_eq!(&pg_now, &v, "{:#?}", w);
            }
            None => {
                prop_assert_eq!((&hs_now, &pg_now), (&h, &p), "{:#?}", w);
                prop_assert!(w.conflicts.contains_key(field));
            }
        }
    }

    /// A field changed on one side only (once or several times) ends with that side's last
    /// value on both sides, however its pulls and pushes interleave with edits of the
    /// other fields on both sides: no echo, stale report or unrelated change reverts it,
    /// and a second change is not taken for a conflict with the first.
    #[test]
    fn one_sided_edits_reach_the_other_side(policy in policy(), skew in skew(),
                                            side in side(),
                                            at in prop::collection::vec(0usize..12, 1..4),
                                            steps in prop::collection::vec(step(), 0..12)) {
        let rules = FieldRules::new(FieldRule { direction: Direction::TwoWay, policy })
            .with_skew(skew);
        let mut w = World::synced(rules);
        // The field under test is FIELDS[0]; the other steps edit the other fields.
        let others: Vec<Step> = steps
            .into_iter()
            .map(|s| match s {
                Step::Edit { side, field, value, dt } => {
                    Step::Edit { side, field: 1 + field % (FIELDS.len() - 1), value, dt }
                }
                other => other,
            })
            .collect();
        let mut at = at;
        at.sort_unstable();
        let mut all = Vec::new();
        let mut n = 0;
        for i in 0..=others.len() {
            while at.get(n).is_some_and(|a| (*a).min(others.len()) == i) {
                all.push(Step::Edit { side, field: 0, value: Some(format!("changed{n}")), dt: 1 });
                n += 1;
            }
            all.extend(others.get(i).cloned());
        }
        run(&mut w, &all);
        pass(&mut w);
        pass(&mut w);
        let expected = Some(format!("changed{}", n - 1));
        prop_assert_eq!(&w.hs[FIELDS[0]].value, &expected, "{:#?}", w);
        prop_assert_eq!(&w.pg[FIELDS[0]], &expected, "{:#?}", w);
    }
}
