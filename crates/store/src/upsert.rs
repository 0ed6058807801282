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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::{
    catalog::ID_PROPERTY,
    error::{Context as _, StoreError},
    naming::quote_ident,
    schema::{ColumnMapping, TableMapping},
    state::issues::NewIssue,
    values::{ValueIssue, to_sql_text},
};

/// Rows per statement: large enough to amortise round trips, small enough to keep
/// statements and locks short (stack.md measured 1,000–10,000 as the sweet spot).
pub const UPSERT_BATCH_ROWS: usize = 2_000;

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
    crate::origin::tag_transaction(client).await?;
    let (rows, duplicates) = newest_per_id(rows);
    let mut report = UpsertReport {
        skipped_stale: duplicates,
        ..UpsertReport::default()
    };
    for group in group_by_property_set(&rows).into_values() {
        for chunk in group.chunks(UPSERT_BATCH_ROWS) {
            report.absorb(upsert_batch(client, mapping, chunk).await?);
        }
    }
    Ok(report)
}

/// Keeps the newest copy of each record (the later one on equal `updated_at`), in input
/// order; returns how many were dropped.
fn newest_per_id(rows: &[RecordRow]) -> (Vec<&RecordRow>, u64) {
    let mut best: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        best.entry(row.hs_object_id)
            .and_modify(|b| {
                if rows[*b].updated_at <= row.updated_at {
                    *b = i;
                }
            })
            .or_insert(i);
    }
    let kept: Vec<&RecordRow> = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| best.get(&r.hs_object_id) == Some(i))
        .map(|(_, r)| r)
        .collect();
    let dropped = (rows.len() - kept.len()) as u64;
    (kept, dropped)
}

/// Groups rows by the set of property names they carry.
fn group_by_property_set<'a>(rows: &[&'a RecordRow]) -> BTreeMap<Vec<&'a str>, Vec<&'a RecordRow>> {
    let mut groups: BTreeMap<Vec<&str>, Vec<&RecordRow>> = BTreeMap::new();
    for row in rows {
        let keys: Vec<&str> = row.properties.keys().map(String::as_str).collect();
        groups.entry(keys).or_default().push(row);
    }
    groups
}

/// The statement's shape for one property set.
struct BatchPlan<'m> {
    /// Promoted columns written by this batch, in parameter order.
    columns: Vec<&'m ColumnMapping>,
    /// Properties of this batch that go to `custom_properties` only.
    json_only: Vec<String>,
    /// Whether `custom_properties` is written at all.
    writes_json: bool,
}

fn plan_batch<'m>(mapping: &'m TableMapping, properties: &[&str]) -> BatchPlan<'m> {
    let mut columns = Vec::new();
    let mut json_only = Vec::new();
    let mut writes_json = false;
    for name in properties {
        if *name == ID_PROPERTY {
            continue;
        }
        match mapping.column_for(name) {
            Some(column) => {
                writes_json |= column.type_changed;
                columns.push(column);
            }
            None => {
                writes_json = true;
                json_only.push((*name).to_owned());
            }
        }
    }
    BatchPlan {
        columns,
        json_only,
        writes_json,
    }
}

