//! `hubsync gdpr-delete --email ADDRESS`: erases a person on request (GDPR art. 17).
//!
//! 1. **HubSpot first**: the GDPR delete endpoint by email (and by id for every matching
//!    row hubsync knows, in case the email differs there); "not found" counts as erased.
//!    HubSpot goes first so a sync in between cannot bring the person back.
//! 2. **PostgreSQL**, in one transaction tagged as hubsync's own (the capture triggers do
//!    not send the delete back): the contact rows (live or archived), their junction rows,
//!    and every state row about them — shadow values, outbox and inbox entries, conflicts,
//!    data issues, record state.
//! 3. **Audit**: earlier entries of the record keep which fields changed and when, with the
//!    values replaced by `"redacted"`; one `gdpr_delete` entry per side is added, with the
//!    HubSpot id only — no email, no values.
//!
//! The email is never logged nor stored.

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use hubsync_hubspot::HubSpotClient;
use hubsync_store::{
    GenericClient, Store, StoreError,
    associations::load_association_mappings,
    catalog::load_mapping,
    classify,
    naming::quote_ident,
    schema::TableMapping,
    state::audit::{self, AuditEntry, Direction},
    tagged_transaction,
};

use super::sync::connect;
use crate::{cli::GdprDeleteArgs, config::Config};

/// The object GDPR deletes apply to.
const CONTACTS: &str = "contacts";

/// What an erasure did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Erasure {
    /// HubSpot ids erased in PostgreSQL.
    pub(crate) ids: Vec<i64>,
    /// Rows deleted from the contacts table.
    pub(crate) rows: u64,
    /// Junction and state rows deleted.
    pub(crate) state_rows: u64,
    /// Audit entries redacted.
    pub(crate) redacted: u64,
}

/// Runs the command.
pub(crate) async fn run(config_path: &Path, args: &GdprDeleteArgs) -> anyhow::Result<ExitCode> {
    let email = args.email.trim();
    anyhow::ensure!(email.contains('@'), "--email must be an email address");
    let config = Config::load(config_path)?;
    let store = connect(&config).await?;
    let client = config.hubspot_client()?;
    let result = erase(&store, &client, &config.postgres.schema, email).await;
    store.close();
    let e = result?;
    println!(
        "Erased in HubSpot and PostgreSQL: {} row(s), {} related state row(s), {} audit entr{} redacted.",
        e.rows,
        e.state_rows,
        e.redacted,
        if e.redacted == 1 { "y" } else { "ies" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Erases the contact with `email` on both sides.
///
/// # Errors
/// HubSpot refused the delete (other than "not found"), or PostgreSQL failed (the
/// transaction is rolled back and retried while the failure is transient — a deadlock
/// with the daemon, a lost connection — so HubSpot's side is never left erased alone;
/// running the command again finishes the job after any other failure).
pub(crate) async fn erase(
    store: &Store,
    client: &HubSpotClient,
    schema: &str,
    email: &str,
) -> anyhow::Result<Erasure> {
    let conn = store.client().await.context("cannot reach PostgreSQL")?;
    let mapping = load_mapping(&conn, schema, CONTACTS)
        .await
        .context("cannot read the catalog")?;
    let rows: Vec<(String, Option<i64>)> = match &mapping {
        None => Vec::new(),
        Some(m) => {
            let email_expr = match m.column_for("email") {
                Some(c) => quote_ident(&c.column),
                None => "custom_properties->>'email'".to_owned(),
            };
            conn.query(
                &format!(
                    "SELECT hubsync_row_id::text, hs_object_id FROM {} WHERE lower({email_expr}) = lower($1)",
                    m.qualified_table()
                ),
                &[&email],
            )
            .await
            .context("cannot look the contact up")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        }
    };

    hubspot_delete(client, email, Some("email")).await?;
    for id in rows.iter().filter_map(|r| r.1) {
        hubspot_delete(client, &id.to_string(), None).await?;
    }

    drop(conn);
    let attempt = || erase_in_postgres(store, schema, mapping.as_ref(), &rows);
    let erasure = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(8)
                .with_jitter(),
        )
        .when(retryable)
        .notify(|err, wait| {
            tracing::warn!(error = %format!("{err:#}"), ?wait, "the PostgreSQL part of the erasure failed; retrying");
        })
        .await?;
    tracing::info!(
        records = erasure.ids.len(),
        rows = erasure.rows,
        "GDPR delete done"
    );
    Ok(erasure)
}

/// Whether a failed erasure transaction may succeed when run again: a deadlock with the
/// daemon writing the same record (it archives it when HubSpot's deletion webhook
/// arrives), a lock or statement timeout, a lost connection.
fn retryable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_retryable)
            || cause
                .downcast_ref::<hubsync_store::tokio_postgres::Error>()
                .is_some_and(|e| classify(e).is_retryable())
    })
}

