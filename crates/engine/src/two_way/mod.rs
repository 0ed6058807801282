//! Two-way sync of one object: the inbound merge of HubSpot records against the shadow copy
//! (echoes dropped, conflicts settled by policy or queued for a person), the application of
//! manual resolutions, and the object description ([`TwoWayObject`]) that the PostgreSQL →
//! HubSpot writer ([`crate::pg_to_hs`]) shares.
//!
//! The decisions themselves are [`crate::merge::merge_field`]'s, turned into what the pull
//! writes by the pure `inbound_field::decide`; this module feeds them observations read from
//! PostgreSQL (the shadow, pending outbox changes, current rows) and HubSpot (per-property
//! timestamps for `last-write-wins` conflicts) and carries the outcomes out: rows to write,
//! shadow updates, conflict records, audit entries.
//! docs/conflicts.md describes the behaviour for users.

mod inbound;
pub(crate) mod inbound_field;
mod object;
mod resolve;
pub(crate) mod shadow_io;
mod unrecorded;

pub use inbound::{InboundOutcome, inbound, link_records};
pub use object::{ROW_ID_PROPERTY, TwoWayObject};
pub use resolve::{ResolveReport, apply_resolutions, write_fields_to_postgres};

use hubsync_hubspot::HubSpotError;
use hubsync_store::StoreError;

/// Why a two-way step failed. Per-record problems (HubSpot rejecting one record) are not
/// errors: they are recorded on the record (`hubsync.record_state`) and the step goes on.
#[derive(Debug, thiserror::Error)]
pub enum TwoWayError {
    /// PostgreSQL failed; the step's transaction was rolled back and can be retried.
    #[error("PostgreSQL failed during two-way sync")]
    Store(#[from] StoreError),
    /// HubSpot failed for a whole call (transport, retries exhausted, budget).
    #[error("HubSpot failed during two-way sync")]
    HubSpot(#[from] HubSpotError),
    /// The object cannot be written back as configured (e.g. no unique row-id property).
    #[error("two-way sync of {object} is not possible: {reason}")]
    Unsupported {
        /// The object.
        object: String,
        /// Why.
        reason: String,
    },
}

impl TwoWayError {
    /// Whether running the step again later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::HubSpot(e) => e.is_retryable(),
            Self::Unsupported { .. } => false,
        }
    }
}
