//! `hubsync.audit`: every write hubsync makes to either side, with the changed fields
//! (old → new), retention by age, and redaction for erasure requests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value, json};

use crate::{
    error::{Context as _, StoreError},
    state::{parse_text, seconds},
};

text_enum! {
    /// Which way a write went.
    Direction {
        /// hubsync wrote to PostgreSQL what came from HubSpot.
        HubspotToPostgres => "hubspot_to_postgres",
        /// hubsync wrote to HubSpot what came from PostgreSQL.
        PostgresToHubspot => "postgres_to_hubspot",
    }
}

/// One audited write.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Which way.
    pub direction: Direction,
    /// HubSpot object.
    pub object: String,
    /// HubSpot record id (if known).
    pub hs_object_id: Option<i64>,
    /// The synced table's key as text (if known).
    pub row_key: Option<String>,
    /// What was done: create, update, archive, delete, merge, associate, gdpr_delete, …
    pub action: String,
    /// `{"field": {"old": …, "new": …}}`.
    pub fields: Value,
    /// HubSpot's correlation id of the call.
    pub correlation_id: Option<String>,
}

impl AuditEntry {
    /// An entry with no fields yet.
    pub fn new(direction: Direction, object: &str, action: &str) -> Self {
        Self {
            direction,
            object: object.to_owned(),
            hs_object_id: None,
            row_key: None,
            action: action.to_owned(),
            fields: Value::Object(Map::new()),
            correlation_id: None,
        }
    }

    /// Adds a field's change.
    pub fn change(mut self, field: &str, old: Option<&str>, new: Option<&str>) -> Self {
        if !self.fields.is_object() {
            self.fields = Value::Object(Map::new());
        }
        if let Value::Object(map) = &mut self.fields {
            map.insert(field.to_owned(), json!({ "old": old, "new": new }));
        }
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub entry: AuditEntry,
}

/// Appends entries (one statement). Returns how many.
///
/// # Errors
/// Database errors.
pub async fn insert(
    client: &impl GenericClient,
    entries: &[AuditEntry],
) -> Result<u64, StoreError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let directions: Vec<&str> = entries.iter().map(|e| e.direction.as_str()).collect();
    let objects: Vec<&str> = entries.iter().map(|e| e.object.as_str()).collect();
    let ids: Vec<Option<i64>> = entries.iter().map(|e| e.hs_object_id).collect();
    let keys: Vec<Option<&str>> = entries.iter().map(|e| e.row_key.as_deref()).collect();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    let fields: Vec<&Value> = entries.iter().map(|e| &e.fields).collect();
    let correlations: Vec<Option<&str>> = entries
        .iter()
        .map(|e| e.correlation_id.as_deref())
        .collect();
    client
        .execute(
            "INSERT INTO hubsync.audit \
               (direction, object, hs_object_id, row_key, action, fields, correlation_id) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], \
               $6::jsonb[], $7::text[])",
            &[
                &directions,
                &objects,
                &ids,
                &keys,
                &actions,
                &fields,
                &correlations,
            ],
        )
        .await
        .during("write audit entries")
}

/// Deletes entries older than `retention`. Returns how many.
///
/// # Errors
/// Database errors.
pub async fn purge(client: &impl GenericClient, retention: Duration) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT hubsync.purge_audit(make_interval(secs => $1))",
            &[&seconds(retention)],
        )
        .await
        .during("purge audit entries")?;
    Ok(row.get(0))
}

/// A record's entries, newest first.
///
/// # Errors
/// Database errors; [`StoreError::Corrupt`] for an unknown direction.
pub async fn for_record(
    client: &impl GenericClient,
    object: &str,
    hs_object_id: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = client
        .query(
            "SELECT id, at, direction, object, hs_object_id, row_key, action, fields, \
               correlation_id FROM hubsync.audit WHERE object = $1 AND hs_object_id = $2 \
             ORDER BY at DESC, id DESC LIMIT $3",
            &[&object, &hs_object_id, &limit],
        )
        .await
        .during("read audit entries")?;
    rows.iter().map(from_row).collect()
}

/// The newest `limit` entries of every record, newest first (the dashboard's audit page):
/// by id, the order they were written in (the primary key; `at`, the writing transaction's
/// start, has only a BRIN index).
///
/// # Errors
/// Database errors; [`StoreError::Corrupt`] for an unknown direction.
pub async fn latest(
    client: &impl GenericClient,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = client
        .query(
            "SELECT id, at, direction, object, hs_object_id, row_key, action, fields, \
               correlation_id FROM hubsync.audit ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await
        .during("read audit entries")?;
    rows.iter().map(from_row).collect()
}

fn from_row(r: &tokio_postgres::Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: r.get(0),
        at: r.get(1),
        entry: AuditEntry {
            direction: parse_text("audit direction", r.get(2), Direction::parse)?,
            object: r.get(3),
            hs_object_id: r.get(4),
            row_key: r.get(5),
            action: r.get(6),
            fields: r.get(7),
            correlation_id: r.get(8),
        },
    })
}

/// Erases the field values of a record's entries (keeping which fields changed, when, and
/// by which action), for an erasure request. Returns how many entries were redacted.
///
/// # Errors
/// Database errors.
pub async fn redact_record(
    client: &impl GenericClient,
    object: &str,
    hs_object_id: i64,
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE hubsync.audit SET fields = coalesce( \
               (SELECT jsonb_object_agg(key, '\"redacted\"'::jsonb) FROM jsonb_object_keys(fields) key), \
               '{}'::jsonb) \
             WHERE object = $1 AND hs_object_id = $2",
            &[&object, &hs_object_id],
        )
        .await
        .during("redact audit entries")
}
