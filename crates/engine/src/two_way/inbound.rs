//! The inbound merge: HubSpot records on their way into PostgreSQL for a two-way object are
//! merged field by field against the shadow copy and PostgreSQL's pending changes (the
//! outbox) before they are written (issue 3, lessons 14 and 15).
//!
//! Per field of each record:
//! - changed in HubSpot only → kept in the row (written to PostgreSQL), shadow advanced;
//! - equal to the shadow (an echo of hubsync's own write) → advanced in the shadow, and
//!   dropped from the row when PostgreSQL has a newer pending change of it (no flip-flop);
//! - older than what the shadow has seen → dropped;
//! - changed on both sides → the policy (`last-write-wins` by each side's version of that
//!   field: HubSpot's property timestamp, read from its history when the record's
//!   `updatedAt` would let HubSpot win; PostgreSQL's newest pending change of the column):
//!   HubSpot wins (kept, the pending PostgreSQL change
//!   of that field is acknowledged in the shadow so it is not sent), PostgreSQL wins (dropped
//!   from the row; the pending change is sent by the writer), or manual (dropped, both
//!   values recorded in `hubsync.conflicts`);
//! - changed in HubSpot against a `postgres-to-hubspot` field → dropped, and the PostgreSQL
//!   value is queued to be written back over it.
//!
//! Whole records are dropped when PostgreSQL deleted them (a pending DELETE, or a row
//! hubsync synced that no longer exists): a delete is never undone by an update racing it.
//! Records carrying the `hubsync_row_id` property are linked to the row that created them
//! first, so an inbound copy seen before the writer recorded the id never becomes a second
//! row (lesson 14).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use hubsync_store::{
    GenericClient, StoreError,
    rows::{StoredRow, link_row_ids, read_rows_by_ids_for_update},
    state::{
        audit::{self, AuditEntry, Direction as AuditDirection},
        conflicts, shadow,
    },
    upsert::RecordRow,
    values::canonical_hubspot,
};
use uuid::Uuid;

use super::{
    TwoWayObject,
    inbound_field::{InboundDecision, InboundField, RowValue, Tally, decide},
    object::{ARCHIVED_COLUMN, ROW_ID_PROPERTY},
    shadow_io::{self, ms, postgres_version},
    unrecorded,
};
use crate::merge::MergeContext;
use crate::model::{FieldValue, Observed, ShadowField, Side, Version};
use crate::policy::Direction;

/// What the inbound merge decided for a batch of HubSpot records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundOutcome {
    /// The rows to write to PostgreSQL (fields that must not be written are removed; whole
    /// records deleted in PostgreSQL are left out).
    pub rows: Vec<RecordRow>,
    /// Field values dropped as echoes of what both sides already agree on.
    pub echoes: u64,
    /// Field values dropped because PostgreSQL has a newer pending change, or as stale.
    pub held_back: u64,
    /// Conflicts settled by the policy.
    pub resolved_conflicts: u64,
    /// Conflicts queued for a person (`manual`).
    pub manual_conflicts: u64,
    /// Records left out because PostgreSQL deleted them.
    pub dropped_deleted: u64,
    /// Records linked to the row that created them through `hubsync_row_id`.
    pub linked: u64,
    /// `last-write-wins` conflicts decided by the field's own HubSpot timestamp (read from
    /// its property history) rather than the record's `updatedAt`.
    pub by_field_timestamp: u64,
}

/// PostgreSQL's pending (not yet sent) changes of one record: per changed column, the
/// version of its newest change (outbox id and capture time).
type PendingChange = HashMap<String, Version>;

/// One field of one incoming record, with its decision.
struct FieldPlan {
    field: String,
    hubspot: Observed,
    postgres: Option<Observed>,
    echo: Option<ShadowField>,
    decision: InboundDecision,
}

