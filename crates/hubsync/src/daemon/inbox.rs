//! The inbox worker: webhook events stored by the receiver become rows in PostgreSQL.
//!
//! Woken by `NOTIFY hubsync_inbox` (and every few seconds regardless), it takes pending
//! events in arrival order with `FOR UPDATE SKIP LOCKED` — several instances share the inbox
//! without taking the same event — and, in **one transaction** per batch:
//!
//! 1. orders the events per record by `occurredAt` and folds them into the set of records
//!    to re-read (events are hints: the value in a `propertyChange` may already be stale,
//!    lessons.md 24); a merge names its survivor and the merged-away ids;
//! 2. re-reads those records with batch reads (≤ 100 ids per call) and writes them through
//!    the engine's write path ([`write_records`]: never backwards in time, merges
//!    tombstoned, and for two-way objects the inbound merge against the shadow, which drops
//!    the echoes of hubsync's own writes);
//! 3. records HubSpot no longer has (deleted, GDPR-erased) are archived (or deleted with
//!    `hard_delete`);
//! 4. associations of created/restored records and of both ends of an `associationChange`
//!    are re-read with v4 batch reads and replace the junction rows;
//! 5. marks the events processed and commits.
//!
//! A crash anywhere before the commit leaves the events pending: they are redone, and
//! every step is idempotent. When HubSpot or PostgreSQL fails, the attempt is recorded on
//! the events and the worker backs off; the reconciliation sweep covers the gap meanwhile.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use hubsync_engine::hs_to_pg::{
    ObjectContext, Prepared,
    associations::{fetch, outgoing},
    write::write_records,
};
use hubsync_hubspot::{
    BatchRead,
    webhook::{EventKind, WebhookEvent},
};
use hubsync_store::{
    GenericClient, INBOX_CHANNEL, OutboxListener,
    associations::replace_associations,
    state::inbox::{self, InboxRecord},
    tombstones::{DeleteMode, archive_records},
};
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::{telemetry::names, web::webhooks::object_name};

