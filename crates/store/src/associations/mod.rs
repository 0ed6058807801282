//! Associations: one junction table per object pair, and the primary association column in
//! the object table.
//!
//! A junction table is named after the two object tables (`contacts_companies`) and holds
//! one row per association *type* between two records:
//!
//! ```sql
//! CREATE TABLE hubspot.contacts_companies (
//!     contact_id     BIGINT,             -- from side (HubSpot id)
//!     company_id     BIGINT,             -- to side (HubSpot id)
//!     type_id        INTEGER NOT NULL DEFAULT 0,  -- HubSpot associationTypeId (1 = primary,
//!                                        -- 279 = unlabeled…; 0 = "the pair's default type")
//!     category       TEXT    NOT NULL DEFAULT 'HUBSPOT_DEFINED',  -- or USER_DEFINED…
//!     label          TEXT,               -- HubSpot's label (NULL for the unlabeled type)
//!     synced_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     hubsync_row_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),  -- key for capture
//!     contact_row_id UUID,               -- from side by hubsync_row_id (record not yet in HubSpot)
//!     company_row_id UUID,               -- to side by hubsync_row_id
//!     UNIQUE (contact_id, company_id, type_id)
//! );
//! ```
//!
//! Rows from HubSpot always carry both ids. An application may instead name a side by the
//! record's `hubsync_row_id` (a row it has just inserted, not yet created in HubSpot);
//! writeback sends the association once both records have ids and then fills the ids in.
//! Tables created before the `_row_id` columns existed (primary key on the three ids) are
//! upgraded in place by [`ensure_association_table`].
//!
//! A self-association (`contacts_contacts`) names its columns `contact_id` and
//! `associated_contact_id`. Association changes do not bump HubSpot's modified date
//! (lessons.md 8), so [`replace_associations`] has **replace-set** semantics: for the source
//! records given, the stored associations become exactly the ones given (a diff: rows that
//! did not change are not touched, so capture triggers and `synced_at` stay quiet). The
//! primary association column (`contacts.company_id`) is kept equal to the target of the
//! primary type (1 contact→company, 5 deal→company, 26 ticket→company).

mod writeback;

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

pub use writeback::{SentLink, hubspot_ids_of_rows, record_sent_links};

use crate::{
    capture::CaptureSpec,
    catalog::{lock_ddl, relations_exist, taken_table_names},
    error::{Context as _, StoreError},
    naming::{self, qualified, quote_ident},
    schema::{TableMapping, index_name, index_sql, table_comment_sql},
};

/// HubSpot's primary association type id from one standard object to another, if any.
pub fn primary_type_id(from_object: &str, to_object: &str) -> Option<i32> {
    match (from_object, to_object) {
        ("contacts", "companies") => Some(1),
        ("deals", "companies") => Some(5),
        ("tickets", "companies") => Some(26),
        _ => None,
    }
}

/// The objects `object` has a HubSpot primary association to (for
/// `ObjectSpec::primary_associations`): `companies` for contacts, deals and tickets.
pub fn primary_targets(object: &str) -> Vec<String> {
    ["companies"]
        .into_iter()
        .filter(|to| primary_type_id(object, to).is_some())
        .map(str::to_owned)
        .collect()
}

/// The primary association column a junction table keeps up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryLink {
    /// The `BIGINT` column in the from-object's table (`company_id`).
    pub column: String,
    /// The association type id that means "primary" (`1` for contact→company).
    pub type_id: i32,
}

/// Where the associations from one object to another live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationMapping {
    /// The synced schema.
    pub schema: String,
    /// The junction table.
    pub table: String,
    /// From-side object (`contacts`).
    pub from_object: String,
    /// To-side object (`companies`).
    pub to_object: String,
    /// Column holding the from-side HubSpot id (`contact_id`).
    pub from_column: String,
    /// Column holding the to-side HubSpot id (`company_id`).
    pub to_column: String,
    /// The from-object's table (where the primary column lives).
    pub from_table: String,
    /// The to-object's table.
    pub to_table: String,
    /// The primary column kept in the from-object's table, when there is one.
    pub primary: Option<PrimaryLink>,
}

