//! Verify before writing (two-way objects): a HubSpot edit made moments before a push may
//! not have been pulled yet (the incremental pull stays behind real time, and HubSpot's
//! search index lags). Writing PostgreSQL's value over it would lose it silently. So before
//! a step of records is planned, the pending records HubSpot holds a newer version of than
//! PostgreSQL has seen are read exactly and run through the inbound merge, which settles
//! any conflict by policy — the same path as a pull.
//!
//! Which records are read, keeping burst calls to what is needed:
//! - a round of at most [`READ_AT_MOST`] pending updates (the daemon's micro-batches): all
//!   of them, with one batch read (one call, like the search it replaces, but exact and
//!   never waiting for the search limiter);
//! - a larger round, one step (at most one batch) at a time, just before the step is
//!   planned: a step holding a record HubSpot changed within the window as far as
//!   PostgreSQL knows (its stored `hubspot_updated_at` or hubsync's own last write is
//!   recent, or unknown) is read whole — one call, exact, whatever the search index says;
//!   the records of a quiet step (every known version older than the window) are checked
//!   against one search per round for records modified within the window, and only those
//!   the search lists are read.
//!
//! The read compares HubSpot's `updatedAt` with the newest version PostgreSQL knows and
//! merges only the records it has not seen. What a quiet record cannot be protected from
//! without a read per record is a HubSpot edit made within the search index's lag (seconds)
//! of the push: the price of not doubling the calls of a bulk push.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubsync_hubspot::{
    BatchRead, HubSpotClient, SimpleObject,
    batch::MAX_BATCH_INPUTS,
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

/// Records one batch read takes (HubSpot's batch size); a round with at most this many
/// pending updates is read whole.
const READ_AT_MOST: usize = MAX_BATCH_INPUTS;

/// Search pages read at most; beyond that every pending record is read instead.
const MAX_PAGES: usize = 10;

/// Search page size (HubSpot's maximum).
const PAGE: u32 = 200;

/// How a round is verified.
enum Mode {
    /// Verification is off (zero window, or not a two-way object).
    Off,
    /// A small round: its pending ids, read whole by the first step (then `None`).
    Whole(Option<Vec<i64>>),
    /// A large round, step by step; the search's answer once asked (`Some(None)`: too
    /// many to list, read everything).
    Steps(Option<Option<HashSet<i64>>>),
}

/// Verifies one round's records, step by step.
pub(super) struct Verifier<'a> {
    store: &'a Store,
    hubspot: &'a HubSpotClient,
    object: &'a TwoWayObject,
    window: Duration,
    mode: Mode,
}

impl<'a> Verifier<'a> {
    /// A verifier for the round `changes`, checking records HubSpot modified within `window`
    /// (zero: off).
    pub(super) fn new(
        store: &'a Store,
        hubspot: &'a HubSpotClient,
        object: &'a TwoWayObject,
        window: Duration,
        changes: &[RecordChange],
    ) -> Self {
        let mode = if window.is_zero() || object.rules.object().direction != Direction::TwoWay {
            Mode::Off
        } else {
            let pending = pending_ids(changes);
            if pending.len() <= READ_AT_MOST {
                Mode::Whole(Some(pending))
            } else {
                Mode::Steps(None)
            }
        };
        Verifier {
            store,
            hubspot,
            object,
            window,
            mode,
        }
    }

