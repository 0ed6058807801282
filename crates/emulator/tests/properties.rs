//! Properties API and value validation/normalisation (§9, §16.10–12).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Emu;

async fn prop(emu: &Emu, body: Value) {
    let r = emu.post("/crm/v3/properties/contacts", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn write(emu: &Emu, id: &str, props: Value) -> crate::harness::Reply {
    emu.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({ "properties": props }),
    )
    .await
}

#[tokio::test]
async fn custom_properties_of_every_type_validate_and_normalise() {
    let emu = Emu::start().await;
    let g = "contactinformation";
    prop(&emu, json!({"name": "birthday", "label": "B", "type": "date", "fieldType": "date", "groupName": g})).await;
    prop(&emu, json!({"name": "seen_at", "label": "S", "type": "datetime", "fieldType": "date", "groupName": g})).await;
    prop(&emu, json!({"name": "score", "label": "S", "type": "number", "fieldType": "number", "groupName": g})).await;
    prop(&emu, json!({"name": "vip", "label": "V", "type": "bool", "fieldType": "booleancheckbox", "groupName": g})).await;
    prop(&emu, json!({"name": "notes_html", "label": "N", "type": "string", "fieldType": "html", "groupName": g})).await;
    prop(&emu, json!({"name": "flavours", "label": "F", "type": "enumeration", "fieldType": "checkbox", "groupName": g,
        "options": [{"label": "Chocolate", "value": "chocolate"}, {"label": "Strawberry", "value": "strawberry"}]})).await;
    prop(&emu, json!({"name": "size", "label": "Size", "type": "enumeration", "fieldType": "select", "groupName": g,
        "options": [{"label": "Small", "value": "s"}, {"label": "Large", "value": "l"}]})).await;
    let id = emu.contact(json!({"email": "types@example.com"})).await;
    let r = write(
        &emu,
        &id,
        json!({"birthday": "1430438400000", "seen_at": 1430438400123i64, "score": 17.5,
        "vip": true, "flavours": "chocolate;strawberry", "size": "l", "notes_html": "<b>x</b>"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = &r.body["properties"];
    assert_eq!(
        p["birthday"], "2015-05-01",
        "§16.10 date read back as YYYY-MM-DD"
    );
    assert_eq!(
        p["seen_at"], "2015-05-01T00:00:00.123Z",
        "§16.10 datetime ISO with ms and Z"
    );
    assert_eq!(p["score"], "17.5", "numbers coerced to strings");
    assert_eq!(p["vip"], "true");
    assert_eq!(p["flavours"], "chocolate;strawberry", "§16.11 ;-joined");
    for (bad, code) in [
        (json!({"birthday": "1430438400001"}), "INVALID_DATE"),
        (json!({"score": "1,000"}), "INVALID_INTEGER"),
        (json!({"score": " 17"}), "INVALID_PROPERTY_VALUE"),
        (json!({"vip": "maybe"}), "INVALID_BOOLEAN"),
        (json!({"size": "Large"}), "INVALID_OPTION"),
        (json!({"flavours": "chocolate;vanilla"}), "INVALID_OPTION"),
        (json!({"score": {"a": 1}}), "INVALID_PROPERTY_VALUE"),
    ] {
        let r = write(&emu, &id, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["errors"][0]["code"], code, "{bad}: {}", r.body);
    }
}

#[tokio::test]
async fn unknown_and_read_only_properties_are_rejected() {
    let emu = Emu::start().await;
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"first000name": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"first000name\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"first000name\"}]"
    );
    assert_eq!(
        r.body["errors"][0]["context"]["propertyName"][0],
        "first000name"
    );
    for ro in ["hs_object_id", "hubspotscore", "lastmodifieddate"] {
        let r = emu
            .post("/crm/v3/objects/contacts", json!({"properties": {ro: "1"}}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "§16.12 {ro}");
        assert_eq!(r.body["errors"][0]["code"], "READ_ONLY_VALUE");
    }
}

#[tokio::test]
async fn external_option_enumerations_validate_against_pipelines_and_owners() {
    let emu = Emu::start().await;
    let r = emu.post("/crm/v3/objects/deals", json!({"properties": {"dealname": "D", "pipeline": "default", "dealstage": "closedwon"}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = emu
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"dealname": "D", "dealstage": "nosuchstage"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["code"], "INVALID_OPTION");
    let r = emu
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"hubspot_owner_id": "42"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not an owner");
}

#[tokio::test]
async fn property_crud_groups_and_legacy_listing() {
    let emu = Emu::start().await;
    let r = emu
        .post(
            "/crm/v3/properties/companies/groups",
            json!({"name": "billing", "label": "Billing"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = json!({"name": "vat_id", "label": "VAT", "type": "string", "fieldType": "text", "groupName": "billing", "hasUniqueValue": true});
    let r = emu.post("/crm/v3/properties/companies", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["hasUniqueValue"], true);
    assert!(r.body.get("hubspotDefined").is_none());
    let r = emu.post("/crm/v3/properties/companies", body).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["category"], "OBJECT_ALREADY_EXISTS");
    assert_eq!(
        r.body["subCategory"],
        "Properties.PROPERTY_WITH_NAME_EXISTS"
    );
    let r = emu
        .patch(
            "/crm/v3/properties/companies/vat_id",
            json!({"label": "VAT number"}),
        )
        .await;
    assert_eq!(r.body["label"], "VAT number");
    // A unique custom property is an idProperty.
    let r = emu
        .post(
            "/crm/v3/objects/companies",
            json!({"properties": {"name": "Acme", "vat_id": "DE1"}}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap_or_default().to_owned();
    let r = emu
        .get("/crm/v3/objects/companies/DE1?idProperty=vat_id")
        .await;
    assert_eq!(r.body["id"], id.as_str());
    let r = emu
        .post(
            "/crm/v3/objects/companies",
            json!({"properties": {"vat_id": "DE1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = emu.get("/properties/v2/companies/properties").await;
    let names: Vec<&str> = r
        .body
        .as_array()
        .expect("bare array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"vat_id") && names.contains(&"name"));
    assert_eq!(
        emu.delete("/crm/v3/properties/companies/vat_id")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        emu.get("/crm/v3/properties/companies/vat_id").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        emu.get("/crm/v3/properties/companies/vat_id?archived=true")
            .await
            .status,
        StatusCode::OK
    );
    let r = emu.get("/crm/v3/properties/contacts/lifecyclestage").await;
    assert_eq!(r.body["hubspotDefined"], true);
    assert_eq!(r.body["modificationMetadata"]["readOnlyValue"], false);
    let r = emu
        .post(
            "/crm/v3/properties/contacts/batch/read",
            json!({"inputs": [{"name": "email"}, {"name": "nope"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
}