/// Merges HubSpot records of a two-way object against the shadow and PostgreSQL's pending
/// changes; returns the rows to write. Writes the shadow, conflicts and audit entries
/// through `client`: call it in the (tagged) transaction that then writes the rows, so
/// both commit together.
///
/// HubSpot's version of a field is the record's `updatedAt` unless a `last-write-wins`
/// conflict needs the field's own timestamp: those are read from HubSpot's property
/// history ([`TwoWayObject::history`]) for the records and properties in conflict only.
///
/// # Errors
/// Database errors (the caller's transaction is then unusable).
pub async fn inbound<C: GenericClient>(
    client: &C,
    object: &TwoWayObject,
    rows: Vec<RecordRow>,
    now: DateTime<Utc>,
) -> Result<InboundOutcome, StoreError> {
    let name = object.name();
    let mut out = InboundOutcome::default();
    let mut rows = rows;
    out.linked = link_by_row_id(client, object, &mut rows).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.hs_object_id).collect();
    // The batch's rows stay locked until the caller's transaction ends, and are locked
    // before anything is read: an application's update of one of them has either committed
    // (its outbox entry is read below) or waits until this batch is written and then
    // lands on top of it (and is sent). Without the lock, an update committing between
    // these reads and the write was overwritten with HubSpot's value, its outbox entry
    // then finding nothing to send: a lost change (soak seed 20001346).
    let locked = read_rows_by_ids_for_update(client, &object.mapping, &ids).await?;
    let deleted = deleted_in_postgres(client, object, &ids).await?;
    let pending = pending_changes(client, object, &ids).await?;
    let pending_ids: Vec<i64> = pending.keys().copied().collect();
    let current: HashMap<i64, StoredRow> = locked
        .into_iter()
        .filter_map(|r| r.hs_object_id.map(|id| (id, r)))
        .filter(|(id, _)| pending.contains_key(id))
        .collect();
    let shadows = shadow_io::load(client, name, &ids).await?;
    let sent = unrecorded::sent_values(client, object, &pending_ids).await?;
    let ctx = MergeContext {
        clock: object.clock,
        now_ms: ms(now),
    };

    // Every field decided with HubSpot's record version first.
    let mut records = Vec::with_capacity(rows.len());
    for mut row in rows {
        let id = row.hs_object_id;
        if deleted.contains(&id) {
            out.dropped_deleted += 1;
            continue;
        }
        let hs_version = Version::hubspot(ms(row.updated_at));
        let pg = pending.get(&id);
        // A pending archive in PostgreSQL (archived_at set) wins over HubSpot's live copy:
        // the row stays archived and the writer archives the record (delete wins).
        if let Some(archived) = pg
            .filter(|p| p.contains_key(ARCHIVED_COLUMN))
            .and_then(|_| current.get(&id))
            .and_then(|r| r.archived_at)
        {
            row.archived_at = Some(archived);
        }
        let record_shadow = shadows.get(&id);
        let mut fields = Vec::new();
        for (field, raw) in &row.properties {
            let rule = object.rules.resolve(field);
            if rule.direction == Direction::HubSpotToPostgres && object.rules.is_read_only(field) {
                continue; // HubSpot owns it outright: no shadow needed.
            }
            let hubspot = Observed::new(canonical(object, field, raw.clone()), hs_version);
            let postgres = pg.and_then(|p| pg_observation(object, field, p, current.get(&id)));
            let stored = record_shadow.and_then(|s| s.get(field));
            let echo = postgres.as_ref().and_then(|_| {
                let column = object.mapping.column_for(field)?;
                let sent = sent.get(&id).and_then(|s| s.get(&column.column));
                unrecorded::echo_shadow(stored, &hubspot.value, hs_version, sent, ctx.now_ms)
            });
            let mut plan = FieldPlan {
                field: field.clone(),
                hubspot,
                postgres,
                echo,
                decision: InboundDecision::default(),
            };
            plan.decision = plan.decide(stored, object, &ctx);
            fields.push(plan);
        }
        records.push((row, fields));
    }
    out.by_field_timestamp = order_by_field_timestamps(object, &mut records, &shadows, &ctx).await;

    let mut shadow_writes = Vec::new();
    let mut audits = Vec::new();
    let mut reassert: Vec<(i64, String)> = Vec::new();
    let mut kept = Vec::with_capacity(records.len());
    for (mut row, fields) in records {
        let id = row.hs_object_id;
        for FieldPlan {
            field, decision, ..
        } in fields
        {
            match decision.tally {
                Tally::None => {}
                Tally::Echo => out.echoes += 1,
                Tally::HeldBack => out.held_back += 1,
                Tally::Resolved => out.resolved_conflicts += 1,
                Tally::Manual => out.manual_conflicts += 1,
            }
            match decision.row {
                RowValue::Leave => {}
                RowValue::Set(v) => {
                    row.properties.insert(field.clone(), v);
                }
                RowValue::Drop => {
                    row.properties.remove(&field);
                }
            }
            if let Some(r) = &decision.audit {
                audits.push(
                    AuditEntry {
                        hs_object_id: Some(id),
                        ..AuditEntry::new(audit_direction(r.winner), name, "conflict_resolved")
                    }
                    .change(
                        &field,
                        r.overridden.as_deref(),
                        r.value.as_deref(),
                    ),
                );
            }
            if let Some((base, open)) = &decision.conflict {
                let c = shadow_io::new_conflict(name, id, &field, base.as_ref(), open);
                conflicts::record(client, &c).await?;
            }
            if let Some(s) = &decision.shadow {
                shadow_writes.push(shadow_io::to_store(name, id, &field, s));
            }
            if decision.resend {
                reassert.push((id, field));
            }
        }
        kept.push(row);
    }
    shadow::put_many(client, &shadow_writes).await?;
    audit::insert(client, &audits).await?;
    queue_resend(client, object, &reassert).await?;
    out.rows = kept;
    Ok(out)
}

