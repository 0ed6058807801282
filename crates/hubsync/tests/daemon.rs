//! `hubsync run` and `hubsync demo` as real processes: webhook signatures, duplicate and
//! out-of-order deliveries, lost webhooks, SIGKILL and restart, graceful signals.

use std::process::{Command, Stdio};

use hubsync_hubspot::webhook::{SIGNATURE_V3_HEADER, SignatureVersion, TIMESTAMP_HEADER, sign};
use serde_json::json;

use crate::daemon_kit::{BIN, Kit, Knobs, SECRET, WEBHOOK_PATH, free_port, wait_exit};

/// POSTs `body` to the daemon signed (v3) with `secret` at `timestamp_ms`.
async fn deliver(kit: &Kit, body: &str, signed_body: &str, secret: &str, timestamp_ms: i64) -> u16 {
    let uri = format!("http://127.0.0.1:{}{WEBHOOK_PATH}", kit.port);
    let ts = timestamp_ms.to_string();
    let signature = sign(
        SignatureVersion::V3,
        secret,
        "POST",
        &uri,
        signed_body.as_bytes(),
        &ts,
    );
    kit.http
        .post(&uri)
        .header("content-type", "application/json")
        .header(SIGNATURE_V3_HEADER, signature)
        .header(TIMESTAMP_HEADER, ts)
        .body(body.to_owned())
        .send()
        .await
        .expect("deliver")
        .status()
        .as_u16()
}

async fn inbox_rows(kit: &Kit) -> i64 {
    kit.scalar::<i64>("SELECT count(*) FROM hubsync.inbox")
        .await
        .expect("inbox")
}

