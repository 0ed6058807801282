//! Creating and evolving object tables online, recorded in the `hubsync.catalog_*` tables.
//!
//! [`ensure_table`] is called at the start of every pass with HubSpot's current property
//! definitions. It creates the schema and table on first use and afterwards only ever
//! **adds**: a property added in HubSpot becomes a nullable column (`ADD COLUMN` without a
//! default is a catalog-only change: no rewrite, no reload, rows stay). All DDL for all
//! tables is serialised by one transaction-scoped advisory lock and runs with a short
//! `lock_timeout`, so a busy table makes the pass fail and retry rather than queue every
//! reader behind an `ACCESS EXCLUSIVE` lock.
//!
//! **Type changes.** When HubSpot changes a property's type so that it maps to another column
//! type, the column keeps its type (users' queries and views keep working), a warning is
//! logged, the catalog records `type_changed_at`, and from then on each value is converted
//! for the column's type where it fits (an issue and NULL where it does not) **and** kept raw
//! in `custom_properties`, so nothing is lost. To switch the column to the new type, drop the
//! column: the next pass re-creates it with the new type (and the raw values in
//! `custom_properties` allow a backfill by SQL).
//!
//! Columns whose property left the sync (deleted in HubSpot, removed from the configured
//! list) are kept with their data; they are simply not written any more.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deadpool_postgres::GenericClient;

use crate::{
    error::{Context as _, StoreError},
    naming::{self, SYSTEM_COLUMNS, qualified},
    schema::{
        ColumnMapping, ObjectSpec, PrimaryColumn, TableMapping, add_column_sql, column_comment_sql,
        create_table_sql, index_name, index_sql, table_comment_sql,
    },
    values::ColumnType,
};

/// Advisory lock key serialising hubsync's DDL (arbitrary, fixed).
const DDL_LOCK_KEY: i64 = 0x6875_6273_796e_6301;

/// Kind of catalog row for a property column.
const KIND_PROPERTY: &str = "property";

/// Kind of catalog row for a primary association column.
const KIND_PRIMARY: &str = "primary_association";

/// The property that is the record id itself (stored in `hs_object_id`, never a column).
pub const ID_PROPERTY: &str = "hs_object_id";

/// One row of `hubsync.catalog_columns`.
#[derive(Debug, Clone)]
struct CatalogColumn {
    kind: String,
    property: String,
    column: Option<String>,
    hs_type: Option<String>,
    field_type: Option<String>,
    label: Option<String>,
    read_only: bool,
    pg_type: Option<String>,
    promoted: bool,
    type_changed: bool,
}

