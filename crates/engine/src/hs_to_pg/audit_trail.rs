//! The audit trail of HubSpot → PostgreSQL writes: for every row a batch inserted or
//! updated, one `hubsync.audit` entry (direction `hubspot_to_postgres`) — `create` for a
//! new row (no values: they are in the row), `update` with each changed field's old → new
//! value (HubSpot's canonical string form) — none when no field changed. Written in the batch's transaction, so the
//! trail commits with the data. (The PostgreSQL → HubSpot writer and the two-way merge
//! audit their own decisions.)

use std::collections::{BTreeMap, BTreeSet};

use hubsync_store::{
    GenericClient, StoreError,
    catalog::ID_PROPERTY,
    rows::StoredRow,
    schema::TableMapping,
    state::audit::{self, AuditEntry, Direction},
    upsert::RecordRow,
    values::canonical_hubspot,
};

/// Audits the rows of `rows` whose ids are in `written`, given the rows as they were
/// before (`before`).
///
/// # Errors
/// PostgreSQL failures.
pub(crate) async fn record(
    tx: &impl GenericClient,
    mapping: &TableMapping,
    before: &[StoredRow],
    rows: &[RecordRow],
    written: &BTreeSet<i64>,
) -> Result<u64, StoreError> {
    let old: BTreeMap<i64, &StoredRow> = before
        .iter()
        .filter_map(|r| r.hs_object_id.map(|id| (id, r)))
        .collect();
    let canonical = |property: &str, v: Option<&str>| -> Option<String> {
        let v = v?;
        match mapping.column_for(property) {
            Some(c) => canonical_hubspot(c.column_type, v).ok().flatten(),
            None => Some(v.to_owned()),
        }
    };
    let entries: Vec<AuditEntry> = rows
        .iter()
        .filter(|r| written.contains(&r.hs_object_id))
        .filter_map(|r| {
            let Some(prev) = old.get(&r.hs_object_id) else {
                let mut e =
                    AuditEntry::new(Direction::HubspotToPostgres, &mapping.object, "create");
                e.hs_object_id = Some(r.hs_object_id);
                return Some(e);
            };
            let mut e = AuditEntry::new(Direction::HubspotToPostgres, &mapping.object, "update");
            e.hs_object_id = Some(r.hs_object_id);
            e.row_key = Some(prev.row_id.to_string());
            for (property, new) in &r.properties {
                if property == ID_PROPERTY {
                    continue; // the key itself, stored as hs_object_id
                }
                let new = canonical(property, new.as_deref());
                let was = prev.properties.get(property).cloned().flatten();
                if new != was {
                    e = e.change(property, was.as_deref(), new.as_deref());
                }
            }
            // A copy of the same version rewritten (a pass's lookback window) changed
            // nothing worth an entry.
            let changed = e.fields.as_object().is_some_and(|f| !f.is_empty())
                || prev.archived_at.is_some() != r.archived_at.is_some();
            changed.then_some(e)
        })
        .collect();
    audit::insert(tx, &entries).await
}
