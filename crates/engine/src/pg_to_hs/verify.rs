//! Verify before writing (two-way objects): a HubSpot edit made moments before a push may
//! not have been pulled yet (the incremental pull stays behind real time, and HubSpot's
//! search index lags). Writing PostgreSQL's value over it would lose it silently. So before
//! a round is planned, the records HubSpot modified recently (one search) that also have
//! pending PostgreSQL changes are read exactly (batch read) and run through the inbound
//! merge, which settles any conflict by policy — the same path as a pull. Records nobody
//! touched in HubSpot recently cost no extra call.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubsync_hubspot::{
    BatchRead, HubSpotClient,
    objects::modified_property,
    search::{Filter, FilterGroup, SearchRequest, Sort},
};
use hubsync_store::{
    Store, StoreError,
    state::outbox::{NetOp, RecordChange},
    tagged_transaction,
    upsert::upsert_records,
};

use crate::hs_to_pg::records::convert;
use crate::policy::Direction;
use crate::settings::PropertySelection;
use crate::two_way::{ROW_ID_PROPERTY, TwoWayError, TwoWayObject, inbound};

/// Search pages read at most; beyond that every pending record is read instead.
const MAX_PAGES: usize = 10;

/// Search page size (HubSpot's maximum).
const PAGE: u32 = 200;

/// Reads and merges the records of `changes` that HubSpot modified within `window`.
/// Returns how many were read.
///
/// # Errors
/// HubSpot (whole-call) and database errors.
pub(super) async fn verify(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
    changes: &[RecordChange],
    window: Duration,
) -> Result<u64, TwoWayError> {
    if window.is_zero() || object.rules.object().direction != Direction::TwoWay {
        return Ok(0);
    }
    let pending: HashSet<i64> = changes
        .iter()
        .filter(|c| c.op == NetOp::Update)
        .filter_map(|c| c.hs_object_id)
        .collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let recent = recently_modified(store, hubspot, object, window).await?;
    let ids: Vec<String> = match recent {
        Some(recent) => pending.intersection(&recent).map(i64::to_string).collect(),
        None => pending.iter().map(i64::to_string).collect(),
    };
    if ids.is_empty() {
        return Ok(0);
    }
    let mut properties: Vec<String> = object
        .mapping
        .columns
        .iter()
        .map(|c| c.property.clone())
        .collect();
    properties.push(ROW_ID_PROPERTY.to_owned());
    let read = BatchRead {
        ids,
        properties,
        ..BatchRead::default()
    };
    let found = hubspot.batch_read(object.name(), &read).await?;
    let count = found.results.len() as u64;
    let rows = found
        .results
        .into_iter()
        .map(|r| convert(r, &PropertySelection::All).row)
        .collect();
    let mut client = store.client().await?;
    let tx = tagged_transaction(&mut client).await?;
    let merged = inbound(&tx, object, rows, Utc::now()).await?;
    upsert_records(&tx, &object.mapping, &merged.rows).await?;
    tx.commit()
        .await
        .map_err(|e| StoreError::postgres("commit verified records", e))?;
    Ok(count)
}

/// Ids HubSpot modified within `window` after the newest version PostgreSQL knows of them
/// (the pulled copy's `hubspot_updated_at`, or the shadow's acknowledgement of hubsync's
/// own last write), or
/// `None` when there are too many to list. Walks newest first and stops at the first record
/// PostgreSQL has already seen: everything older was seen too.
async fn recently_modified(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
    window: Duration,
) -> Result<Option<HashSet<i64>>, TwoWayError> {
    let property = modified_property(object.name());
    let since = Utc::now() - chrono::Duration::from_std(window).unwrap_or_default();
    let mut request = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![Filter::gte(property, since.timestamp_millis().to_string())],
        }],
        sorts: vec![Sort::desc(property)],
        properties: vec!["hs_object_id".to_owned()],
        limit: PAGE,
        ..SearchRequest::default()
    };
    // The newest HubSpot version PostgreSQL knows: the pulled copy's, or the one HubSpot
    // returned for hubsync's own last write (acknowledged in the shadow).
    let sql = format!(
        "SELECT t.hs_object_id, greatest(t.hubspot_updated_at, \
           (SELECT max(s.hubspot_version) FROM hubsync.shadow s \
             WHERE s.object = $2 AND s.hs_object_id = t.hs_object_id)) \
         FROM {} t WHERE t.hs_object_id = ANY($1)",
        object.mapping.qualified_table()
    );
    let client = store.client().await?;
    let mut unseen = HashSet::new();
    for _ in 0..MAX_PAGES {
        let page = hubspot.search(object.name(), &request).await?;
        let ids: Vec<i64> = page
            .results
            .iter()
            .filter_map(|r| i64::try_from(r.id).ok())
            .collect();
        let stored: HashMap<i64, Option<DateTime<Utc>>> = client
            .query(&sql, &[&ids, &object.name()])
            .await
            .map_err(|e| StoreError::postgres("read stored HubSpot versions", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut reached_seen = false;
        for r in &page.results {
            let Ok(id) = i64::try_from(r.id) else {
                continue;
            };
            match stored.get(&id) {
                Some(Some(at)) if r.updated_at <= *at => reached_seen = true,
                _ => {
                    unseen.insert(id);
                }
            }
        }
        match page.next_after() {
            Some(after) if !reached_seen => request.after = Some(after.to_owned()),
            _ => return Ok(Some(unseen)),
        }
    }
    Ok(None)
}
