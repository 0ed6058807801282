//! `hubsync demo`: the whole product on one machine with no set-up — a seeded local HubSpot
//! (the emulator) with webhooks pointed at the daemon, a private PostgreSQL under the user's
//! state directory when `DATABASE_URL` is unset (the cluster is reused on the next run), and
//! the daemon. Ctrl-C stops all three.
//!
//! The local HubSpot lives in memory and is seeded anew on every run, so every run also
//! starts from a fresh demo database — otherwise PostgreSQL would keep the last run's edits
//! and sync state against records HubSpot no longer has as they were. The private cluster's
//! `hubsync_demo` database is dropped and created again; a database given by `DATABASE_URL`
//! is marked as the demo's on first use (a comment on the database) and its `hubspot` and
//! `hubsync` schemas are dropped on later runs — an unmarked database that already holds
//! tables outside the `hubsync` schema is refused rather than touched.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use hubsync_emulator::{EmulatorConfig, SeedConfig};
use hubsync_store::PrivateCluster;

use crate::{cli::DemoArgs, config::Config, daemon};

/// The bearer token the demo's local HubSpot accepts (it is local and throwaway).
const DEMO_TOKEN: &str = "demo-private-app-token";
/// The demo's webhook client secret (local and throwaway).
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";
/// The database the demo syncs into.
const DEMO_DB: &str = "hubsync_demo";

/// Runs the demo until Ctrl-C.
pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = args.data_dir.clone().unwrap_or_else(default_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let (cluster, database_url) = match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty())
    {
        Some(url) => {
            reset_given_database(&url).await?;
            (None, url)
        }
        None => {
            let pg_dir = dir.join("postgres");
            let cluster = tokio::task::spawn_blocking(move || PrivateCluster::start(&pg_dir, None))
                .await
                .context("cluster start task")?
                .context("cannot start the private PostgreSQL (are PostgreSQL's server binaries installed?)")?;
            let url = cluster.url_for(DEMO_DB);
            (Some(cluster), url)
        }
    };
    let outcome = async {
        if let Some(cluster) = &cluster {
            recreate_database(cluster).await?;
        }
        serve(&args, &dir, &database_url).await
    }
    .await;
    // Stopped however the demo ends, so a failed start leaves no server behind.
    if let Some(cluster) = cluster
        && let Err(err) = tokio::task::spawn_blocking(move || cluster.stop()).await?
    {
        tracing::warn!(error = %err, "private PostgreSQL did not stop cleanly");
    }
    outcome.map(|()| ExitCode::SUCCESS)
}

/// The local HubSpot and the daemon on `database_url`, until Ctrl-C.
async fn serve(args: &DemoArgs, dir: &std::path::Path, database_url: &str) -> anyhow::Result<()> {
    let webhook_url = format!("http://127.0.0.1:{}/webhooks/hubspot", args.port);
    let emulator = hubsync_emulator::spawn(EmulatorConfig {
        listen: ([127, 0, 0, 1], args.emulator_port).into(),
        tokens: vec![DEMO_TOKEN.into()],
        seed: SeedConfig {
            contacts: args.seed_contacts,
            companies: (args.seed_contacts / 4).max(1),
            deals: (args.seed_contacts / 3).max(1),
            tickets: (args.seed_contacts / 5).max(1),
            value: 7,
        },
        webhook_url: Some(webhook_url),
        webhook_secret: Some(DEMO_WEBHOOK_SECRET.into()),
        ..EmulatorConfig::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the local HubSpot on port {}",
            args.emulator_port
        )
    })?;

    let token_file = dir.join("demo-token");
    std::fs::write(&token_file, DEMO_TOKEN).context("cannot write the demo token file")?;
    let secret_file = dir.join("demo-webhook-secret");
    std::fs::write(&secret_file, DEMO_WEBHOOK_SECRET)
        .context("cannot write the demo secret file")?;
    let config_text = demo_config(
        &emulator.base_url(),
        &token_file,
        &secret_file,
        database_url,
        args.port,
    );
    let config_path = dir.join("hubsync.toml");
    std::fs::write(&config_path, &config_text).context("cannot write the demo config")?;
    let config = Config::parse(&config_text).context("demo configuration")?;

    let hubspot = emulator.base_url();
    quick_webhooks(&hubspot).await;
    let id = first_contact(&config).await;
    print_welcome(&hubspot, database_url, &config_path, args.port, id);
    let shutdown = daemon::signal_token();
    let outcome = daemon::run(config, shutdown).await;
    emulator.shutdown().await;
    outcome
}

