//! Merge of one whole record: its life cycle (create, delete, restore) decided against the
//! shadow's tombstone and the object's direction, then every field through
//! [`crate::merge::merge_field`].
//!
//! Delete rule (docs/conflicts.md): a delete (PostgreSQL `DELETE` or `archived_at` set,
//! HubSpot archive) wins over a concurrent update on the other side whatever the conflict
//! policy; the record is archived on the other side and the overridden field values go to
//! the audit log. The shadow keeps a tombstone, and a tombstoned record is never revived by
//! a late update (the update is ignored and audited), only by an explicit restore: a HubSpot
//! restore is copied to PostgreSQL (`archived_at` cleared); a PostgreSQL restore cannot be
//! copied (HubSpot has no API to restore an archived record) and is queued as a conflict.
//! Creates, deletes and restores against the object's direction are queued as conflicts
//! too, never applied or dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::is_newer;
use crate::merge::{FieldInput, FieldOutcome, MergeContext, Resolution, ResolvedBy, merge_field};
use crate::model::{
    HsObjectId, RecordKey, ShadowField, ShadowRecord, Side, SideRecord, Tombstone, Version,
};
pub use crate::model::{RecordChange, RecordConflict};
use crate::policy::FieldRules;

/// Everything known about one record in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInput {
    /// The caller's identity of the record.
    pub key: RecordKey,
    /// HubSpot's id, if the record exists there (or existed).
    pub hs_id: Option<HsObjectId>,
    /// The shadow copy, if the record was ever synced.
    pub shadow: Option<ShadowRecord>,
    /// What HubSpot says now, if it was looked at.
    pub hubspot: Option<SideRecord>,
    /// What PostgreSQL says now, if it was looked at.
    pub postgres: Option<SideRecord>,
}

/// What happens to the record as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordAction {
    /// Field writes (possibly none) on a record that exists on both sides.
    Update,
    /// Create the record in HubSpot from the row (idempotently, keyed by the record key).
    CreateInHubSpot,
    /// Insert the HubSpot record into PostgreSQL.
    CreateInPostgres,
    /// Archive the record in HubSpot (deleted in PostgreSQL).
    ArchiveInHubSpot,
    /// Archive the row (set `archived_at`; deleted in HubSpot).
    ArchiveInPostgres,
    /// Clear the row's `archived_at` and apply HubSpot's fields (restored in HubSpot).
    RestoreInPostgres,
    /// Deleted on both sides: nothing to write (late updates ignored and audited).
    Deleted,
    /// Nothing written; queued for a person.
    Conflict(RecordConflict),
}

/// The merge of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMerge {
    /// The record's identity.
    pub key: RecordKey,
    /// HubSpot's id, if known.
    pub hs_id: Option<HsObjectId>,
    /// The record-level action.
    pub action: RecordAction,
    /// Per-field outcomes (empty for archives and record conflicts).
    pub fields: BTreeMap<String, FieldOutcome>,
    /// Field values overridden by a policy, a direction or a delete, for the audit log.
    pub audit: Vec<(String, Resolution)>,
    /// The shadow after the plan is carried out (`None`: still nothing to remember).
    pub shadow: Option<ShadowRecord>,
}

/// Drops a lifecycle observation (archive/restore) no newer than one already seen.
fn fresh<'a>(
    side: Side,
    obs: Option<&'a SideRecord>,
    shadow: Option<&ShadowRecord>,
) -> Option<&'a SideRecord> {
    let obs = obs?;
    match (obs.lifecycle_version(), shadow) {
        (Some(v), Some(s)) if !is_newer(v, s.lifecycle(side)) => None,
        _ => Some(obs),
    }
}

/// Merges one record. Pure and deterministic.
#[must_use]
pub fn merge_record(input: &RecordInput, rules: &FieldRules, ctx: &MergeContext) -> RecordMerge {
    let shadow = input.shadow.as_ref();
    let hs = fresh(Side::HubSpot, input.hubspot.as_ref(), shadow);
    let pg = fresh(Side::Postgres, input.postgres.as_ref(), shadow);
    let mut merge = RecordMerge {
        key: input.key.clone(),
        hs_id: input.hs_id.or(shadow.and_then(|s| s.hs_id)),
        action: RecordAction::Update,
        fields: BTreeMap::new(),
        audit: Vec::new(),
        shadow: input.shadow.clone(),
    };
    if let Some(open) = shadow.and_then(|s| s.conflict) {
        // A queued record conflict holds every write until a person clears it or the side
        // that caused it reports a newer archive/restore.
        let news = [hs, pg]
            .into_iter()
            .flatten()
            .any(|r| r.lifecycle_version().is_some());
        if !news {
            merge.action = RecordAction::Conflict(open);
            return merge;
        }
        if let Some(next) = merge.shadow.as_mut() {
            next.conflict = None;
        }
    }
    if shadow.is_some_and(|s| s.tombstone.is_some()) {
        tombstoned(&mut merge, hs, pg, rules, ctx);
        return merge;
    }
    match (hs, pg) {
        (Some(SideRecord::Archived(h)), Some(SideRecord::Archived(p))) => {
            let next = merge.shadow.get_or_insert_with(ShadowRecord::default);
            next.see_lifecycle(Side::HubSpot, *h);
            next.see_lifecycle(Side::Postgres, *p);
            next.tombstone = Some(Tombstone {
                side: Side::HubSpot,
                version: *h,
            });
            merge.action = RecordAction::Deleted;
        }
        (Some(SideRecord::Archived(v)), other) => {
            deleted_on(&mut merge, Side::HubSpot, *v, other, rules)
        }
        (other, Some(SideRecord::Archived(v))) => {
            deleted_on(&mut merge, Side::Postgres, *v, other, rules)
        }
        (hs, pg) => live(&mut merge, hs, pg, rules, ctx),
    }
    if let Some(next) = merge.shadow.as_mut() {
        next.hs_id = merge.hs_id;
    }
    merge
}

