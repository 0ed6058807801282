//! Two-way rules against the real emulator and PostgreSQL: the same field edited on both
//! sides under each policy, manual resolution, echoes after newer local edits, deletes
//! racing updates, and no write at all on a quiet second pass.

use chrono::{DateTime, Duration, Utc};
use hubsync_engine::clock::SkewRule;
use hubsync_engine::model;
use hubsync_engine::policy::{ConflictPolicy, Direction, FieldRule, FieldRules};
use hubsync_engine::two_way;
use hubsync_store::state::{conflicts, shadow::Side};
use hubsync_store::tagged_transaction;
use hubsync_store::upsert::RecordRow;
use serde_json::json;

use crate::two_way_kit::{Tw, tw, tw_with};

/// A synced contact edited on both sides: HubSpot sets `firstname` to "FromHubSpot",
/// PostgreSQL to "FromPostgres". Returns its id.
async fn edited_on_both_sides(kit: &Tw, email: &str) -> i64 {
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts (email, firstname) VALUES ('{email}', 'Base')"
    ))
    .await;
    kit.pass().await;
    let id = kit.id_of(email).await;
    kit.edit_in_hubspot(id, json!({"firstname": "FromHubSpot"}))
        .await;
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = 'FromPostgres' WHERE hs_object_id = {id}"
    ))
    .await;
    id
}

async fn both_sides(kit: &Tw, id: i64) -> (String, String) {
    let pg: String = kit
        .scalar(&format!(
            "SELECT firstname FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    let hs = kit.hubspot(id).await["properties"]["firstname"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (pg, hs)
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_wins_and_postgres_wins() {
    for (policy, winner) in [
        (ConflictPolicy::HubSpotWins, "FromHubSpot"),
        (ConflictPolicy::PostgresWins, "FromPostgres"),
    ] {
        let kit = tw(policy).await;
        let id = edited_on_both_sides(&kit, "both@example.com").await;
        kit.pass().await;
        assert_eq!(
            both_sides(&kit, id).await,
            (winner.to_owned(), winner.to_owned()),
            "{policy}"
        );
        // Settled: a further pass changes nothing and writes nothing to HubSpot.
        kit.reset_stats().await;
        kit.pass().await;
        assert_eq!(
            kit.write_calls().await,
            0,
            "{policy}: {}",
            kit.stats().await
        );
        assert_eq!(
            both_sides(&kit, id).await,
            (winner.to_owned(), winner.to_owned())
        );
        let audited: i64 = kit
            .scalar("SELECT count(*) FROM hubsync.audit WHERE action = 'conflict_resolved'")
            .await;
        assert!(
            audited >= 1 || policy == ConflictPolicy::PostgresWins,
            "{policy}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_conflicts_wait_for_a_person_and_resolve_either_way() {
    let kit = tw(ConflictPolicy::Manual).await;
    let id = edited_on_both_sides(&kit, "manual@example.com").await;
    kit.pass().await;
    // Neither side is overwritten; the conflict is queued with both values.
    assert_eq!(
        both_sides(&kit, id).await,
        ("FromPostgres".to_owned(), "FromHubSpot".to_owned())
    );
    let conn = kit.store().client().await.expect("conn");
    let open = conflicts::list(&conn, conflicts::ConflictFilter::Open, Some("contacts"), 10)
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].detail.hubspot_value.as_deref(), Some("FromHubSpot"));
    assert_eq!(
        open[0].detail.postgres_value.as_deref(),
        Some("FromPostgres")
    );
    // Passes while it is open write nothing.
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0);
    // Take PostgreSQL's value: HubSpot follows.
    conflicts::resolve(&conn, open[0].id, Side::Postgres)
        .await
        .expect("resolve");
    kit.pass().await;
    assert_eq!(
        both_sides(&kit, id).await,
        ("FromPostgres".to_owned(), "FromPostgres".to_owned())
    );
    // A second conflict, resolved by SQL towards HubSpot.
    kit.edit_in_hubspot(id, json!({"firstname": "H2"})).await;
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = 'P2' WHERE hs_object_id = {id}"
    ))
    .await;
    kit.pass().await;
    kit.sql("UPDATE hubsync.conflicts SET resolution = 'hubspot' WHERE status = 'open'")
        .await;
    kit.pass().await;
    assert_eq!(
        both_sides(&kit, id).await,
        ("H2".to_owned(), "H2".to_owned())
    );
    let applied: i64 = kit
        .scalar("SELECT count(*) FROM hubsync.conflicts WHERE applied_at IS NOT NULL")
        .await;
    assert_eq!(applied, 2);
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0);
}

