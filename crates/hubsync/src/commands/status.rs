//! `hubsync status` (and `--json`): per object, rows, last sync, lag behind HubSpot,
//! pending outbound changes, open conflicts and data-quality issues, read from PostgreSQL
//! (hubsync's state schema and the synced tables).

use std::{path::Path, process::ExitCode};

use anyhow::Context;
use chrono::Utc;
use hubsync_engine::hs_to_pg::checkpoint::{
    self, BACKFILL, BackfillPosition, INCREMENTAL, IncrementalPosition, from_ms,
};
use hubsync_store::{
    GenericClient,
    catalog::load_mapping,
    state::summary::{self, ObjectSummary},
};
use serde::Serialize;

use crate::{cli::StatusArgs, commands::sync::connect, config::Config};

/// One object's line.
#[derive(Debug, Serialize)]
pub(crate) struct ObjectStatus {
    /// The object.
    pub(crate) object: String,
    /// Its configured direction.
    pub(crate) direction: String,
    /// Live rows (not archived or merged away); `null` before the first sync.
    pub(crate) rows: Option<i64>,
    /// Rows archived or deleted in HubSpot (soft deletes) or merged away.
    pub(crate) archived: Option<i64>,
    /// `not started`, `running` or `done`.
    pub(crate) backfill: &'static str,
    /// Records the backfill has written.
    pub(crate) backfill_records: u64,
    /// When the last incremental pass ran (RFC 3339).
    pub(crate) last_sync: Option<String>,
    /// How far behind the sync is, in seconds: the age of the oldest change not yet
    /// applied — a webhook event waiting in the inbox, or a PostgreSQL change waiting in the
    /// outbox (failed entries are errors, not lag); 0 when nothing waits. A quiet portal is
    /// not behind (the time since the last change or pass is `last_sync`).
    pub(crate) lag_seconds: Option<i64>,
    /// PostgreSQL changes waiting to be written to HubSpot.
    pub(crate) pending_outbound: i64,
    /// PostgreSQL changes HubSpot refused (the reason is in `hubsync.outbox.last_error` and
    /// on the dashboard); retried when the row is edited again. The `errors` column.
    pub(crate) failed_outbound: i64,
    /// Open conflicts.
    pub(crate) open_conflicts: i64,
    /// Values that did not fit their column.
    pub(crate) issues: i64,
}

/// Runs the command.
pub(crate) async fn run(config_path: &Path, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = connect(&config).await?;
    let conn = store.client().await.context("cannot reach PostgreSQL")?;
    let summaries = summary::by_object(&conn).await?;
    let mut objects = Vec::new();
    for o in &config.objects {
        let summary = summaries.get(&o.name).cloned().unwrap_or_default();
        objects.push(
            object_status(
                &conn,
                &config.postgres.schema,
                &o.name,
                &o.direction,
                &summary,
            )
            .await?,
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "objects": objects }))?
        );
    } else {
        println!(
            "{:<16} {:>10} {:>9} {:<12} {:<29} {:>8} {:>8} {:>7} {:>9} {:>7}",
            "object",
            "rows",
            "archived",
            "backfill",
            "last sync",
            "lag (s)",
            "outbox",
            "errors",
            "conflicts",
            "issues"
        );
        for s in &objects {
            println!(
                "{:<16} {:>10} {:>9} {:<12} {:<29} {:>8} {:>8} {:>7} {:>9} {:>7}",
                s.object,
                s.rows.map_or("-".into(), |n| n.to_string()),
                s.archived.map_or("-".into(), |n| n.to_string()),
                s.backfill,
                s.last_sync.as_deref().unwrap_or("never"),
                s.lag_seconds.map_or("-".into(), |n| n.to_string()),
                s.pending_outbound,
                s.failed_outbound,
                s.open_conflicts,
                s.issues
            );
        }
    }
    drop(conn);
    store.close();
    Ok(ExitCode::SUCCESS)
}

/// One object's status, read from the catalog, the cursors and the state tables (also the
/// dashboard's overview).
pub(crate) async fn object_status(
    conn: &impl GenericClient,
    schema: &str,
    object: &str,
    direction: &str,
    summary: &ObjectSummary,
) -> anyhow::Result<ObjectStatus> {
    let mapping = load_mapping(conn, schema, object)
        .await
        .context("cannot read the catalog")?;
    let (rows, archived) = match &mapping {
        None => (None, None),
        Some(m) => {
            let row = conn
                .query_one(
                    &format!(
                        "SELECT count(*) FILTER (WHERE archived_at IS NULL),
                                count(*) FILTER (WHERE archived_at IS NOT NULL) FROM {}",
                        m.qualified_table()
                    ),
                    &[],
                )
                .await
                .context("cannot count rows")?;
            (Some(row.get(0)), Some(row.get(1)))
        }
    };
    let backfill: Option<BackfillPosition> = checkpoint::load_opt(conn, object, BACKFILL)
        .await
        .context("cannot read cursors")?;
    let incremental: Option<IncrementalPosition> = checkpoint::load_opt(conn, object, INCREMENTAL)
        .await
        .context("cannot read cursors")?;
    Ok(ObjectStatus {
        object: object.to_owned(),
        direction: direction.to_owned(),
        rows,
        archived,
        backfill: match &backfill {
            None => "not started",
            Some(b) if b.done => "done",
            Some(_) => "running",
        },
        backfill_records: backfill.as_ref().map_or(0, |b| b.records),
        last_sync: incremental
            .as_ref()
            .and_then(|i| i.last_pass_ms)
            .map(|ms| from_ms(ms).to_rfc3339()),
        lag_seconds: Some(summary.lag_seconds(Utc::now())),
        pending_outbound: summary.outbox_pending,
        failed_outbound: summary.outbox_failed,
        open_conflicts: summary.conflicts_open,
        issues: summary.issues,
    })
}