/// The upsert statement for a plan. Parameters: `$1` ids, `$2` created, `$3` updated,
/// `$4` archived, `$5` custom_properties (JSON text, only if written), then one `text[]`
/// per column.
fn upsert_sql(mapping: &TableMapping, plan: &BatchPlan<'_>) -> String {
    let mut insert_cols = vec![
        "hs_object_id".to_owned(),
        "hubspot_created_at".to_owned(),
        "hubspot_updated_at".to_owned(),
        "archived_at".to_owned(),
        "synced_at".to_owned(),
    ];
    let mut select = vec![
        "u.id".to_owned(),
        "u.created".to_owned(),
        "u.updated".to_owned(),
        "u.archived".to_owned(),
        "now()".to_owned(),
    ];
    let mut unnest = vec![
        "$1::int8[]".to_owned(),
        "$2::timestamptz[]".to_owned(),
        "$3::timestamptz[]".to_owned(),
        "$4::timestamptz[]".to_owned(),
    ];
    let mut aliases = vec![
        "id".to_owned(),
        "created".into(),
        "updated".into(),
        "archived".into(),
    ];
    let mut updates = vec![
        "hubspot_created_at = coalesce(excluded.hubspot_created_at, t.hubspot_created_at)"
            .to_owned(),
        "hubspot_updated_at = excluded.hubspot_updated_at".to_owned(),
        "archived_at = excluded.archived_at".to_owned(),
        "synced_at = excluded.synced_at".to_owned(),
    ];
    let mut param = 5;
    if plan.writes_json {
        insert_cols.push("custom_properties".into());
        select.push("u.cp::jsonb".into());
        unnest.push(format!("${param}::text[]"));
        aliases.push("cp".into());
        updates
            .push("custom_properties = t.custom_properties || excluded.custom_properties".into());
        param += 1;
    }
    for (i, column) in plan.columns.iter().enumerate() {
        let col = quote_ident(&column.column);
        insert_cols.push(col.clone());
        select.push(format!("u.v{i}::{}", column.column_type.sql()));
        unnest.push(format!("${param}::text[]"));
        aliases.push(format!("v{i}"));
        updates.push(format!("{col} = excluded.{col}"));
        param += 1;
    }
    format!(
        "INSERT INTO {table} AS t ({cols})
         SELECT {select} FROM unnest({unnest}) AS u({aliases})
         ON CONFLICT (hs_object_id) DO UPDATE SET {updates}
         WHERE t.merged_into IS NULL
           AND (t.hubspot_updated_at IS NULL
                OR t.hubspot_updated_at < excluded.hubspot_updated_at
                OR (t.hubspot_updated_at = excluded.hubspot_updated_at
                    AND (t.archived_at IS NULL OR excluded.archived_at IS NOT NULL)))
         RETURNING t.hs_object_id",
        table = mapping.qualified_table(),
        cols = insert_cols.join(", "),
        select = select.join(", "),
        unnest = unnest.join(", "),
        aliases = aliases.join(", "),
        updates = updates.join(", "),
    )
}

/// Upserts one batch of rows sharing one property set.
async fn upsert_batch<C: GenericClient>(
    client: &C,
    mapping: &TableMapping,
    rows: &[&RecordRow],
) -> Result<UpsertReport, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(UpsertReport::default());
    };
    let keys: Vec<&str> = first.properties.keys().map(String::as_str).collect();
    let plan = plan_batch(mapping, &keys);
    let sql = upsert_sql(mapping, &plan);

    let ids: Vec<i64> = rows.iter().map(|r| r.hs_object_id).collect();
    let created: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.created_at).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated_at).collect();
    let archived: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.archived_at).collect();
    let mut json: Vec<String> = Vec::new();
    let mut values: Vec<Vec<Option<String>>> = plan
        .columns
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    let mut issues = Vec::new();
    for row in rows {
        for (column, out) in plan.columns.iter().zip(values.iter_mut()) {
            let raw = row
                .properties
                .get(&column.property)
                .and_then(Option::as_deref);
            out.push(raw.and_then(|raw| {
                let conversion = to_sql_text(column.column_type, raw);
                if let Some(reason) = conversion.problem {
                    issues.push(ValueIssue {
                        hs_object_id: row.hs_object_id,
                        property: column.property.clone(),
                        raw: raw.to_owned(),
                        reason: reason.to_owned(),
                    });
                }
                conversion.value
            }));
        }
        if plan.writes_json {
            json.push(custom_properties_json(row, &plan));
        }
    }

    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&ids, &created, &updated, &archived];
    if plan.writes_json {
        params.push(&json);
    }
    for column in &values {
        params.push(column);
    }
    let returned = client.query(&sql, &params).await.during("upsert records")?;
    let written: BTreeSet<i64> = returned.iter().map(|r| r.get(0)).collect();
    issues.retain(|i| written.contains(&i.hs_object_id));

    let checked: Vec<&str> = plan.columns.iter().map(|c| c.property.as_str()).collect();
    if !checked.is_empty() && !written.is_empty() {
        record_issues(client, &mapping.object, &written, &checked, &issues).await?;
    }
    Ok(UpsertReport {
        written: written.len() as u64,
        skipped_stale: (rows.len() - written.len()) as u64,
        issues,
        written_ids: written,
    })
}

