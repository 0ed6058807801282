//! Records that leave HubSpot: archived or deleted records (soft or hard delete) and merge
//! losers (tombstoned with the survivor's id, links re-pointed to the survivor).
//!
//! Soft delete is the default: the row stays with `archived_at` set, which is what lets a
//! late, stale copy of the record be refused instead of resurrecting it (the upsert guard
//! never un-archives with an equal `updatedAt`) and what keeps history for reporting.
//! Hard delete removes the row, its junction rows and primary-column references to it.
//!
//! All functions tag the transaction as hubsync's own; run them inside one. Archives and
//! deletes are recorded in `hubsync.audit` by the same statement.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::{
    associations::load_association_mappings,
    error::{Context as _, StoreError},
    naming::{qualified, quote_ident},
    origin::tag_transaction,
    schema::TableMapping,
};

/// How archived or deleted HubSpot records are reflected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeleteMode {
    /// Keep the row and set `archived_at` (default).
    #[default]
    Soft,
    /// Delete the row, its associations and primary-column references to it.
    Hard,
}

/// What a merge changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Loser rows tombstoned (`archived_at`, `merged_into`).
    pub tombstoned: u64,
    /// Earlier tombstones that pointed at a loser and now point at the survivor.
    pub chains_repointed: u64,
    /// Junction rows moved from a loser to the survivor.
    pub associations_repointed: u64,
    /// Primary association columns (in other tables) moved to the survivor.
    pub primary_repointed: u64,
}

/// Marks the records `ids` archived at `at` ([`DeleteMode::Soft`]) or deletes them
/// ([`DeleteMode::Hard`]). Returns the number of object rows changed. Rows already
/// archived keep their first `archived_at`.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed statement.
pub async fn archive_records<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    ids: &[i64],
    at: DateTime<Utc>,
    mode: DeleteMode,
) -> Result<u64, StoreError> {
    tag_transaction(client).await?;
    let table = mapping.qualified_table();
    match mode {
        DeleteMode::Soft => client
            .execute(
                &format!(
                    "WITH archived AS (UPDATE {table} SET archived_at = $2, synced_at = now()
                      WHERE hs_object_id = ANY($1) AND archived_at IS NULL
                      RETURNING hs_object_id, hubsync_row_id)
                     INSERT INTO hubsync.audit (direction, object, hs_object_id, row_key, action, fields)
                     SELECT 'hubspot_to_postgres', $3, hs_object_id, hubsync_row_id::text, 'archive', '{{}}'
                       FROM archived"
                ),
                &[&ids, &at, &mapping.object],
            )
            .await
            .during("mark records archived"),
        DeleteMode::Hard => {
            for junction in load_association_mappings(client, &mapping.schema).await? {
                let mut sides = Vec::new();
                if junction.from_object == mapping.object {
                    sides.push(&junction.from_column);
                }
                if junction.to_object == mapping.object {
                    sides.push(&junction.to_column);
                }
                for side in sides {
                    client
                        .execute(
                            &format!(
                                "DELETE FROM {} WHERE {} = ANY($1)",
                                junction.qualified_table(),
                                quote_ident(side)
                            ),
                            &[&ids],
                        )
                        .await
                        .during("delete associations of deleted records")?;
                }
            }
            repoint_primary_columns(client, mapping, ids, None).await?;
            client
                .execute(
                    &format!(
                        "WITH deleted AS (DELETE FROM {table} WHERE hs_object_id = ANY($1)
                           RETURNING hs_object_id, hubsync_row_id)
                         INSERT INTO hubsync.audit (direction, object, hs_object_id, row_key, action, fields)
                         SELECT 'hubspot_to_postgres', $2, hs_object_id, hubsync_row_id::text, 'delete', '{{}}'
                           FROM deleted"
                    ),
                    &[&ids, &mapping.object],
                )
                .await
                .during("delete records")
        }
    }
}

