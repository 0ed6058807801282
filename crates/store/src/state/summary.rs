//! Per-object counts across the state tables, for `hubsync status`, the dashboard and
//! `/metrics`: pending outbound changes, webhook events waiting, open conflicts, data
//! issues, failed records and the last checkpoint. One round trip.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::error::{Context as _, StoreError};

/// What the state tables say about one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectSummary {
    /// Outbox entries waiting to be sent (pending, or claimed and in flight).
    pub outbox_pending: i64,
    /// Outbox entries HubSpot rejected, waiting for the row to change again.
    pub outbox_failed: i64,
    /// When the oldest waiting outbox entry was captured (for lag).
    pub outbox_oldest: Option<DateTime<Utc>>,
    /// Webhook events not yet processed.
    pub inbox_pending: i64,
    /// When the oldest of them arrived (for lag).
    pub inbox_oldest: Option<DateTime<Utc>>,
    /// Conflicts waiting for a person.
    pub conflicts_open: i64,
    /// Values that did not fit their column.
    pub issues: i64,
    /// Records whose last write failed.
    pub records_failed: i64,
    /// The most recent checkpoint of any of the object's streams.
    pub last_checkpoint: Option<DateTime<Utc>>,
}

impl ObjectSummary {
    /// How far behind the object is at `now`, in whole seconds: the age of the oldest
    /// change not yet applied — a webhook event waiting in the inbox or a PostgreSQL change
    /// waiting in the outbox (rejected entries are errors, not lag); 0 when nothing waits.
    pub fn lag_seconds(&self, now: DateTime<Utc>) -> i64 {
        [self.inbox_oldest, self.outbox_oldest]
            .into_iter()
            .flatten()
            .map(|at| (now - at).num_seconds().max(0))
            .max()
            .unwrap_or(0)
    }
}

/// Summaries of every object that appears in any state table, by object name.
///
/// # Errors
/// Database errors.
pub async fn by_object(
    client: &impl GenericClient,
) -> Result<BTreeMap<String, ObjectSummary>, StoreError> {
    let rows = client
        .query(
            "SELECT object, 'outbox_pending', count(*), min(changed_at) FROM hubsync.outbox \
               WHERE status IN ('pending', 'in_flight') GROUP BY object \
             UNION ALL SELECT object, 'outbox_failed', count(*), NULL FROM hubsync.outbox \
               WHERE status = 'failed' GROUP BY object \
             UNION ALL SELECT object, 'inbox_pending', count(*), min(received_at) FROM hubsync.inbox \
               WHERE processed_at IS NULL GROUP BY object \
             UNION ALL SELECT object, 'conflicts_open', count(*), NULL FROM hubsync.conflicts \
               WHERE status = 'open' GROUP BY object \
             UNION ALL SELECT object, 'issues', count(*), NULL FROM hubsync.issues \
               GROUP BY object \
             UNION ALL SELECT object, 'records_failed', count(*), NULL \
               FROM hubsync.record_state WHERE status = 'failed' GROUP BY object \
             UNION ALL SELECT object, 'checkpoint', 0, max(updated_at) FROM hubsync.cursors \
               GROUP BY object",
            &[],
        )
        .await
        .during("summarise the state tables")?;
    let mut out: BTreeMap<String, ObjectSummary> = BTreeMap::new();
    for r in rows {
        let summary = out.entry(r.get(0)).or_default();
        let count: i64 = r.get(2);
        let at: Option<DateTime<Utc>> = r.get(3);
        match r.get::<_, &str>(1) {
            "outbox_pending" => {
                summary.outbox_pending = count;
                summary.outbox_oldest = at;
            }
            "outbox_failed" => summary.outbox_failed = count,
            "inbox_pending" => {
                summary.inbox_pending = count;
                summary.inbox_oldest = at;
            }
            "conflicts_open" => summary.conflicts_open = count,
            "issues" => summary.issues = count,
            "records_failed" => summary.records_failed = count,
            _ => summary.last_checkpoint = at,
        }
    }
    Ok(out)
}
