//! `hubsync import --object NAME FILE.csv [--to-hubspot] [--id-property P]`: loads a HubSpot
//! export CSV (or any CSV with HubSpot labels or property names as headers) into the synced
//! table.
//!
//! - Headers are matched to synced properties by HubSpot label (case-insensitive) or
//!   property name; `Record ID` is the HubSpot id. Columns that match no synced property
//!   are reported and skipped (only synced properties are ever stored).
//! - Every value is checked against its column's type first; a row with a bad value is
//!   rejected as a whole and reported (`line N: column: reason`) — the others load.
//! - **Without `--to-hubspot`** rows are written to PostgreSQL only, as hubsync's own
//!   writes (no change capture, nothing sent to HubSpot), in batches through the store's
//!   upsert. Each row needs a `Record ID`. Rows are stored at the version of their `Last
//!   Modified Date` column (or the oldest possible one), so a row the sync already holds in
//!   a newer version is kept and counted as skipped, and the next sync overwrites an older
//!   import.
//! - **With `--to-hubspot`** rows are first pushed through HubSpot's batch upsert — by
//!   `Record ID` when present, else by `--id-property` (default `email` for contacts) — and
//!   what HubSpot answered is written to PostgreSQL with HubSpot's ids and versions.
//!   HubSpot's per-row rejections are reported like bad values.
//!
//! Every row written lands in `hubsync.audit` (action `import`). Exits 1 when any row was
//! rejected.

use std::{collections::BTreeMap, path::Path, process::ExitCode};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use hubsync_hubspot::{HubSpotClient, UpsertInput};
use hubsync_store::{
    Store,
    schema::{ColumnMapping, TableMapping},
    state::audit::{self, AuditEntry, Direction},
    tagged_transaction,
    upsert::{RecordRow, upsert_records},
    values::to_sql_text,
};

use super::{
    export::{RECORD_ID, headers, progress_bar, table_mapping},
    sync::connect,
};
use crate::{cli::ImportArgs, config::Config};

/// Rows per batch (HubSpot's batch upsert takes 100 per call; the client chunks).
const BATCH: usize = 500;

/// One CSV row that passed the checks.
struct Parsed {
    line: u64,
    id: Option<i64>,
    values: BTreeMap<String, Option<String>>,
    updated_at: Option<DateTime<Utc>>,
}

/// What happened.
#[derive(Debug, Default)]
struct Tally {
    read: u64,
    written: u64,
    skipped: u64,
    rejected: u64,
}

/// Runs the command.
pub(crate) async fn run(config_path: &Path, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    if !config.objects.iter().any(|o| o.name == args.object) {
        bail!("object {} is not configured", args.object);
    }
    let store = connect(&config).await?;
    let client = if args.to_hubspot {
        Some(config.hubspot_client()?)
    } else {
        None
    };
    let result = import(&store, client.as_ref(), &config.postgres.schema, args).await;
    store.close();
    let t = result?;
    println!(
        "Imported {} of {} rows into {} ({} kept a newer synced version, {} rejected){}.",
        t.written,
        t.read,
        args.object,
        t.skipped,
        t.rejected,
        if args.to_hubspot { " and HubSpot" } else { "" }
    );
    Ok(if t.rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A CSV header's meaning.
enum Target<'a> {
    Id,
    Column(&'a ColumnMapping),
    Skip,
}

async fn import(
    store: &Store,
    client: Option<&HubSpotClient>,
    schema: &str,
    args: &ImportArgs,
) -> anyhow::Result<Tally> {
    let mut conn = store.client().await.context("cannot reach PostgreSQL")?;
    let mapping = table_mapping(&conn, schema, &args.object).await?;
    let mut reader = csv::Reader::from_path(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let named = headers(&mapping);
    let targets: Vec<Target<'_>> = reader
        .headers()
        .context("the CSV has no header line")?
        .iter()
        .map(|h| {
            let h = h.trim();
            if h.eq_ignore_ascii_case(RECORD_ID) || h == "hs_object_id" {
                return Target::Id;
            }
            named
                .iter()
                .find(|(label, c)| label.eq_ignore_ascii_case(h) || c.property == h)
                .map_or(Target::Skip, |(_, c)| Target::Column(c))
        })
        .collect();
    let skipped: Vec<&str> = reader
        .headers()?
        .iter()
        .zip(&targets)
        .filter(|(_, t)| matches!(t, Target::Skip))
        .map(|(h, _)| h)
        .collect();
    if !skipped.is_empty() {
        eprintln!(
            "Skipped columns that match no synced property: {}",
            skipped.join(", ")
        );
    }
    let id_property = args.id_property.clone().unwrap_or_else(|| {
        if args.object == "contacts" {
            "email"
        } else {
            "hs_object_id"
        }
        .to_owned()
    });
    let progress = progress_bar(0);
    let mut tally = Tally::default();
    let mut batch: Vec<Parsed> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        tally.read += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                reject(&mut tally, line, &format!("unreadable: {e}"));
                continue;
            }
        };
        match parse(line, &record, &targets) {
            Ok(p) if p.id.is_none() && client.is_none() => reject(
                &mut tally,
                line,
                "no Record ID (add --to-hubspot to create the record in HubSpot)",
            ),
            Ok(p) if p.id.is_none() && !p.values.get(&id_property).is_some_and(Option::is_some) => {
                reject(
                    &mut tally,
                    line,
                    &format!("no Record ID and no {id_property}"),
                );
            }
            Ok(p) => batch.push(p),
            Err(reason) => reject(&mut tally, line, &reason),
        }
        if batch.len() == BATCH {
            flush(
                &mut conn,
                client,
                &mapping,
                &id_property,
                &mut batch,
                &mut tally,
            )
            .await?;
            progress.set_position(tally.read);
        }
    }
    flush(
        &mut conn,
        client,
        &mapping,
        &id_property,
        &mut batch,
        &mut tally,
    )
    .await?;
    progress.finish_and_clear();
    Ok(tally)
}

