//! Deletes: archived and deleted records are invisible to search (lessons.md 7), so they
//! are found two ways, each a periodic sweep with a checkpoint per page:
//!
//! * **Archived listing** (`archived=true`): every archived record HubSpot still lists
//!   gets `archived_at` (soft delete) or its row removed (hard delete). One call per 100
//!   archived records, every `archived_sweep_every`.
//! * **Id-set reconciliation**: HubSpot's live ids are listed in id order and compared,
//!   range by range, with PostgreSQL's; a live row whose id HubSpot no longer has (purged
//!   after 90 days, GDPR-deleted, lost webhook) is treated as deleted. Rows created after
//!   the sweep began are left alone. One call per 100 live records, every
//!   `id_reconcile_every` (daily by default).
//!
//! Only ids are requested (`properties=hs_object_id`): no property value leaves HubSpot
//! for these sweeps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hubsync_hubspot::{HubSpotClient, ListRequest};
use hubsync_store::{
    Store,
    tombstones::{DeleteMode, archive_records},
};

use super::checkpoint::{self, ARCHIVED, RECONCILE, SweepPosition, from_ms};
use super::discovery::ObjectContext;
use super::error::{SyncError, on};
use super::progress::{Phase, Progress};

/// The only property requested by the sweeps.
const ID_ONLY: &str = "hs_object_id";

/// What the delete sweeps did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Rows newly marked archived (or deleted) from the archived listing.
    pub archived: u64,
    /// Rows marked deleted because HubSpot no longer has their id.
    pub vanished: u64,
}

fn mode(ctx: &ObjectContext) -> DeleteMode {
    if ctx.settings.hard_delete {
        DeleteMode::Hard
    } else {
        DeleteMode::Soft
    }
}

/// Runs the archived sweep when due (or `force`).
///
/// # Errors
/// HubSpot or PostgreSQL failures (the sweep resumes from its checkpoint).
pub async fn sweep_archived(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    force: bool,
    progress: &dyn Progress,
) -> Result<u64, SyncError> {
    let object = ctx.name();
    let mut conn = store.client().await.map_err(on(object))?;
    let pos: SweepPosition = checkpoint::load(&conn, object, ARCHIVED)
        .await
        .map_err(on(object))?;
    let now = Utc::now();
    if !force && !pos.due(ctx.settings.archived_sweep_every, now) {
        return Ok(0);
    }
    let mut run = pos.run_or_start(now);
    progress.start(object, Phase::Deletes, None);
    let mut archived = 0;
    loop {
        let request = ListRequest {
            limit: 100,
            after: run.after.clone(),
            properties: vec![ID_ONLY.to_owned()],
            archived: true,
            ..ListRequest::default()
        };
        let page = client
            .list_page(object, &request)
            .await
            .map_err(on(object))?;
        let mut by_time: BTreeMap<DateTime<Utc>, Vec<i64>> = BTreeMap::new();
        for r in &page.results {
            let at = r.archived_at.unwrap_or(r.updated_at);
            by_time
                .entry(at)
                .or_default()
                .push(i64::try_from(r.id).unwrap_or(i64::MAX));
        }
        let tx = conn.transaction().await.map_err(on(object))?;
        for (at, ids) in &by_time {
            archived += archive_records(&tx, &ctx.mapping, ids, *at, mode(ctx))
                .await
                .map_err(on(object))?;
        }
        run.after = page.after.clone();
        let position = pos.after_page(&run, page.after.is_some());
        checkpoint::save(&tx, object, ARCHIVED, &position)
            .await
            .map_err(on(object))?;
        tx.commit().await.map_err(on(object))?;
        progress.advance(object, Phase::Deletes, page.results.len() as u64);
        if page.after.is_none() {
            break;
        }
    }
    progress.finish(object, Phase::Deletes);
    Ok(archived)
}

/// Runs the id-set reconciliation when due (or `force`).
///
/// # Errors
/// HubSpot or PostgreSQL failures (the sweep resumes from its checkpoint).
pub async fn reconcile_ids(
    client: &HubSpotClient,
    store: &Store,
    ctx: &ObjectContext,
    force: bool,
    progress: &dyn Progress,
) -> Result<u64, SyncError> {
    let object = ctx.name();
    let mut conn = store.client().await.map_err(on(object))?;
    let pos: SweepPosition = checkpoint::load(&conn, object, RECONCILE)
        .await
        .map_err(on(object))?;
    let now = Utc::now();
    if !force && !pos.due(ctx.settings.id_reconcile_every, now) {
        return Ok(0);
    }
    let mut run = pos.run_or_start(now);
    let started = from_ms(run.started_at_ms);
    let missing_sql = format!(
        "SELECT hs_object_id FROM {} WHERE hs_object_id > $1 AND hs_object_id <= $2
            AND archived_at IS NULL AND merged_into IS NULL
            AND NOT (hs_object_id = ANY($3))
            AND (hubspot_created_at IS NULL OR hubspot_created_at < $4)",
        ctx.mapping.qualified_table()
    );
    let mut vanished = 0;
    progress.start(object, Phase::Deletes, None);
    loop {
        let request = ListRequest {
            limit: 100,
            after: run.after.clone(),
            properties: vec![ID_ONLY.to_owned()],
            ..ListRequest::default()
        };
        let page = client
            .list_page(object, &request)
            .await
            .map_err(on(object))?;
        let ids: Vec<i64> = page
            .results
            .iter()
            .map(|r| i64::try_from(r.id).unwrap_or(i64::MAX))
            .collect();
        let high = match (&page.after, ids.iter().max()) {
            (Some(_), Some(max)) => *max,
            _ => i64::MAX,
        };
        let tx = conn.transaction().await.map_err(on(object))?;
        let missing: Vec<i64> = tx
            .query(&missing_sql, &[&run.after_id, &high, &ids, &started])
            .await
            .map_err(on(object))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !missing.is_empty() {
            tracing::info!(object, count = missing.len(), "records gone from HubSpot");
            vanished += archive_records(&tx, &ctx.mapping, &missing, now, mode(ctx))
                .await
                .map_err(on(object))?;
        }
        run.after = page.after.clone();
        run.after_id = high;
        let position = pos.after_page(&run, page.after.is_some());
        checkpoint::save(&tx, object, RECONCILE, &position)
            .await
            .map_err(on(object))?;
        tx.commit().await.map_err(on(object))?;
        progress.advance(object, Phase::Deletes, ids.len() as u64);
        if page.after.is_none() {
            break;
        }
    }
    progress.finish(object, Phase::Deletes);
    Ok(vanished)
}
