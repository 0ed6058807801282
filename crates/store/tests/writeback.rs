//! Rows written by applications (ids assigned by HubSpot, inbound copies linking to them)
//! and the boundary with change capture: hubsync's own writes are never captured.

use hubsync_store::{
    StoreClient, TestDb, install_capture,
    rows::{
        IdAssignment, assign_hs_object_id, link_row_ids, read_rows_by_ids,
        read_rows_by_ids_for_update, read_rows_by_row_ids,
    },
    tagged_transaction,
    upsert::upsert_records,
};
use uuid::Uuid;

use crate::{
    associations::{crm, link, replace},
    mapping::{record, upsert},
};

/// A contact inserted by an application (no HubSpot id), returning its row id.
async fn app_insert(client: &StoreClient) -> Uuid {
    client
        .query_one(
            "INSERT INTO hubspot.contacts (email) VALUES ('app@x.test') RETURNING hubsync_row_id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_assigned_by_hubspot_are_recorded_once() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    let row_id = app_insert(&crm.client).await;
    let assign = |id: i64| {
        let contacts = crm.contacts.clone();
        let store = db.store().clone();
        async move {
            let mut client = store.client().await.unwrap();
            let tx = client.transaction().await.unwrap();
            let outcome = assign_hs_object_id(&tx, &contacts, row_id, id)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            outcome
        }
    };
    assert_eq!(assign(500).await, IdAssignment::Assigned);
    assert_eq!(assign(500).await, IdAssignment::AlreadySet);
    assert_eq!(assign(501).await, IdAssignment::AlreadyHas(500));
    let row = &read_rows_by_row_ids(&crm.client, &crm.contacts, &[row_id])
        .await
        .unwrap()[0];
    assert_eq!(row.hs_object_id, Some(500));
    assert_eq!(row.properties["email"].as_deref(), Some("app@x.test"));

    let other: Uuid = crm
        .client
        .query_one(
            "INSERT INTO hubspot.contacts DEFAULT VALUES RETURNING hubsync_row_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let contacts = crm.contacts.clone();
    let tx = crm.client.transaction().await.unwrap();
    let outcome = assign_hs_object_id(&tx, &contacts, other, 1).await.unwrap();
    tx.commit().await.unwrap();
    let holder = read_rows_by_ids(&crm.client, &crm.contacts, &[1])
        .await
        .unwrap()[0]
        .row_id;
    assert_eq!(outcome, IdAssignment::TakenBy(holder));
    assert_eq!(
        assign_hs_object_id(&crm.client, &crm.contacts, Uuid::nil(), 9)
            .await
            .unwrap(),
        IdAssignment::RowMissing
    );
}

async fn outbox(client: &StoreClient) -> Vec<(String, String, Vec<String>)> {
    client
        .query(
            "SELECT object, op, changed_columns FROM hubsync.outbox ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_sees_application_writes_but_not_hubsyncs_own() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    install_capture(&crm.client, &crm.contacts.capture_spec())
        .await
        .unwrap();
    install_capture(&crm.client, &crm.links.capture_spec())
        .await
        .unwrap();

    // hubsync's own writes: upsert, associations, id assignment.
    upsert(
        &mut crm.client,
        &crm.contacts,
        &[record(1, 5, &[("email", Some("new@x.test"))])],
    )
    .await;
    replace(&mut crm, &[1], &[link(1, 10, 1)]).await;
    let row_id: Uuid = {
        let tx = tagged_transaction(&mut crm.client).await.unwrap();
        let id: Uuid = tx
            .query_one(
                "INSERT INTO hubspot.contacts DEFAULT VALUES RETURNING hubsync_row_id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        tx.commit().await.unwrap();
        id
    };
    let contacts = crm.contacts.clone();
    let tx = crm.client.transaction().await.unwrap();
    assert_eq!(
        assign_hs_object_id(&tx, &contacts, row_id, 77)
            .await
            .unwrap(),
        IdAssignment::Assigned
    );
    tx.commit().await.unwrap();
    assert!(
        outbox(&crm.client).await.is_empty(),
        "{:?}",
        outbox(&crm.client).await
    );

    // An application's writes are captured.
    crm.client
        .batch_execute(
            "UPDATE hubspot.contacts SET email = 'app@x.test' WHERE hs_object_id = 2;
             INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES (2, 11, 279);",
        )
        .await
        .unwrap();
    let captured = outbox(&crm.client).await;
    assert_eq!(captured.len(), 2, "{captured:?}");
    assert_eq!(
        captured[0],
        ("contacts".into(), "UPDATE".into(), vec!["email".to_owned()])
    );
    assert_eq!(captured[1].0, "associations:contacts:companies");
    assert_eq!(captured[1].1, "INSERT");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inbound_copy_of_an_application_row_links_instead_of_duplicating() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    let row_id = app_insert(&crm.client).await;
    // HubSpot created record 900 from it; the inbound sync sees it before writeback stored
    // the id.
    let tx = tagged_transaction(&mut crm.client).await.unwrap();
    let linked = link_row_ids(&tx, &crm.contacts, &[(row_id, 900), (Uuid::nil(), 901)])
        .await
        .unwrap();
    let report = upsert_records(
        &tx,
        &crm.contacts,
        &[record(900, 3, &[("email", Some("app@x.test"))])],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((linked, report.written), (1, 1));
    let rows = read_rows_by_ids(&crm.client, &crm.contacts, &[900])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row_id, row_id);
    let count: i64 = crm
        .client
        .query_one(
            "SELECT count(*) FROM hubspot.contacts WHERE email = 'app@x.test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_read_for_update_are_locked_until_commit() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    let contacts = crm.contacts.clone();
    let tx = crm.client.transaction().await.unwrap();
    let rows = read_rows_by_ids_for_update(&tx, &contacts, &[1, 2])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);

    let other = db.store().client().await.unwrap();
    other
        .batch_execute("SET lock_timeout = '200ms'")
        .await
        .unwrap();
    let blocked = other
        .execute(
            "UPDATE hubspot.contacts SET email = 'x' WHERE hs_object_id = 1",
            &[],
        )
        .await;
    assert!(blocked.is_err(), "the row should be locked");
    tx.commit().await.unwrap();
    other
        .execute(
            "UPDATE hubspot.contacts SET email = 'x' WHERE hs_object_id = 1",
            &[],
        )
        .await
        .unwrap();
}