impl AssociationMapping {
    /// `"schema"."junction table"`.
    pub fn qualified_table(&self) -> String {
        qualified(&self.schema, &self.table)
    }

    /// The column naming the from-side record by its `hubsync_row_id` (`contact_row_id`).
    pub fn from_row_column(&self) -> String {
        row_column(&self.from_column)
    }

    /// The column naming the to-side record by its `hubsync_row_id` (`company_row_id`).
    pub fn to_row_column(&self) -> String {
        row_column(&self.to_column)
    }

    /// The id and row-id columns quoted for SQL text: `[from, to, from row, to row]`.
    fn quoted_columns(&self) -> [String; 4] {
        [
            quote_ident(&self.from_column),
            quote_ident(&self.to_column),
            quote_ident(&self.from_row_column()),
            quote_ident(&self.to_row_column()),
        ]
    }

    /// The object name the junction's outbox entries (and `hubsync.record_state` rows)
    /// carry: `associations:{from}:{to}` (`:` never occurs in HubSpot names).
    pub fn outbox_object(&self) -> String {
        format!("associations:{}:{}", self.from_object, self.to_object)
    }

    /// What the capture triggers watch on the junction table (keyed by its
    /// `hubsync_row_id`): both ids, both row ids, the type, its category and label.
    pub fn capture_spec(&self) -> CaptureSpec {
        CaptureSpec {
            schema: self.schema.clone(),
            table: self.table.clone(),
            object: self.outbox_object(),
            key_column: "hubsync_row_id".to_owned(),
            id_column: None,
            columns: vec![
                self.from_column.clone(),
                self.to_column.clone(),
                "type_id".to_owned(),
                "category".to_owned(),
                "label".to_owned(),
                self.from_row_column(),
                self.to_row_column(),
            ],
        }
    }
}

/// `contact_id` → `contact_row_id`.
fn row_column(id_column: &str) -> String {
    let stem = id_column.strip_suffix("_id").unwrap_or(id_column);
    naming::identifier(&format!("{stem}_row_id"))
}

/// One association (one type) between two records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationRow {
    /// From-side HubSpot id.
    pub from_id: i64,
    /// To-side HubSpot id.
    pub to_id: i64,
    /// HubSpot `associationTypeId`.
    pub type_id: i32,
    /// HubSpot `associationCategory` (`HUBSPOT_DEFINED`, `USER_DEFINED`, …).
    pub category: String,
    /// The type's label (`None` for the unlabeled type).
    pub label: Option<String>,
}

/// What [`replace_associations`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssociationReport {
    /// New junction rows.
    pub inserted: u64,
    /// Junction rows whose label or category changed.
    pub updated: u64,
    /// Junction rows removed (no longer in HubSpot for these sources).
    pub deleted: u64,
    /// Object rows whose primary association column changed.
    pub primary_changed: u64,
}

