//! Batch endpoints: chunking past 100 inputs, per-item errors from 207s, upsert by a unique
//! property.

use std::collections::BTreeMap;

use hubsync_hubspot::{BatchRead, ObjectInput, PropertyCreate, UpdateInput, UpsertInput};

use crate::support::Portal;

#[tokio::test]
async fn batch_read_reports_missing_ids_per_item_across_chunks() {
    let portal = Portal::start().await;
    let ids = portal.contacts("read", 150).await;
    let mut wanted: Vec<String> = ids.iter().map(u64::to_string).collect();
    wanted.insert(3, "999999991".into());
    wanted.push("999999992".into());
    let before = portal
        .client
        .stats()
        .by_endpoint
        .get("batch.read")
        .copied()
        .unwrap_or(0);
    let outcome = portal
        .client
        .batch_read(
            "contacts",
            &BatchRead {
                ids: wanted,
                properties: vec!["email".into()],
                ..BatchRead::default()
            },
        )
        .await
        .expect("batch read");
    assert_eq!(
        portal.client.stats().by_endpoint["batch.read"] - before,
        2,
        "152 ids = 2 calls"
    );
    assert_eq!(outcome.results.len(), 150);
    let missing: Vec<usize> = outcome
        .errors
        .iter()
        .flat_map(|e| e.indices.clone())
        .collect();
    assert_eq!(missing, vec![3, 151], "{:?}", outcome.errors);
    assert!(outcome.errors.iter().all(|e| e.status == 404));
}

#[tokio::test]
async fn batch_update_207_keeps_the_good_half() {
    let portal = Portal::start().await;
    let ids = portal.contacts("upd", 3).await;
    let mut inputs: Vec<UpdateInput> = ids
        .iter()
        .map(|id| UpdateInput {
            id: id.to_string(),
            id_property: None,
            properties: BTreeMap::from([("lastname".to_owned(), "Updated".to_owned())]),
            object_write_trace_id: None,
        })
        .collect();
    inputs.insert(
        1,
        UpdateInput {
            id: "888888881".into(),
            ..inputs[0].clone()
        },
    );
    let outcome = portal
        .client
        .batch_update("contacts", &inputs)
        .await
        .expect("batch update");
    assert_eq!(outcome.results.len(), 3);
    assert!(
        outcome
            .results
            .iter()
            .all(|r| r.property("lastname") == Some("Updated"))
    );
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert_eq!(outcome.errors[0].indices, vec![1]);
    assert_eq!(
        outcome.errors[0].category.as_deref(),
        Some("OBJECT_NOT_FOUND")
    );
}

#[tokio::test]
async fn batch_create_duplicate_email_is_an_item_error_with_the_existing_id() {
    let portal = Portal::start().await;
    let existing = portal.contacts("dupe", 1).await[0];
    let inputs = vec![
        ObjectInput::new([("email", "fresh-1@example.com")]),
        ObjectInput::new([("email", "dupe-0@example.com")]),
        ObjectInput::new([("email", "fresh-2@example.com")]),
    ];
    let outcome = portal
        .client
        .batch_create("contacts", &inputs)
        .await
        .expect("batch create");
    assert_eq!(outcome.results.len(), 2, "{outcome:?}");
    assert_eq!(outcome.errors.len(), 1);
    let error = &outcome.errors[0];
    assert_eq!(error.indices, vec![1]);
    assert_eq!(error.status, 409);
    assert_eq!(error.existing_id(), Some(existing));
}

#[tokio::test]
async fn upsert_by_a_hubsync_unique_property_is_idempotent() {
    let portal = Portal::start().await;
    let c = &portal.client;
    let prop = c
        .ensure_unique_property(
            "companies",
            &PropertyCreate::text("hubsync_row_id", "hubsync row id", "companyinformation"),
        )
        .await
        .expect("unique property");
    assert!(prop.has_unique_value);
    // A second ensure finds the same property.
    let again = c
        .ensure_unique_property(
            "companies",
            &PropertyCreate::text("hubsync_row_id", "hubsync row id", "companyinformation"),
        )
        .await
        .expect("exists");
    assert_eq!(again.name, "hubsync_row_id");

    let input = |name: &str| UpsertInput {
        id: "row-42".into(),
        id_property: "hubsync_row_id".into(),
        properties: BTreeMap::from([("name".to_owned(), name.to_owned())]),
        object_write_trace_id: None,
    };
    let first = c
        .batch_upsert("companies", &[input("Acme")])
        .await
        .expect("upsert");
    let second = c
        .batch_upsert("companies", &[input("Acme Corp")])
        .await
        .expect("upsert again");
    assert_eq!(first.results[0].id, second.results[0].id, "same record");
    assert_eq!(first.results[0].created, Some(true));
    assert_eq!(second.results[0].created, Some(false));
    assert_eq!(second.results[0].property("name"), Some("Acme Corp"));

    let archived = c
        .batch_archive("companies", &[first.results[0].id])
        .await
        .expect("archive");
    assert!(archived.errors.is_empty());
}

#[tokio::test]
async fn more_than_a_hundred_creates_are_chunked() {
    let portal = Portal::start().await;
    let inputs: Vec<ObjectInput> = (0..230)
        .map(|i| ObjectInput::new([("email", format!("many-{i}@example.com"))]))
        .collect();
    let outcome = portal
        .client
        .batch_create("contacts", &inputs)
        .await
        .expect("batch create");
    assert_eq!(outcome.results.len(), 230);
    assert_eq!(portal.client.stats().by_endpoint["batch.create"], 3);
    // Results echo the trace id the client filled in: the input's index in the whole call.
    for record in &outcome.results {
        let index: usize = record
            .object_write_trace_id
            .as_deref()
            .and_then(|t| t.parse().ok())
            .expect("trace id echoed");
        assert_eq!(
            record.property("email"),
            Some(format!("many-{index}@example.com").as_str())
        );
    }
}
