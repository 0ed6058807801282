//! Search: operators, sorts, query, paging, the 10,000 cap, limits (§7, §16.6).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Emu;

async fn ids(emu: &Emu, body: Value) -> Vec<String> {
    let r = emu.post("/crm/v3/objects/contacts/search", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn one(name: &str, op: &str, value: Value) -> Value {
    json!({"filterGroups": [{"filters": [{"propertyName": name, "operator": op, "value": value}]}]})
}

#[tokio::test]
async fn every_operator_filters_as_documented() {
    let emu = Emu::start().await;
    let a = emu
        .contact(json!({"email": "ann@example.com", "firstname": "Ann", "lifecyclestage": "lead"}))
        .await;
    let b = emu.contact(json!({"email": "bob@other.org", "firstname": "Bob", "lifecyclestage": "customer", "phone": "1"})).await;
    let c = emu
        .contact(json!({"email": "cy@example.com", "firstname": "Cy Ann"}))
        .await;
    assert_eq!(
        ids(&emu, one("firstname", "EQ", json!("ann"))).await,
        vec![a.clone()],
        "EQ is case-insensitive"
    );
    assert_eq!(
        ids(&emu, one("firstname", "NEQ", json!("Ann"))).await,
        [b.clone(), c.clone()]
    );
    assert_eq!(
        ids(&emu, one("email", "CONTAINS_TOKEN", json!("*@example.com"))).await,
        [a.clone(), c.clone()]
    );
    assert_eq!(
        ids(&emu, one("firstname", "CONTAINS_TOKEN", json!("ann"))).await,
        [a.clone(), c.clone()]
    );
    assert_eq!(
        ids(&emu, one("firstname", "NOT_CONTAINS_TOKEN", json!("ann"))).await,
        vec![b.clone()]
    );
    let has = json!({"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "HAS_PROPERTY"}]}]});
    assert_eq!(ids(&emu, has).await, vec![b.clone()]);
    let not = json!({"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}]}]});
    assert_eq!(ids(&emu, not).await, [a.clone(), c.clone()]);
    let inn = json!({"filterGroups": [{"filters": [{"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "customer"]}]}]});
    assert_eq!(ids(&emu, inn).await, [a.clone(), b.clone()]);
    let not_in = json!({"filterGroups": [{"filters": [{"propertyName": "lifecyclestage", "operator": "NOT_IN", "values": ["lead"]}]}]});
    assert_eq!(ids(&emu, not_in).await, [b.clone(), c.clone()]);
    let bid: u64 = b.parse().unwrap_or_default();
    assert_eq!(
        ids(&emu, one("hs_object_id", "GT", json!(bid.to_string()))).await,
        vec![c.clone()]
    );
    assert_eq!(
        ids(&emu, one("hs_object_id", "LTE", json!(bid))).await,
        [a.clone(), b.clone()]
    );
    assert_eq!(
        ids(&emu, one("hs_object_id", "LT", json!(bid))).await,
        vec![a.clone()]
    );
    assert_eq!(
        ids(&emu, one("hs_object_id", "GTE", json!(bid))).await,
        [b.clone(), c.clone()]
    );
    let between = json!({"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "BETWEEN", "value": a, "highValue": b}]}]});
    assert_eq!(ids(&emu, between).await, [a.clone(), b.clone()]);
    // Groups are ORed, filters inside ANDed; legacy top-level filters still work.
    let or = json!({"filterGroups": [
        {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Bob"}]},
        {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Cy Ann"}, {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "cy@example.com"}]}]});
    assert_eq!(ids(&emu, or).await, [b.clone(), c.clone()]);
    let legacy =
        json!({"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Bob"}]});
    assert_eq!(ids(&emu, legacy).await, vec![b.clone()]);
    assert_eq!(
        ids(&emu, json!({"query": "ann"})).await,
        [a.clone(), c.clone()]
    );
    let sorted = json!({"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}]});
    assert_eq!(ids(&emu, sorted).await, [c.clone(), b.clone(), a.clone()]);
    assert_eq!(
        ids(&emu, json!({"sorts": ["firstname"]})).await,
        [a, b, c],
        "string sorts accepted"
    );
}

#[tokio::test]
async fn modified_date_ranges_use_the_index_and_agree_with_a_scan() {
    let emu = Emu::seeded(3000, 50).await;
    let lo = "2023-01-01T00:00:00Z";
    let hi = "1704067199999"; // 2023-12-31T23:59:59.999Z, epoch ms form
    let body = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": lo},
            {"propertyName": "lastmodifieddate", "operator": "LTE", "value": hi}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["lastmodifieddate"], "limit": 200});
    let r = emu.post("/crm/v3/objects/contacts/search", body).await;
    assert_eq!(r.status, StatusCode::OK);
    let total = r.body["total"].as_u64().expect("total");
    assert!(total > 100 && total < 3000, "a year of five: {total}");
    let stamps: Vec<&str> = r.body["results"]
        .as_array()
        .expect("r")
        .iter()
        .filter_map(|x| x["properties"]["lastmodifieddate"].as_str())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "ascending");
    assert!(stamps.iter().all(|s| s.starts_with("2023-")));
    // The same range with a non-indexed sort takes the scan path and finds the same total.
    let scan = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "BETWEEN", "value": lo, "highValue": hi}]}],
        "sorts": [{"propertyName": "email", "direction": "ASCENDING"}]});
    let r2 = emu.post("/crm/v3/objects/contacts/search", scan).await;
    assert_eq!(r2.body["total"].as_u64(), Some(total));
}

#[tokio::test]
async fn paging_uses_string_offsets_and_stops_hard_at_10000() {
    let emu = Emu::seeded(10_050, 0).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 200, "after": "9800"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 10_050, "total may exceed 10,000");
    assert_eq!(
        r.body["paging"]["next"]["after"], "10000",
        "§16.6 offset cursor as a string"
    );
    let r = emu
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 10, "after": "10000"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "§7.3 even limit=10 at after=10000 fails"
    );
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
    let r = emu
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 200, "after": "9950"}),
        )
        .await;
    assert_eq!(
        r.body["results"].as_array().map(Vec::len),
        Some(50),
        "results stop at the 10,000th"
    );
    let r = emu
        .post("/crm/v3/objects/contacts/search", json!({"limit": 201}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = emu.post("/crm/v3/objects/contacts/search", json!({})).await;
    assert_eq!(
        r.body["results"].as_array().map(Vec::len),
        Some(10),
        "default limit 10"
    );
    assert!(
        r.body["paging"]["next"].get("link").is_none(),
        "no link on search paging"
    );
}

#[tokio::test]
async fn malformed_searches_are_400() {
    let emu = Emu::start().await;
    let with_value = json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY", "value": "x"}]}]});
    assert_eq!(
        emu.post("/crm/v3/objects/contacts/search", with_value)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let groups: Vec<Value> = (0..6)
        .map(|_| json!({"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}))
        .collect();
    assert_eq!(
        emu.post(
            "/crm/v3/objects/contacts/search",
            json!({"filterGroups": groups})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let bad_op = one("email", "LIKE", json!("x"));
    assert_eq!(
        emu.post("/crm/v3/objects/contacts/search", bad_op)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let no_value =
        json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ"}]}]});
    assert_eq!(
        emu.post("/crm/v3/objects/contacts/search", no_value)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn archived_records_are_not_searchable() {
    let emu = Emu::start().await;
    let a = emu.contact(json!({"email": "s1@example.com"})).await;
    let b = emu.contact(json!({"email": "s2@example.com"})).await;
    emu.delete(&format!("/crm/v3/objects/contacts/{a}")).await;
    assert_eq!(ids(&emu, json!({})).await, vec![b]);
}

#[tokio::test]
async fn search_honours_the_index_lag_fault() {
    let emu = Emu::start().await;
    let r = emu
        .post("/_emulator/faults", json!({"search_lag_ms": 600_000}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = emu.contact(json!({"email": "lagged@example.com"})).await;
    assert!(ids(&emu, json!({})).await.is_empty(), "not yet indexed");
    assert_eq!(
        emu.get(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        StatusCode::OK,
        "reads are not lagged"
    );
    emu.delete("/_emulator/faults").await;
    assert_eq!(ids(&emu, json!({})).await, vec![id]);
}

#[tokio::test]
async fn date_and_checkbox_properties_filter_by_value() {
    let emu = Emu::start().await;
    let g = "ticketinformation";
    let r = emu
        .post("/crm/v3/properties/tickets", json!({"name": "due", "label": "Due", "type": "date", "fieldType": "date", "groupName": g}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let make = |due: &str, cat: &str| json!({"properties": {"subject": "s", "due": due, "hs_ticket_category": cat}});
    let a = emu
        .post(
            "/crm/v3/objects/tickets",
            make("2024-03-01", "BILLING_ISSUE;PRODUCT_ISSUE"),
        )
        .await;
    let b = emu
        .post(
            "/crm/v3/objects/tickets",
            make("2024-05-01", "FEATURE_REQUEST"),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let (a, b) = (a.body["id"].clone(), b.body["id"].clone());
    let found = |body: Value| async {
        let r = emu.post("/crm/v3/objects/tickets/search", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|x| x["id"].clone())
            .collect::<Vec<_>>()
    };
    let before = json!({"filterGroups": [{"filters": [{"propertyName": "due", "operator": "LT", "value": "1711929600000"}]}]});
    assert_eq!(
        found(before).await,
        vec![a.clone()],
        "date filter with epoch ms (2024-04-01)"
    );
    let cat = json!({"filterGroups": [{"filters": [{"propertyName": "hs_ticket_category", "operator": "EQ", "value": "PRODUCT_ISSUE"}]}]});
    assert_eq!(found(cat).await, vec![a]);
    let none = json!({"filterGroups": [{"filters": [{"propertyName": "hs_ticket_category", "operator": "NOT_IN", "values": ["BILLING_ISSUE"]}]}]});
    assert_eq!(found(none).await, vec![b]);
}