/// `last-write-wins` by source versions when HubSpot's property history is not read (no
/// client for it, or HubSpot unreachable): HubSpot's record version against the pending
/// PostgreSQL change's capture time, outside the skew window either way.
#[tokio::test(flavor = "multi_thread")]
async fn last_write_wins_without_history_orders_by_record_versions() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    let id = edited_on_both_sides(&kit, "lww@example.com").await;
    let mut object = kit.object().await;
    object.history = None;
    let row = |updated_at| RecordRow {
        hs_object_id: id,
        properties: [("firstname".to_owned(), Some("FromHubSpot".to_owned()))].into(),
        created_at: None,
        updated_at,
        archived_at: None,
    };
    // PostgreSQL's change was captured an hour from now (a later commit than HubSpot's
    // edit a minute from now): PostgreSQL wins, the field is held back from the row.
    kit.sql("UPDATE hubsync.outbox SET changed_at = now() + interval '1 hour'")
        .await;
    let mut conn = kit.store().client().await.expect("conn");
    let tx = tagged_transaction(&mut conn).await.expect("tx");
    let soon = Utc::now() + Duration::minutes(1);
    let pg_later = two_way::inbound(&tx, &object, vec![row(soon)], Utc::now())
        .await
        .expect("inbound");
    assert!(
        !pg_later.rows[0].properties.contains_key("firstname"),
        "{pg_later:?}"
    );
    assert_eq!(pg_later.resolved_conflicts, 1);
    drop(tx);
    // HubSpot's write two hours from now is the later one: HubSpot wins.
    let tx = tagged_transaction(&mut conn).await.expect("tx");
    let later = Utc::now() + Duration::hours(2);
    let hs_later = two_way::inbound(&tx, &object, vec![row(later)], Utc::now())
        .await
        .expect("inbound");
    assert_eq!(
        hs_later.rows[0].properties["firstname"].as_deref(),
        Some("FromHubSpot")
    );
    assert_eq!(hs_later.resolved_conflicts, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_echo_arriving_after_a_newer_local_edit_does_not_flip_it_back() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email, firstname) VALUES ('echo@example.com', 'One')")
        .await;
    kit.push().await;
    let id = kit.id_of("echo@example.com").await;
    // A newer local edit is pending while HubSpot's copy (the echo of "One") is pulled.
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = 'Two' WHERE hs_object_id = {id}"
    ))
    .await;
    kit.pull().await;
    let (pg, _) = both_sides(&kit, id).await;
    assert_eq!(
        pg, "Two",
        "the echo must not overwrite the newer local value"
    );
    let report = kit.push().await;
    assert_eq!(report.updated, 1, "{report:?}");
    assert_eq!(
        both_sides(&kit, id).await,
        ("Two".to_owned(), "Two".to_owned())
    );
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_wins_over_a_racing_update_on_either_side() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    kit.sql("INSERT INTO hubspot.contacts (email) VALUES ('a@example.com'), ('b@example.com')")
        .await;
    kit.pass().await;
    let a = kit.id_of("a@example.com").await;
    let b = kit.id_of("b@example.com").await;
    // a: deleted in PostgreSQL while HubSpot updates it.
    kit.sql("DELETE FROM hubspot.contacts WHERE email = 'a@example.com'")
        .await;
    kit.edit_in_hubspot(a, json!({"firstname": "Late"})).await;
    // b: archived in HubSpot while PostgreSQL updates it.
    kit.client
        .archive_object("contacts", u64::try_from(b).unwrap_or_default())
        .await
        .expect("archive");
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = 'Late' WHERE hs_object_id = {b}"
    ))
    .await;
    let report = kit.pass().await;
    assert_eq!(report.failed, 0, "{report:?}");
    let a_rows: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {a}"
        ))
        .await;
    assert_eq!(a_rows, 0, "a deleted row is not revived by a racing update");
    assert_eq!(kit.count_in_hubspot("email", "a@example.com").await, 0);
    let b_archived: bool = kit
        .scalar(&format!(
            "SELECT archived_at IS NOT NULL FROM hubspot.contacts WHERE hs_object_id = {b}"
        ))
        .await;
    assert!(b_archived, "the row follows HubSpot's archive");
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
}

