//! The writeback benchmark (docs/benchmarks.md, "Two-way"): 10,000 PostgreSQL row updates
//! of a two-way object reach HubSpot at the batch-rate bound (100 records per call at the
//! burst limit), with no 429. Ignored by default; run it with
//! `cargo test --release -p hubsync-engine --test main -- --ignored --nocapture writeback_bench`.

use std::time::Instant;

use hubsync_emulator::SeedConfig;
use hubsync_engine::pg_to_hs::{self, DrainOptions};
use hubsync_engine::policy::{ConflictPolicy, Direction, FieldRule, FieldRules};

use crate::two_way_kit::tw_seeded;

/// Records updated.
const ROWS: u64 = 10_000;
/// The emulator's and the client's burst limit: calls per 10 s.
const BURST: u32 = 100;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run explicitly in release mode"]
async fn writeback_bench() {
    let rules = FieldRules::new(FieldRule {
        direction: Direction::TwoWay,
        policy: ConflictPolicy::LastWriteWins,
    });
    let seed = SeedConfig {
        contacts: ROWS as usize,
        value: 42,
        ..SeedConfig::default()
    };
    let kit = tw_seeded(rules, Some(BURST), seed).await;
    let rows: i64 = kit.scalar("SELECT count(*) FROM hubspot.contacts").await;
    assert_eq!(rows as u64, ROWS, "backfill");
    // The backfill left the burst bucket drained: the push runs at the steady refill rate.
    kit.sql("UPDATE hubspot.contacts SET lastname = 'Bench-' || hs_object_id::text")
        .await;
    kit.reset_stats().await;
    let started = Instant::now();
    let object = kit.object().await;
    let options = DrainOptions::default();
    let report = pg_to_hs::drain(kit.store(), &kit.client, &object, &options)
        .await
        .expect("push");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(report.updated, ROWS, "{report:?}");
    let stats = kit.stats().await;
    let calls = stats["requests_total"].as_u64().unwrap_or_default();
    let limited = stats["rate_limited_total"].as_u64().unwrap_or_default();
    let bound = 100.0 * f64::from(BURST) / 10.0;
    let rate = ROWS as f64 / elapsed;
    println!(
        "writeback_bench: {ROWS} updates in {elapsed:.2} s = {rate:.0} records/s; bound {bound:.0} records/s ({:.1}%); {calls} calls ({} batch updates, {} verified), {limited} x 429",
        100.0 * rate / bound,
        stats["by_route"]["POST /crm/v3/objects/contacts/batch/update"],
        report.verified,
    );
    assert_eq!(limited, 0, "{stats}");
    assert!(
        rate >= 0.95 * bound,
        "{rate:.0} records/s is below 95% of {bound:.0}"
    );
    // The next pass writes nothing.
    kit.reset_stats().await;
    let again = kit.pass().await;
    assert_eq!(again.writes(), 0, "{again:?}");
    assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
}
