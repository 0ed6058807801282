//! Junction rows as PostgreSQL → HubSpot writeback sees them: the HubSpot ids behind the
//! `hubsync_row_id`s an application named, and the rows rewritten (as hubsync's own,
//! uncaptured write) to exactly what HubSpot accepted, so the next pull finds them equal.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::AssociationMapping;
use crate::{
    error::{Context as _, StoreError},
    naming::qualified,
};

/// For each `hubsync_row_id` of `schema.table` that exists: the record's HubSpot id
/// (`None` while it is not yet created in HubSpot). Unknown row ids are absent.
///
/// # Errors
/// Database errors.
pub async fn hubspot_ids_of_rows(
    client: &impl GenericClient,
    schema: &str,
    table: &str,
    row_ids: &[Uuid],
) -> Result<HashMap<Uuid, Option<i64>>, StoreError> {
    if row_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT hubsync_row_id, hs_object_id FROM {} WHERE hubsync_row_id = ANY($1)",
                qualified(schema, table)
            ),
            &[&row_ids],
        )
        .await
        .during("read the HubSpot ids of rows")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A junction row's association as HubSpot accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentLink {
    /// The junction row (`hubsync_row_id`).
    pub row_id: Uuid,
    /// The last outbox entry sent for the row: a newer entry means the application changed
    /// the row again, and the row is left for that change.
    pub version: i64,
    /// From-side HubSpot id.
    pub from_id: i64,
    /// To-side HubSpot id.
    pub to_id: i64,
    /// The type HubSpot has.
    pub type_id: i32,
    /// Its category.
    pub category: String,
    /// Its label (`None` for the unlabeled type).
    pub label: Option<String>,
}

/// Rewrites junction rows to what HubSpot accepted (ids filled in for rows that named a
/// record by row id, the default type resolved, HubSpot's category and label); a row whose
/// association another row already holds is removed instead. Rows changed again since
/// (newer outbox entries) are left alone. Run inside a tagged transaction. Returns the
/// rows changed.
///
/// # Errors
/// Database errors.
pub async fn record_sent_links(
    client: &impl GenericClient,
    mapping: &AssociationMapping,
    links: &[SentLink],
) -> Result<u64, StoreError> {
    if links.is_empty() {
        return Ok(0);
    }
    let rids: Vec<Uuid> = links.iter().map(|l| l.row_id).collect();
    let versions: Vec<i64> = links.iter().map(|l| l.version).collect();
    let froms: Vec<i64> = links.iter().map(|l| l.from_id).collect();
    let tos: Vec<i64> = links.iter().map(|l| l.to_id).collect();
    let types: Vec<i32> = links.iter().map(|l| l.type_id).collect();
    let categories: Vec<&str> = links.iter().map(|l| l.category.as_str()).collect();
    let labels: Vec<Option<&str>> = links.iter().map(|l| l.label.as_deref()).collect();
    let object = mapping.outbox_object();
    let table = mapping.qualified_table();
    let [f, t, ..] = mapping.quoted_columns();
    let live = "WITH s AS (
          SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[], $5::int4[],
                               $6::text[], $7::text[]) AS s(rid, ver, f, t, ty, c, l)),
        live AS (
          SELECT s.* FROM s WHERE NOT EXISTS (
            SELECT 1 FROM hubsync.outbox o
             WHERE o.object = $8 AND o.row_key = s.rid::text AND o.id > s.ver))";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &rids,
        &versions,
        &froms,
        &tos,
        &types,
        &categories,
        &labels,
        &object,
    ];
    let removed = client
        .execute(
            &format!(
                "{live}
                 DELETE FROM {table} j USING live
                  WHERE j.hubsync_row_id = live.rid
                    AND (EXISTS (SELECT 1 FROM {table} d
                                  WHERE d.{f} = live.f AND d.{t} = live.t AND d.type_id = live.ty
                                    AND d.hubsync_row_id <> live.rid)
                         OR EXISTS (SELECT 1 FROM live l
                                     WHERE (l.f, l.t, l.ty) = (live.f, live.t, live.ty)
                                       AND l.rid < live.rid))"
            ),
            &params,
        )
        .await
        .during("remove junction rows HubSpot already had")?;
    let updated = client
        .execute(
            &format!(
                "{live}
                 UPDATE {table} j SET {f} = live.f, {t} = live.t, type_id = live.ty,
                        category = live.c, label = live.l, synced_at = now()
                   FROM live
                  WHERE j.hubsync_row_id = live.rid
                    AND (j.{f}, j.{t}, j.type_id, j.category, j.label)
                        IS DISTINCT FROM (live.f, live.t, live.ty, live.c, live.l)"
            ),
            &params,
        )
        .await
        .during("record sent associations")?;
    Ok(removed + updated)
}
