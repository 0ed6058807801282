//! Incremental pass: every record modified since the high-water mark, through search on
//! the object's own modified-date property (`lastmodifieddate` for contacts,
//! `hs_lastmodifieddate` otherwise; lessons.md 9), with the client's windowing past the
//! 10,000-result cap (including more than 10,000 records in one millisecond; lessons.md 1).
//!
//! * **Lookback.** Each pass searches from `hwm − lookback`, so records the search index
//!   shows late are still read (lessons.md 10); seeing a record twice is harmless because
//!   the store never moves a row backwards in time.
//! * **High-water mark.** The window ends at the pass's start minus the skew margin, and
//!   the mark advances to the newest modified date actually seen, never past the window's
//!   end and never to the end-of-run "now" (lessons.md 11).
//! * **Checkpoint per page.** Each page is stored in one transaction with the mark reached
//!   so far and the ids whose associations must be re-read, so a crash repeats at most the
//!   lookback plus the page in flight.
//! * Properties travel in the search's POST body, so no URL can reach 414 and no extra
//!   read is needed to hydrate the records.

use chrono::Utc;
use hubsync_hubspot::HubSpotClient;
use hubsync_store::Store;

use super::checkpoint::{self, INCREMENTAL, IncrementalPosition, from_ms, ms};
use super::discovery::ObjectContext;
use super::error::{SyncError, on};
use super::progress::{Phase, Progress};
use super::write::{BatchOutcome, write_records};

/// Most ids kept waiting for an association re-read; beyond it the periodic sweep takes
/// over (a mass update of many thousands of records).
const MAX_PENDING_ASSOCIATIONS: usize = 50_000;

/// What an incremental pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncrementalOutcome {
    /// Counts of what was written.
    pub batch: BatchOutcome,
    /// The high-water mark after the pass (epoch ms).
    pub hwm_ms: i64,
    /// Whether the pending association list overflowed (a sweep is then forced).
    pub association_overflow: bool,
}

/// Runs one incremental pass of an object whose backfill is complete.
///
/// # Errors
/// HubSpot or PostgreSQL failures; pages stored before the failure stay, with their mark.
pub async fn incremental(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    progress: &dyn Progress,
) -> Result<IncrementalOutcome, SyncError> {
    let object = ctx.name();
    let mut conn = store.client().await.map_err(on(object))?;
    let mut pos: IncrementalPosition = checkpoint::load(&conn, object, INCREMENTAL)
        .await
        .map_err(on(object))?;
    let started = Utc::now();
    let window_end = started
        .timestamp_millis()
        .saturating_sub(ms(ctx.settings.clock_skew));
    // Never search before 1 s after the epoch (hubspot-api.md §8.6).
    let window_start = pos
        .hwm_ms
        .saturating_sub(ms(ctx.settings.lookback))
        .max(1_000);
    let mut outcome = IncrementalOutcome {
        hwm_ms: pos.hwm_ms,
        ..IncrementalOutcome::default()
    };
    progress.start(object, Phase::Incremental, None);
    let mut search = client.modified_between(
        object,
        from_ms(window_start),
        from_ms(window_end),
        &ctx.requested,
    );
    while let Some(records) = search.next_page().await.map_err(on(object))? {
        let page_max = records
            .iter()
            .map(|r| r.modified_ms(hubsync_hubspot::modified_property(object)))
            .max();
        let n = records.len() as u64;
        let tx = conn.transaction().await.map_err(on(object))?;
        let batch = write_records(&tx, ctx, records).await.map_err(on(object))?;
        if let Some(max) = page_max {
            pos.hwm_ms = pos.hwm_ms.max(max.min(window_end));
        }
        if pos.pending_associations.len() + batch.ids.len() <= MAX_PENDING_ASSOCIATIONS {
            pos.pending_associations.extend(batch.ids.iter().copied());
            pos.pending_associations.sort_unstable();
            pos.pending_associations.dedup();
        } else {
            outcome.association_overflow = true;
        }
        checkpoint::save(&tx, object, INCREMENTAL, &pos)
            .await
            .map_err(on(object))?;
        tx.commit().await.map_err(on(object))?;
        progress.advance(object, Phase::Incremental, n);
        outcome.batch.absorb(BatchOutcome {
            ids: Vec::new(),
            ..batch
        });
    }
    pos.last_pass_ms = Some(started.timestamp_millis());
    checkpoint::save(&conn, object, INCREMENTAL, &pos)
        .await
        .map_err(on(object))?;
    outcome.hwm_ms = pos.hwm_ms;
    progress.finish(object, Phase::Incremental);
    Ok(outcome)
}
