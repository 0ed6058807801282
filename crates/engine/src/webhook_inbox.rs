//! The webhook inbox: events the receiver stored in `hubsync.inbox` become rows in
//! PostgreSQL. The daemon's inbox worker calls [`InboxWorker::apply_batch`] when woken;
//! the fault simulation calls the same code.
//!
//! A batch takes pending events in arrival order with `FOR UPDATE SKIP LOCKED` — several
//! instances share the inbox without taking the same event — and, in **one transaction**:
//!
//! 1. orders the events per record by `occurredAt` and folds them into the set of records
//!    to re-read (events are hints: the value in a `propertyChange` may already be stale,
//!    lessons.md 24); a merge names its survivor and the merged-away ids; events of custom
//!    objects (`objectTypeId` `2-…`) are mapped to the configured object of that type;
//! 2. re-reads those records with batch reads (≤ 100 ids per call) and writes them through
//!    the engine's write path ([`write_records`]: never backwards in time, merges
//!    tombstoned, and for two-way objects the inbound merge against the shadow, which drops
//!    the echoes of hubsync's own writes);
//! 3. records HubSpot no longer has (deleted, GDPR-erased) are archived (or deleted with
//!    `hard_delete`);
//! 4. associations of created/restored/merged records and of both ends of an
//!    `associationChange` are re-read with v4 batch reads and replace the junction rows;
//! 5. marks the events processed and commits.
//!
//! A crash anywhere before the commit leaves the events pending: they are redone, and
//! every step is idempotent. When HubSpot or PostgreSQL fails, the attempt is recorded on
//! the events and the caller backs off; the reconciliation sweep covers the gap meanwhile.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hubsync_hubspot::{
    BatchRead, HubSpotClient,
    webhook::{EventKind, WebhookEvent},
};
use hubsync_store::{
    GenericClient, Store,
    associations::replace_associations,
    state::inbox::{self, InboxEvent, InboxRecord},
    tombstones::{DeleteMode, archive_records},
};
use tokio::sync::Mutex;

use crate::hs_to_pg::{
    ObjectContext, Prepared, SyncError,
    associations::{fetch, outgoing},
    write::write_records,
};

/// Events taken per transaction.
pub const BATCH: i64 = 500;
/// Failed attempts after which an event is given up (reconciliation covers its record).
pub const MAX_ATTEMPTS: i32 = 20;

/// The plural object name hubsync's config uses for an event's object (`contact` →
/// `contacts`, `0-3` → `deals`); other type ids (custom objects) are kept as they are and
/// resolved by [`InboxWorker`].
pub fn object_name(event_object: &str) -> String {
    match event_object {
        "contact" | "0-1" => "contacts",
        "company" | "0-2" => "companies",
        "deal" | "0-3" => "deals",
        "ticket" | "0-5" => "tickets",
        "product" | "0-7" => "products",
        "line_item" | "0-8" => "line_items",
        other => other,
    }
    .to_owned()
}

/// The inbox row of a received event: `propertyValue` dropped (the record is re-read, and
/// only synced properties may leave HubSpot), the object named as the config names it.
pub fn inbox_event(mut event: WebhookEvent) -> InboxEvent {
    event.property_value = None;
    let occurred_at = DateTime::<Utc>::from_timestamp_millis(event.occurred_at);
    InboxEvent {
        event_id: event.event_id.to_string(),
        object: object_name(event.object()),
        hs_object_id: event.object_id.and_then(|id| i64::try_from(id).ok()),
        subscription_type: Some(event.subscription_type.clone()),
        occurred_at,
        payload: serde_json::to_value(&event).unwrap_or(serde_json::Value::Null),
    }
}

