//! Merges: a record that absorbed others lists them in `hs_merged_object_ids`. Each loser
//! still in PostgreSQL is tombstoned with the survivor's id (`merged_into`, `archived_at`)
//! and every link to it (junction rows, primary company columns, earlier tombstones) is
//! re-pointed to the survivor (lessons.md 16). The store does the SQL
//! ([`hubsync_store::tombstones::mark_merged`]); this module finds the losers that are new.

use chrono::Utc;
use hubsync_store::{GenericClient, StoreError, tombstones::mark_merged};

use super::discovery::ObjectContext;

/// Tombstones the losers named by `merges` (survivor id, loser ids) that are not tombstoned for their survivor
/// yet; returns how many rows were tombstoned.
///
/// # Errors
/// PostgreSQL failures.
pub async fn apply_merges(
    tx: &impl GenericClient,
    ctx: &ObjectContext,
    merges: &[(i64, Vec<i64>)],
) -> Result<u64, StoreError> {
    let mut losers: Vec<i64> = Vec::new();
    let mut survivors: Vec<i64> = Vec::new();
    for (survivor, merged) in merges {
        for loser in merged {
            losers.push(*loser);
            survivors.push(*survivor);
        }
    }
    if losers.is_empty() {
        return Ok(0);
    }
    // Only losers we hold that do not yet point at their survivor need work.
    let pending = tx
        .query(
            &format!(
                "SELECT u.loser, u.survivor
                   FROM unnest($1::int8[], $2::int8[]) AS u(loser, survivor)
                   JOIN {} t ON t.hs_object_id = u.loser
                  WHERE t.merged_into IS DISTINCT FROM u.survivor",
                ctx.mapping.qualified_table()
            ),
            &[&losers, &survivors],
        )
        .await
        .map_err(|e| StoreError::postgres("find merge losers", e))?;
    let mut tombstoned = 0;
    let now = Utc::now();
    for row in pending {
        let (loser, survivor): (i64, i64) = (row.get(0), row.get(1));
        let report = mark_merged(tx, &ctx.mapping, &[loser], survivor, now).await?;
        tracing::info!(
            object = ctx.name(),
            loser,
            survivor,
            "merged record tombstoned"
        );
        tombstoned += report.tombstoned;
    }
    Ok(tombstoned)
}
