//! Benchmark of the HubSpot → PostgreSQL pipelines against an in-process emulator and a
//! fresh database of the test kit (see docs/benchmarks.md for the figures).
//!
//! ```text
//! cargo run --release -p hubsync-engine --example bench_backfill -- \
//!     --contacts 100000 --companies 20000 --deals 50000 --rate-limit 100/10s --changes 1000
//! ```
//!
//! Prints the backfill's wall time, records per second, HubSpot calls per endpoint against
//! the minimum the endpoints allow, 429s, and (with `--changes N`) the calls of the
//! incremental pass after N contacts changed.

use std::{
    collections::BTreeMap,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use hubsync_emulator::{
    AppState, EmulatorConfig, ObjectTypeId, RateLimit, SeedConfig, records::now_millis,
};
use hubsync_engine::hs_to_pg::{HsToPg, NoProgress, PassOptions};
use hubsync_engine::settings::{ObjectSettings, SyncSettings};
use hubsync_hubspot::{CallStats, HubSpotClient, HubSpotClientConfig, RateQuota};
use hubsync_store::TestDb;

struct Args {
    contacts: usize,
    companies: usize,
    deals: usize,
    rate_limit: Option<(u32, Duration)>,
    changes: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        contacts: 10_000,
        companies: 2_000,
        deals: 5_000,
        rate_limit: None,
        changes: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<usize>().unwrap_or(0);
        match flag.as_str() {
            "--contacts" => args.contacts = n(),
            "--companies" => args.companies = n(),
            "--deals" => args.deals = n(),
            "--changes" => args.changes = n(),
            "--rate-limit" if value != "off" => {
                let (count, per) = value.split_once('/').unwrap_or(("100", "10s"));
                let secs: u64 = per.trim_end_matches('s').parse().unwrap_or(10);
                args.rate_limit = Some((count.parse().unwrap_or(100), Duration::from_secs(secs)));
            }
            _ => {}
        }
    }
    args
}

fn diff(after: &CallStats, before: &CallStats) -> BTreeMap<&'static str, u64> {
    after
        .by_endpoint
        .iter()
        .map(|(k, v)| (*k, v - before.by_endpoint.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let seed = SeedConfig {
        contacts: args.contacts,
        companies: args.companies,
        deals: args.deals,
        tickets: 0,
        value: 11,
    };
    let config = EmulatorConfig {
        seed,
        rate_limit: args
            .rate_limit
            .map(|(requests, per)| RateLimit { requests, per }),
        search_per_second: args.rate_limit.map(|_| 5),
        daily_limit: None,
        ..EmulatorConfig::default()
    };
    let seeding = Instant::now();
    let state = AppState::new(config);
    println!(
        "seeded the emulator in {:.1}s",
        seeding.elapsed().as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = hubsync_emulator::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = HubSpotClientConfig::new(
        url::Url::parse(&base).expect("url"),
        "pat-bench".to_owned().into(),
    );
    let unlimited = NonZeroU32::new(1_000_000).expect("n");
    cfg.burst = match args.rate_limit {
        Some((n, per)) => RateQuota {
            requests: NonZeroU32::new(n).expect("n"),
            per,
        },
        None => RateQuota {
            requests: unlimited,
            per: Duration::from_secs(1),
        },
    };
    if args.rate_limit.is_none() {
        cfg.search_per_second = unlimited;
    }
    let client = HubSpotClient::new(cfg).expect("client");
    let db = TestDb::new().await;
    let objects: Vec<ObjectSettings> = ["contacts", "companies", "deals"]
        .iter()
        .map(|name| {
            let mut o = ObjectSettings::new(name);
            o.lookback = Duration::from_secs(5);
            o.clock_skew = Duration::ZERO;
            o
        })
        .collect();
    let pipelines = HsToPg::new(
        client.clone(),
        db.store().clone(),
        SyncSettings::new("hubspot", objects),
    );

    let before = client.stats();
    let started = Instant::now();
    let report = pipelines
        .run_once(&PassOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    let wall = started.elapsed().as_secs_f64();
    assert!(report.is_success(), "{report:?}");
    let after = client.stats();
    let records = (args.contacts + args.companies + args.deals) as f64;
    let pages = |n: usize| n.div_ceil(100) as u64;
    let reads = |n: usize| n.div_ceil(1_000) as u64;
    let min_burst = pages(args.contacts) + pages(args.companies) + pages(args.deals) + 3;
    let min_assoc = reads(args.contacts) + 2 * reads(args.deals);
    let calls = diff(&after, &before);
    let burst_calls: u64 = calls
        .iter()
        .filter(|(k, _)| !k.starts_with("associations") && **k != "search")
        .map(|(_, v)| v)
        .sum();
    let total: u64 = calls.values().sum();
    println!(
        "backfill: {records} records in {wall:.1}s = {:.0} records/s",
        records / wall
    );
    println!("calls: {total} total {calls:?}");
    println!(
        "minimum: {} ({min_burst} list+properties, {min_assoc} association reads)",
        min_burst + min_assoc
    );
    println!(
        "429s seen by the client: {}",
        after.rate_limited - before.rate_limited
    );
    if let Some((n, per)) = args.rate_limit {
        let bound = burst_calls as f64 * per.as_secs_f64() / f64::from(n);
        println!(
            "rate-limit bound for {burst_calls} burst calls: {bound:.1}s; achieved {:.1}% of the bound's throughput",
            100.0 * bound / wall
        );
    }
    let counts: i64 = db
        .store()
        .client()
        .await
        .expect("conn")
        .query_one(
            "SELECT (SELECT count(*) FROM hubspot.contacts) + (SELECT count(*) FROM hubspot.companies)
                  + (SELECT count(*) FROM hubspot.deals)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    println!("rows in PostgreSQL: {counts}");

    if args.changes > 0 {
        let stamp = now_millis();
        {
            let mut crm = state.crm.write().expect("lock");
            let table = crm.table_mut(ObjectTypeId::CONTACT).expect("contacts");
            let jobtitle = table.props.id("jobtitle").expect("jobtitle");
            let changed: Vec<_> = table
                .store
                .live_records()
                .take(args.changes)
                .cloned()
                .collect();
            for (i, mut record) in changed.into_iter().enumerate() {
                record.values = record
                    .values
                    .with_changes(&[(jobtitle, format!("Changed {i}"))]);
                record.modified = stamp + i as i64 % 50;
                table.store.put(record);
            }
        }
        while now_millis() <= stamp + 50 {
            tokio::task::yield_now().await;
        }
        let before = client.stats();
        let report = pipelines
            .run_once(&PassOptions::default(), &NoProgress)
            .await
            .expect("incremental");
        assert!(report.is_success(), "{report:?}");
        let calls = diff(&client.stats(), &before);
        let total: u64 = calls.values().sum();
        println!(
            "incremental after {} changes: {total} calls {calls:?}",
            args.changes
        );
        for o in &report.objects {
            println!(
                "  {}: {} written, {} associations re-read",
                o.object, o.written, o.associations
            );
        }
    }
}
