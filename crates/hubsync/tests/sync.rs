//! `hubsync sync --once`, `check` and `status --json` run as the built binary against the
//! emulator over HTTP and a fresh PostgreSQL database; plus `kill -9` in mid-backfill.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, RateLimit, SeedConfig};
use hubsync_store::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_hubsync");

/// A config file (and token file) in a temp dir.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn write_config(
    emulator: &EmulatorHandle,
    db_url: &str,
    rate_limit: &str,
    objects: &[&str],
) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "pat-e2e\n").expect("token");
    let url_file = dir.path().join("db-url");
    std::fs::write(&url_file, db_url).expect("url");
    let mut text = format!(
        "[hubspot]\nbase_url = \"{}\"\ntoken = {{ file = \"{}\" }}\nrate_limit = \"{rate_limit}\"\n\n\
         [postgres]\nurl = {{ file = \"{}\" }}\nschema = \"hubspot\"\n\n\
         [server]\nsettle_delay = \"1s\"\n",
        emulator.base_url(),
        token.display(),
        url_file.display()
    );
    for o in objects {
        text.push_str(&format!("\n[[object]]\nname = \"{o}\"\n"));
    }
    let config = dir.path().join("hubsync.toml");
    std::fs::write(&config, text).expect("config");
    Setup { dir, config }
}

