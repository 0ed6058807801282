//! Checkpoints of the HubSpot → PostgreSQL streams, stored in `hubsync.cursors` in the same
//! transaction as the data they cover: a `kill -9` at any moment followed by a rerun loses
//! nothing, duplicates nothing (writes are idempotent upserts) and refetches at most the
//! pages that were in flight (lessons.md 5).
//!
//! One cursor per object and stream:
//!
//! | stream | position |
//! |---|---|
//! | `backfill` | [`BackfillPosition`]: list cursor, start time, done |
//! | `incremental` | [`IncrementalPosition`]: high-water mark, ids whose associations are due |
//! | `associations` | [`SweepPosition`]: the periodic re-read of every association |
//! | `archived` | [`SweepPosition`]: the archived listing |
//! | `reconcile` | [`SweepPosition`]: the id-set comparison |

use std::time::Duration;

use chrono::{DateTime, Utc};
use hubsync_store::{GenericClient, StoreError, state::cursors};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Stream name of the backfill.
pub const BACKFILL: &str = "backfill";
/// Stream name of the incremental search.
pub const INCREMENTAL: &str = "incremental";
/// Stream name of the association sweep.
pub const ASSOCIATIONS: &str = "associations";
/// Stream name of the archived listing.
pub const ARCHIVED: &str = "archived";
/// Stream name of the id-set reconciliation.
pub const RECONCILE: &str = "reconcile";

/// Where the backfill of one object is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillPosition {
    /// The list cursor of the next page (`None` before the first page and after the last).
    pub after: Option<String>,
    /// When the backfill began (epoch ms): the first high-water mark is derived from it.
    pub started_at_ms: i64,
    /// Records written so far.
    pub records: u64,
    /// Whether every page was written.
    pub done: bool,
}

/// Where the incremental stream of one object is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalPosition {
    /// Every change with a modified date before this (epoch ms), minus the lookback, is
    /// in PostgreSQL.
    pub hwm_ms: i64,
    /// When the last pass completed (epoch ms).
    #[serde(default)]
    pub last_pass_ms: Option<i64>,
    /// Records written or changed since their associations were last read.
    #[serde(default)]
    pub pending_associations: Vec<i64>,
}

/// A periodic sweep: the run in progress, and when the last one completed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepPosition {
    /// The sweep in progress, if any.
    pub running: Option<SweepRun>,
    /// When the last sweep completed (epoch ms).
    pub last_completed_ms: Option<i64>,
}

/// Progress of a sweep in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRun {
    /// When it started (epoch ms).
    pub started_at_ms: i64,
    /// HubSpot list cursor of the next page, for sweeps that page HubSpot.
    pub after: Option<String>,
    /// Highest record id done so far, for sweeps that walk ids.
    pub after_id: i64,
}

impl SweepPosition {
    /// Whether a new sweep should start at `now`: none ever completed, or the last one is
    /// `every` old. A sweep already running is always continued.
    pub fn due(&self, every: Duration, now: DateTime<Utc>) -> bool {
        if self.running.is_some() {
            return true;
        }
        match self.last_completed_ms {
            None => true,
            Some(last) => {
                let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
                now.timestamp_millis().saturating_sub(last) >= every
            }
        }
    }

    /// The run to continue, or a new one starting at `now`.
    pub fn run_or_start(&self, now: DateTime<Utc>) -> SweepRun {
        self.running.clone().unwrap_or(SweepRun {
            started_at_ms: now.timestamp_millis(),
            after: None,
            after_id: 0,
        })
    }

    /// A completed sweep position (as of the run's start).
    pub fn completed(run: &SweepRun) -> Self {
        Self {
            running: None,
            last_completed_ms: Some(run.started_at_ms),
        }
    }

    /// The position to store after a page of `run`: still running while HubSpot has more
    /// pages (`more`), completed after the last one.
    pub fn after_page(&self, run: &SweepRun, more: bool) -> Self {
        if more {
            Self {
                running: Some(run.clone()),
                ..self.clone()
            }
        } else {
            Self::completed(run)
        }
    }
}

/// Reads a stream's position (the default when none was stored).
///
/// # Errors
/// Database errors; a stored position of another shape.
pub async fn load<T: DeserializeOwned + Default>(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
) -> Result<T, StoreError> {
    Ok(cursors::get_as::<T>(client, object, stream)
        .await?
        .unwrap_or_default())
}

/// Reads a stream's position, `None` when none was stored.
///
/// # Errors
/// Database errors; a stored position of another shape.
pub async fn load_opt<T: DeserializeOwned>(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
) -> Result<Option<T>, StoreError> {
    cursors::get_as::<T>(client, object, stream).await
}

/// Stores a stream's position; call it on the transaction that wrote the data.
///
/// # Errors
/// Database errors.
pub async fn save<T: Serialize + Sync>(
    client: &impl GenericClient,
    object: &str,
    stream: &str,
    position: &T,
) -> Result<(), StoreError> {
    cursors::set_as(client, object, stream, position).await
}

/// Epoch milliseconds to a time (the epoch itself for out-of-range values).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A duration in milliseconds, saturating.
pub fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_are_due_when_never_run_running_or_old() {
        let now = from_ms(1_000_000);
        let every = Duration::from_secs(60);
        assert!(SweepPosition::default().due(every, now));
        let done = SweepPosition {
            running: None,
            last_completed_ms: Some(999_000),
        };
        assert!(!done.due(every, now));
        assert!(done.due(Duration::ZERO, now));
        let old = SweepPosition {
            running: None,
            last_completed_ms: Some(900_000),
        };
        assert!(old.due(every, now));
        let running = SweepPosition {
            running: Some(SweepRun::default()),
            last_completed_ms: Some(999_999),
        };
        assert!(running.due(every, now));
    }

    #[test]
    fn positions_round_trip_as_json() {
        let p = IncrementalPosition {
            hwm_ms: 5,
            last_pass_ms: None,
            pending_associations: vec![1, 2],
        };
        let json = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(
            serde_json::from_value::<IncrementalPosition>(json).ok(),
            Some(p)
        );
        let old: IncrementalPosition =
            serde_json::from_value(serde_json::json!({"hwm_ms": 7})).unwrap_or_default();
        assert_eq!(old.hwm_ms, 7);
    }
}