/// Queues a record conflict and remembers it in the shadow (with the archive/restore that
/// caused it, so only a newer one re-opens the question).
fn raise(merge: &mut RecordMerge, conflict: RecordConflict, cause: Option<(Side, Version)>) {
    merge.action = RecordAction::Conflict(conflict);
    let next = merge.shadow.get_or_insert_with(ShadowRecord::default);
    next.conflict = Some(conflict);
    if let Some((side, version)) = cause {
        next.see_lifecycle(side, version);
    }
}

/// The record was deleted on `side` at `version`; `other` is the other side's observation.
fn deleted_on(
    merge: &mut RecordMerge,
    side: Side,
    version: Version,
    other: Option<&SideRecord>,
    rules: &FieldRules,
) {
    if merge.shadow.is_none() && other.is_none() {
        // Never synced and nothing on the other side: remember the tombstone only, so a late
        // event cannot create the record.
        merge.action = RecordAction::Deleted;
    } else if !rules.object().direction.allows_from(side) {
        let c = RecordConflict::AgainstDirection {
            side,
            change: RecordChange::Delete,
        };
        raise(merge, c, Some((side, version)));
        return;
    } else if side == Side::Postgres && merge.hs_id.is_none() {
        merge.action = RecordAction::Deleted; // never reached HubSpot: nothing to archive
    } else {
        merge.action = match side {
            Side::HubSpot => RecordAction::ArchiveInPostgres,
            Side::Postgres => RecordAction::ArchiveInHubSpot,
        };
    }
    let next = merge.shadow.get_or_insert_with(ShadowRecord::default);
    overridden_by_delete(&mut merge.audit, next, side, side.other(), other);
    next.see_lifecycle(side, version);
    next.tombstone = Some(Tombstone { side, version });
}

/// Audits (and marks as seen) the field changes made on `updater` that a delete on `deleter`
/// overrides, so a re-presented update is not audited twice.
fn overridden_by_delete(
    audit: &mut Vec<(String, Resolution)>,
    shadow: &mut ShadowRecord,
    deleter: Side,
    updater: Side,
    update: Option<&SideRecord>,
) {
    let (winner, loser) = (deleter, updater);
    for (name, obs) in update.and_then(SideRecord::fields).into_iter().flatten() {
        let field = shadow.fields.get(name);
        let changed =
            field.is_none_or(|f| is_newer(obs.version, f.version(loser)) && obs.value != f.value);
        if !changed {
            continue;
        }
        audit.push((
            name.clone(),
            Resolution {
                winner,
                value: None,
                overridden: obs.value.clone(),
                reason: ResolvedBy::Deleted,
            },
        ));
        match shadow.fields.get_mut(name) {
            Some(f) => f.acknowledge(loser, obs.version),
            None => {
                let mut f = ShadowField::blank(0);
                f.acknowledge(loser, obs.version);
                shadow.fields.insert(name.clone(), f);
            }
        }
    }
}

