//! PostgreSQL side of hubsync: connection pool, migrations of the `hubsync` state schema,
//! property → column mapping and DDL, batch writers, change capture and the private-cluster
//! launcher used by the demo and the test kit.
//!
//! ```no_run
//! # async fn f() -> Result<(), hubsync_store::StoreError> {
//! let store = hubsync_store::Store::connect("postgresql://hubsync@db.example.com/crm?sslmode=verify-full").await?;
//! hubsync_store::migrate(&store).await?;
//! # Ok(()) }
//! ```

pub mod associations;
pub mod catalog;
pub mod naming;
pub mod rows;
pub mod schema;
pub mod tombstones;
pub mod upsert;
pub mod values;

mod capture;
mod cluster;
mod encoding;
mod error;
mod migrate;
mod origin;
mod pool;
pub mod preflight;
pub mod state;
#[cfg(feature = "test-kit")]
mod test_kit;
mod tls;

pub use capture::{
    CAPTURE_TRIGGER, CONFLICTS_CHANNEL, CaptureSpec, INBOX_CHANNEL, OUTBOX_CHANNEL, OutboxListener,
    TRUNCATE_TRIGGER, Wakeup, captured_tables, install as install_capture,
    remove as remove_capture, set_allow_truncate,
};
pub use cluster::{CLUSTER_USER, ClusterOptions, PrivateCluster, find_bin_dir};
pub use error::{ErrorKind, StoreError, classify, classify_code};
pub use migrate::{HISTORY_TABLE, STATE_SCHEMA, embedded_migrations, migrate};
pub use origin::{ORIGIN_HUBSYNC, ORIGIN_SETTING, tag_transaction, tagged_transaction};
pub use pool::{DedicatedConnection, Store, StoreClient, StoreOptions, StoreTransaction};
#[cfg(feature = "test-kit")]
pub use test_kit::{TEST_DATABASE_URL_ENV, TestDb};
pub use tls::SslMode;

/// Re-exported so callers name the same driver and pool types the store uses.
pub use deadpool_postgres::GenericClient;
pub use tokio_postgres;