fn reject(tally: &mut Tally, line: u64, reason: &str) {
    tally.rejected += 1;
    eprintln!("line {line}: {reason}");
}

/// Checks one row's values against their columns.
fn parse(line: u64, record: &csv::StringRecord, targets: &[Target<'_>]) -> Result<Parsed, String> {
    let mut parsed = Parsed {
        line,
        id: None,
        values: BTreeMap::new(),
        updated_at: None,
    };
    for (raw, target) in record.iter().zip(targets) {
        let raw = raw.trim();
        match target {
            Target::Skip => {}
            Target::Id if raw.is_empty() => {}
            Target::Id => {
                parsed.id = Some(
                    raw.parse()
                        .map_err(|_| format!("{RECORD_ID}: not a record id"))?,
                );
            }
            Target::Column(c) => {
                let conversion = to_sql_text(c.column_type, raw);
                if let Some(problem) = conversion.problem
                    && conversion.value.is_none()
                {
                    return Err(format!("{}: {problem}", c.label));
                }
                if c.property == "lastmodifieddate" || c.property == "hs_lastmodifieddate" {
                    parsed.updated_at = conversion
                        .value
                        .as_deref()
                        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                        .map(|d| d.with_timezone(&Utc));
                }
                parsed.values.insert(
                    c.property.clone(),
                    (!raw.is_empty()).then(|| raw.to_owned()),
                );
            }
        }
    }
    Ok(parsed)
}

/// Writes a batch (to HubSpot first with `client`), then empties it.
async fn flush(
    conn: &mut hubsync_store::StoreClient,
    client: Option<&HubSpotClient>,
    mapping: &TableMapping,
    id_property: &str,
    batch: &mut Vec<Parsed>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut audit_entries = Vec::new();
    let rows: Vec<RecordRow> = match client {
        None => batch
            .iter()
            .filter_map(|p| {
                Some(RecordRow {
                    hs_object_id: p.id?,
                    properties: p.values.clone(),
                    created_at: None,
                    updated_at: p.updated_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                    archived_at: None,
                })
            })
            .collect(),
        Some(client) => {
            let writable = |c: &str| mapping.column_for(c).is_some_and(|m| !m.read_only);
            let inputs: Vec<UpsertInput> = batch
                .iter()
                .map(|p| {
                    let (id, id_prop) = match p.id {
                        Some(id) => (id.to_string(), "hs_object_id".to_owned()),
                        None => (
                            p.values
                                .get(id_property)
                                .cloned()
                                .flatten()
                                .unwrap_or_default(),
                            id_property.to_owned(),
                        ),
                    };
                    UpsertInput {
                        id,
                        id_property: id_prop,
                        properties: p
                            .values
                            .iter()
                            .filter(|(k, v)| {
                                writable(k) && v.is_some() && k.as_str() != id_property
                            })
                            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                            .collect(),
                        object_write_trace_id: None,
                    }
                })
                .collect();
            let outcome = client
                .batch_upsert(&mapping.object, &inputs)
                .await
                .context("HubSpot refused the batch upsert")?;
            for e in &outcome.errors {
                for i in &e.indices {
                    let line = batch.get(*i).map_or(0, |p| p.line);
                    let why = e.category.as_deref().unwrap_or("rejected");
                    reject(tally, line, &format!("HubSpot refused the row ({why})"));
                }
            }
            outcome
                .results
                .iter()
                .map(|r| {
                    let mut entry =
                        AuditEntry::new(Direction::PostgresToHubspot, &mapping.object, "import");
                    entry.hs_object_id = i64::try_from(r.id).ok();
                    audit_entries.push(entry);
                    RecordRow {
                        hs_object_id: i64::try_from(r.id).unwrap_or_default(),
                        properties: r
                            .properties
                            .iter()
                            .filter(|(k, _)| mapping.column_for(k).is_some())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        created_at: Some(r.created_at),
                        updated_at: r.updated_at,
                        archived_at: None,
                    }
                })
                .collect()
        }
    };
    let tx = tagged_transaction(conn).await?;
    let report = upsert_records(&tx, mapping, &rows).await?;
    for row in &rows {
        let mut entry = AuditEntry::new(Direction::HubspotToPostgres, &mapping.object, "import");
        entry.hs_object_id = Some(row.hs_object_id);
        for (k, v) in &row.properties {
            entry = entry.change(k, None, v.as_deref());
        }
        audit_entries.push(entry);
    }
    audit::insert(&tx, &audit_entries).await?;
    tx.commit()
        .await
        .context("cannot commit the import batch")?;
    tally.written += report.written;
    tally.skipped += report.skipped_stale;
    batch.clear();
    Ok(())
}
