//! Reading mapped rows back as HubSpot strings (for writeback and shadow comparison), and
//! recording the id HubSpot assigned to a row an application inserted.
//!
//! Typed columns are converted with [`SqlValue::to_hubspot`], so a value that came from
//! HubSpot reads back in HubSpot's own form (an echo compares equal as a string).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::{Context as _, StoreError},
    naming::quote_ident,
    origin::tag_transaction,
    schema::TableMapping,
    values::{ColumnType, SqlValue},
};

/// One stored row, with property values in HubSpot's string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// hubsync's key of the row.
    pub row_id: Uuid,
    /// HubSpot's id (`None` for a row an application inserted that HubSpot has not seen).
    pub hs_object_id: Option<i64>,
    /// Property name → HubSpot string (`None` = empty): every promoted column of the
    /// mapping, plus every key of `custom_properties`. A column wins over a
    /// `custom_properties` entry of the same name unless the column's type changed in
    /// HubSpot and the column is NULL (then the raw value is the truth).
    pub properties: BTreeMap<String, Option<String>>,
    /// Primary association columns: associated object → HubSpot id.
    pub primary: BTreeMap<String, Option<i64>>,
    /// HubSpot's `updatedAt` of the stored version.
    pub hubspot_updated_at: Option<DateTime<Utc>>,
    /// Set when archived or deleted in HubSpot.
    pub archived_at: Option<DateTime<Utc>>,
    /// For a merge loser, the survivor's id.
    pub merged_into: Option<i64>,
}

/// Reads the rows with these HubSpot ids (missing ids are simply absent), in ascending
/// id order.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed query, [`StoreError::Corrupt`] when a column no
/// longer has the type recorded in the catalog.
pub async fn read_rows_by_ids<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    ids: &[i64],
) -> Result<Vec<StoredRow>, StoreError> {
    read_rows_by_id_probes(client, mapping, ids, "").await
}

/// Like [`read_rows_by_ids`], but locks the rows (`FOR UPDATE`, in id order) until the
/// end of the caller's transaction, so that comparing them with HubSpot's values (the
/// shadow copy) and then writing cannot race an application's update of the same rows.
///
/// # Errors
/// As [`read_rows_by_ids`].
pub async fn read_rows_by_ids_for_update<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    ids: &[i64],
) -> Result<Vec<StoredRow>, StoreError> {
    read_rows_by_id_probes(client, mapping, ids, " FOR UPDATE").await
}

/// The rows with these ids, read in ascending id order with one index probe per id (the
/// `OFFSET 0` keeps the subquery from being flattened into a join), each probe followed by
/// `locking` (empty, or a locking clause). `hs_object_id = ANY($1)` lets the planner pick a
/// sequential scan, which it does for a table that grew since it was last analysed (a
/// backfill's): every batch then read the whole table, 40× slower for 5,000 ids among
/// 150,000 rows.
async fn read_rows_by_id_probes<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    ids: &[i64],
    locking: &str,
) -> Result<Vec<StoredRow>, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let sql = format!(
        "{} FROM unnest($1::int8[]) WITH ORDINALITY AS k(id, n) CROSS JOIN LATERAL \
         (SELECT * FROM {} t WHERE t.hs_object_id = k.id OFFSET 0{locking}) AS t ORDER BY k.n",
        select_list(mapping),
        mapping.qualified_table()
    );
    let rows = client.query(&sql, &[&ids]).await.during("read rows")?;
    rows.iter().map(|r| stored_row(mapping, r)).collect()
}

/// Reads the rows with these hubsync row ids.
///
/// # Errors
/// As [`read_rows_by_ids`].
pub async fn read_rows_by_row_ids<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    row_ids: &[Uuid],
) -> Result<Vec<StoredRow>, StoreError> {
    read_rows_where(client, mapping, "hubsync_row_id = ANY($1)", &row_ids).await
}

/// Reads the rows matching `condition` (with one parameter).
async fn read_rows_where<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    condition: &str,
    param: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Vec<StoredRow>, StoreError> {
    let sql = format!(
        "{} FROM {} t WHERE {condition}",
        select_list(mapping),
        mapping.qualified_table()
    );
    let rows = client.query(&sql, &[param]).await.during("read rows")?;
    rows.iter().map(|r| stored_row(mapping, r)).collect()
}

