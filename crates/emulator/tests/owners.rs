//! Owners over HTTP (`/crm/v3/owners`, hubspot-api.md §13).

use hubsync_emulator::SeedConfig;
use serde_json::json;

use crate::emulator_kit::{Calls, start};
use crate::harness::quiet_config;

#[tokio::test]
async fn seeded_owners_list_page_and_read() {
    let config = quiet_config();
    let seed = SeedConfig {
        contacts: 1,
        companies: 1,
        deals: 0,
        tickets: 0,
        value: 3,
    };
    let live = start(hubsync_emulator::EmulatorConfig { seed, ..config }).await;
    let (status, body) = live.json("GET", "/crm/v3/owners?limit=2", None).await;
    assert_eq!(status, 200, "{body}");
    let first = body["results"][0].clone();
    assert!(
        first["id"].is_string() && first["userId"].is_u64(),
        "{first}"
    );
    assert_eq!(first["type"], "PERSON");
    assert_eq!(first["archived"], false);
    if let Some(after) = body["paging"]["next"]["after"].as_str() {
        let (status, next) = live
            .json(
                "GET",
                &format!("/crm/v3/owners?limit=2&after={after}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_ne!(next["results"][0]["id"], first["id"]);
    }
    let id = first["id"].as_str().unwrap_or_default();
    let (status, one) = live
        .json("GET", &format!("/crm/v3/owners/{id}"), None)
        .await;
    assert_eq!(
        (status, one["email"].clone()),
        (200, first["email"].clone())
    );
    let user = first["userId"].as_u64().unwrap_or_default();
    let (status, by_user) = live
        .json(
            "GET",
            &format!("/crm/v3/owners/{user}?idProperty=userId"),
            None,
        )
        .await;
    assert_eq!((status, by_user["id"].clone()), (200, json!(id)));
    let email = first["email"].as_str().unwrap_or_default();
    let (_, filtered) = live
        .json("GET", &format!("/crm/v3/owners?email={email}"), None)
        .await;
    assert_eq!(filtered["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(live.json("GET", "/crm/v3/owners/1", None).await.0, 404);
}
