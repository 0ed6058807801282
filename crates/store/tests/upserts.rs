//! Upserts on a real PostgreSQL: every type round-trips, bad values become issues, stale
//! copies never win.

use std::time::Instant;

use hubsync_store::{
    TestDb, catalog::ensure_table, schema::ObjectSpec, upsert::RecordRow, values::canonical_hubspot,
};

use crate::mapping::{SCHEMA, at, prop, properties_of, record, upsert};

fn typed_spec() -> ObjectSpec {
    ObjectSpec::new(
        "contacts",
        vec![
            prop("email", "string", "text"),
            prop("notes", "string", "textarea"),
            prop("phone", "phone_number", "phonenumber"),
            prop("amount", "number", "number"),
            prop("birthday", "date", "date"),
            prop("last_seen", "datetime", "date"),
            prop("stage", "enumeration", "select"),
            prop("flavours", "enumeration", "checkbox"),
            prop("opted_in", "bool", "booleancheckbox"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let spec = typed_spec();
    let mapping = ensure_table(&mut client, SCHEMA, &spec).await.unwrap();
    let values = [
        ("email", "ann@example.com"),
        ("notes", "line 1\nline \"2\" ; 'x'"),
        ("phone", "+1 555 0100"),
        ("amount", "123456789012345678901234567890.0123456789"),
        ("birthday", "1430438400000"),
        ("last_seen", "2019-10-30T03:30:17.883Z"),
        ("stage", "lead"),
        ("flavours", "chocolate;straw \"berry\";va\\nilla"),
        ("opted_in", "true"),
    ];
    let props: Vec<(&str, Option<&str>)> = values.iter().map(|(k, v)| (*k, Some(*v))).collect();
    let report = upsert(&mut client, &mapping, &[record(1, 1, &props)]).await;
    assert_eq!(report.written, 1);
    assert!(report.issues.is_empty(), "{:?}", report.issues);

    let stored = properties_of(&client, &mapping, 1).await;
    for (name, raw) in values {
        let ty = spec
            .properties
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .column_type();
        let expected = canonical_hubspot(ty, raw).unwrap();
        assert_eq!(stored[name], expected, "{name}");
    }
    assert_eq!(stored["birthday"].as_deref(), Some("2015-05-01"));

    // The typed columns hold typed values.
    let row = client
        .query_one(
            "SELECT amount = 123456789012345678901234567890.0123456789, birthday = DATE '2015-05-01',
                    last_seen = TIMESTAMPTZ '2019-10-30 03:30:17.883+00', flavours[2],
                    opted_in, array_length(flavours, 1)
               FROM hubspot.contacts WHERE hs_object_id = 1",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert!(row.get::<_, bool>(1));
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, String>(3), "straw \"berry\"");
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, i32>(5), 3);

    // Empty strings and nulls clear values without issues.
    let cleared: Vec<(&str, Option<&str>)> = values
        .iter()
        .map(|(k, _)| (*k, if *k == "email" { None } else { Some("") }))
        .collect();
    let report = upsert(&mut client, &mapping, &[record(1, 2, &cleared)]).await;
    assert!(report.issues.is_empty());
    let stored = properties_of(&client, &mapping, 1).await;
    assert!(stored.values().all(Option::is_none), "{stored:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_values_become_issues_and_the_row_still_syncs() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mapping = ensure_table(&mut client, SCHEMA, &typed_spec())
        .await
        .unwrap();
    let bad = [
        ("email", Some("a@b.test")),
        ("amount", Some("abc")),
        ("birthday", Some("2024-13-45")),
        ("notes", Some("a\u{0}b — ü")),
    ];
    let report = upsert(&mut client, &mapping, &[record(5, 1, &bad)]).await;
    assert_eq!(report.written, 1);
    let mut issues: Vec<(&str, &str)> = report
        .issues
        .iter()
        .map(|i| (i.property.as_str(), i.raw.as_str()))
        .collect();
    issues.sort_unstable();
    assert_eq!(
        issues,
        vec![
            ("amount", "abc"),
            ("birthday", "2024-13-45"),
            ("notes", "a\u{0}b — ü")
        ]
    );
    assert!(report.issues.iter().all(|i| i.hs_object_id == 5));

    let stored = properties_of(&client, &mapping, 5).await;
    assert_eq!(stored["email"].as_deref(), Some("a@b.test"));
    assert_eq!(stored["amount"], None);
    assert_eq!(stored["notes"].as_deref(), Some("ab — ü"), "NUL removed");
    let logged: Vec<(String, String, String)> = client
        .query(
            "SELECT property, raw_value, reason FROM hubsync.issues
              WHERE object = 'contacts' AND hs_object_id = 5 ORDER BY property",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(logged.len(), 3);
    assert_eq!(
        (logged[0].0.as_str(), logged[0].1.as_str()),
        ("amount", "abc")
    );
    assert!(!logged[0].2.is_empty());

    // A good value for one property clears its issue; the other stays.
    let fixed = [
        ("email", Some("a@b.test")),
        ("amount", Some("12")),
        ("birthday", Some("2024-13-45")),
    ];
    upsert(&mut client, &mapping, &[record(5, 2, &fixed)]).await;
    let left: Vec<String> = client
        .query(
            "SELECT property FROM hubsync.issues WHERE hs_object_id = 5 ORDER BY property",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec!["birthday".to_owned(), "notes".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_copies_never_overwrite_newer_rows() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mapping = ensure_table(&mut client, SCHEMA, &typed_spec())
        .await
        .unwrap();
    let email = |v: &'static str| [("email", Some(v))];

    assert_eq!(
        upsert(&mut client, &mapping, &[record(1, 20, &email("new"))])
            .await
            .written,
        1
    );
    let report = upsert(&mut client, &mapping, &[record(1, 10, &email("old"))]).await;
    assert_eq!((report.written, report.skipped_stale), (0, 1));
    assert_eq!(
        properties_of(&client, &mapping, 1).await["email"].as_deref(),
        Some("new")
    );

    // Equal version: rewritten (same data from another read).
    let report = upsert(&mut client, &mapping, &[record(1, 20, &email("same"))]).await;
    assert_eq!(report.written, 1);

    // Within one batch the newest copy wins whatever the order.
    let batch = [
        record(2, 30, &email("b30")),
        record(2, 40, &email("b40")),
        record(2, 35, &email("b35")),
    ];
    let report = upsert(&mut client, &mapping, &batch).await;
    assert_eq!((report.written, report.skipped_stale), (1, 2));
    assert_eq!(
        properties_of(&client, &mapping, 2).await["email"].as_deref(),
        Some("b40")
    );

    // An archived row is not resurrected by a copy with the same version…
    let mut archived = record(3, 50, &email("gone"));
    archived.archived_at = Some(at(60));
    upsert(&mut client, &mapping, &[archived]).await;
    let report = upsert(&mut client, &mapping, &[record(3, 50, &email("zombie"))]).await;
    assert_eq!(report.skipped_stale, 1);
    // …but a newer version (a restore in HubSpot) is.
    let report = upsert(&mut client, &mapping, &[record(3, 70, &email("restored"))]).await;
    assert_eq!(report.written, 1);
    let archived_at: Option<chrono::DateTime<chrono::Utc>> = client
        .query_one(
            "SELECT archived_at FROM hubspot.contacts WHERE hs_object_id = 3",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(archived_at, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_larger_than_one_statement() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mapping = ensure_table(&mut client, SCHEMA, &typed_spec())
        .await
        .unwrap();
    let rows: Vec<RecordRow> = (1..=4_500)
        .map(|i| record(i, 1, &[("amount", Some("1.5")), ("stage", Some("lead"))]))
        .collect();
    let report = upsert(&mut client, &mapping, &rows).await;
    assert_eq!(report.written, 4_500);
    let sum: String = client
        .query_one("SELECT sum(amount)::text FROM hubspot.contacts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, "6750.0");
}

/// Throughput probe: `cargo test -p hubsync-store --release -- --ignored upsert_throughput
/// --nocapture` (not run by default; numbers in docs/benchmarks.md).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput probe, run on demand"]
async fn upsert_throughput() {
    let db = TestDb::new().await;
    let mut client = db.store().client().await.unwrap();
    let mapping = ensure_table(&mut client, SCHEMA, &typed_spec())
        .await
        .unwrap();
    let rows: Vec<RecordRow> = (1..=100_000)
        .map(|i| {
            let email = format!("user{i}@example.com");
            let mut r = record(i, 1, &[]);
            r.properties.insert("email".into(), Some(email));
            for (k, v) in [
                ("amount", "1234.5"),
                ("birthday", "2015-05-01"),
                ("last_seen", "2019-10-30T03:30:17.883Z"),
                ("stage", "lead"),
                ("flavours", "a;b"),
                ("opted_in", "true"),
            ] {
                r.properties.insert(k.into(), Some(v.into()));
            }
            r
        })
        .collect();
    for pass in ["insert", "update"] {
        let rows: Vec<RecordRow> = rows
            .iter()
            .cloned()
            .map(|mut r| {
                if pass == "update" {
                    r.updated_at = at(2);
                }
                r
            })
            .collect();
        let start = Instant::now();
        let report = upsert(&mut client, &mapping, &rows).await;
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.written, 100_000);
        println!(
            "upsert {pass}: {:.0} rows/s ({secs:.2} s)",
            100_000.0 / secs
        );
    }
}