fn hubsync(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hubsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn emulator(seed: SeedConfig, rate_limit: Option<RateLimit>) -> EmulatorHandle {
    let config = EmulatorConfig {
        seed,
        rate_limit,
        search_per_second: None,
        daily_limit: None,
        ..EmulatorConfig::default()
    };
    hubsync_emulator::spawn(config).await.expect("emulator")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let conn = db.store().client().await.expect("conn");
    conn.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_sync_once_and_status_json() {
    let seed = SeedConfig {
        contacts: 120,
        companies: 15,
        deals: 30,
        tickets: 0,
        value: 3,
    };
    let emu = emulator(seed, None).await;
    let db = TestDb::new().await;
    let setup = write_config(&emu, db.url(), "off", &["contacts", "companies", "deals"]);

    let check = hubsync(&setup.config, &["check"]);
    assert!(
        check.status.success(),
        "{}\n{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stdout).contains("everything needed is in place"),
        "{}",
        text(&check.stdout)
    );

    let sync = hubsync(&setup.config, &["sync", "--once"]);
    assert!(
        sync.status.success(),
        "{}\n{}",
        text(&sync.stdout),
        text(&sync.stderr)
    );
    assert!(
        text(&sync.stdout).contains("contacts: backfill"),
        "{}",
        text(&sync.stdout)
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM hubspot.contacts").await,
        120
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM hubspot.companies").await,
        15
    );
    assert_eq!(count(&db, "SELECT count(*) FROM hubspot.deals").await, 30);
    assert!(count(&db, "SELECT count(*) FROM hubspot.contacts_companies").await > 0);

    let again = hubsync(&setup.config, &["sync", "--once"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("contacts: incremental"),
        "{}",
        text(&again.stdout)
    );

    // A change HubSpot refused is an error, not pending work (the row is as the capture
    // trigger would leave it after a refused write).
    db.store()
        .client()
        .await
        .expect("conn")
        .execute(
            "INSERT INTO hubsync.outbox (object, source_table, op, row_key, changed_columns, \
               status, last_error, changed_at) \
             VALUES ('contacts', 'hubspot.contacts', 'UPDATE', 'k', '{lifecyclestage}', \
               'failed', 'INVALID_OPTION', now() - interval '1 hour')",
            &[],
        )
        .await
        .expect("a refused change");
    let status = hubsync(&setup.config, &["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let contacts = json["objects"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["object"] == "contacts"))
        .expect("contacts in status");
    assert_eq!(contacts["rows"], 120);
    assert_eq!(contacts["backfill"], "done");
    assert!(contacts["last_sync"].is_string());
    assert_eq!(contacts["pending_outbound"], 0);
    assert_eq!(contacts["failed_outbound"], 1);
    assert_eq!(contacts["open_conflicts"], 0);
    // Nothing waits to be applied: not behind, however long ago HubSpot last changed
    // (the seeded records were modified months ago).
    assert_eq!(contacts["lag_seconds"], 0, "{contacts}");
    let table = text(&hubsync(&setup.config, &["status"]).stdout);
    assert!(
        table.lines().next().is_some_and(|h| h.contains("errors")),
        "{table}"
    );
    drop(setup.dir);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_what_is_missing() {
    let emu = emulator(SeedConfig::default(), None).await;
    let db = TestDb::new().await;
    // An unknown object and an unreachable database.
    let setup = write_config(
        &emu,
        "postgresql://nobody@127.0.0.1:1/none",
        "off",
        &["contacts", "unicorns"],
    );
    let _ = &db;
    // And a webhook secret from a variable that is not set.
    let toml = std::fs::read_to_string(&setup.config).expect("read config");
    let toml = toml.replacen(
        "rate_limit = \"off\"\n",
        "rate_limit = \"off\"\nwebhook_secret = { env = \"HUBSYNC_TEST_UNSET_SECRET\" }\n",
        1,
    );
    std::fs::write(&setup.config, toml).expect("write config");
    let check = hubsync(&setup.config, &["check"]);
    let out = text(&check.stdout);
    assert!(!check.status.success(), "{out}");
    assert!(out.contains("ok   hubspot contacts"), "{out}");
    assert!(
        out.contains("FAIL hubspot unicorns: HubSpot has no object type \"unicorns\""),
        "{out}"
    );
    assert!(out.contains("FAIL postgres"), "{out}");
    assert!(
        out.contains(
            "FAIL hubspot.webhook_secret: the environment variable HUBSYNC_TEST_UNSET_SECRET is not set"
        ),
        "{out}"
    );

    // A literal token in the file is refused with a one-line reason.
    let literal = setup.dir.path().join("literal.toml");
    std::fs::write(&literal, "[hubspot]\ntoken = \"pat-na1-abc\"\n").expect("write");
    let refused = hubsync(&literal, &["check"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("literal secret"),
        "{}",
        text(&refused.stderr)
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mid_backfill_then_rerun_loses_and_duplicates_nothing() {
    let seed = SeedConfig {
        contacts: 3_000,
        companies: 0,
        deals: 0,
        tickets: 0,
        value: 5,
    };
    // 30 list pages at 20 calls/s: the backfill takes more than a second.
    let emu = emulator(
        seed,
        Some(RateLimit {
            requests: 20,
            per: Duration::from_secs(1),
        }),
    )
    .await;
    let db = TestDb::new().await;
    let setup = write_config(&emu, db.url(), "20/1s", &["contacts"]);

    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&setup.config)
        .args(["sync", "--once"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    let conn = db.store().client().await.expect("conn");
    loop {
        assert!(Instant::now() < deadline, "the backfill never checkpointed");
        let written: i64 = conn
            .query_opt(
                "SELECT (position->>'records')::int8 FROM hubsync.cursors
                  WHERE object = 'contacts' AND stream = 'backfill'",
                &[],
            )
            .await
            .ok()
            .flatten()
            .map_or(0, |r| r.get::<_, Option<i64>>(0).unwrap_or(0));
        if written >= 500 {
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            panic!("sync finished before it could be killed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let partial = count(&db, "SELECT count(*) FROM hubspot.contacts").await;
    assert!(
        partial > 0 && partial < 3_000,
        "killed mid-backfill: {partial}"
    );

    let rerun = hubsync(&setup.config, &["sync", "--once"]);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert_eq!(
        count(&db, "SELECT count(*) FROM hubspot.contacts").await,
        3_000
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT hs_object_id) FROM hubspot.contacts"
        )
        .await,
        3_000
    );

    // At most the pages in flight were fetched twice: 30 pages + a few re-reads.
    let stats: serde_json::Value = reqwest::get(format!("{}/_emulator/stats", emu.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let lists = stats["by_route"]["GET /crm/v3/objects/contacts"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        (30..=30 + 10).contains(&lists),
        "list calls {lists}: {stats}"
    );
    emu.shutdown().await;
}
