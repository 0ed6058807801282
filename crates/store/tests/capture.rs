//! Change capture: triggers → outbox, origin tagging, TRUNCATE guard, the listener, claims.

use std::time::Duration;

use hubsync_store::{
    CaptureSpec, GenericClient, OUTBOX_CHANNEL, OutboxListener, Store, TestDb, Wakeup,
    install_capture, set_allow_truncate,
    state::outbox::{self, NetOp, Op},
    tagged_transaction,
};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(20);

async fn contacts(db: &TestDb) -> Store {
    let store = db.store().clone();
    let client = store.client().await.unwrap();
    client
        .batch_execute(
            "CREATE SCHEMA hubspot; CREATE TABLE hubspot.contacts ( \
               hs_object_id bigint PRIMARY KEY, email text, phone text, notes text)",
        )
        .await
        .unwrap();
    let spec = CaptureSpec {
        schema: "hubspot".into(),
        table: "contacts".into(),
        object: "contacts".into(),
        key_column: "hs_object_id".into(),
        id_column: Some("hs_object_id".into()),
        columns: vec!["email".into(), "phone".into()],
    };
    install_capture(&client, &spec).await.unwrap();
    // Installing again refreshes in place.
    install_capture(&client, &spec).await.unwrap();
    store
}

async fn all_entries(store: &Store) -> Vec<outbox::OutboxEntry> {
    let mut client = store.client().await.unwrap();
    let entries = outbox::claim(&mut client, "reader", None, 1000, Duration::from_secs(60))
        .await
        .unwrap();
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    outbox::ack(&client, "reader", &ids).await.unwrap();
    entries
}

#[tokio::test(flavor = "multi_thread")]
async fn captures_inserts_updates_and_deletes_with_changed_columns() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let client = store.client().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO hubspot.contacts VALUES (1, 'a@x.io', '1', 'n'); \
             UPDATE hubspot.contacts SET email = 'b@x.io' WHERE hs_object_id = 1; \
             UPDATE hubspot.contacts SET notes = 'not synced' WHERE hs_object_id = 1; \
             DELETE FROM hubspot.contacts WHERE hs_object_id = 1;",
        )
        .await
        .unwrap();
    let e = all_entries(&store).await;
    assert_eq!(
        e.iter().map(|e| e.op).collect::<Vec<_>>(),
        [Op::Insert, Op::Update, Op::Delete]
    );
    assert_eq!(e[0].changed_columns, ["email", "phone"]);
    assert_eq!(
        e[0].new_row,
        Some(json!({"hs_object_id": 1, "email": "a@x.io", "phone": "1"}))
    );
    assert_eq!(e[0].old_row, None);
    assert_eq!(e[1].changed_columns, ["email"]);
    assert_eq!(e[1].old_row.as_ref().unwrap()["email"], "a@x.io");
    assert_eq!(e[1].new_row.as_ref().unwrap()["email"], "b@x.io");
    assert_eq!(e[2].new_row, None);
    assert_eq!(e[2].old_row.as_ref().unwrap()["email"], "b@x.io");
    assert!(
        e.iter()
            .all(|x| x.row_key == "1" && x.hs_object_id == Some(1))
    );
    assert_eq!(e[0].source_table, "hubspot.contacts");
}

#[tokio::test(flavor = "multi_thread")]
async fn hubsyncs_own_writes_are_not_captured() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let mut client = store.client().await.unwrap();
    let tx = tagged_transaction(&mut client).await.unwrap();
    tx.batch_execute(
        "INSERT INTO hubspot.contacts VALUES (5, 'h@x.io', null, null); \
         UPDATE hubspot.contacts SET email = 'i@x.io'",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // The same connection, untagged again, is captured.
    client
        .batch_execute("UPDATE hubspot.contacts SET phone = '9'")
        .await
        .unwrap();
    drop(client);
    let e = all_entries(&store).await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].changed_columns, ["phone"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_is_refused_unless_opted_in() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let client = store.client().await.unwrap();
    client
        .batch_execute("INSERT INTO hubspot.contacts VALUES (1, 'a', null, null)")
        .await
        .unwrap();
    let err = client
        .batch_execute("TRUNCATE hubspot.contacts")
        .await
        .unwrap_err();
    let db_err = err.as_db_error().unwrap();
    assert_eq!(db_err.code().code(), "HS001");
    assert!(
        db_err
            .message()
            .contains("TRUNCATE of hubspot.contacts refused"),
        "{}",
        db_err.message()
    );
    assert!(db_err.hint().unwrap().contains("hubsync.allow_truncate"));

    client
        .batch_execute(
            "BEGIN; SET LOCAL hubsync.allow_truncate = on; TRUNCATE hubspot.contacts; COMMIT",
        )
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO hubspot.contacts VALUES (2, 'b', null, null)")
        .await
        .unwrap();
    assert!(
        client
            .batch_execute("TRUNCATE hubspot.contacts")
            .await
            .is_err()
    );
    set_allow_truncate(&client, "hubspot", "contacts", true)
        .await
        .unwrap();
    client
        .batch_execute("TRUNCATE hubspot.contacts")
        .await
        .unwrap();
}