/// Records a HubSpot merge: every loser in `losers` gets `archived_at` (if unset) and
/// `merged_into = survivor`; tombstones that pointed at a loser now point at the survivor;
/// junction rows and primary association columns referring to a loser are moved to the
/// survivor (duplicates dropped, and a loser↔survivor self-association removed). The
/// survivor's own row is re-read from HubSpot by the caller. If HubSpot gave the merged
/// record a new id, pass both old ids as losers and the new id as survivor.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed statement.
pub async fn mark_merged<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    losers: &[i64],
    survivor: i64,
    at: DateTime<Utc>,
) -> Result<MergeReport, StoreError> {
    tag_transaction(client).await?;
    let losers: Vec<i64> = losers
        .iter()
        .copied()
        .filter(|id| *id != survivor)
        .collect();
    let table = mapping.qualified_table();
    let mut report = MergeReport {
        tombstoned: client
            .execute(
                &format!(
                    "UPDATE {table} SET archived_at = coalesce(archived_at, $3),
                            merged_into = $2, synced_at = now()
                      WHERE hs_object_id = ANY($1)"
                ),
                &[&losers, &survivor, &at],
            )
            .await
            .during("tombstone merged records")?,
        ..MergeReport::default()
    };
    report.chains_repointed = client
        .execute(
            &format!("UPDATE {table} SET merged_into = $2 WHERE merged_into = ANY($1)"),
            &[&losers, &survivor],
        )
        .await
        .during("re-point earlier merges")?;
    for junction in load_association_mappings(client, &mapping.schema).await? {
        let (f, t) = (
            quote_ident(&junction.from_column),
            quote_ident(&junction.to_column),
        );
        let jt = junction.qualified_table();
        let mut sides = Vec::new();
        if junction.from_object == mapping.object {
            sides.push((f.clone(), t.clone()));
        }
        if junction.to_object == mapping.object {
            sides.push((t.clone(), f.clone()));
        }
        for (moved, other) in sides {
            let self_link = if junction.from_object == junction.to_object {
                format!("AND {other} <> $2")
            } else {
                String::new()
            };
            report.associations_repointed += client
                .execute(
                    &format!(
                        "INSERT INTO {jt} ({moved}, {other}, type_id, category, label)
                         SELECT $2, {other}, type_id, category, label FROM {jt}
                          WHERE {moved} = ANY($1) {self_link}
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&losers, &survivor],
                )
                .await
                .during("re-point associations of merged records")?;
            client
                .execute(
                    &format!("DELETE FROM {jt} WHERE {moved} = ANY($1)"),
                    &[&losers],
                )
                .await
                .during("remove associations of merged records")?;
        }
    }
    report.primary_repointed =
        repoint_primary_columns(client, mapping, &losers, Some(survivor)).await?;
    Ok(report)
}

/// Sets primary association columns in every table that point at `ids` (records of
/// `mapping`'s object) to `to` (NULL when `None`).
async fn repoint_primary_columns<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    ids: &[i64],
    to: Option<i64>,
) -> Result<u64, StoreError> {
    let holders = client
        .query(
            "SELECT t.table_name, c.column_name
               FROM hubsync.catalog_columns c
               JOIN hubsync.catalog_tables t
                 ON t.schema_name = c.schema_name AND t.object_name = c.object_name
              WHERE c.schema_name = $1 AND c.kind = 'primary_association'
                AND c.property_name = $2 AND c.column_name IS NOT NULL",
            &[&mapping.schema, &mapping.object],
        )
        .await
        .during("read primary association columns")?;
    let mut changed = 0;
    for holder in holders {
        let table: String = holder.get(0);
        let column: String = holder.get(1);
        let col = quote_ident(&column);
        changed += client
            .execute(
                &format!(
                    "UPDATE {} SET {col} = $2 WHERE {col} = ANY($1)",
                    qualified(&mapping.schema, &table)
                ),
                &[&ids, &to],
            )
            .await
            .during("re-point primary associations")?;
    }
    Ok(changed)
}
