//! `hubsync.shadow`: per record and field, the last value both sides agreed on, with the
//! versions it carried on each side. Read and written in batches.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::{
    error::{Context as _, StoreError},
    state::parse_text,
};

text_enum! {
    /// The side an agreed value came from.
    Side {
        /// HubSpot.
        Hubspot => "hubspot",
        /// PostgreSQL.
        Postgres => "postgres",
    }
}

/// One agreed field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowField {
    /// HubSpot object.
    pub object: String,
    /// HubSpot record id.
    pub hs_object_id: i64,
    /// HubSpot property name.
    pub field: String,
    /// HubSpot's string form of the value; `None` is empty.
    pub value: Option<String>,
    /// HubSpot's timestamp of that value.
    pub hubspot_version: Option<DateTime<Utc>>,
    /// The outbox id of the PostgreSQL change it came from or was confirmed by.
    pub postgres_version: Option<i64>,
    /// Which side it came from.
    pub agreed_from: Side,
    /// When it was agreed; `None` on write means now.
    pub agreed_at: Option<DateTime<Utc>>,
}

/// The shadow of several records, by record id then field.
pub type ShadowMap = HashMap<i64, HashMap<String, ShadowField>>;

/// Reads the shadow of the given records.
///
/// # Errors
/// Database errors; [`StoreError::Corrupt`] for an unknown side.
pub async fn get_many(
    client: &impl GenericClient,
    object: &str,
    ids: &[i64],
) -> Result<ShadowMap, StoreError> {
    let rows = client
        .query(
            "SELECT hs_object_id, field, value, hubspot_version, postgres_version, agreed_from, \
               agreed_at FROM hubsync.shadow WHERE object = $1 AND hs_object_id = ANY($2)",
            &[&object, &ids],
        )
        .await
        .during("read the shadow copy")?;
    let mut out = ShadowMap::new();
    for r in rows {
        let field = ShadowField {
            object: object.to_owned(),
            hs_object_id: r.get(0),
            field: r.get(1),
            value: r.get(2),
            hubspot_version: r.get(3),
            postgres_version: r.get(4),
            agreed_from: parse_text("shadow side", r.get(5), Side::parse)?,
            agreed_at: r.get(6),
        };
        out.entry(field.hs_object_id)
            .or_default()
            .insert(field.field.clone(), field);
    }
    Ok(out)
}

/// Writes agreed values (insert or replace). When a batch holds the same field twice, the
/// later one wins. Returns the number of fields written.
///
/// # Errors
/// Database errors.
pub async fn put_many(
    client: &impl GenericClient,
    fields: &[ShadowField],
) -> Result<u64, StoreError> {
    let mut latest: HashMap<(&str, i64, &str), &ShadowField> = HashMap::new();
    for f in fields {
        latest.insert((f.object.as_str(), f.hs_object_id, f.field.as_str()), f);
    }
    let fields: Vec<&ShadowField> = latest.into_values().collect();
    if fields.is_empty() {
        return Ok(0);
    }
    let objects: Vec<&str> = fields.iter().map(|f| f.object.as_str()).collect();
    let ids: Vec<i64> = fields.iter().map(|f| f.hs_object_id).collect();
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    let values: Vec<Option<&str>> = fields.iter().map(|f| f.value.as_deref()).collect();
    let hs_versions: Vec<Option<DateTime<Utc>>> =
        fields.iter().map(|f| f.hubspot_version).collect();
    let pg_versions: Vec<Option<i64>> = fields.iter().map(|f| f.postgres_version).collect();
    let sides: Vec<&str> = fields.iter().map(|f| f.agreed_from.as_str()).collect();
    let agreed: Vec<Option<DateTime<Utc>>> = fields.iter().map(|f| f.agreed_at).collect();
    client
        .execute(
            "INSERT INTO hubsync.shadow AS s (object, hs_object_id, field, value, \
               hubspot_version, postgres_version, agreed_from, agreed_at) \
             SELECT o, i, f, v, hv, pv, side, coalesce(at, now()) \
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[], \
               $6::int8[], $7::text[], $8::timestamptz[]) AS u(o, i, f, v, hv, pv, side, at) \
             ON CONFLICT (object, hs_object_id, field) DO UPDATE SET value = excluded.value, \
               hubspot_version = excluded.hubspot_version, \
               postgres_version = excluded.postgres_version, \
               agreed_from = excluded.agreed_from, agreed_at = excluded.agreed_at",
            &[
                &objects,
                &ids,
                &names,
                &values,
                &hs_versions,
                &pg_versions,
                &sides,
                &agreed,
            ],
        )
        .await
        .during("write the shadow copy")
}

/// Forgets the shadow of records (deleted, merged away). Returns fields removed.
///
/// # Errors
/// Database errors.
pub async fn delete_records(
    client: &impl GenericClient,
    object: &str,
    ids: &[i64],
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM hubsync.shadow WHERE object = $1 AND hs_object_id = ANY($2)",
            &[&object, &ids],
        )
        .await
        .during("delete shadow records")
}
