//! `hubsync gdpr-delete --email …` on the real binary: the person is gone from HubSpot and
//! from every table hubsync writes, the audit keeps a `gdpr_delete` entry without personal
//! data, and the next sync does not bring them back. Also the shared one-shot test setup
//! ([`OneShot`]) the CSV tests use.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, SeedConfig};
use hubsync_store::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_hubsync");

/// Emulator + database + config for one-shot commands.
pub(crate) struct OneShot {
    pub(crate) emulator: EmulatorHandle,
    pub(crate) db: TestDb,
    pub(crate) dir: tempfile::TempDir,
    config: PathBuf,
}

impl OneShot {
    /// Seeds `contacts` contacts and `companies` companies; `objects` is the TOML of the
    /// `[[object]]` sections.
    pub(crate) async fn new(contacts: usize, companies: usize, objects: &str) -> OneShot {
        let emulator = hubsync_emulator::spawn(EmulatorConfig {
            seed: SeedConfig {
                contacts,
                companies,
                deals: 0,
                tickets: 0,
                value: 11,
            },
            rate_limit: None,
            search_per_second: None,
            daily_limit: None,
            ..EmulatorConfig::default()
        })
        .await
        .expect("emulator");
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("hubsync.toml");
        let text = format!(
            "[hubspot]\nbase_url = \"{}\"\ntoken = {{ env = \"ONESHOT_TOKEN\" }}\nrate_limit = \"off\"\n\n\
             [postgres]\nurl = {{ env = \"ONESHOT_DATABASE_URL\" }}\n\n[server]\nsettle_delay = \"1s\"\n\n{objects}",
            emulator.base_url()
        );
        std::fs::write(&config, text).expect("config");
        OneShot {
            emulator,
            db,
            dir,
            config,
        }
    }

    /// Runs `hubsync ARGS` and asserts it succeeded.
    pub(crate) fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hubsync {args:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `hubsync ARGS`.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("ONESHOT_TOKEN", "pat-oneshot")
            .env("ONESHOT_DATABASE_URL", self.db.url())
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .output()
            .expect("run hubsync")
    }

    /// One value.
    pub(crate) async fn scalar<T: for<'a> hubsync_store::tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
    ) -> T {
        let conn = self.db.store().client().await.expect("conn");
        conn.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// GET on the emulator with the token; the status and JSON body.
    pub(crate) async fn hubspot(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.emulator.base_url()))
            .bearer_auth("pat-oneshot")
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdpr_delete_erases_everywhere_and_keeps_an_anonymous_audit_entry() {
    let objects = "[[object]]\nname = \"contacts\"\ndirection = \"two-way\"\n\
                   properties = [\"email\", \"firstname\", \"lastname\"]\n\n\
                   [[object]]\nname = \"companies\"\nproperties = [\"name\", \"domain\"]\n";
    let kit = OneShot::new(20, 5, objects).await;
    kit.ok(&["sync", "--once"]);
    // A contact that has a company (junction rows) and a shadow copy.
    let id: i64 = kit
        .scalar("SELECT contact_id FROM hubspot.contacts_companies ORDER BY 1 LIMIT 1")
        .await;
    let email: String = kit
        .scalar(&format!(
            "SELECT email FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    // An audit entry with a value of the person, to be redacted.
    kit.db
        .store()
        .client()
        .await
        .expect("conn")
        .execute(
            "INSERT INTO hubsync.audit (direction, object, hs_object_id, action, fields) \
             VALUES ('hubspot_to_postgres', 'contacts', $1, 'update', \
             jsonb_build_object('email', jsonb_build_object('old', NULL, 'new', $2::text)))",
            &[&id, &email],
        )
        .await
        .expect("audit");
    let shadow: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubsync.shadow WHERE hs_object_id = {id}"
        ))
        .await;
    assert!(shadow > 0, "two-way sync keeps a shadow copy");

    let out = kit.ok(&["gdpr-delete", "--email", &email.to_uppercase()]);
    let logs = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        !logs.contains(&email.to_lowercase()),
        "the email is never logged: {logs}"
    );
    assert!(logs.contains("gdpr delete done"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no terminal colours in a log that is not a terminal: {logs}"
    );

    let (status, _) = kit.hubspot(&format!("/crm/v3/objects/contacts/{id}")).await;
    assert_eq!(status, 404, "erased in HubSpot");
    for (what, sql) in [
        (
            "row",
            format!("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {id}"),
        ),
        (
            "junction rows",
            format!("SELECT count(*) FROM hubspot.contacts_companies WHERE contact_id = {id}"),
        ),
        (
            "shadow",
            format!(
                "SELECT count(*) FROM hubsync.shadow WHERE hs_object_id = {id} AND object = 'contacts'"
            ),
        ),
        (
            "record state",
            format!(
                "SELECT count(*) FROM hubsync.record_state WHERE hs_object_id = {id} AND object = 'contacts'"
            ),
        ),
        (
            "the email anywhere in hubsync's state",
            format!(
                "SELECT (SELECT count(*) FROM hubsync.audit WHERE fields::text ILIKE '%{e}%') \
                  + (SELECT count(*) FROM hubsync.outbox WHERE coalesce(new_row::text, '') || coalesce(old_row::text, '') ILIKE '%{e}%') \
                  + (SELECT count(*) FROM hubsync.inbox WHERE payload::text ILIKE '%{e}%') \
                  + (SELECT count(*) FROM hubsync.shadow WHERE value ILIKE '%{e}%') \
                  + (SELECT count(*) FROM hubsync.issues WHERE raw_value ILIKE '%{e}%')",
                e = email.replace('\'', "''")
            ),
        ),
    ] {
        assert_eq!(kit.scalar::<i64>(&sql).await, 0, "{what}");
    }
    let audit: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubsync.audit WHERE action = 'gdpr_delete' AND hs_object_id = {id} \
             AND fields = '{{}}'::jsonb"
        ))
        .await;
    assert_eq!(audit, 2, "one anonymous entry per side");
    let redacted: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubsync.audit WHERE hs_object_id = {id} AND fields->>'email' = 'redacted'"
        ))
        .await;
    assert_eq!(
        redacted, 1,
        "earlier entries keep the field name, not the value"
    );

    kit.ok(&["sync", "--once"]);
    let back: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    assert_eq!(back, 0, "the next sync does not bring the person back");
}

