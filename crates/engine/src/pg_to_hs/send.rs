//! One writeback round: plans every claimed record, sends the HubSpot batches (several in
//! flight, paced by the client's governor), bisects a batch HubSpot rejected as a whole,
//! and commits each batch's outcome — ids, shadow, record state, outbox acknowledgement,
//! audit — in one PostgreSQL transaction per batch.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use futures_util::{StreamExt, future::BoxFuture, stream};
use hubsync_hubspot::{
    BatchOutcome, BatchRead, HubSpotClient, HubSpotError, SimpleObject, UpdateInput, UpsertInput,
    batch::MAX_BATCH_INPUTS,
};
use hubsync_store::{
    Store, StoreError,
    rows::StoredRow,
    state::outbox::{self, RecordChange},
    tagged_transaction,
};

use super::bisect::{ItemResults, bisect};
use super::plan::{Action, Planned, plan};
use super::{DrainOptions, DrainReport};
use crate::merge::MergeContext;
use crate::two_way::{
    ROW_ID_PROPERTY, TwoWayError, TwoWayObject,
    shadow_io::{self, ms},
    write_fields_to_postgres,
};

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

    /// Plans, sends and records one claim's changes. The error, if any, is the first
    /// whole-call HubSpot failure (its entries were put back for a later retry).
    pub(super) async fn run(
        &self,
        changes: Vec<RecordChange>,
        rows: HashMap<String, StoredRow>,
    ) -> Result<(DrainReport, Option<TwoWayError>), TwoWayError> {
        let ids: Vec<i64> = rows.values().filter_map(|r| r.hs_object_id).collect();
        let shadows = {
            let client = self.store.client().await?;
            shadow_io::load(&client, self.object.name(), &ids).await?
        };
        let planned: Vec<(&RecordChange, Planned<'_>)> = changes
            .iter()
            .map(|c| {
                let row = rows.get(&c.row_key);
                let shadow = row
                    .and_then(|r| r.hs_object_id)
                    .and_then(|id| shadows.get(&id));
                (c, plan(self.object, c, row, shadow, &self.ctx))
            })
            .collect();
        let mut report = self.settle_local(&planned).await?;
        // Futures built before awaiting (a closure mapping jobs inside the stream would
        // make the future not `Send` for the daemon's multi-threaded runtime).
        let mut calls = Vec::new();
        for job in jobs(&planned) {
            calls.push(self.run_job(job));
        }
        let results: Vec<Result<(DrainReport, Option<TwoWayError>), TwoWayError>> =
            stream::iter(calls)
                .buffer_unordered(self.options.concurrency.max(1))
                .collect()
                .await;
        let mut first_error = None;
        for r in results {
            let (done, error) = r?;
            report.absorb(&done);
            if first_error.is_none() {
                first_error = error;
            }
        }
        if self.options.crash_at.is_none() {
            report.associations += self.write_primary(&planned).await?;
        }
        Ok((report, first_error))
    }

    /// Records that need no HubSpot call: acknowledged, refused, or reverted in PostgreSQL.
    async fn settle_local(
        &self,
        planned: &[(&RecordChange, Planned<'_>)],
    ) -> Result<DrainReport, TwoWayError> {
        let mut report = DrainReport::default();
        let mut client = self.store.client().await?;
        let tx = tagged_transaction(&mut client).await?;
        let consumer = &self.options.consumer;
        for (change, p) in planned {
            report.held_conflicts += p.held;
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
    async fn run_job(
        &self,
        job: Job<'_>,
    ) -> Result<(DrainReport, Option<TwoWayError>), TwoWayError> {
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

/// Groups planned HubSpot writes into batches of at most 100.
fn jobs<'c>(planned: &[(&'c RecordChange, Planned<'_>)]) -> Vec<Job<'c>> {
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut archives = Vec::new();
    let mut by_key = Vec::new();
    for (change, p) in planned {
        match &p.action {
            Action::Create { properties } => creates.push((*change, properties.clone())),
            a @ Action::Update { hs_id, .. } => updates.push((*change, *hs_id, a.clone())),
            Action::Archive { hs_id } => archives.push((*change, *hs_id)),
            Action::ArchiveByKey => by_key.push(*change),
            Action::Nothing | Action::Refuse(_) => {}
        }
    }
    let mut out = Vec::new();
    out.extend(chunked(creates).into_iter().map(Job::Create));
    out.extend(chunked(updates).into_iter().map(Job::Update));
    out.extend(chunked(archives).into_iter().map(Job::Archive));
    out.extend(chunked(by_key).into_iter().map(Job::ArchiveByKey));
    out
}

fn chunked<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(MAX_BATCH_INPUTS).collect());
    }
    out
}
