//! Backfill: the first full copy of an object through the list endpoint (100 records per
//! call, properties chunked by URL length so no request hits 414, lessons.md 3).
//!
//! Fetching, preparing and writing overlap: one task pages HubSpot into a small bounded
//! queue, a second gathers whatever pages are queued and converts them into the upsert's
//! parameters, and the writer stores each gathered batch in one transaction together with
//! the list cursor of its last page. Under a rate limit that is one page per transaction;
//! when HubSpot is faster than PostgreSQL, pages coalesce into larger transactions, and the
//! next batch is prepared while PostgreSQL writes the previous one. Memory stays bounded by
//! the queues (streaming, never load-all), and a crash refetches at most the pages that
//! were queued, being prepared or being written.
//!
//! When the last page is stored, the same transaction marks the backfill done and seeds
//! the incremental high-water mark with the backfill's start time (minus the skew margin):
//! every record modified after the backfill began is read again by the first incremental
//! pass, so updates made while the backfill ran are never lost (lessons.md 11).

use chrono::Utc;
use hubsync_hubspot::{
    HubSpotClient, HubSpotError, ListRequest, Page, SimpleObject, search::SearchRequest,
};
use hubsync_store::Store;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::checkpoint::{
    self, ARCHIVED, BACKFILL, BackfillPosition, INCREMENTAL, IncrementalPosition, RECONCILE,
    SweepPosition, from_ms, ms,
};
use super::discovery::ObjectContext;
use super::error::{SyncError, on};
use super::progress::{Phase, Progress};
use super::records::{PreparedBatch, prepare_batch};
use super::write::{BatchOutcome, write_prepared};

/// Pages queued between the fetcher and the writer.
const QUEUE_PAGES: usize = 8;
/// Most rows stored in one transaction.
const MAX_ROWS_PER_TX: usize = 5_000;

/// What a backfill call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillOutcome {
    /// Whether the backfill is complete (now or before).
    pub done: bool,
    /// Whether this call ran it (false: it was complete already).
    pub ran: bool,
    /// Counts of what this call wrote.
    pub batch: BatchOutcome,
}

/// Runs (or resumes) the backfill of one object; does nothing if it completed before.
///
/// # Errors
/// HubSpot or PostgreSQL failures; everything written before the failure stays, with its
/// checkpoint.
pub async fn backfill(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    progress: &dyn Progress,
    signal: Option<&watch::Sender<(u64, bool)>>,
) -> Result<BackfillOutcome, SyncError> {
    let object = ctx.name();
    let mut conn = store.client().await.map_err(on(object))?;
    let stored: Option<BackfillPosition> = checkpoint::load_opt(&conn, object, BACKFILL)
        .await
        .map_err(on(object))?;
    if stored.as_ref().is_some_and(|p| p.done) {
        if let Some(signal) = signal {
            signal.send_replace((0, true));
        }
        return Ok(BackfillOutcome {
            done: true,
            ran: false,
            batch: BatchOutcome::default(),
        });
    }
    let mut pos = stored.unwrap_or_else(|| BackfillPosition {
        started_at_ms: Utc::now().timestamp_millis(),
        ..BackfillPosition::default()
    });
    if pos.records == 0 && pos.after.is_none() {
        // Record the start before the first page so a resumed backfill keeps it.
        checkpoint::save(&conn, object, BACKFILL, &pos)
            .await
            .map_err(on(object))?;
    }
    let total = if progress.wants_totals() {
        count(client, object).await
    } else {
        None
    };
    progress.start(object, Phase::Backfill, total);
    if pos.records > 0 {
        progress.advance(object, Phase::Backfill, pos.records);
    }

    let (tx_pages, rx_pages) = mpsc::channel::<Page<SimpleObject>>(QUEUE_PAGES);
    let (tx_batches, mut rx_batches) = mpsc::channel::<Gathered>(1);
    let request = ListRequest {
        limit: ctx.settings.list_page_size,
        after: pos.after.clone(),
        properties: ctx.requested.clone(),
        ..ListRequest::default()
    };
    // Three stages on their own tasks, so that they use both cores: the fetcher pages
    // HubSpot (HTTP + JSON decode; each `after` comes from the previous answer), the
    // preparer converts the queued pages into the upsert's parameters, and this task only
    // runs the statements and commits, one transaction after the other.
    let fetcher = StageTask(tokio::spawn(fetch_pages(
        client.clone(),
        object.to_owned(),
        request,
        tx_pages,
    )));
    let preparer = StageTask(tokio::spawn(prepare_batches(
        ctx.clone(),
        rx_pages,
        tx_batches,
    )));
    let writer = async {
        let mut outcome = BackfillOutcome::default();
        while let Some(gathered) = rx_batches.recv().await {
            let Gathered {
                batch,
                after,
                finished,
            } = gathered;
            let n = batch.len() as u64;
            let tx = conn.transaction().await.map_err(on(object))?;
            let batch = write_prepared(&tx, ctx, batch).await.map_err(on(object))?;
            pos.after = after;
            pos.records += n;
            pos.done = finished;
            checkpoint::save(&tx, object, BACKFILL, &pos)
                .await
                .map_err(on(object))?;
            if finished {
                seed_followers(&tx, ctx, &pos).await?;
            }
            tx.commit().await.map_err(on(object))?;
            if let Some(signal) = signal {
                signal.send_replace((pos.records, finished));
            }
            progress.advance(object, Phase::Backfill, n);
            outcome.batch.absorb(BatchOutcome {
                ids: Vec::new(),
                ..batch
            });
            if finished {
                outcome.done = true;
                break;
            }
        }
        outcome.ran = true;
        Ok::<_, SyncError>(outcome)
    };
    let outcome = writer.await?;
    drop(rx_batches);
    preparer.finish().await.map_err(on(object))?;
    fetcher.finish().await.map_err(on(object))?;
    progress.finish(object, Phase::Backfill);
    Ok(outcome)
}

