//! The writeback benchmark (docs/benchmarks.md, "Two-way"): 10,000 PostgreSQL row updates
//! of a two-way object reach HubSpot at the batch-rate bound (100 records per call at the
//! burst limit), with no 429. Ignored by default; run it with
//! `cargo test --release -p hubsync-engine --test main writeback_bench -- --ignored --nocapture`.
//!
//! The bound is fair only from a known bucket state. A full bucket would let HubSpot take
//! all 100 calls at once (no meaningful bound), and a partly used one an unknown share of
//! them; so right before the push the same client makes [`BURST`] cheap calls through its
//! governor, which leaves the rolling window holding a steady stream of calls — the state a
//! long push is in. From there HubSpot accepts one more call each time an old one leaves the
//! window, i.e. at most `BURST` calls per 10 s, so 10,000 records (100 calls of 100) can't
//! be written in less than `100 / (BURST / 10 s)` = 10 s: the bound is 1,000 records/s,
//! every other call the push makes (verify reads, searches excepted: their own limiter)
//! counting against it. The figures are printed, not asserted (wall-clock); what is
//! asserted are counts: every record written, no 429, a second pass writes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hubsync_emulator::SeedConfig;
use hubsync_engine::pg_to_hs::{self, DrainOptions};
use hubsync_engine::policy::{ConflictPolicy, Direction, FieldRule, FieldRules};

use crate::two_way_kit::{Tw, tw_seeded};

/// Records updated.
const ROWS: u64 = 10_000;
/// The emulator's and the client's burst limit: calls per 10 s.
const BURST: u32 = 100;
/// HubSpot's batch size.
const PER_CALL: u64 = 100;
/// The route the push writes with.
const UPDATE_ROUTE: &str = "POST /crm/v3/objects/contacts/batch/update";

/// Seconds after `started` at which the emulator had answered the first and the last batch
/// update, sampled every 20 ms from its counters until `done` (a report, not an assertion).
async fn write_times(kit: &Tw, done: &AtomicBool, started: Instant) -> (f64, f64) {
    let mut first = f64::NAN;
    let mut last = f64::NAN;
    while !done.load(Ordering::Acquire) {
        let n = kit.stats().await["by_route"][UPDATE_ROUTE]
            .as_u64()
            .unwrap_or_default();
        let at = started.elapsed().as_secs_f64();
        if n > 0 && first.is_nan() {
            first = at;
        }
        if n >= ROWS.div_ceil(PER_CALL) {
            last = at;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (first, last)
}

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
    kit.sql("UPDATE hubspot.contacts SET lastname = 'Bench-' || hs_object_id::text")
        .await;
    let object = kit.object().await;
    // A steady stream of calls fills the rolling window (see the module docs).
    for _ in 0..BURST {
        kit.client
            .get_property("contacts", "email")
            .await
            .expect("filler call");
    }
    kit.reset_stats().await;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();
    let options = DrainOptions::default();
    let done = AtomicBool::new(false);
    let push = async {
        let report = pg_to_hs::drain(kit.store(), &kit.client, &object, &options).await;
        done.store(true, Ordering::Release);
        report
    };
    let (report, (first_write, last_write)) = tokio::join!(push, write_times(&kit, &done, started));
    let report = report.expect("push");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(report.updated, ROWS, "{report:?}");
    let stats = kit.stats().await;
    let calls = stats["requests_total"].as_u64().unwrap_or_default();
    let limited = stats["rate_limited_total"].as_u64().unwrap_or_default();
    let route = |r: &str| stats["by_route"][r].as_u64().unwrap_or_default();
    let updates = route(UPDATE_ROUTE);
    let reads = route("POST /crm/v3/objects/contacts/batch/read");
    let searches = route("POST /crm/v3/objects/contacts/search");
    let bound_seconds = ROWS.div_ceil(PER_CALL) as f64 / (f64::from(BURST) / 10.0);
    let bound = ROWS as f64 / bound_seconds;
    let rate = ROWS as f64 / elapsed;
    println!(
        "writeback_bench: first batch update sent after {first_write:.2} s, the last after {last_write:.2} s"
    );
    println!(
        "writeback_bench: {ROWS} updates in {elapsed:.2} s = {rate:.0} records/s; bound {bound:.0} records/s ({:.1}%); {calls} calls ({updates} batch updates, {reads} batch reads, {searches} searches; {} records verified), {limited} x 429; load average at start {}",
        100.0 * rate / bound,
        report.verified,
        load.trim(),
    );
    assert_eq!(limited, 0, "{stats}");
    // The next pass writes nothing.
    kit.reset_stats().await;
    let again = kit.pass().await;
    assert_eq!(again.writes(), 0, "{again:?}");
    assert_eq!(kit.write_calls().await, 0, "{}", kit.stats().await);
}
