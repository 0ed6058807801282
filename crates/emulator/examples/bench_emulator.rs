//! Measures the emulator against the performance targets (docs/benchmarks.md, "Emulator"):
//! seeding 1,000,000 contacts (time and resident memory), a 100-record list page with 20
//! properties, and a `lastmodifieddate` range search. Run with
//! `cargo run --release -p hubsync-emulator --example bench_emulator [CONTACTS]`.

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request};
use http_body_util::BodyExt as _;
use hubsync_emulator::{AppState, EmulatorConfig, SeedConfig};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Resident and peak resident memory from /proc (Linux), in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    format!(
        "median {:.2} ms, p90 {:.2} ms, max {:.2} ms (n={})",
        at(0.5),
        at(0.9),
        at(1.0),
        samples.len()
    )
}

/// Times `n` in-process requests (no socket: router work and serialisation only).
async fn in_process(
    app: &axum::Router,
    n: usize,
    make: impl Fn(usize) -> Request<Body>,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let response = app.clone().oneshot(make(i)).await.expect("served");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        out.push(t.elapsed());
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    out
}

fn search_body(i: usize) -> Value {
    let day = 86_400_000i64;
    let lo = 1_700_000_000_000i64 + (i as i64 % 30) * day;
    json!({
        "filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": lo.to_string()},
            {"propertyName": "lastmodifieddate", "operator": "LT", "value": (lo + 30 * day).to_string()}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "lastmodifieddate"], "limit": 200, "after": "0"})
}

const PROPS: [&str; 20] = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "company",
    "jobtitle",
    "city",
    "country",
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
    "associatedcompanyid",
    "hs_email_optout",
    "website",
    "address",
    "state",
    "zip",
    "mobilephone",
    "createdate",
    "lastmodifieddate",
];

#[tokio::main]
async fn main() {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let contacts: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let config = EmulatorConfig {
        rate_limit: None,
        daily_limit: None,
        search_per_second: None,
        seed: SeedConfig {
            contacts,
            companies: 10_000,
            deals: 0,
            tickets: 0,
            value: 1,
        },
        ..EmulatorConfig::default()
    };
    let (rss0, _) = memory_mib();
    let started = Instant::now();
    let state = AppState::new(config);
    let seeding = started.elapsed();
    let (rss, peak) = memory_mib();
    println!(
        "seed: {contacts} contacts + 10000 companies (with associations) in {:.2} s",
        seeding.as_secs_f64()
    );
    println!("memory: RSS {rss:.0} MiB (before seeding {rss0:.0} MiB), peak {peak:.0} MiB");
    let app = hubsync_emulator::router(state);

    // Pages spread over the whole id range (ids start at 5,000,000,001 after the companies).
    let first = 5_000_000_001u64 + 10_000;
    let list_path = |i: usize| {
        let after = first + (i as u64 * 3_331) % contacts.max(1) as u64;
        format!(
            "/crm/v3/objects/contacts?limit=100&after={after}&properties={}",
            PROPS.join(",")
        )
    };
    let list = in_process(&app, 300, |i| {
        Request::get(list_path(i))
            .header("authorization", "Bearer bench")
            .body(Body::empty())
            .expect("request")
    })
    .await;
    println!(
        "list page, 100 records x 20 properties, in process: {}",
        summary(list)
    );
    let search = in_process(&app, 120, |i| {
        Request::post("/crm/v3/objects/contacts/search")
            .header("authorization", "Bearer bench")
            .header("content-type", "application/json")
            .body(Body::from(search_body(i).to_string()))
            .expect("request")
    })
    .await;
    println!(
        "search, lastmodifieddate 30-day range sorted, 200 per page, in process: {}",
        summary(search)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(axum::serve(listener, app.clone()).into_future());
    let http = reqwest::Client::new();
    let mut list = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        let body: Value = http
            .get(format!("{base}{}", list_path(i)))
            .bearer_auth("bench")
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        list.push(t.elapsed());
        assert_eq!(body["results"].as_array().map(Vec::len), Some(100));
    }
    println!(
        "list page over HTTP (client parse included): {}",
        summary(list)
    );
    let mut search = Vec::new();
    let mut totals = 0u64;
    for i in 0..120 {
        let t = Instant::now();
        let reply: Value = http
            .post(format!("{base}/crm/v3/objects/contacts/search"))
            .bearer_auth("bench")
            .json(&search_body(i))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("json");
        search.push(t.elapsed());
        totals += reply["total"].as_u64().unwrap_or(0);
    }
    println!(
        "search over HTTP (~{} matches per query): {}",
        totals / 120,
        summary(search)
    );
    server.abort();
}