/// What [`assign_hs_object_id`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdAssignment {
    /// The row had no id and now has this one.
    Assigned,
    /// The row already had exactly this id (a retried call).
    AlreadySet,
    /// The row already has a different id; nothing changed.
    AlreadyHas(i64),
    /// Another row already holds this id (inbound sync stored the record first): the caller
    /// must reconcile the two rows; nothing changed.
    TakenBy(Uuid),
    /// No row has this row id (deleted meanwhile).
    RowMissing,
}

/// Records the id HubSpot assigned to a row an application inserted. Tags the transaction
/// as hubsync's own; call it inside a transaction (ideally the one that also acknowledges
/// the outbox entry) so that the capture triggers skip it.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed statement (a concurrent writer taking the id at the
/// same instant surfaces as a retryable-by-caller constraint error).
pub async fn assign_hs_object_id<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    row_id: Uuid,
    hs_object_id: i64,
) -> Result<IdAssignment, StoreError> {
    tag_transaction(client).await?;
    let table = mapping.qualified_table();
    let sql = format!(
        "WITH other AS (SELECT hubsync_row_id FROM {table}
                         WHERE hs_object_id = $2 AND hubsync_row_id <> $1),
              upd AS (UPDATE {table} SET hs_object_id = $2
                       WHERE hubsync_row_id = $1 AND hs_object_id IS NULL
                         AND NOT EXISTS (SELECT 1 FROM other)
                      RETURNING 1)
         SELECT (SELECT hubsync_row_id FROM other LIMIT 1),
                (SELECT count(*) FROM upd),
                EXISTS (SELECT 1 FROM {table} WHERE hubsync_row_id = $1),
                (SELECT hs_object_id FROM {table} WHERE hubsync_row_id = $1)"
    );
    let row = client
        .query_one(&sql, &[&row_id, &hs_object_id])
        .await
        .during("record a HubSpot id for a row")?;
    let other: Option<Uuid> = row.get(0);
    let updated: i64 = row.get(1);
    let exists: bool = row.get(2);
    let before: Option<i64> = row.get(3);
    Ok(match (other, updated, exists, before) {
        (Some(other), ..) => IdAssignment::TakenBy(other),
        (None, 1.., ..) => IdAssignment::Assigned,
        (None, _, false, _) => IdAssignment::RowMissing,
        (None, _, true, Some(id)) if id == hs_object_id => IdAssignment::AlreadySet,
        (None, _, true, Some(id)) => IdAssignment::AlreadyHas(id),
        // The row exists without an id but the update did not happen: only possible if it
        // got deleted or changed concurrently; report it as missing so the caller re-reads.
        (None, _, true, None) => IdAssignment::RowMissing,
    })
}

/// Links rows an application inserted to the HubSpot ids of records that carry their
/// `hubsync_row_id` (the unique hubsync-managed HubSpot property used for idempotent
/// creates), for rows that have no id yet. Call it before [`crate::upsert::upsert_records`]
/// for the same records, so that an inbound copy that arrives before writeback recorded the
/// id updates the application's row instead of inserting a duplicate (lessons.md 14).
/// Pairs whose row is missing, already has an id, or whose id another row holds are left
/// alone. Returns how many rows were linked. Tags the transaction as hubsync's own.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed statement.
pub async fn link_row_ids<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    pairs: &[(Uuid, i64)],
) -> Result<u64, StoreError> {
    if pairs.is_empty() {
        return Ok(0);
    }
    tag_transaction(client).await?;
    let mut by_row: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut seen_ids = std::collections::BTreeSet::new();
    for (row, id) in pairs {
        if seen_ids.insert(*id) {
            by_row.entry(*row).or_insert(*id);
        }
    }
    let rows: Vec<Uuid> = by_row.keys().copied().collect();
    let ids: Vec<i64> = by_row.values().copied().collect();
    let table = mapping.qualified_table();
    client
        .execute(
            &format!(
                "UPDATE {table} AS t SET hs_object_id = u.id
                   FROM unnest($1::uuid[], $2::int8[]) AS u(row_id, id)
                  WHERE t.hubsync_row_id = u.row_id AND t.hs_object_id IS NULL
                    AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.hs_object_id = u.id)"
            ),
            &[&rows, &ids],
        )
        .await
        .during("link rows to HubSpot ids")
}

