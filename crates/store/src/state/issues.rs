//! `hubsync.issues`: values HubSpot sent that do not fit their column. One row per
//! object, record and property, counting repeats; cleared when a good value arrives.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::error::{Context as _, StoreError};

/// A bad value seen during a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIssue {
    /// HubSpot object.
    pub object: String,
    /// HubSpot record id.
    pub hs_object_id: i64,
    /// HubSpot property.
    pub property: String,
    /// The value as HubSpot sent it.
    pub raw_value: Option<String>,
    /// Why it does not fit (e.g. "not a number").
    pub reason: String,
}

/// A stored issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Its id.
    pub id: i64,
    /// What was seen last.
    pub detail: NewIssue,
    /// First time seen.
    pub first_seen: DateTime<Utc>,
    /// Last time seen.
    pub last_seen: DateTime<Utc>,
    /// How many times seen.
    pub occurrences: i32,
}

/// Records issues (one statement for the batch; the last of duplicates wins). Returns how
/// many rows were written.
///
/// # Errors
/// Database errors.
pub async fn upsert(client: &impl GenericClient, issues: &[NewIssue]) -> Result<u64, StoreError> {
    let mut latest: HashMap<(&str, i64, &str), &NewIssue> = HashMap::new();
    for i in issues {
        latest.insert((i.object.as_str(), i.hs_object_id, i.property.as_str()), i);
    }
    if latest.is_empty() {
        return Ok(0);
    }
    let issues: Vec<&NewIssue> = latest.into_values().collect();
    let objects: Vec<&str> = issues.iter().map(|i| i.object.as_str()).collect();
    let ids: Vec<i64> = issues.iter().map(|i| i.hs_object_id).collect();
    let properties: Vec<&str> = issues.iter().map(|i| i.property.as_str()).collect();
    let raws: Vec<Option<&str>> = issues.iter().map(|i| i.raw_value.as_deref()).collect();
    let reasons: Vec<&str> = issues.iter().map(|i| i.reason.as_str()).collect();
    client
        .execute(
            "INSERT INTO hubsync.issues (object, hs_object_id, property, raw_value, reason) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[]) \
             ON CONFLICT (object, hs_object_id, property) DO UPDATE SET \
               raw_value = excluded.raw_value, reason = excluded.reason, last_seen = now(), \
               occurrences = issues.occurrences + 1",
            &[&objects, &ids, &properties, &raws, &reasons],
        )
        .await
        .during("record data issues")
}

/// Clears the issues of a record's properties (a good value arrived). Returns how many.
///
/// # Errors
/// Database errors.
pub async fn clear(
    client: &impl GenericClient,
    object: &str,
    hs_object_id: i64,
    properties: &[&str],
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM hubsync.issues \
             WHERE object = $1 AND hs_object_id = $2 AND property = ANY($3)",
            &[&object, &hs_object_id, &properties],
        )
        .await
        .during("clear data issues")
}

/// Lists issues, most recently seen first.
///
/// # Errors
/// Database errors.
pub async fn list(
    client: &impl GenericClient,
    object: Option<&str>,
    limit: i64,
) -> Result<Vec<Issue>, StoreError> {
    let rows = client
        .query(
            "SELECT id, object, hs_object_id, property, raw_value, reason, first_seen, \
               last_seen, occurrences FROM hubsync.issues \
             WHERE $1::text IS NULL OR object = $1 ORDER BY last_seen DESC, id LIMIT $2",
            &[&object, &limit],
        )
        .await
        .during("list data issues")?;
    Ok(rows
        .iter()
        .map(|r| Issue {
            id: r.get(0),
            detail: NewIssue {
                object: r.get(1),
                hs_object_id: r.get(2),
                property: r.get(3),
                raw_value: r.get(4),
                reason: r.get(5),
            },
            first_seen: r.get(6),
            last_seen: r.get(7),
            occurrences: r.get(8),
        })
        .collect())
}

/// Issues for one object or all.
///
/// # Errors
/// Database errors.
pub async fn count(client: &impl GenericClient, object: Option<&str>) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM hubsync.issues WHERE $1::text IS NULL OR object = $1",
            &[&object],
        )
        .await
        .during("count data issues")?;
    Ok(row.get(0))
}