/// Creates or evolves the table for `spec` in `schema` and returns its mapping.
///
/// Runs in its own transaction on `client` (a savepoint when `client` is a transaction). Idempotent: calling it again with the same spec
/// changes nothing; with new properties it adds their columns.
///
/// # Errors
/// [`StoreError::Postgres`] when a statement fails (for example `lock_timeout` on a busy
/// table: retryable), [`StoreError::Invalid`] for an empty object name.
pub async fn ensure_table<C: GenericClient>(
    client: &mut C,
    schema: &str,
    spec: &ObjectSpec,
) -> Result<TableMapping, StoreError> {
    if spec.name.is_empty() || schema.is_empty() {
        return Err(StoreError::Invalid(
            "object and schema names must not be empty".into(),
        ));
    }
    let tx = client
        .transaction()
        .await
        .during("begin a DDL transaction")?;
    lock_ddl(&tx).await?;
    let table = ensure_table_row(&tx, schema, &spec.name).await?;
    let mut catalog = load_catalog(&tx, schema, &spec.name).await?;
    let mut existing = existing_columns(&tx, schema, &table).await?;
    let mut taken: BTreeSet<String> = catalog.values().filter_map(|c| c.column.clone()).collect();
    taken.extend(existing.keys().cloned());
    taken.extend(SYSTEM_COLUMNS.iter().map(|s| (*s).to_owned()));

    let mut seen = BTreeSet::new();
    for prop in &spec.properties {
        if prop.name == ID_PROPERTY || !seen.insert(prop.name.clone()) {
            continue;
        }
        let key = (KIND_PROPERTY.to_owned(), prop.name.clone());
        let mut row = catalog.remove(&key).unwrap_or_else(|| CatalogColumn {
            kind: KIND_PROPERTY.to_owned(),
            property: prop.name.clone(),
            column: None,
            hs_type: None,
            field_type: None,
            label: None,
            read_only: false,
            pg_type: None,
            promoted: false,
            type_changed: false,
        });
        let wanted = prop.column_type();
        row.promoted = spec.promoted.promotes(&prop.name);
        if row.promoted {
            let column = match &row.column {
                Some(c) => c.clone(),
                None => {
                    let c = naming::unique_identifier(&prop.name, &|c| taken.contains(c));
                    taken.insert(c.clone());
                    row.column = Some(c.clone());
                    c
                }
            };
            let actual = match existing.get(&column) {
                Some(actual) => actual.clone(),
                None => {
                    tx.batch_execute(&add_column_sql(schema, &table, &column, wanted.sql()))
                        .await
                        .during("add a property column")?;
                    existing.insert(column.clone(), wanted.sql().to_owned());
                    wanted.sql().to_owned()
                }
            };
            let changed = actual != wanted.sql();
            if changed && !row.type_changed {
                tracing::warn!(
                    object = %spec.name,
                    property = %prop.name,
                    column_type = %actual,
                    hubspot_type = %prop.hs_type,
                    field_type = %prop.field_type,
                    "HubSpot changed a property's type; the column keeps its type and raw values \
                     are also kept in custom_properties"
                );
            }
            row.type_changed = changed;
            if row.label.as_deref() != Some(prop.label.as_str()) || row.pg_type.is_none() {
                let comment = column_comment(&prop.label, &prop.name, &column);
                tx.batch_execute(&column_comment_sql(schema, &table, &column, &comment))
                    .await
                    .during("comment a property column")?;
            }
            row.pg_type = Some(actual);
        }
        row.hs_type = Some(prop.hs_type.clone());
        row.field_type = Some(prop.field_type.clone());
        row.label = Some(prop.label.clone());
        row.read_only = prop.read_only;
        save_catalog_row(&tx, schema, &spec.name, &row).await?;
        catalog.insert(key, row);
    }

    for target in &spec.primary_associations {
        let key = (KIND_PRIMARY.to_owned(), target.clone());
        if catalog.get(&key).and_then(|r| r.column.as_ref()).is_some() {
            continue;
        }
        let wanted = format!("{}_id", naming::singular(target));
        let column = naming::unique_identifier(&wanted, &|c| taken.contains(c));
        taken.insert(column.clone());
        for sql in [
            add_column_sql(schema, &table, &column, "BIGINT"),
            column_comment_sql(
                schema,
                &table,
                &column,
                &format!(
                    "HubSpot id of the primary associated {}",
                    naming::singular(target)
                ),
            ),
            index_sql(schema, &table, &column),
        ] {
            tx.batch_execute(&sql)
                .await
                .during("add a primary association column")?;
        }
        let row = CatalogColumn {
            kind: KIND_PRIMARY.to_owned(),
            property: target.clone(),
            column: Some(column),
            hs_type: None,
            field_type: None,
            label: None,
            read_only: false,
            pg_type: Some("BIGINT".to_owned()),
            promoted: true,
            type_changed: false,
        };
        save_catalog_row(&tx, schema, &spec.name, &row).await?;
        catalog.insert(key, row);
    }

    let wanted: BTreeSet<&str> = spec.properties.iter().map(|p| p.name.as_str()).collect();
    let mapping = build_mapping(schema, &spec.name, &table, catalog.values(), Some(&wanted))?;
    tx.commit().await.during("commit DDL")?;
    Ok(mapping)
}

/// The mapping of an object as recorded in the catalog (every property ever synced), or
/// `None` if the object has no table yet.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed query, [`StoreError::Corrupt`] on an unknown
/// column type in the catalog.
pub async fn load_mapping<C: GenericClient>(
    client: &C,
    schema: &str,
    object: &str,
) -> Result<Option<TableMapping>, StoreError> {
    let Some(table) = table_name(client, schema, object).await? else {
        return Ok(None);
    };
    let catalog = load_catalog(client, schema, object).await?;
    build_mapping(schema, object, &table, catalog.values(), None).map(Some)
}

/// Every object mapped in `schema` (object name → table mapping).
///
/// # Errors
/// As [`load_mapping`].
pub async fn load_all_mappings<C: GenericClient>(
    client: &C,
    schema: &str,
) -> Result<Vec<TableMapping>, StoreError> {
    let rows = client
        .query(
            "SELECT object_name FROM hubsync.catalog_tables WHERE schema_name = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .during("read the catalog")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let object: String = row.get(0);
        if let Some(m) = load_mapping(client, schema, &object).await? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Takes the DDL advisory lock for the rest of the transaction and bounds lock waits.
pub(crate) async fn lock_ddl<C: GenericClient>(tx: &C) -> Result<(), StoreError> {
    tx.batch_execute("SET LOCAL lock_timeout = '10s'")
        .await
        .during("set lock_timeout")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DDL_LOCK_KEY])
        .await
        .during("take the DDL lock")?;
    Ok(())
}