/// `SELECT` of the system columns, every promoted column (`NUMERIC` as exact text) and the
/// primary association columns, of the table aliased `t`.
fn select_list(mapping: &TableMapping) -> String {
    let mut cols: Vec<String> = [
        "hubsync_row_id",
        "hs_object_id",
        "hubspot_updated_at",
        "archived_at",
        "merged_into",
        "custom_properties",
    ]
    .iter()
    .map(|c| format!("t.{c}"))
    .collect();
    for c in &mapping.columns {
        let q = quote_ident(&c.column);
        cols.push(match c.column_type {
            ColumnType::Numeric => format!("t.{q}::text"),
            _ => format!("t.{q}"),
        });
    }
    for p in &mapping.primary_columns {
        cols.push(format!("t.{}", quote_ident(&p.column)));
    }
    format!("SELECT {}", cols.join(", "))
}

/// Index of the first property column in [`select_list`].
const FIRST_PROPERTY_COLUMN: usize = 6;

fn stored_row(mapping: &TableMapping, row: &Row) -> Result<StoredRow, StoreError> {
    let corrupt = |what: &str, e: tokio_postgres::Error| {
        StoreError::Corrupt(format!(
            "column {what:?} of {} does not have its catalogued type: {e}",
            mapping.qualified_table()
        ))
    };
    let json: serde_json::Value = row
        .try_get(5)
        .map_err(|e| corrupt("custom_properties", e))?;
    let mut properties: BTreeMap<String, Option<String>> = match json {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
                (k, v)
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    for (i, c) in mapping.columns.iter().enumerate() {
        let idx = FIRST_PROPERTY_COLUMN + i;
        let value = read_value(row, idx, c.column_type).map_err(|e| corrupt(&c.column, e))?;
        // HubSpot's empty value is "": an empty string or array reads as empty too.
        let value = value.map(|v| v.to_hubspot()).filter(|s| !s.is_empty());
        if value.is_none() && c.type_changed && properties.contains_key(&c.property) {
            continue;
        }
        properties.insert(c.property.clone(), value);
    }
    let mut primary = BTreeMap::new();
    for (i, p) in mapping.primary_columns.iter().enumerate() {
        let idx = FIRST_PROPERTY_COLUMN + mapping.columns.len() + i;
        let id: Option<i64> = row.try_get(idx).map_err(|e| corrupt(&p.column, e))?;
        primary.insert(p.target_object.clone(), id);
    }
    Ok(StoredRow {
        row_id: row.try_get(0).map_err(|e| corrupt("hubsync_row_id", e))?,
        hs_object_id: row.try_get(1).map_err(|e| corrupt("hs_object_id", e))?,
        hubspot_updated_at: row
            .try_get(2)
            .map_err(|e| corrupt("hubspot_updated_at", e))?,
        archived_at: row.try_get(3).map_err(|e| corrupt("archived_at", e))?,
        merged_into: row.try_get(4).map_err(|e| corrupt("merged_into", e))?,
        properties,
        primary,
    })
}

/// Reads one typed column.
fn read_value(
    row: &Row,
    idx: usize,
    ty: ColumnType,
) -> Result<Option<SqlValue>, tokio_postgres::Error> {
    Ok(match ty {
        ColumnType::Text => row.try_get::<_, Option<String>>(idx)?.map(SqlValue::Text),
        ColumnType::Numeric => row
            .try_get::<_, Option<String>>(idx)?
            .map(SqlValue::Numeric),
        ColumnType::Date => row
            .try_get::<_, Option<NaiveDate>>(idx)?
            .map(SqlValue::Date),
        ColumnType::Timestamptz => row
            .try_get::<_, Option<DateTime<Utc>>>(idx)?
            .map(SqlValue::Timestamp),
        ColumnType::Boolean => row.try_get::<_, Option<bool>>(idx)?.map(SqlValue::Boolean),
        ColumnType::TextArray => row
            .try_get::<_, Option<Vec<Option<String>>>>(idx)?
            .map(|items| SqlValue::TextArray(items.into_iter().flatten().collect())),
    })
}
