//! Re-reading named records: the daemon's webhook hints and any caller that knows which
//! records changed (webhooks are hints, the record is read again; architecture.md). One
//! transaction stores the records, their associations, the merges they reveal and the
//! deletion of the ones HubSpot no longer has.
//!
//! Batch read costs one call per 100 ids (plus one association read per junction per 1,000),
//! all through the shared governor.

use std::collections::BTreeSet;

use chrono::Utc;
use hubsync_hubspot::{BatchRead, HubSpotClient};
use hubsync_store::{
    Store,
    associations::AssociationMapping,
    tombstones::{DeleteMode, archive_records},
};

use super::associations::{apply, fetch_all, outgoing};
use super::discovery::ObjectContext;
use super::error::{SyncError, on};
use super::write::{BatchOutcome, write_records};

/// What a refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// Counts of the records written.
    pub batch: BatchOutcome,
    /// Ids HubSpot no longer has (archived, deleted or merged away) that were marked so.
    pub gone: u64,
}

/// Reads `ids` of the object from HubSpot and stores them with their associations.
///
/// # Errors
/// HubSpot or PostgreSQL failures (nothing of this refresh is stored then).
pub async fn refresh_records(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    junctions: &[AssociationMapping],
    ids: &[i64],
) -> Result<RefreshOutcome, SyncError> {
    let object = ctx.name();
    if ids.is_empty() {
        return Ok(RefreshOutcome::default());
    }
    let request = BatchRead {
        ids: ids.iter().map(i64::to_string).collect(),
        properties: ctx.requested.clone(),
        ..BatchRead::default()
    };
    let read = client
        .batch_read(object, &request)
        .await
        .map_err(on(object))?;
    let returned: BTreeSet<i64> = read
        .results
        .iter()
        .filter_map(|r| i64::try_from(r.id).ok())
        .collect();
    let absorbed: BTreeSet<i64> = read
        .results
        .iter()
        .filter_map(|r| r.property(super::records::MERGED_IDS_PROPERTY))
        .flat_map(|list| {
            list.split(';')
                .filter_map(|s| s.trim().parse::<i64>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    // Ids neither returned nor merged into a returned record are gone from HubSpot.
    let gone: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !returned.contains(id) && !absorbed.contains(id))
        .collect();
    let live: Vec<i64> = returned.iter().copied().collect();
    let mine = outgoing(junctions, object);
    let fetched = fetch_all(client, ctx, &mine, &live).await?;

    let mut conn = store.client().await.map_err(on(object))?;
    let tx = conn.transaction().await.map_err(on(object))?;
    let batch = write_records(&tx, ctx, read.results)
        .await
        .map_err(on(object))?;
    apply(&tx, object, &live, &fetched).await?;
    let mode = if ctx.settings.hard_delete {
        DeleteMode::Hard
    } else {
        DeleteMode::Soft
    };
    let gone = if gone.is_empty() {
        0
    } else {
        archive_records(&tx, &ctx.mapping, &gone, Utc::now(), mode)
            .await
            .map_err(on(object))?
    };
    tx.commit().await.map_err(on(object))?;
    Ok(RefreshOutcome { batch, gone })
}