async fn firstname(kit: &Kit, id: i64) -> Option<String> {
    kit.scalar::<Option<String>>(&format!(
        "SELECT firstname FROM hubspot.contacts WHERE hs_object_id = {id}"
    ))
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_stale_timestamp_and_replay_change_nothing() {
    let mut kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 5,
    })
    .await;
    kit.webhook_settings(json!({"url": null})).await;
    let id = kit.ids(1).await[0];
    kit.edit(id, json!({"firstname": "Signed"})).await;
    let now = chrono::Utc::now().timestamp_millis();
    let body = format!(
        r#"[{{"eventId":9000001,"occurredAt":{now},"subscriptionType":"contact.propertyChange","objectId":{id},"propertyName":"firstname","attemptNumber":0}}]"#
    );
    let before = firstname(&kit, id).await;
    assert_ne!(before.as_deref(), Some("Signed"));

    assert_eq!(
        deliver(&kit, &body, &body, "not-the-secret", now).await,
        401,
        "bad signature"
    );
    let stale = now - 10 * 60 * 1000;
    assert_eq!(
        deliver(&kit, &body, &body, SECRET, stale).await,
        401,
        "stale timestamp"
    );
    let other = body.replace("9000001", "9000002");
    assert_eq!(
        deliver(&kit, &other, &body, SECRET, now).await,
        401,
        "tampered body"
    );
    // 401 is only answered before anything is stored.
    assert_eq!(inbox_rows(&kit).await, 0);
    assert_eq!(firstname(&kit, id).await, before);

    assert_eq!(
        deliver(&kit, &body, &body, SECRET, now).await,
        204,
        "valid delivery"
    );
    let k = &kit;
    k.wait_for("the signed change", || async move {
        firstname(k, id).await.as_deref() == Some("Signed")
    })
    .await;
    // A replay of the same signed request is stored once (event id) and applies nothing new.
    assert_eq!(
        deliver(&kit, &body, &body, SECRET, now).await,
        204,
        "replay inside the window"
    );
    assert_eq!(inbox_rows(&kit).await, 1);
    let metrics = kit.metrics().await;
    assert!(
        metrics.contains("hubsync_webhook_events_total{outcome=\"duplicate\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hubsync_webhook_requests_total{outcome=\"bad_signature\"} 2"),
        "{metrics}"
    );

    let status = kit.signal_daemon("TERM");
    assert!(
        status.success(),
        "SIGTERM exit: {status:?}\n{}",
        kit.daemon_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_out_of_order_deliveries_converge() {
    let kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 8,
    })
    .await;
    // Every batch is reordered: how many batches the edits fall into depends on timing, so a
    // per-batch chance could leave the reorder check below unexercised on a fast run.
    kit.faults(
        json!({"webhook_duplicate": 0.5, "webhook_reorder": 1.0, "webhook_delay": 0.3, "seed": 11}),
    )
    .await;
    let ids = kit.ids(8).await;
    for round in 0..4 {
        for id in &ids {
            kit.edit(*id, json!({"firstname": format!("v{round}-{id}")}))
                .await;
        }
    }
    let k = &kit;
    for id in &ids {
        let want = format!("v3-{id}");
        k.wait_for("the last edit of every record", || {
            let want = want.clone();
            async move { firstname(k, *id).await == Some(want) }
        })
        .await;
    }
    let stats = kit.webhook_stats().await;
    assert!(
        stats["events_duplicated"].as_u64().unwrap_or(0) > 0,
        "no duplicates injected: {stats}"
    );
    assert!(
        stats["batches_reordered"].as_u64().unwrap_or(0) > 0,
        "nothing reordered: {stats}"
    );
    let metrics = kit.metrics().await;
    assert!(
        !metrics.contains("hubsync_webhook_events_total{outcome=\"duplicate\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_never_arrives_is_caught_by_reconciliation() {
    let kit = Kit::start(Knobs {
        reconcile_every: "1s",
        contacts: 6,
    })
    .await;
    kit.faults(json!({"webhook_drop": 1.0})).await;
    let ids = kit.ids(2).await;
    let (edited, deleted) = (ids[0], ids[1]);
    kit.edit(edited, json!({"firstname": "Reconciled"})).await;
    let url = format!(
        "{}/crm/v3/objects/contacts/{deleted}",
        kit.emulator.base_url()
    );
    let r = kit
        .http
        .delete(url)
        .bearer_auth("pat-kit")
        .send()
        .await
        .expect("archive");
    assert!(r.status().is_success());

    let k = &kit;
    k.wait_for("the edit", || async move {
        firstname(k, edited).await.as_deref() == Some("Reconciled")
    })
    .await;
    let archived = format!(
        "SELECT archived_at IS NOT NULL FROM hubspot.contacts WHERE hs_object_id = {deleted}"
    );
    k.wait_for("the delete", || {
        let sql = archived.clone();
        async move { k.scalar::<bool>(&sql).await.unwrap_or(false) }
    })
    .await;
    let stats = kit.webhook_stats().await;
    assert!(
        stats["events_dropped"].as_u64().unwrap_or(0) >= 2,
        "{stats}"
    );
    assert_eq!(inbox_rows(&kit).await, 0, "no webhook reached the daemon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_flow_and_restart_loses_nothing() {
    let mut kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 20,
    })
    .await;
    kit.webhook_settings(json!({"max_retries": 40, "retry_base_ms": 200, "retry_max_ms": 500}))
        .await;
    let ids = kit.ids(20).await;
    let (to_hubspot, from_hubspot) = ids.split_at(10);
    for id in to_hubspot {
        kit.sql(&format!(
            "UPDATE hubspot.contacts SET lastname = 'pg-{id}' WHERE hs_object_id = {id}"
        ))
        .await;
    }
    for id in from_hubspot {
        kit.edit(*id, json!({"firstname": format!("hs-{id}")}))
            .await;
    }
    kit.kill_daemon();
    // Changes made while it is down: captured in the outbox, retried by HubSpot.
    for id in to_hubspot {
        kit.sql(&format!(
            "UPDATE hubspot.contacts SET phone = '+1{id}' WHERE hs_object_id = {id}"
        ))
        .await;
    }
    for id in from_hubspot {
        kit.edit(*id, json!({"lastname": format!("down-{id}")}))
            .await;
    }
    kit.spawn_daemon().await;

    let k = &kit;
    for id in to_hubspot {
        k.wait_for("PostgreSQL changes in HubSpot", || async move {
            k.hubspot_value(*id, "lastname").await == Some(format!("pg-{id}"))
                && k.hubspot_value(*id, "phone").await == Some(format!("+1{id}"))
        })
        .await;
    }
    for id in from_hubspot {
        let sql = format!(
            "SELECT firstname || '/' || lastname FROM hubspot.contacts WHERE hs_object_id = {id}"
        );
        k.wait_for("HubSpot changes in PostgreSQL", || {
            let sql = sql.clone();
            async move { k.scalar::<String>(&sql).await.ok() == Some(format!("hs-{id}/down-{id}")) }
        })
        .await;
    }
    let pending = "SELECT count(*) FROM hubsync.outbox";
    k.wait_for("an empty outbox", || async move {
        k.scalar::<i64>(pending).await.ok() == Some(0)
    })
    .await;
}

