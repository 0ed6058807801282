//! Rows turned into upsert statements and their parameters, without touching PostgreSQL:
//! deduplication (newest copy per id), grouping by property set, value conversion and the
//! SQL text. It is pure CPU work, so a caller can prepare the next batch while the previous
//! one is being written ([`super::write_prepared`] runs the statements).
//!
//! Parameters are typed arrays: ids, times, dates and booleans travel in PostgreSQL's binary
//! form (no text formatting here, no text parsing in the server); numbers, text and
//! multi-selects as `text[]` cast in SQL. New rows get a time-ordered (v7) UUID as
//! `hubsync_row_id`, so primary-key inserts append to the index instead of landing on
//! random pages; an existing row keeps its id.

use std::collections::{BTreeMap, HashMap};

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, Utc};
use postgres_protocol::types::{ArrayDimension, array_to_sql, text_to_sql};
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use super::{RecordRow, UPSERT_BATCH_ROWS};
use crate::{
    catalog::ID_PROPERTY,
    naming::quote_ident,
    schema::{ColumnMapping, TableMapping},
    values::{ColumnType, SqlParam, ValueIssue, to_sql_param},
};

/// Rows ready to upsert: one [`PreparedStatement`] per property set and chunk.
#[derive(Debug, Default)]
pub struct PreparedRows {
    /// The statements, in a deterministic order.
    pub(super) statements: Vec<PreparedStatement>,
    /// Input rows dropped because the same input had a newer copy of the record.
    pub(super) duplicates: u64,
}

impl PreparedRows {
    /// Prepares `rows` for the table of `mapping`: the newest copy of each record, grouped
    /// by property set into statements of at most [`UPSERT_BATCH_ROWS`] rows.
    pub fn new(mapping: &TableMapping, rows: &[RecordRow]) -> Self {
        let (rows, duplicates) = newest_per_id(rows);
        let statements = group_by_property_set(&rows)
            .into_iter()
            .flat_map(|(keys, group)| {
                let plan = plan_batch(mapping, &keys);
                let sql = upsert_sql(mapping, &plan);
                group
                    .chunks(UPSERT_BATCH_ROWS)
                    .map(|chunk| PreparedStatement::new(&plan, sql.clone(), chunk))
                    .collect::<Vec<_>>()
            })
            .collect();
        Self {
            statements,
            duplicates,
        }
    }

    /// How many rows the statements write.
    pub fn len(&self) -> usize {
        self.statements.iter().map(|s| s.ids.len()).sum()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }
}

/// One upsert statement and its parameters.
#[derive(Debug)]
pub(super) struct PreparedStatement {
    /// The statement (the same text for every batch with the same property set, so the
    /// server-side prepared statement is reused).
    pub(super) sql: String,
    /// Properties whose values were checked (their old issues are cleared on write).
    pub(super) checked: Vec<String>,
    pub(super) ids: Vec<i64>,
    row_ids: Vec<Uuid>,
    created: Vec<Option<DateTime<Utc>>>,
    updated: Vec<DateTime<Utc>>,
    archived: Vec<Option<DateTime<Utc>>>,
    json: Option<Vec<String>>,
    columns: Vec<ColumnValues>,
    /// Values that did not fit their column (kept only for rows the server writes).
    pub(super) issues: Vec<ValueIssue>,
}

impl PreparedStatement {
    fn new(plan: &BatchPlan<'_>, sql: String, rows: &[&RecordRow]) -> Self {
        let mut columns: Vec<ColumnValues> = plan
            .columns
            .iter()
            .map(|c| ColumnValues::new(c.column_type, rows.len()))
            .collect();
        let mut issues = Vec::new();
        for row in rows {
            for (column, out) in plan.columns.iter().zip(columns.iter_mut()) {
                let raw = row
                    .properties
                    .get(&column.property)
                    .and_then(Option::as_deref);
                if let Some(reason) = out.push(column.column_type, raw) {
                    issues.push(ValueIssue {
                        hs_object_id: row.hs_object_id,
                        property: column.property.clone(),
                        raw: raw.unwrap_or_default().to_owned(),
                        reason: reason.to_owned(),
                    });
                }
            }
        }
        Self {
            sql,
            checked: plan.columns.iter().map(|c| c.property.clone()).collect(),
            ids: rows.iter().map(|r| r.hs_object_id).collect(),
            row_ids: rows.iter().map(|_| Uuid::now_v7()).collect(),
            created: rows.iter().map(|r| r.created_at).collect(),
            updated: rows.iter().map(|r| r.updated_at).collect(),
            archived: rows.iter().map(|r| r.archived_at).collect(),
            json: plan.writes_json.then(|| {
                rows.iter()
                    .map(|r| custom_properties_json(r, plan))
                    .collect()
            }),
            columns,
            issues,
        }
    }

