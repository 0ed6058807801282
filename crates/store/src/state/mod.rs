//! Typed access to hubsync's state tables in the `hubsync` schema (created by the
//! migrations). Every function takes any [`GenericClient`](crate::GenericClient) — a pooled
//! connection or a transaction — so callers can write state in the same transaction as the
//! data it describes (a cursor with the page it covers, the shadow with the row it mirrors).

pub mod audit;
pub mod conflicts;
pub mod cursors;
pub mod inbox;
pub mod issues;
pub mod leases;
pub mod outbox;
pub mod records;
pub mod shadow;

use std::time::Duration;

use crate::error::StoreError;

/// A duration as the seconds PostgreSQL's `make_interval(secs => …)` takes.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Parses a text status column into its enum, or reports corrupt state.
pub(crate) fn parse_text<T>(
    column: &'static str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} {value:?}")))
}