/// HubSpot batches webhook events for about a second; the demo's local HubSpot sends them
/// after 50 ms so edits show up at once.
async fn quick_webhooks(hubspot: &str) {
    let sent = reqwest::Client::new()
        .post(format!("{hubspot}/_emulator/webhooks"))
        .json(&serde_json::json!({ "flush_ms": 50 }))
        .send()
        .await;
    if let Err(err) = sent {
        tracing::warn!(error = %err, "cannot shorten the local HubSpot's webhook batching");
    }
}

/// The id of one seeded contact, for the commands the welcome text suggests.
async fn first_contact(config: &Config) -> Option<u64> {
    let client = config.hubspot_client().ok()?;
    let request = hubsync_hubspot::ListRequest {
        limit: 1,
        ..Default::default()
    };
    let page = client.list_page("contacts", &request).await.ok()?;
    page.results.first().map(|r| r.id)
}

/// Beside where a private cluster lives by default: the user's state directory, or
/// `/var/lib/hubsync` for root (whose home the `postgres` user cannot enter).
fn default_dir() -> PathBuf {
    let cluster = PrivateCluster::default_base_dir();
    cluster
        .parent()
        .map_or_else(|| cluster.clone(), std::path::Path::to_path_buf)
        .join("demo")
}

/// Drops the private cluster's demo database (last run's data) and creates it empty.
async fn recreate_database(cluster: &PrivateCluster) -> anyhow::Result<()> {
    let admin = hubsync_store::Store::connect(&cluster.url())
        .await
        .context("private PostgreSQL")?;
    let client = admin.client().await?;
    // Two calls: statements sent together run as one transaction, which DROP DATABASE
    // refuses.
    for sql in [
        format!("DROP DATABASE IF EXISTS {DEMO_DB} WITH (FORCE)"),
        format!("CREATE DATABASE {DEMO_DB}"),
    ] {
        client
            .batch_execute(&sql)
            .await
            .context("resetting the demo database")?;
    }
    admin.close();
    Ok(())
}

/// What a database given by `DATABASE_URL` holds, as far as the demo is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GivenDatabase {
    /// Marked by an earlier demo run: its `hubspot` and `hubsync` schemas are the demo's.
    Demo,
    /// Unmarked, with no table outside the `hubsync` schema: nothing synced here yet.
    Fresh,
    /// Unmarked, with tables of its own: someone else's data.
    Foreign,
}

impl GivenDatabase {
    fn of(comment: Option<&str>, holds_tables: bool) -> Self {
        match (comment == Some(DEMO_MARK), holds_tables) {
            (true, _) => Self::Demo,
            (false, false) => Self::Fresh,
            (false, true) => Self::Foreign,
        }
    }
}

/// The comment that marks a database as the demo's.
const DEMO_MARK: &str = "hubsync demo: reset on every run of `hubsync demo`";