impl FieldPlan {
    fn decide(
        &self,
        stored: Option<&ShadowField>,
        object: &TwoWayObject,
        ctx: &MergeContext,
    ) -> InboundDecision {
        let input = InboundField {
            stored,
            echo: self.echo.as_ref(),
            hubspot: &self.hubspot,
            postgres: self.postgres.as_ref(),
        };
        decide(input, object.rules.resolve(&self.field), ctx)
    }
}

/// Re-decides the `last-write-wins` conflicts HubSpot won by its record version with each
/// field's own timestamp (the newest history entry holding the value observed), read in
/// one batch read per 50 records. Returns how many fields were re-decided. If HubSpot
/// cannot be asked, the record version stands (logged): HubSpot keeps the field and
/// PostgreSQL's value is in the audit log.
async fn order_by_field_timestamps(
    object: &TwoWayObject,
    records: &mut [(RecordRow, Vec<FieldPlan>)],
    shadows: &shadow_io::Shadows,
    ctx: &MergeContext,
) -> u64 {
    let mut ids = Vec::new();
    let mut properties = BTreeSet::new();
    for (row, fields) in records.iter() {
        let wanted: Vec<&FieldPlan> = fields
            .iter()
            .filter(|f| f.decision.hubspot_won_by_time())
            .collect();
        if let (false, Ok(id)) = (wanted.is_empty(), u64::try_from(row.hs_object_id)) {
            ids.push(id);
            properties.extend(wanted.iter().map(|f| f.field.clone()));
        }
    }
    let Some(hubspot) = object.history.as_ref().filter(|_| !ids.is_empty()) else {
        return 0;
    };
    let properties: Vec<String> = properties.into_iter().collect();
    let read = hubspot
        .property_history(object.name(), &ids, &properties)
        .await;
    let Some(history) = read.map_err(|e| history_unavailable(object, &e)).ok() else {
        return 0;
    };
    let mut redecided = 0;
    for (row, fields) in records.iter_mut() {
        let id = row.hs_object_id;
        for plan in fields.iter_mut() {
            if !plan.decision.hubspot_won_by_time() {
                continue;
            }
            let raw = row.properties.get(&plan.field).cloned().flatten();
            let Some(at) = u64::try_from(id)
                .ok()
                .and_then(|k| history.written_at(k, &plan.field, raw.as_deref()))
            else {
                continue;
            };
            let version = Version::hubspot(ms(at)).min(plan.hubspot.version);
            plan.hubspot.version = version;
            if let Some(echo) = plan.echo.as_mut() {
                echo.hubspot_version = Some(version);
            }
            let stored = shadows.get(&id).and_then(|s| s.get(&plan.field));
            plan.decision = plan.decide(stored, object, ctx);
            redecided += 1;
        }
    }
    redecided
}

