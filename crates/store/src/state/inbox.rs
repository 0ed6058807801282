//! `hubsync.inbox`: HubSpot webhook events, stored (deduplicated by event id) before the
//! webhook is answered, then taken by the planner and marked processed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::{
    capture::INBOX_CHANNEL,
    error::{Context as _, StoreError},
    state::seconds,
};

/// One webhook event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    /// HubSpot's `eventId` (the deduplication key).
    pub event_id: String,
    /// HubSpot object the event is about.
    pub object: String,
    /// HubSpot's `objectId`.
    pub hs_object_id: Option<i64>,
    /// HubSpot's `subscriptionType` (e.g. `contact.propertyChange`).
    pub subscription_type: Option<String>,
    /// HubSpot's `occurredAt`.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The event as HubSpot sent it.
    pub payload: Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRecord {
    /// Arrival order.
    pub id: i64,
    /// The event.
    pub event: InboxEvent,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
    /// Failed processing attempts.
    pub attempts: i32,
}

/// Stores events not seen before (by event id) and notifies [`INBOX_CHANNEL`]. Returns, per
/// event in order, whether it was new.
///
/// # Errors
/// Database errors.
pub async fn insert(
    client: &impl GenericClient,
    events: &[InboxEvent],
) -> Result<Vec<bool>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let event_ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let objects: Vec<&str> = events.iter().map(|e| e.object.as_str()).collect();
    let ids: Vec<Option<i64>> = events.iter().map(|e| e.hs_object_id).collect();
    let kinds: Vec<Option<&str>> = events
        .iter()
        .map(|e| e.subscription_type.as_deref())
        .collect();
    let occurred: Vec<Option<DateTime<Utc>>> = events.iter().map(|e| e.occurred_at).collect();
    let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
    let rows = client
        .query(
            "WITH new AS ( \
               INSERT INTO hubsync.inbox \
                 (event_id, object, hs_object_id, subscription_type, occurred_at, payload) \
               SELECT DISTINCT ON (e) e, o, i, k, t, p \
               FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], \
                 $5::timestamptz[], $6::jsonb[]) AS u(e, o, i, k, t, p) \
               ON CONFLICT (event_id) DO NOTHING RETURNING event_id, object \
             ), woke AS ( \
               SELECT pg_notify($7, object) FROM (SELECT DISTINCT object FROM new) d \
             ) \
             SELECT event_id FROM new, (SELECT count(*) FROM woke) w",
            &[
                &event_ids,
                &objects,
                &ids,
                &kinds,
                &occurred,
                &payloads,
                &INBOX_CHANNEL,
            ],
        )
        .await
        .during("store webhook events")?;
    let mut fresh: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    // The first copy of an id repeated within the batch counts as new, the rest not.
    Ok(events.iter().map(|e| fresh.remove(&e.event_id)).collect())
}

/// Takes up to `limit` unprocessed events, oldest first, locking them (`SKIP LOCKED`) so
/// that other instances take others. Call inside a transaction and mark them processed in
/// the same transaction.
///
/// # Errors
/// Database errors.
pub async fn take_pending(
    client: &impl GenericClient,
    limit: i64,
) -> Result<Vec<InboxRecord>, StoreError> {
    let rows = client
        .query(
            "SELECT id, event_id, object, hs_object_id, subscription_type, occurred_at, payload, \
               received_at, attempts FROM hubsync.inbox WHERE processed_at IS NULL \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&limit],
        )
        .await
        .during("take webhook events")?;
    Ok(rows
        .iter()
        .map(|r| InboxRecord {
            id: r.get(0),
            event: InboxEvent {
                event_id: r.get(1),
                object: r.get(2),
                hs_object_id: r.get(3),
                subscription_type: r.get(4),
                occurred_at: r.get(5),
                payload: r.get(6),
            },
            received_at: r.get(7),
            attempts: r.get(8),
        })
        .collect())
}

/// Marks events processed.
///
/// # Errors
/// Database errors.
pub async fn mark_processed(client: &impl GenericClient, ids: &[i64]) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE hubsync.inbox SET processed_at = now() WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .during("mark webhook events processed")
}

/// Records a failed attempt at processing events (they stay unprocessed).
///
/// # Errors
/// Database errors.
pub async fn mark_failed(
    client: &impl GenericClient,
    ids: &[i64],
    error: &str,
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE hubsync.inbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1)",
            &[&ids, &error],
        )
        .await
        .during("mark webhook events failed")
}

/// Unprocessed events waiting.
///
/// # Errors
/// Database errors.
pub async fn depth(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM hubsync.inbox WHERE processed_at IS NULL",
            &[],
        )
        .await
        .during("count webhook events")?;
    Ok(row.get(0))
}

/// Deletes processed events older than `age` (their ids are no longer needed for
/// deduplication once HubSpot has stopped retrying). Returns how many.
///
/// # Errors
/// Database errors.
pub async fn purge_processed(
    client: &impl GenericClient,
    age: Duration,
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM hubsync.inbox \
             WHERE processed_at < now() - make_interval(secs => $1)",
            &[&seconds(age)],
        )
        .await
        .during("purge webhook events")
}