/// Pages the list endpoint from `request.after` into `pages` until the last page or until
/// the receiver is gone (the writer stopped; it reports why).
async fn fetch_pages(
    client: HubSpotClient,
    object: String,
    mut request: ListRequest,
    pages: mpsc::Sender<Page<SimpleObject>>,
) -> Result<(), HubSpotError> {
    loop {
        let page = client.list_page(&object, &request).await?;
        let next = page.after.clone();
        if pages.send(page).await.is_err() {
            return Ok(());
        }
        match next {
            Some(after) => request.after = Some(after),
            None => return Ok(()),
        }
    }
}

/// Queued pages gathered into one transaction's batch, prepared for writing.
struct Gathered {
    /// The prepared records.
    batch: PreparedBatch,
    /// The list cursor after the last of the pages.
    after: Option<String>,
    /// Whether the last of the pages was the object's last.
    finished: bool,
}

/// Gathers whatever pages are queued (up to [`MAX_ROWS_PER_TX`] records) into one batch,
/// prepares it and hands it to the writer, until the last page or until the writer is gone.
async fn prepare_batches(
    ctx: ObjectContext,
    mut pages: mpsc::Receiver<Page<SimpleObject>>,
    batches: mpsc::Sender<Gathered>,
) -> Result<(), HubSpotError> {
    while let Some(first) = pages.recv().await {
        let mut records = first.results;
        let mut after = first.after;
        let mut finished = after.is_none();
        while !finished && records.len() < MAX_ROWS_PER_TX {
            let Ok(page) = pages.try_recv() else { break };
            records.extend(page.results);
            after = page.after;
            finished = after.is_none();
        }
        let gathered = Gathered {
            batch: prepare_batch(&ctx, records),
            after,
            finished,
        };
        if batches.send(gathered).await.is_err() || finished {
            return Ok(());
        }
    }
    Ok(())
}

/// A spawned stage; aborted if the backfill is dropped or fails before it finishes.
struct StageTask(JoinHandle<Result<(), HubSpotError>>);

impl StageTask {
    /// Waits for the stage (after its consumer has drained or dropped its queue).
    async fn finish(mut self) -> Result<(), HubSpotError> {
        match (&mut self.0).await {
            Ok(result) => result,
            // A panic in a stage propagates as if it had run on this task; it cannot
            // have been cancelled (it is aborted only on drop).
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

impl Drop for StageTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// In the transaction of the last page: the incremental stream starts from the backfill's
/// start, and the delete sweeps count as done as of then (the list held only live records).
async fn seed_followers(
    tx: &impl hubsync_store::GenericClient,
    ctx: &ObjectContext,
    pos: &BackfillPosition,
) -> Result<(), SyncError> {
    let object = ctx.name();
    let hwm = pos
        .started_at_ms
        .saturating_sub(ms(ctx.settings.clock_skew));
    let inc = IncrementalPosition {
        hwm_ms: hwm,
        last_pass_ms: Some(pos.started_at_ms),
        pending_associations: Vec::new(),
    };
    checkpoint::save(tx, object, INCREMENTAL, &inc)
        .await
        .map_err(on(object))?;
    let swept = SweepPosition {
        running: None,
        last_completed_ms: Some(pos.started_at_ms),
    };
    for stream in [ARCHIVED, RECONCILE] {
        checkpoint::save(tx, object, stream, &swept)
            .await
            .map_err(on(object))?;
    }
    tracing::info!(object, records = pos.records, since = %from_ms(hwm), "backfill complete");
    Ok(())
}

/// The number of live records, from one search call (`total`); `None` if it fails.
async fn count(client: &HubSpotClient, object: &str) -> Option<u64> {
    let request = SearchRequest::new().properties(["hs_object_id"]).limit(1);
    client
        .search(object, &request)
        .await
        .ok()
        .map(|page| page.total)
}
