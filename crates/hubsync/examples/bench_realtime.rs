//! Benchmark of `hubsync run` in real time (figures in docs/benchmarks.md, "Real time").
//!
//! ```text
//! cargo build --release -p hubsync
//! cargo run --release -p hubsync --example bench_realtime -- [--samples 300] [--load-secs 300] [--rate 200]
//! ```
//!
//! Starts an in-process emulator (no rate limit), a fresh database of the test kit and the
//! release daemon (`target/release/hubsync run`, or `$HUBSYNC_BIN`) for two-way contacts,
//! then measures:
//!
//! 1. **HubSpot edit → row in PostgreSQL, from the webhook's arrival**: the record is edited
//!    in the emulator (webhooks off), then the bench delivers the signed webhook itself and
//!    polls the row every 0.5 ms; the clock starts just before the POST. The daemon's own
//!    arrival → commit summary (`hubsync_webhook_apply_seconds`) is printed too.
//! 2. **PostgreSQL commit → HubSpot write accepted**: an `UPDATE` commits (autocommit) and the
//!    clock stops when the emulator applies the write (its in-process event bus).
//! 3. **Sustained load**: `--rate` webhook events per second (in deliveries of 20, each event
//!    a real edit made just before) for `--load-secs`, sampling the daemon's RSS and the inbox
//!    backlog every 10 s.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use hubsync_emulator::{EmulatorConfig, EventKind, SeedConfig};
use hubsync_hubspot::webhook::{SIGNATURE_V3_HEADER, SignatureVersion, TIMESTAMP_HEADER, sign};
use hubsync_store::TestDb;
use serde_json::json;

const SECRET: &str = "bench-secret";
const CONTACTS: usize = 2_000;

struct Args {
    samples: usize,
    load_secs: u64,
    rate: u64,
}

