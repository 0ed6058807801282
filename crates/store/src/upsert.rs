//! Batch upserts of HubSpot records into a mapped table.
//!
//! One statement per batch: every column travels as one `text[]` parameter and is cast in
//! SQL (`INSERT … SELECT … FROM unnest($1::int8[], …, $n::text[])`), which measured as fast
//! as typed arrays and keeps one code path for any property set (stack.md §3).
//!
//! * **Never backwards in time.** `ON CONFLICT (hs_object_id) DO UPDATE … WHERE` the stored
//!   `hubspot_updated_at` is older than the incoming one (or equal, when the incoming copy
//!   does not resurrect an archived row). Merge losers (`merged_into` set) are never
//!   overwritten. Skipped rows are counted in [`UpsertReport::skipped_stale`].
//! * **Partial records.** Only properties present in a [`RecordRow`] are written; a property
//!   absent from the map keeps its stored value, a property present with `None` is cleared.
//!   Rows are grouped by their property set so that each statement has one column list.
//! * **custom_properties** receives unpromoted properties, properties the mapping does not
//!   know, and the raw value of properties whose HubSpot type changed; it is merged into
//!   the stored object (`||`); HubSpot's null is kept as JSON `null` (the property exists
//!   and is empty), like HubSpot's own record JSON.
//! * **Bad values** become NULL plus a [`ValueIssue`]; the issue is upserted into
//!   `hubsync.issues` and deleted again when a good value arrives for that property.
//!
//! Run these writes in hubsync's tagged transaction ([`crate::tagged_transaction`]) so that
//! capture triggers do not send them back to HubSpot.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

mod prepared;

pub use prepared::PreparedRows;
use prepared::PreparedStatement;

use crate::{
    error::{Context as _, StoreError},
    schema::TableMapping,
    state::issues::NewIssue,
    values::ValueIssue,
};

/// Rows per statement: large enough to amortise round trips, small enough to keep
/// statements and locks short (stack.md measured 1,000–10,000 as the sweet spot).
pub const UPSERT_BATCH_ROWS: usize = 2_500;

/// One HubSpot record to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// HubSpot's id.
    pub hs_object_id: i64,
    /// Property name → HubSpot string value (`None` = HubSpot's null). Properties not in
    /// the map are left as they are.
    pub properties: BTreeMap<String, Option<String>>,
    /// HubSpot's `createdAt`.
    pub created_at: Option<DateTime<Utc>>,
    /// HubSpot's `updatedAt`: the version that orders writes.
    pub updated_at: DateTime<Utc>,
    /// HubSpot's `archivedAt` (`None` for a live record: storing it un-archives the row).
    pub archived_at: Option<DateTime<Utc>>,
}

/// What an upsert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertReport {
    /// Rows inserted or updated.
    pub written: u64,
    /// Rows not written because the table already had a newer (or equal and archived, or
    /// merged) version, or because the same batch had a newer copy of the record.
    pub skipped_stale: u64,
    /// Values that did not fit their column, for rows that were written.
    pub issues: Vec<ValueIssue>,
    /// Ids of the rows inserted or updated (for the audit log).
    pub written_ids: BTreeSet<i64>,
}

impl UpsertReport {
    fn absorb(&mut self, other: Self) {
        self.written += other.written;
        self.skipped_stale += other.skipped_stale;
        self.issues.extend(other.issues);
        self.written_ids.extend(other.written_ids);
    }
}

/// Upserts `rows` into the table of `mapping`, in batches of [`UPSERT_BATCH_ROWS`].
///
/// Tags the transaction as hubsync's own: call it inside a transaction so the capture
/// triggers skip these writes.
///
/// # Errors
/// [`StoreError::Postgres`] if a statement fails (the caller's transaction is then aborted;
/// retry the batch). Bad values never fail the call.
pub async fn upsert_records<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    rows: &[RecordRow],
) -> Result<UpsertReport, StoreError> {
    write_prepared(client, mapping, PreparedRows::new(mapping, rows)).await
}

/// Runs the statements of rows prepared with [`PreparedRows::new`] for the same `mapping`
/// (as [`upsert_records`] does; preparing is CPU work that can overlap an earlier write).
///
/// Tags the transaction as hubsync's own.
///
/// # Errors
/// As [`upsert_records`].
pub async fn write_prepared<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    prepared: PreparedRows,
) -> Result<UpsertReport, StoreError> {
    crate::origin::tag_transaction(client).await?;
    let mut report = UpsertReport {
        skipped_stale: prepared.duplicates,
        ..UpsertReport::default()
    };
    for statement in prepared.statements {
        report.absorb(run_statement(client, mapping, statement).await?);
    }
    Ok(report)
}

/// Runs one prepared upsert statement, then records its value issues.
async fn run_statement<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    statement: PreparedStatement,
) -> Result<UpsertReport, StoreError> {
    let prepared = client
        .prepare_cached(&statement.sql)
        .await
        .during("prepare upsert")?;
    let returned = client
        .query(&prepared, &statement.params())
        .await
        .during("upsert records")?;
    let written: BTreeSet<i64> = returned.iter().map(|r| r.get(0)).collect();
    let mut issues = statement.issues;
    issues.retain(|i| written.contains(&i.hs_object_id));

    let checked: Vec<&str> = statement.checked.iter().map(String::as_str).collect();
    if !checked.is_empty() && !written.is_empty() {
        record_issues(client, &mapping.object, &written, &checked, &issues).await?;
    }
    Ok(UpsertReport {
        written: written.len() as u64,
        skipped_stale: (statement.ids.len() - written.len()) as u64,
        issues,
        written_ids: written,
    })
}

/// Replaces the issues of the written records for the checked properties: issues that are
/// gone are deleted, new or repeated ones upserted.
async fn record_issues<C: GenericClient>(
    client: &C,
    object: &str,
    written: &BTreeSet<i64>,
    checked: &[&str],
    issues: &[ValueIssue],
) -> Result<(), StoreError> {
    let written: Vec<i64> = written.iter().copied().collect();
    let issue_ids: Vec<i64> = issues.iter().map(|i| i.hs_object_id).collect();
    let issue_props: Vec<&str> = issues.iter().map(|i| i.property.as_str()).collect();
    client
        .execute(
            "DELETE FROM hubsync.issues i
              WHERE i.object = $1 AND i.hs_object_id = ANY($2) AND i.property = ANY($3)
                AND NOT EXISTS (SELECT 1 FROM unnest($4::int8[], $5::text[]) AS n(id, p)
                                 WHERE n.id = i.hs_object_id AND n.p = i.property)",
            &[&object, &written, &checked, &issue_ids, &issue_props],
        )
        .await
        .during("clear resolved value issues")?;
    let new: Vec<NewIssue> = issues
        .iter()
        .map(|i| NewIssue {
            object: object.to_owned(),
            hs_object_id: i.hs_object_id,
            property: i.property.clone(),
            raw_value: Some(i.raw.replace('\0', "")),
            reason: i.reason.clone(),
        })
        .collect();
    crate::state::issues::upsert(client, &new).await?;
    Ok(())
}
