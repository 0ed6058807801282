//! Custom object schemas under both paths and records of custom objects (§10, §16.16).

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Emu;

#[tokio::test]
async fn schemas_are_served_under_both_prefixes_and_records_resolve_every_name() {
    let emu = Emu::start().await;
    let egg = json!({"name": "cars", "labels": {"singular": "Car", "plural": "Cars"},
        "primaryDisplayProperty": "model", "requiredProperties": ["vin"], "searchableProperties": ["vin", "model"],
        "properties": [{"name": "vin", "label": "VIN", "type": "string", "fieldType": "text", "hasUniqueValue": true},
                       {"name": "model", "label": "Model", "type": "string", "fieldType": "text"},
                       {"name": "year", "label": "Year", "type": "number", "fieldType": "number"}],
        "associatedObjects": ["CONTACT"]});
    let r = emu
        .post("/crm-object-schemas/v3/schemas", egg.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let type_id = r.body["objectTypeId"]
        .as_str()
        .expect("objectTypeId")
        .to_owned();
    let fqn = r.body["fullyQualifiedName"]
        .as_str()
        .expect("fqn")
        .to_owned();
    assert!(type_id.starts_with("2-"));
    assert_eq!(r.body["id"], type_id.trim_start_matches("2-"));
    assert!(fqn.starts_with('p') && fqn.ends_with("_cars"));
    assert_eq!(r.body["associations"][0]["toObjectTypeId"], "0-1");
    for path in [
        format!("/crm/v3/schemas/{type_id}"),
        format!("/crm-object-schemas/v3/schemas/{fqn}"),
    ] {
        let r = emu.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["name"], "cars");
    }
    assert_eq!(
        emu.post("/crm/v3/schemas", egg).await.status,
        StatusCode::CONFLICT
    );
    let r = emu.get("/crm/v3/schemas").await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    let r = emu
        .post(
            &format!("/crm/v3/objects/{type_id}"),
            json!({"properties": {"model": "T"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "required vin missing");
    let r = emu
        .post(
            "/crm/v3/objects/cars",
            json!({"properties": {"vin": "V1", "model": "T", "year": "1927"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap_or_default().to_owned();
    assert!(r.body["properties"]["hs_lastmodifieddate"].is_string());
    for ty in [type_id.as_str(), fqn.as_str(), "cars"] {
        assert_eq!(
            emu.get(&format!("/crm/v3/objects/{ty}/{id}")).await.status,
            StatusCode::OK,
            "{ty}"
        );
    }
    let r = emu.get("/crm/v3/objects/cars/V1?idProperty=vin").await;
    assert_eq!(r.body["id"], id.as_str());
    let r = emu
        .post("/crm/v3/objects/cars/search", json!({"query": "V1"}))
        .await;
    assert_eq!(r.body["total"], 1);
    let r = emu
        .patch(
            &format!("/crm-object-schemas/v3/schemas/{type_id}"),
            json!({"labels": {"plural": "Autos"}}),
        )
        .await;
    assert_eq!(r.body["labels"]["plural"], "Autos");
    let r = emu.delete(&format!("/crm/v3/schemas/{type_id}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "records still exist");
}
