//! The planner: merges many records of one object and batches the results into what each
//! writer does — PostgreSQL upserts and archives, HubSpot creates, updates and archives —
//! plus the manual-conflict queue, the audit log and the shadow updates.
//!
//! Carrying out a plan (the I/O pipelines' job), per record:
//! - commit a record's shadow update in the same PostgreSQL transaction as its PostgreSQL
//!   writes, and only after HubSpot accepted its HubSpot writes; a record whose HubSpot write
//!   failed keeps its old shadow (and its outbox entry) and is simply merged again;
//! - after a HubSpot write, [`crate::model::ShadowField::acknowledge`] the fields with the
//!   `updatedAt` HubSpot returned, and after a PostgreSQL write with its commit version, so
//!   older events still in flight are recognised as stale (lessons item 15);
//! - send creates with the record key as the unique idempotency property (lessons 12, 14).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::merge::{FieldOutcome, MergeContext, Resolution};
use crate::model::{FieldValue, HsObjectId, OpenConflict, RecordKey, ShadowRecord, Side};
use crate::policy::FieldRules;
use crate::record::{RecordAction, RecordConflict, RecordInput, RecordMerge, merge_record};

/// How a PostgreSQL row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PostgresWriteKind {
    /// A new row from a new HubSpot record (upsert: it may already exist).
    Insert,
    /// Changed fields of an existing row.
    Update,
    /// Clear `archived_at`, then apply the fields.
    Restore,
}

/// One row write to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresWrite {
    /// The record.
    pub key: RecordKey,
    /// HubSpot's id (the row's primary key once known).
    pub hs_id: Option<HsObjectId>,
    /// Insert, update or restore.
    pub kind: PostgresWriteKind,
    /// Column values to set, canonical HubSpot form.
    pub fields: BTreeMap<String, FieldValue>,
}

/// One record create in HubSpot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubSpotCreate {
    /// The record key: send it as the unique idempotency property.
    pub key: RecordKey,
    /// Properties to set (only those that may flow to HubSpot, only non-empty ones).
    pub fields: BTreeMap<String, FieldValue>,
}

/// One record update in HubSpot: only the changed properties (`None` clears a property).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubSpotUpdate {
    /// The record.
    pub key: RecordKey,
    /// HubSpot's id.
    pub hs_id: HsObjectId,
    /// Properties to set.
    pub fields: BTreeMap<String, FieldValue>,
}

/// A record to archive on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    /// The record.
    pub key: RecordKey,
    /// HubSpot's id, if known (always set for HubSpot archives).
    pub hs_id: Option<HsObjectId>,
}

/// What a queued conflict is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictKind {
    /// A field under `manual` changed on both sides.
    Field {
        /// The property / column.
        field: String,
        /// Both values with their versions.
        values: OpenConflict,
        /// The last agreed value (`None` also when there never was one).
        base: FieldValue,
    },
    /// A record-level change that cannot be applied automatically.
    Record(RecordConflict),
}

/// An entry for the conflicts table (`hubsync conflicts list`). Upsert by (key, field): the
/// same open conflict is reported by every merge until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedConflict {
    /// The record.
    pub key: RecordKey,
    /// HubSpot's id, if known.
    pub hs_id: Option<HsObjectId>,
    /// The conflict.
    pub kind: ConflictKind,
}

/// An overridden value, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The record.
    pub key: RecordKey,
    /// HubSpot's id, if known.
    pub hs_id: Option<HsObjectId>,
    /// The property / column.
    pub field: String,
    /// What was kept, what was overwritten, and why.
    pub resolution: Resolution,
}

/// Counters for metrics and for the simulation's "no echo loop" check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanStats {
    /// Records merged.
    pub records: usize,
    /// Field echoes dropped.
    pub echoes: usize,
    /// Stale field observations ignored.
    pub stale: usize,
    /// Fields both sides changed to the same value.
    pub agreed: usize,
    /// Conflicts settled by a policy, a direction or a delete.
    pub resolved: usize,
    /// Conflicts queued for a person (fields and records).
    pub queued: usize,
}

/// Everything one planning round asks the writers to do. Every list is sorted by record key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Row writes to PostgreSQL.
    pub postgres_writes: Vec<PostgresWrite>,
    /// Rows to archive (`archived_at`).
    pub postgres_archives: Vec<Archive>,
    /// Records to create in HubSpot.
    pub hubspot_creates: Vec<HubSpotCreate>,
    /// Records to update in HubSpot.
    pub hubspot_updates: Vec<HubSpotUpdate>,
    /// Records to archive in HubSpot.
    pub hubspot_archives: Vec<Archive>,
    /// Entries for the manual conflict queue.
    pub conflicts: Vec<QueuedConflict>,
    /// Overridden values.
    pub audit: Vec<AuditEntry>,
    /// New shadow per record whose shadow changed; see the module doc for when to commit.
    pub shadow_updates: BTreeMap<RecordKey, ShadowRecord>,
    /// Counters.
    pub stats: PlanStats,
}

impl Plan {
    /// Number of write operations (rows and records) the plan asks for on both sides.
    #[must_use]
    pub fn write_count(&self) -> usize {
        self.postgres_writes.len()
            + self.postgres_archives.len()
            + self.hubspot_creates.len()
            + self.hubspot_updates.len()
            + self.hubspot_archives.len()
    }