/// Creates (or finds) the junction table for `from` → `to` and records it in the catalog.
/// Both objects' tables must exist ([`crate::catalog::ensure_table`]); the primary column
/// comes from `from`'s mapping (`ObjectSpec::primary_associations`).
///
/// # Errors
/// [`StoreError::Postgres`] on a failed statement.
pub async fn ensure_association_table<C: GenericClient>(
    client: &mut C,
    from: &TableMapping,
    to: &TableMapping,
) -> Result<AssociationMapping, StoreError> {
    let schema = from.schema.as_str();
    let tx = client
        .transaction()
        .await
        .during("begin a DDL transaction")?;
    lock_ddl(&tx).await?;
    let existing = tx
        .query_opt(
            "SELECT table_name, from_column, to_column FROM hubsync.catalog_associations
              WHERE schema_name = $1 AND from_object = $2 AND to_object = $3",
            &[&schema, &from.object, &to.object],
        )
        .await
        .during("read the association catalog")?;
    let (table, from_column, to_column) = match existing {
        Some(row) => (row.get(0), row.get(1), row.get(2)),
        None => {
            let taken = taken_table_names(&tx, schema).await?;
            let table = naming::unique_identifier(&format!("{}_{}", from.table, to.table), &|t| {
                taken.contains(t)
            });
            let from_one = naming::singular(&from.object);
            let to_one = naming::singular(&to.object);
            let from_column = naming::identifier(&format!("{from_one}_id"));
            let mut to_column = naming::identifier(&format!("{to_one}_id"));
            if to_column == from_column {
                to_column = naming::identifier(&format!("associated_{to_one}_id"));
            }
            tx.execute(
                "INSERT INTO hubsync.catalog_associations
                    (schema_name, from_object, to_object, table_name, from_column, to_column)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &schema,
                    &from.object,
                    &to.object,
                    &table,
                    &from_column,
                    &to_column,
                ],
            )
            .await
            .during("record a junction table in the catalog")?;
            (table, from_column, to_column)
        }
    };
    let comment = format!(
        "HubSpot associations from {} to {}, synced by hubsync",
        from.object, to.object
    );
    let mapping = AssociationMapping {
        schema: schema.to_owned(),
        table,
        from_object: from.object.clone(),
        to_object: to.object.clone(),
        from_column,
        to_column,
        from_table: from.table.clone(),
        to_table: to.table.clone(),
        primary: primary_link(from, &to.object),
    };
    let index = index_name(&mapping.table, &mapping.to_column);
    if !relations_exist(&tx, schema, &[&mapping.table, &index]).await? {
        for sql in [
            junction_ddl(&mapping),
            table_comment_sql(schema, &mapping.table, &comment),
            index_sql(schema, &mapping.table, &mapping.to_column),
        ] {
            tx.batch_execute(&sql)
                .await
                .during("create a junction table")?;
        }
    }
    upgrade_junction(&tx, &mapping).await?;
    tx.commit().await.during("commit DDL")?;
    Ok(mapping)
}

/// Brings a junction table created before the `_row_id` columns existed to the current
/// shape: the row-id columns, nullable ids, `type_id` defaulting to 0, the key moved to
/// `hubsync_row_id` and the three ids unique instead. A no-op on current tables.
async fn upgrade_junction(
    client: &impl GenericClient,
    mapping: &AssociationMapping,
) -> Result<(), StoreError> {
    let table = mapping.qualified_table();
    let current = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute
                             WHERE attrelid = $1::text::regclass AND attname = $2
                               AND NOT attisdropped),
                    (SELECT conname::text FROM pg_constraint
                      WHERE conrelid = $1::text::regclass AND contype = 'p'
                        AND cardinality(conkey) > 1)",
            &[&table, &mapping.from_row_column()],
        )
        .await
        .during("inspect a junction table")?;
    let has_row_columns: bool = current.get(0);
    let old_key: Option<String> = current.get(1);
    if has_row_columns && old_key.is_none() {
        return Ok(());
    }
    let [f, t, fr, tr] = mapping.quoted_columns();
    let mut sql = format!(
        "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {fr} UUID, \
           ADD COLUMN IF NOT EXISTS {tr} UUID, ALTER COLUMN type_id SET DEFAULT 0;"
    );
    if let Some(key) = old_key {
        let unique = quote_ident(&naming::identifier(&format!("{}_ids_key", mapping.table)));
        sql.push_str(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT {key}, ADD CONSTRAINT {unique} UNIQUE ({f}, {t}, type_id), \
               ALTER COLUMN {f} DROP NOT NULL, ALTER COLUMN {t} DROP NOT NULL, \
               ADD PRIMARY KEY (hubsync_row_id);",
            key = quote_ident(&key)
        ));
    }
    client
        .batch_execute(&sql)
        .await
        .during("upgrade a junction table")?;
    Ok(())
}

