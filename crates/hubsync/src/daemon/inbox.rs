//! The inbox worker: webhook events stored by the receiver become rows in PostgreSQL.
//!
//! Woken by `NOTIFY hubsync_inbox` (and every few seconds regardless), it applies pending
//! events batch by batch through the engine ([`InboxWorker::apply_batch`]: claim with
//! `SKIP LOCKED`, re-read the records by batch read, store them through the engine's write
//! path, mark processed — one transaction per batch) until the inbox is empty, and backs
//! off when HubSpot or PostgreSQL fails. Only objects that are configured, read HubSpot
//! and are real time take events; the schedule picks up the others' changes.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use hubsync_engine::{hs_to_pg::error_chain, webhook_inbox::InboxWorker};
use hubsync_store::{INBOX_CHANNEL, OutboxListener};
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::telemetry::names;

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
    let worker = InboxWorker::new(shared.client.clone(), shared.store.clone());
    let mut listener =
        OutboxListener::start_on(shared.store.clone(), vec![INBOX_CHANNEL.to_owned()]);
    let mut backoff = FIRST_BACKOFF;
    loop {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            match apply_batch(&shared, &worker).await {
                Ok(0) => break,
                Ok(_) => backoff = FIRST_BACKOFF,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "webhook events not applied yet");
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

/// Applies one batch of pending events and records its metrics; returns how many events
/// it took.
async fn apply_batch(shared: &Shared, worker: &InboxWorker) -> Result<usize, String> {
    let Some(catalog) = shared.current_catalog() else {
        return Ok(0);
    };
    let wanted = |object: &str| {
        shared
            .plan(object)
            .is_some_and(|p| p.realtime && p.reads_hubspot)
    };
    let batch = worker
        .apply_batch(&catalog, &wanted)
        .await
        .map_err(|e| error_chain(&e))?;
    let now = Utc::now();
    for applied in &batch.objects {
        let object = applied.object.clone();
        metrics::counter!(names::ROWS_WRITTEN, "object" => object.clone(), "source" => "webhook")
            .increment(applied.written);
        metrics::gauge!(names::LAST_SUCCESS, "object" => object, "direction" => "hubspot-to-postgres")
            .set(now.timestamp() as f64);
    }
    for received in &batch.received {
        let age = (now - *received).num_microseconds().unwrap_or(0).max(0);
        metrics::histogram!(names::WEBHOOK_APPLY_SECONDS).record(age as f64 / 1e6);
    }
    Ok(batch.taken)
}