    /// Reads and merges the records of `step` HubSpot holds a version of PostgreSQL has not
    /// seen (see the module docs for which are read). Returns how many were merged.
    ///
    /// # Errors
    /// HubSpot (whole-call) and database errors.
    pub(super) async fn verify(&mut self, step: &[RecordChange]) -> Result<u64, TwoWayError> {
        let ids = match &mut self.mode {
            Mode::Off => return Ok(0),
            Mode::Whole(ids) => ids.take().unwrap_or_default(),
            Mode::Steps(_) => self.step_to_read(step).await?,
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let found = read(self.hubspot, self.object, &ids).await?;
        let mut client = self.store.client().await?;
        let found_ids: Vec<i64> = found
            .iter()
            .filter_map(|r| i64::try_from(r.id).ok())
            .collect();
        let known = known_versions(&client, self.object, &found_ids).await?;
        let rows: Vec<_> = found
            .into_iter()
            .filter(|r| i64::try_from(r.id).is_ok_and(|id| !seen(&known, id, r.updated_at)))
            .map(|r| convert(r, &PropertySelection::All).row)
            .collect();
        if rows.is_empty() {
            return Ok(0);
        }
        let count = rows.len() as u64;
        let tx = tagged_transaction(&mut client).await?;
        let merged = inbound(&tx, self.object, rows, Utc::now()).await?;
        upsert_records(&tx, &self.object.mapping, &merged.rows).await?;
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit verified records", e))?;
        Ok(count)
    }

    /// The pending records of one step of a large round to read: all of them if one was
    /// changed in HubSpot recently as far as PostgreSQL knows, else those the round's search
    /// lists.
    async fn step_to_read(&mut self, step: &[RecordChange]) -> Result<Vec<i64>, TwoWayError> {
        let pending = pending_ids(step);
        if pending.is_empty() {
            return Ok(pending);
        }
        let since = since(self.window);
        let known = {
            let client = self.store.client().await?;
            known_versions(&client, self.object, &pending).await?
        };
        if pending.iter().any(|id| !quiet(&known, *id, since)) {
            return Ok(pending);
        }
        let recent = match &mut self.mode {
            Mode::Steps(Some(recent)) => recent,
            Mode::Steps(slot) => {
                slot.insert(recently_modified(self.store, self.hubspot, self.object, since).await?)
            }
            _ => return Ok(Vec::new()),
        };
        Ok(match recent {
            Some(recent) => pending
                .into_iter()
                .filter(|id| recent.contains(id))
                .collect(),
            None => pending,
        })
    }
}

/// The HubSpot ids of the pending updates among `changes`, sorted, without duplicates.
fn pending_ids(changes: &[RecordChange]) -> Vec<i64> {
    let mut pending: Vec<i64> = changes
        .iter()
        .filter(|c| c.op == NetOp::Update)
        .filter_map(|c| c.hs_object_id)
        .collect();
    pending.sort_unstable();
    pending.dedup();
    pending
}

/// The start of the window ending now.
fn since(window: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| Utc::now().checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Reads `ids` from HubSpot with the mapped properties and the row key, one batch read per
/// [`READ_AT_MOST`] ids (missing and archived records are left out).
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
    let mut found = Vec::new();
    for part in ids.chunks(READ_AT_MOST) {
        let request = BatchRead {
            ids: part.iter().map(i64::to_string).collect(),
            properties: properties.clone(),
            ..BatchRead::default()
        };
        found.extend(hubspot.batch_read(object.name(), &request).await?.results);
    }
    Ok(found)
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

/// Whether record `id` was quiet in HubSpot as far as PostgreSQL knows: its newest known
/// version is older than `since`. Unknown versions are not quiet.
fn quiet(known: &HashMap<i64, Option<DateTime<Utc>>>, id: i64, since: DateTime<Utc>) -> bool {
    matches!(known.get(&id), Some(Some(at)) if *at < since)
}

/// Ids HubSpot modified since `since` after the newest version PostgreSQL knows of them
/// ([`known_versions`]), or `None` when there are too many to list. Walks newest first and
/// stops at the first record PostgreSQL has already seen: everything older was seen too.
async fn recently_modified(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
    since: DateTime<Utc>,
) -> Result<Option<HashSet<i64>>, TwoWayError> {
    let property = modified_property(object.name());
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

    /// Only a record whose known version is older than the window is quiet: a recent, an
    /// unknown or a missing version makes its step be read.
    #[test]
    fn only_a_known_version_older_than_the_window_is_quiet() {
        let known = HashMap::from([(1, Some(at(1_000))), (2, Some(at(5_000))), (3, None)]);
        let since = at(2_000);
        assert!(quiet(&known, 1, since));
        assert!(!quiet(&known, 2, since));
        assert!(!quiet(&known, 3, since));
        assert!(!quiet(&known, 4, since));
    }

    /// Pending ids are the updates' HubSpot ids, once each; creates, deletes and records
    /// without an id are not pending for verification.
    #[test]
    fn pending_ids_are_the_updates_with_an_id() {
        let change = |op, id| RecordChange {
            object: "contacts".to_owned(),
            row_key: String::new(),
            hs_object_id: id,
            op,
            changed_columns: Vec::new(),
            old_row: None,
            new_row: None,
            version: 1,
            changed_at: at(0),
            entry_ids: Vec::new(),
        };
        let changes = [
            change(NetOp::Update, Some(7)),
            change(NetOp::Update, Some(3)),
            change(NetOp::Update, Some(7)),
            change(NetOp::Update, None),
            change(NetOp::Delete, Some(9)),
        ];
        assert_eq!(pending_ids(&changes), vec![3, 7]);
    }
}
