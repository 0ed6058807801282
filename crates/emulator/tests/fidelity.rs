//! Regressions found by running HubSpot's official clients and Airbyte's `source-hubspot`
//! against the emulator (`scripts/fidelity/run`): each test is the request a client made that
//! the emulator answered differently from HubSpot.

use reqwest::StatusCode;

use crate::harness::Emu;

/// Airbyte's `discover` lists the legacy properties of deal splits and forms; HubSpot answers
/// both with 200 and a non-empty list (a 400 makes the connector give up; an empty array becomes
/// a nameless property it fails on), while unknown names stay a 400.
#[tokio::test]
async fn legacy_property_listing_answers_deal_splits_and_forms() {
    let emu = Emu::start().await;
    for scope in ["deal_split", "form"] {
        let r = emu.get(&format!("/properties/v2/{scope}/properties")).await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {}", r.body);
        let list = r.body.as_array().expect("bare array");
        assert!(!list.is_empty(), "{scope}: empty listing");
        assert!(
            list.iter().all(|p| p["name"].is_string()),
            "{scope}: {}",
            r.body
        );
        assert!(list.iter().any(|p| p["name"] == "hs_lastmodifieddate"));
    }

    let r = emu.get("/properties/v2/butterflies/properties").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "Unable to infer object type from: butterflies"
    );
}

/// The client scripts switch limits off the way the CLI flags do (`off`); a refused field must
/// not leave the other limits half-changed.
#[tokio::test]
async fn rate_limit_control_takes_off_for_every_limit() {
    let emu = Emu::start().await;
    let set = |body: serde_json::Value| {
        let url = format!("{}/_emulator/rate-limits", emu.base);
        let http = emu.http.clone();
        async move {
            crate::harness::reply(http.post(url).json(&body).send().await.expect("sent")).await
        }
    };
    let r = set(serde_json::json!({"burst": "5/1s", "daily": 1000, "search_per_second": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r =
        set(serde_json::json!({"burst": "off", "daily": "off", "search_per_second": "off"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        serde_json::json!({"burst": "off", "daily": null, "search_per_second": null})
    );
    let r = set(serde_json::json!({"burst": "5/1s", "search_per_second": "lots"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = emu.get("/_emulator/rate-limits").await;
    assert_eq!(
        r.body["burst"], "off",
        "a refused update changed the burst limit"
    );
}

/// Airbyte's incremental deals read asks for each deal's line items; with none linked HubSpot
/// answers 207 with one `NO_ASSOCIATIONS_FOUND`-style error per input, never a 400 on the type.
#[tokio::test]
async fn deal_line_item_association_batch_read_is_served() {
    let emu = Emu::seeded(5, 3).await;
    let deals = emu.get("/crm/v3/objects/deals?limit=2").await;
    let inputs: Vec<serde_json::Value> = deals.body["results"]
        .as_array()
        .expect("deals")
        .iter()
        .map(|d| serde_json::json!({"id": d["id"]}))
        .collect();
    assert_eq!(inputs.len(), 2, "{}", deals.body);
    for to in ["line_items", "line_item", "0-8"] {
        let r = emu
            .post(
                &format!("/crm/v4/associations/deal/{to}/batch/read"),
                serde_json::json!({ "inputs": inputs }),
            )
            .await;
        assert_eq!(r.status, StatusCode::MULTI_STATUS, "{to}: {}", r.body);
        assert_eq!(r.body["results"], serde_json::json!([]), "{to}");
        assert_eq!(r.body["numErrors"], 2, "{to}: {}", r.body);
    }
}
