//! `hubsync.record_state`: per record, whether its last change reached the other side
//! (`pending`, `synced`, `failed` with HubSpot's message), the HubSpot id once known, and
//! the survivor of a merge. Keyed by object and row key (the synced table's key as text).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::{
    error::{Context as _, StoreError},
    state::parse_text,
};

text_enum! {
    /// Sync status of one record.
    SyncStatus {
        /// A change is waiting to be written.
        Pending => "pending",
        /// Both sides agree.
        Synced => "synced",
        /// The last write was rejected; `last_error` says why. Retried on the next edit.
        Failed => "failed",
    }
}

/// The state of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordState {
    /// HubSpot object.
    pub object: String,
    /// The synced table's key as text.
    pub row_key: String,
    /// HubSpot id, once the record exists there.
    pub hs_object_id: Option<i64>,
    /// Status.
    pub status: SyncStatus,
    /// Why the last write failed.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub attempts: i32,
    /// For a record merged away: the survivor's id.
    pub merged_into: Option<i64>,
    /// When the state last changed.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "object, row_key, hs_object_id, status, last_error, attempts, merged_into, updated_at";

fn from_row(r: &tokio_postgres::Row) -> Result<RecordState, StoreError> {
    Ok(RecordState {
        object: r.get(0),
        row_key: r.get(1),
        hs_object_id: r.get(2),
        status: parse_text("record status", r.get(3), SyncStatus::parse)?,
        last_error: r.get(4),
        attempts: r.get(5),
        merged_into: r.get(6),
        updated_at: r.get(7),
    })
}

/// Sets a record's status. `hs_object_id` is kept when `None` is passed; `error` is
/// stored for `Failed` and cleared otherwise; failures count up `attempts`, success resets.
///
/// # Errors
/// Database errors ([`crate::ErrorKind::Conflict`] if `hs_object_id` already belongs to
/// another row key).
pub async fn set(
    client: &impl GenericClient,
    object: &str,
    row_key: &str,
    hs_object_id: Option<i64>,
    status: SyncStatus,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let error = if status == SyncStatus::Failed {
        error
    } else {
        None
    };
    client
        .execute(
            "INSERT INTO hubsync.record_state \
               (object, row_key, hs_object_id, status, last_error, attempts) \
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'failed' THEN 1 ELSE 0 END) \
             ON CONFLICT (object, row_key) DO UPDATE SET \
               hs_object_id = coalesce(excluded.hs_object_id, record_state.hs_object_id), \
               status = excluded.status, last_error = excluded.last_error, \
               attempts = CASE WHEN excluded.status = 'failed' THEN record_state.attempts + 1 \
                          WHEN excluded.status = 'synced' THEN 0 \
                          ELSE record_state.attempts END, \
               updated_at = now()",
            &[&object, &row_key, &hs_object_id, &status.as_str(), &error],
        )
        .await
        .during("set record state")?;
    Ok(())
}

/// The state of one record, if hubsync has any.
///
/// # Errors
/// Database errors; [`StoreError::Corrupt`] for an unknown status.
pub async fn get(
    client: &impl GenericClient,
    object: &str,
    row_key: &str,
) -> Result<Option<RecordState>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM hubsync.record_state WHERE object = $1 AND row_key = $2"
            ),
            &[&object, &row_key],
        )
        .await
        .during("read record state")?;
    row.as_ref().map(from_row).transpose()
}

/// The row key recorded for a HubSpot id, if any.
///
/// # Errors
/// Database errors.
pub async fn row_key_for(
    client: &impl GenericClient,
    object: &str,
    hs_object_id: i64,
) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            "SELECT row_key FROM hubsync.record_state WHERE object = $1 AND hs_object_id = $2",
            &[&object, &hs_object_id],
        )
        .await
        .during("look up a row key")?;
    Ok(row.map(|r| r.get(0)))
}

/// Records that `loser` was merged into `survivor` in HubSpot.
///
/// # Errors
/// Database errors.
pub async fn mark_merged(
    client: &impl GenericClient,
    object: &str,
    loser: i64,
    survivor: i64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO hubsync.record_state (object, row_key, hs_object_id, status, merged_into) \
             VALUES ($1, $2::bigint::text, $2, 'synced', $3) \
             ON CONFLICT (object, row_key) DO UPDATE SET merged_into = excluded.merged_into, \
               status = 'synced', last_error = NULL, updated_at = now()",
            &[&object, &loser, &survivor],
        )
        .await
        .during("record a merge")?;
    Ok(())
}

/// How many records of an object are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Waiting to be written.
    pub pending: i64,
    /// In agreement.
    pub synced: i64,
    /// Rejected.
    pub failed: i64,
}

/// Counts records by status, for one object or all.
///
/// # Errors
/// Database errors.
pub async fn counts(
    client: &impl GenericClient,
    object: Option<&str>,
) -> Result<StatusCounts, StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'pending'), \
               count(*) FILTER (WHERE status = 'synced'), \
               count(*) FILTER (WHERE status = 'failed') \
             FROM hubsync.record_state WHERE $1::text IS NULL OR object = $1",
            &[&object],
        )
        .await
        .during("count record states")?;
    Ok(StatusCounts {
        pending: row.get(0),
        synced: row.get(1),
        failed: row.get(2),
    })
}

/// The failed records of an object (most recent first).
///
/// # Errors
/// Database errors.
pub async fn failed(
    client: &impl GenericClient,
    object: &str,
    limit: i64,
) -> Result<Vec<RecordState>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM hubsync.record_state \
                 WHERE object = $1 AND status = 'failed' ORDER BY updated_at DESC LIMIT $2"
            ),
            &[&object, &limit],
        )
        .await
        .during("list failed records")?;
    rows.iter().map(from_row).collect()
}
