//! The state tables: cursors, leases, record state, shadow, inbox, conflicts, issues, audit.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use hubsync_store::{
    CONFLICTS_CHANNEL, OutboxListener, TestDb, Wakeup,
    state::{
        audit::{self, AuditEntry, Direction},
        conflicts::{self, ConflictFilter, NewConflict},
        cursors,
        inbox::{self, InboxEvent},
        issues::{self, NewIssue},
        leases,
        records::{self, SyncStatus},
        shadow::{self, ShadowField, Side},
    },
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn cursor_moves_only_with_its_transaction() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    assert_eq!(
        cursors::get(&client, "contacts", "incremental")
            .await
            .unwrap(),
        None
    );
    cursors::set_as(&client, "contacts", "incremental", &json!({"since": 1}))
        .await
        .unwrap();

    let tx = client.transaction().await.unwrap();
    cursors::set(&tx, "contacts", "incremental", &json!({"since": 2}))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let since: Option<serde_json::Value> = cursors::get_as(&client, "contacts", "incremental")
        .await
        .unwrap();
    assert_eq!(since, Some(json!({"since": 1})));

    let tx = client.transaction().await.unwrap();
    cursors::set(&tx, "contacts", "incremental", &json!({"since": 3}))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        cursors::list(&client).await.unwrap()[0].position,
        json!({"since": 3})
    );
    assert_eq!(cursors::clear(&client, "contacts", None).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_exclude_other_holders_until_they_expire() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    let ttl = Duration::from_secs(60);
    let a = leases::acquire(&client, "portal/contacts", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(
        leases::acquire(&client, "portal/contacts", "b", ttl)
            .await
            .unwrap()
            .is_none()
    );
    let renewed = leases::acquire(&client, "portal/contacts", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.fencing, a.fencing);
    // An expired lease moves, with a higher fencing number.
    leases::acquire(&client, "portal/deals", "a", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let moved = leases::acquire(&client, "portal/deals", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.fencing, 2);
    assert!(
        leases::release(&client, "portal/contacts", "a")
            .await
            .unwrap()
    );
    assert!(
        !leases::release(&client, "portal/contacts", "a")
            .await
            .unwrap()
    );
    assert_eq!(leases::list(&client).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn record_state_tracks_failures_and_ids() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    records::set(
        &client,
        "contacts",
        "local-1",
        None,
        SyncStatus::Pending,
        None,
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let error = Some("INVALID_EMAIL");
        records::set(
            &client,
            "contacts",
            "local-1",
            None,
            SyncStatus::Failed,
            error,
        )
        .await
        .unwrap();
    }
    let s = records::get(&client, "contacts", "local-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.status, s.attempts, s.last_error.as_deref()),
        (SyncStatus::Failed, 2, Some("INVALID_EMAIL"))
    );
    assert_eq!(
        records::failed(&client, "contacts", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    records::set(
        &client,
        "contacts",
        "local-1",
        Some(77),
        SyncStatus::Synced,
        Some("ignored"),
    )
    .await
    .unwrap();
    let s = records::get(&client, "contacts", "local-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.status, s.attempts, s.last_error, s.hs_object_id),
        (SyncStatus::Synced, 0, None, Some(77))
    );
    assert_eq!(
        records::row_key_for(&client, "contacts", 77)
            .await
            .unwrap()
            .as_deref(),
        Some("local-1")
    );
    records::mark_merged(&client, "contacts", 78, 77)
        .await
        .unwrap();
    assert_eq!(
        records::get(&client, "contacts", "78")
            .await
            .unwrap()
            .unwrap()
            .merged_into,
        Some(77)
    );
    let counts = records::counts(&client, Some("contacts")).await.unwrap();
    assert_eq!((counts.pending, counts.synced, counts.failed), (0, 2, 0));
}

fn field(id: i64, name: &str, value: Option<&str>, side: Side) -> ShadowField {
    ShadowField {
        object: "contacts".into(),
        hs_object_id: id,
        field: name.into(),
        value: value.map(str::to_owned),
        hubspot_version: Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
        postgres_version: None,
        agreed_from: side,
        agreed_at: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_is_written_and_read_in_batches() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    let batch = vec![
        field(1, "email", Some("a@x.io"), Side::Hubspot),
        field(1, "phone", None, Side::Hubspot),
        field(2, "email", Some("b@x.io"), Side::Postgres),
        field(1, "email", Some("a2@x.io"), Side::Postgres),
    ];
    assert_eq!(shadow::put_many(&client, &batch).await.unwrap(), 3);
    let map = shadow::get_many(&client, "contacts", &[1, 2, 3])
        .await
        .unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map[&1]["email"].value.as_deref(), Some("a2@x.io"));
    assert_eq!(map[&1]["email"].agreed_from, Side::Postgres);
    assert_eq!(map[&1]["phone"].value, None);
    assert!(map[&1]["phone"].agreed_at.is_some());
    assert_eq!(
        shadow::delete_records(&client, "contacts", &[1])
            .await
            .unwrap(),
        2
    );
}

fn event(id: &str, object_id: i64) -> InboxEvent {
    InboxEvent {
        event_id: id.into(),
        object: "contacts".into(),
        hs_object_id: Some(object_id),
        subscription_type: Some("contact.propertyChange".into()),
        occurred_at: Some(Utc::now()),
        payload: json!({"eventId": id, "objectId": object_id}),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_deduplicates_by_event_id() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let new = inbox::insert(&client, &[event("1", 10), event("2", 11), event("1", 10)])
        .await
        .unwrap();
    assert_eq!(new, [true, true, false]);
    let new = inbox::insert(&client, &[event("2", 11), event("3", 12)])
        .await
        .unwrap();
    assert_eq!(new, [false, true]);
    assert_eq!(inbox::depth(&client).await.unwrap(), 3);

    let tx = client.transaction().await.unwrap();
    let taken = inbox::take_pending(&tx, 2).await.unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|r| r.event.event_id.as_str())
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
    let ids: Vec<i64> = taken.iter().map(|r| r.id).collect();
    inbox::mark_processed(&tx, &ids).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(inbox::depth(&client).await.unwrap(), 1);
    assert_eq!(
        inbox::purge_processed(&client, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        inbox::purge_processed(&client, Duration::ZERO)
            .await
            .unwrap(),
        2
    );
    // A purged id is no longer remembered; HubSpot stops retrying long before the purge age.
    assert_eq!(
        inbox::insert(&client, &[event("1", 10)]).await.unwrap(),
        [true]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_stay_open_until_resolved_and_notify() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    let mut listener =
        OutboxListener::start_on(db.store().clone(), vec![CONFLICTS_CHANNEL.to_owned()]);
    let next = async |l: &mut OutboxListener| {
        tokio::time::timeout(Duration::from_secs(20), l.recv())
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(next(&mut listener).await, Wakeup::Connected);

    let mut c = NewConflict {
        object: "contacts".into(),
        hs_object_id: 5,
        field: "phone".into(),
        shadow_value: Some("1".into()),
        hubspot_value: Some("2".into()),
        postgres_value: Some("3".into()),
        hubspot_version: None,
        postgres_version: Some(9),
    };
    let id = conflicts::record(&client, &c).await.unwrap();
    c.hubspot_value = Some("4".into());
    assert_eq!(
        conflicts::record(&client, &c).await.unwrap(),
        id,
        "one open conflict per field"
    );
    assert_eq!(conflicts::open_count(&client, None).await.unwrap(), 1);
    let open = conflicts::list(&client, ConflictFilter::Open, Some("contacts"), 10)
        .await
        .unwrap();
    assert_eq!(open[0].detail.hubspot_value.as_deref(), Some("4"));

    // Resolved by plain SQL, as the docs allow.
    client
        .execute(
            "UPDATE hubsync.conflicts SET resolution = 'postgres' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        next(&mut listener).await,
        Wakeup::Notified {
            channel: CONFLICTS_CHANNEL.into(),
            payload: id.to_string()
        }
    );
    let got = conflicts::get(&client, id).await.unwrap().unwrap();
    assert_eq!(got.resolution, Some(Side::Postgres));
    assert!(got.resolved_at.is_some() && !got.is_open());
    assert!(
        conflicts::resolve(&client, id, Side::Hubspot)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        conflicts::list(&client, ConflictFilter::ToApply, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(conflicts::mark_applied(&client, id).await.unwrap());
    assert!(
        conflicts::list(&client, ConflictFilter::ToApply, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A new conflict on the same field opens a new row; resolve() works too.
    let id2 = conflicts::record(&client, &c).await.unwrap();
    assert_ne!(id2, id);
    let r = conflicts::resolve(&client, id2, Side::Hubspot)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.resolution, Some(Side::Hubspot));
}

#[tokio::test(flavor = "multi_thread")]
async fn issues_count_repeats_and_clear() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    let bad = NewIssue {
        object: "deals".into(),
        hs_object_id: 3,
        property: "amount".into(),
        raw_value: Some("abc".into()),
        reason: "not a number".into(),
    };
    issues::upsert(&client, &[bad.clone(), bad.clone()])
        .await
        .unwrap();
    issues::upsert(&client, std::slice::from_ref(&bad))
        .await
        .unwrap();
    let listed = issues::list(&client, Some("deals"), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].occurrences, 2);
    assert_eq!(listed[0].detail, bad);
    assert_eq!(
        issues::clear(&client, "deals", 3, &["amount"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(issues::count(&client, None).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_is_kept_per_record_and_purged_by_age() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    let mut old = AuditEntry::new(Direction::PostgresToHubspot, "contacts", "update").change(
        "email",
        Some("a@x.io"),
        Some("b@x.io"),
    );
    old.hs_object_id = Some(1);
    old.correlation_id = Some("c-1".into());
    let mut new = AuditEntry::new(Direction::HubspotToPostgres, "contacts", "create");
    new.hs_object_id = Some(1);
    assert_eq!(
        audit::insert(&client, &[old.clone(), new]).await.unwrap(),
        2
    );
    client
        .execute(
            "UPDATE hubsync.audit SET at = now() - interval '40 days' WHERE action = 'update'",
            &[],
        )
        .await
        .unwrap();
    let history = audit::for_record(&client, "contacts", 1, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].entry, old);

    assert_eq!(
        audit::redact_record(&client, "contacts", 1).await.unwrap(),
        2
    );
    let history = audit::for_record(&client, "contacts", 1, 10).await.unwrap();
    assert_eq!(history[1].entry.fields, json!({"email": "redacted"}));

    assert_eq!(
        audit::purge(&client, Duration::from_secs(30 * 86_400))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        audit::for_record(&client, "contacts", 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_counts_per_object() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    inbox::insert(&client, &[event("1", 10), event("2", 11)])
        .await
        .unwrap();
    records::set(
        &client,
        "deals",
        "9",
        Some(9),
        SyncStatus::Failed,
        Some("bad stage"),
    )
    .await
    .unwrap();
    cursors::set(&client, "deals", "incremental", &json!(1))
        .await
        .unwrap();
    let bad = NewIssue {
        object: "deals".into(),
        hs_object_id: 9,
        property: "amount".into(),
        raw_value: None,
        reason: "not a number".into(),
    };
    issues::upsert(&client, &[bad]).await.unwrap();
    let summary = hubsync_store::state::summary::by_object(&client)
        .await
        .unwrap();
    assert_eq!(summary["contacts"].inbox_pending, 2);
    assert_eq!(summary["contacts"].records_failed, 0);
    let deals = &summary["deals"];
    assert_eq!(
        (deals.records_failed, deals.issues, deals.inbox_pending),
        (1, 1, 0)
    );
    assert!(deals.last_checkpoint.is_some());
}
