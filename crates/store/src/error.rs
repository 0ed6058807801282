//! The store's error type and the one place where PostgreSQL errors are sorted into kinds.
//!
//! Every caller decides what to do with a failure by asking [`StoreError::kind`] or
//! [`StoreError::is_retryable`], never by matching message text. The mapping from SQLSTATE
//! classes to [`ErrorKind`] lives in [`classify`] and nowhere else.

use std::fmt;

use tokio_postgres::error::SqlState;

/// What sort of failure a [`StoreError`] is, as far as a retry decision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection could not be made or was lost (SQLSTATE class 08, admin shutdown,
    /// server starting up, pool exhausted). Retry with backoff.
    Connection,
    /// A transient failure of this attempt: serialization failure, deadlock, lock timeout,
    /// statement timeout, out of resources. Retry the whole transaction.
    Transient,
    /// A constraint was violated (class 23): unique, foreign key, check, not null.
    Conflict,
    /// A value does not fit its column (class 22): bad number, date out of range, …
    InvalidData,
    /// Authentication or authorisation failed (class 28, insufficient privilege).
    Auth,
    /// The connection settings are wrong (bad URL, unknown option, TLS set-up).
    Config,
    /// Anything else: a bug, a schema mismatch, a missing object. Retrying will not help.
    Permanent,
}

impl ErrorKind {
    /// Whether an operation that failed with this kind may succeed if tried again.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Connection | Self::Transient)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connection => "connection",
            Self::Transient => "transient",
            Self::Conflict => "constraint",
            Self::InvalidData => "invalid data",
            Self::Auth => "authentication",
            Self::Config => "configuration",
            Self::Permanent => "permanent",
        })
    }
}

