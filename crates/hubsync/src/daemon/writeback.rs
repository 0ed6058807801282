//! The writeback worker: PostgreSQL changes (captured into `hubsync.outbox` by triggers in
//! the application's own transaction) are written to HubSpot within moments.
//!
//! It LISTENs on a dedicated connection ([`OutboxListener`]: reconnects with backoff and
//! re-LISTENs by itself). Every wake-up opens a short **micro-batch window**
//! (`server.writeback_window`) so a burst of commits goes out in a few batch calls, then the
//! engine's writer ([`pg_to_hs::drain`]) claims, coalesces, merges against the shadow and
//! writes every real-time object with pending changes. After every (re)connection — when
//! notifications may have been missed — and on a slow timer, it catches up from the table
//! itself. A conflict resolution (`NOTIFY hubsync_conflicts`) is applied the same way
//! ([`two_way::apply_resolutions`]).
//!
//! Each object's writeback is a unit of work leased in `hubsync.leases`
//! (`postgres-to-hubspot:OBJECT`), so with several instances one writes an object at a time
//! (the outbox claims are leased too, so even overlapping writers never send a change
//! twice).

use std::{sync::Arc, time::Duration};

use hubsync_engine::{
    hs_to_pg::ObjectContext,
    pg_to_hs::{self, DrainOptions, DrainReport},
    policy::Direction,
    two_way,
};
use hubsync_store::{CONFLICTS_CHANNEL, OUTBOX_CHANNEL, OutboxListener, Wakeup};
use tokio_util::sync::CancellationToken;

use super::shared::{Shared, two_way_object};
use crate::telemetry::names;

/// How often the outbox is read even without a notification (entries HubSpot refused for a
/// while become claimable again; a notification may have been lost).
const CATCH_UP_EVERY: Duration = Duration::from_secs(10);

/// The lease name of an object's writeback.
pub(crate) fn unit_of_work(object: &str) -> String {
    format!("postgres-to-hubspot:{object}")
}

/// Runs the worker until shutdown.
///
/// # Errors
/// The notification listener stopped (the supervisor restarts the worker).
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) -> anyhow::Result<()> {
    if shared.catalog(&shutdown).await.is_none() {
        return Ok(());
    }
    let channels = vec![OUTBOX_CHANNEL.to_owned(), CONFLICTS_CHANNEL.to_owned()];
    let mut listener = OutboxListener::start_on(shared.store.clone(), channels);
    loop {
        let mut resolutions = false;
        tokio::select! {
            wake = listener.recv() => match wake {
                None => anyhow::bail!("the outbox listener stopped"),
                Some(Wakeup::Connected) => resolutions = true,
                Some(Wakeup::Notified { channel, .. }) => {
                    resolutions = channel == CONFLICTS_CHANNEL;
                    // The micro-batch window: let a burst of commits gather.
                    tokio::select! {
                        () = tokio::time::sleep(shared.writeback_window) => {}
                        () = shutdown.cancelled() => return Ok(()),
                    }
                }
            },
            () = tokio::time::sleep(CATCH_UP_EVERY) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        if listener.drain() > 0 {
            resolutions = true;
        }
        write_pending(&shared, resolutions).await;
    }
}

/// Writes the pending changes of every real-time object that writes to HubSpot.
async fn write_pending(shared: &Shared, resolutions: bool) {
    let Some(catalog) = shared.current_catalog() else {
        return;
    };
    for ctx in &catalog.objects {
        if shared
            .plan(ctx.name())
            .is_some_and(|p| p.writes_hubspot && p.realtime)
        {
            write_one(shared, ctx, resolutions).await;
        }
    }
}

/// Writes one object's pending changes (and conflict resolutions when asked); failures are
/// logged and counted, and the entries stay for the next attempt.
pub(crate) async fn write_one(shared: &Shared, ctx: &ObjectContext, resolutions: bool) {
    match write_object(shared, ctx, resolutions).await {
        Ok(Some(report)) => record(ctx.name(), &report),
        Ok(None) => {}
        Err(err) => {
            metrics::counter!(names::OBJECT_ERRORS, "object" => ctx.name().to_owned(), "direction" => "postgres-to-hubspot")
                .increment(1);
            tracing::warn!(object = ctx.name(), error = %format!("{err:#}"), "writeback failed; retrying later");
        }
    }
}

/// Drains one object under its lease; `None` when another instance holds it.
async fn write_object(
    shared: &Shared,
    ctx: &ObjectContext,
    resolutions: bool,
) -> anyhow::Result<Option<DrainReport>> {
    let unit = unit_of_work(ctx.name());
    let settings = shared.pipelines.settings();
    if !shared.lease(&unit).await? {
        return Ok(None);
    }
    let object = two_way_object(ctx);
    if resolutions && ctx.settings.direction == Direction::TwoWay {
        two_way::apply_resolutions(&shared.store, &shared.client, &object).await?;
    }
    let options = DrainOptions {
        consumer: settings.holder.clone(),
        ..DrainOptions::default()
    };
    let report = pg_to_hs::drain(&shared.store, &shared.client, &object, &options).await?;
    metrics::gauge!(names::LAST_SUCCESS, "object" => ctx.name().to_owned(), "direction" => "postgres-to-hubspot")
        .set(chrono::Utc::now().timestamp() as f64);
    Ok(Some(report))
}

fn record(object: &str, report: &DrainReport) {
    for (op, n) in [
        ("created", report.created),
        ("updated", report.updated),
        ("archived", report.archived),
        ("failed", report.failed),
    ] {
        if n > 0 {
            metrics::counter!(names::WRITEBACK_RECORDS, "object" => object.to_owned(), "op" => op)
                .increment(n);
        }
    }
    if report.entries > 0 {
        tracing::debug!(
            object,
            writes = report.writes(),
            entries = report.entries,
            "written to HubSpot"
        );
    }
}
