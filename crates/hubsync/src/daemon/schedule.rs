//! The reconciler: each object's schedule and the sweep that catches what webhooks missed.
//!
//! Every round refreshes the catalog (new HubSpot properties become columns), then runs each
//! object that is due through the engine's HubSpot → PostgreSQL unit of work
//! ([`HsToPg::sync_leased`](hubsync_engine::hs_to_pg::HsToPg::sync_leased): backfill on the
//! first run, else an incremental search from the high-water mark minus the lookback, the
//! pending association re-reads, and the archived listing and id-set comparison when due),
//! all under the object's lease in `hubsync.leases`. Real-time objects also get the settled
//! pass ([`super::settled`]). Objects on a schedule only (`mode = { every = "15m" }`) have
//! their PostgreSQL changes written at their tick instead of on NOTIFY.
//!
//! | `mode` | webhooks / NOTIFY | polled every |
//! |---|---|---|
//! | `"realtime"` (default) | yes | `server.reconcile_every` |
//! | `{ every = "15m" }` | no | `15m` |
//! | `{ realtime = true, every = "1h" }` | yes | `1h` |

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use hubsync_engine::hs_to_pg::{NoProgress, ObjectReport, PassOptions};
use hubsync_store::state::leases;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{settled::settled_pass, shared::Shared, writeback};
use crate::telemetry::names;

/// Shortest pause between rounds (a round that finds nothing due waits at least this).
const MIN_PAUSE: Duration = Duration::from_millis(200);

/// Runs rounds until shutdown.
///
/// # Errors
/// The catalog could not be refreshed (HubSpot or PostgreSQL down); the supervisor
/// restarts the worker with backoff.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut next: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let catalog = shared.refresh_catalog().await?;
        let now = Instant::now();
        for ctx in &catalog.objects {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let name = ctx.name().to_owned();
            let Some(plan) = shared.plan(&name).cloned() else {
                continue;
            };
            if next.get(&name).is_some_and(|due| *due > now) {
                continue;
            }
            if plan.reads_hubspot {
                let report = shared
                    .pipelines
                    .sync_leased(
                        ctx,
                        &catalog.junctions,
                        &PassOptions::default(),
                        &NoProgress,
                    )
                    .await;
                record(&report);
                if plan.realtime && report.error.is_none() && !report.leased_elsewhere {
                    settle(&shared, ctx).await;
                }
            }
            if plan.writes_hubspot && !plan.realtime {
                writeback::write_one(&shared, ctx, true).await;
            }
            next.insert(name, Instant::now() + plan.every);
        }
        let wake = next
            .values()
            .min()
            .copied()
            .unwrap_or_else(|| Instant::now() + shared.reconcile_every);
        let wake = wake.max(Instant::now() + MIN_PAUSE);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// The settled pass of one object under its HubSpot → PostgreSQL lease.
async fn settle(shared: &Shared, ctx: &hubsync_engine::hs_to_pg::ObjectContext) {
    let unit = hubsync_engine::hs_to_pg::unit_of_work(ctx.name());
    let settings = shared.pipelines.settings();
    if !matches!(shared.lease(&unit).await, Ok(true)) {
        return;
    }
    match settled_pass(shared, ctx).await {
        Ok(written) => {
            metrics::counter!(names::ROWS_WRITTEN, "object" => ctx.name().to_owned(), "source" => "settled")
                .increment(written);
        }
        Err(err) => {
            metrics::counter!(names::OBJECT_ERRORS, "object" => ctx.name().to_owned(), "direction" => "hubspot-to-postgres")
                .increment(1);
            tracing::warn!(object = ctx.name(), error = %format!("{err:#}"), "settled pass failed; retried next round");
        }
    }
    if let Ok(conn) = shared.store.client().await {
        let _ = leases::release(&conn, &unit, &settings.holder).await;
    }
}

fn record(report: &ObjectReport) {
    let object = report.object.clone();
    if report.leased_elsewhere {
        return;
    }
    match &report.error {
        None => {
            metrics::gauge!(names::LAST_SUCCESS, "object" => object.clone(), "direction" => "hubspot-to-postgres")
                .set(chrono::Utc::now().timestamp() as f64);
            metrics::counter!(names::ROWS_WRITTEN, "object" => object.clone(), "source" => "poll")
                .increment(report.written);
            if report.written + report.deleted > 0 {
                tracing::info!(
                    object,
                    written = report.written,
                    deleted = report.deleted,
                    backfill = report.backfilled,
                    "reconciled with HubSpot"
                );
            }
        }
        Some(err) => {
            metrics::counter!(names::OBJECT_ERRORS, "object" => object.clone(), "direction" => "hubspot-to-postgres")
                .increment(1);
            tracing::warn!(object, error = %err, "reconciliation failed; retried next round");
        }
    }
}
