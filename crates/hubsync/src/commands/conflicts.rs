//! `hubsync conflicts list [--json]` and `hubsync conflicts resolve ID --take
//! hubspot|postgres`: the manual conflict queue (`hubsync.conflicts`).
//!
//! Resolving records the decision in PostgreSQL (exactly what `UPDATE hubsync.conflicts SET
//! resolution = …` does) and then carries the winning value to the other side right away;
//! if HubSpot cannot be reached, the next `hubsync sync --once` (or the daemon, woken by
//! `NOTIFY hubsync_conflicts`) applies it.

use std::{path::Path, process::ExitCode};

use anyhow::{Context, bail};
use hubsync_engine::{hs_to_pg::HsToPg, two_way};
use hubsync_store::state::{
    conflicts::{self, Conflict, ConflictFilter},
    shadow::Side,
};
use serde_json::json;

use super::sync::connect;
use crate::{
    cli::{ConflictsCommand, TakeSide},
    config::Config,
};

/// Most conflicts listed.
const LIST_LIMIT: i64 = 10_000;

/// Runs the command.
pub(crate) async fn run(
    config_path: &Path,
    command: &ConflictsCommand,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = connect(&config).await?;
    let result = match command {
        ConflictsCommand::List { json } => list(&store, *json).await,
        ConflictsCommand::Resolve { id, take } => resolve(&config, &store, *id, *take).await,
    };
    store.close();
    result
}

async fn list(store: &hubsync_store::Store, as_json: bool) -> anyhow::Result<ExitCode> {
    let conn = store.client().await?;
    let open = conflicts::list(&conn, ConflictFilter::Open, None, LIST_LIMIT).await?;
    if as_json {
        let items: Vec<serde_json::Value> = open.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if open.is_empty() {
        println!("No open conflicts.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<12} {:>14}  {:<24} {:<24} {:<24}",
        "ID", "OBJECT", "RECORD", "FIELD", "HUBSPOT", "POSTGRES"
    );
    for c in &open {
        let d = &c.detail;
        println!(
            "{:>6}  {:<12} {:>14}  {:<24} {:<24} {:<24}",
            c.id,
            d.object,
            d.hs_object_id,
            d.field,
            shown(d.hubspot_value.as_deref()),
            shown(d.postgres_value.as_deref())
        );
    }
    println!("\nResolve with: hubsync conflicts resolve ID --take hubspot|postgres");
    Ok(ExitCode::SUCCESS)
}

async fn resolve(
    config: &Config,
    store: &hubsync_store::Store,
    id: i64,
    take: TakeSide,
) -> anyhow::Result<ExitCode> {
    let side = match take {
        TakeSide::Hubspot => Side::Hubspot,
        TakeSide::Postgres => Side::Postgres,
    };
    let resolved = {
        let conn = store.client().await?;
        conflicts::resolve(&conn, id, side).await?
    };
    let Some(conflict) = resolved else {
        bail!("no open conflict with id {id} (see `hubsync conflicts list`)");
    };
    let object = conflict.detail.object.clone();
    match apply(config, store, &object).await {
        Ok(()) => println!(
            "Conflict {id} resolved: {} value applied to {}.",
            side.as_str(),
            other(side)
        ),
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "could not apply the resolution now");
            println!(
                "Conflict {id} resolved; the {} value is applied by the next sync.",
                side.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies every resolved conflict of `object` now.
async fn apply(config: &Config, store: &hubsync_store::Store, object: &str) -> anyhow::Result<()> {
    let client = config.hubspot_client()?;
    let pipelines = HsToPg::new(client.clone(), store.clone(), config.sync_settings());
    let prepared = pipelines
        .prepare()
        .await
        .context("cannot read the object's mapping")?;
    let Some(ctx) = prepared.objects.iter().find(|c| c.name() == object) else {
        bail!("object {object} is not configured");
    };
    let two_way = two_way::TwoWayObject::new(ctx.mapping.clone(), ctx.settings.rules.clone());
    two_way::apply_resolutions(store, &client, &two_way).await?;
    Ok(())
}

fn other(side: Side) -> &'static str {
    match side {
        Side::Hubspot => "PostgreSQL",
        Side::Postgres => "HubSpot",
    }
}

/// A value for the table: `(empty)` for none, long values shortened.
fn shown(value: Option<&str>) -> String {
    match value {
        None => "(empty)".to_owned(),
        Some(v) if v.chars().count() > 24 => format!("{}…", v.chars().take(23).collect::<String>()),
        Some(v) => v.to_owned(),
    }
}

fn to_json(c: &Conflict) -> serde_json::Value {
    let d = &c.detail;
    json!({
        "id": c.id,
        "object": d.object,
        "hs_object_id": d.hs_object_id,
        "field": d.field,
        "shadow_value": d.shadow_value,
        "hubspot_value": d.hubspot_value,
        "postgres_value": d.postgres_value,
        "hubspot_version": d.hubspot_version,
        "postgres_version": d.postgres_version,
        "detected_at": c.detected_at,
    })
}
