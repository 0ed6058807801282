//! `hubsync demo`: the whole product on one machine with no set-up — a seeded local HubSpot
//! (the emulator) with webhooks pointed at the daemon, a private PostgreSQL under the user's
//! state directory when `DATABASE_URL` is unset (reused on the next run), and the daemon.
//! Ctrl-C stops all three.

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
        Some(url) => (None, url),
        None => {
            let pg_dir = dir.join("postgres");
            let cluster = tokio::task::spawn_blocking(move || PrivateCluster::start(&pg_dir, None))
                .await
                .context("cluster start task")?
                .context("cannot start the private PostgreSQL (are PostgreSQL's server binaries installed?)")?;
            create_database(&cluster).await?;
            let url = cluster.url_for(DEMO_DB);
            (Some(cluster), url)
        }
    };

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
        &database_url,
        args.port,
    );
    let config_path = dir.join("hubsync.toml");
    std::fs::write(&config_path, &config_text).context("cannot write the demo config")?;
    let config = Config::parse(&config_text).context("demo configuration")?;

    let hubspot = emulator.base_url();
    quick_webhooks(&hubspot).await;
    let id = first_contact(&config).await;
    print_welcome(&hubspot, &database_url, &config_path, args.port, id);
    let shutdown = daemon::signal_token();
    let outcome = daemon::run(config, shutdown).await;
    emulator.shutdown().await;
    if let Some(cluster) = cluster
        && let Err(err) = tokio::task::spawn_blocking(move || cluster.stop()).await?
    {
        tracing::warn!(error = %err, "private PostgreSQL did not stop cleanly");
    }
    outcome.map(|()| ExitCode::SUCCESS)
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

fn default_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("hubsync")
        .join("demo")
}

async fn create_database(cluster: &PrivateCluster) -> anyhow::Result<()> {
    let admin = hubsync_store::Store::connect(&cluster.url())
        .await
        .context("private PostgreSQL")?;
    let client = admin.client().await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DEMO_DB])
        .await
        .context("listing databases")?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {DEMO_DB}"))
            .await
            .context("creating the demo database")?;
    }
    admin.close();
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
hubsync demo is running (Ctrl-C stops everything; the next run reuses the PostgreSQL data).

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
