//! Batch endpoints: status codes, 207 multi-status, all-or-nothing create (§4.6, §16.3).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Emu;

fn count(emu_body: &Value) -> usize {
    emu_body["results"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn batch_create_is_all_or_nothing_without_trace_ids() {
    let emu = Emu::start().await;
    let existing = emu.contact(json!({"email": "taken@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [
                {"properties": {"email": "new1@example.com"}},
                {"properties": {"email": "taken@example.com"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["message"],
        format!("Contact already exists. Existing ID: {existing}")
    );
    let list = emu.get("/crm/v3/objects/contacts").await;
    assert_eq!(count(&list.body), 1, "the first input was not kept");
}

#[tokio::test]
async fn batch_create_with_unique_trace_ids_is_multi_status() {
    let emu = Emu::start().await;
    let existing = emu.contact(json!({"email": "taken@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [
                {"properties": {"email": "new1@example.com"}, "objectWriteTraceId": "a"},
                {"properties": {"email": "taken@example.com"}, "objectWriteTraceId": "b"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["status"], "COMPLETE");
    assert_eq!(r.body["numErrors"], 1);
    assert_eq!(count(&r.body), 1);
    let err = &r.body["errors"][0];
    assert_eq!(err["category"], "CONFLICT");
    assert_eq!(err["context"]["objectWriteTraceId"][0], "b");
    assert_eq!(err["context"]["existingId"][0], existing.as_str());
}

#[tokio::test]
async fn batch_create_success_is_201() {
    let emu = Emu::start().await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [{"properties": {"firstname": "A"}}]}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "§16.3: clients depend on 201"
    );
    assert!(r.body["startedAt"].is_string() && r.body["completedAt"].is_string());
}

#[tokio::test]
async fn batch_read_reports_missing_ids_as_207() {
    let emu = Emu::start().await;
    let a = emu
        .contact(json!({"email": "r1@example.com", "firstname": "R"}))
        .await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"properties": ["firstname"], "inputs": [{"id": a}, {"id": "999"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["results"][0]["properties"]["firstname"], "R");
    assert_eq!(r.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(r.body["errors"][0]["context"]["ids"][0], "999");
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"idProperty": "email", "inputs": [{"id": "r1@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"][0]["id"], a.as_str());
}

#[tokio::test]
async fn batch_update_duplicates_are_400_and_missing_ids_207() {
    let emu = Emu::start().await;
    let a = emu.contact(json!({"email": "u1@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [{"id": a, "properties": {}}, {"id": a, "properties": {}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        format!("Duplicate IDs found in batch input: [{a}]. IDs must be unique")
    );
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [{"id": a, "properties": {"city": "Oslo"}}, {"id": "1", "properties": {"city": "X"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["results"][0]["properties"]["city"], "Oslo");
    assert_eq!(
        r.body["errors"][0]["message"],
        "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
    );
}

#[tokio::test]
async fn batch_upsert_creates_or_updates_by_unique_property() {
    let emu = Emu::start().await;
    let a = emu.contact(json!({"email": "up@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [
                {"id": "up@example.com", "idProperty": "email", "properties": {"city": "Oslo"}},
                {"id": "fresh@example.com", "idProperty": "email", "properties": {"city": "Rome"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(results[0]["id"], a.as_str());
    assert_eq!(results[0]["new"], false);
    assert_eq!(results[1]["new"], true);
    assert_eq!(results[1]["properties"]["email"], "fresh@example.com");
}

#[tokio::test]
async fn batch_archive_is_204_and_limits_inputs_to_100() {
    let emu = Emu::start().await;
    let a = emu.contact(json!({"email": "x@example.com"})).await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/archive",
            json!({"inputs": [{"id": a}, {"id": "5"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        emu.get(&format!("/crm/v3/objects/contacts/{a}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let inputs: Vec<Value> = (0..101).map(|i| json!({"id": i.to_string()})).collect();
    let r = emu
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
