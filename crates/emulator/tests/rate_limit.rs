//! HubSpot's rate limits over HTTP (hubspot-api.md §3, §16.6–7): burst per 10 s with
//! `X-HubSpot-RateLimit-*` headers, the search per-second limit, the daily limit, exact 429
//! bodies, exemptions, and runtime changes.

use std::time::Duration;

use hubsync_emulator::{EmulatorConfig, RateLimit};
use serde_json::json;

use crate::emulator_kit::{Calls, header, start};
use crate::harness::Emu;

async fn limited(burst: u32, daily: Option<u64>, search: Option<u32>) -> Emu {
    start(EmulatorConfig {
        rate_limit: Some(RateLimit {
            requests: burst,
            per: Duration::from_secs(10),
        }),
        daily_limit: daily,
        search_per_second: search,
        ..EmulatorConfig::default()
    })
    .await
}

#[tokio::test]
async fn burst_limit_sends_headers_then_the_exact_429_body() {
    let live = limited(3, Some(1000), Some(50)).await;
    for remaining in ["2", "1", "0"] {
        let response = live.send("GET", "/crm/v3/objects/contacts", None).await;
        assert_eq!(response.status.as_u16(), 200);
        assert_eq!(
            header(&response, "x-hubspot-ratelimit-max").as_deref(),
            Some("3")
        );
        assert_eq!(
            header(&response, "x-hubspot-ratelimit-remaining").as_deref(),
            Some(remaining)
        );
        assert_eq!(
            header(&response, "x-hubspot-ratelimit-interval-milliseconds").as_deref(),
            Some("10000")
        );
        assert!(header(&response, "x-hubspot-ratelimit-daily").is_some());
        assert!(header(&response, "x-hubspot-ratelimit-daily-remaining").is_some());
        assert!(header(&response, "x-hubspot-ratelimit-secondly").is_some());
        assert!(header(&response, "x-hubspot-ratelimit-secondly-remaining").is_some());
    }
    let response = live.send("GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(response.status.as_u16(), 429);
    let correlation = header(&response, "x-hubspot-correlation-id").unwrap_or_default();
    let body = response.body.clone();
    assert_eq!(body["status"], "error");
    assert_eq!(
        body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert!(body["groupName"].is_string());
    assert_eq!(body["correlationId"], json!(correlation));

    // Control routes are exempt from limits.
    let (status, stats) = live.json("GET", "/_emulator/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["rate_limited_total"], 1);
    assert_eq!(stats["rate_limited_by_policy"]["TEN_SECONDLY_ROLLING"], 1);
}

#[tokio::test]
async fn search_has_its_own_per_second_limit_and_no_rate_limit_headers() {
    let live = limited(100, None, Some(2)).await;
    let search = json!({"limit": 1});
    for _ in 0..2 {
        let response = live
            .send(
                "POST",
                "/crm/v3/objects/contacts/search",
                Some(search.clone()),
            )
            .await;
        assert_eq!(response.status.as_u16(), 200);
        assert!(header(&response, "x-hubspot-ratelimit-max").is_none());
        assert!(header(&response, "x-hubspot-ratelimit-remaining").is_none());
    }
    let (status, body) = live
        .json("POST", "/crm/v3/objects/contacts/search", Some(search))
        .await;
    assert_eq!(status, 429);
    assert_eq!(body["message"], "You have reached your secondly limit.");
    assert_eq!(body["policyName"], "SECONDLY");
    assert_eq!(body["errorType"], "RATE_LIMIT");
    // The burst bucket is untouched by search.
    let response = live.send("GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(
        header(&response, "x-hubspot-ratelimit-remaining").as_deref(),
        Some("99")
    );
}

#[tokio::test]
async fn association_batch_endpoints_are_exempt_from_the_burst_limit() {
    let live = limited(1, None, None).await;
    assert_eq!(
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        200
    );
    assert_eq!(
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        429
    );
    let input = json!({"inputs": [{"id": "1"}]});
    for _ in 0..3 {
        let (status, _) = live
            .json(
                "POST",
                "/crm/v4/associations/contacts/companies/batch/read",
                Some(input.clone()),
            )
            .await;
        assert_eq!(status, 207);
    }
}

#[tokio::test]
async fn daily_limit_refuses_with_the_daily_policy() {
    let live = limited(100, Some(2), None).await;
    assert_eq!(
        live.json("GET", "/crm/v3/objects/contacts", None).await.0,
        200
    );
    let response = live.send("GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(
        header(&response, "x-hubspot-ratelimit-daily-remaining").as_deref(),
        Some("0")
    );
    let (status, body) = live.json("GET", "/crm/v3/objects/contacts", None).await;
    assert_eq!(status, 429);
    assert_eq!(body["policyName"], "DAILY");
    assert_eq!(body["message"], "You have reached your daily limit.");
}

#[tokio::test]
async fn limits_change_at_runtime_and_off_disables_them() {
    let live = limited(1, None, None).await;
    let (status, body) = live
        .json(
            "POST",
            "/_emulator/rate-limits",
            Some(json!({"burst": "off"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["burst"], "off");
    for _ in 0..5 {
        let response = live.send("GET", "/crm/v3/objects/contacts", None).await;
        assert_eq!(response.status.as_u16(), 200);
        assert!(header(&response, "x-hubspot-ratelimit-max").is_none());
    }
    let (status, body) = live
        .json(
            "POST",
            "/_emulator/rate-limits",
            Some(json!({"burst": "2/10s"})),
        )
        .await;
    assert_eq!((status, body["burst"].clone()), (200, json!("2/10s")));
    let (status, _) = live
        .json(
            "POST",
            "/_emulator/rate-limits",
            Some(json!({"burst": "fast"})),
        )
        .await;
    assert_eq!(status, 400);
}