/// When PostgreSQL refuses the erasure for a passing reason (here a lock timeout behind a
/// transaction holding the contact's row, as the daemon's would), the command waits and
/// tries again instead of leaving the person erased in HubSpot only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdpr_delete_retries_while_postgresql_is_busy() {
    let objects = "[[object]]\nname = \"contacts\"\ndirection = \"two-way\"\n\
                   properties = [\"email\", \"firstname\"]\n";
    let kit = OneShot::new(5, 0, objects).await;
    kit.ok(&["sync", "--once"]);
    let (id, email): (i64, String) = {
        let conn = kit.db.store().client().await.expect("conn");
        let row = conn
            .query_one(
                "SELECT hs_object_id, email FROM hubspot.contacts ORDER BY 1 LIMIT 1",
                &[],
            )
            .await
            .expect("a contact");
        (row.get(0), row.get(1))
    };
    let mut holder = kit.db.store().client().await.expect("conn");
    holder
        .batch_execute(&format!(
            "ALTER DATABASE {} SET lock_timeout = '300ms'",
            kit.scalar::<String>("SELECT quote_ident(current_database())")
                .await
        ))
        .await
        .expect("lock_timeout");
    let hold = holder.transaction().await.expect("begin");
    hold.execute(
        "SELECT 1 FROM hubspot.contacts WHERE hs_object_id = $1 FOR UPDATE",
        &[&id],
    )
    .await
    .expect("lock the row");

    let log = kit.dir.path().join("gdpr.log");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&kit.config)
        .args(["gdpr-delete", "--email", &email])
        .env("ONESHOT_TOKEN", "pat-oneshot")
        .env("ONESHOT_DATABASE_URL", kit.db.url())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = std::time::Instant::now();
    while !stderr().contains("retrying") {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "gdpr-delete ended ({status}) without retrying:\n{}",
                stderr()
            );
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "no retry"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    hold.rollback().await.expect("release the row");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{}", stderr());
    let left: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    assert_eq!(left, 0, "erased in PostgreSQL after the retry");
    let (code, _) = kit.hubspot(&format!("/crm/v3/objects/contacts/{id}")).await;
    assert_eq!(code, 404, "erased in HubSpot");
}