/// Gets a database given by `DATABASE_URL` ready for a fresh run (module docs).
async fn reset_given_database(url: &str) -> anyhow::Result<()> {
    let store = hubsync_store::Store::connect(url)
        .await
        .context("cannot reach the PostgreSQL in DATABASE_URL")?;
    let client = store.client().await?;
    let row = client
        .query_one(
            "SELECT current_database()::text, shobj_description(d.oid, 'pg_database'), \
               EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'hubsync') \
                   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
        .context("reading the demo database")?;
    let (name, comment, holds_tables): (String, Option<String>, bool) =
        (row.get(0), row.get(1), row.get(2));
    match GivenDatabase::of(comment.as_deref(), holds_tables) {
        GivenDatabase::Demo => client
            .batch_execute(
                "DROP SCHEMA IF EXISTS hubspot CASCADE; DROP SCHEMA IF EXISTS hubsync CASCADE",
            )
            .await
            .context("resetting the demo database's hubspot and hubsync schemas")?,
        GivenDatabase::Fresh => {
            let mark = format!(
                "COMMENT ON DATABASE \"{}\" IS '{DEMO_MARK}'",
                name.replace('"', "\"\"")
            );
            if let Err(err) = client.batch_execute(&mark).await {
                tracing::warn!(error = %err, "cannot mark the database as the demo's; the next run will refuse it");
            }
        }
        GivenDatabase::Foreign => anyhow::bail!(
            "DATABASE_URL names a database with tables not made by `hubsync demo`; \
             the demo resets its database on every run (its local HubSpot is seeded anew), so \
             give it an empty database"
        ),
    }
    store.close();
    Ok(())
}

fn demo_config(
    hubspot: &str,
    token_file: &std::path::Path,
    secret_file: &std::path::Path,
    database_url: &str,
    port: u16,
) -> String {
    format!(
        r#"# Written by `hubsync demo`; edit a copy to try your own settings.
[hubspot]
base_url = "{hubspot}"
token = {{ file = {token:?} }}
webhook_secret = {{ file = {secret:?} }}
rate_limit = "100/10s"

[postgres]
url = {{ file = {url_file:?} }}
schema = "hubspot"

[server]
listen = "127.0.0.1:{port}"

[[object]]
name = "companies"
direction = "two-way"

[[object]]
name = "contacts"
direction = "two-way"
[object.fields.lifecyclestage]
conflict = "hubspot-wins"

[[object]]
name = "deals"
direction = "two-way"

[[object]]
name = "tickets"
direction = "hubspot-to-postgres"
mode = {{ realtime = true, every = "10m" }}
"#,
        token = token_file.display().to_string(),
        secret = secret_file.display().to_string(),
        url_file = write_url_file(token_file, database_url)
            .display()
            .to_string(),
    )
}

/// The database URL goes in a file beside the token so the config holds no connection secret.
fn write_url_file(token_file: &std::path::Path, database_url: &str) -> PathBuf {
    let path = token_file.with_file_name("database-url");
    if let Err(err) = std::fs::write(&path, database_url) {
        tracing::warn!(error = %err, "cannot write the database URL file");
    }
    path
}

fn print_welcome(
    hubspot: &str,
    database_url: &str,
    config: &std::path::Path,
    port: u16,
    id: Option<u64>,
) {
    let config = config.display();
    let psql = if database_url.contains("host=") {
        format!("psql \"{database_url}\"")
    } else {
        format!("psql '{database_url}'")
    };
    let id = id.map_or_else(|| "ID".to_owned(), |id| id.to_string());
    println!(
        r#"
hubsync demo is running (Ctrl-C stops everything).

Every run starts fresh: the local HubSpot is seeded anew and the demo database is reset to
match it, so edits from an earlier run are gone (the PostgreSQL server itself is reused).

  local HubSpot   {hubspot}   (token: {DEMO_TOKEN})
  dashboard       http://127.0.0.1:{port}/   (objects, API budget, conflicts, issues, field mapping)
  daemon          http://127.0.0.1:{port}   (webhooks at /webhooks/hubspot, /healthz, /readyz, /metrics)
  config          {config}

Try, in another terminal:
  {psql} -c "select hs_object_id, email, firstname, lastname from hubspot.contacts order by hs_object_id limit 5"

  # PostgreSQL -> HubSpot: edit a row, then read the record from the local HubSpot
  {psql} -c "update hubspot.contacts set firstname = 'Ada' where hs_object_id = {id}"
  curl -s -H 'authorization: Bearer {DEMO_TOKEN}' '{hubspot}/crm/v3/objects/contacts/{id}?properties=firstname,lastname'

  # HubSpot -> PostgreSQL: edit the record as a HubSpot user would (a webhook fires)
  curl -s -X POST -H 'content-type: application/json' {hubspot}/_emulator/objects/contacts/{id} \
       -d '{{"properties": {{"lastname": "Lovelace"}}}}'
  {psql} -c "select firstname, lastname, synced_at from hubspot.contacts where hs_object_id = {id}"
"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_or_schema_less_database_is_used() {
        assert_eq!(
            GivenDatabase::of(Some(DEMO_MARK), true),
            GivenDatabase::Demo
        );
        assert_eq!(
            GivenDatabase::of(Some(DEMO_MARK), false),
            GivenDatabase::Demo
        );
        assert_eq!(GivenDatabase::of(None, false), GivenDatabase::Fresh);
        assert_eq!(GivenDatabase::of(Some("prod"), false), GivenDatabase::Fresh);
        assert_eq!(GivenDatabase::of(None, true), GivenDatabase::Foreign);
        assert_eq!(
            GivenDatabase::of(Some("prod"), true),
            GivenDatabase::Foreign
        );
    }
}
