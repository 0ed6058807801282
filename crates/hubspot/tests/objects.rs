//! Records: paging, property chunking past the URL limit, single-record calls, 409s.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::TryStreamExt;
use hubsync_hubspot::{GetOptions, HubSpotError, ListRequest, ObjectInput, PropertyCreate};

use crate::support::{Portal, client_config};

#[tokio::test]
async fn pages_through_every_record_in_id_order() {
    let portal = Portal::seeded(0).await;
    let created = portal.contacts("paging", 250).await;
    let pages: Vec<_> = portal
        .client
        .list_pages(
            "contacts",
            ListRequest {
                properties: vec!["email".into()],
                ..ListRequest::default()
            },
        )
        .try_collect()
        .await
        .expect("all pages");
    assert_eq!(pages.len(), 3, "100 + 100 + 50");
    let ids: Vec<u64> = pages
        .iter()
        .flat_map(|p| p.results.iter().map(|r| r.id))
        .collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 250);
    assert_eq!(unique, created.iter().copied().collect());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");
    assert!(pages.last().is_some_and(|p| p.after.is_none()));
    assert!(pages[0].results.iter().all(|r| {
        r.property("email")
            .is_some_and(|e| e.starts_with("paging-"))
    }));
}

#[tokio::test]
async fn long_property_lists_are_chunked_instead_of_hitting_414() {
    let portal = Portal::start().await;
    let names: Vec<String> = (0..450)
        .map(|i| format!("hubsync_chunking_test_property_number_{i:04}"))
        .collect();
    for name in &names {
        portal
            .client
            .create_property(
                "contacts",
                &PropertyCreate::text(name.as_str(), name.as_str(), "contactinformation"),
            )
            .await
            .expect("property created");
    }
    let mut values = BTreeMap::new();
    values.insert("email".to_owned(), "wide@example.com".to_owned());
    values.insert(names[0].clone(), "first".to_owned());
    values.insert(names[449].clone(), "last".to_owned());
    let record = portal
        .client
        .create_object(
            "contacts",
            &ObjectInput {
                properties: values,
                ..ObjectInput::default()
            },
        )
        .await
        .expect("created");

    let before = portal
        .client
        .stats()
        .by_endpoint
        .get("objects.list")
        .copied()
        .unwrap_or(0);
    let request = ListRequest {
        properties: names.clone(),
        ..ListRequest::default()
    };
    let page = portal
        .client
        .list_page("contacts", &request)
        .await
        .expect("no 414");
    let calls = portal.client.stats().by_endpoint["objects.list"] - before;
    assert!(
        calls >= 3,
        "450 long names need several requests, made {calls}"
    );
    let got = page
        .results
        .iter()
        .find(|r| r.id == record.id)
        .expect("the record");
    assert_eq!(got.property(&names[0]), Some("first"));
    assert_eq!(got.property(&names[449]), Some("last"));
    assert!(
        names.iter().all(|n| got.properties.contains_key(n)),
        "every requested property present"
    );
    assert!(page.changed_mid_read.is_empty());

    // The same list in one URL is what HubSpot refuses.
    let mut unchunked = client_config(&portal.handle);
    unchunked.max_url_bytes = usize::MAX;
    let naive = hubsync_hubspot::HubSpotClient::new(unchunked).expect("client");
    let err = naive
        .list_page("contacts", &request)
        .await
        .expect_err("one huge URL");
    assert_eq!(err.status(), Some(414), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn single_record_lifecycle() {
    let portal = Portal::start().await;
    let c = &portal.client;
    let created = c
        .create_object(
            "contacts",
            &ObjectInput::new([("email", "ann@example.com"), ("firstname", "Ann")]),
        )
        .await
        .expect("created");
    let by_email = c
        .get_object(
            "contacts",
            "ann@example.com",
            &GetOptions {
                id_property: Some("email".into()),
                properties: vec!["firstname".into(), "phone".into()],
                ..GetOptions::default()
            },
        )
        .await
        .expect("read by email");
    assert_eq!(by_email.id, created.id);
    assert_eq!(by_email.property("firstname"), Some("Ann"));
    assert_eq!(
        by_email.properties.get("phone"),
        Some(&None),
        "requested but empty is null"
    );

    let mut change = BTreeMap::new();
    change.insert("firstname".to_owned(), "Anne".to_owned());
    let updated = c
        .update_object("contacts", &created.id.to_string(), None, &change)
        .await
        .expect("updated");
    assert_eq!(updated.property("firstname"), Some("Anne"));
    assert!(updated.updated_at >= created.updated_at);

    c.archive_object("contacts", created.id)
        .await
        .expect("archived");
    let gone = c
        .get_object("contacts", &created.id.to_string(), &GetOptions::default())
        .await
        .expect_err("archived");
    assert!(gone.is_not_found(), "{gone:?}");
    let archived = c
        .list_page(
            "contacts",
            &hubsync_hubspot::ListRequest {
                archived: true,
                ..Default::default()
            },
        )
        .await
        .expect("archived list");
    assert!(
        archived
            .results
            .iter()
            .any(|r| r.id == created.id && r.archived && r.archived_at.is_some())
    );
}

#[tokio::test]
async fn duplicate_email_is_a_typed_error_with_the_existing_id() {
    let portal = Portal::start().await;
    let first = portal
        .client
        .create_object(
            "contacts",
            &ObjectInput::new([("email", "dup@example.com")]),
        )
        .await
        .expect("created");
    let err = portal
        .client
        .create_object(
            "contacts",
            &ObjectInput::new([("email", "dup@example.com")]),
        )
        .await
        .expect_err("duplicate");
    match err {
        HubSpotError::AlreadyExists {
            existing_id,
            ref api,
        } => {
            assert_eq!(existing_id, first.id);
            assert_eq!(api.status, 409);
            assert!(api.correlation_id.is_some());
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(portal.client.stats().retries, 0, "a 409 is not retried");
}

#[tokio::test]
async fn merge_and_gdpr_delete() {
    let portal = Portal::start().await;
    let c = &portal.client;
    let a = c
        .create_object("contacts", &ObjectInput::new([("email", "a@m.com")]))
        .await
        .expect("a");
    let b = c
        .create_object(
            "contacts",
            &ObjectInput::new([("email", "b@m.com"), ("phone", "123")]),
        )
        .await
        .expect("b");
    let survivor = c
        .merge_objects("contacts", a.id, b.id)
        .await
        .expect("merged");
    let merged_ids = c
        .get_object(
            "contacts",
            &survivor.id.to_string(),
            &GetOptions {
                properties: vec!["hs_merged_object_ids".into()],
                ..GetOptions::default()
            },
        )
        .await
        .expect("survivor");
    assert!(
        merged_ids
            .property("hs_merged_object_ids")
            .is_some_and(|v| v.contains(&b.id.to_string()))
    );

    c.gdpr_delete_contact("a@m.com", Some("email"))
        .await
        .expect("gdpr delete");
    let err = c
        .get_object("contacts", &survivor.id.to_string(), &GetOptions::default())
        .await
        .expect_err("deleted");
    assert!(err.is_not_found());
}