    /// The parameters in [`upsert_sql`]'s order.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.ids,
            &self.created,
            &self.updated,
            &self.archived,
            &self.row_ids,
        ];
        if let Some(json) = &self.json {
            params.push(json);
        }
        params.extend(self.columns.iter().map(ColumnValues::param));
        params
    }
}

/// One column's values for a statement, in the array type it is bound as.
#[derive(Debug)]
enum ColumnValues {
    /// `text[]`, cast in SQL.
    Text(TextColumn),
    /// `timestamptz[]`.
    Timestamps(Vec<Option<DateTime<Utc>>>),
    /// `date[]`.
    Dates(Vec<Option<NaiveDate>>),
    /// `bool[]`.
    Booleans(Vec<Option<bool>>),
}

impl ColumnValues {
    fn new(ty: ColumnType, capacity: usize) -> Self {
        match ty {
            ColumnType::Timestamptz => Self::Timestamps(Vec::with_capacity(capacity)),
            ColumnType::Date => Self::Dates(Vec::with_capacity(capacity)),
            ColumnType::Boolean => Self::Booleans(Vec::with_capacity(capacity)),
            ColumnType::Text | ColumnType::Numeric | ColumnType::TextArray => {
                Self::Text(TextColumn::with_capacity(capacity))
            }
        }
    }

    /// The array type a column of type `ty` is bound as.
    fn bind_type(ty: ColumnType) -> &'static str {
        match ty {
            ColumnType::Timestamptz => "timestamptz[]",
            ColumnType::Date => "date[]",
            ColumnType::Boolean => "bool[]",
            ColumnType::Text | ColumnType::Numeric | ColumnType::TextArray => "text[]",
        }
    }

    /// Converts and appends one value; returns the problem, if any.
    fn push(&mut self, ty: ColumnType, raw: Option<&str>) -> Option<&'static str> {
        if let (Self::Text(v), ColumnType::Text, Some(raw)) = (&mut *self, ty, raw)
            && !raw.contains('\0')
        {
            // What to_sql_param gives plain text without NULs, without its copy.
            v.push((!raw.is_empty()).then_some(raw));
            return None;
        }
        let conversion = raw.map(|raw| to_sql_param(ty, raw));
        let (value, problem) = match conversion {
            Some(c) => (c.value, c.problem),
            None => (None, None),
        };
        match (self, value) {
            (Self::Text(v), Some(SqlParam::Text(s))) => v.push(Some(&s)),
            (Self::Timestamps(v), Some(SqlParam::Timestamp(t))) => v.push(Some(t)),
            (Self::Dates(v), Some(SqlParam::Date(d))) => v.push(Some(d)),
            (Self::Booleans(v), Some(SqlParam::Boolean(b))) => v.push(Some(b)),
            (column, _) => column.push_null(),
        }
        problem
    }

    fn push_null(&mut self) {
        match self {
            Self::Text(v) => v.push(None),
            Self::Timestamps(v) => v.push(None),
            Self::Dates(v) => v.push(None),
            Self::Booleans(v) => v.push(None),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(v) => v,
            Self::Timestamps(v) => v,
            Self::Dates(v) => v,
            Self::Booleans(v) => v,
        }
    }
}

/// A `text[]` parameter held as one string and the spans of its elements: two allocations
/// a column instead of one a value (a batch is mostly text values), encoded straight into
/// PostgreSQL's binary array form when the statement runs.
#[derive(Debug, Default)]
pub(super) struct TextColumn {
    text: String,
    /// Each element's byte range in `text`, `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
}

impl TextColumn {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            text: String::with_capacity(capacity * 16),
            spans: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, value: Option<&str>) {
        self.spans.push(value.map(|v| {
            let start = self.text.len();
            self.text.push_str(v);
            (start, self.text.len())
        }));
    }

    /// The elements, in order.
    fn values(&self) -> impl Iterator<Item = Option<&str>> {
        self.spans
            .iter()
            .map(|span| span.map(|(a, b)| &self.text[a..b]))
    }
}

impl ToSql for TextColumn {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let Kind::Array(element) = ty.kind() else {
            return Err(format!("a text column cannot be sent as {ty}").into());
        };
        let dimension = ArrayDimension {
            len: i32::try_from(self.spans.len())?,
            lower_bound: 1,
        };
        array_to_sql(
            [dimension],
            element.oid(),
            self.values(),
            |value, out| match value {
                Some(v) => {
                    text_to_sql(v, out);
                    Ok(postgres_protocol::IsNull::No)
                }
                None => Ok(postgres_protocol::IsNull::Yes),
            },
            out,
        )?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(element) if <&str as ToSql>::accepts(element))
    }

    to_sql_checked!();
}