/// Events taken per transaction.
const BATCH: i64 = 500;
/// Failed attempts after which an event is given up (reconciliation covers its record).
const MAX_ATTEMPTS: i32 = 20;
/// How often the inbox is read even without a notification.
const POLL_EVERY: Duration = Duration::from_secs(5);
/// Back-off bounds after a failed batch.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs the worker until shutdown.
///
/// # Errors
/// The notification listener stopped (the supervisor restarts the worker).
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) -> anyhow::Result<()> {
    if shared.catalog(&shutdown).await.is_none() {
        return Ok(());
    }
    let mut listener =
        OutboxListener::start_on(shared.store.clone(), vec![INBOX_CHANNEL.to_owned()]);
    let mut backoff = FIRST_BACKOFF;
    loop {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            match apply_batch(&shared).await {
                Ok(0) => break,
                Ok(_) => backoff = FIRST_BACKOFF,
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), retry_in = ?backoff, "webhook events not applied yet");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tokio::select! {
            wake = listener.recv() => if wake.is_none() {
                anyhow::bail!("the inbox listener stopped");
            },
            () = tokio::time::sleep(POLL_EVERY) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// What one batch asks of one object.
#[derive(Debug, Default)]
struct Work {
    /// Records to re-read, with the latest `occurredAt` seen for each.
    records: BTreeMap<i64, DateTime<Utc>>,
    /// Records whose associations to re-read.
    associations: BTreeSet<i64>,
    /// Events behind this work.
    events: usize,
}

/// Applies one batch of pending events; returns how many events it took.
async fn apply_batch(shared: &Shared) -> anyhow::Result<usize> {
    let Some(catalog) = shared.current_catalog() else {
        return Ok(0);
    };
    let mut conn = shared.store.client().await?;
    let tx = conn.transaction().await?;
    let pending = inbox::take_pending(&tx, BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    // An event that failed too often is left to the reconciliation sweep rather than
    // holding up the ones behind it.
    let (given_up, mut pending): (Vec<InboxRecord>, Vec<InboxRecord>) = pending
        .into_iter()
        .partition(|r| r.attempts >= MAX_ATTEMPTS);
    if !given_up.is_empty() {
        tracing::warn!(
            events = given_up.len(),
            "webhook events failed {MAX_ATTEMPTS} times; left to reconciliation"
        );
    }
    // Per record in occurredAt order (arrival order breaks ties).
    pending.sort_by_key(|r| (r.event.occurred_at, r.id));
    let work = plan(shared, &pending);
    let result = apply(shared, &catalog, &tx, &work).await;
    match result {
        Ok(()) => {
            inbox::mark_processed(&tx, &ids).await?;
            tx.commit().await.context("commit webhook batch")?;
            let now = Utc::now();
            for object in work.keys() {
                metrics::gauge!(names::LAST_SUCCESS, "object" => object.clone(), "direction" => "hubspot-to-postgres")
                    .set(now.timestamp() as f64);
            }
            for r in &pending {
                let age = (now - r.received_at).num_microseconds().unwrap_or(0).max(0);
                metrics::histogram!(names::WEBHOOK_APPLY_SECONDS).record(age as f64 / 1e6);
            }
            Ok(pending.len() + given_up.len())
        }
        Err(err) => {
            drop(tx);
            let reason = format!("{err:#}");
            if let Ok(c) = shared.store.client().await {
                let _ = inbox::mark_failed(&c, &ids, &reason).await;
            }
            Err(err)
        }
    }
}

/// Folds events into per-object work. Events of objects that are not configured, do not
/// read HubSpot or are not real time are dropped (the schedule picks their changes up).
fn plan(shared: &Shared, pending: &[InboxRecord]) -> BTreeMap<String, Work> {
    let mut work: BTreeMap<String, Work> = BTreeMap::new();
    let wanted = |object: &str| {
        shared
            .plan(object)
            .is_some_and(|p| p.realtime && p.reads_hubspot)
    };
    for r in pending {
        let Ok(event) = serde_json::from_value::<WebhookEvent>(r.event.payload.clone()) else {
            continue;
        };
        let object = r.event.object.as_str();
        let at = r.event.occurred_at.unwrap_or(r.received_at);
        match event.kind() {
            EventKind::AssociationChange => {
                let ends = [
                    (
                        Some(object.to_owned()),
                        event.from_object_id.or(event.object_id),
                    ),
                    (target_object(&event), event.to_object_id),
                ];
                for (end, id) in ends {
                    let (Some(end), Some(id)) = (end, id.and_then(|i| i64::try_from(i).ok()))
                    else {
                        continue;
                    };
                    if wanted(&end) {
                        let w = work.entry(end).or_default();
                        w.associations.insert(id);
                        w.events += 1;
                    }
                }
            }
            kind => {
                if !wanted(object) {
                    continue;
                }
                let w = work.entry(object.to_owned()).or_default();
                w.events += 1;
                let mut ids: Vec<u64> = event.object_id.into_iter().collect();
                if kind == EventKind::Merge {
                    ids.extend(event.survivor_id());
                    ids.extend(event.merged_object_ids.iter().copied());
                }
                for id in ids.into_iter().filter_map(|i| i64::try_from(i).ok()) {
                    w.records.insert(id, at);
                    if matches!(
                        kind,
                        EventKind::Creation | EventKind::Restore | EventKind::Merge
                    ) {
                        w.associations.insert(id);
                    }
                }
            }
        }
    }
    work
}

/// The other end of an association change: `toObjectTypeId`, else the part after `_TO_` in
/// `associationType` (`CONTACT_TO_COMPANY` → `companies`).
fn target_object(event: &WebhookEvent) -> Option<String> {
    if let Some(type_id) = &event.to_object_type_id {
        return Some(object_name(type_id));
    }
    let (_, to) = event.association_type.as_deref()?.split_once("_TO_")?;
    Some(object_name(&to.to_ascii_lowercase()))
}

/// Re-reads and writes every object's records and associations on `tx`, parents first.
async fn apply(
    shared: &Shared,
    catalog: &Prepared,
    tx: &impl GenericClient,
    work: &BTreeMap<String, Work>,
) -> anyhow::Result<()> {
    for ctx in &catalog.objects {
        let Some(w) = work.get(ctx.name()) else {
            continue;
        };
        let written = hydrate(shared, ctx, tx, &w.records).await?;
        metrics::counter!(names::ROWS_WRITTEN, "object" => ctx.name().to_owned(), "source" => "webhook")
            .increment(written);
        if !w.associations.is_empty() {
            let ids: Vec<i64> = w.associations.iter().copied().collect();
            for junction in outgoing(&catalog.junctions, ctx.name()) {
                let rows = fetch(
                    &shared.client,
                    junction,
                    &ids,
                    ctx.settings.association_batch,
                )
                .await
                .with_context(|| format!("reading associations of {}", ctx.name()))?;
                replace_associations(tx, junction, &ids, &rows).await?;
            }
        }
        tracing::debug!(
            object = ctx.name(),
            events = w.events,
            records = w.records.len(),
            "webhook events applied"
        );
    }
    Ok(())
}

/// Batch-reads `records` and writes them; archives the ones HubSpot no longer has.
/// Returns the rows written.
async fn hydrate(
    shared: &Shared,
    ctx: &ObjectContext,
    tx: &impl GenericClient,
    records: &BTreeMap<i64, DateTime<Utc>>,
) -> anyhow::Result<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    let request = BatchRead {
        ids: records.keys().map(ToString::to_string).collect(),
        properties: ctx.requested.clone(),
        ..BatchRead::default()
    };
    let read = shared
        .client
        .batch_read(ctx.name(), &request)
        .await
        .with_context(|| format!("reading {} records", ctx.name()))?;
    let mut missing: BTreeMap<DateTime<Utc>, Vec<i64>> = BTreeMap::new();
    for error in &read.errors {
        if error.status != 404 {
            // Not worth blocking the inbox for: the reconciliation sweep reads them.
            tracing::warn!(
                object = ctx.name(),
                status = error.status,
                ids = error.ids.len(),
                "HubSpot refused to read some records; left to reconciliation"
            );
            continue;
        }
        for id in error.ids.iter().filter_map(|i| i.parse::<i64>().ok()) {
            if let Some(at) = records.get(&id) {
                missing.entry(*at).or_default().push(id);
            }
        }
    }
    let outcome = write_records(tx, ctx, read.results).await?;
    let mode = if ctx.settings.hard_delete {
        DeleteMode::Hard
    } else {
        DeleteMode::Soft
    };
    for (at, ids) in &missing {
        archive_records(tx, &ctx.mapping, ids, *at, mode).await?;
    }
    Ok(outcome.written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> WebhookEvent {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    #[test]
    fn association_targets_come_from_the_type_id_or_the_type_name() {
        let e = event(
            r#"{"eventId":1,"occurredAt":1,"subscriptionType":"contact.associationChange",
            "fromObjectId":1,"toObjectId":2,"associationType":"CONTACT_TO_COMPANY"}"#,
        );
        assert_eq!(target_object(&e).as_deref(), Some("companies"));
        let e = event(
            r#"{"eventId":1,"occurredAt":1,"subscriptionType":"deal.associationChange",
            "fromObjectId":1,"toObjectId":2,"toObjectTypeId":"0-1"}"#,
        );
        assert_eq!(target_object(&e).as_deref(), Some("contacts"));
    }
}
