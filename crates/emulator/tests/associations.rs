//! Associations over HTTP: v4 record-level and batch endpoints, labels under both paths,
//! primary-company semantics and the v3 expansion (hubspot-api.md §11, §16.1/4/5/15/16).

use serde_json::{Value, json};

use crate::emulator_kit::{Calls, start_unlimited};
use crate::harness::Emu;

async fn contact_and_company(live: &Emu) -> (u64, u64) {
    let contact = live
        .create(
            "contacts",
            json!({"email": format!("a{}@example.com", rand_suffix())}),
        )
        .await;
    let company = live.create("companies", json!({"name": "Acme"})).await;
    (contact, company)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn type_ids(target: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = target["associationTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["typeId"].as_u64()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn default_association_lists_primary_and_unlabeled_with_numeric_ids() {
    let live = start_unlimited().await;
    let (contact, company) = contact_and_company(&live).await;
    let (status, body) = live
        .associate_default(("contacts", contact), ("companies", company))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "COMPLETE");
    let specs: Vec<u64> = body["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["associationSpec"]["associationTypeId"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    assert!(specs.contains(&279) && specs.contains(&1), "{body}");

    let (status, body) = live.associations(("contacts", contact), "companies").await;
    assert_eq!(status, 200);
    let target = &body["results"][0];
    // §16.1: ids are JSON numbers in v4 payloads.
    assert_eq!(target["toObjectId"], json!(company));
    assert!(target["toObjectId"].is_u64());
    assert_eq!(type_ids(target), vec![1, 279]);
    let labels: Vec<Value> = target["associationTypes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|t| t["label"].clone())
        .collect();
    assert!(labels.contains(&json!("Primary")) && labels.contains(&Value::Null));

    // The inverse direction exists too, with the company-side type ids.
    let (_, body) = live.associations(("companies", company), "contacts").await;
    assert_eq!(type_ids(&body["results"][0]), vec![2, 280]);
}

#[tokio::test]
async fn v3_expansion_lists_the_primary_company_twice() {
    let live = start_unlimited().await;
    let (contact, company) = contact_and_company(&live).await;
    assert_eq!(
        live.associate_default(("contacts", contact), ("companies", company))
            .await
            .0,
        200
    );
    let (status, body) = live
        .json(
            "GET",
            &format!("/crm/v3/objects/contacts/{contact}?associations=companies"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["associations"]["companies"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 2, "{body}");
    // §16.1: v3 ids are strings.
    assert!(
        results
            .iter()
            .all(|r| r["id"] == json!(company.to_string()))
    );
    let mut types: Vec<String> = results
        .iter()
        .filter_map(|r| r["type"].as_str().map(str::to_owned))
        .collect();
    types.sort();
    assert_eq!(
        types,
        vec!["contact_to_company", "contact_to_company_unlabeled"]
    );
}

#[tokio::test]
async fn labelled_put_answers_201_with_the_pair_and_demotes_the_old_primary() {
    let live = start_unlimited().await;
    let (contact, first) = contact_and_company(&live).await;
    let second = live.create("companies", json!({"name": "Beta"})).await;
    assert_eq!(
        live.associate_default(("contacts", contact), ("companies", first))
            .await
            .0,
        200
    );

    let primary = json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]);
    let path = format!("/crm/v4/objects/contacts/{contact}/associations/companies/{second}");
    let (status, body) = live.json("PUT", &path, Some(primary)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["fromObjectTypeId"], "0-1");
    assert_eq!(body["fromObjectId"], json!(contact));
    assert_eq!(body["toObjectId"], json!(second));
    assert_eq!(body["labels"], json!(["Primary"]));

    let (_, body) = live.associations(("contacts", contact), "companies").await;
    let by_id = |id: u64| {
        body["results"]
            .as_array()
            .and_then(|r| r.iter().find(|t| t["toObjectId"] == json!(id)))
            .cloned()
    };
    assert_eq!(by_id(first).map(|t| type_ids(&t)), Some(vec![279]));
    assert_eq!(by_id(second).map(|t| type_ids(&t)), Some(vec![1, 279]));

    // §11.6: the contact's associatedcompanyid mirrors its primary company.
    let read = format!("/crm/v3/objects/contacts/{contact}?properties=associatedcompanyid");
    let (_, record) = live.json("GET", &read, None).await;
    assert_eq!(
        record["properties"]["associatedcompanyid"],
        json!(second.to_string())
    );
    let unlink = format!("/crm/v4/objects/contacts/{contact}/associations/companies/{second}");
    assert_eq!(live.json("DELETE", &unlink, None).await.0, 204);
    let (_, record) = live.json("GET", &read, None).await;
    let cleared = &record["properties"]["associatedcompanyid"];
    assert!(cleared.is_null() || *cleared == json!(""), "{record}");

    let bad = json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]);
    let (status, body) = live.json("PUT", &path, Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn batch_read_reports_records_without_associations_as_207_errors() {
    let live = start_unlimited().await;
    let (contact, company) = contact_and_company(&live).await;
    let lonely = live
        .create("contacts", json!({"email": "lonely@example.com"}))
        .await;
    assert_eq!(
        live.associate_default(("contacts", contact), ("companies", company))
            .await
            .0,
        200
    );

    let input = json!({"inputs": [{"id": contact.to_string()}, {"id": lonely.to_string()}]});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v4/associations/contacts/companies/batch/read",
            Some(input),
        )
        .await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["results"][0]["from"]["id"], json!(contact.to_string()));
    assert_eq!(body["results"][0]["to"][0]["toObjectId"], json!(company));
    assert_eq!(body["numErrors"], 1);
    let error = &body["errors"][0];
    assert_eq!(error["status"], "error");
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(
        error["subCategory"],
        "crm.associations.NO_ASSOCIATIONS_FOUND"
    );
    assert_eq!(
        error["message"],
        format!("No company is associated with contact {lonely}.")
    );
    assert_eq!(
        error["context"]["fromObjectId"],
        json!([lonely.to_string()])
    );

    let only_good = json!({"inputs": [{"id": contact.to_string()}]});
    let (status, _) = live
        .json(
            "POST",
            "/crm/v4/associations/contacts/companies/batch/read",
            Some(only_good),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn batch_create_and_archive() {
    let live = start_unlimited().await;
    let deal = live.create("deals", json!({"dealname": "Big"})).await;
    let (contact, _) = contact_and_company(&live).await;
    let input = json!({"inputs": [
        {"from": {"id": deal.to_string()}, "to": {"id": contact.to_string()},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]},
        {"from": {"id": deal.to_string()}, "to": {"id": "999999999"},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]},
    ]});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v4/associations/deals/contacts/batch/create",
            Some(input),
        )
        .await;
    // §16.15: success is 201 (200 since 2025-08); one input fails here, so 207.
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["results"][0]["toObjectId"], json!(contact));
    assert_eq!(body["numErrors"], 1);

    let good = json!({"inputs": [{"from": {"id": deal.to_string()}, "to": {"id": contact.to_string()},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]});
    let (status, _) = live
        .json(
            "POST",
            "/crm/v4/associations/deals/contacts/batch/create",
            Some(good),
        )
        .await;
    assert!(status == 201 || status == 200);

    let (_, body) = live.associations(("contacts", contact), "deals").await;
    assert_eq!(type_ids(&body["results"][0]), vec![4]);

    let archive = json!({"inputs": [{"from": {"id": deal.to_string()}, "to": [{"id": contact.to_string()}]}]});
    let (status, _) = live
        .json(
            "POST",
            "/crm/v4/associations/deals/contacts/batch/archive",
            Some(archive),
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = live.associations(("deals", deal), "contacts").await;
    assert_eq!(body["results"], json!([]));
}

#[tokio::test]
async fn record_delete_removes_all_types_and_bad_ids_are_refused() {
    let live = start_unlimited().await;
    let (contact, company) = contact_and_company(&live).await;
    assert_eq!(
        live.associate_default(("contacts", contact), ("companies", company))
            .await
            .0,
        200
    );
    let delete = format!("/crm/v4/objects/contacts/{contact}/associations/companies/{company}");
    assert_eq!(live.json("DELETE", &delete, None).await.0, 204);
    let (_, body) = live.associations(("companies", company), "contacts").await;
    assert_eq!(body["results"], json!([]));

    let (status, body) = live
        .associate_default(("contacts", contact), ("contacts", contact))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        format!("Object {contact} cannot be associated to itself ({contact})")
    );

    let (status, body) = live
        .json(
            "GET",
            "/crm/v4/objects/butterflies/1/associations/contacts",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "Unable to infer object type from: butterflies"
    );
}