/// Keeps the newest copy of each record (the later one on equal `updated_at`), in input
/// order; returns how many were dropped.
pub(super) fn newest_per_id(rows: &[RecordRow]) -> (Vec<&RecordRow>, u64) {
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

/// Groups rows by the set of property names they carry, groups ordered by that set.
/// Consecutive rows usually share their set, so each row is first compared with the group
/// of the row before it.
fn group_by_property_set<'a>(rows: &[&'a RecordRow]) -> BTreeMap<Vec<&'a str>, Vec<&'a RecordRow>> {
    let mut groups: BTreeMap<Vec<&str>, Vec<&RecordRow>> = BTreeMap::new();
    let mut run: Option<(Vec<&str>, Vec<&RecordRow>)> = None;
    for row in rows {
        match &mut run {
            Some((keys, members))
                if row
                    .properties
                    .keys()
                    .map(String::as_str)
                    .eq(keys.iter().copied()) =>
            {
                members.push(row);
            }
            _ => {
                if let Some((keys, members)) = run.take() {
                    groups.entry(keys).or_default().extend(members);
                }
                let keys = row.properties.keys().map(String::as_str).collect();
                run = Some((keys, vec![*row]));
            }
        }
    }
    if let Some((keys, members)) = run {
        groups.entry(keys).or_default().extend(members);
    }
    groups
}

/// The statement's shape for one property set.
pub(super) struct BatchPlan<'m> {
    /// Promoted columns written by this batch, in parameter order.
    pub(super) columns: Vec<&'m ColumnMapping>,
    /// Properties of this batch that go to `custom_properties` only.
    pub(super) json_only: Vec<String>,
    /// Whether `custom_properties` is written at all.
    pub(super) writes_json: bool,
}

pub(super) fn plan_batch<'m>(mapping: &'m TableMapping, properties: &[&str]) -> BatchPlan<'m> {
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
/// `$4` archived, `$5` row ids for new rows, `$6` custom_properties (JSON text, only if
/// written), then one array per column.
pub(super) fn upsert_sql(mapping: &TableMapping, plan: &BatchPlan<'_>) -> String {
    let mut insert_cols = vec![
        "hs_object_id".to_owned(),
        "hubspot_created_at".to_owned(),
        "hubspot_updated_at".to_owned(),
        "archived_at".to_owned(),
        "hubsync_row_id".to_owned(),
        "synced_at".to_owned(),
    ];
    let mut select = vec![
        "u.id".to_owned(),
        "u.created".to_owned(),
        "u.updated".to_owned(),
        "u.archived".to_owned(),
        "u.rid".to_owned(),
        "now()".to_owned(),
    ];
    let mut unnest = vec![
        "$1::int8[]".to_owned(),
        "$2::timestamptz[]".to_owned(),
        "$3::timestamptz[]".to_owned(),
        "$4::timestamptz[]".to_owned(),
        "$5::uuid[]".to_owned(),
    ];
    let mut aliases = vec![
        "id".to_owned(),
        "created".into(),
        "updated".into(),
        "archived".into(),
        "rid".into(),
    ];
    let mut updates = vec![
        "hubspot_created_at = coalesce(excluded.hubspot_created_at, t.hubspot_created_at)"
            .to_owned(),
        "hubspot_updated_at = excluded.hubspot_updated_at".to_owned(),
        "archived_at = excluded.archived_at".to_owned(),
        "synced_at = excluded.synced_at".to_owned(),
    ];
    let mut param = 6;
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
        unnest.push(format!(
            "${param}::{}",
            ColumnValues::bind_type(column.column_type)
        ));
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

/// The `custom_properties` fragment of one row: unpromoted and unknown properties, and the
/// raw value of type-changed ones. NUL characters are removed (jsonb cannot hold them).
pub(super) fn custom_properties_json(row: &RecordRow, plan: &BatchPlan<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
                col("seen", "seen", ColumnType::Timestamptz, false),
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
    fn groups_follow_property_sets_whatever_the_order() {
        let with = |id: i64, names: &[&str]| {
            let mut r = row(id, 1);
            for n in names {
                r.properties.insert((*n).to_owned(), None);
            }
            r
        };
        let rows = [
            with(1, &["a"]),
            with(2, &["a", "b"]),
            with(3, &["a"]),
            with(4, &["a"]),
            with(5, &["a", "b"]),
        ];
        let refs: Vec<&RecordRow> = rows.iter().collect();
        let groups = group_by_property_set(&refs);
        let ids: Vec<Vec<i64>> = groups
            .values()
            .map(|g| g.iter().map(|r| r.hs_object_id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3, 4], vec![2, 5]]);
        assert_eq!(PreparedRows::new(&mapping(), &rows).len(), 5);
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
        assert!(
            sql.contains("$5::uuid[]"),
            "new rows get their row id from hubsync"
        );
        assert!(sql.contains("$6::text[]") && sql.contains("$7::text[]"));
        let plan = plan_batch(&m, &["seen"]);
        assert!(
            upsert_sql(&m, &plan).contains("$6::timestamptz[]"),
            "times bind binary"
        );
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
