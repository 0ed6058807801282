//! Backfill: the first full copy of an object through the list endpoint (100 records per
//! call, properties chunked by URL length so no request hits 414, lessons.md 3).
//!
//! Fetching, preparing and writing overlap: one task pages HubSpot into a small bounded
//! queue, a second gathers the pages into batches and converts them into the upsert's
//! parameters, and the writers store each batch in one transaction together with the list
//! cursor of its last page. Under a rate limit that is one page per transaction; when
//! HubSpot is faster than PostgreSQL, pages gather while the writers are busy, into
//! transactions of up to `MAX_ROWS_PER_TX` (2,500) records.
//!
//! Up to [`crate::settings::ObjectSettings::backfill_writers`] batches are written at once,
//! each on its own connection, so that PostgreSQL works on the next batch while the previous
//! one finishes — but they **commit in batch order**: a batch saves its checkpoint and
//! commits only after the batch before it committed, and is rolled back if that batch
//! failed, so the stored cursor never passes a record that is not stored. Batches whose
//! rows could interact (overlapping ids, merge losers, two-way merging, linking rows
//! applications inserted) are written one after the other; merges are applied after the
//! wait in every case.
//!
//! Memory stays bounded by the queues and the batches in flight (streaming, never
//! load-all), and a crash refetches at most the pages that were queued, being prepared or
//! being written.
//!
//! When the last page is stored, the same transaction marks the backfill done and seeds
//! the incremental high-water mark with the backfill's start time (minus the skew margin):
//! every record modified after the backfill began is read again by the first incremental
//! pass, so updates made while the backfill ran are never lost (lessons.md 11).

use std::collections::{HashSet, VecDeque};

use chrono::Utc;
use futures_util::{StreamExt, stream::FuturesOrdered};
use hubsync_hubspot::{
    HubSpotClient, HubSpotError, ListRequest, Page, SimpleObject, search::SearchRequest,
};
use hubsync_store::{Store, StoreClient};
use tokio::{
    sync::{
        mpsc::{self, error::TryRecvError},
        oneshot, watch,
    },
    task::JoinHandle,
};

use super::checkpoint::{
    self, ARCHIVED, BACKFILL, BackfillPosition, INCREMENTAL, IncrementalPosition, RECONCILE,
    SweepPosition, from_ms, ms,
};
use super::discovery::ObjectContext;
use super::error::{SyncError, on};
use super::merges::apply_merges;
use super::progress::{Phase, Progress};
use super::records::{PreparedBatch, prepare_batch};
use super::write::{BatchOutcome, write_rows};

