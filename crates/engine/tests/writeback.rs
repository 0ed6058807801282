//! PostgreSQL → HubSpot writeback against the real emulator and PostgreSQL: creates with the
//! id written back, updates of changed fields only, archives, coalescing, crash safety,
//! per-row status and poison records.

use hubsync_engine::pg_to_hs::{CrashPoint, DrainOptions};
use hubsync_engine::policy::ConflictPolicy;
use serde_json::json;

use crate::two_way_kit::tw;

#[tokio::test(flavor = "multi_thread")]
async fn insert_creates_the_record_and_writes_its_id_back_without_an_echo() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email, firstname) VALUES ('ann@example.com', 'Ann')")
        .await;
    let report = kit.push().await;
    assert_eq!(report.created, 1, "{report:?}");
    let id = kit.id_of("ann@example.com").await;
    let record = kit.hubspot(id).await;
    assert_eq!(record["properties"]["firstname"], "Ann");
    let key: String = kit
        .scalar("SELECT hubsync_row_id::text FROM hubspot.contacts")
        .await;
    assert_eq!(record["properties"]["hubsync_row_id"], key.as_str());
    // Writing the id back was hubsync's own write: nothing new in the outbox.
    let pending: i64 = kit.scalar("SELECT count(*) FROM hubsync.outbox").await;
    assert_eq!(pending, 0);
    let status: String = kit.scalar("SELECT status FROM hubsync.record_state").await;
    assert_eq!(status, "synced");
    // The next pass reads the record back as an echo and writes nothing to HubSpot.
    kit.reset_stats().await;
    let second = kit.pass().await;
    assert_eq!(second.writes(), 0, "{second:?}");
    assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
    let rows: i64 = kit.scalar("SELECT count(*) FROM hubspot.contacts").await;
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_sends_only_changed_fields_and_rapid_edits_coalesce() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email, firstname, lastname) VALUES ('bo@example.com', 'Bo', 'Old')").await;
    kit.push().await;
    let id = kit.id_of("bo@example.com").await;
    // HubSpot changes lastname; PostgreSQL (not knowing) changes only firstname, five times.
    kit.edit_in_hubspot(id, json!({"lastname": "FromHubSpot"}))
        .await;
    for name in ["B1", "B2", "B3", "B4", "Bob"] {
        kit.sql(&format!(
            "UPDATE hubspot.contacts SET firstname = '{name}' WHERE hs_object_id = {id}"
        ))
        .await;
    }
    kit.reset_stats().await;
    let report = kit.push().await;
    assert_eq!(report.updated, 1, "{report:?}");
    let stats = kit.stats().await;
    assert_eq!(
        stats["by_route"]["POST /crm/v3/objects/contacts/batch/update"], 1,
        "{stats}"
    );
    let record = kit.hubspot(id).await;
    assert_eq!(record["properties"]["firstname"], "Bob");
    // lastname was not sent, so HubSpot's edit survives.
    assert_eq!(record["properties"]["lastname"], "FromHubSpot");
    kit.pull().await;
    let last: String = kit
        .scalar(&format!(
            "SELECT lastname FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    assert_eq!(last, "FromHubSpot");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_and_archived_at_archive_in_hubspot() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email) VALUES ('d1@example.com'), ('d2@example.com')")
        .await;
    kit.push().await;
    let d1 = kit.id_of("d1@example.com").await;
    let d2 = kit.id_of("d2@example.com").await;
    kit.sql("DELETE FROM hubspot.contacts WHERE email = 'd1@example.com'")
        .await;
    kit.sql("UPDATE hubspot.contacts SET archived_at = now() WHERE email = 'd2@example.com'")
        .await;
    let report = kit.push().await;
    assert_eq!(report.archived, 2, "{report:?}");
    for id in [d1, d2] {
        let url = format!("{}/crm/v3/objects/contacts/{id}", kit.emulator.base_url());
        let status = kit
            .http
            .get(url)
            .bearer_auth("pat-test")
            .send()
            .await
            .expect("get")
            .status();
        assert_eq!(status.as_u16(), 404, "record {id} should be archived");
    }
    // The deleted row is not brought back by the next pull (archived sweep included).
    kit.pass().await;
    let back: i64 = kit
        .scalar("SELECT count(*) FROM hubspot.contacts WHERE email = 'd1@example.com'")
        .await;
    assert_eq!(back, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_each_step_of_a_create_never_duplicates() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email, firstname) VALUES ('crash@example.com', 'C')")
        .await;
    let dying = |crash_at| DrainOptions {
        consumer: "dying".into(),
        lease: std::time::Duration::ZERO,
        crash_at: Some(crash_at),
        ..DrainOptions::default()
    };
    // 1. Claimed, then died before calling HubSpot.
    let r = kit.push_with(&dying(CrashPoint::AfterClaim)).await;
    assert_eq!(r.created, 0);
    assert_eq!(kit.count_in_hubspot("email", "crash@example.com").await, 0);
    // 2. HubSpot accepted the create, then died before recording the id.
    kit.push_with(&dying(CrashPoint::AfterHubSpot)).await;
    assert_eq!(kit.count_in_hubspot("email", "crash@example.com").await, 1);
    let id: Option<i64> = kit
        .scalar("SELECT hs_object_id FROM hubspot.contacts")
        .await;
    assert_eq!(id, None, "the id was not recorded");
    // 2b. An inbound pull sees the record before the writer recorded its id: it is linked
    // to the application's row, never inserted as a second row (lesson 14).
    kit.pull().await;
    let rows: i64 = kit.scalar("SELECT count(*) FROM hubspot.contacts").await;
    assert_eq!(rows, 1);
    // 3. The rerun upserts by hubsync_row_id: still one record in HubSpot.
    let report = kit.push().await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(kit.count_in_hubspot("email", "crash@example.com").await, 1);
    let id: Option<i64> = kit
        .scalar("SELECT hs_object_id FROM hubspot.contacts")
        .await;
    assert!(id.is_some());
    let pending: i64 = kit.scalar("SELECT count(*) FROM hubsync.outbox").await;
    assert_eq!(pending, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_row_is_failed_with_hubspots_message_and_retried_when_edited() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email) VALUES ('dup@example.com')")
        .await;
    kit.push().await;
    // A second row with the same email: HubSpot refuses it (unique email); others go on.
    kit.sql("INSERT INTO hubspot.contacts (email, firstname) VALUES ('dup@example.com', 'Copy'), ('ok@example.com', 'Ok')").await;
    let report = kit.push().await;
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.created, 1, "{report:?}");
    let (status, error): (String, String) = {
        let conn = kit.store().client().await.expect("conn");
        let row = conn
            .query_one(
                "SELECT s.status, s.last_error FROM hubspot.contacts c JOIN hubsync.record_state s \
                 ON s.object = 'contacts' AND s.row_key = c.hubsync_row_id::text \
                 WHERE c.firstname = 'Copy'",
                &[],
            )
            .await
            .expect("status");
        (row.get(0), row.get(1))
    };
    assert_eq!(status, "failed");
    assert!(error.contains("already exists"), "{error}");
    // Nothing is retried until the row changes; after a fix it goes through.
    assert_eq!(kit.push().await.writes(), 0);
    kit.sql("UPDATE hubspot.contacts SET email = 'fixed@example.com' WHERE firstname = 'Copy'")
        .await;
    let report = kit.push().await;
    assert_eq!(report.created, 1, "{report:?}");
    let status: String = kit
        .scalar("SELECT s.status FROM hubspot.contacts c JOIN hubsync.record_state s ON s.row_key = c.hubsync_row_id::text WHERE c.firstname = 'Copy'")
        .await;
    assert_eq!(status, "synced");
}