    /// Adds one record's merge to the plan.
    pub fn push(&mut self, merge: RecordMerge, rules: &FieldRules) {
        let RecordMerge {
            key,
            hs_id,
            action,
            fields,
            audit,
            shadow,
        } = merge;
        self.stats.records += 1;
        let mut to_pg = BTreeMap::new();
        let mut to_hs = BTreeMap::new();
        for (name, outcome) in &fields {
            match outcome {
                FieldOutcome::Echo(_) => self.stats.echoes += 1,
                FieldOutcome::Stale(_) => self.stats.stale += 1,
                FieldOutcome::Agreed => self.stats.agreed += 1,
                FieldOutcome::Conflict(_) => self.stats.resolved += 1,
                FieldOutcome::Manual(values) => {
                    self.stats.queued += 1;
                    let base = shadow
                        .as_ref()
                        .and_then(|s| s.fields.get(name))
                        .filter(|_| !values.no_base)
                        .and_then(|f| f.value.clone());
                    self.conflicts.push(QueuedConflict {
                        key: key.clone(),
                        hs_id,
                        kind: ConflictKind::Field {
                            field: name.clone(),
                            values: values.clone(),
                            base,
                        },
                    });
                }
                FieldOutcome::NoOp
                | FieldOutcome::ApplyToPostgres(_)
                | FieldOutcome::ApplyToHubSpot(_) => {}
            }
            match outcome.write() {
                Some((Side::Postgres, v)) => to_pg.insert(name.clone(), v.clone()),
                Some((Side::HubSpot, v)) => to_hs.insert(name.clone(), v.clone()),
                None => None,
            };
        }
        self.stats.resolved += audit
            .iter()
            .filter(|(f, _)| !matches!(fields.get(f), Some(FieldOutcome::Conflict(_))))
            .count();
        self.audit
            .extend(audit.into_iter().map(|(field, resolution)| AuditEntry {
                key: key.clone(),
                hs_id,
                field,
                resolution,
            }));

        // Every agreed value (of fields that may flow from `from`, if given).
        let full = |from: Option<Side>| -> BTreeMap<String, FieldValue> {
            shadow
                .iter()
                .flat_map(|s| &s.fields)
                .filter(|(name, f)| {
                    from.is_none_or(|from| rules.resolve(name).direction.allows_from(from))
                        && f.conflict.is_none()
                })
                .map(|(name, f)| (name.clone(), f.value.clone()))
                .collect()
        };
        let mut pg_kind = PostgresWriteKind::Update;
        match action {
            RecordAction::Update | RecordAction::Deleted => {}
            RecordAction::CreateInPostgres => {
                pg_kind = PostgresWriteKind::Insert;
                to_pg = full(None);
            }
            RecordAction::RestoreInPostgres => {
                // The archived row may hold values from before the delete (even edits the
                // delete superseded): the restored record returns in its agreed state, so
                // write every field.
                pg_kind = PostgresWriteKind::Restore;
                to_pg = full(None);
            }
            RecordAction::CreateInHubSpot => {}
            RecordAction::ArchiveInHubSpot => {
                self.hubspot_archives.push(Archive {
                    key: key.clone(),
                    hs_id,
                });
            }
            RecordAction::ArchiveInPostgres => {
                self.postgres_archives.push(Archive {
                    key: key.clone(),
                    hs_id,
                });
            }
            RecordAction::Conflict(c) => {
                self.stats.queued += 1;
                self.conflicts.push(QueuedConflict {
                    key: key.clone(),
                    hs_id,
                    kind: ConflictKind::Record(c),
                });
            }
        }
        if pg_kind != PostgresWriteKind::Update || !to_pg.is_empty() {
            self.postgres_writes.push(PostgresWrite {
                key: key.clone(),
                hs_id,
                kind: pg_kind,
                fields: to_pg,
            });
        }
        // A record HubSpot has no id for yet is created (idempotently) with all its values.
        match hs_id {
            None if action == RecordAction::CreateInHubSpot || !to_hs.is_empty() => {
                let fields = full(Some(Side::Postgres))
                    .into_iter()
                    .filter(|(_, v)| v.is_some())
                    .collect();
                self.hubspot_creates.push(HubSpotCreate {
                    key: key.clone(),
                    fields,
                });
            }
            Some(hs_id) if !to_hs.is_empty() => {
                self.hubspot_updates.push(HubSpotUpdate {
                    key: key.clone(),
                    hs_id,
                    fields: to_hs,
                });
            }
            _ => {}
        }
        if let Some(shadow) = shadow {
            self.shadow_updates.insert(key, shadow);
        }
    }

    /// Sorts every list by record key, so the plan does not depend on input order.
    fn sort(&mut self) {
        self.postgres_writes.sort_by(|a, b| a.key.cmp(&b.key));
        self.postgres_archives.sort_by(|a, b| a.key.cmp(&b.key));
        self.hubspot_creates.sort_by(|a, b| a.key.cmp(&b.key));
        self.hubspot_updates.sort_by(|a, b| a.key.cmp(&b.key));
        self.hubspot_archives.sort_by(|a, b| a.key.cmp(&b.key));
        self.conflicts.sort_by(|a, b| a.key.cmp(&b.key));
        self.audit
            .sort_by(|a, b| (&a.key, &a.field).cmp(&(&b.key, &b.field)));
    }
}

/// Merges every record (against the object's rules) and batches the result. Records whose
/// shadow did not change are left out of `shadow_updates`.
#[must_use]
pub fn plan(
    inputs: impl IntoIterator<Item = RecordInput>,
    rules: &FieldRules,
    ctx: &MergeContext,
) -> Plan {
    let mut plan = Plan::default();
    for input in inputs {
        let merge = merge_record(&input, rules, ctx);
        let unchanged = merge.shadow == input.shadow;
        let key = merge.key.clone();
        plan.push(merge, rules);
        if unchanged {
            plan.shadow_updates.remove(&key);
        }
    }
    plan.sort();
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