/// Every junction table of `schema`, with its primary link.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed query.
pub async fn load_association_mappings<C: GenericClient>(
    client: &C,
    schema: &str,
) -> Result<Vec<AssociationMapping>, StoreError> {
    let rows = client
        .query(
            "SELECT a.from_object, a.to_object, a.table_name, a.from_column, a.to_column,
                    t.table_name, p.column_name, u.table_name
               FROM hubsync.catalog_associations a
               JOIN hubsync.catalog_tables t
                 ON t.schema_name = a.schema_name AND t.object_name = a.from_object
               JOIN hubsync.catalog_tables u
                 ON u.schema_name = a.schema_name AND u.object_name = a.to_object
               LEFT JOIN hubsync.catalog_columns p
                 ON p.schema_name = a.schema_name AND p.object_name = a.from_object
                AND p.kind = 'primary_association' AND p.property_name = a.to_object
              WHERE a.schema_name = $1
              ORDER BY a.table_name",
            &[&schema],
        )
        .await
        .during("read the association catalog")?;
    Ok(rows
        .iter()
        .map(|r| {
            let from_object: String = r.get(0);
            let to_object: String = r.get(1);
            let primary_column: Option<String> = r.get(6);
            let primary = primary_column
                .zip(primary_type_id(&from_object, &to_object))
                .map(|(column, type_id)| PrimaryLink { column, type_id });
            AssociationMapping {
                schema: schema.to_owned(),
                from_object,
                to_object,
                table: r.get(2),
                from_column: r.get(3),
                to_column: r.get(4),
                from_table: r.get(5),
                to_table: r.get(7),
                primary,
            }
        })
        .collect())
}

/// Makes the stored associations of the records `from_ids` exactly `rows` (plus the
/// records named in `rows`), and updates their primary column. Tags the transaction as
/// hubsync's own; run it inside one.
///
/// # Errors
/// [`StoreError::Postgres`] on a failed statement.
pub async fn replace_associations<C: GenericClient>(
    client: &C,
    mapping: &AssociationMapping,
    from_ids: &[i64],
    rows: &[AssociationRow],
) -> Result<AssociationReport, StoreError> {
    crate::origin::tag_transaction(client).await?;
    let mut unique: BTreeMap<(i64, i64, i32), (&str, Option<&str>)> = BTreeMap::new();
    for r in rows {
        unique.insert(
            (r.from_id, r.to_id, r.type_id),
            (r.category.as_str(), r.label.as_deref()),
        );
    }
    let mut sources: Vec<i64> = from_ids
        .iter()
        .copied()
        .chain(rows.iter().map(|r| r.from_id))
        .collect();
    sources.sort_unstable();
    sources.dedup();
    let froms: Vec<i64> = unique.keys().map(|k| k.0).collect();
    let tos: Vec<i64> = unique.keys().map(|k| k.1).collect();
    let types: Vec<i32> = unique.keys().map(|k| k.2).collect();
    let categories: Vec<&str> = unique.values().map(|v| v.0).collect();
    let labels: Vec<Option<&str>> = unique.values().map(|v| v.1).collect();

    let table = mapping.qualified_table();
    let [f, t, ..] = mapping.quoted_columns();
    // A row with an application change still in the outbox is left as the application
    // made it (writeback will send that change): not deleted, and an association the
    // application removed or changed is not brought back.
    let object = mapping.outbox_object();
    let deleted = client
        .execute(
            &format!(
                "DELETE FROM {table} j WHERE j.{f} = ANY($1)
                   AND NOT EXISTS (SELECT 1 FROM unnest($2::int8[], $3::int8[], $4::int4[]) AS n(f, t, ty)
                                    WHERE n.f = j.{f} AND n.t = j.{t} AND n.ty = j.type_id)
                   AND NOT EXISTS (SELECT 1 FROM hubsync.outbox o
                                    WHERE o.object = $5 AND o.row_key = j.hubsync_row_id::text)"
            ),
            &[&sources, &froms, &tos, &types, &object],
        )
        .await
        .during("delete stale associations")?;
    let changed = client
        .query(
            &format!(
                "WITH replaced AS (
                   SELECT (o.old_row ->> $7)::int8 AS f, (o.old_row ->> $8)::int8 AS t,
                          (o.old_row ->> 'type_id')::int4 AS ty
                     FROM hubsync.outbox o WHERE o.object = $6 AND o.old_row IS NOT NULL)
                 INSERT INTO {table} AS j ({f}, {t}, type_id, category, label)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::text[], $5::text[])
                          AS n(f, t, ty, c, l)
                  WHERE NOT EXISTS (SELECT 1 FROM replaced r
                                     WHERE r.f = n.f AND r.t = n.t AND r.ty = n.ty)
                 ON CONFLICT ({f}, {t}, type_id) DO UPDATE
                    SET category = excluded.category, label = excluded.label, synced_at = now()
                  WHERE (j.category, j.label) IS DISTINCT FROM (excluded.category, excluded.label)
                 RETURNING (xmax = 0)"
            ),
            &[
                &froms,
                &tos,
                &types,
                &categories,
                &labels,
                &object,
                &mapping.from_column,
                &mapping.to_column,
            ],
        )
        .await
        .during("store associations")?;
    let inserted = changed.iter().filter(|r| r.get::<_, bool>(0)).count() as u64;
    let mut report = AssociationReport {
        inserted,
        updated: changed.len() as u64 - inserted,
        deleted,
        primary_changed: 0,
    };
    if let Some(link) = &mapping.primary {
        let primaries: Vec<Option<i64>> = sources
            .iter()
            .map(|s| {
                unique
                    .keys()
                    .filter(|(f, _, ty)| f == s && *ty == link.type_id)
                    .map(|(_, to, _)| *to)
                    .min()
            })
            .collect();
        let col = quote_ident(&link.column);
        report.primary_changed = client
            .execute(
                &format!(
                    "UPDATE {} AS o SET {col} = u.p
                       FROM unnest($1::int8[], $2::int8[]) AS u(id, p)
                      WHERE o.hs_object_id = u.id AND o.{col} IS DISTINCT FROM u.p",
                    qualified(&mapping.schema, &mapping.from_table)
                ),
                &[&sources, &primaries],
            )
            .await
            .during("update primary associations")?;
    }
    Ok(report)
}

