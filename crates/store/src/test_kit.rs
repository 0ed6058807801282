//! Test kit (feature `test-kit`): one fresh database per test on a PostgreSQL server shared
//! by the whole `cargo test` run.
//!
//! The server is `HUBSYNC_TEST_DATABASE_URL` when set (any server where the user may
//! `CREATE DATABASE`), otherwise a private cluster in `$TMPDIR/hubsync-test-pg-<uid>`,
//! started on first use and left running for the next test binary and the next run (an
//! exclusive lock on a file next to it makes concurrent test binaries start it only once).
//! It runs with durability off, so never point it at data you keep.
//!
//! Each [`TestDb`] is a database `test_<uuid v7>` that is dropped when the value is dropped;
//! databases left behind by crashed runs are swept once they are more than six hours old.

use std::{
    path::PathBuf,
    sync::OnceLock,
    time::{Duration, SystemTime},
};

use crate::{
    Store, StoreOptions,
    cluster::{ClusterOptions, PrivateCluster},
    error::StoreError,
    migrate,
};

/// Environment variable naming an existing server to create test databases on.
pub const TEST_DATABASE_URL_ENV: &str = "HUBSYNC_TEST_DATABASE_URL";

/// How old a left-behind test database must be before the sweeper drops it.
const SWEEP_AFTER: Duration = Duration::from_secs(6 * 3600);

/// A fresh, empty-or-migrated database for one test; dropped with this value.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
    store: Store,
}

impl TestDb {
    /// A fresh database with the `hubsync` schema migrated.
    ///
    /// # Panics
    /// When no server can be started or reached: a test cannot go on without one.
    pub async fn new() -> TestDb {
        let db = Self::empty().await;
        if let Err(e) = migrate::migrate(&db.store).await {
            panic!(
                "test kit: migrating {} failed: {}",
                db.name,
                error_chain(&e)
            );
        }
        db
    }

    /// A fresh database with nothing in it (no migrations run).
    ///
    /// # Panics
    /// When no server can be started or reached.
    pub async fn empty() -> TestDb {
        match Self::try_empty().await {
            Ok(db) => db,
            Err(e) => panic!(
                "test kit: cannot create a test database: {}",
                error_chain(&e)
            ),
        }
    }

    async fn try_empty() -> Result<TestDb, StoreError> {
        let admin_url = server_url()?;
        let name = format!("test_{}", uuid::Uuid::now_v7().simple());
        let admin = admin_store(&admin_url).await?;
        let client = admin.client().await?;
        sweep_once(&client).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| StoreError::postgres("create a test database", e))?;
        drop(client);
        admin.close();
        let url = with_dbname(&admin_url, &name)?;
        let store = Store::connect_with(
            &url,
            StoreOptions {
                max_connections: 8,
                ..StoreOptions::default()
            },
        )
        .await?;
        Ok(TestDb {
            name,
            url,
            admin_url,
            store,
        })
    }

    /// Connection string of this database (libpq `key=value` or URL form).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool on this database.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.store.close();
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, where we may not block on async work: do it
        // on a thread with its own small runtime and wait for it.
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = admin_store(&admin_url).await
                    && let Ok(client) = admin.client().await
                {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(error) = client.batch_execute(&sql).await {
                        tracing::warn!(%error, database = %name, "could not drop test database");
                    }
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn admin_store(url: &str) -> Result<Store, StoreError> {
    Store::connect_with(
        url,
        StoreOptions {
            max_connections: 1,
            application_name: "hubsync-test-kit".to_owned(),
            ..StoreOptions::default()
        },
    )
    .await
}

/// The maintenance-database URL of the shared test server, starting it if needed.
fn server_url() -> Result<String, StoreError> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var(TEST_DATABASE_URL_ENV) {
            return Ok(url);
        }
        start_shared_cluster()
            .map(|c| c.url())
            .map_err(|e| error_chain(&e))
    })
    .clone()
    .map_err(StoreError::Invalid)
}

/// Starts (or finds running) the shared cluster, holding a file lock so that concurrent
/// test processes do it one at a time.
fn start_shared_cluster() -> Result<PrivateCluster, StoreError> {
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    let tag = uid.map_or_else(|_| "user".to_owned(), |u| u.to_string());
    let base: PathBuf = std::env::temp_dir().join(format!("hubsync-test-pg-{tag}"));
    let lock_path = std::env::temp_dir().join(format!("hubsync-test-pg-{tag}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StoreError::cluster(format!("cannot open {}", lock_path.display()), Some(e))
        })?;
    lock.lock().map_err(|e| {
        StoreError::cluster(format!("cannot lock {}", lock_path.display()), Some(e))
    })?;
    let cluster = PrivateCluster::start_with(&base, &ClusterOptions::for_tests());
    let _ = lock.unlock();
    cluster
}

/// Drops test databases left behind by crashed runs (once per process).
async fn sweep_once(client: &crate::StoreClient) {
    static SWEPT: OnceLock<()> = OnceLock::new();
    if SWEPT.set(()).is_err() {
        return;
    }
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    let now = SystemTime::now();
    for row in rows {
        let name: String = row.get(0);
        let Some(created) = name
            .strip_prefix("test_")
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .and_then(|u| u.get_timestamp())
        else {
            continue;
        };
        let (secs, nanos) = created.to_unix();
        let created = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
        if now
            .duration_since(created)
            .is_ok_and(|age| age > SWEEP_AFTER)
        {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// The same connection string pointed at another database.
fn with_dbname(conninfo: &str, dbname: &str) -> Result<String, StoreError> {
    let trimmed = conninfo.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let mut url = url::Url::parse(trimmed)
            .map_err(|e| StoreError::Config(format!("{TEST_DATABASE_URL_ENV}: {e}")))?;
        url.set_path(&format!("/{dbname}"));
        Ok(url.to_string())
    } else {
        // In key=value strings a later key wins.
        Ok(format!("{trimmed} dbname={dbname}"))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