/// The audit direction of a write towards the loser of a conflict won by `winner`.
pub(crate) fn audit_direction(winner: Side) -> AuditDirection {
    match winner {
        Side::HubSpot => AuditDirection::HubspotToPostgres,
        Side::Postgres => AuditDirection::PostgresToHubspot,
    }
}

/// HubSpot's raw value in the canonical form the shadow keeps (what reading the column
/// back yields); a value the column cannot hold is compared verbatim.
pub(crate) fn canonical(object: &TwoWayObject, property: &str, raw: Option<String>) -> FieldValue {
    let raw = raw.filter(|s| !s.is_empty())?;
    match object.mapping.column_for(property) {
        Some(c) => canonical_hubspot(c.column_type, &raw).unwrap_or(Some(raw)),
        None => Some(raw),
    }
}

/// PostgreSQL's observation of `field` if its column has a pending change.
fn pg_observation(
    object: &TwoWayObject,
    field: &str,
    pending: &PendingChange,
    row: Option<&StoredRow>,
) -> Option<Observed> {
    let column = object.mapping.column_for(field)?;
    let version = *pending.get(&column.column)?;
    let value = row?.properties.get(field).cloned().flatten();
    Some(Observed::new(value, version))
}

/// Outbox entries of the records `$2`: by id, or by row key for entries captured before the
/// row was linked to its HubSpot id (a create HubSpot accepted but hubsync never recorded).
/// `{o}` is the outbox alias; the expression `record_id({o})` gives the entry's HubSpot id.
pub(crate) fn entries_of_records(object: &TwoWayObject, o: &str) -> (String, String) {
    let table = object.mapping.qualified_table();
    let record_id = format!(
        "coalesce({o}.hs_object_id, (SELECT t.hs_object_id FROM {table} t \
           WHERE t.hubsync_row_id = {o}.row_key::uuid))"
    );
    let filter = format!(
        "{o}.object = $1 AND ({o}.hs_object_id = ANY($2) OR ({o}.hs_object_id IS NULL AND \
           {o}.row_key IN (SELECT hubsync_row_id::text FROM {table} WHERE hs_object_id = ANY($2))))"
    );
    (record_id, filter)
}

/// Pending outbox changes (not deletes) of these HubSpot ids: per changed column, the
/// version of the newest entry that changed it.
async fn pending_changes<C: GenericClient>(
    client: &C,
    object: &TwoWayObject,
    ids: &[i64],
) -> Result<HashMap<i64, PendingChange>, StoreError> {
    let (record_id, filter) = entries_of_records(object, "o");
    let sql = format!(
        "SELECT {record_id} AS rid, c, max(o.id), max(o.changed_at) \
         FROM hubsync.outbox o CROSS JOIN LATERAL unnest(o.changed_columns) AS c \
         WHERE {filter} AND o.op <> 'DELETE' \
         GROUP BY rid, c"
    );
    let rows = client
        .query(&sql, &[&object.name(), &ids])
        .await
        .map_err(|e| StoreError::postgres("read pending outbox changes", e))?;
    let mut out: HashMap<i64, PendingChange> = HashMap::new();
    for r in &rows {
        let Some(id) = r.get::<_, Option<i64>>(0) else {
            continue;
        };
        let version = postgres_version(r.get(2), r.get(3));
        out.entry(id).or_default().insert(r.get(1), version);
    }
    Ok(out)
}