/// What one object got from a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectApplied {
    /// The object.
    pub object: String,
    /// Events behind this work.
    pub events: usize,
    /// Records re-read.
    pub records: usize,
    /// Rows written.
    pub written: u64,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxBatch {
    /// Events taken and marked processed (0: the inbox was empty).
    pub taken: usize,
    /// Of those, events given up after [`MAX_ATTEMPTS`] failures.
    pub given_up: usize,
    /// Per object with work.
    pub objects: Vec<ObjectApplied>,
    /// When each applied event was received (for the apply-latency metric).
    pub received: Vec<DateTime<Utc>>,
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

/// Applies inbox batches for one database and one portal.
#[derive(Debug)]
pub struct InboxWorker {
    client: HubSpotClient,
    store: Store,
    /// Custom object type ids (`2-…`) → the configured object of that type, once looked up
    /// (`None`: not a configured object).
    custom_types: Mutex<BTreeMap<String, Option<String>>>,
}

impl InboxWorker {
    /// A worker on `store` reading HubSpot through `client` (shared governor).
    pub fn new(client: HubSpotClient, store: Store) -> Self {
        Self {
            client,
            store,
            custom_types: Mutex::new(BTreeMap::new()),
        }
    }

    /// Applies one batch of pending events of the objects in `catalog` for which `wanted`
    /// says yes (configured, reading HubSpot, real time); the others' events are marked
    /// processed unapplied (the schedule picks their changes up).
    ///
    /// # Errors
    /// HubSpot or PostgreSQL failures: nothing of the batch is kept, the failure is
    /// recorded on its events, which stay pending.
    pub async fn apply_batch(
        &self,
        catalog: &Prepared,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<InboxBatch, SyncError> {
        let failed = |e| SyncError::Store {
            object: "webhook inbox".to_owned(),
            source: e,
        };
        let mut conn = self.store.client().await.map_err(failed)?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| failed(hubsync_store::StoreError::postgres("begin", e)))?;
        let pending = inbox::take_pending(&tx, BATCH).await.map_err(failed)?;
        if pending.is_empty() {
            return Ok(InboxBatch::default());
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
        let result = async {
            let names = self.custom_names(catalog, &pending).await?;
            let work = plan(&pending, &names, wanted);
            apply(&self.client, catalog, &tx, &work).await
        }
        .await;
        match result {
            Ok(objects) => {
                inbox::mark_processed(&tx, &ids).await.map_err(failed)?;
                tx.commit()
                    .await
                    .map_err(|e| failed(hubsync_store::StoreError::postgres("commit", e)))?;
                Ok(InboxBatch {
                    taken: pending.len() + given_up.len(),
                    given_up: given_up.len(),
                    objects,
                    received: pending.iter().map(|r| r.received_at).collect(),
                })
            }
            Err(err) => {
                drop(tx);
                let reason = crate::hs_to_pg::error_chain(&err);
                if let Ok(c) = self.store.client().await {
                    let _ = inbox::mark_failed(&c, &ids, &reason).await;
                }
                Err(err)
            }
        }
    }

    /// The configured object of every custom object type id (`2-…`) the events name,
    /// looked up in HubSpot's schemas once per type.
    async fn custom_names(
        &self,
        catalog: &Prepared,
        pending: &[InboxRecord],
    ) -> Result<BTreeMap<String, String>, SyncError> {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for r in pending {
            wanted.insert(r.event.object.clone());
            if let Ok(event) = serde_json::from_value::<WebhookEvent>(r.event.payload.clone())
                && let Some(to) = target_object(&event)
            {
                wanted.insert(to);
            }
        }
        wanted.retain(|o| is_custom_type_id(o) && !catalog.objects.iter().any(|c| c.name() == o));
        let mut known = self.custom_types.lock().await;
        for type_id in wanted {
            if known.contains_key(&type_id) {
                continue;
            }
            let found = match self.client.get_schema(&type_id).await {
                Ok(schema) => catalog
                    .objects
                    .iter()
                    .map(ObjectContext::name)
                    .find(|name| {
                        [
                            &schema.name,
                            &schema.fully_qualified_name,
                            &schema.object_type_id,
                        ]
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(name))
                    })
                    .map(str::to_owned),
                Err(e) if e.status() == Some(404) => None,
                Err(source) => {
                    return Err(SyncError::HubSpot {
                        object: type_id,
                        source,
                    });
                }
            };
            known.insert(type_id, found);
        }
        Ok(known
            .iter()
            .filter_map(|(id, name)| name.clone().map(|n| (id.clone(), n)))
            .collect())
    }
}

/// A custom object's type id: `2-` followed by digits.
fn is_custom_type_id(object: &str) -> bool {
    object
        .strip_prefix("2-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Folds events into per-object work. Events of objects `wanted` refuses are dropped;
/// custom type ids are renamed through `names`.
fn plan(
    pending: &[InboxRecord],
    names: &BTreeMap<String, String>,
    wanted: &(dyn Fn(&str) -> bool + Sync),
) -> BTreeMap<String, Work> {
    let named = |object: String| names.get(&object).cloned().unwrap_or(object);
    let mut work: BTreeMap<String, Work> = BTreeMap::new();
    for r in pending {
        let Ok(event) = serde_json::from_value::<WebhookEvent>(r.event.payload.clone()) else {
            continue;
        };
        let object = named(r.event.object.clone());
        let at = r.event.occurred_at.unwrap_or(r.received_at);
        match event.kind() {
            EventKind::AssociationChange => {
                let ends = [
                    (Some(object), event.from_object_id.or(event.object_id)),
                    (target_object(&event).map(named), event.to_object_id),
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
                if !wanted(&object) {
                    continue;
                }
                let w = work.entry(object).or_default();
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
    client: &HubSpotClient,
    catalog: &Prepared,
    tx: &impl GenericClient,
    work: &BTreeMap<String, Work>,
) -> Result<Vec<ObjectApplied>, SyncError> {
    let mut applied = Vec::new();
    for ctx in &catalog.objects {
        let Some(w) = work.get(ctx.name()) else {
            continue;
        };
        let object = ctx.name();
        let written = hydrate(client, ctx, tx, &w.records).await?;
        if !w.associations.is_empty() {
            let ids: Vec<i64> = w.associations.iter().copied().collect();
            for junction in outgoing(&catalog.junctions, object) {
                let rows = fetch(client, junction, &ids, ctx.settings.association_batch)
                    .await
                    .map_err(|source| SyncError::HubSpot {
                        object: object.to_owned(),
                        source,
                    })?;
                replace_associations(tx, junction, &ids, &rows)
                    .await
                    .map_err(|source| SyncError::Store {
                        object: object.to_owned(),
                        source,
                    })?;
            }
        }
        tracing::debug!(
            object,
            events = w.events,
            records = w.records.len(),
            "webhook events applied"
        );
        applied.push(ObjectApplied {
            object: object.to_owned(),
            events: w.events,
            records: w.records.len(),
            written,
        });
    }
    Ok(applied)
}

/// Batch-reads `records` and writes them; archives the ones HubSpot no longer has.
/// Returns the rows written.
async fn hydrate(
    client: &HubSpotClient,
    ctx: &ObjectContext,
    tx: &impl GenericClient,
    records: &BTreeMap<i64, DateTime<Utc>>,
) -> Result<u64, SyncError> {
    if records.is_empty() {
        return Ok(0);
    }
    let object = ctx.name();
    let store_failed = |source| SyncError::Store {
        object: object.to_owned(),
        source,
    };
    let request = BatchRead {
        ids: records.keys().map(ToString::to_string).collect(),
        properties: ctx.requested.clone(),
        ..BatchRead::default()
    };
    let read = client
        .batch_read(object, &request)
        .await
        .map_err(|source| SyncError::HubSpot {
            object: object.to_owned(),
            source,
        })?;
    let mut missing: BTreeMap<DateTime<Utc>, Vec<i64>> = BTreeMap::new();
    for error in &read.errors {
        if error.status != 404 {
            // Not worth blocking the inbox for: the reconciliation sweep reads them.
            tracing::warn!(
                object,
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
    let outcome = write_records(tx, ctx, read.results)
        .await
        .map_err(store_failed)?;
    let mode = if ctx.settings.hard_delete {
        DeleteMode::Hard
    } else {
        DeleteMode::Soft
    };
    for (at, ids) in &missing {
        archive_records(tx, &ctx.mapping, ids, *at, mode)
            .await
            .map_err(store_failed)?;
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

    #[test]
    fn object_names_follow_the_config() {
        assert_eq!(object_name("contact"), "contacts");
        assert_eq!(object_name("0-3"), "deals");
        assert_eq!(object_name("2-123"), "2-123");
        assert!(is_custom_type_id("2-123"));
        assert!(!is_custom_type_id("0-1") && !is_custom_type_id("2-") && !is_custom_type_id("2-x"));
    }

    #[test]
    fn custom_object_events_are_planned_under_the_configured_name() {
        let record = |id: i64, json: &str| InboxRecord {
            id,
            event: inbox_event(event(json)),
            received_at: DateTime::<Utc>::from_timestamp_millis(5).unwrap_or_default(),
            attempts: 0,
        };
        let pending = vec![
            record(
                1,
                r#"{"eventId":1,"occurredAt":1,"subscriptionType":"object.propertyChange",
                "objectTypeId":"2-77","objectId":9,"propertyName":"x","propertyValue":"secret"}"#,
            ),
            record(
                2,
                r#"{"eventId":2,"occurredAt":2,"subscriptionType":"object.creation",
                "objectTypeId":"2-88","objectId":4}"#,
            ),
        ];
        assert_eq!(pending[0].event.object, "2-77");
        assert!(pending[0].event.payload.get("propertyValue").is_none());
        let names = BTreeMap::from([("2-77".to_owned(), "cars".to_owned())]);
        let work = plan(&pending, &names, &|o: &str| o == "cars");
        assert_eq!(work.keys().collect::<Vec<_>>(), ["cars"]);
        assert_eq!(work["cars"].records.keys().collect::<Vec<_>>(), [&9]);
    }
}
