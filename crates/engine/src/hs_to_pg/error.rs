//! The error of a HubSpot → PostgreSQL pass: which side failed, and whether trying again
//! may help.

use hubsync_hubspot::HubSpotError;
use hubsync_store::StoreError;

/// Why a pass (or one object of it) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A HubSpot call failed after the client's retries.
    #[error("HubSpot call failed while syncing {object}")]
    HubSpot {
        /// The object being synced.
        object: String,
        /// The client's error.
        #[source]
        source: HubSpotError,
    },
    /// A PostgreSQL statement failed.
    #[error("PostgreSQL failed while syncing {object}")]
    Store {
        /// The object being synced.
        object: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A configured object or property does not exist in HubSpot, or the settings are
    /// contradictory.
    #[error("{0}")]
    Setup(String),
    /// A backfill batch was rolled back because a batch before it failed (that batch's
    /// error is the one reported): its checkpoint must not pass records not stored.
    #[error("a backfill batch of {object} was rolled back: an earlier batch failed")]
    EarlierBatchFailed {
        /// The object being synced.
        object: String,
    },
}

impl SyncError {
    /// Whether running the pass again may succeed (rate limits, timeouts, lost
    /// connections, lock timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::HubSpot { source, .. } => source.is_retryable(),
            Self::Store { source, .. } => source.is_retryable(),
            Self::Setup(_) => false,
            Self::EarlierBatchFailed { .. } => true,
        }
    }
}

/// Attaches the object name to HubSpot and store errors (`.map_err(on(object))`).
pub(crate) fn on<E: Into<Cause>>(object: &str) -> impl Fn(E) -> SyncError + '_ {
    move |err| match err.into() {
        Cause::HubSpot(source) => SyncError::HubSpot {
            object: object.to_owned(),
            source,
        },
        Cause::Store(source) => SyncError::Store {
            object: object.to_owned(),
            source,
        },
    }
}

/// Either side's error, before the object name is attached.
pub(crate) enum Cause {
    HubSpot(HubSpotError),
    Store(StoreError),
}

impl From<HubSpotError> for Cause {
    fn from(e: HubSpotError) -> Self {
        Self::HubSpot(e)
    }
}

impl From<StoreError> for Cause {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<hubsync_store::tokio_postgres::Error> for Cause {
    fn from(e: hubsync_store::tokio_postgres::Error) -> Self {
        Self::Store(StoreError::postgres("run a sync statement", e))
    }
}
