//! `hubsync.cursors`: one checkpoint per object and stream (backfill page, incremental
//! high-water mark, …), stored as JSON whose shape the stream owns.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::error::{Context as _, StoreError};

/// One stored cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// HubSpot object.
    pub object: String,
    /// Stream name (e.g. `backfill`, `incremental`).
    pub stream: String,
    /// The position.
    pub position: Value,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// The position of a cursor, if one was stored.
///
/// # Errors
/// Database errors.
pub async fn get(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
) -> Result<Option<Value>, StoreError> {
    let row = client
        .query_opt(
            "SELECT position FROM hubsync.cursors WHERE object = $1 AND stream = $2",
            &[&object, &stream],
        )
        .await
        .during("read a cursor")?;
    Ok(row.map(|r| r.get(0)))
}

/// [`get`], deserialised into `T`.
///
/// # Errors
/// Database errors; [`StoreError::Corrupt`] when the stored JSON is not a `T`.
pub async fn get_as<T: DeserializeOwned>(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
) -> Result<Option<T>, StoreError> {
    get(client, object, stream)
        .await?
        .map(|v| {
            serde_json::from_value(v).map_err(|e| {
                StoreError::Corrupt(format!(
                    "cursor {object}/{stream} has an unexpected shape: {e}"
                ))
            })
        })
        .transpose()
}

/// Stores a cursor position (insert or replace). Call it on the transaction that wrote the
/// data the position covers.
///
/// # Errors
/// Database errors.
pub async fn set(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
    position: &Value,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO hubsync.cursors (object, stream, position) VALUES ($1, $2, $3) \
             ON CONFLICT (object, stream) DO UPDATE \
             SET position = excluded.position, updated_at = now()",
            &[&object, &stream, position],
        )
        .await
        .during("write a cursor")?;
    Ok(())
}

/// [`set`] from any serialisable value.
///
/// # Errors
/// Database errors; [`StoreError::Invalid`] if `position` does not serialise.
pub async fn set_as<T: Serialize + Sync>(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
    position: &T,
) -> Result<(), StoreError> {
    let value = serde_json::to_value(position)
        .map_err(|e| StoreError::Invalid(format!("cursor does not serialise: {e}")))?;
    set(client, object, stream, &value).await
}

/// Deletes one stream's cursor, or all of an object's when `stream` is `None` (forcing a
/// fresh backfill). Returns how many were deleted.
///
/// # Errors
/// Database errors.
pub async fn clear(
    client: &impl GenericClient,
    object: &str,
    stream: Option<&str>,
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM hubsync.cursors WHERE object = $1 AND ($2::text IS NULL OR stream = $2)",
            &[&object, &stream],
        )
        .await
        .during("clear cursors")
}

/// Every cursor, by object and stream.
///
/// # Errors
/// Database errors.
pub async fn list(client: &impl GenericClient) -> Result<Vec<Cursor>, StoreError> {
    let rows = client
        .query(
            "SELECT object, stream, position, updated_at FROM hubsync.cursors \
             ORDER BY object, stream",
            &[],
        )
        .await
        .during("list cursors")?;
    Ok(rows
        .iter()
        .map(|r| Cursor {
            object: r.get(0),
            stream: r.get(1),
            position: r.get(2),
            updated_at: r.get(3),
        })
        .collect())
}