/// Pages queued between the fetcher and the writer.
const QUEUE_PAGES: usize = 8;
/// How long the backfill waits for each extra writer connection before it goes on without.
const EXTRA_WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Most rows stored in one transaction: one upsert statement's worth (more rows a
/// transaction measured no faster and held more memory).
const MAX_ROWS_PER_TX: usize = hubsync_store::upsert::UPSERT_BATCH_ROWS;

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
    let conn = store.client().await.map_err(on(object))?;
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
    let pos = stored.unwrap_or_else(|| BackfillPosition {
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
    let (tx_batches, rx_batches) = mpsc::channel::<Gathered>(1);
    let request = ListRequest {
        limit: ctx.settings.list_page_size,
        after: pos.after.clone(),
        properties: ctx.requested.clone(),
        ..ListRequest::default()
    };
    // Three stages on their own tasks, so that they use both cores: the fetcher pages
    // HubSpot (HTTP + JSON decode; each `after` comes from the previous answer), the
    // preparer converts the queued pages into the upsert's parameters, and this task runs
    // the statements of up to `writers` batches at once and commits them in order.
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
    let mut connections = vec![conn];
    for _ in 1..writer_count(store, ctx) {
        // A pool busy with other work gives fewer writers, not a stalled backfill.
        match tokio::time::timeout(EXTRA_WRITER_WAIT, store.client()).await {
            Ok(Ok(extra)) => connections.push(extra),
            Ok(Err(error)) => {
                tracing::debug!(object, %error, "backfill continues with fewer writers");
                break;
            }
            Err(_) => break,
        }
    }
    let outcome = write_batches(ctx, connections, rx_batches, pos, progress, signal).await?;
    preparer.finish().await.map_err(on(object))?;
    fetcher.finish().await.map_err(on(object))?;
    progress.finish(object, Phase::Backfill);
    Ok(outcome)
}

/// How many batches the backfill of `ctx` writes at once: the object's setting, leaving
/// the pool room for the association sweep that follows the backfill and the lease.
fn writer_count(store: &Store, ctx: &ObjectContext) -> usize {
    let spare = store.options().max_connections.saturating_sub(3);
    ctx.settings.backfill_writers.min(spare).max(1)
}

/// Writes the gathered batches, each in one transaction on one of `connections`, up to one
/// per connection at once, and commits them strictly in order: a batch's checkpoint (the
/// list cursor after it) is saved only after the batch before it committed, and never if
/// that batch failed — so a checkpoint never passes a record that is not stored.
///
/// A batch runs its upsert and audit while the batch before it is still open when neither
/// touches the other's rows: their ids are disjoint (pages of the list are), the earlier
/// batch's merge losers are not among its ids, and neither must be written alone
/// ([`PreparedBatch::writes_alone`]). Otherwise it waits for the earlier commit before its
/// first statement. Merges are applied after that wait in any case, so losers stored by
/// earlier batches are seen, as in one transaction after the other.
async fn write_batches(
    ctx: &ObjectContext,
    mut free: Vec<StoreClient>,
    mut batches: mpsc::Receiver<Gathered>,
    mut pos: BackfillPosition,
    progress: &dyn Progress,
    signal: Option<&watch::Sender<(u64, bool)>>,
) -> Result<BackfillOutcome, SyncError> {
    let object = ctx.name();
    let mut outcome = BackfillOutcome::default();
    let mut in_flight = FuturesOrdered::new();
    // Ids (stored and tombstoned) of the batches in flight, oldest first; `None` for a
    // batch written alone, which nothing may overlap.
    let mut touched: VecDeque<Option<HashSet<i64>>> = VecDeque::new();
    let mut previous: Option<oneshot::Receiver<()>> = None;
    let mut input_open = true;
    loop {
        tokio::select! {
            biased;
            Some((conn, result)) = in_flight.next(), if !in_flight.is_empty() => {
                free.push(conn);
                touched.pop_front();
                let done: WrittenBatch = result?;
                if let Some(signal) = signal {
                    signal.send_replace((done.records, done.finished));
                }
                progress.advance(object, Phase::Backfill, done.len);
                outcome.batch.absorb(BatchOutcome {
                    ids: Vec::new(),
                    ..done.outcome
                });
                if done.finished {
                    outcome.done = true;
                    break;
                }
            }
            gathered = batches.recv(), if input_open && !free.is_empty() => {
                let Some(Gathered { batch, after, finished }) = gathered else {
                    input_open = false;
                    continue;
                };
                let Some(conn) = free.pop() else { continue };
                let len = batch.len() as u64;
                pos.after = after;
                pos.records += len;
                pos.done = finished;
                let mut ids: HashSet<i64> = batch.ids().collect();
                let alone = batch.writes_alone()
                    || touched.iter().any(|earlier| match earlier {
                        Some(earlier) => ids.iter().any(|id| earlier.contains(id)),
                        None => true,
                    });
                ids.extend(batch.losers());
                touched.push_back((!batch.writes_alone()).then_some(ids));
                let (committed, next) = oneshot::channel();
                let order = Order {
                    previous: previous.replace(next),
                    alone,
                    committed,
                };
                in_flight.push_back(write_batch(conn, ctx, batch, pos.clone(), order));
            }
            else => break,
        }
    }
    outcome.ran = true;
    Ok(outcome)
}

/// Where a batch stands among the batches in flight.
struct Order {
    /// Resolves when the batch before commits; fails if it did not (`None`: first batch).
    previous: Option<oneshot::Receiver<()>>,
    /// Wait for the batch before to commit before the first statement.
    alone: bool,
    /// Told once this batch committed (dropped unsent if it did not).
    committed: oneshot::Sender<()>,
}

/// A batch committed.
struct WrittenBatch {
    outcome: BatchOutcome,
    /// Records in the batch.
    len: u64,
    /// Records stored by the backfill so far, this batch included.
    records: u64,
    /// Whether the batch held the last page.
    finished: bool,
}

/// Writes one batch on `conn` and gives the connection back with the result.
async fn write_batch(
    mut conn: StoreClient,
    ctx: &ObjectContext,
    batch: PreparedBatch,
    pos: BackfillPosition,
    order: Order,
) -> (StoreClient, Result<WrittenBatch, SyncError>) {
    let result = write_in_order(&mut conn, ctx, batch, pos, order).await;
    (conn, result)
}

/// One batch's transaction: rows and audit, then (after the batch before committed)
/// merges, the checkpoint `pos`, and the commit.
async fn write_in_order(
    conn: &mut StoreClient,
    ctx: &ObjectContext,
    batch: PreparedBatch,
    pos: BackfillPosition,
    order: Order,
) -> Result<WrittenBatch, SyncError> {
    let object = ctx.name();
    let Order {
        mut previous,
        alone,
        committed,
    } = order;
    if alone {
        committed_before(object, previous.take()).await?;
    }
    let len = batch.len() as u64;
    let tx = conn.transaction().await.map_err(on(object))?;
    let (mut outcome, merges) = write_rows(&tx, ctx, batch).await.map_err(on(object))?;
    committed_before(object, previous).await?;
    outcome.merged = apply_merges(&tx, ctx, &merges).await.map_err(on(object))?;
    checkpoint::save(&tx, object, BACKFILL, &pos)
        .await
        .map_err(on(object))?;
    if pos.done {
        seed_followers(&tx, ctx, &pos).await?;
    }
    tx.commit().await.map_err(on(object))?;
    // The next batch may have failed and gone already; nothing waits then.
    let _ = committed.send(());
    Ok(WrittenBatch {
        outcome,
        len,
        records: pos.records,
        finished: pos.done,
    })
}

/// Waits until the batch before committed.
///
/// # Errors
/// [`SyncError::EarlierBatchFailed`] if it did not.
async fn committed_before(
    object: &str,
    previous: Option<oneshot::Receiver<()>>,
) -> Result<(), SyncError> {
    match previous {
        None => Ok(()),
        Some(previous) => previous.await.map_err(|_| SyncError::EarlierBatchFailed {
            object: object.to_owned(),
        }),
    }
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

/// Gathers pages into one batch (up to [`MAX_ROWS_PER_TX`] records), prepares it and hands
/// it to the writers, until the last page or until the writers are gone. Queued pages join
/// the batch at once; when none is queued, the batch goes as soon as a writer can take it,
/// and while every writer is busy the pages that arrive join it — so transactions grow
/// when PostgreSQL is the slower side and stay one page long under a rate limit.
async fn prepare_batches(
    ctx: ObjectContext,
    mut pages: mpsc::Receiver<Page<SimpleObject>>,
    batches: mpsc::Sender<Gathered>,
) -> Result<(), HubSpotError> {
    while let Some(first) = pages.recv().await {
        let mut records = first.results;
        let mut after = first.after;
        let mut finished = after.is_none();
        let permit = loop {
            if finished || records.len() >= MAX_ROWS_PER_TX {
                break None;
            }
            let page = match pages.try_recv() {
                Ok(page) => Some(page),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => tokio::select! {
                    biased;
                    permit = batches.reserve() => match permit {
                        Ok(permit) => break Some(permit),
                        Err(_) => return Ok(()),
                    },
                    page = pages.recv() => page,
                },
            };
            let Some(page) = page else { break None };
            records.extend(page.results);
            after = page.after;
            finished = after.is_none();
        };
        let gathered = Gathered {
            batch: prepare_batch(&ctx, records),
            after,
            finished,
        };
        match permit {
            Some(permit) => permit.send(gathered),
            None => {
                if batches.send(gathered).await.is_err() {
                    return Ok(());
                }
            }
        }
        if finished {
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
