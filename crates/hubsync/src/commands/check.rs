//! `hubsync check`: validates the configuration, then reaches both sides and says clearly
//! what is missing — HubSpot scopes per object (a one-record list and the property list),
//! PostgreSQL connectivity and the privileges hubsync needs (create the synced schema and
//! the `hubsync` schema, or create tables in them when they exist).

use std::{path::Path, process::ExitCode};

use hubsync_hubspot::{HubSpotError, ListRequest};
use hubsync_store::{GenericClient, Store};

use crate::config::Config;

/// One checked item.
struct Finding {
    ok: bool,
    what: String,
    detail: String,
}

impl Finding {
    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            what: what.into(),
            detail: detail.into(),
        }
    }

    fn fail(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Runs the command; exits non-zero when anything is missing.
pub(crate) async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let mut findings = vec![Finding::ok(
        "config",
        format!(
            "{} ({} objects)",
            config_path.display(),
            config.objects.len()
        ),
    )];
    if let Some(why) = &config.hubspot.webhook_secret_missing {
        findings.push(Finding::fail(
            "hubspot.webhook_secret",
            format!("{why}: `hubsync run` would refuse every webhook"),
        ));
    }
    findings.extend(check_hubspot(&config).await);
    findings.extend(check_postgres(&config).await);
    for f in &findings {
        let mark = if f.ok { "ok  " } else { "FAIL" };
        println!("{mark} {}: {}", f.what, f.detail);
    }
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        println!("everything needed is in place");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} problem(s) found");
        Ok(ExitCode::FAILURE)
    }
}

fn hubspot_problem(object: &str, err: &HubSpotError) -> String {
    match err.status() {
        Some(401) => "the token was refused (401): check hubspot.token".to_owned(),
        Some(403) => format!(
            "missing scope (403): the private app needs crm.objects.{object}.read (and .write for two-way) and crm.schemas.{object}.read"
        ),
        _ if err.is_unknown_object_type() => format!(
            "HubSpot has no object type {object:?} (use a standard object's plural name, such as contacts, or a custom object's name or object type id)"
        ),
        _ => format!(
            "cannot reach HubSpot: {}",
            hubsync_engine::hs_to_pg::error_chain(err)
        ),
    }
}

async fn check_hubspot(config: &Config) -> Vec<Finding> {
    let client = match config.hubspot_client() {
        Ok(c) => c,
        Err(e) => return vec![Finding::fail("hubspot", format!("{e:#}"))],
    };
    let mut out = Vec::new();
    for object in &config.objects {
        let name = &object.name;
        let what = format!("hubspot {name}");
        let properties = match client.list_properties(name, false).await {
            Ok(p) => p,
            Err(e) => {
                out.push(Finding::fail(what, hubspot_problem(name, &e)));
                continue;
            }
        };
        let request = ListRequest {
            limit: 1,
            properties: vec!["hs_object_id".into()],
            ..ListRequest::default()
        };
        match client.list_page(name, &request).await {
            Ok(_) => {
                let missing: Vec<&String> = object
                    .properties
                    .iter()
                    .flatten()
                    .filter(|p| !properties.iter().any(|d| &d.name == *p))
                    .collect();
                if missing.is_empty() {
                    out.push(Finding::ok(
                        what,
                        format!("readable, {} properties", properties.len()),
                    ));
                } else {
                    out.push(Finding::fail(
                        what,
                        format!("configured properties HubSpot does not define: {missing:?}"),
                    ));
                }
            }
            Err(e) => out.push(Finding::fail(what, hubspot_problem(name, &e))),
        }
    }
    out
}

async fn check_postgres(config: &Config) -> Vec<Finding> {
    let url = match config.database_url() {
        Ok(u) => u,
        Err(e) => return vec![Finding::fail("postgres", e.to_string())],
    };
    let store = match Store::connect(url).await {
        Ok(s) => s,
        Err(e) => {
            return vec![Finding::fail(
                "postgres",
                hubsync_engine::hs_to_pg::error_chain(&e),
            )];
        }
    };
    let conn = match store.client().await {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::fail(
                "postgres",
                hubsync_engine::hs_to_pg::error_chain(&e),
            )];
        }
    };
    let mut out = vec![Finding::ok(
        "postgres",
        format!("connected to {}", store.database().unwrap_or("?")),
    )];
    for (schema, role) in [
        (config.postgres.schema.as_str(), "synced tables"),
        ("hubsync", "hubsync's state"),
    ] {
        out.push(schema_privilege(&conn, schema, role).await);
    }
    store.close();
    out
}

/// Whether tables can be created in `schema` (or the schema itself created).
async fn schema_privilege(conn: &impl GenericClient, schema: &str, role: &str) -> Finding {
    let what = format!("postgres schema {schema:?} ({role})");
    let row = conn
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                    CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
                         THEN has_schema_privilege($1, 'CREATE') ELSE false END,
                    has_database_privilege(current_database(), 'CREATE')",
            &[&schema],
        )
        .await;
    match row {
        Err(e) => Finding::fail(what, format!("cannot check privileges: {e}")),
        Ok(r) => {
            let (exists, create_in, create_schema): (bool, bool, bool) =
                (r.get(0), r.get(1), r.get(2));
            match (exists, create_in, create_schema) {
                (true, true, _) => Finding::ok(what, "exists, CREATE privilege held"),
                (true, false, _) => Finding::fail(
                    what,
                    format!(
                        "exists but lacks CREATE: GRANT CREATE, USAGE ON SCHEMA \"{schema}\" TO current_user"
                    ),
                ),
                (false, _, true) => {
                    Finding::ok(what, "will be created (CREATE on the database held)")
                }
                (false, _, false) => Finding::fail(
                    what,
                    format!(
                        "does not exist and cannot be created: CREATE SCHEMA \"{schema}\" as an owner, or GRANT CREATE ON DATABASE"
                    ),
                ),
            }
        }
    }
}
