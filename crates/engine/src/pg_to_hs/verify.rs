//! Verify before writing (two-way objects): a HubSpot edit made moments before a push may
//! not have been pulled yet (the incremental pull stays behind real time, and HubSpot's
//! search index lags). Writing PostgreSQL's value over it would lose it silently. So before
//! a round is planned, the pending records HubSpot holds a newer version of than PostgreSQL
//! has seen are read exactly and run through the inbound merge, which settles any conflict
//! by policy — the same path as a pull.
//!
//! Finding them: up to [`READ_AT_MOST`] pending records (the daemon's micro-batches) are
//! read directly — one batch read of exactly those ids on the general limiter, compared by
//! `updatedAt` with what PostgreSQL last saw, so the write never waits for the search
//! limiter. A larger drain asks one search for the records HubSpot modified recently and
//! reads only those that are also pending (one search instead of a read per 100 records).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubsync_hubspot::{
    BatchRead, HubSpotClient, SimpleObject,
    objects::modified_property,
    search::{Filter, FilterGroup, SearchRequest, Sort},
};
use hubsync_store::{
    GenericClient, Store, StoreError,
    state::outbox::{NetOp, RecordChange},
    tagged_transaction,
    upsert::upsert_records,
};

use crate::hs_to_pg::records::convert;
use crate::policy::Direction;
use crate::settings::PropertySelection;
use crate::two_way::{ROW_ID_PROPERTY, TwoWayError, TwoWayObject, inbound};

/// Pending records checked with one batch read (HubSpot's batch-read size) instead of a
/// search.
const READ_AT_MOST: usize = 100;

/// Search pages read at most; beyond that every pending record is read instead.
const MAX_PAGES: usize = 10;

/// Search page size (HubSpot's maximum).
const PAGE: u32 = 200;

/// Reads and merges the pending records of `changes` HubSpot holds a version of that
/// PostgreSQL has not seen (a large drain: only those modified within `window`). Returns
/// how many were merged.
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
    let mut pending: Vec<i64> = changes
        .iter()
        .filter(|c| c.op == NetOp::Update)
        .filter_map(|c| c.hs_object_id)
        .collect();
    pending.sort_unstable();
    pending.dedup();
    if pending.is_empty() {
        return Ok(0);
    }
    let unseen = if pending.len() <= READ_AT_MOST {
        let found = read(hubspot, object, &pending).await?;
        let client = store.client().await?;
        let ids: Vec<i64> = found
            .iter()
            .filter_map(|r| i64::try_from(r.id).ok())
            .collect();
        let known = known_versions(&client, object, &ids).await?;
        found
            .into_iter()
            .filter(|r| i64::try_from(r.id).is_ok_and(|id| !seen(&known, id, r.updated_at)))
            .collect()
    } else {
        let ids: Vec<i64> = match recently_modified(store, hubspot, object, window).await? {
            Some(recent) => pending
                .into_iter()
                .filter(|id| recent.contains(id))
                .collect(),
            None => pending,
        };
        if ids.is_empty() {
            return Ok(0);
        }
        read(hubspot, object, &ids).await?
    };
    if unseen.is_empty() {
        return Ok(0);
    }
    let count = unseen.len() as u64;
    let rows = unseen
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

/// Reads `ids` from HubSpot with the mapped properties and the row key (missing and
/// archived records are left out).
async fn read(
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
    ids: &[i64],
) -> Result<Vec<SimpleObject>, TwoWayError> {
    let mut properties: Vec<String> = object
        .mapping
        .columns
        .iter()
        .map(|c| c.property.clone())
        .collect();
    properties.push(ROW_ID_PROPERTY.to_owned());
    let request = BatchRead {
        ids: ids.iter().map(i64::to_string).collect(),
        properties,
        ..BatchRead::default()
    };
    Ok(hubspot.batch_read(object.name(), &request).await?.results)
}

/// The newest HubSpot version PostgreSQL knows of each of `ids`: the pulled copy's
/// `hubspot_updated_at`, or the one HubSpot returned for hubsync's own last write
/// (acknowledged in the shadow). Ids without a row are absent.
async fn known_versions(
    client: &impl GenericClient,
    object: &TwoWayObject,
    ids: &[i64],
) -> Result<HashMap<i64, Option<DateTime<Utc>>>, StoreError> {
    let sql = format!(
        "SELECT t.hs_object_id, greatest(t.hubspot_updated_at, \
           (SELECT max(s.hubspot_version) FROM hubsync.shadow s \
             WHERE s.object = $2 AND s.hs_object_id = t.hs_object_id)) \
         FROM {} t WHERE t.hs_object_id = ANY($1)",
        object.mapping.qualified_table()
    );
    Ok(client
        .query(&sql, &[&ids, &object.name()])
        .await
        .map_err(|e| StoreError::postgres("read stored HubSpot versions", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Whether PostgreSQL has seen HubSpot's version `updated_at` of record `id`.
fn seen(known: &HashMap<i64, Option<DateTime<Utc>>>, id: i64, updated_at: DateTime<Utc>) -> bool {
    matches!(known.get(&id), Some(Some(at)) if updated_at <= *at)
}

/// Ids HubSpot modified within `window` after the newest version PostgreSQL knows of them
/// ([`known_versions`]), or
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
    let client = store.client().await?;
    let mut unseen = HashSet::new();
    for _ in 0..MAX_PAGES {
        let page = hubspot.search(object.name(), &request).await?;
        let ids: Vec<i64> = page
            .results
            .iter()
            .filter_map(|r| i64::try_from(r.id).ok())
            .collect();
        let known = known_versions(&client, object, &ids).await?;
        let mut reached_seen = false;
        for r in &page.results {
            let Ok(id) = i64::try_from(r.id) else {
                continue;
            };
            if seen(&known, id, r.updated_at) {
                reached_seen = true;
            } else {
                unseen.insert(id);
            }
        }
        match page.next_after() {
            Some(after) if !reached_seen => request.after = Some(after.to_owned()),
            _ => return Ok(Some(unseen)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }

    /// A version is seen only when PostgreSQL knows one at least as new; a row without a
    /// known version, or no row at all, is never taken as seen.
    #[test]
    fn only_a_known_newer_or_equal_version_counts_as_seen() {
        let known = HashMap::from([(1, Some(at(1_000))), (2, None)]);
        assert!(seen(&known, 1, at(1_000)));
        assert!(seen(&known, 1, at(999)));
        assert!(!seen(&known, 1, at(1_001)));
        assert!(!seen(&known, 2, at(1)));
        assert!(!seen(&known, 3, at(1)));
    }
}
