//! Junction tables as applications write them: the row-id columns (an association to a
//! record not yet in HubSpot), capture of junction rows, TRUNCATE refusal, the upgrade of
//! tables made before the row-id columns, and the pull leaving pending application changes
//! alone.

use hubsync_store::{TestDb, associations::ensure_association_table, install_capture};

use crate::associations::{crm, link, replace};

async fn outbox(client: &hubsync_store::StoreClient) -> Vec<(String, String, String)> {
    client
        .query(
            "SELECT object, op, row_key FROM hubsync.outbox ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn links(client: &hubsync_store::StoreClient) -> Vec<(Option<i64>, Option<i64>, i32)> {
    client
        .query(
            "SELECT contact_id, company_id, type_id FROM hubspot.contacts_companies ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn application_junction_rows_are_captured_and_survive_the_pull_until_sent() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    install_capture(&crm.client, &crm.links.capture_spec())
        .await
        .unwrap();
    // HubSpot has 1→10 and 2→11.
    replace(&mut crm, &[1, 2], &[link(1, 10, 279), link(2, 11, 279)]).await;
    assert!(
        outbox(&crm.client).await.is_empty(),
        "hubsync's writes are not captured"
    );

    // The application adds 1→11 (type left to its default, 0), names a new contact by row
    // id, and removes 2→11.
    let new_contact: uuid::Uuid = crm
        .client
        .query_one(
            "INSERT INTO hubspot.contacts (email) VALUES ('new@x.test') RETURNING hubsync_row_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    crm.client
        .execute(
            "INSERT INTO hubspot.contacts_companies (contact_id, company_id) VALUES (1, 11)",
            &[],
        )
        .await
        .unwrap();
    crm.client
        .execute(
            "INSERT INTO hubspot.contacts_companies (contact_row_id, company_id, type_id) \
             VALUES ($1, 10, 279)",
            &[&new_contact],
        )
        .await
        .unwrap();
    crm.client
        .execute(
            "DELETE FROM hubspot.contacts_companies WHERE contact_id = 2",
            &[],
        )
        .await
        .unwrap();
    let captured = outbox(&crm.client).await;
    let junction: Vec<_> = captured
        .iter()
        .filter(|e| e.0 == "associations:contacts:companies")
        .map(|e| e.1.as_str())
        .collect();
    assert_eq!(junction, ["INSERT", "INSERT", "DELETE"], "{captured:?}");
    let row: serde_json::Value = crm
        .client
        .query_one(
            "SELECT new_row FROM hubsync.outbox WHERE op = 'INSERT' AND new_row ->> 'contact_row_id' IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(row["contact_row_id"], new_contact.to_string());

    // A pull that does not know these changes yet neither deletes the pending rows nor
    // brings the removed association back.
    let report = replace(&mut crm, &[1, 2], &[link(1, 10, 279), link(2, 11, 279)]).await;
    assert_eq!((report.inserted, report.deleted), (0, 0), "{report:?}");
    assert_eq!(
        links(&crm.client).await,
        [
            (Some(1), Some(10), 279),
            (Some(1), Some(11), 0),
            (None, Some(10), 279)
        ]
    );

    // Once the changes are sent (entries gone), HubSpot's answer is taken as it is.
    crm.client
        .execute("DELETE FROM hubsync.outbox", &[])
        .await
        .unwrap();
    let report = replace(&mut crm, &[1, 2], &[link(1, 10, 279), link(2, 11, 279)]).await;
    assert_eq!((report.inserted, report.deleted), (1, 1), "{report:?}");

    // TRUNCATE of a captured junction table is refused.
    let err = crm
        .client
        .batch_execute("TRUNCATE hubspot.contacts_companies")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("TRUNCATE"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_junction_table_from_before_the_row_id_columns_is_upgraded() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    crm.client
        .batch_execute(
            "DROP TABLE hubspot.contacts_companies;
             CREATE TABLE hubspot.contacts_companies (
               contact_id BIGINT NOT NULL, company_id BIGINT NOT NULL, type_id INTEGER NOT NULL,
               category TEXT NOT NULL DEFAULT 'HUBSPOT_DEFINED', label TEXT,
               synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               hubsync_row_id UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,
               PRIMARY KEY (contact_id, company_id, type_id));
             INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES (1, 10, 279);",
        )
        .await
        .unwrap();
    for _ in 0..2 {
        ensure_association_table(&mut crm.client, &crm.contacts, &crm.companies)
            .await
            .unwrap();
    }
    let key: String = crm
        .client
        .query_one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'hubspot.contacts_companies'::regclass AND contype = 'p'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(key, "PRIMARY KEY (hubsync_row_id)");
    crm.client
        .execute(
            "INSERT INTO hubspot.contacts_companies (contact_row_id, company_id) \
             VALUES (gen_random_uuid(), 10)",
            &[],
        )
        .await
        .unwrap();
    // The three ids stay unique, so the pull's upsert still finds its rows.
    replace(&mut crm, &[1], &[link(1, 10, 279), link(1, 11, 279)]).await;
    assert_eq!(
        links(&crm.client).await,
        [
            (Some(1), Some(10), 279),
            (Some(1), Some(11), 279),
            (None, Some(10), 0)
        ]
    );
}
