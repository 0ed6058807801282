//! `hubsync.conflicts`: fields changed on both sides under the `manual` policy, waiting for
//! a person to pick a side (`hubsync conflicts resolve`, the dashboard, or plain SQL), then
//! applied by the engine. A resolution notifies `hubsync_conflicts`.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::{
    error::{Context as _, StoreError},
    state::{parse_text, shadow::Side},
};

/// A newly detected conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConflict {
    /// HubSpot object.
    pub object: String,
    /// HubSpot record id.
    pub hs_object_id: i64,
    /// HubSpot property.
    pub field: String,
    /// The value both sides last agreed on.
    pub shadow_value: Option<String>,
    /// HubSpot's value now.
    pub hubspot_value: Option<String>,
    /// PostgreSQL's value now (HubSpot string form).
    pub postgres_value: Option<String>,
    /// HubSpot's timestamp of its value.
    pub hubspot_version: Option<DateTime<Utc>>,
    /// Outbox id of PostgreSQL's change.
    pub postgres_version: Option<i64>,
}

/// A stored conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Its id (what `hubsync conflicts resolve ID` takes).
    pub id: i64,
    /// What was detected (the latest values if detected again while open).
    pub detail: NewConflict,
    /// The side picked, once resolved.
    pub resolution: Option<Side>,
    /// When it was (last) detected.
    pub detected_at: DateTime<Utc>,
    /// When a side was picked.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the engine carried the winning value across.
    pub applied_at: Option<DateTime<Utc>>,
}

impl Conflict {
    /// Whether it still waits for a person.
    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }
}

const COLUMNS: &str = "id, object, hs_object_id, field, shadow_value, hubspot_value, \
                       postgres_value, hubspot_version, postgres_version, resolution, \
                       detected_at, resolved_at, applied_at";

fn from_row(r: &tokio_postgres::Row) -> Result<Conflict, StoreError> {
    let resolution: Option<&str> = r.get(9);
    Ok(Conflict {
        id: r.get(0),
        detail: NewConflict {
            object: r.get(1),
            hs_object_id: r.get(2),
            field: r.get(3),
            shadow_value: r.get(4),
            hubspot_value: r.get(5),
            postgres_value: r.get(6),
            hubspot_version: r.get(7),
            postgres_version: r.get(8),
        },
        resolution: resolution
            .map(|s| parse_text("resolution", s, Side::parse))
            .transpose()?,
        detected_at: r.get(10),
        resolved_at: r.get(11),
        applied_at: r.get(12),
    })
}

/// Records a conflict; if the same field of the same record already has an open one, it
/// is updated with the new values instead. Returns the conflict's id.
///
/// # Errors
/// Database errors.
pub async fn record(client: &impl GenericClient, c: &NewConflict) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "INSERT INTO hubsync.conflicts (object, hs_object_id, field, shadow_value, \
               hubspot_value, postgres_value, hubspot_version, postgres_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (object, hs_object_id, field) WHERE status = 'open' DO UPDATE SET \
               hubspot_value = excluded.hubspot_value, postgres_value = excluded.postgres_value, \
               hubspot_version = excluded.hubspot_version, \
               postgres_version = excluded.postgres_version, detected_at = now() \
             RETURNING id",
            &[
                &c.object,
                &c.hs_object_id,
                &c.field,
                &c.shadow_value,
                &c.hubspot_value,
                &c.postgres_value,
                &c.hubspot_version,
                &c.postgres_version,
            ],
        )
        .await
        .during("record a conflict")?;
    Ok(row.get(0))
}

/// Which conflicts [`list`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictFilter {
    /// Waiting for a person.
    #[default]
    Open,
    /// Resolved but not yet applied by the engine.
    ToApply,
    /// All of them.
    All,
}

/// Lists conflicts, oldest first, optionally for one object.
///
/// # Errors
/// Database errors.
pub async fn list(
    client: &impl GenericClient,
    filter: ConflictFilter,
    object: Option<&str>,
    limit: i64,
) -> Result<Vec<Conflict>, StoreError> {
    let condition = match filter {
        ConflictFilter::Open => "status = 'open'",
        ConflictFilter::ToApply => "resolution IS NOT NULL AND applied_at IS NULL",
        ConflictFilter::All => "true",
    };
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM hubsync.conflicts \
                 WHERE {condition} AND ($1::text IS NULL OR object = $1) ORDER BY id LIMIT $2"
            ),
            &[&object, &limit],
        )
        .await
        .during("list conflicts")?;
    rows.iter().map(from_row).collect()
}

/// One conflict by id.
///
/// # Errors
/// Database errors.
pub async fn get(client: &impl GenericClient, id: i64) -> Result<Option<Conflict>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM hubsync.conflicts WHERE id = $1"),
            &[&id],
        )
        .await
        .during("read a conflict")?;
    row.as_ref().map(from_row).transpose()
}

/// Picks the side whose value wins. Returns the conflict, or `None` when there is no open
/// conflict with that id (unknown, or already resolved).
///
/// # Errors
/// Database errors.
pub async fn resolve(
    client: &impl GenericClient,
    id: i64,
    take: Side,
) -> Result<Option<Conflict>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE hubsync.conflicts SET resolution = $2 WHERE id = $1 AND status = 'open' \
                 RETURNING {COLUMNS}"
            ),
            &[&id, &take.as_str()],
        )
        .await
        .during("resolve a conflict")?;
    row.as_ref().map(from_row).transpose()
}

/// Records that the engine carried a resolved conflict's winning value across.
///
/// # Errors
/// Database errors.
pub async fn mark_applied(client: &impl GenericClient, id: i64) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "UPDATE hubsync.conflicts SET applied_at = now() \
             WHERE id = $1 AND resolution IS NOT NULL AND applied_at IS NULL",
            &[&id],
        )
        .await
        .during("mark a conflict applied")?;
    Ok(n > 0)
}

/// Open conflicts, for one object or all.
///
/// # Errors
/// Database errors.
pub async fn open_count(
    client: &impl GenericClient,
    object: Option<&str>,
) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM hubsync.conflicts \
             WHERE status = 'open' AND ($1::text IS NULL OR object = $1)",
            &[&object],
        )
        .await
        .during("count open conflicts")?;
    Ok(row.get(0))
}
