//! The settled pass: HubSpot's search index is eventually consistent and may show a change
//! late or out of order (lessons.md 10), and a webhook may never come. Besides the
//! incremental pass (which re-reads a lookback window each round), every real-time object
//! gets a second search over a window that ends `server.settle_delay` behind real time,
//! when the index has settled. Its own cursor (`settled` in `hubsync.cursors`) makes the
//! windows contiguous, so every moment is searched once more after it settled; records go
//! through the engine's write path (idempotent, never backwards in time).

use chrono::Utc;
use hubsync_engine::hs_to_pg::{
    ObjectContext,
    checkpoint::{self, BACKFILL, BackfillPosition, from_ms, ms},
    write::write_records,
};
use serde::{Deserialize, Serialize};

use super::shared::Shared;

/// Stream name of the settled pass in `hubsync.cursors`.
pub(crate) const SETTLED: &str = "settled";

/// Where the settled pass of one object is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SettledPosition {
    /// Every modification before this (epoch ms) was searched after it settled.
    until_ms: i64,
}

/// Runs the settled pass of `ctx` (after its backfill completed); returns rows written.
///
/// # Errors
/// HubSpot or PostgreSQL failures; the window is searched again next time.
pub(crate) async fn settled_pass(shared: &Shared, ctx: &ObjectContext) -> anyhow::Result<u64> {
    let object = ctx.name();
    let mut conn = shared.store.client().await?;
    let backfill: BackfillPosition = checkpoint::load(&conn, object, BACKFILL).await?;
    if !backfill.done {
        return Ok(0);
    }
    let mut pos: SettledPosition = checkpoint::load(&conn, object, SETTLED).await?;
    let end = Utc::now()
        .timestamp_millis()
        .saturating_sub(ms(shared.settle_delay));
    if pos.until_ms == 0 {
        // First run: start one round behind (older changes were read by the backfill or
        // the incremental passes before the index could have settled).
        pos.until_ms = end.saturating_sub(ms(shared.reconcile_every)).max(1_000);
    }
    if end <= pos.until_ms {
        return Ok(0);
    }
    let mut search =
        shared
            .client
            .modified_between(object, from_ms(pos.until_ms), from_ms(end), &ctx.requested);
    let mut written = 0;
    while let Some(records) = search.next_page().await? {
        let tx = conn.transaction().await?;
        written += write_records(&tx, ctx, records).await?.written;
        tx.commit().await?;
    }
    pos.until_ms = end;
    checkpoint::save(&conn, object, SETTLED, &pos).await?;
    Ok(written)
}
