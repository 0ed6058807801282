//! What to send to HubSpot for one record's coalesced outbox change, given its current row
//! and shadow: a create, an update of the fields that really changed (each merged against
//! the shadow, so echoes, held manual conflicts and stale values are not sent), an archive,
//! or nothing. Pure: the I/O is [`super::send`]'s.

use std::collections::{BTreeMap, HashMap};

use hubsync_store::{
    rows::StoredRow,
    state::outbox::{NetOp, RecordChange},
};

use crate::merge::{FieldInput, FieldOutcome, MergeContext, merge_field};
use crate::model::{FieldValue, Observed, ShadowField, Side};
use crate::two_way::{TwoWayObject, shadow_io::postgres_version};

/// The archive marker column.
const ARCHIVED_COLUMN: &str = "archived_at";

/// The HubSpot write a record needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    /// Nothing to send; acknowledge the entries.
    Nothing,
    /// Cannot be sent; mark the record failed with this reason.
    Refuse(String),
    /// Create (upsert keyed on the row id) with these properties.
    Create {
        /// Property → value (non-empty values of written columns).
        properties: BTreeMap<String, String>,
    },
    /// Update these properties; `shadows` are the shadow fields to store on success.
    Update {
        /// HubSpot id.
        hs_id: i64,
        /// Property → value (`""` clears).
        properties: BTreeMap<String, String>,
        /// Shadow fields after the write (acknowledged with HubSpot's `updatedAt`).
        shadows: BTreeMap<String, ShadowField>,
    },
    /// Archive the record.
    Archive {
        /// HubSpot id.
        hs_id: i64,
    },
    /// The row is gone and was never linked to a HubSpot id: archive the record HubSpot
    /// may hold for its row id (a create whose id was never recorded), if any.
    ArchiveByKey,
}

/// A primary association to set in HubSpot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PrimaryChange<'m> {
    /// The associated object (`companies`).
    pub(super) target: &'m str,
    /// The previous target id, if any.
    pub(super) old: Option<i64>,
    /// The new target id, if any.
    pub(super) new: Option<i64>,
}

/// The plan for one record.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Planned<'m> {
    /// The write.
    pub(super) action: Action,
    /// Values to write back over PostgreSQL edits of fields it may not change.
    pub(super) reverts: BTreeMap<String, FieldValue>,
    /// Primary association changes.
    pub(super) primary: Vec<PrimaryChange<'m>>,
    /// Fields held back by an open manual conflict.
    pub(super) held: u64,
}

/// Plans one record.
pub(super) fn plan<'m>(
    object: &'m TwoWayObject,
    change: &RecordChange,
    row: Option<&StoredRow>,
    shadow: Option<&HashMap<String, ShadowField>>,
    ctx: &MergeContext,
) -> Planned<'m> {
    let mut planned = Planned {
        action: Action::Nothing,
        reverts: BTreeMap::new(),
        primary: Vec::new(),
        held: 0,
    };
    let Some(row) = row.filter(|_| !matches!(change.op, NetOp::Delete | NetOp::Nothing)) else {
        planned.action = match change.hs_object_id.or(row.and_then(|r| r.hs_object_id)) {
            Some(hs_id) => Action::Archive { hs_id },
            None => Action::ArchiveByKey,
        };
        return planned;
    };
    let archive_changed = change.changed_columns.iter().any(|c| c == ARCHIVED_COLUMN);
    match (row.archived_at, row.hs_object_id) {
        (Some(_), Some(hs_id)) if archive_changed => {
            planned.action = Action::Archive { hs_id };
            return planned;
        }
        (Some(_), None) if archive_changed => {
            planned.action = Action::ArchiveByKey;
            return planned;
        }
        (Some(_), _) => return planned, // archived: later edits are not sent.
        (None, Some(_)) if archive_changed && was_archived(change) => {
            planned.action = Action::Refuse(
                "archived_at was cleared, but HubSpot has no API to restore an archived record: \
                 restore it in HubSpot's recycle bin (it then syncs back), or set archived_at again"
                    .to_owned(),
            );
            return planned;
        }
        _ => {}
    }
    planned.primary = primary_changes(object, change, row);
    let Some(hs_id) = row.hs_object_id else {
        let properties = object
            .written_columns()
            .filter_map(|c| {
                let v = row.properties.get(&c.property).cloned().flatten()?;
                Some((c.property.clone(), v))
            })
            .collect();
        planned.action = Action::Create { properties };
        return planned;
    };
    let version = postgres_version(change.version, change.changed_at);
    let mut properties = BTreeMap::new();
    let mut shadows = BTreeMap::new();
    for column in &change.changed_columns {
        let Some(mapping) = object.property_of_column(column) else {
            continue;
        };
        let field = mapping.property.as_str();
        let observed = Observed::new(row.properties.get(field).cloned().flatten(), version);
        let base = shadow.and_then(|s| s.get(field));
        let merged = merge_field(
            FieldInput {
                shadow: base,
                hubspot: None,
                postgres: Some(&observed),
            },
            object.rules.resolve(field),
            ctx,
        );
        match &merged.outcome {
            FieldOutcome::ApplyToHubSpot(v) => {
                properties.insert(field.to_owned(), v.clone().unwrap_or_default());
                if let Some(s) = merged.shadow {
                    shadows.insert(field.to_owned(), s);
                }
            }
            FieldOutcome::Conflict(r) if r.winner == Side::HubSpot => {
                planned.reverts.insert(field.to_owned(), r.value.clone());
            }
            FieldOutcome::Manual(_) => planned.held += 1,
            _ => {}
        }
    }
    if !properties.is_empty() {
        planned.action = Action::Update {
            hs_id,
            properties,
            shadows,
        };
    }
    planned
}

/// Whether the row was archived before this change (`archived_at` set in the old row).
fn was_archived(change: &RecordChange) -> bool {
    change
        .old_row
        .as_ref()
        .and_then(|r| r.get(ARCHIVED_COLUMN))
        .is_some_and(|v| !v.is_null())
}

/// Changed primary association columns: old value from the outbox, new from the row.
fn primary_changes<'m>(
    object: &'m TwoWayObject,
    change: &RecordChange,
    row: &StoredRow,
) -> Vec<PrimaryChange<'m>> {
    let creating = row.hs_object_id.is_none();
    object
        .mapping
        .primary_columns
        .iter()
        .filter(|p| creating || change.changed_columns.contains(&p.column))
        .filter_map(|p| {
            let old = if creating {
                None
            } else {
                change
                    .old_row
                    .as_ref()
                    .and_then(|r| r.get(&p.column))
                    .and_then(|v| v.as_i64())
            };
            let new = row.primary.get(&p.target_object).copied().flatten();
            (old != new).then_some(PrimaryChange {
                target: p.target_object.as_str(),
                old,
                new,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "../two_way/round_trip_tests.rs"]
mod round_trip_tests;