/// More pending updates than one batch read takes, while HubSpot's search index lags a
/// minute: a HubSpot edit the pull has not seen, made on one of them, is still read (batch
/// reads of 100, not the lagging search) and merged before writing — under `manual` it is
/// queued, never overwritten — and the other records are written.
#[tokio::test(flavor = "multi_thread")]
async fn a_hubspot_edit_among_more_than_a_batch_of_pending_updates_is_never_overwritten() {
    const ROWS: usize = 150;
    let kit = tw(ConflictPolicy::Manual).await;
    let values: Vec<String> = (0..ROWS)
        .map(|i| format!("('many{i}@example.com', 'Base')"))
        .collect();
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts (email, firstname) VALUES {}",
        values.join(", ")
    ))
    .await;
    assert_eq!(kit.push().await.created, ROWS as u64);
    let id = kit.id_of("many7@example.com").await;
    kit.post("/_emulator/faults", json!({"search_lag_ms": 60_000}))
        .await;
    kit.edit_in_hubspot(id, json!({"firstname": "FromHubSpot"}))
        .await;
    kit.sql("UPDATE hubspot.contacts SET firstname = 'FromPostgres'")
        .await;
    kit.reset_stats().await;
    let report = kit.push().await; // no pull in between
    assert_eq!(report.verified, 1, "{report:?}");
    assert_eq!(report.updated, ROWS as u64 - 1, "{report:?}");
    let record = kit.hubspot(id).await;
    assert_eq!(record["properties"]["firstname"], "FromHubSpot");
    let open: i64 = kit
        .scalar("SELECT count(*) FROM hubsync.conflicts WHERE status = 'open'")
        .await;
    assert_eq!(open, 1);
    // One batch read per batch of pending records, no more.
    let stats = kit.stats().await;
    assert_eq!(
        stats["by_route"]["POST /crm/v3/objects/contacts/batch/read"],
        ROWS.div_ceil(100),
        "{stats}"
    );
    let other = kit.id_of("many8@example.com").await;
    assert_eq!(
        kit.hubspot(other).await["properties"]["firstname"],
        "FromPostgres"
    );
}