/// The record is tombstoned: only an explicit restore can bring it back.
fn tombstoned(
    merge: &mut RecordMerge,
    hs: Option<&SideRecord>,
    pg: Option<&SideRecord>,
    rules: &FieldRules,
    ctx: &MergeContext,
) {
    let direction = rules.object().direction;
    match (hs, pg) {
        (Some(h @ SideRecord::Restored(..)), Some(p @ SideRecord::Restored(..))) => {
            live(merge, Some(h), Some(p), rules, ctx);
        }
        (Some(h @ SideRecord::Restored(..)), _) if direction.allows_from(Side::HubSpot) => {
            // The restored record starts afresh on HubSpot's side: its values count as
            // changes against the shadow even if a delete overrode them before, so each field
            // follows its direction (copied to the row, or reverted in HubSpot).
            let next = merge.shadow.get_or_insert_with(ShadowRecord::default);
            for field in next.fields.values_mut() {
                field.hubspot_version = None;
            }
            live(merge, Some(h), None, rules, ctx);
            merge.action = RecordAction::RestoreInPostgres;
        }
        (Some(SideRecord::Restored(v, _)), _) => {
            let c = RecordConflict::AgainstDirection {
                side: Side::HubSpot,
                change: RecordChange::Restore,
            };
            raise(merge, c, Some((Side::HubSpot, *v)));
        }
        (_, Some(SideRecord::Restored(v, _))) => {
            let c = if direction.allows_from(Side::Postgres) {
                RecordConflict::RestoreNotPossibleInHubSpot
            } else {
                RecordConflict::AgainstDirection {
                    side: Side::Postgres,
                    change: RecordChange::Restore,
                }
            };
            raise(merge, c, Some((Side::Postgres, *v)));
        }
        (hs, pg) => {
            merge.action = RecordAction::Deleted;
            let next = merge.shadow.get_or_insert_with(ShadowRecord::default);
            let winner = next.tombstone.map_or(Side::HubSpot, |t| t.side);
            for (side, obs) in [(Side::HubSpot, hs), (Side::Postgres, pg)] {
                match obs {
                    Some(SideRecord::Archived(v)) => next.see_lifecycle(side, *v),
                    // A late update to a deleted record: ignored, audited once.
                    Some(live) => {
                        overridden_by_delete(&mut merge.audit, next, winner, side, Some(live));
                    }
                    None => {}
                }
            }
        }
    }
}

/// Neither side archived (or the record is being restored): merge every field and decide
/// whether this is a create or an update.
fn live(
    merge: &mut RecordMerge,
    hs: Option<&SideRecord>,
    pg: Option<&SideRecord>,
    rules: &FieldRules,
    ctx: &MergeContext,
) {
    let direction = rules.object().direction;
    let is_new = merge.shadow.is_none();
    let hs_live = hs.is_some_and(|r| r.fields().is_some());
    let pg_live = pg.is_some_and(|r| r.fields().is_some());
    let action = if !hs_live && !pg_live {
        RecordAction::Update
    } else if merge.hs_id.is_none() {
        if direction.allows_from(Side::Postgres) {
            RecordAction::CreateInHubSpot
        } else {
            RecordAction::Conflict(RecordConflict::AgainstDirection {
                side: Side::Postgres,
                change: RecordChange::Create,
            })
        }
    } else if is_new && !pg_live {
        if direction.allows_from(Side::HubSpot) {
            RecordAction::CreateInPostgres
        } else {
            RecordAction::Conflict(RecordConflict::AgainstDirection {
                side: Side::HubSpot,
                change: RecordChange::Create,
            })
        }
    } else {
        RecordAction::Update
    };
    if let RecordAction::Conflict(c) = action {
        raise(merge, c, None);
        return;
    }
    merge.action = action;

    let empty = BTreeMap::new();
    let hs_fields = hs.and_then(SideRecord::fields).unwrap_or(&empty);
    let pg_fields = pg.and_then(SideRecord::fields).unwrap_or(&empty);
    let mut next = merge.shadow.clone().unwrap_or_default();
    let names: BTreeSet<&String> = next
        .fields
        .keys()
        .chain(hs_fields.keys())
        .chain(pg_fields.keys())
        .collect();
    let mut fields = BTreeMap::new();
    let mut shadow_fields = BTreeMap::new();
    for name in names {
        let input = FieldInput {
            shadow: next.fields.get(name),
            hubspot: hs_fields.get(name),
            postgres: pg_fields.get(name),
        };
        let m = merge_field(input, rules.resolve(name), ctx);
        if let FieldOutcome::Conflict(r) = &m.outcome {
            merge.audit.push((name.clone(), r.clone()));
        }
        if let Some(s) = m.shadow.or_else(|| next.fields.get(name).cloned()) {
            shadow_fields.insert(name.clone(), s);
        }
        fields.insert(name.clone(), m.outcome);
    }
    if action == RecordAction::CreateInPostgres {
        // A new row takes every value of the new HubSpot record, including fields that
        // otherwise only flow to HubSpot: there is no PostgreSQL value to protect yet.
        for (name, obs) in hs_fields {
            shadow_fields.entry(name.clone()).or_insert_with(|| {
                let mut f = ShadowField::blank(ctx.now_ms);
                f.value.clone_from(&obs.value);
                f.origin = Some(Side::HubSpot);
                f.acknowledge(Side::HubSpot, obs.version);
                f
            });
        }
    }
    next.fields = shadow_fields;
    next.tombstone = None;
    for (side, obs) in [(Side::HubSpot, hs), (Side::Postgres, pg)] {
        if let Some(v) = obs.and_then(SideRecord::lifecycle_version) {
            next.see_lifecycle(side, v);
        }
    }
    merge.fields = fields;
    if !(is_new && next.fields.is_empty() && next == ShadowRecord::default()) {
        merge.shadow = Some(next);
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