/// The PostgreSQL part of an erasure: one transaction (so a retry starts from nothing).
async fn erase_in_postgres(
    store: &Store,
    schema: &str,
    mapping: Option<&TableMapping>,
    rows: &[(String, Option<i64>)],
) -> anyhow::Result<Erasure> {
    let mut conn = store.client().await.context("cannot reach PostgreSQL")?;
    let mut erasure = Erasure {
        ids: rows.iter().filter_map(|r| r.1).collect(),
        ..Erasure::default()
    };
    let tx = tagged_transaction(&mut conn).await?;
    let junctions = load_association_mappings(&tx, schema).await?;
    for (row_key, id) in rows {
        if let Some(m) = mapping {
            erasure.rows += tx
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE hubsync_row_id::text = $1",
                        m.qualified_table()
                    ),
                    &[row_key],
                )
                .await
                .context("cannot delete the row")?;
        }
        erasure.state_rows += delete_state(&tx, row_key, *id).await?;
        let Some(id) = *id else { continue };
        for j in &junctions {
            for (object, column) in [
                (&j.from_object, &j.from_column),
                (&j.to_object, &j.to_column),
            ] {
                if object == CONTACTS {
                    erasure.state_rows += tx
                        .execute(
                            &format!(
                                "DELETE FROM {} WHERE {} = $1",
                                j.qualified_table(),
                                quote_ident(column)
                            ),
                            &[&id],
                        )
                        .await
                        .context("cannot delete junction rows")?;
                }
            }
        }
        erasure.redacted += audit::redact_record(&tx, CONTACTS, id).await?;
    }
    let entries: Vec<AuditEntry> = [Direction::PostgresToHubspot, Direction::HubspotToPostgres]
        .into_iter()
        .flat_map(|direction| {
            let ids: Vec<Option<i64>> = if erasure.ids.is_empty() {
                vec![None]
            } else {
                erasure.ids.iter().copied().map(Some).collect()
            };
            ids.into_iter().map(move |id| {
                let mut e = AuditEntry::new(direction, CONTACTS, "gdpr_delete");
                e.hs_object_id = id;
                e
            })
        })
        .collect();
    audit::insert(&tx, &entries).await?;
    tx.commit().await.context("cannot commit the erasure")?;
    Ok(erasure)
}

/// HubSpot's GDPR delete of `key` (a record id, or the value of `id_property`); "not
/// found" is fine.
async fn hubspot_delete(
    client: &HubSpotClient,
    key: &str,
    id_property: Option<&str>,
) -> anyhow::Result<()> {
    match client.gdpr_delete_contact(key, id_property).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("HubSpot refused the GDPR delete")),
    }
}

/// Deletes hubsync's state rows about one contact. Returns how many.
async fn delete_state(
    tx: &impl GenericClient,
    row_key: &str,
    id: Option<i64>,
) -> anyhow::Result<u64> {
    let mut n = 0;
    for table in ["outbox", "record_state"] {
        n += tx
            .execute(
                &format!(
                    "DELETE FROM hubsync.{table} WHERE object = $1 \
                     AND (row_key = $2 OR ($3::int8 IS NOT NULL AND hs_object_id = $3))"
                ),
                &[&CONTACTS, &row_key, &id],
            )
            .await
            .with_context(|| format!("cannot delete from hubsync.{table}"))?;
    }
    if let Some(id) = id {
        for table in ["shadow", "inbox", "conflicts", "issues"] {
            n += tx
                .execute(
                    &format!("DELETE FROM hubsync.{table} WHERE object = $1 AND hs_object_id = $2"),
                    &[&CONTACTS, &id],
                )
                .await
                .with_context(|| format!("cannot delete from hubsync.{table}"))?;
        }
    }
    Ok(n)
}
