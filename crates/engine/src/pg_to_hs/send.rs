//! One writeback round, pipelined so the rate governor never waits on PostgreSQL: the
//! claimed records are verified and planned one batch's worth at a time, each batch is
//! handed to the senders as soon as it is full (several in flight, paced by the client's
//! governor) while the next records are planned, and once everything is planned the next
//! round is claimed while the last batches are still in flight. A batch HubSpot rejected
//! as a whole is bisected; each batch's outcome — ids, shadow, record state, outbox
//! acknowledgement, audit — commits in one PostgreSQL transaction.

use std::collections::BTreeMap;

use chrono::Utc;
use futures_util::{StreamExt, future::BoxFuture, stream};
use hubsync_hubspot::{
    BatchOutcome, BatchRead, HubSpotClient, HubSpotError, SimpleObject, UpdateInput, UpsertInput,
    batch::MAX_BATCH_INPUTS,
};
use hubsync_store::{
    Store, StoreError,
    state::outbox::{self, OutboxEntry, RecordChange},
    tagged_transaction,
};
use tokio::sync::mpsc;

use super::bisect::{ItemResults, bisect};
use super::plan::{Action, Planned, plan};
use super::verify::Verifier;
use super::{DrainOptions, DrainReport, current_rows};
use crate::merge::MergeContext;
use crate::two_way::{
    ROW_ID_PROPERTY, TwoWayError, TwoWayObject,
    shadow_io::{self, ms},
    write_fields_to_postgres,
};

/// Records verified and planned per step: one batch's worth, so the first batch is sent as
/// soon as it is planned.
const PLAN_STEP: usize = MAX_BATCH_INPUTS;

/// Where a test makes the writer stop as if the process died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After claiming outbox entries, before any HubSpot call.
    AfterClaim,
    /// After HubSpot accepted the writes, before anything was recorded in PostgreSQL.
    AfterHubSpot,
}