fn args() -> Args {
    let mut a = Args {
        samples: 300,
        load_secs: 300,
        rate: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match flag.as_str() {
            "--samples" => a.samples = value as usize,
            "--load-secs" => a.load_secs = value,
            "--rate" => a.rate = value.max(1),
            other => eprintln!("ignoring {other}"),
        }
    }
    a
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    // HubSpot allows 5 searches/s; hubsync's default budget is 4. `BENCH_SEARCH_RATE` raises
    // it (the emulator has no search limit here) to show what the search pacing costs.
    let search_rate: u32 = std::env::var("BENCH_SEARCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let bin = std::env::var("HUBSYNC_BIN").unwrap_or_else(|_| "target/release/hubsync".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let emulator = hubsync_emulator::spawn(EmulatorConfig {
        seed: SeedConfig {
            contacts: CONTACTS,
            companies: 0,
            deals: 0,
            tickets: 0,
            value: 9,
        },
        rate_limit: None,
        search_per_second: None,
        daily_limit: None,
        webhook_secret: Some(SECRET.into()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("secret");
    let config = dir.path().join("hubsync.toml");
    std::fs::write(
        &config,
        format!(
            "[hubspot]\nbase_url = \"{}\"\ntoken = {{ env = \"BENCH_TOKEN\" }}\nrate_limit = \"off\"\n\
             search_rate_limit = {}\nwebhook_secret = {{ file = {:?} }}\n[postgres]\nurl = {{ env = \"BENCH_DATABASE_URL\" }}\n\
             [server]\nlisten = \"127.0.0.1:{port}\"\nreconcile_every = \"1h\"\n\
             [[object]]\nname = \"contacts\"\ndirection = \"two-way\"\n\
             properties = [\"email\", \"firstname\", \"lastname\", \"phone\"]\n",
            emulator.base_url(),
            search_rate,
            secret.display().to_string()
        ),
    )
    .expect("config");
    let child = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("BENCH_TOKEN", "pat-bench")
        .env("BENCH_DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin}: {e} (build with cargo build --release -p hubsync)")
        });
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let http = reqwest::Client::new();
    let conn = db.store().client().await.expect("conn");
    let started = Instant::now();
    loop {
        let n: i64 = conn
            .query_one("SELECT count(*) FROM hubspot.contacts", &[])
            .await
            .map_or(0, |r| r.get(0));
        if n == CONTACTS as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "backfill did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "backfill of {CONTACTS} contacts visible after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ids: Vec<i64> = conn
        .query("SELECT hs_object_id FROM hubspot.contacts ORDER BY 1", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let uri = format!("http://127.0.0.1:{port}/webhooks/hubspot");
    let mut event_id = 1_000_000_u64;
    let deliver = |events: Vec<serde_json::Value>| {
        let body = serde_json::to_vec(&events).expect("json");
        let ts = chrono::Utc::now().timestamp_millis().to_string();
        let sig = sign(SignatureVersion::V3, SECRET, "POST", &uri, &body, &ts);
        http.post(&uri)
            .header("content-type", "application/json")
            .header(SIGNATURE_V3_HEADER, sig)
            .header(TIMESTAMP_HEADER, ts)
            .body(body)
            .send()
    };
    let edit = |id: i64, property: &'static str, value: String| {
        http.post(format!(
            "{}/_emulator/objects/contacts/{id}",
            emulator.base_url()
        ))
        .json(&json!({"properties": {property: value}}))
        .send()
    };
    let mut event = |id: i64, property: &str| {
        event_id += 1;
        json!({"eventId": event_id, "subscriptionId": 1, "portalId": 1, "appId": 1,
               "occurredAt": chrono::Utc::now().timestamp_millis(),
               "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
               "objectId": id, "propertyName": property, "changeSource": "CRM_UI"})
    };

    // 1. HubSpot edit -> PostgreSQL, from the webhook's arrival.
    let mut inbound = Vec::new();
    for i in 0..args.samples {
        let id = ids[i % ids.len()];
        let value = format!("in{i}");
        edit(id, "firstname", value.clone()).await.expect("edit");
        let e = event(id, "firstname");
        let t0 = Instant::now();
        let status = deliver(vec![e]).await.expect("deliver").status();
        assert_eq!(status.as_u16(), 204);
        loop {
            let v: Option<String> = conn
                .query_one(
                    "SELECT firstname FROM hubspot.contacts WHERE hs_object_id = $1",
                    &[&id],
                )
                .await
                .expect("poll")
                .get(0);
            if v.as_deref() == Some(value.as_str()) {
                break;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        inbound.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    summary("webhook arrival -> row visible in PostgreSQL", inbound);
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("hubsync_webhook_apply_seconds{"))
    {
        println!("  daemon {line}");
    }

    // 2. PostgreSQL commit -> HubSpot write accepted.
    let mut events = emulator.events().subscribe();
    let mut outbound = Vec::new();
    for i in 0..args.samples {
        let id = ids[(i + 7) % ids.len()];
        let value = format!("out{i}");
        conn.execute(
            "UPDATE hubspot.contacts SET lastname = $1 WHERE hs_object_id = $2",
            &[&value, &id],
        )
        .await
        .expect("update");
        let t0 = Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Ok(e)) => {
                    if let EventKind::PropertyChange {
                        property_name,
                        property_value,
                    } = &e.kind
                        && property_name == "lastname"
                        && *property_value == value
                    {
                        break;
                    }
                }
                Ok(Err(_)) => {}
                Err(_) => panic!("write {i} never reached HubSpot"),
            }
        }
        outbound.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    summary("PostgreSQL commit -> HubSpot write accepted", outbound);
    drop(events);

    // 3. Sustained load.
    if args.load_secs == 0 {
        return;
    }
    println!(
        "load: {} events/s for {} s (deliveries of 20)",
        args.rate, args.load_secs
    );
    let per_delivery = 20_u64;
    let interval = Duration::from_secs_f64(per_delivery as f64 / args.rate as f64);
    let load_start = Instant::now();
    let mut next_sample = Duration::ZERO;
    let mut sent = 0_u64;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut max_backlog = 0_i64;
    let mut i = 0_usize;
    while load_start.elapsed() < Duration::from_secs(args.load_secs) {
        tick.tick().await;
        let mut batch = Vec::with_capacity(per_delivery as usize);
        for _ in 0..per_delivery {
            let id = ids[(i * 13) % ids.len()];
            i += 1;
            edit(id, "phone", format!("+1555{i:07}"))
                .await
                .expect("edit");
            batch.push(event(id, "phone"));
        }
        let status = deliver(batch).await.expect("deliver").status();
        assert_eq!(status.as_u16(), 204);
        sent += per_delivery;
        if load_start.elapsed() >= next_sample {
            let backlog: i64 = conn
                .query_one(
                    "SELECT count(*) FROM hubsync.inbox WHERE processed_at IS NULL",
                    &[],
                )
                .await
                .map_or(-1, |r| r.get(0));
            max_backlog = max_backlog.max(backlog);
            println!(
                "  t={:>4.0}s sent={sent:>6} rate={:.0}/s backlog={backlog} rss={:.1} MiB",
                load_start.elapsed().as_secs_f64(),
                sent as f64 / load_start.elapsed().as_secs_f64().max(0.001),
                rss_mib(pid)
            );
            next_sample += Duration::from_secs(10);
        }
    }
    let drained = Instant::now();
    loop {
        let backlog: i64 = conn
            .query_one(
                "SELECT count(*) FROM hubsync.inbox WHERE processed_at IS NULL",
                &[],
            )
            .await
            .map_or(-1, |r| r.get(0));
        if backlog == 0 || drained.elapsed() > Duration::from_secs(60) {
            println!(
                "load done: sent {sent} events in {:.0} s; max sampled backlog {max_backlog}; backlog 0 after {:.2} s more; rss {:.1} MiB",
                load_start.elapsed().as_secs_f64(),
                drained.elapsed().as_secs_f64(),
                rss_mib(pid)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("hubsync_webhook_apply_seconds{"))
    {
        println!("  daemon {line}");
    }
    drop(daemon);
}