/// Whether every relation in `names` exists in `schema`. Asked before any `CREATE … IF NOT
/// EXISTS` on a table that may exist: `CREATE INDEX` locks the table before it checks the
/// name, so it would wait behind every open write to the table (an application's
/// transaction, autovacuum after a backfill) and queue new writes behind itself.
///
/// # Errors
/// Database errors.
pub(crate) async fn relations_exist<C: GenericClient>(
    client: &C,
    schema: &str,
    names: &[&str],
) -> Result<bool, StoreError> {
    let qualified: Vec<String> = names.iter().map(|n| qualified(schema, n)).collect();
    let row = client
        .query_one(
            "SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest($1::text[]) AS n",
            &[&qualified],
        )
        .await
        .during("look up relations")?;
    Ok(row.get::<_, Option<bool>>(0).unwrap_or(true))
}

/// Table names already used in `schema` by objects or junction tables, plus existing
/// relations (a user's own table is never adopted).
pub(crate) async fn taken_table_names<C: GenericClient>(
    client: &C,
    schema: &str,
) -> Result<BTreeSet<String>, StoreError> {
    let rows = client
        .query(
            "SELECT table_name FROM hubsync.catalog_tables WHERE schema_name = $1
             UNION SELECT table_name FROM hubsync.catalog_associations WHERE schema_name = $1
             UNION SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = $1",
            &[&schema],
        )
        .await
        .during("read used table names")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn table_name<C: GenericClient>(
    client: &C,
    schema: &str,
    object: &str,
) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            "SELECT table_name FROM hubsync.catalog_tables WHERE schema_name = $1 AND object_name = $2",
            &[&schema, &object],
        )
        .await
        .during("read the catalog")?;
    Ok(row.map(|r| r.get(0)))
}

/// The object's table name, creating schema, table, catalog row and index on first use.
async fn ensure_table_row<C: GenericClient>(
    tx: &C,
    schema: &str,
    object: &str,
) -> Result<String, StoreError> {
    if let Some(table) = table_name(tx, schema, object).await? {
        // Re-creates a table (or its index) a user dropped.
        let index = index_name(&table, "hubspot_updated_at");
        if !relations_exist(tx, schema, &[&table, &index]).await? {
            for sql in [
                create_table_sql(schema, &table),
                index_sql(schema, &table, "hubspot_updated_at"),
            ] {
                tx.batch_execute(&sql)
                    .await
                    .during("re-create a dropped object table")?;
            }
        }
        return Ok(table);
    }
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        naming::quote_ident(schema)
    ))
    .await
    .during("create the synced schema")?;
    let taken = taken_table_names(tx, schema).await?;
    let table = naming::unique_identifier(object, &|t| taken.contains(t));
    tx.execute(
        "INSERT INTO hubsync.catalog_tables (schema_name, object_name, table_name) VALUES ($1, $2, $3)",
        &[&schema, &object, &table],
    )
    .await
    .during("record a table in the catalog")?;
    let comment = format!("HubSpot object \"{object}\", synced by hubsync");
    for sql in [
        create_table_sql(schema, &table),
        table_comment_sql(schema, &table, &comment),
        index_sql(schema, &table, "hubspot_updated_at"),
    ] {
        tx.batch_execute(&sql)
            .await
            .during("create an object table")?;
    }
    Ok(table)
}

/// Columns that exist in the table: name → SQL type as [`ColumnType::sql`] spells it (other
/// types as `format_type` prints them).
async fn existing_columns<C: GenericClient>(
    client: &C,
    schema: &str,
    table: &str,
) -> Result<HashMap<String, String>, StoreError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
               FROM pg_attribute a
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&qualified(schema, table)],
        )
        .await
        .during("read a table's columns")?;
    Ok(rows
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let ty: String = r.get(1);
            (name, pg_type_label(&ty))
        })
        .collect())
}

/// `format_type` output → the spelling used in the catalog.
fn pg_type_label(format_type: &str) -> String {
    match format_type {
        "text" => "TEXT",
        "numeric" => "NUMERIC",
        "date" => "DATE",
        "timestamp with time zone" => "TIMESTAMPTZ",
        "text[]" => "TEXT[]",
        "boolean" => "BOOLEAN",
        "bigint" => "BIGINT",
        other => other,
    }
    .to_owned()
}