/// Errors of the store crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A statement or connection attempt failed; `kind` says whether to retry.
    #[error("PostgreSQL {kind} error while trying to {action}")]
    Postgres {
        /// The classification of the underlying error.
        kind: ErrorKind,
        /// What the store was doing, in a few words (never contains values).
        action: &'static str,
        /// The driver's error (carries the server's message and SQLSTATE).
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be taken from the pool in time.
    #[error("could not get a PostgreSQL connection from the pool")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// The connection string or a connection option is invalid.
    #[error("invalid PostgreSQL connection settings: {0}")]
    Config(String),
    /// TLS could not be set up (for example an unreadable `sslrootcert`).
    #[error("TLS set-up for PostgreSQL failed: {message}")]
    Tls {
        /// What went wrong.
        message: String,
        /// The underlying I/O or TLS error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Applying the `hubsync` schema migrations failed.
    #[error("migrating the hubsync schema failed")]
    Migration(#[source] refinery::Error),
    /// Starting or stopping the private PostgreSQL cluster failed.
    #[error("private PostgreSQL cluster: {message}")]
    Cluster {
        /// What went wrong, with the path or command involved.
        message: String,
        /// The I/O error behind it, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A caller passed something the store cannot use (an empty column list, a bad name…).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// Data read from the `hubsync` schema did not have the expected shape.
    #[error("unexpected data in the hubsync schema: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a driver error, classifying it by SQLSTATE.
    pub fn postgres(action: &'static str, source: tokio_postgres::Error) -> Self {
        Self::Postgres {
            kind: classify(&source),
            action,
            source,
        }
    }

    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Postgres { kind, .. } => *kind,
            Self::Pool(err) => match err {
                deadpool_postgres::PoolError::Backend(e) => classify(e),
                deadpool_postgres::PoolError::PostCreateHook(_) => ErrorKind::Connection,
                deadpool_postgres::PoolError::Timeout(_) => ErrorKind::Connection,
                deadpool_postgres::PoolError::Closed => ErrorKind::Permanent,
                deadpool_postgres::PoolError::NoRuntimeSpecified => ErrorKind::Config,
            },
            Self::Config(_) | Self::Tls { .. } => ErrorKind::Config,
            Self::Migration(_) | Self::Cluster { .. } | Self::Invalid(_) | Self::Corrupt(_) => {
                ErrorKind::Permanent
            }
        }
    }

    /// Whether retrying the failed operation (with backoff) may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// The SQLSTATE code of the server's error, if there was one.
    pub fn sql_state(&self) -> Option<&SqlState> {
        match self {
            Self::Postgres { source, .. } => source.code(),
            Self::Pool(deadpool_postgres::PoolError::Backend(e)) => e.code(),
            _ => None,
        }
    }

    pub(crate) fn cluster(message: impl Into<String>, source: Option<std::io::Error>) -> Self {
        Self::Cluster {
            message: message.into(),
            source,
        }
    }
}

/// Attaches what the store was doing to a driver error (and classifies it).
pub(crate) trait Context<T> {
    /// Maps the error into [`StoreError::Postgres`] with `action` as its description.
    fn during(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, tokio_postgres::Error> {
    fn during(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::postgres(action, e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        Self::Pool(err)
    }
}

impl From<refinery::Error> for StoreError {
    fn from(err: refinery::Error) -> Self {
        Self::Migration(err)
    }
}

/// Sorts a driver error into an [`ErrorKind`] by its SQLSTATE class.
pub fn classify(err: &tokio_postgres::Error) -> ErrorKind {
    let Some(code) = err.code() else {
        // No SQLSTATE: an I/O failure, a closed connection or a connect timeout (these carry
        // an I/O source or none at all) — or a client-side conversion/config error, which
        // carries its own non-I/O source.
        let source = std::error::Error::source(err);
        if source.is_some_and(is_tls_rejection) {
            // The server's certificate was refused: a settings problem, not a blip.
            return ErrorKind::Config;
        }
        return if err.is_closed() || source.is_none_or(is_io) {
            ErrorKind::Connection
        } else {
            ErrorKind::Permanent
        };
    };
    classify_code(code)
}

fn is_io(err: &(dyn std::error::Error + 'static)) -> bool {
    err.is::<std::io::Error>()
}

fn is_tls_rejection(err: &(dyn std::error::Error + 'static)) -> bool {
    let inner = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref());
    matches!(
        inner.and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Sorts a SQLSTATE into an [`ErrorKind`].
pub fn classify_code(code: &SqlState) -> ErrorKind {
    let s = code.code();
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
        || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
    {
        return ErrorKind::Transient;
    }
    if *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        return ErrorKind::Connection;
    }
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        return ErrorKind::Auth;
    }
    match s.get(..2) {
        Some("08") => ErrorKind::Connection,
        Some("40") => ErrorKind::Transient,
        Some("53") => ErrorKind::Transient,
        Some("23") => ErrorKind::Conflict,
        Some("22") => ErrorKind::InvalidData,
        Some("28") => ErrorKind::Auth,
        _ => ErrorKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_sort_into_kinds() {
        let cases = [
            ("08006", ErrorKind::Connection),
            ("57P01", ErrorKind::Connection),
            ("53300", ErrorKind::Connection),
            ("40001", ErrorKind::Transient),
            ("40P01", ErrorKind::Transient),
            ("55P03", ErrorKind::Transient),
            ("57014", ErrorKind::Transient),
            ("53200", ErrorKind::Transient),
            ("23505", ErrorKind::Conflict),
            ("23503", ErrorKind::Conflict),
            ("22P02", ErrorKind::InvalidData),
            ("22008", ErrorKind::InvalidData),
            ("28P01", ErrorKind::Auth),
            ("42501", ErrorKind::Auth),
            ("42P01", ErrorKind::Permanent),
            ("P0001", ErrorKind::Permanent),
        ];
        for (code, kind) in cases {
            assert_eq!(classify_code(&SqlState::from_code(code)), kind, "{code}");
        }
    }

    #[test]
    fn only_connection_and_transient_retry() {
        assert!(ErrorKind::Connection.is_retryable());
        assert!(ErrorKind::Transient.is_retryable());
        assert!(!ErrorKind::Conflict.is_retryable());
        assert!(!ErrorKind::InvalidData.is_retryable());
        assert!(!ErrorKind::Permanent.is_retryable());
    }
}