/// A HubSpot edit the pull has not seen yet (made just before the push) is read and
/// merged before writing: under `manual` it is queued, never overwritten.
#[tokio::test(flavor = "multi_thread")]
async fn a_hubspot_edit_not_yet_pulled_is_never_overwritten() {
    let kit = tw(ConflictPolicy::Manual).await;
    let id = edited_on_both_sides(&kit, "unseen@example.com").await;
    let report = kit.push().await; // no pull in between
    assert_eq!(report.verified, 1, "{report:?}");
    assert_eq!(report.updated, 0, "{report:?}");
    assert_eq!(
        both_sides(&kit, id).await,
        ("FromPostgres".to_owned(), "FromHubSpot".to_owned())
    );
    let open: i64 = kit
        .scalar("SELECT count(*) FROM hubsync.conflicts WHERE status = 'open'")
        .await;
    assert_eq!(open, 1);
}

/// A `last-write-wins` kit whose skew window is `window_ms` and whose ties go to `tie`.
async fn lww(window_ms: u64, tie: model::Side) -> Tw {
    let rules = FieldRules::new(FieldRule {
        direction: Direction::TwoWay,
        policy: ConflictPolicy::LastWriteWins,
    })
    .with_skew(SkewRule {
        window_ms,
        tie_winner: tie,
    });
    tw_with(rules, None).await
}

/// A synced contact `email` with `firstname` "Base"; returns its id.
async fn synced_contact(kit: &Tw, email: &str) -> i64 {
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts (email, firstname, lastname) VALUES ('{email}', 'Base', 'Base')"
    ))
    .await;
    kit.pass().await;
    kit.id_of(email).await
}

/// Edits `properties` in HubSpot as a user; returns the time HubSpot stamped on the write.
async fn edit_at(kit: &Tw, id: i64, properties: serde_json::Value) -> DateTime<Utc> {
    let record = kit
        .post(
            &format!("/_emulator/objects/contacts/{id}"),
            json!({ "properties": properties }),
        )
        .await;
    record["updatedAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("updatedAt")
}

/// Edits `firstname` in PostgreSQL; returns the capture time of the change.
async fn pg_edit_at(kit: &Tw, id: i64, value: &str) -> DateTime<Utc> {
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = '{value}' WHERE hs_object_id = {id}"
    ))
    .await;
    kit.scalar("SELECT max(changed_at) FROM hubsync.outbox")
        .await
}