async fn next_wakeup(listener: &mut OutboxListener) -> Wakeup {
    tokio::time::timeout(DEADLINE, listener.recv())
        .await
        .expect("no wake-up in time")
        .expect("listener ended")
}

#[tokio::test(flavor = "multi_thread")]
async fn listener_wakes_up_and_recovers_from_a_killed_connection() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let mut listener = OutboxListener::start(store.clone());
    assert_eq!(next_wakeup(&mut listener).await, Wakeup::Connected);

    let client = store.client().await.unwrap();
    client
        .batch_execute("INSERT INTO hubspot.contacts VALUES (1, 'a', null, null)")
        .await
        .unwrap();
    assert_eq!(
        next_wakeup(&mut listener).await,
        Wakeup::Notified {
            channel: OUTBOX_CHANNEL.into(),
            payload: "contacts".into()
        }
    );

    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'hubsync-listener' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // A change made while the listener is away is not notified to it...
    client
        .batch_execute("INSERT INTO hubspot.contacts VALUES (2, 'b', null, null)")
        .await
        .unwrap();
    // ...but it reconnects and says so, and the consumer catches up from the table.
    loop {
        if next_wakeup(&mut listener).await == Wakeup::Connected {
            break;
        }
    }
    let (pending, _, _) = outbox::counts(&client, Some("contacts")).await.unwrap();
    assert_eq!(pending, 2);
    client
        .batch_execute("INSERT INTO hubspot.contacts VALUES (3, 'c', null, null)")
        .await
        .unwrap();
    loop {
        if let Wakeup::Notified { payload, .. } = next_wakeup(&mut listener).await {
            assert_eq!(payload, "contacts");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_consumers_claim_disjoint_whole_records() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let client = store.client().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO hubspot.contacts SELECT g, 'e' || g, null, null FROM generate_series(1, 10) g; \
             UPDATE hubspot.contacts SET phone = '1'; UPDATE hubspot.contacts SET phone = '2';",
        )
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let (mut ca, mut cb) = (store.client().await.unwrap(), store.client().await.unwrap());
    let (a, b) = tokio::join!(
        outbox::claim(&mut ca, "a", None, 5, lease),
        outbox::claim(&mut cb, "b", Some("contacts"), 5, lease)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len(), 15);
    assert_eq!(b.len(), 15);
    let keys = |v: &[outbox::OutboxEntry]| {
        let mut k: Vec<String> = v.iter().map(|e| e.row_key.clone()).collect();
        k.sort();
        k.dedup();
        k
    };
    let (ka, kb) = (keys(&a), keys(&b));
    assert_eq!(ka.len(), 5);
    assert!(ka.iter().all(|k| !kb.contains(k)), "{ka:?} {kb:?}");
    let changes = outbox::coalesce(&a);
    assert_eq!(changes.len(), 5);
    assert!(
        changes
            .iter()
            .all(|c| c.op == NetOp::Create && c.entry_ids.len() == 3)
    );

    // Everything is in flight: nothing more to claim, even after another edit of a record.
    client
        .batch_execute("UPDATE hubspot.contacts SET email = 'z' WHERE hs_object_id = 1")
        .await
        .unwrap();
    let mut cc = store.client().await.unwrap();
    assert!(
        outbox::claim(&mut cc, "c", None, 100, lease)
            .await
            .unwrap()
            .is_empty()
    );

    let a_ids: Vec<i64> = a.iter().map(|e| e.id).collect();
    let b_ids: Vec<i64> = b.iter().map(|e| e.id).collect();
    assert_eq!(outbox::ack(&ca, "a", &a_ids).await.unwrap(), 15);
    assert_eq!(outbox::ack(&ca, "wrong consumer", &b_ids).await.unwrap(), 0);
    assert_eq!(
        outbox::fail(&cb, "b", &b_ids, "INVALID_EMAIL", None)
            .await
            .unwrap(),
        15
    );
    let (_, in_flight, failed) = outbox::counts(&client, None).await.unwrap();
    assert_eq!((in_flight, failed), (0, 15));

    // Record 1's new edit is claimable now (if 1 was a's, it is alone; if b's, its failed
    // entries come along so the failed fields are retried).
    let again = outbox::claim(&mut cc, "c", None, 100, lease).await.unwrap();
    let record_1 = outbox::coalesce(&again);
    assert_eq!(record_1.len(), 1);
    assert_eq!(record_1[0].row_key, "1");
    assert!(record_1[0].changed_columns.contains(&"email".to_owned()));
    let expected = if kb.contains(&"1".to_owned()) { 4 } else { 1 };
    assert_eq!(record_1[0].entry_ids.len(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_claim_can_be_taken_again() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let mut client = store.client().await.unwrap();
    client
        .batch_execute("INSERT INTO hubspot.contacts VALUES (1, 'a', null, null)")
        .await
        .unwrap();
    let first = outbox::claim(&mut client, "dead", None, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // The consumer died: its lapsed claim is taken again with no new edit needed.
    let retaken = outbox::claim(&mut client, "dead again", None, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].attempts, 2);
    client
        .batch_execute("UPDATE hubspot.contacts SET email = 'b'")
        .await
        .unwrap();
    let second = outbox::claim(&mut client, "alive", None, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(second.len(), 2);
    assert_eq!(second[0].attempts, 3);
    let ids: Vec<i64> = first.iter().map(|e| e.id).collect();
    assert_eq!(outbox::ack(&client, "dead", &ids).await.unwrap(), 0);
}

/// A consumer known to be gone gives its claims back at once (its lease has not lapsed),
/// and nobody else's.
#[tokio::test(flavor = "multi_thread")]
async fn a_gone_consumers_claims_are_given_back_at_once() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let mut client = store.client().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO hubspot.contacts VALUES (1, 'a', null, null); \
             INSERT INTO hubspot.contacts VALUES (2, 'b', null, null)",
        )
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let gone = outbox::claim(&mut client, "host:1", None, 1, hour)
        .await
        .unwrap();
    let alive = outbox::claim(&mut client, "host:2", None, 1, hour)
        .await
        .unwrap();
    assert_eq!((gone.len(), alive.len()), (1, 1));
    assert!(
        outbox::claim(&mut client, "host:3", None, 10, hour)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox::release_all_of(&client, "host:1").await.unwrap(), 1);
    let retaken = outbox::claim(&mut client, "host:3", None, 10, hour)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].id, gone[0].id);
}

#[tokio::test(flavor = "multi_thread")]
async fn applications_need_no_privilege_on_the_hubsync_schema() {
    let db = TestDb::new().await;
    let store = contacts(&db).await;
    let role = format!("app_{}", db.name());
    let client = store.client().await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE ROLE {role}; GRANT USAGE ON SCHEMA hubspot TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON hubspot.contacts TO {role};"
        ))
        .await
        .unwrap();
    let result = client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL ROLE {role}; \
             INSERT INTO hubspot.contacts VALUES (1, 'a', null, null); \
             UPDATE hubspot.contacts SET email = 'b'; COMMIT;"
        ))
        .await;
    let refused = client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL ROLE {role}; TRUNCATE hubspot.contacts; COMMIT;"
        ))
        .await;
    client.batch_execute("ROLLBACK").await.unwrap();
    client
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
    result.unwrap();
    let message = refused
        .unwrap_err()
        .as_db_error()
        .unwrap()
        .message()
        .to_owned();
    assert!(
        message.starts_with("TRUNCATE of hubspot.contacts refused"),
        "{message}"
    );
    assert_eq!(all_entries(&store).await.len(), 2);
}
