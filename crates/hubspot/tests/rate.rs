//! The governor against the emulator's rate limits: zero 429s at a matching bound, 429s
//! retried rather than surfaced, HubSpot's stricter reported bound adopted.

use std::time::Duration;

use futures_util::future::join_all;
use hubsync_hubspot::{GetOptions, HubSpotClient, RateQuota};
use serde_json::json;

use crate::support::{Portal, client_config};

/// `n` reads spread over `tasks` concurrent workers.
async fn hammer(client: &HubSpotClient, id: u64, n: usize, tasks: usize) {
    let id = id.to_string();
    let workers = (0..tasks).map(|w| {
        let client = client.clone();
        let id = id.clone();
        async move {
            for _ in (w..n).step_by(tasks) {
                client
                    .get_object("contacts", &id, &GetOptions::default())
                    .await
                    .expect("read succeeds");
            }
        }
    });
    join_all(workers).await;
}

#[tokio::test]
async fn zero_429s_when_the_configured_burst_matches_the_portal() {
    let portal = Portal::rate_limited(20, Duration::from_secs(2), |config| {
        config.burst = "20/2s".parse::<RateQuota>().expect("quota");
    })
    .await;
    let id = portal.contacts("rate", 1).await[0];
    hammer(&portal.client, id, 60, 8).await;
    let stats = portal.client.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(stats.retries, 0);
    assert_eq!(stats.requests, 61);
    assert!(stats.remaining.is_some(), "headers were read");
    let emulator = portal.control_get("/_emulator/stats").await;
    assert_eq!(emulator["rate_limited_total"], 0, "{emulator}");
    assert_eq!(emulator["requests_total"], 61, "{emulator}");
}

#[tokio::test]
async fn budget_spent_by_another_app_slows_this_client_down() {
    // Private-app limits are shared by the portal: another app spends half the window first.
    let portal = Portal::rate_limited(30, Duration::from_secs(3), |config| {
        config.burst = "30/3s".parse::<RateQuota>().expect("quota");
    })
    .await;
    // The record is made through the control API, which spends no budget.
    let created = portal
        .control(
            "/_emulator/objects/contacts",
            json!({ "properties": { "email": "shared@example.com" } }),
        )
        .await;
    let id: u64 = created["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let other = reqwest::Client::new();
    let url = format!("{}/crm/v3/objects/contacts/{id}", portal.handle.base_url());
    for _ in 0..15 {
        let answer = other
            .get(&url)
            .bearer_auth("other-app")
            .send()
            .await
            .expect("other app");
        assert!(answer.status().is_success());
    }
    let before = portal.client.stats();
    for _ in 0..45 {
        portal
            .client
            .get_object("contacts", &id.to_string(), &GetOptions::default())
            .await
            .expect("read");
    }
    let stats = portal.client.stats();
    assert_eq!(stats.rate_limited - before.rate_limited, 0, "{stats:?}");
    let emulator = portal.control_get("/_emulator/stats").await;
    assert_eq!(emulator["rate_limited_total"], 0, "{emulator}");
}

#[tokio::test]
async fn a_stricter_portal_limit_is_adopted_and_its_429s_are_retried() {
    // The portal allows 5 per second; the client was told 100 per 10 s.
    let portal = Portal::rate_limited(5, Duration::from_secs(1), |config| {
        config.burst = RateQuota::default();
        config.max_retries = 10;
    })
    .await;
    let id = portal.contacts("tight", 1).await[0];
    hammer(&portal.client, id, 30, 6).await;
    let stats = portal.client.stats();
    assert_eq!(stats.failures, 0, "every 429 was retried: {stats:?}");
    assert_eq!(stats.requests, 31 + stats.rate_limited);
    let emulator = portal.control_get("/_emulator/stats").await;
    assert_eq!(
        emulator["rate_limited_total"], stats.rate_limited,
        "{emulator}"
    );
    assert_eq!(
        portal.client.rate_bound().requests.get(),
        5,
        "adopted the reported bound"
    );
    assert_eq!(portal.client.rate_bound().per, Duration::from_secs(1));
}

#[tokio::test]
async fn injected_429_storm_is_retried_not_surfaced() {
    let portal = Portal::start().await;
    let id = portal.contacts("storm", 1).await[0];
    portal
        .control("/_emulator/faults", json!({ "storm": { "requests": 3 } }))
        .await;
    let record = portal
        .client
        .get_object("contacts", &id.to_string(), &GetOptions::default())
        .await
        .expect("succeeds after the storm");
    assert_eq!(record.id, id);
    let stats = portal.client.stats();
    assert_eq!(stats.rate_limited, 3);
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.failures, 0);
}

#[tokio::test]
async fn server_errors_are_retried_and_permanent_errors_are_not() {
    let portal = Portal::start().await;
    let id = portal.contacts("errs", 1).await[0];
    portal
        .control(
            "/_emulator/faults",
            json!({ "error_rate": 1.0, "error_statuses": [503] }),
        )
        .await;
    let mut config = client_config(&portal.handle);
    config.max_retries = 2;
    let client = HubSpotClient::new(config).expect("client");
    let err = client
        .get_object("contacts", &id.to_string(), &GetOptions::default())
        .await
        .expect_err("always 503");
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    assert_eq!(client.stats().requests, 3, "first try + 2 retries");

    portal.control("/_emulator/faults", json!({})).await;
    let err = client
        .get_object("contacts", "424242424", &GetOptions::default())
        .await
        .expect_err("404");
    assert!(err.is_not_found());
    assert_eq!(client.stats().requests, 4, "404 not retried");
}

/// Measures throughput against the emulator at HubSpot's default 100/10 s for ~40 s and
/// prints it as a share of the bound. Not a pass/fail test (no wall-clock assertions); run
/// with `cargo test -p hubsync-hubspot --test main -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "takes ~40 s; a measurement, not a check"]
async fn measure_throughput_at_the_default_limit() {
    let portal = Portal::rate_limited(100, Duration::from_secs(10), |config| {
        config.burst = RateQuota::default();
    })
    .await;
    let id = portal.contacts("measure", 1).await[0];
    let started = std::time::Instant::now();
    hammer(&portal.client, id, 400, 8).await;
    let elapsed = started.elapsed().as_secs_f64();
    let stats = portal.client.stats();
    // Sustained bound: 10 requests per second (a cold bucket also allows 100 at once, which
    // the pacer deliberately does not spend: see rate_limit's module docs).
    println!(
        "400 reads in {elapsed:.2} s = {:.1}% of 10/s; requests {}; 429s {}",
        400.0 / (elapsed * 10.0) * 100.0,
        stats.requests,
        stats.rate_limited
    );
}
