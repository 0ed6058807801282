//! Associations: one junction table per object pair, and the primary association column in
//! the object table.
//!
//! A junction table is named after the two object tables (`contacts_companies`) and holds
//! one row per association *type* between two records:
//!
//! ```sql
//! CREATE TABLE hubspot.contacts_companies (
//!     contact_id     BIGINT  NOT NULL,   -- from side (HubSpot id)
//!     company_id     BIGINT  NOT NULL,   -- to side (HubSpot id)
//!     type_id        INTEGER NOT NULL,   -- HubSpot associationTypeId (1 = primary, 279 = unlabeled…)
//!     category       TEXT    NOT NULL DEFAULT 'HUBSPOT_DEFINED',  -- or USER_DEFINED…
//!     label          TEXT,               -- HubSpot's label (NULL for the unlabeled type)
//!     synced_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     hubsync_row_id UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,  -- key for capture
//!     PRIMARY KEY (contact_id, company_id, type_id)
//! );
//! ```
//!
//! A self-association (`contacts_contacts`) names its columns `contact_id` and
//! `associated_contact_id`. Association changes do not bump HubSpot's modified date
//! (lessons.md 8), so [`replace_associations`] has **replace-set** semantics: for the source
//! records given, the stored associations become exactly the ones given (a diff: rows that
//! did not change are not touched, so capture triggers and `synced_at` stay quiet). The
//! primary association column (`contacts.company_id`) is kept equal to the target of the
//! primary type (1 contact→company, 5 deal→company, 26 ticket→company).

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

use crate::{
    capture::CaptureSpec,
    catalog::{lock_ddl, taken_table_names},
    error::{Context as _, StoreError},
    naming::{self, qualified, quote_ident},
    schema::{TableMapping, index_sql, table_comment_sql},
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
    /// The primary column kept in the from-object's table, when there is one.
    pub primary: Option<PrimaryLink>,
}

impl AssociationMapping {
    /// `"schema"."junction table"`.
    pub fn qualified_table(&self) -> String {
        qualified(&self.schema, &self.table)
    }

    /// What the capture triggers watch on the junction table (keyed by its
    /// `hubsync_row_id`): both ids, the type, its category and label. Outbox entries carry
    /// the object name `associations:{from}:{to}` (`:` never occurs in HubSpot names).
    pub fn capture_spec(&self) -> CaptureSpec {
        CaptureSpec {
            schema: self.schema.clone(),
            table: self.table.clone(),
            object: format!("associations:{}:{}", self.from_object, self.to_object),
            key_column: "hubsync_row_id".to_owned(),
            id_column: None,
            columns: vec![
                self.from_column.clone(),
                self.to_column.clone(),
                "type_id".to_owned(),
                "category".to_owned(),
                "label".to_owned(),
            ],
        }
    }
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
    for sql in [
        junction_ddl(schema, &table, &from_column, &to_column),
        table_comment_sql(schema, &table, &comment),
        index_sql(schema, &table, &to_column),
    ] {
        tx.batch_execute(&sql)
            .await
            .during("create a junction table")?;
    }
    tx.commit().await.during("commit DDL")?;
    Ok(AssociationMapping {
        schema: schema.to_owned(),
        table,
        from_object: from.object.clone(),
        to_object: to.object.clone(),
        from_column,
        to_column,
        from_table: from.table.clone(),
        primary: primary_link(from, &to.object),
    })
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
                    t.table_name, p.column_name
               FROM hubsync.catalog_associations a
               JOIN hubsync.catalog_tables t
                 ON t.schema_name = a.schema_name AND t.object_name = a.from_object
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
    let (f, t) = (
        quote_ident(&mapping.from_column),
        quote_ident(&mapping.to_column),
    );
    let deleted = client
        .execute(
            &format!(
                "DELETE FROM {table} j WHERE j.{f} = ANY($1)
                   AND NOT EXISTS (SELECT 1 FROM unnest($2::int8[], $3::int8[], $4::int4[]) AS n(f, t, ty)
                                    WHERE n.f = j.{f} AND n.t = j.{t} AND n.ty = j.type_id)"
            ),
            &[&sources, &froms, &tos, &types],
        )
        .await
        .during("delete stale associations")?;
    let changed = client
        .query(
            &format!(
                "INSERT INTO {table} AS j ({f}, {t}, type_id, category, label)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::text[], $5::text[])
                 ON CONFLICT ({f}, {t}, type_id) DO UPDATE
                    SET category = excluded.category, label = excluded.label, synced_at = now()
                  WHERE (j.category, j.label) IS DISTINCT FROM (excluded.category, excluded.label)
                 RETURNING (xmax = 0)"
            ),
            &[&froms, &tos, &types, &categories, &labels],
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
fn junction_ddl(schema: &str, table: &str, from_column: &str, to_column: &str) -> String {
    let (f, t) = (quote_ident(from_column), quote_ident(to_column));
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
            {f} BIGINT NOT NULL,
            {t} BIGINT NOT NULL,
            type_id INTEGER NOT NULL,
            category TEXT NOT NULL DEFAULT 'HUBSPOT_DEFINED',
            label TEXT,
            synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            hubsync_row_id UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,
            PRIMARY KEY ({f}, {t}, type_id))",
        qualified(schema, table)
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

    #[test]
    fn junction_ddl_quotes_and_keys() {
        let sql = junction_ddl("hubspot", "contacts_companies", "contact_id", "company_id");
        assert!(sql.contains("\"hubspot\".\"contacts_companies\""));
        assert!(sql.contains("PRIMARY KEY (\"contact_id\", \"company_id\", type_id)"));
    }
}
