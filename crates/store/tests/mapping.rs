//! Object tables on a real PostgreSQL: hostile names, online evolution, type changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hubsync_store::{
    StoreClient, TestDb,
    catalog::{ensure_table, load_mapping},
    naming::MAX_IDENTIFIER_BYTES,
    rows::read_rows_by_ids,
    schema::{ObjectSpec, Promotion, PropertySpec, TableMapping},
    tagged_transaction,
    upsert::{RecordRow, UpsertReport, upsert_records},
    values::ColumnType,
};

pub(crate) const SCHEMA: &str = "hubspot";

pub(crate) fn prop(name: &str, hs_type: &str, field_type: &str) -> PropertySpec {
    PropertySpec::new(name, &format!("Label of {name}"), hs_type, field_type)
}

pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

pub(crate) fn record(id: i64, secs: i64, props: &[(&str, Option<&str>)]) -> RecordRow {
    RecordRow {
        hs_object_id: id,
        properties: props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect(),
        created_at: Some(at(0)),
        updated_at: at(secs),
        archived_at: None,
    }
}

/// Upserts in a committed, tagged transaction.
pub(crate) async fn upsert(
    client: &mut StoreClient,
    mapping: &TableMapping,
    rows: &[RecordRow],
) -> UpsertReport {
    let tx = tagged_transaction(client).await.unwrap();
    let report = upsert_records(&tx, mapping, rows).await.unwrap();
    tx.commit().await.unwrap();
    report
}

pub(crate) async fn properties_of(
    client: &StoreClient,
    mapping: &TableMapping,
    id: i64,
) -> BTreeMap<String, Option<String>> {
    let rows = read_rows_by_ids(client, mapping, &[id]).await.unwrap();
    assert_eq!(rows.len(), 1, "row {id} missing");
    rows.into_iter().next().unwrap().properties
}

