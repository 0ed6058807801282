//! Test kit for `hubsync run`: the real binary as a child process, the in-process emulator
//! delivering signed webhooks to it, and a fresh PostgreSQL database.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, SeedConfig};
use hubsync_store::TestDb;
use serde_json::{Value, json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_hubsync");
pub(crate) const SECRET: &str = "kit-webhook-secret";
pub(crate) const WEBHOOK_PATH: &str = "/hooks/hubspot";
/// Longest any wait in these tests may take before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);

/// Daemon knobs a test chooses.
pub(crate) struct Knobs {
    /// `server.reconcile_every` (a long one shows webhooks alone did the work).
    pub(crate) reconcile_every: &'static str,
    /// Contacts seeded.
    pub(crate) contacts: usize,
}

/// Emulator + database + daemon.
pub(crate) struct Kit {
    pub(crate) emulator: EmulatorHandle,
    pub(crate) db: TestDb,
    pub(crate) http: reqwest::Client,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    config: PathBuf,
    daemon: Option<Child>,
    starts: u32,
}

/// A free local port (bound and released; the daemon binds it right after).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Kit {
    /// Starts everything and waits until the daemon is ready and has backfilled contacts.
    pub(crate) async fn start(knobs: Knobs) -> Kit {
        Kit::start_with(knobs, "").await
    }

    /// Like [`Kit::start`], with `extra` appended to the configuration file (e.g. an
    /// `[alerts]` section).
    pub(crate) async fn start_with(knobs: Knobs, extra: &str) -> Kit {
        let port = free_port();
        let emulator = hubsync_emulator::spawn(EmulatorConfig {
            seed: SeedConfig {
                contacts: knobs.contacts,
                companies: 0,
                deals: 0,
                tickets: 0,
                value: 5,
            },
            rate_limit: None,
            search_per_second: None,
            daily_limit: None,
            webhook_url: Some(format!("http://127.0.0.1:{port}{WEBHOOK_PATH}")),
            webhook_secret: Some(SECRET.to_owned()),
            ..EmulatorConfig::default()
        })
        .await
        .expect("emulator");
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, SECRET).expect("secret");
        let config = dir.path().join("hubsync.toml");
        let text = format!(
            "[hubspot]\nbase_url = \"{base}\"\ntoken = {{ env = \"KIT_TOKEN\" }}\nrate_limit = \"off\"\n\
             webhook_secret = {{ file = {secret:?} }}\n\n\
             [postgres]\nurl = {{ env = \"KIT_DATABASE_URL\" }}\n\n\
             [server]\nlisten = \"127.0.0.1:{port}\"\nwebhook_path = \"{WEBHOOK_PATH}\"\n\
             writeback_window = \"20ms\"\nreconcile_every = \"{every}\"\nsettle_delay = \"1s\"\n\n\
             [[object]]\nname = \"contacts\"\ndirection = \"two-way\"\n\
             properties = [\"email\", \"firstname\", \"lastname\", \"phone\"]\n",
            base = emulator.base_url(),
            secret = secret_file.display().to_string(),
            every = knobs.reconcile_every,
        ) + extra;
        std::fs::write(&config, text).expect("config");
        let mut kit = Kit {
            emulator,
            db,
            http: reqwest::Client::new(),
            port,
            dir,
            config,
            daemon: None,
            starts: 0,
        };
        kit.webhook_settings(json!({"flush_ms": 20, "retry_base_ms": 200, "retry_max_ms": 1000}))
            .await;
        kit.spawn_daemon().await;
        let want = knobs.contacts as i64;
        let k = &kit;
        k.wait_for("backfill", || async move {
            k.scalar::<i64>("SELECT count(*) FROM hubspot.contacts")
                .await
                .ok()
                == Some(want)
        })
        .await;
        kit
    }

    /// Starts the daemon and waits for `/readyz`.
    pub(crate) async fn spawn_daemon(&mut self) {
        self.starts += 1;
        let child = self.run_daemon(&self.config, &self.starts.to_string());
        self.daemon = Some(child);
        self.wait_ready(self.port).await;
    }

    /// A second instance on the same database and configuration, listening on a port of its
    /// own (webhooks still go to the first one); waits for its `/readyz`.
    pub(crate) async fn spawn_peer(&self) -> Peer {
        let port = free_port();
        let text = std::fs::read_to_string(&self.config).expect("config");
        let text = text.replace(
            &format!("listen = \"127.0.0.1:{}\"", self.port),
            &format!("listen = \"127.0.0.1:{port}\""),
        );
        let config = self.dir.path().join("peer.toml");
        std::fs::write(&config, text).expect("peer config");
        let peer = Peer {
            child: self.run_daemon(&config, "peer"),
            port,
        };
        self.wait_ready(port).await;
        peer
    }

    /// `hubsync run` with `config`, logging to `stdout-{tag}.log` / `stderr-{tag}.log`.
    fn run_daemon(&self, config: &std::path::Path, tag: &str) -> Child {
        let log = |name: &str| {
            std::fs::File::create(self.dir.path().join(format!("{name}-{tag}.log")))
                .expect("log file")
        };
        Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("KIT_TOKEN", "pat-kit")
            .env("KIT_DATABASE_URL", self.db.url())
            .env_remove("DATABASE_URL")
            .env(
                "RUST_LOG",
                std::env::var("KIT_RUST_LOG").unwrap_or("warn,hubsync=info".into()),
            )
            .stdout(Stdio::from(log("stdout")))
            .stderr(Stdio::from(log("stderr")))
            .spawn()
            .expect("spawn hubsync run")
    }

    /// Waits for `/readyz` on `port`.
    async fn wait_ready(&self, port: u16) {
        let url = format!("http://127.0.0.1:{port}/readyz");
        let http = self.http.clone();
        self.wait_for("readiness", || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
    }

    /// The peer's stderr so far (for failure messages).
    pub(crate) fn peer_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr-peer.log")).unwrap_or_default()
    }

    /// SIGKILL, and reap the process (so its lease is seen as dead).
    pub(crate) fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGINT/SIGTERM by `kill`; returns the exit status.
    pub(crate) fn signal_daemon(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        wait_exit(&mut child)
    }

    /// The daemon's stderr so far (for failure messages).
    pub(crate) fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("stderr-{}.log", self.starts)))
            .unwrap_or_default()
    }

    /// Merges settings into the emulator's webhook settings.
    pub(crate) async fn webhook_settings(&self, settings: Value) {
        let url = format!("{}/_emulator/webhooks", self.emulator.base_url());
        let r = self
            .http
            .post(url)
            .json(&settings)
            .send()
            .await
            .expect("settings");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    /// Sets the emulator's faults.
    pub(crate) async fn faults(&self, faults: Value) {
        let url = format!("{}/_emulator/faults", self.emulator.base_url());
        let r = self
            .http
            .post(url)
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    /// Edits a contact as a HubSpot user would (webhooks fire).
    pub(crate) async fn edit(&self, id: i64, properties: Value) {
        let url = format!(
            "{}/_emulator/objects/contacts/{id}",
            self.emulator.base_url()
        );
        let r = self
            .http
            .post(url)
            .json(&json!({ "properties": properties }))
            .send()
            .await
            .expect("edit");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    /// A contact's property as HubSpot has it.
    pub(crate) async fn hubspot_value(&self, id: i64, property: &str) -> Option<String> {
        let url = format!(
            "{}/crm/v3/objects/contacts/{id}?properties={property}",
            self.emulator.base_url()
        );
        let r = self
            .http
            .get(url)
            .bearer_auth("pat-kit")
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["properties"][property].as_str().map(str::to_owned)
    }

    /// Runs SQL as an application would (captured by the triggers).
    pub(crate) async fn sql(&self, sql: &str) {
        let conn = self.db.store().client().await.expect("conn");
        conn.batch_execute(sql).await.expect(sql);
    }

    /// One value.
    pub(crate) async fn scalar<T: for<'a> hubsync_store::tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
    ) -> Result<T, hubsync_store::tokio_postgres::Error> {
        let conn = self.db.store().client().await.expect("conn");
        conn.query_one(sql, &[]).await.map(|r| r.get(0))
    }

    /// Waits until `sql` (one text value) reads `expected`.
    pub(crate) async fn wait_for_text(&self, what: &str, sql: &str, expected: &str) {
        self.wait_for(what, || async move {
            self.scalar::<Option<String>>(sql)
                .await
                .ok()
                .flatten()
                .as_deref()
                == Some(expected)
        })
        .await;
    }

    /// Contact ids in PostgreSQL, ascending.
    pub(crate) async fn ids(&self, n: i64) -> Vec<i64> {
        let conn = self.db.store().client().await.expect("conn");
        conn.query(
            "SELECT hs_object_id FROM hubspot.contacts ORDER BY 1 LIMIT $1",
            &[&n],
        )
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    /// The emulator's counters (`GET /_emulator/stats`).
    pub(crate) async fn emulator_stats(&self) -> Value {
        let url = format!("{}/_emulator/stats", self.emulator.base_url());
        self.http
            .get(url)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    /// The emulator's webhook counters.
    pub(crate) async fn webhook_stats(&self) -> Value {
        self.emulator_stats().await["webhooks"].clone()
    }

    /// The daemon's `/metrics` text.
    pub(crate) async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        self.http
            .get(url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Polls `check` until it holds, failing after [`DEADLINE`] with the daemon's log.
    pub(crate) async fn wait_for<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for {what}\n--- daemon log ---\n{}",
                self.daemon_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A second `hubsync run` on the kit's database ([`Kit::spawn_peer`]); killed when dropped.
pub(crate) struct Peer {
    child: Child,
    /// Its HTTP port.
    pub(crate) port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        self.kill_daemon();
    }
}

/// Waits for a child to exit (bounded by [`DEADLINE`]; killed after it).
pub(crate) fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("process did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