/// A batch of one kind.
enum Job<'c> {
    Create(Vec<(&'c RecordChange, BTreeMap<String, String>)>),
    Update(Vec<(&'c RecordChange, i64, Action)>),
    Archive(Vec<(&'c RecordChange, i64)>),
    ArchiveByKey(Vec<&'c RecordChange>),
}

/// One batch's result: its counts, and the whole-call HubSpot failure that put its entries
/// back, if any.
type JobResult = Result<(DrainReport, Option<TwoWayError>), TwoWayError>;

/// What a round did.
pub(super) struct RoundOutcome {
    /// Counts.
    pub(super) report: DrainReport,
    /// The first whole-call HubSpot failure (its entries were put back for a later retry).
    pub(super) error: Option<TwoWayError>,
    /// The next round's entries, claimed while this round's last batches were in flight.
    pub(super) next: Vec<OutboxEntry>,
}

/// What planning a round produced besides its batches.
struct PlanningDone<'c, 'm> {
    report: DrainReport,
    /// Records with primary association changes (written after the batches).
    primary: Vec<(&'c RecordChange, Planned<'m>)>,
    next: Vec<OutboxEntry>,
}

/// One round's shared context.
pub(super) struct Round<'a> {
    pub(super) store: &'a Store,
    pub(super) hubspot: &'a HubSpotClient,
    pub(super) object: &'a TwoWayObject,
    pub(super) options: &'a DrainOptions,
    ctx: MergeContext,
}

impl<'a> Round<'a> {
    pub(super) fn new(
        store: &'a Store,
        hubspot: &'a HubSpotClient,
        object: &'a TwoWayObject,
        options: &'a DrainOptions,
    ) -> Self {
        let ctx = MergeContext {
            clock: object.clock,
            now_ms: ms(Utc::now()),
        };
        Round {
            store,
            hubspot,
            object,
            options,
            ctx,
        }
    }

    /// Verifies, plans, sends and records one claim's changes, planning one step while the
    /// batches already planned are sent; with `prefetch`, claims the next round's entries
    /// once everything is planned.
    pub(super) async fn run(
        &self,
        changes: Vec<RecordChange>,
        prefetch: bool,
    ) -> Result<RoundOutcome, TwoWayError> {
        let in_flight = self.options.concurrency.max(1);
        let (queue, mut queued) = mpsc::channel::<BoxFuture<'_, JobResult>>(in_flight);
        let planning = self.plan_and_queue(&changes, queue, prefetch);
        // The senders take batches as they are queued (futures built by the planner: a
        // closure mapping jobs inside the stream would make the future not `Send` for the
        // daemon's multi-threaded runtime).
        let sending = stream::poll_fn(move |cx| queued.poll_recv(cx))
            .buffer_unordered(in_flight)
            .collect::<Vec<JobResult>>();
        let (planned, results) = tokio::join!(planning, sending);
        let PlanningDone {
            mut report,
            primary,
            next,
        } = planned?;
        let mut error = None;
        for r in results {
            let (done, e) = match r {
                Ok(r) => r,
                Err(fatal) => {
                    self.release(&next).await?;
                    return Err(fatal);
                }
            };
            report.absorb(&done);
            if error.is_none() {
                error = e;
            }
        }
        if self.options.crash_at.is_none() {
            report.associations += self.write_primary(&primary).await?;
        }
        Ok(RoundOutcome {
            report,
            error,
            next,
        })
    }

    /// The planner: verifies and plans `changes` a step at a time, settles what needs no
    /// HubSpot call, and queues each batch as soon as it is full (the rest at the end).
    async fn plan_and_queue<'c>(
        &'c self,
        changes: &'c [RecordChange],
        queue: mpsc::Sender<BoxFuture<'c, JobResult>>,
        prefetch: bool,
    ) -> Result<PlanningDone<'c, 'a>, TwoWayError> {
        let mut report = DrainReport::default();
        let mut verifier = Verifier::new(
            self.store,
            self.hubspot,
            self.object,
            self.options.verify_recent,
            changes,
        );
        let mut batches = Batches::default();
        let mut primary = Vec::new();
        for step in changes.chunks(PLAN_STEP) {
            report.verified += verifier.verify(step).await?;
            let planned = self.plan_step(step).await?;
            report.absorb(&self.settle_local(&planned).await?);
            for job in batches.add(&planned) {
                if queue.send(Box::pin(self.run_job(job))).await.is_err() {
                    break;
                }
            }
            primary.extend(planned.into_iter().filter(|(_, p)| !p.primary.is_empty()));
        }
        for job in batches.finish() {
            if queue.send(Box::pin(self.run_job(job))).await.is_err() {
                break;
            }
        }
        drop(queue);
        let next = if prefetch {
            claim(self.store, self.object, self.options).await?
        } else {
            Vec::new()
        };
        Ok(PlanningDone {
            report,
            primary,
            next,
        })
    }

    /// Plans one step against the records' current rows and shadows.
    async fn plan_step<'c>(
        &self,
        step: &'c [RecordChange],
    ) -> Result<Vec<(&'c RecordChange, Planned<'a>)>, TwoWayError> {
        let client = self.store.client().await?;
        let rows = current_rows(&client, self.object, step).await?;
        let ids: Vec<i64> = rows.values().filter_map(|r| r.hs_object_id).collect();
        let shadows = shadow_io::load(&client, self.object.name(), &ids).await?;
        Ok(step
            .iter()
            .map(|c| {
                let row = rows.get(&c.row_key);
                let shadow = row
                    .and_then(|r| r.hs_object_id)
                    .and_then(|id| shadows.get(&id));
                (c, plan(self.object, c, row, shadow, &self.ctx))
            })
            .collect())
    }

    /// Gives claimed entries back untouched (the drain stops before their round).
    pub(super) async fn release(&self, entries: &[OutboxEntry]) -> Result<(), TwoWayError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let client = self.store.client().await?;
        outbox::release(&client, &self.options.consumer, &ids).await?;
        Ok(())
    }

    /// Records that need no HubSpot call: acknowledged, refused, or reverted in PostgreSQL.
    async fn settle_local(
        &self,
        planned: &[(&RecordChange, Planned<'_>)],
    ) -> Result<DrainReport, TwoWayError> {
        let mut report = DrainReport {
            held_conflicts: planned.iter().map(|(_, p)| p.held).sum(),
            ..DrainReport::default()
        };
        let local = |p: &Planned<'_>| {
            !p.reverts.is_empty() || matches!(p.action, Action::Nothing | Action::Refuse(_))
        };
        if !planned.iter().any(|(_, p)| local(p)) {
            return Ok(report);
        }
        let mut client = self.store.client().await?;
        let tx = tagged_transaction(&mut client).await?;
        let consumer = &self.options.consumer;
        for (change, p) in planned {
            if !p.reverts.is_empty()
                && let Some(id) = change.hs_object_id
            {
                write_fields_to_postgres(&tx, &self.object.mapping, id, &p.reverts).await?;
                report.reverted += p.reverts.len() as u64;
            }
            match &p.action {
                Action::Nothing => {
                    report.entries += outbox::ack(&tx, consumer, &change.entry_ids).await?;
                    report.unchanged += 1;
                }
                Action::Refuse(reason) => {
                    self.fail_record(&tx, change, reason).await?;
                    report.failed += 1;
                }
                _ => {}
            }
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit settled changes", e))?;
        Ok(report)
    }

    /// Sends one batch and records its outcome.
    async fn run_job(&self, job: Job<'_>) -> JobResult {
        let changes: Vec<&RecordChange> = match &job {
            Job::Create(v) => v.iter().map(|(c, _)| *c).collect(),
            Job::Update(v) => v.iter().map(|(c, ..)| *c).collect(),
            Job::Archive(v) => v.iter().map(|(c, _)| *c).collect(),
            Job::ArchiveByKey(v) => v.clone(),
        };
        // HubSpot's correlation id of an archive call (creates and updates carry theirs per
        // result).
        let mut archived_by = None;
        let sent = match &job {
            Job::Create(v) => self.send_creates(v).await,
            Job::Update(v) => self.send_updates(v).await,
            Job::Archive(v) => {
                let ids: Vec<u64> = v
                    .iter()
                    .filter_map(|(_, id)| u64::try_from(*id).ok())
                    .collect();
                self.archive(&ids).await.map(|c| {
                    archived_by = c;
                    Vec::new()
                })
            }
            Job::ArchiveByKey(v) => self.archive_by_key(v).await.map(|c| {
                archived_by = c;
                Vec::new()
            }),
        };
        let results = match sent {
            Ok(r) => r,
            Err(error) => {
                let mut client = self.store.client().await?;
                let tx = client
                    .transaction()
                    .await
                    .map_err(|e| StoreError::postgres("begin", e))?;
                for c in &changes {
                    outbox::fail(
                        &tx,
                        &self.options.consumer,
                        &c.entry_ids,
                        &error.to_string(),
                        Some(self.options.retry_after),
                    )
                    .await?;
                }
                tx.commit()
                    .await
                    .map_err(|e| StoreError::postgres("commit failed entries", e))?;
                return Ok((DrainReport::default(), Some(error.into())));
            }
        };
        if self.options.crash_at == Some(CrashPoint::AfterHubSpot) {
            return Ok((DrainReport::default(), None));
        }
        let mut client = self.store.client().await?;
        let tx = tagged_transaction(&mut client).await?;
        let report = match &job {
            Job::Create(v) => self.record_creates(&tx, v, results).await?,
            Job::Update(v) => self.record_updates(&tx, v, results).await?,
            Job::Archive(v) => {
                let changes: Vec<_> = v.iter().map(|(c, id)| (*c, Some(*id))).collect();
                self.record_archives(&tx, &changes, archived_by.as_deref())
                    .await?
            }
            Job::ArchiveByKey(v) => {
                let changes: Vec<_> = v.iter().map(|c| (*c, None)).collect();
                self.record_archives(&tx, &changes, archived_by.as_deref())
                    .await?
            }
        };
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit a writeback batch", e))?;
        Ok((report, None))
    }

    async fn send_creates(
        &self,
        v: &[(&RecordChange, BTreeMap<String, String>)],
    ) -> Result<ItemResults, HubSpotError> {
        let inputs: Vec<UpsertInput> = v
            .iter()
            .map(|(c, properties)| UpsertInput {
                id: c.row_key.clone(),
                id_property: ROW_ID_PROPERTY.to_owned(),
                properties: properties.clone(),
                object_write_trace_id: None,
            })
            .collect();
        let call = |inputs: Vec<UpsertInput>| -> BoxFuture<'_, Result<BatchOutcome, HubSpotError>> {
            Box::pin(async move { self.hubspot.batch_upsert(self.object.name(), &inputs).await })
        };
        let key_of = |inputs: &[UpsertInput], r: &SimpleObject| {
            r.property(ROW_ID_PROPERTY)
                .and_then(|k| inputs.iter().position(|i| i.id == k))
        };
        bisect(inputs, &call, &key_of).await
    }

    async fn send_updates(
        &self,
        v: &[(&RecordChange, i64, Action)],
    ) -> Result<ItemResults, HubSpotError> {
        let inputs: Vec<UpdateInput> = v
            .iter()
            .map(|(_, id, action)| UpdateInput {
                id: id.to_string(),
                id_property: None,
                properties: match action {
                    Action::Update { properties, .. } => properties.clone(),
                    _ => BTreeMap::new(),
                },
                object_write_trace_id: None,
            })
            .collect();
        let call = |inputs: Vec<UpdateInput>| -> BoxFuture<'_, Result<BatchOutcome, HubSpotError>> {
            Box::pin(async move { self.hubspot.batch_update(self.object.name(), &inputs).await })
        };
        let key_of = |inputs: &[UpdateInput], r: &SimpleObject| {
            let id = r.id.to_string();
            inputs.iter().position(|i| i.id == id)
        };
        bisect(inputs, &call, &key_of).await
    }

    /// Archives `ids` (at most one call's worth); returns HubSpot's correlation id of the
    /// call.
    async fn archive(&self, ids: &[u64]) -> Result<Option<String>, HubSpotError> {
        if ids.is_empty() {
            return Ok(None);
        }
        // Archiving is idempotent (204 even for unknown ids): item errors are not expected
        // and would not change what is recorded.
        let outcome = self.hubspot.batch_archive(self.object.name(), ids).await?;
        Ok(outcome.correlation_id(0).map(str::to_owned))
    }

    async fn archive_by_key(
        &self,
        changes: &[&RecordChange],
    ) -> Result<Option<String>, HubSpotError> {
        let read = BatchRead {
            ids: changes.iter().map(|c| c.row_key.clone()).collect(),
            id_property: Some(ROW_ID_PROPERTY.to_owned()),
            properties: vec![ROW_ID_PROPERTY.to_owned()],
            ..BatchRead::default()
        };
        let found = self.hubspot.batch_read(self.object.name(), &read).await?;
        let ids: Vec<u64> = found.results.iter().map(|r| r.id).collect();
        self.archive(&ids).await
    }
}

/// Claims the next round's entries of `object`.
///
/// # Errors
/// Database errors.
pub(super) async fn claim(
    store: &Store,
    object: &TwoWayObject,
    options: &DrainOptions,
) -> Result<Vec<OutboxEntry>, TwoWayError> {
    let mut client = store.client().await?;
    Ok(outbox::claim(
        &mut client,
        &options.consumer,
        Some(object.name()),
        options.records_per_claim,
        options.lease,
    )
    .await?)
}

/// Planned HubSpot writes waiting for their batch to fill.
#[derive(Default)]
struct Batches<'c> {
    creates: Vec<(&'c RecordChange, BTreeMap<String, String>)>,
    updates: Vec<(&'c RecordChange, i64, Action)>,
    archives: Vec<(&'c RecordChange, i64)>,
    by_key: Vec<&'c RecordChange>,
}

impl<'c> Batches<'c> {
    /// Adds one step's planned writes; returns the batches that are now full.
    fn add(&mut self, planned: &[(&'c RecordChange, Planned<'_>)]) -> Vec<Job<'c>> {
        for (change, p) in planned {
            match &p.action {
                Action::Create { properties } => self.creates.push((*change, properties.clone())),
                a @ Action::Update { hs_id, .. } => {
                    self.updates.push((*change, *hs_id, a.clone()));
                }
                Action::Archive { hs_id } => self.archives.push((*change, *hs_id)),
                Action::ArchiveByKey => self.by_key.push(*change),
                Action::Nothing | Action::Refuse(_) => {}
            }
        }
        let mut out = Vec::new();
        out.extend(full(&mut self.creates).into_iter().map(Job::Create));
        out.extend(full(&mut self.updates).into_iter().map(Job::Update));
        out.extend(full(&mut self.archives).into_iter().map(Job::Archive));
        out.extend(full(&mut self.by_key).into_iter().map(Job::ArchiveByKey));
        out
    }

    /// The remaining, partly filled batches.
    fn finish(self) -> Vec<Job<'c>> {
        let mut out = Vec::new();
        out.extend(last(self.creates).map(Job::Create));
        out.extend(last(self.updates).map(Job::Update));
        out.extend(last(self.archives).map(Job::Archive));
        out.extend(last(self.by_key).map(Job::ArchiveByKey));
        out
    }
}

/// A last batch, unless empty.
fn last<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// Takes the full batches (of [`MAX_BATCH_INPUTS`]) off the front of `items`.
fn full<T>(items: &mut Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    while items.len() >= MAX_BATCH_INPUTS {
        out.push(items.drain(..MAX_BATCH_INPUTS).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full batches leave as soon as they fill, in order; the rest waits for `finish`.
    #[test]
    fn batches_leave_when_full_and_the_rest_at_the_end() {
        let mut items: Vec<usize> = (0..250).collect();
        let batches = full(&mut items);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0], (0..100).collect::<Vec<_>>());
        assert_eq!(batches[1], (100..200).collect::<Vec<_>>());
        assert_eq!(items, (200..250).collect::<Vec<_>>());
        assert!(full(&mut items).is_empty());
    }
}
