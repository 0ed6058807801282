//! `hubsync export --object NAME [-o FILE]`: a synced table as CSV with HubSpot's export
//! column names — `Record ID`, then each synced property under its HubSpot label (`First
//! Name`, `Email`, …; a label two properties share gets the property name appended).
//!
//! Streams through a server-side cursor ([`FETCH_ROWS`] rows at a time), so memory stays
//! flat for any table size; shows a progress bar when stderr is a terminal. Values are
//! written as HubSpot exports them: multi-select values joined with `;`, datetimes in UTC
//! ISO 8601, dates `YYYY-MM-DD`, booleans `true`/`false`. Archived rows are left out; values
//! kept only in `custom_properties` are not exported.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Write},
    path::Path,
    process::ExitCode,
};

use anyhow::{Context, bail};
use hubsync_store::{
    catalog::load_mapping,
    naming::quote_ident,
    schema::{ColumnMapping, TableMapping},
    values::ColumnType,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::sync::connect;
use crate::{cli::ExportArgs, config::Config};

/// Rows fetched per round trip.
const FETCH_ROWS: i64 = 2_000;

/// HubSpot's export header of the record id.
pub(crate) const RECORD_ID: &str = "Record ID";

/// The CSV header for each exported column, in order (after [`RECORD_ID`]).
pub(crate) fn headers(mapping: &TableMapping) -> Vec<(String, &ColumnMapping)> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &mapping.columns {
        *seen.entry(label(c).to_lowercase()).or_default() += 1;
    }
    mapping
        .columns
        .iter()
        .map(|c| {
            let l = label(c);
            let shared = seen.get(&l.to_lowercase()).copied().unwrap_or(0) > 1
                || l.eq_ignore_ascii_case(RECORD_ID);
            let header = if shared {
                format!("{l} ({})", c.property)
            } else {
                l.to_owned()
            };
            (header, c)
        })
        .collect()
}

fn label(c: &ColumnMapping) -> &str {
    if c.label.trim().is_empty() {
        &c.property
    } else {
        &c.label
    }
}

/// The table mapping of `object`, or an error telling how to create the table.
///
/// # Errors
/// PostgreSQL failures; no table yet.
pub(crate) async fn table_mapping(
    conn: &impl hubsync_store::GenericClient,
    schema: &str,
    object: &str,
) -> anyhow::Result<TableMapping> {
    load_mapping(conn, schema, object)
        .await
        .context("cannot read the catalog")?
        .with_context(|| format!("{object} has no table yet: run `hubsync sync --once` first"))
}

/// The SQL expression exporting `c` as HubSpot's export writes it.
fn exported(c: &ColumnMapping) -> String {
    let col = quote_ident(&c.column);
    match c.column_type {
        ColumnType::TextArray => format!("array_to_string({col}, ';')"),
        ColumnType::Timestamptz => {
            format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
        }
        _ => format!("{col}::text"),
    }
}

/// Runs the command.
pub(crate) async fn run(config_path: &Path, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    if !config.objects.iter().any(|o| o.name == args.object) {
        bail!("object {} is not configured", args.object);
    }
    let store = connect(&config).await?;
    let result = export(&store, &config.postgres.schema, args).await;
    store.close();
    let rows = result?;
    if let Some(path) = &args.output {
        eprintln!("Exported {rows} {} to {}.", args.object, path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(
    store: &hubsync_store::Store,
    schema: &str,
    args: &ExportArgs,
) -> anyhow::Result<u64> {
    let mut conn = store.client().await.context("cannot reach PostgreSQL")?;
    let mapping = table_mapping(&conn, schema, &args.object).await?;
    let columns = headers(&mapping);
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![RECORD_ID.to_owned()];
    header.extend(columns.iter().map(|(h, _)| h.clone()));
    csv.write_record(&header)?;

    let table = mapping.qualified_table();
    let tx = conn.transaction().await?;
    let total: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE archived_at IS NULL"),
            &[],
        )
        .await?
        .get(0);
    let progress = progress_bar(total.unsigned_abs());
    let select: Vec<String> = std::iter::once("hs_object_id::text".to_owned())
        .chain(columns.iter().map(|(_, c)| exported(c)))
        .collect();
    tx.batch_execute(&format!(
        "DECLARE export_rows NO SCROLL CURSOR FOR SELECT {} FROM {table} \
         WHERE archived_at IS NULL ORDER BY hs_object_id NULLS LAST, hubsync_row_id",
        select.join(", ")
    ))
    .await
    .context("cannot read the table")?;
    let mut written = 0u64;
    loop {
        let rows = tx
            .query(&format!("FETCH {FETCH_ROWS} FROM export_rows"), &[])
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let record: Vec<String> = (0..select.len())
                .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
                .collect();
            csv.write_record(&record)?;
        }
        written += rows.len() as u64;
        progress.set_position(written);
    }
    tx.commit().await?;
    csv.flush()?;
    progress.finish_and_clear();
    Ok(written)
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
pub(crate) fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}