/// A running `hubsync demo` on `database_url`.
struct Demo {
    child: std::process::Child,
    /// Its data directory.
    dir: std::path::PathBuf,
    /// The local HubSpot's base URL.
    hubspot: String,
}

impl Demo {
    /// Starts the demo (10 seeded contacts) and waits for `/healthz`.
    async fn start(database_url: &str, dir: &std::path::Path) -> Demo {
        Demo::start_with(Some(database_url), dir).await
    }

    /// Starts the demo on `database_url`, or on its own private PostgreSQL under `dir`
    /// when `None` (the README's first command).
    async fn start_with(database_url: Option<&str>, dir: &std::path::Path) -> Demo {
        hubsync_hubspot::install_tls_provider();
        let (port, emulator_port) = (free_port(), free_port());
        let mut command = Command::new(BIN);
        match database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        let child = command
            .args(["demo", "--seed-contacts", "10", "--data-dir"])
            .arg(dir)
            .args([
                "--port",
                &port.to_string(),
                "--emulator-port",
                &emulator_port.to_string(),
            ])
            .env("RUST_LOG", "warn,hubsync=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("demo-stderr.log")).expect("log file"),
            ))
            .spawn()
            .expect("spawn demo");
        let mut demo = Demo {
            child,
            dir: dir.to_owned(),
            hubspot: format!("http://127.0.0.1:{emulator_port}"),
        };
        let log = || std::fs::read_to_string(dir.join("demo-stderr.log")).unwrap_or_default();
        let http = reqwest::Client::new();
        let health = format!("http://127.0.0.1:{port}/healthz");
        let started = std::time::Instant::now();
        while !http
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if let Ok(Some(status)) = demo.child.try_wait() {
                panic!(
                    "demo exited ({status}) before it became healthy:\n{}",
                    log()
                );
            }
            assert!(
                started.elapsed() < crate::daemon_kit::DEADLINE,
                "demo never became healthy:\n{}",
                log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        demo
    }

    /// Ctrl-C; asserts a clean exit and returns what it printed.
    fn stop(mut self) -> String {
        let kill = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        let status = wait_exit(&mut self.child);
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        assert!(status.success(), "demo exit {status:?}\n{out}");
        out
    }

    /// How many contacts the demo's database holds (through the URL the demo wrote down).
    async fn private_contacts(&self) -> Option<i64> {
        let url = std::fs::read_to_string(self.dir.join("database-url")).ok()?;
        let store = hubsync_store::Store::connect(url.trim()).await.ok()?;
        let client = store.client().await.ok()?;
        let count = client
            .query_one("SELECT count(*) FROM hubspot.contacts", &[])
            .await
            .ok()
            .map(|r| r.get(0));
        drop(client);
        store.close();
        count
    }

