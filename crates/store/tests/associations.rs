//! Associations, deletes and merges on a real PostgreSQL.

use hubsync_store::{
    StoreClient, TestDb,
    associations::{
        AssociationMapping, AssociationRow, ensure_association_table, replace_associations,
    },
    catalog::ensure_table,
    rows::read_rows_by_ids,
    schema::{ObjectSpec, TableMapping},
    tagged_transaction,
    tombstones::{DeleteMode, archive_records, mark_merged},
};

use crate::mapping::{SCHEMA, at, prop, record, upsert};

pub(crate) struct Crm {
    pub(crate) client: StoreClient,
    pub(crate) contacts: TableMapping,
    pub(crate) companies: TableMapping,
    pub(crate) links: AssociationMapping,
}

pub(crate) async fn crm(db: &TestDb) -> Crm {
    let mut client = db.store().client().await.unwrap();
    let mut spec = ObjectSpec::new("contacts", vec![prop("email", "string", "text")]);
    spec.primary_associations = vec!["companies".to_owned()];
    let contacts = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    let companies = ensure_table(
        &mut client,
        SCHEMA,
        &ObjectSpec::new("companies", vec![prop("name", "string", "text")]),
    )
    .await
    .unwrap();
    let links = ensure_association_table(&mut client, &contacts, &companies)
        .await
        .unwrap();
    for id in 1..=3 {
        upsert(
            &mut client,
            &contacts,
            &[record(id, 1, &[("email", Some("c@x.test"))])],
        )
        .await;
    }
    for id in [10, 11, 12] {
        upsert(
            &mut client,
            &companies,
            &[record(id, 1, &[("name", Some("Co"))])],
        )
        .await;
    }
    Crm {
        client,
        contacts,
        companies,
        links,
    }
}

pub(crate) fn link(from: i64, to: i64, type_id: i32) -> AssociationRow {
    AssociationRow {
        from_id: from,
        to_id: to,
        type_id,
        category: "HUBSPOT_DEFINED".into(),
        label: (type_id == 1).then(|| "Primary".to_owned()),
    }
}

pub(crate) async fn replace(
    crm: &mut Crm,
    from: &[i64],
    rows: &[AssociationRow],
) -> hubsync_store::associations::AssociationReport {
    let tx = tagged_transaction(&mut crm.client).await.unwrap();
    let report = replace_associations(&tx, &crm.links, from, rows)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    report
}

async fn links_of(client: &StoreClient) -> Vec<(i64, i64, i32)> {
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

async fn primary_company(client: &StoreClient, contact: i64) -> Option<i64> {
    client
        .query_one(
            "SELECT company_id FROM hubspot.contacts WHERE hs_object_id = $1",
            &[&contact],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn associations_replace_the_set_and_keep_the_primary_column() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    assert_eq!(crm.links.table, "contacts_companies");
    assert_eq!(
        (crm.links.from_column.as_str(), crm.links.to_column.as_str()),
        ("contact_id", "company_id")
    );
    assert_eq!(
        crm.contacts.primary_column("companies").unwrap().column,
        "company_id"
    );

    let first = [
        link(1, 10, 1),
        link(1, 10, 279),
        link(1, 11, 279),
        link(2, 11, 279),
    ];
    let report = replace(&mut crm, &[1, 2], &first).await;
    assert_eq!(
        (report.inserted, report.deleted, report.primary_changed),
        (4, 0, 1)
    );
    assert_eq!(primary_company(&crm.client, 1).await, Some(10));
    assert_eq!(primary_company(&crm.client, 2).await, None);

    // The same set again changes nothing.
    let report = replace(&mut crm, &[1, 2], &first).await;
    assert_eq!(report, Default::default());

    // Contact 1 moves to company 11 as primary; contact 2 is not part of this increment.
    let report = replace(&mut crm, &[1], &[link(1, 11, 1), link(1, 11, 279)]).await;
    assert_eq!(
        (report.inserted, report.deleted, report.primary_changed),
        (1, 2, 1)
    );
    assert_eq!(
        links_of(&crm.client).await,
        vec![(1, 11, 1), (1, 11, 279), (2, 11, 279)]
    );
    assert_eq!(primary_company(&crm.client, 1).await, Some(11));

    // A fetched record with no associations loses them all.
    let report = replace(&mut crm, &[1], &[]).await;
    assert_eq!((report.deleted, report.primary_changed), (2, 1));
    assert_eq!(primary_company(&crm.client, 1).await, None);

    let rows = read_rows_by_ids(&crm.client, &crm.contacts, &[1])
        .await
        .unwrap();
    assert_eq!(rows[0].primary.get("companies"), Some(&None));
}

#[tokio::test(flavor = "multi_thread")]
async fn merges_tombstone_the_loser_and_repoint_links() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    replace(
        &mut crm,
        &[1, 2, 3],
        &[
            link(1, 10, 1),
            link(2, 10, 279),
            link(2, 11, 279),
            link(3, 12, 1),
        ],
    )
    .await;

    // Company 10 is merged into company 11.
    let tx = tagged_transaction(&mut crm.client).await.unwrap();
    let report = mark_merged(&tx, &crm.companies, &[10], 11, at(5))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(report.tombstoned, 1);
    assert_eq!(report.primary_repointed, 1);
    assert_eq!(
        links_of(&crm.client).await,
        vec![(1, 11, 1), (2, 11, 279), (3, 12, 1)]
    );
    assert_eq!(primary_company(&crm.client, 1).await, Some(11));
    let loser = &read_rows_by_ids(&crm.client, &crm.companies, &[10])
        .await
        .unwrap()[0];
    assert_eq!(loser.merged_into, Some(11));
    assert_eq!(loser.archived_at, Some(at(5)));

    // A late copy of the loser never revives it.
    let report = upsert(
        &mut crm.client,
        &crm.companies,
        &[record(10, 99, &[("name", Some("zombie"))])],
    )
    .await;
    assert_eq!(report.skipped_stale, 1);

    // Merging the survivor again re-points the earlier tombstone (chains stay flat).
    let tx = tagged_transaction(&mut crm.client).await.unwrap();
    let report = mark_merged(&tx, &crm.companies, &[11], 12, at(6))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(report.chains_repointed, 1);
    let loser = &read_rows_by_ids(&crm.client, &crm.companies, &[10])
        .await
        .unwrap()[0];
    assert_eq!(loser.merged_into, Some(12));
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_soft_and_hard() {
    let db = TestDb::new().await;
    let mut crm = crm(&db).await;
    replace(&mut crm, &[1, 2], &[link(1, 10, 1), link(2, 10, 279)]).await;

    let tx = tagged_transaction(&mut crm.client).await.unwrap();
    assert_eq!(
        archive_records(&tx, &crm.contacts, &[1], at(9), DeleteMode::Soft)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        archive_records(&tx, &crm.contacts, &[1], at(10), DeleteMode::Soft)
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    let row = &read_rows_by_ids(&crm.client, &crm.contacts, &[1])
        .await
        .unwrap()[0];
    assert_eq!(row.archived_at, Some(at(9)));
    assert_eq!(
        links_of(&crm.client).await.len(),
        2,
        "soft delete keeps links"
    );

    let tx = tagged_transaction(&mut crm.client).await.unwrap();
    assert_eq!(
        archive_records(&tx, &crm.companies, &[10], at(11), DeleteMode::Hard)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(
        read_rows_by_ids(&crm.client, &crm.companies, &[10])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(links_of(&crm.client).await.is_empty());
    assert_eq!(primary_company(&crm.client, 1).await, None);
}
