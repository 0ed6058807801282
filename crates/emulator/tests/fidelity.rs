//! Regressions found by running HubSpot's official clients and Airbyte's `source-hubspot`
//! against the emulator (`scripts/fidelity/run`): each test is the request a client made that
//! the emulator answered differently from HubSpot.

use reqwest::StatusCode;

use crate::harness::Emu;

/// Airbyte's `discover` lists the legacy properties of deal splits and forms; HubSpot answers
/// both with 200 (a 400 makes the connector give up), while unknown names stay a 400.
#[tokio::test]
async fn legacy_property_listing_answers_deal_splits_and_forms() {
    let emu = Emu::start().await;
    let r = emu.get("/properties/v2/deal_split/properties").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let names: Vec<&str> = r
        .body
        .as_array()
        .expect("bare array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"hs_object_id"), "{names:?}");
    assert!(names.contains(&"hs_lastmodifieddate"), "{names:?}");

    let r = emu.get("/properties/v2/form/properties").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.is_array(), "{}", r.body);

    let r = emu.get("/properties/v2/butterflies/properties").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "Unable to infer object type from: butterflies"
    );
}