async fn table_columns(client: &StoreClient, table: &str) -> Vec<(String, String)> {
    client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
              WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&SCHEMA, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_property_names_get_working_recorded_columns() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let long = "x".repeat(100);
    let long2 = format!("{}y", "x".repeat(99));
    let names = [
        "email",
        "First Name",
        "a\"b",
        "\"; drop table contacts; --",
        "prénom",
        "名前",
        long.as_str(),
        long2.as_str(),
        "order",
        "SELECT",
        "synced_at",
        "hs_object_id",
    ];
    let spec = ObjectSpec::new(
        "contacts",
        names.iter().map(|n| prop(n, "string", "text")).collect(),
    );
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert_eq!(mapping.table, "contacts");
    // hs_object_id is the id column, not a property column.
    assert_eq!(mapping.columns.len(), names.len() - 1);
    let mut seen = std::collections::BTreeSet::new();
    for c in &mapping.columns {
        assert!(c.column.len() <= MAX_IDENTIFIER_BYTES, "{:?}", c.column);
        assert!(
            seen.insert(c.column.clone()),
            "duplicate column {:?}",
            c.column
        );
        assert_ne!(c.column, "synced_at");
    }
    assert_eq!(mapping.column_for("email").unwrap().column, "email");
    assert_eq!(mapping.column_for("order").unwrap().column, "order");

    let catalog: Vec<(String, String)> = client
        .query(
            "SELECT property_name, column_name FROM hubsync.catalog_columns
              WHERE schema_name = $1 AND object_name = 'contacts' AND kind = 'property'",
            &[&SCHEMA],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for c in &mapping.columns {
        assert!(
            catalog.contains(&(c.property.clone(), c.column.clone())),
            "{c:?} not in catalog"
        );
    }
    let columns = table_columns(&client, "contacts").await;
    for c in &mapping.columns {
        assert!(
            columns.iter().any(|(n, t)| n == &c.column && t == "text"),
            "{c:?}"
        );
    }

    let values: Vec<(&str, Option<&str>)> = names
        .iter()
        .map(|n| (*n, Some(*n)))
        .filter(|(n, _)| *n != "hs_object_id")
        .collect();
    let report = upsert(&mut client, &mapping, &[record(7, 1, &values)]).await;
    assert_eq!(report.written, 1);
    let stored = properties_of(&client, &mapping, 7).await;
    for (name, value) in &values {
        assert_eq!(
            stored.get(*name).cloned().flatten().as_deref(),
            *value,
            "{name}"
        );
    }
    let comment: Option<String> = client
        .query_one(
            "SELECT col_description('hubspot.contacts'::regclass, attnum) FROM pg_attribute
              WHERE attrelid = 'hubspot.contacts'::regclass AND attname = 'email'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(comment.as_deref(), Some("Label of email"));

    // Idempotent: the same spec again changes nothing.
    let again = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert_eq!(again, mapping);
    assert_eq!(
        load_mapping(&client, SCHEMA, "contacts").await.unwrap(),
        Some(mapping)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_property_becomes_a_column_without_losing_rows() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mut spec = ObjectSpec::new("deals", vec![prop("dealname", "string", "text")]);
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    let rows: Vec<RecordRow> = (1..=3)
        .map(|i| record(i, 1, &[("dealname", Some("Deal"))]))
        .collect();
    assert_eq!(upsert(&mut client, &mapping, &rows).await.written, 3);

    spec.properties.push(prop("amount", "number", "number"));
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert_eq!(
        mapping.column_for("amount").unwrap().column_type,
        ColumnType::Numeric
    );
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM hubspot.deals WHERE dealname = 'Deal'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
    upsert(
        &mut client,
        &mapping,
        &[record(
            2,
            2,
            &[("dealname", Some("Deal")), ("amount", Some("10.50"))],
        )],
    )
    .await;
    assert_eq!(
        properties_of(&client, &mapping, 2).await["amount"].as_deref(),
        Some("10.5")
    );
    assert_eq!(properties_of(&client, &mapping, 1).await["amount"], None);
}

#[tokio::test(flavor = "multi_thread")]
async fn unpromoted_properties_live_in_custom_properties() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mut spec = ObjectSpec::new(
        "companies",
        vec![
            prop("name", "string", "text"),
            prop("industry", "enumeration", "select"),
        ],
    );
    spec.promoted = Promotion::Only(["name".to_owned()].into());
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert!(mapping.unpromoted.contains("industry"));
    upsert(
        &mut client,
        &mapping,
        &[record(
            1,
            1,
            &[("name", Some("Acme")), ("industry", Some("TECH"))],
        )],
    )
    .await;
    upsert(
        &mut client,
        &mapping,
        &[record(1, 2, &[("domain", Some("acme.test"))])],
    )
    .await;
    let json: serde_json::Value = client
        .query_one(
            "SELECT custom_properties FROM hubspot.companies WHERE hs_object_id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        json,
        serde_json::json!({"industry": "TECH", "domain": "acme.test"})
    );
    let props = properties_of(&client, &mapping, 1).await;
    assert_eq!(
        props["name"].as_deref(),
        Some("Acme"),
        "absent properties are kept"
    );
    assert_eq!(props["industry"].as_deref(), Some("TECH"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_change_keeps_the_column_and_the_raw_value() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mut spec = ObjectSpec::new("tickets", vec![prop("score", "number", "number")]);
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    upsert(
        &mut client,
        &mapping,
        &[record(1, 1, &[("score", Some("5"))])],
    )
    .await;

    spec.properties[0] = prop("score", "string", "text");
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    let column = mapping.column_for("score").unwrap();
    assert_eq!(column.column_type, ColumnType::Numeric);
    assert!(column.type_changed);
    let changed: bool = client
        .query_one(
            "SELECT type_changed_at IS NOT NULL FROM hubsync.catalog_columns
              WHERE object_name = 'tickets' AND property_name = 'score'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(changed);

    let report = upsert(
        &mut client,
        &mapping,
        &[record(1, 2, &[("score", Some("high"))])],
    )
    .await;
    assert_eq!(report.issues.len(), 1);
    assert_eq!(
        properties_of(&client, &mapping, 1).await["score"].as_deref(),
        Some("high")
    );
    upsert(
        &mut client,
        &mapping,
        &[record(1, 3, &[("score", Some("7"))])],
    )
    .await;
    let (n, raw): (Option<String>, serde_json::Value) = {
        let r = client
            .query_one(
                "SELECT score::text, custom_properties FROM hubspot.tickets WHERE hs_object_id = 1",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(n.as_deref(), Some("7"));
    assert_eq!(raw["score"], "7");

    // Dropping the column lets the next pass re-create it with the new type.
    client
        .batch_execute("ALTER TABLE hubspot.tickets DROP COLUMN score")
        .await
        .unwrap();
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    let column = mapping.column_for("score").unwrap();
    assert_eq!(column.column_type, ColumnType::Text);
    assert!(!column.type_changed);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_passes_agree_on_one_mapping() {
    let db = TestDb::new().await;
    let spec = ObjectSpec::new(
        "contacts",
        (0..30)
            .map(|i| prop(&format!("Property {i}"), "number", "number"))
            .collect(),
    );
    let run = |store: hubsync_store::Store, spec: ObjectSpec| async move {
        let mut client = store.client().await.unwrap();
        ensure_table(&mut client, SCHEMA, &spec).await.unwrap()
    };
    let (a, b) = tokio::join!(
        tokio::spawn(run(db.store().clone(), spec.clone())),
        tokio::spawn(run(db.store().clone(), spec.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(a.columns.len(), 30);
}

/// A pass over an unchanged object takes no lock on its table, so it never waits for (or
/// queues in front of) an application's open write; a table or index a user dropped comes
/// back on the next pass.
#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_pass_waits_for_no_writer_and_recreates_what_was_dropped() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let spec = ObjectSpec::new("contacts", vec![prop("email", "string", "text")]);
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();

    let mut writer = db.store().client().await.unwrap();
    let open = writer.transaction().await.unwrap();
    open.batch_execute("LOCK TABLE hubspot.contacts IN ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    // With the writer's lock held, a pass that locked the table would end in lock_timeout.
    let again = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert_eq!(again, mapping);
    open.rollback().await.unwrap();

    let relation_exists = |name: &'static str| {
        let writer = &writer;
        async move {
            writer
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    client
        .batch_execute("DROP INDEX hubspot.contacts_hubspot_updated_at_idx")
        .await
        .unwrap();
    ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert!(relation_exists("hubspot.contacts_hubspot_updated_at_idx").await);

    client
        .batch_execute("DROP TABLE hubspot.contacts")
        .await
        .unwrap();
    ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    assert!(relation_exists("hubspot.contacts").await);
    assert!(relation_exists("hubspot.contacts_hubspot_updated_at_idx").await);
}
