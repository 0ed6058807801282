//! Fault injection and request statistics over HTTP (`/_emulator/faults`, `/_emulator/stats`,
//! `/_emulator/reset`).

use std::time::Duration;

use serde_json::json;

use crate::emulator_kit::{Calls, eventually, start_unlimited};
use crate::harness::Emu;

async fn set_faults(live: &Emu, body: serde_json::Value) -> serde_json::Value {
    let (status, answer) = live.json("POST", "/_emulator/faults", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn error_and_throttle_rates_inject_hubspot_shaped_answers() {
    let live = start_unlimited().await;
    set_faults(&live, json!({"error_rate": 1.0, "error_statuses": [503]})).await;
    let response = live.send("GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(response.status.as_u16(), 503);
    assert!(response.headers.contains_key("x-hubspot-correlation-id"));
    let body = response.body.clone();
    assert_eq!(body["status"], "error");

    set_faults(&live, json!({"rate_limit_rate": 1.0})).await;
    let (status, body) = live.json("GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(status, 429);
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(
        body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    // A throttled search is refused under the search policy.
    let (status, body) = live
        .json("POST", "/crm/v3/objects/contacts/search", Some(json!({})))
        .await;
    assert_eq!(status, 429);
    assert_eq!(body["message"], "You have reached your secondly limit.");

    // Control routes are never faulted.
    let (status, shown) = live.json("GET", "/_emulator/faults", None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["rate_limit_rate"], 1.0);

    let (status, _) = live.json("DELETE", "/_emulator/faults", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        200
    );
}

#[tokio::test]
async fn a_request_counted_storm_ends_and_paths_filter_faults() {
    let live = start_unlimited().await;
    let shown = set_faults(
        &live,
        json!({"storm": {"requests": 3}, "paths": ["/crm/v3/objects"]}),
    )
    .await;
    assert_eq!(shown["storm_state"]["active"], true);
    assert_eq!(
        live.json("GET", "/crm/v3/owners", None).await.0,
        200,
        "other paths pass"
    );
    let statuses = [
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
    ];
    assert_eq!(statuses, [429, 429, 429, 200]);
}

#[tokio::test]
async fn a_timed_storm_throttles_until_it_ends() {
    let live = start_unlimited().await;
    set_faults(&live, json!({"storm": {"seconds": 0.3}})).await;
    assert_eq!(
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        429
    );
    let ended = eventually(Duration::from_secs(5), || async {
        (live.json("GET", "/crm/v3/objects/contacts", None).await.0 == 200).then_some(())
    })
    .await;
    assert!(ended.is_some());
}

#[tokio::test]
async fn latency_is_counted_and_bad_settings_are_refused() {
    let live = start_unlimited().await;
    set_faults(&live, json!({"latency_ms": 5, "jitter_ms": 5, "seed": 3})).await;
    assert_eq!(
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        200
    );
    let (_, stats) = live.json("GET", "/_emulator/stats", None).await;
    assert_eq!(stats["faults"]["delayed"], 1);

    let (status, body) = live
        .json("POST", "/_emulator/faults", Some(json!({"error_rate": 2})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["category"], "VALIDATION_ERROR");
    let (status, _) = live
        .json("POST", "/_emulator/faults", Some(json!({"nonsense": 1})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn search_index_lag_hides_fresh_records_from_search() {
    let live = start_unlimited().await;
    set_faults(&live, json!({"search_lag_ms": 600_000})).await;
    live.create("contacts", json!({"email": "fresh@example.com"}))
        .await;
    let search = json!({"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "fresh@example.com"}]}]});
    let (status, body) = live
        .json(
            "POST",
            "/crm/v3/objects/contacts/search",
            Some(search.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0);
    set_faults(&live, json!({})).await;
    let (_, body) = live
        .json("POST", "/crm/v3/objects/contacts/search", Some(search))
        .await;
    assert_eq!(body["total"], 1);
}

#[tokio::test]
async fn stats_count_requests_by_route_and_reset_clears_them() {
    let live = start_unlimited().await;
    let id = live.create("contacts", json!({})).await;
    live.json("GET", &format!("/crm/v3/objects/contacts/{id}"), None)
        .await;
    live.json("GET", &format!("/crm/v3/objects/contacts/{id}"), None)
        .await;
    let (status, stats) = live.json("GET", "/_emulator/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        stats["requests_total"], 3,
        "control routes are not counted: {stats}"
    );
    assert_eq!(stats["rate_limited_total"], 0);
    assert_eq!(stats["by_route"]["GET /crm/v3/objects/contacts/{id}"], 2);
    assert_eq!(stats["by_route"]["POST /crm/v3/objects/contacts"], 1);
    assert_eq!(stats["by_status"]["200"], 2);

    let (status, _) = live.json("POST", "/_emulator/reset", None).await;
    assert_eq!(status, 200);
    let (_, stats) = live.json("GET", "/_emulator/stats", None).await;
    assert_eq!(stats["requests_total"], 0);
    assert_eq!(
        live.json("GET", &format!("/crm/v3/objects/contacts/{id}"), None)
            .await
            .0,
        200
    );

    let (status, _) = live
        .json("POST", "/_emulator/reset", Some(json!({"data": true})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        live.json("GET", &format!("/crm/v3/objects/contacts/{id}"), None)
            .await
            .0,
        404
    );
}
