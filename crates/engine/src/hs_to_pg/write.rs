//! Writing one batch of HubSpot records: upsert (never backwards in time), merges, and the
//! ids whose associations are to be re-read — all on the caller's transaction, so the
//! caller's checkpoint commits with them.

use hubsync_hubspot::SimpleObject;
use hubsync_store::{
    GenericClient, StoreError, tag_transaction,
    upsert::{PreparedRows, write_prepared as write_upsert},
};

use super::discovery::ObjectContext;
use super::merges::apply_merges;
use super::records::{PreparedBatch, prepare_batch};

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows inserted or updated.
    pub written: u64,
    /// Rows skipped because PostgreSQL had the same or a newer version.
    pub skipped: u64,
    /// Values that did not fit their column (recorded in `hubsync.issues`).
    pub issues: u64,
    /// Merge losers tombstoned.
    pub merged: u64,
    /// Ids of the records in the batch.
    pub ids: Vec<i64>,
}

/// Converts and stores `records` on `tx` (tagged as hubsync's own write).
///
/// # Errors
/// PostgreSQL failures (the transaction is then unusable; nothing of the batch is kept).
pub async fn write_records(
    tx: &impl GenericClient,
    ctx: &ObjectContext,
    records: Vec<SimpleObject>,
) -> Result<BatchOutcome, StoreError> {
    write_prepared(tx, ctx, prepare_batch(ctx, records)).await
}

/// Stores a batch prepared with [`prepare_batch`] for the same object on `tx` (tagged as
/// hubsync's own write).
///
/// # Errors
/// As [`write_records`].
pub async fn write_prepared(
    tx: &impl GenericClient,
    ctx: &ObjectContext,
    batch: PreparedBatch,
) -> Result<BatchOutcome, StoreError> {
    let (mut outcome, merges) = write_rows(tx, ctx, batch).await?;
    outcome.merged = apply_merges(tx, ctx, &merges).await?;
    Ok(outcome)
}

/// Survivor id → ids merged into it, as a batch carried them.
pub(crate) type Merges = Vec<(i64, Vec<i64>)>;

/// [`write_prepared`] without the merges, which are returned for the caller to apply
/// ([`apply_merges`]) on the same transaction: the backfill applies them only once the
/// batches before have committed, so that losers those batches stored are seen.
///
/// # Errors
/// As [`write_records`].
pub(crate) async fn write_rows(
    tx: &impl GenericClient,
    ctx: &ObjectContext,
    batch: PreparedBatch,
) -> Result<(BatchOutcome, Merges), StoreError> {
    if batch.is_empty() {
        return Ok((BatchOutcome::default(), Vec::new()));
    }
    tag_transaction(tx).await?;
    if !batch.records.is_empty() {
        // Rows an application inserted whose HubSpot copy arrives before the writer recorded
        // its id are linked, not duplicated (lessons.md 14).
        crate::two_way::link_records(tx, &ctx.mapping, &batch.records).await?;
    }
    let PreparedBatch {
        mut rows,
        merges,
        upsert,
        ..
    } = batch;
    let upsert = match upsert {
        Some(prepared) => prepared,
        None => {
            // Two-way: merge against the shadow first (echoes dropped, conflicts by policy).
            let object = crate::two_way::TwoWayObject::from_context(ctx);
            rows = crate::two_way::inbound(tx, &object, rows, chrono::Utc::now())
                .await?
                .rows;
            PreparedRows::new(&ctx.mapping, &rows)
        }
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.hs_object_id).collect();
    let before = hubsync_store::rows::read_rows_by_ids(tx, &ctx.mapping, &ids).await?;
    let report = write_upsert(tx, &ctx.mapping, upsert).await?;
    super::audit_trail::record(tx, &ctx.mapping, &before, &rows, &report.written_ids).await?;
    let outcome = BatchOutcome {
        written: report.written,
        skipped: report.skipped_stale,
        issues: report.issues.len() as u64,
        merged: 0,
        ids,
    };
    Ok((outcome, merges))
}

impl BatchOutcome {
    /// Adds another batch's counts.
    pub fn absorb(&mut self, other: BatchOutcome) {
        self.written += other.written;
        self.skipped += other.skipped;
        self.issues += other.issues;
        self.merged += other.merged;
        self.ids.extend(other.ids);
    }
}
