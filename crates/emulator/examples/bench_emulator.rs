//! Measures the emulator against the performance targets (docs/benchmarks.md, "Emulator"):
//! seeding 1,000,000 contacts (time and resident memory), a 100-record list page with 20
//! properties, and a `lastmodifieddate` range search. Run with
//! `cargo run --release -p hubsync-emulator --example bench_emulator [CONTACTS]`.

use std::time::{Duration, Instant};

use hubsync_emulator::{EmulatorConfig, SeedConfig};
use serde_json::{Value, json};

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
    let handle = hubsync_emulator::spawn(config)
        .await
        .expect("emulator starts");
    let seeding = started.elapsed();
    let (rss, peak) = memory_mib();
    println!(
        "seed: {contacts} contacts + 10000 companies (with associations) in {:.2} s",
        seeding.as_secs_f64()
    );
    println!(
        "memory: RSS {:.0} MiB (before seeding {:.0} MiB), peak {:.0} MiB",
        rss, rss0, peak
    );

    let http = reqwest::Client::new();
    let base = handle.base_url();
    let props = [
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
    let list_url = format!(
        "{base}/crm/v3/objects/contacts?limit=100&properties={}",
        props.join(",")
    );
    let mut list = Vec::new();
    let mut after = String::new();
    for i in 0..300 {
        let url = if after.is_empty() {
            list_url.clone()
        } else {
            format!("{list_url}&after={after}")
        };
        let t = Instant::now();
        let body: Value = http
            .get(&url)
            .bearer_auth("bench")
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        if i >= 20 {
            list.push(t.elapsed());
        }
        assert_eq!(body["results"].as_array().map(Vec::len), Some(100));
        after = body["paging"]["next"]["after"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    println!(
        "list page (100 records x 20 properties, HTTP round trip): {}",
        summary(list)
    );

    let day = 86_400_000i64;
    let start = 1_700_000_000_000i64;
    let mut search = Vec::new();
    let mut totals = Vec::new();
    for i in 0..120i64 {
        let lo = start + (i % 30) * day;
        let body = json!({
            "filterGroups": [{"filters": [
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": lo.to_string()},
                {"propertyName": "lastmodifieddate", "operator": "LT", "value": (lo + 30 * day).to_string()}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email", "lastmodifieddate"], "limit": 200, "after": "0"});
        let t = Instant::now();
        let reply: Value = http
            .post(format!("{base}/crm/v3/objects/contacts/search"))
            .bearer_auth("bench")
            .json(&body)
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("json");
        if i >= 20 {
            search.push(t.elapsed());
        }
        totals.push(reply["total"].as_u64().unwrap_or(0));
    }
    let avg_total = totals.iter().sum::<u64>() / totals.len() as u64;
    println!(
        "search (lastmodifieddate 30-day range, sorted, 200 per page, ~{avg_total} matches, HTTP round trip): {}",
        summary(search)
    );
    handle.shutdown().await;
}