fn primary_link(from: &TableMapping, to_object: &str) -> Option<PrimaryLink> {
    let column = from.primary_column(to_object)?.column.clone();
    let type_id = primary_type_id(&from.object, to_object)?;
    Some(PrimaryLink { column, type_id })
}

/// `CREATE TABLE IF NOT EXISTS` for a junction table.
fn junction_ddl(mapping: &AssociationMapping) -> String {
    let [f, t, fr, tr] = mapping.quoted_columns();
    let unique = quote_ident(&naming::identifier(&format!("{}_ids_key", mapping.table)));
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
            {f} BIGINT,
            {t} BIGINT,
            type_id INTEGER NOT NULL DEFAULT 0,
            category TEXT NOT NULL DEFAULT 'HUBSPOT_DEFINED',
            label TEXT,
            synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            hubsync_row_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            {fr} UUID,
            {tr} UUID,
            CONSTRAINT {unique} UNIQUE ({f}, {t}, type_id))",
        mapping.qualified_table()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_types() {
        assert_eq!(primary_type_id("contacts", "companies"), Some(1));
        assert_eq!(primary_type_id("deals", "companies"), Some(5));
        assert_eq!(primary_type_id("tickets", "companies"), Some(26));
        assert_eq!(primary_type_id("companies", "contacts"), None);
        assert_eq!(primary_targets("deals"), vec!["companies".to_owned()]);
        assert!(primary_targets("companies").is_empty());
    }

    fn contacts_companies() -> AssociationMapping {
        AssociationMapping {
            schema: "hubspot".into(),
            table: "contacts_companies".into(),
            from_object: "contacts".into(),
            to_object: "companies".into(),
            from_column: "contact_id".into(),
            to_column: "company_id".into(),
            from_table: "contacts".into(),
            to_table: "companies".into(),
            primary: None,
        }
    }

    #[test]
    fn junction_ddl_quotes_and_keys() {
        let sql = junction_ddl(&contacts_companies());
        assert!(sql.contains("\"hubspot\".\"contacts_companies\""));
        assert!(sql.contains("UNIQUE (\"contact_id\", \"company_id\", type_id)"));
        assert!(sql.contains("hubsync_row_id UUID PRIMARY KEY"));
        assert!(sql.contains("\"contact_row_id\" UUID"));
    }

    #[test]
    fn row_id_columns_and_outbox_object() {
        let m = contacts_companies();
        assert_eq!(m.from_row_column(), "contact_row_id");
        assert_eq!(m.to_row_column(), "company_row_id");
        assert_eq!(
            row_column("associated_contact_id"),
            "associated_contact_row_id"
        );
        assert_eq!(m.outbox_object(), "associations:contacts:companies");
        assert_eq!(m.capture_spec().columns.len(), 7);
    }
}