    /// A contact's property in the demo's local HubSpot.
    async fn hubspot_value(&self, id: i64, property: &str) -> Option<String> {
        let url = format!(
            "{}/crm/v3/objects/contacts/{id}?properties={property}",
            self.hubspot
        );
        let r = reqwest::Client::new()
            .get(url)
            .bearer_auth("demo-private-app-token")
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        v["properties"][property].as_str().map(str::to_owned)
    }
}

/// Polls `check` until it holds or fails after the kit's deadline.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < crate::daemon_kit::DEADLINE,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_serves_health_and_stops_on_ctrl_c() {
    let db = hubsync_store::TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Demo::start(db.url(), dir.path()).await.stop();
    assert!(
        out.contains("psql") && out.contains("update hubspot.contacts"),
        "{out}"
    );
    assert!(out.contains("/_emulator/objects/contacts/"), "{out}");
    assert!(out.contains("Every run starts fresh"), "{out}");
}

/// With no `DATABASE_URL` the demo starts a private PostgreSQL under its data directory,
/// creates its database there, syncs the seeded contacts, and reuses the cluster (with a
/// fresh database) on the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_on_its_own_postgres_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    for run in 1..=2 {
        let demo = Demo::start_with(None, dir.path()).await;
        eventually("the demo's contacts in its own PostgreSQL", || async {
            demo.private_contacts().await == Some(10)
        })
        .await;
        let out = demo.stop();
        assert!(out.contains("Every run starts fresh"), "run {run}: {out}");
    }
}

/// A demo that fails after starting its private PostgreSQL (here: the local HubSpot's port
/// is taken) stops that PostgreSQL before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_demo_start_leaves_no_postgres_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = Command::new(BIN)
        .args(["demo", "--seed-contacts", "5", "--data-dir"])
        .arg(dir.path())
        .args([
            "--port",
            &free_port().to_string(),
            "--emulator-port",
            &port.to_string(),
        ])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot start the local HubSpot"),
        "{stderr}"
    );
    let pid_file = dir.path().join("postgres/data/postmaster.pid");
    assert!(
        dir.path().join("postgres/data").exists() && !pid_file.exists(),
        "the private PostgreSQL was started and is stopped again"
    );
}

/// A second `hubsync demo` run meets a freshly seeded local HubSpot: the demo database is
/// reset with it, so the first run's PostgreSQL edit is gone and PostgreSQL matches HubSpot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_demo_run_starts_from_a_consistent_state() {
    let db = hubsync_store::TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let scalar = |sql: &'static str| {
        let store = db.store().clone();
        async move {
            let conn = store.client().await.ok()?;
            conn.query_one(sql, &[])
                .await
                .ok()
                .map(|r| r.get::<_, i64>(0))
        }
    };
    let first = Demo::start(db.url(), dir.path()).await;
    eventually("the first backfill", || async {
        scalar("SELECT count(*) FROM hubspot.contacts").await == Some(10)
    })
    .await;
    let id = scalar("SELECT min(hs_object_id) FROM hubspot.contacts")
        .await
        .expect("a contact");
    let conn = db.store().client().await.expect("conn");
    conn.batch_execute(&format!(
        "UPDATE hubspot.contacts SET firstname = 'FirstRun' WHERE hs_object_id = {id}"
    ))
    .await
    .expect("edit");
    drop(conn);
    eventually("the edit in HubSpot", || async {
        first.hubspot_value(id, "firstname").await.as_deref() == Some("FirstRun")
    })
    .await;
    first.stop();

    let second = Demo::start(db.url(), dir.path()).await;
    let seeded = second.hubspot_value(id, "firstname").await;
    assert_ne!(
        seeded.as_deref(),
        Some("FirstRun"),
        "HubSpot is seeded anew"
    );
    let firstname = format!("SELECT firstname FROM hubspot.contacts WHERE hs_object_id = {id}");
    eventually("PostgreSQL matching the new HubSpot", || async {
        let rows = scalar("SELECT count(*) FROM hubspot.contacts").await;
        let conn = db.store().client().await.ok();
        let value = match conn {
            Some(c) => c
                .query_one(&firstname, &[])
                .await
                .ok()
                .map(|r| r.get::<_, Option<String>>(0)),
            None => None,
        };
        rows == Some(10) && value == Some(seeded.clone())
    })
    .await;
    assert_eq!(
        scalar("SELECT count(*) FROM hubsync.outbox").await,
        Some(0),
        "nothing of the first run left to write"
    );
    second.stop();
}