/// Ids PostgreSQL deleted: a pending DELETE in the outbox, or a record hubsync synced
/// whose row is gone.
async fn deleted_in_postgres<C: GenericClient>(
    client: &C,
    object: &TwoWayObject,
    ids: &[i64],
) -> Result<HashSet<i64>, StoreError> {
    let sql = format!(
        "SELECT hs_object_id FROM hubsync.outbox \
          WHERE object = $1 AND op = 'DELETE' AND hs_object_id = ANY($2) \
         UNION \
         SELECT s.hs_object_id FROM hubsync.record_state s \
          WHERE s.object = $1 AND s.hs_object_id = ANY($2) \
            AND NOT EXISTS (SELECT 1 FROM {} t WHERE t.hs_object_id = s.hs_object_id)",
        object.mapping.qualified_table()
    );
    let rows = client
        .query(&sql, &[&object.name(), &ids])
        .await
        .map_err(|e| StoreError::postgres("find records deleted in PostgreSQL", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Logs that the property history could not be read (the record versions stand).
fn history_unavailable(object: &TwoWayObject, e: &hubsync_hubspot::HubSpotError) {
    tracing::warn!(object = object.name(), error = %e,
        "HubSpot's property history could not be read: last-write-wins conflicts ordered by \
         the records' updatedAt");
}

/// Links records carrying `hubsync_row_id` to the row that created them when that row has
/// no id yet, and strips the property (it is hubsync's, not the user's).
async fn link_by_row_id<C: GenericClient>(
    client: &C,
    object: &TwoWayObject,
    rows: &mut [RecordRow],
) -> Result<u64, StoreError> {
    let mut pairs: Vec<(Uuid, i64)> = Vec::new();
    for row in rows.iter_mut() {
        if let Some(Some(key)) = row.properties.remove(ROW_ID_PROPERTY)
            && let Ok(key) = Uuid::parse_str(&key)
        {
            pairs.push((key, row.hs_object_id));
        }
    }
    link_row_ids(client, &object.mapping, &pairs).await
}

/// Links rows an application inserted to the HubSpot records that carry their row id
/// (`hubsync_row_id`), for records read from HubSpot, before they are converted to rows
/// (conversion may drop the property). Call it before writing the records.
///
/// # Errors
/// Database errors.
pub async fn link_records<C: GenericClient>(
    client: &C,
    mapping: &hubsync_store::schema::TableMapping,
    records: &[hubsync_hubspot::SimpleObject],
) -> Result<u64, StoreError> {
    let pairs: Vec<(Uuid, i64)> = records
        .iter()
        .filter_map(|r| {
            let key = Uuid::parse_str(r.property(ROW_ID_PROPERTY)?).ok()?;
            Some((key, i64::try_from(r.id).ok()?))
        })
        .collect();
    link_row_ids(client, mapping, &pairs).await
}

/// Queues PostgreSQL's value of `(id, property)` to be sent to HubSpot again (a change
/// HubSpot made to a field PostgreSQL owns), as an outbox entry the writer picks up.
async fn queue_resend<C: GenericClient>(
    client: &C,
    object: &TwoWayObject,
    fields: &[(i64, String)],
) -> Result<(), StoreError> {
    for (id, property) in fields {
        let Some(column) = object.mapping.column_for(property) else {
            continue;
        };
        let sql = format!(
            "INSERT INTO hubsync.outbox (object, source_table, op, row_key, hs_object_id, \
               changed_columns) \
             SELECT $1, $2, 'UPDATE', hubsync_row_id::text, hs_object_id, ARRAY[$3] \
             FROM {} WHERE hs_object_id = $4",
            object.mapping.qualified_table()
        );
        client
            .execute(
                &sql,
                &[
                    &object.name(),
                    &object.capture_spec().source_table(),
                    &column.column,
                    id,
                ],
            )
            .await
            .map_err(|e| StoreError::postgres("queue a value to send to HubSpot again", e))?;
    }
    Ok(())
}