/// The `custom_properties` fragment of one row: unpromoted and unknown properties, and the
/// raw value of type-changed ones. NUL characters are removed (jsonb cannot hold them).
fn custom_properties_json(row: &RecordRow, plan: &BatchPlan<'_>) -> String {
    let changed = plan
        .columns
        .iter()
        .filter(|c| c.type_changed)
        .map(|c| &c.property);
    let mut object = serde_json::Map::new();
    for name in plan.json_only.iter().chain(changed) {
        let value = match row.properties.get(name).and_then(Option::as_deref) {
            Some(v) => serde_json::Value::String(v.replace('\0', "")),
            None => serde_json::Value::Null,
        };
        object.insert(name.replace('\0', ""), value);
    }
    serde_json::Value::Object(object).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::ColumnType;

    fn mapping() -> TableMapping {
        let col = |p: &str, c: &str, t: ColumnType, changed: bool| ColumnMapping {
            property: p.into(),
            column: c.into(),
            column_type: t,
            hs_type: String::new(),
            field_type: String::new(),
            label: String::new(),
            read_only: false,
            type_changed: changed,
        };
        TableMapping {
            schema: "hubspot".into(),
            object: "contacts".into(),
            table: "contacts".into(),
            columns: vec![
                col("amount", "amount", ColumnType::Numeric, false),
                col("email", "email", ColumnType::Text, false),
                col("score", "score", ColumnType::Numeric, true),
            ],
            unpromoted: ["notes".to_owned()].into(),
            primary_columns: Vec::new(),
        }
    }

    fn row(id: i64, secs: i64) -> RecordRow {
        RecordRow {
            hs_object_id: id,
            properties: BTreeMap::new(),
            created_at: None,
            updated_at: DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            archived_at: None,
        }
    }

    #[test]
    fn newest_copy_wins_within_a_batch() {
        let rows = [row(1, 10), row(2, 5), row(1, 20), row(1, 15)];
        let (kept, dropped) = newest_per_id(&rows);
        assert_eq!(dropped, 2);
        assert_eq!(kept.len(), 2);
        assert!(
            kept.iter()
                .any(|r| r.hs_object_id == 1 && r.updated_at.timestamp() == 20)
        );
    }

    #[test]
    fn plan_routes_properties() {
        let m = mapping();
        let plan = plan_batch(&m, &["amount", "hs_object_id", "notes", "unknown"]);
        assert_eq!(plan.columns.len(), 1);
        assert_eq!(
            plan.json_only,
            vec!["notes".to_owned(), "unknown".to_owned()]
        );
        assert!(plan.writes_json);
        let plan = plan_batch(&m, &["email"]);
        assert!(!plan.writes_json);
        let plan = plan_batch(&m, &["score"]);
        assert!(
            plan.writes_json,
            "type-changed columns keep their raw value"
        );
    }

    #[test]
    fn sql_casts_and_guards() {
        let m = mapping();
        let plan = plan_batch(&m, &["amount", "notes"]);
        let sql = upsert_sql(&m, &plan);
        assert!(sql.contains("u.v0::NUMERIC"));
        assert!(sql.contains("$5::text[]") && sql.contains("$6::text[]"));
        assert!(sql.contains("ON CONFLICT (hs_object_id)"));
        assert!(sql.contains("t.hubspot_updated_at < excluded.hubspot_updated_at"));
        assert!(sql.contains("t.merged_into IS NULL"));
    }

    #[test]
    fn custom_properties_keep_nulls_and_drop_nul_bytes() {
        let m = mapping();
        let plan = plan_batch(&m, &["notes", "score"]);
        let mut r = row(1, 1);
        r.properties.insert("notes".into(), Some("a\0b".into()));
        r.properties.insert("score".into(), None);
        let json = custom_properties_json(&r, &plan);
        assert_eq!(json, r#"{"notes":"ab","score":null}"#);
    }
}