/// A field-mapping change made by plain SQL (no NOTIFY by hand, no dashboard) applies to the
/// running daemon without a restart and long before its next reconciliation round: the
/// included property gets its column and HubSpot's next edit of it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_change_by_sql_applies_to_the_running_daemon() {
    let kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 3,
    })
    .await;
    let column = "SELECT count(*) FROM information_schema.columns \
                  WHERE table_schema = 'hubspot' AND table_name = 'contacts' \
                  AND column_name = 'jobtitle'";
    assert_eq!(kit.scalar::<i64>(column).await.ok(), Some(0));
    kit.sql(
        "INSERT INTO hubsync.mapping_overrides (object, property, included, updated_by) \
         VALUES ('contacts', 'jobtitle', true, 'test')",
    )
    .await;
    let k = &kit;
    k.wait_for("the included property's column", || async move {
        k.scalar::<i64>(column).await.ok() == Some(1)
    })
    .await;
    let id = kit.ids(1).await[0];
    kit.edit(id, json!({"jobtitle": "Mapping test title"}))
        .await;
    let sql = format!("SELECT jobtitle FROM hubspot.contacts WHERE hs_object_id = {id}");
    kit.wait_for_text("the included property's value", &sql, "Mapping test title")
        .await;
}

/// A PostgreSQL → HubSpot write is audited with HubSpot's correlation id of the call that
/// made it (the emulator's `X-HubSpot-Correlation-Id`), for creates and updates alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_hubspot_is_audited_with_hubspots_correlation_id() {
    let kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 2,
    })
    .await;
    let id = kit.ids(1).await[0];
    let audited = |action: &str, filter: String| {
        format!(
            "SELECT correlation_id FROM hubsync.audit WHERE direction = 'postgres_to_hubspot' \
             AND action = '{action}' AND {filter} ORDER BY id DESC LIMIT 1"
        )
    };
    let cases = [
        (
            format!(
                "UPDATE hubspot.contacts SET lastname = 'Correlated' WHERE hs_object_id = {id}"
            ),
            audited("update", format!("hs_object_id = {id}")),
            "POST /crm/v3/objects/contacts/batch/update",
        ),
        (
            "INSERT INTO hubspot.contacts (email, firstname) VALUES ('corr@example.com', 'New')"
                .to_owned(),
            audited(
                "create",
                "row_key = (SELECT hubsync_row_id::text FROM hubspot.contacts \
                 WHERE email = 'corr@example.com')"
                    .to_owned(),
            ),
            "POST /crm/v3/objects/contacts/batch/upsert",
        ),
    ];
    for (change, audit, route) in cases {
        kit.sql(&change).await;
        let k = &kit;
        k.wait_for("the audited write", || {
            let audit = audit.clone();
            async move { k.scalar::<Option<String>>(&audit).await.is_ok() }
        })
        .await;
        let recorded: Option<String> = kit.scalar(&audit).await.expect("audit row");
        let stats = kit.emulator_stats().await;
        let answered = stats["last_correlation_ids"][route].as_str();
        assert!(answered.is_some_and(|c| !c.is_empty()), "{route}: {stats}");
        assert_eq!(recorded.as_deref(), answered, "{route}");
    }
}

