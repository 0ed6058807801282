//! The connection pool: [`Store`] wraps a deadpool-postgres pool built from a libpq URL or
//! `key=value` string, with TLS per `sslmode` and hubsync's session defaults (UTC, statement
//! and lock timeouts, `application_name`) applied to every new connection. It also opens
//! dedicated, non-pooled connections for `LISTEN`.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{
    error::StoreError,
    tls::{self, ConnectionSpec},
};

/// A connection taken from the pool; returns to the pool when dropped.
pub type StoreClient = deadpool_postgres::Object;

/// A transaction on a pooled connection.
pub type StoreTransaction<'a> = deadpool_postgres::Transaction<'a>;

/// Tunables of the pool and of each session. The defaults suit the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most connections the pool opens.
    pub max_connections: usize,
    /// `statement_timeout` of every session.
    pub statement_timeout: Duration,
    /// `lock_timeout` of every session.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of every session.
    pub idle_in_transaction_timeout: Duration,
    /// How long [`Store::client`] waits for a free or new connection.
    pub wait_timeout: Duration,
    /// `application_name` shown in `pg_stat_activity` (unless the URL sets one).
    pub application_name: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            statement_timeout: Duration::from_secs(120),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(300),
            wait_timeout: Duration::from_secs(30),
            application_name: "hubsync".to_owned(),
        }
    }
}

/// hubsync's handle on one PostgreSQL database: a pool plus what is needed to open
/// dedicated connections. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    spec: ConnectionSpec,
    connector: MakeRustlsConnect,
    options: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the config: it may hold a password.
        f.debug_struct("Store")
            .field("database", &self.inner.spec.config.get_dbname())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects with default [`StoreOptions`]; see [`Store::connect_with`].
    ///
    /// # Errors
    /// A bad connection string, TLS set-up, or a first connection that fails.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Builds the pool from a `postgres://` URL or libpq `key=value` string and opens one
    /// connection to prove the settings work.
    ///
    /// # Errors
    /// A bad connection string, TLS set-up, or a first connection that fails.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let mut spec = tls::parse(url)?;
        if spec.config.get_application_name().is_none() {
            spec.config.application_name(&options.application_name);
        }
        let connector = tls::connector(&spec.tls)?;
        let manager = Manager::from_config(
            spec.config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let session_sql = session_defaults_sql(&options);
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.wait_timeout))
            .post_create(Hook::async_fn(move |client, _| {
                let sql = session_sql.clone();
                Box::pin(async move {
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(HookError::Backend)?;
                    Ok(())
                })
            }))
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the connection pool: {e}")))?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                spec,
                connector,
                options,
            }),
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// Takes a connection from the pool (opening one if needed).
    ///
    /// # Errors
    /// [`StoreError::Pool`] when no connection can be had within the wait timeout.
    pub async fn client(&self) -> Result<StoreClient, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    /// Opens a connection outside the pool whose asynchronous messages (notifications,
    /// notices) are delivered to the caller. Use it for `LISTEN`.
    ///
    /// # Errors
    /// The connection or its session set-up failed.
    pub async fn connect_dedicated(&self) -> Result<DedicatedConnection, StoreError> {
        let (client, mut connection) = self
            .inner
            .spec
            .config
            .connect(self.inner.connector.clone())
            .await
            .map_err(|e| StoreError::postgres("open a dedicated connection", e))?;
        let (tx, messages) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = stream.next().await {
                match message {
                    Ok(m) => {
                        if tx.send(m).is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%error, "dedicated PostgreSQL connection ended");
                        break;
                    }
                }
            }
        });
        let connection = DedicatedConnection {
            client,
            messages,
            driver,
        };
        connection
            .client
            .batch_execute(&session_defaults_sql(&self.inner.options))
            .await
            .map_err(|e| StoreError::postgres("set session defaults", e))?;
        Ok(connection)
    }

    /// The pool and session settings in use.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// The database name from the connection string, if it gave one.
    pub fn database(&self) -> Option<&str> {
        self.inner.spec.config.get_dbname()
    }

    /// Counts of connections in the pool: `(open, idle)`.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = self.inner.pool.status();
        (status.size, status.available)
    }

    /// Closes the pool; later [`Store::client`] calls fail.
    pub fn close(&self) {
        self.inner.pool.close();
    }
}

/// The `SET` statements run once on every new session.
fn session_defaults_sql(options: &StoreOptions) -> String {
    format!(
        "SET TIME ZONE 'UTC'; SET statement_timeout = {}; SET lock_timeout = {}; \
         SET idle_in_transaction_session_timeout = {};",
        options.statement_timeout.as_millis(),
        options.lock_timeout.as_millis(),
        options.idle_in_transaction_timeout.as_millis(),
    )
}

/// A non-pooled connection whose notifications and notices the caller receives.
/// Dropping it closes the connection.
#[derive(Debug)]
pub struct DedicatedConnection {
    client: tokio_postgres::Client,
    messages: mpsc::UnboundedReceiver<AsyncMessage>,
    driver: tokio::task::JoinHandle<()>,
}

impl DedicatedConnection {
    /// The client to send statements (`LISTEN …`) on.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// The next asynchronous message; `None` once the connection has ended.
    pub async fn next_message(&mut self) -> Option<AsyncMessage> {
        self.messages.recv().await
    }
}

impl Drop for DedicatedConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
