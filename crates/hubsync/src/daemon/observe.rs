//! The observer: every few seconds it probes PostgreSQL (readiness) and sets the per-object
//! gauges `/metrics` shows — inbox depth, pending and failed outbox entries, open
//! conflicts and issues, rows, lag — and, less often, purges what has outlived its
//! retention (processed webhook ids, audit entries).

use std::{sync::Arc, time::Duration};

use hubsync_store::{
    GenericClient,
    state::{audit, conflicts, inbox, issues, outbox},
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::{telemetry::names, web::Readiness};

/// Gauges refresh period.
const EVERY: Duration = Duration::from_secs(5);
/// Row counts (a full count) refresh period.
const ROWS_EVERY: Duration = Duration::from_secs(60);
/// Retention purge period.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);

/// Runs until shutdown.
///
/// # Errors
/// Never (failures are reported through readiness and the log); the signature fits the
/// supervisor.
pub(crate) async fn run(
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut last_rows: Option<Instant> = None;
    let mut last_purge: Option<Instant> = None;
    loop {
        let ok = match shared.store.client().await {
            Ok(client) => {
                let rows_due = last_rows.is_none_or(|t| t.elapsed() >= ROWS_EVERY);
                let result = gauges(&shared, &client, rows_due).await;
                if rows_due && result.is_ok() {
                    last_rows = Some(Instant::now());
                }
                if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    purge(&shared, &client).await;
                    last_purge = Some(Instant::now());
                }
                result.is_ok()
            }
            Err(_) => false,
        };
        readiness.set_postgres(ok);
        readiness.set_workers(shared.current_catalog().is_some());
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

async fn gauges(
    shared: &Shared,
    client: &impl GenericClient,
    rows_due: bool,
) -> Result<(), hubsync_store::StoreError> {
    let waiting = client
        .query(
            "SELECT object, count(*), extract(epoch FROM now() - min(received_at))::float8 \
             FROM hubsync.inbox WHERE processed_at IS NULL GROUP BY object",
            &[],
        )
        .await
        .map_err(|e| hubsync_store::StoreError::postgres("count the inbox", e))?;
    let outbox_age = client
        .query(
            "SELECT object, extract(epoch FROM now() - min(changed_at))::float8 \
             FROM hubsync.outbox WHERE status <> 'failed' GROUP BY object",
            &[],
        )
        .await
        .map_err(|e| hubsync_store::StoreError::postgres("age of the outbox", e))?;
    let catalog = shared.current_catalog();
    for object in shared.plans.keys() {
        let label = object.clone();
        let (depth, inbox_age) = waiting
            .iter()
            .find(|r| r.get::<_, String>(0) == *object)
            .map_or((0, 0.0), |r| {
                (
                    r.get::<_, i64>(1),
                    r.get::<_, Option<f64>>(2).unwrap_or(0.0),
                )
            });
        let outbox_lag = outbox_age
            .iter()
            .find(|r| r.get::<_, String>(0) == *object)
            .and_then(|r| r.get::<_, Option<f64>>(1))
            .unwrap_or(0.0);
        let (pending, in_flight, failed) = outbox::counts(client, Some(object)).await?;
        metrics::gauge!(names::INBOX_DEPTH, "object" => label.clone()).set(depth as f64);
        metrics::gauge!(names::OUTBOX_PENDING, "object" => label.clone())
            .set((pending + in_flight) as f64);
        metrics::gauge!(names::OUTBOX_FAILED, "object" => label.clone()).set(failed as f64);
        metrics::gauge!(names::OBJECT_LAG, "object" => label.clone())
            .set(inbox_age.max(outbox_lag));
        let open = conflicts::open_count(client, Some(object)).await?;
        metrics::gauge!(names::CONFLICTS_OPEN, "object" => label.clone()).set(open as f64);
        let open_issues = issues::count(client, Some(object)).await?;
        metrics::gauge!(names::ISSUES_OPEN, "object" => label.clone()).set(open_issues as f64);
        if rows_due {
            let table = catalog
                .as_ref()
                .and_then(|c| c.objects.iter().find(|o| o.name() == object))
                .map(|o| o.mapping.qualified_table());
            if let Some(table) = table {
                let row = client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .map_err(|e| hubsync_store::StoreError::postgres("count rows", e))?;
                metrics::gauge!(names::OBJECT_ROWS, "object" => label)
                    .set(row.get::<_, i64>(0) as f64);
            }
        }
    }
    Ok(())
}

async fn purge(shared: &Shared, client: &impl GenericClient) {
    match inbox::purge_processed(client, shared.inbox_retention).await {
        Ok(n) if n > 0 => tracing::info!(events = n, "purged processed webhook events"),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot purge processed webhook events"),
    }
    match audit::purge(client, shared.audit_retention).await {
        Ok(n) if n > 0 => tracing::info!(entries = n, "purged audit entries past retention"),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot purge audit entries"),
    }
}
