//! Objects API: create/read/list/update/archive/restore, merge, GDPR delete, change sources.

use hubsync_emulator::{ChangeSource, EventKind, ObjectTypeId};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Emu;

#[tokio::test]
async fn create_answers_201_with_string_id_and_computed_properties() {
    let emu = Emu::start().await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "ann@example.com", "firstname": "Ann", "lifecyclestage": "lead"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().expect("§16.1: v3 ids are strings");
    assert!(
        id.parse::<u64>().expect("digits") > u64::from(u32::MAX),
        "ids exceed 2^32"
    );
    let props = &r.body["properties"];
    assert_eq!(props["hs_object_id"], id);
    assert_eq!(props["firstname"], "Ann");
    assert!(
        props["createdate"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    assert!(props["lastmodifieddate"].is_string());
    assert_eq!(r.body["archived"], false);
    assert!(r.body.get("archivedAt").is_none());
    assert_eq!(r.body["createdAt"], props["createdate"]);
}

#[tokio::test]
async fn reads_return_null_for_empty_and_omit_unknown_properties() {
    let emu = Emu::start().await;
    let id = emu.contact(json!({"email": "b@example.com"})).await;
    let r = emu
        .get(&format!(
            "/crm/v3/objects/contacts/{id}?properties=phone,nosuchprop"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let props = r.body["properties"].as_object().expect("object");
    assert!(
        props.contains_key("phone") && props["phone"].is_null(),
        "§16.2 empty → null"
    );
    assert!(!props.contains_key("nosuchprop"), "§16.2 unknown → omitted");
    assert!(
        props.contains_key("hs_object_id")
            && props.contains_key("createdate")
            && props.contains_key("lastmodifieddate")
    );
    // Defaults when no properties are named.
    let r = emu.get(&format!("/crm/v3/objects/contacts/{id}")).await;
    for p in ["firstname", "lastname", "email"] {
        assert!(
            r.body["properties"].get(p).is_some(),
            "default property {p}"
        );
    }
}

#[tokio::test]
async fn list_pages_with_after_and_accepts_repeated_and_comma_joined_properties() {
    let emu = Emu::start().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(emu.contact(json!({"email": format!("p{i}@example.com"), "firstname": format!("F{i}"), "city": "Oslo"})).await);
    }
    let mut seen = Vec::new();
    let mut path =
        "/crm/v3/objects/contacts?limit=10&properties=firstname&properties=city,email".to_owned();
    loop {
        let r = emu.get(&path).await;
        assert_eq!(r.status, StatusCode::OK);
        for rec in r.body["results"].as_array().expect("results") {
            assert_eq!(rec["properties"]["city"], "Oslo");
            assert!(rec["properties"]["firstname"].is_string());
            seen.push(rec["id"].as_str().expect("id").to_owned());
        }
        match r.body["paging"]["next"]["after"].as_str() {
            Some(after) => {
                path = format!(
                    "/crm/v3/objects/contacts?limit=10&properties=firstname,city&after={after}"
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, ids, "ascending id order, each record once");
    let r = emu
        .get("/crm/v3/objects/contacts?limit=10&properties=city")
        .await;
    let link = r.body["paging"]["next"]["link"]
        .as_str()
        .expect("link")
        .to_owned();
    assert!(
        link.starts_with(&emu.base),
        "the link points back at the emulator: {link}"
    );
    let next = crate::harness::reply(
        emu.http
            .get(link)
            .bearer_auth("pat-na1-test")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(next.body["results"][0]["id"], ids[10].as_str());
    assert_eq!(next.body["results"][0]["properties"]["city"], "Oslo");
    let r = emu.get("/crm/v3/objects/contacts?limit=101").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = emu
        .get("/crm/v3/objects/contacts?limit=51&propertiesWithHistory=email")
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "history lowers the page size to 50"
    );
}

#[tokio::test]
async fn read_by_id_property_and_patch_clears_with_empty_string() {
    let emu = Emu::start().await;
    let id = emu
        .contact(json!({"email": "Jon@Website.com", "firstname": "Jon"}))
        .await;
    let r = emu
        .get("/crm/v3/objects/contacts/jon@website.com?idProperty=email")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id.as_str());
    let r = emu
        .patch(
            &format!("/crm/v3/objects/contacts/{id}"),
            json!({"properties": {"firstname": "", "city": "Rome"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = emu
        .get(&format!(
            "/crm/v3/objects/contacts/{id}?properties=firstname,city"
        ))
        .await;
    assert!(r.body["properties"]["firstname"].is_null());
    assert_eq!(r.body["properties"]["city"], "Rome");
    let r = emu
        .get("/crm/v3/objects/contacts/12?idProperty=firstname")
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "idProperty must be unique"
    );
    let r = emu.get("/crm/v3/objects/contacts/abc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["message"],
        "Object not found.  objectId are usually numeric."
    );
    assert_eq!(r.body["context"]["id"][0], "abc");
}

#[tokio::test]
async fn duplicate_email_is_409_with_existing_id() {
    let emu = Emu::start().await;
    let id = emu.contact(json!({"email": "dup@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "DUP@example.com"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["category"], "CONFLICT");
    assert_eq!(
        r.body["message"],
        format!("Contact already exists. Existing ID: {id}")
    );
}

#[tokio::test]
async fn archive_hides_record_until_restored() {
    let emu = Emu::start().await;
    let id = emu.contact(json!({"email": "gone@example.com"})).await;
    assert_eq!(
        emu.delete(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        emu.get(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = emu.get("/crm/v3/objects/contacts?archived=true").await;
    let rec = &r.body["results"][0];
    assert_eq!(rec["id"], id.as_str());
    assert_eq!(rec["archived"], true);
    assert!(rec["archivedAt"].is_string());
    assert_eq!(
        emu.get("/crm/v3/objects/contacts").await.body["results"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // A second DELETE is still 204.
    assert_eq!(
        emu.delete(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = emu
        .post(
            &format!("/_emulator/objects/contacts/{id}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        emu.get(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn merge_keeps_primary_values_and_resolves_the_old_id() {
    let emu = Emu::start().await;
    let a = emu
        .contact(json!({"email": "a@example.com", "firstname": "Ann"}))
        .await;
    let b = emu
        .contact(json!({"email": "b@example.com", "firstname": "Bea", "city": "Oslo"}))
        .await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/merge",
            json!({"primaryObjectId": a, "objectIdToMerge": b}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["properties"]["firstname"], "Ann");
    assert_eq!(r.body["properties"]["city"], "Oslo");
    assert_eq!(r.body["properties"]["hs_merged_object_ids"], b.as_str());
    let r = emu.get(&format!("/crm/v3/objects/contacts/{b}")).await;
    assert_eq!(
        r.body["id"],
        a.as_str(),
        "a merged-away id reads the survivor"
    );
}

#[tokio::test]
async fn gdpr_delete_is_permanent_and_blocks_the_email() {
    let emu = Emu::start().await;
    let id = emu.contact(json!({"email": "forget@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/gdpr-delete",
            json!({"objectId": "forget@example.com", "idProperty": "email"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        emu.get(&format!("/crm/v3/objects/contacts/{id}?archived=true"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "forget@example.com"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn property_history_lists_changes_newest_first() {
    let emu = Emu::start().await;
    let id = emu
        .contact(json!({"email": "h@example.com", "firstname": "One"}))
        .await;
    emu.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"firstname": "Two"}}),
    )
    .await;
    let r = emu
        .get(&format!(
            "/crm/v3/objects/contacts/{id}?propertiesWithHistory=firstname"
        ))
        .await;
    let hist = r.body["propertiesWithHistory"]["firstname"]
        .as_array()
        .expect("history")
        .clone();
    let values: Vec<&str> = hist.iter().filter_map(|h| h["value"].as_str()).collect();
    assert_eq!(values, ["Two", "One"]);
    assert_eq!(hist[0]["sourceType"], "INTEGRATION");
}

#[tokio::test]
async fn public_writes_are_integration_and_control_edits_are_crm_ui() {
    let emu = Emu::start().await;
    let mut events = emu.handle.events().subscribe();
    let id = emu.contact(json!({"email": "src@example.com"})).await;
    let r = emu
        .post(
            &format!("/_emulator/objects/contacts/{id}"),
            json!({"properties": {"firstname": "Ui"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let creation = seen
        .iter()
        .find(|e| e.kind == EventKind::Creation)
        .expect("creation event");
    assert_eq!(creation.change_source, ChangeSource::Integration);
    assert_eq!(creation.object_type_id, ObjectTypeId::CONTACT);
    let ui = seen
        .iter()
        .find(|e| matches!(&e.kind, EventKind::PropertyChange { property_name, .. } if property_name == "firstname"))
        .expect("propertyChange");
    assert_eq!(ui.change_source, ChangeSource::CrmUi);
    assert_eq!(ui.object_id.to_string(), id);
}

#[tokio::test]
async fn object_types_resolve_by_name_id_and_singular() {
    let emu = Emu::start().await;
    let id = emu.contact(json!({"email": "t@example.com"})).await;
    for ty in ["contacts", "contact", "0-1"] {
        let r = emu.get(&format!("/crm/v3/objects/{ty}/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{ty}");
    }
    let r = emu.get("/crm/v3/objects/butterflies").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "Unable to infer object type from: butterflies"
    );
}

#[tokio::test]
async fn create_with_associations_links_records_and_expands_them() {
    let emu = Emu::start().await;
    let r = emu
        .post(
            "/crm/v3/objects/companies",
            json!({"properties": {"name": "Acme"}}),
        )
        .await;
    let company = r.body["id"].as_str().expect("id").to_owned();
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "linked@example.com"},
                   "associations": [{"to": {"id": company},
                       "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = emu
        .get(&format!(
            "/crm/v3/objects/contacts/{id}?associations=companies"
        ))
        .await;
    let refs = r.body["associations"]["companies"]["results"]
        .as_array()
        .expect("expansion")
        .clone();
    assert!(
        refs.iter()
            .any(|x| x["id"] == company.as_str() && x["type"] == "contact_to_company_unlabeled")
    );
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {}, "associations": [{"to": {"id": "1"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown target");
}

#[tokio::test]
async fn commerce_and_engagement_types_are_served() {
    let emu = Emu::start().await;
    let r = emu
        .post("/crm/v3/objects/notes", json!({"properties": {"hs_note_body": "Called", "hs_timestamp": "2024-01-02T03:04:05Z"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["properties"]["hs_timestamp"],
        "2024-01-02T03:04:05.000Z"
    );
    let id = r.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        emu.get(&format!("/crm/v3/objects/0-46/{id}")).await.status,
        StatusCode::OK
    );
    for ty in [
        "products",
        "line_item",
        "0-8",
        "quotes",
        "tasks",
        "meetings",
        "calls",
        "emails",
        "leads",
        "goal_targets",
    ] {
        let r = emu.get(&format!("/crm/v3/objects/{ty}?limit=1")).await;
        assert_eq!(r.status, StatusCode::OK, "{ty}");
    }
    let r = emu.get("/properties/v2/line_item/properties").await;
    assert!(
        r.body
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["name"] == "quantity"))
    );
}

#[tokio::test]
async fn associatedcompanyid_mirrors_and_sets_the_primary_company() {
    let emu = Emu::start().await;
    let mut companies = Vec::new();
    for name in ["A", "B"] {
        let r = emu
            .post(
                "/crm/v3/objects/companies",
                json!({"properties": {"name": name}}),
            )
            .await;
        companies.push(r.body["id"].as_str().expect("id").to_owned());
    }
    let id = emu
        .contact(json!({"email": "p@example.com", "associatedcompanyid": companies[0]}))
        .await;
    let emu = &emu;
    let read = |id: String| async move {
        emu.get(&format!(
            "/crm/v3/objects/contacts/{id}?properties=associatedcompanyid&associations=companies"
        ))
        .await
    };
    let r = read(id.clone()).await;
    assert_eq!(
        r.body["properties"]["associatedcompanyid"],
        companies[0].as_str()
    );
    assert!(
        r.body["associations"]["companies"]["results"]
            .as_array()
            .is_some_and(|l| l.len() == 2)
    );
    // A new primary through the v4 API shows up in the property.
    let path = format!(
        "/crm/v4/objects/contacts/{id}/associations/companies/{}",
        companies[1]
    );
    let body = json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]);
    let put = emu.call(reqwest::Method::PUT, &path, Some(body)).await;
    assert!(put.status.is_success(), "{}", put.body);
    assert_eq!(
        read(id.clone()).await.body["properties"]["associatedcompanyid"],
        companies[1].as_str()
    );
    let r = emu
        .patch(
            &format!("/crm/v3/objects/contacts/{id}"),
            json!({"properties": {"associatedcompanyid": "1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not a company");
    emu.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"associatedcompanyid": ""}}),
    )
    .await;
    assert!(read(id).await.body["properties"]["associatedcompanyid"].is_null());
}
