//! Progress reporting of a pass: the engine says what it is doing, the binary draws it
//! (indicatif bars on a terminal) or logs it.

use std::fmt;

/// A phase of one object's pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// First full copy through the list endpoint.
    Backfill,
    /// Changed records since the high-water mark, through search.
    Incremental,
    /// Re-reading associations (of changed records, or all of them in a sweep).
    Associations,
    /// Archived listing and id-set reconciliation.
    Deletes,
}

impl Phase {
    /// A short lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backfill => "backfill",
            Self::Incremental => "incremental",
            Self::Associations => "associations",
            Self::Deletes => "deletes",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives progress. All methods have do-nothing defaults.
pub trait Progress: Send + Sync {
    /// Whether the receiver shows totals; if so the engine spends one search call per
    /// object to count records before a backfill.
    fn wants_totals(&self) -> bool {
        false
    }

    /// A phase of `object` starts; `total` records are expected when known.
    fn start(&self, object: &str, phase: Phase, total: Option<u64>) {
        let _ = (object, phase, total);
    }

    /// `records` more records of `object` were written.
    fn advance(&self, object: &str, phase: Phase, records: u64) {
        let _ = (object, phase, records);
    }

    /// The phase ended.
    fn finish(&self, object: &str, phase: Phase) {
        let _ = (object, phase);
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