/// Waits (polling, with a deadline) until both clocks are past `t` by more than
/// `window_ms`, so the next write is outside the skew window of `t`.
async fn wait_past(kit: &Tw, t: DateTime<Utc>, window_ms: u64) {
    let target = t + Duration::milliseconds(i64::try_from(window_ms).unwrap_or(0) + 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let db: DateTime<Utc> = kit.scalar("SELECT clock_timestamp()").await;
        if Utc::now() > target && db > target {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "clock did not pass {t}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn firstname_shadow(kit: &Tw, id: i64) -> (Option<String>, Option<DateTime<Utc>>) {
    let conn = kit.store().client().await.expect("conn");
    let row = conn
        .query_one(
            "SELECT value, hubspot_version FROM hubsync.shadow \
             WHERE object = 'contacts' AND hs_object_id = $1 AND field = 'firstname'",
            &[&id],
        )
        .await
        .expect("shadow");
    (row.get(0), row.get(1))
}

/// HubSpot's `firstname` edit is older than PostgreSQL's, but HubSpot's `lastname` was
/// edited after both, so the record's `updatedAt` is newer than PostgreSQL's edit:
/// `last-write-wins` orders by the field's own timestamp (its property history), and
/// PostgreSQL's later edit wins. HubSpot's unrelated `lastname` edit still reaches
/// PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn last_write_wins_orders_by_the_fields_own_timestamp() {
    const WINDOW: u64 = 20;
    let kit = lww(WINDOW, model::Side::HubSpot).await;
    let id = synced_contact(&kit, "field-ts@example.com").await;
    let hs_firstname = edit_at(&kit, id, json!({"firstname": "FromHubSpot"})).await;
    wait_past(&kit, hs_firstname, WINDOW).await;
    let pg_firstname = pg_edit_at(&kit, id, "FromPostgres").await;
    wait_past(&kit, pg_firstname, WINDOW).await;
    let hs_lastname = edit_at(&kit, id, json!({"lastname": "Later"})).await;
    assert!(hs_firstname < pg_firstname && pg_firstname < hs_lastname);

    kit.pass().await;
    assert_eq!(
        both_sides(&kit, id).await,
        ("FromPostgres".to_owned(), "FromPostgres".to_owned())
    );
    let lastname: String = kit
        .scalar(&format!(
            "SELECT lastname FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    assert_eq!(lastname, "Later");
    let audited: String = kit
        .scalar(
            "SELECT direction::text FROM hubsync.audit WHERE action = 'conflict_resolved' \
             ORDER BY id DESC LIMIT 1",
        )
        .await;
    assert_eq!(audited, "postgres_to_hubspot");
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
}

/// The mirror case: HubSpot's `firstname` edit is the later one (and `lastname` later
/// still). HubSpot wins, and the shadow records the field's own timestamp as HubSpot's
/// version of it, not the record's `updatedAt`.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_hubspot_field_edit_wins_and_its_timestamp_is_the_shadow_version() {
    const WINDOW: u64 = 20;
    let kit = lww(WINDOW, model::Side::Postgres).await;
    let id = synced_contact(&kit, "field-ts-hs@example.com").await;
    let pg_firstname = pg_edit_at(&kit, id, "FromPostgres").await;
    wait_past(&kit, pg_firstname, WINDOW).await;
    let hs_firstname = edit_at(&kit, id, json!({"firstname": "FromHubSpot"})).await;
    wait_past(&kit, hs_firstname, 1).await;
    let hs_lastname = edit_at(&kit, id, json!({"lastname": "Later"})).await;
    assert!(pg_firstname < hs_firstname && hs_firstname < hs_lastname);

    kit.pass().await;
    assert_eq!(
        both_sides(&kit, id).await,
        ("FromHubSpot".to_owned(), "FromHubSpot".to_owned())
    );
    assert_eq!(
        firstname_shadow(&kit, id).await,
        (Some("FromHubSpot".to_owned()), Some(hs_firstname))
    );
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
}

/// Writes within the skew window are concurrent: the configured tie side wins, even
/// when the other side's write is the later one by the clocks.
#[tokio::test(flavor = "multi_thread")]
async fn writes_within_the_skew_window_go_to_the_tie_side() {
    for (tie, winner) in [
        (model::Side::HubSpot, "FromHubSpot"),
        (model::Side::Postgres, "FromPostgres"),
    ] {
        let kit = lww(1_000, tie).await;
        let id = synced_contact(&kit, "tie@example.com").await;
        let hs_firstname = edit_at(&kit, id, json!({"firstname": "FromHubSpot"})).await;
        pg_edit_at(&kit, id, "FromPostgres").await;
        // PostgreSQL's change half a window after HubSpot's: later, but concurrent.
        kit.sql(&format!(
            "UPDATE hubsync.outbox SET changed_at = '{}'",
            (hs_firstname + Duration::milliseconds(500)).to_rfc3339()
        ))
        .await;
        kit.pass().await;
        assert_eq!(
            both_sides(&kit, id).await,
            (winner.to_owned(), winner.to_owned()),
            "ties to {tie}"
        );
        kit.reset_stats().await;
        kit.pass().await;
        assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
    }
}

/// The row HubSpot's copy of `id` becomes (the kit's properties, HubSpot's `updatedAt`).
async fn row_of(kit: &Tw, id: i64) -> RecordRow {
    let record = kit.hubspot(id).await;
    let properties = ["email", "firstname", "lastname", "phone"]
        .iter()
        .map(|p| {
            let v = record["properties"][*p].as_str().map(str::to_owned);
            ((*p).to_owned(), v)
        })
        .collect();
    RecordRow {
        hs_object_id: id,
        properties,
        created_at: None,
        updated_at: record["updatedAt"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("updatedAt"),
        archived_at: None,
    }
}

/// Property history is read only for conflicts HubSpot would win by its record version:
/// one batch read for the one such record, none for a conflict PostgreSQL already wins by
/// it or for a record without a conflict.
#[tokio::test(flavor = "multi_thread")]
async fn history_is_read_only_for_conflicts_the_record_version_cannot_settle() {
    const WINDOW: u64 = 20;
    let kit = lww(WINDOW, model::Side::HubSpot).await;
    let undecided = synced_contact(&kit, "undecided@example.com").await;
    let settled = synced_contact(&kit, "settled@example.com").await;
    let quiet = synced_contact(&kit, "quiet@example.com").await;
    // undecided: HubSpot's firstname edit is older than PostgreSQL's, its lastname newer.
    let hs = edit_at(&kit, undecided, json!({"firstname": "H"})).await;
    wait_past(&kit, hs, WINDOW).await;
    let pg = pg_edit_at(&kit, undecided, "P").await;
    wait_past(&kit, pg, WINDOW).await;
    edit_at(&kit, undecided, json!({"lastname": "Later"})).await;
    // settled: PostgreSQL's edit is the later one even by HubSpot's record version.
    edit_at(&kit, settled, json!({"firstname": "H"})).await;
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = 'P' WHERE hs_object_id = {settled}"
    ))
    .await;
    kit.sql(&format!(
        "UPDATE hubsync.outbox SET changed_at = now() + interval '1 hour' \
         WHERE hs_object_id = {settled}"
    ))
    .await;
    edit_at(&kit, quiet, json!({"phone": "+1 555"})).await;

    let rows = vec![
        row_of(&kit, undecided).await,
        row_of(&kit, settled).await,
        row_of(&kit, quiet).await,
    ];
    let object = kit.object().await;
    kit.reset_stats().await;
    let mut conn = kit.store().client().await.expect("conn");
    let tx = tagged_transaction(&mut conn).await.expect("tx");
    let out = two_way::inbound(&tx, &object, rows, Utc::now())
        .await
        .expect("inbound");
    assert_eq!(out.resolved_conflicts, 2, "{out:?}");
    assert_eq!(out.by_field_timestamp, 1, "{out:?}");
    // PostgreSQL wins both conflicts: firstname is left out of both rows.
    assert!(
        out.rows
            .iter()
            .all(|r| r.hs_object_id == quiet || !r.properties.contains_key("firstname"))
    );
    let stats = kit.stats().await;
    let reads: u64 = stats["by_route"]
        .as_object()
        .map(|routes| {
            routes
                .iter()
                .filter(|(route, _)| route.contains("batch/read"))
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(reads, 1, "{stats}");
}

/// An application's update committing while a HubSpot batch is being merged and written
/// is not overwritten: the merge locks the batch's rows first, so the update waits and
/// lands on top of the written batch, and reaches HubSpot (soak seed 20001346: both sides
/// ended with the application's value lost).
#[tokio::test(flavor = "multi_thread")]
async fn an_update_racing_the_inbound_merge_is_not_lost() {
    let kit = tw(ConflictPolicy::LastWriteWins).await;
    let id = synced_contact(&kit, "racing@example.com").await;
    // A HubSpot change of another field, so the batch is newer than the row and written.
    edit_at(&kit, id, json!({"phone": "+1 555 0100"})).await;
    let rows = vec![row_of(&kit, id).await];
    let object = kit.object().await;
    let mut conn = kit.store().client().await.expect("conn");
    let tx = tagged_transaction(&mut conn).await.expect("tx");
    let out = two_way::inbound(&tx, &object, rows, Utc::now())
        .await
        .expect("inbound");

    // The application's update, on its own connection, between the merge and the write.
    let app = kit.store().client().await.expect("app conn");
    let sql = format!("UPDATE hubspot.contacts SET lastname = 'App' WHERE hs_object_id = {id}");
    let update = tokio::spawn(async move { app.batch_execute(&sql).await });
    // Wait until it has either finished or is waiting for a lock (either way it has
    // been issued before the write below).
    let watcher = kit.store().client().await.expect("watch conn");
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE hubspot.contacts%'",
                &[],
            )
            .await
            .expect("activity")
            .get(0);
        if update.is_finished() || waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    hubsync_store::upsert::upsert_records(&tx, &object.mapping, &out.rows)
        .await
        .expect("write");
    tx.commit().await.expect("commit");
    update
        .await
        .expect("join")
        .expect("the application's update");

    kit.pass().await;
    let pg: String = kit
        .scalar(&format!(
            "SELECT lastname FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await;
    let record = kit.hubspot(id).await;
    assert_eq!(pg, "App");
    assert_eq!(record["properties"]["lastname"], "App", "{record}");
    assert_eq!(record["properties"]["phone"], "+1 555 0100", "{record}");
}