/// The daemon's `/readyz` status code.
async fn readyz(kit: &Kit) -> Option<u16> {
    let url = format!("http://127.0.0.1:{}/readyz", kit.port);
    kit.http
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// PostgreSQL refuses the daemon (new connections refused, open ones terminated) while
/// HubSpot edits records and an application edits rows: webhooks are answered 503 and
/// retried by HubSpot, `/readyz` turns not-ready, and once PostgreSQL is back every change
/// arrives on the other side — without a restart or a panic. The shared test cluster keeps
/// running: the lever is the database's `ALLOW_CONNECTIONS`, pulled from a connection of
/// the test's own that outlives the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_loses_nothing() {
    use hubsync_store::tokio_postgres;

    let kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 10,
    })
    .await;
    kit.webhook_settings(json!({"max_retries": 200, "retry_base_ms": 200, "retry_max_ms": 500}))
        .await;
    let ids = kit.ids(10).await;
    let (to_hubspot, from_hubspot) = ids.split_at(5);
    let (lever, connection) = tokio_postgres::connect(kit.db.url(), tokio_postgres::NoTls)
        .await
        .expect("the lever connection");
    tokio::spawn(connection);
    // A database cannot refuse connections to itself: the lever is pulled from another one.
    let mut admin_config: tokio_postgres::Config = kit.db.url().parse().expect("url");
    admin_config.dbname("postgres");
    let (admin, connection) = admin_config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the admin connection");
    tokio::spawn(connection);
    let database = kit.db.name().to_owned();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> {lever_pid}",
            lever_pid = lever
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .expect("pid")
                .get::<_, i32>(0)
        ))
        .await
        .expect("pull the lever");

    let now = chrono::Utc::now().timestamp_millis();
    let body = format!(
        r#"[{{"eventId":9100001,"occurredAt":{now},"subscriptionType":"contact.propertyChange","objectId":{},"propertyName":"firstname","attemptNumber":0}}]"#,
        from_hubspot[0]
    );
    assert_eq!(
        deliver(&kit, &body, &body, SECRET, now).await,
        503,
        "a delivery that cannot be stored is refused so HubSpot retries it"
    );
    assert_eq!(
        readyz(&kit).await,
        Some(503),
        "not ready as soon as PostgreSQL refused a delivery"
    );
    for id in from_hubspot {
        kit.edit(*id, json!({"firstname": format!("outage-{id}")}))
            .await;
    }
    // The application still had a connection open: its writes are captured as usual.
    for id in to_hubspot {
        lever
            .batch_execute(&format!(
                "UPDATE hubspot.contacts SET lastname = 'outage-{id}' WHERE hs_object_id = {id}"
            ))
            .await
            .expect("an application write");
    }
    let k = &kit;
    k.wait_for("webhook deliveries refused", || async move {
        k.webhook_stats().await["attempts_failed"]
            .as_u64()
            .is_some_and(|n| n > 0)
    })
    .await;

    admin
        .batch_execute(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
        .await
        .expect("release the lever");
    k.wait_for("/readyz ready again", || async move {
        readyz(k).await == Some(200)
    })
    .await;
    for id in to_hubspot {
        k.wait_for("PostgreSQL's changes in HubSpot", || async move {
            k.hubspot_value(*id, "lastname").await == Some(format!("outage-{id}"))
        })
        .await;
    }
    for id in from_hubspot {
        k.wait_for("HubSpot's changes in PostgreSQL", || async move {
            firstname(k, *id).await == Some(format!("outage-{id}"))
        })
        .await;
    }
    k.wait_for("an empty outbox", || async move {
        k.scalar::<i64>("SELECT count(*) FROM hubsync.outbox")
            .await
            .ok()
            == Some(0)
    })
    .await;
    let log = kit.daemon_log();
    assert!(!log.contains("panicked"), "{log}");
}