#[tokio::test]
async fn list_pages_with_after_cursors() {
    let live = start_unlimited().await;
    let company = live.create("companies", json!({"name": "Hub"})).await;
    let mut contacts = Vec::new();
    for _ in 0..5 {
        let contact = live.create("contacts", json!({})).await;
        assert_eq!(
            live.associate_default(("companies", company), ("contacts", contact))
                .await
                .0,
            200
        );
        contacts.push(contact);
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!(
            "/crm/v4/objects/companies/{company}/associations/contacts?limit=2&after={after}"
        );
        let (status, body) = live.json("GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(
            body["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t["toObjectId"].as_u64()),
        );
        match body["paging"]["next"]["after"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    contacts.sort_unstable();
    assert_eq!(seen, contacts);
}

#[tokio::test]
async fn labels_are_served_under_both_paths() {
    let live = start_unlimited().await;
    let label = json!({"name": "decision_maker", "label": "Decision maker", "inverseLabel": "Has decision maker"});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v4/associations/contacts/companies/labels",
            Some(label),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let created = body["results"][0]["typeId"]
        .as_u64()
        .expect("label has a type id");
    assert_eq!(body["results"][0]["category"], "USER_DEFINED");

    // §16.16: the current spec's path sees the same labels.
    let (status, body) = live
        .json(
            "GET",
            "/crm/associations/v4/contacts/companies/labels",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().cloned().unwrap_or_default();
    assert!(
        results
            .iter()
            .any(|t| t["typeId"] == json!(279) && t["label"].is_null())
    );
    assert!(
        results
            .iter()
            .any(|t| t["typeId"] == json!(1) && t["label"] == "Primary")
    );
    assert!(
        results
            .iter()
            .any(|t| t["typeId"] == json!(created) && t["label"] == "Decision maker")
    );

    // Use the label, rename it, then delete it (associations with it disappear).
    let (contact, company) = contact_and_company(&live).await;
    let types = json!([{"associationCategory": "USER_DEFINED", "associationTypeId": created}]);
    let path = format!("/crm/v4/objects/contacts/{contact}/associations/companies/{company}");
    let (status, body) = live.json("PUT", &path, Some(types)).await;
    assert_eq!(
        (status, body["labels"].clone()),
        (201, json!(["Decision maker"]))
    );
    let rename = json!({"associationTypeId": created, "label": "Buyer"});
    let (status, _) = live
        .json(
            "PUT",
            "/crm/associations/v4/contacts/companies/labels",
            Some(rename),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = live
        .json(
            "DELETE",
            &format!("/crm/v4/associations/contacts/companies/labels/{created}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = live.associations(("contacts", contact), "companies").await;
    assert_eq!(type_ids(&body["results"][0]), vec![279]);
}

#[tokio::test]
async fn v3_batch_endpoints_use_type_names_and_string_ids() {
    let live = start_unlimited().await;
    let (contact, company) = contact_and_company(&live).await;
    let (status, body) = live
        .json("GET", "/crm/v3/associations/contacts/companies/types", None)
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["results"]
        .as_array()
        .map(|r| r.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"contact_to_company") && names.contains(&"contact_to_company_unlabeled")
    );

    let input = json!({"inputs": [{"from": {"id": contact.to_string()}, "to": {"id": company.to_string()},
        "type": "contact_to_company"}]});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v3/associations/contacts/companies/batch/create",
            Some(input.clone()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["results"][0]["type"], "contact_to_company");

    let read = json!({"inputs": [{"id": contact.to_string()}]});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v3/associations/contacts/companies/batch/read",
            Some(read.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let to = body["results"][0]["to"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(to.len(), 2, "primary and unlabeled: {body}");
    assert!(to.iter().all(|t| t["id"] == json!(company.to_string())));

    let (status, _) = live
        .json(
            "POST",
            "/crm/v3/associations/contacts/companies/batch/archive",
            Some(input),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = live
        .json(
            "POST",
            "/crm/v3/associations/contacts/companies/batch/read",
            Some(read),
        )
        .await;
    assert_eq!(status, 207);
    assert_eq!(
        body["errors"][0]["subCategory"],
        "crm.associations.NO_ASSOCIATIONS_FOUND"
    );
}