async fn load_catalog<C: GenericClient>(
    client: &C,
    schema: &str,
    object: &str,
) -> Result<BTreeMap<(String, String), CatalogColumn>, StoreError> {
    let rows = client
        .query(
            "SELECT kind, property_name, column_name, hs_type, field_type, label, read_only,
                    pg_type, promoted, type_changed_at IS NOT NULL
               FROM hubsync.catalog_columns WHERE schema_name = $1 AND object_name = $2",
            &[&schema, &object],
        )
        .await
        .during("read the catalog")?;
    Ok(rows
        .iter()
        .map(|r| {
            let c = CatalogColumn {
                kind: r.get(0),
                property: r.get(1),
                column: r.get(2),
                hs_type: r.get(3),
                field_type: r.get(4),
                label: r.get(5),
                read_only: r.get(6),
                pg_type: r.get(7),
                promoted: r.get(8),
                type_changed: r.get(9),
            };
            ((c.kind.clone(), c.property.clone()), c)
        })
        .collect())
}

async fn save_catalog_row<C: GenericClient>(
    tx: &C,
    schema: &str,
    object: &str,
    row: &CatalogColumn,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO hubsync.catalog_columns
            (schema_name, object_name, kind, property_name, column_name, hs_type, field_type,
             label, read_only, pg_type, promoted, type_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $12 THEN now() END)
         ON CONFLICT (schema_name, object_name, kind, property_name) DO UPDATE SET
            column_name = excluded.column_name, hs_type = excluded.hs_type,
            field_type = excluded.field_type, label = excluded.label,
            read_only = excluded.read_only, pg_type = excluded.pg_type,
            promoted = excluded.promoted,
            type_changed_at = CASE WHEN $12
                THEN coalesce(catalog_columns.type_changed_at, now()) END,
            updated_at = now()
         WHERE (catalog_columns.column_name, catalog_columns.hs_type, catalog_columns.field_type,
                catalog_columns.label, catalog_columns.read_only, catalog_columns.pg_type,
                catalog_columns.promoted, catalog_columns.type_changed_at IS NOT NULL)
               IS DISTINCT FROM
               (excluded.column_name, excluded.hs_type, excluded.field_type, excluded.label,
                excluded.read_only, excluded.pg_type, excluded.promoted, $12)",
        &[
            &schema,
            &object,
            &row.kind,
            &row.property,
            &row.column,
            &row.hs_type,
            &row.field_type,
            &row.label,
            &row.read_only,
            &row.pg_type,
            &row.promoted,
            &row.type_changed,
        ],
    )
    .await
    .during("record a column in the catalog")?;
    Ok(())
}

/// Builds a mapping from catalog rows; `only` restricts properties to the spec's.
fn build_mapping<'a>(
    schema: &str,
    object: &str,
    table: &str,
    rows: impl Iterator<Item = &'a CatalogColumn>,
    only: Option<&BTreeSet<&str>>,
) -> Result<TableMapping, StoreError> {
    let mut mapping = TableMapping {
        schema: schema.to_owned(),
        object: object.to_owned(),
        table: table.to_owned(),
        columns: Vec::new(),
        unpromoted: BTreeSet::new(),
        primary_columns: Vec::new(),
    };
    for row in rows {
        if row.kind == KIND_PRIMARY {
            if let Some(column) = &row.column {
                mapping.primary_columns.push(PrimaryColumn {
                    target_object: row.property.clone(),
                    column: column.clone(),
                });
            }
            continue;
        }
        if only.is_some_and(|o| !o.contains(row.property.as_str())) {
            continue;
        }
        match (&row.column, row.promoted) {
            (Some(column), true) => {
                let pg_type = row.pg_type.as_deref().unwrap_or_default();
                let column_type = ColumnType::from_sql(pg_type).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "catalog column {column:?} of {object:?} has unsupported type {pg_type:?}"
                    ))
                })?;
                mapping.columns.push(ColumnMapping {
                    property: row.property.clone(),
                    column: column.clone(),
                    column_type,
                    hs_type: row.hs_type.clone().unwrap_or_default(),
                    field_type: row.field_type.clone().unwrap_or_default(),
                    label: row.label.clone().unwrap_or_default(),
                    read_only: row.read_only,
                    type_changed: row.type_changed,
                });
            }
            _ => {
                mapping.unpromoted.insert(row.property.clone());
            }
        }
    }
    mapping.columns.sort_by(|a, b| a.property.cmp(&b.property));
    mapping
        .primary_columns
        .sort_by(|a, b| a.target_object.cmp(&b.target_object));
    Ok(mapping)
}

/// The column comment: the label, plus the property name when the column name differs.
fn column_comment(label: &str, property: &str, column: &str) -> String {
    if property == column {
        label.to_owned()
    } else {
        format!("{label} (HubSpot property \"{property}\")")
    }
}
