//! Deterministic fault simulation of two-way sync (issue 5, docs/reliability.md).
//!
//! Each seed scripts a history ([`script`]): creates, updates of the same and different
//! fields on both sides, rapid repeats, deletes and restores, interleaved with sync passes
//! under injected faults and crashes. The **real** engine runs it ([`engine`]: the same
//! pipelines, shadow, policies and writers `hubsync sync --once` uses) against the emulator
//! over HTTP and a real PostgreSQL ([`world`]). After every round the world is brought to
//! quiescence and checked ([`check`]) against what the policy dictates for that history
//! ([`oracle`]). A failure names its seed and prints the history; `SIM_SEEDS=N SIM_FIRST=S
//! cargo test -p hubsync-engine --test main sim::soak -- --ignored --nocapture` (or
//! `scripts/soak N`) replays any range.

mod check;
mod engine;
mod oracle;
mod regressions;
mod script;
mod webhooks;
mod world;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use hubsync_store::state::{conflicts, shadow::Side as TakeSide};

use oracle::{Model, RecordExpect};
use script::{Op, Script};
use world::{Tally, World};

/// A seed that broke an invariant.
#[derive(Debug)]
pub(crate) struct Failure {
    seed: u64,
    round: usize,
    problems: Vec<String>,
    log: Vec<String>,
}

impl Failure {
    /// The harness itself stopped (an edit the script makes was refused, ...).
    fn panicked(seed: u64, error: &tokio::task::JoinError) -> Failure {
        Failure {
            seed,
            round: 0,
            problems: vec![format!("HARNESS PANIC: {error}")],
            log: Script::new(seed).log(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} failed in round {}:", self.seed, self.round)?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        writeln!(f, "history:")?;
        for l in &self.log {
            writeln!(f, "  {l}")?;
        }
        write!(
            f,
            "replay: SIM_SEEDS=1 SIM_FIRST={} cargo test -p hubsync-engine --test main sim::soak -- --ignored --nocapture",
            self.seed
        )
    }
}

/// Runs one seed; returns what was injected.
pub(crate) async fn run(base: &str, seed: u64) -> Result<Tally, Failure> {
    let script = Script::new(seed);
    let mut world = World::new(base, &script).await;
    let outcome = rounds(&mut world, &script).await;
    // Dropping the world drops its database, which blocks: off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop(world)).await;
    outcome
}

/// The script's rounds against `world`, each checked after quiescence.
async fn rounds(world: &mut World, script: &Script) -> Result<Tally, Failure> {
    let seed = script.seed;
    let fail = |round: usize, problems: Vec<String>| Failure {
        seed,
        round,
        problems,
        log: script.log(),
    };
    let mut model = Model::default();
    for (r, round) in script.rounds.iter().enumerate() {
        world
            .call("POST", "/_emulator/reset", None)
            .await
            .expect("reset counters");
        let own_before = world.own_writes;
        world.start_round(&round.webhooks).await;
        let mut ops: Vec<&Op> = Vec::new();
        for op in &round.concurrent {
            world.apply(seed, op).await;
            ops.push(op);
        }
        if round.inbox_first {
            world.apply_webhooks().await;
        }
        let mut crashes = 0;
        for a in &round.attempts {
            crashes += u64::from(a.interruption.kind().is_some());
            if a.during {
                world.attempt_while_editing(seed, &a.faults, &a.then).await;
            } else {
                world.attempt(&a.faults, a.interruption).await;
                for op in &a.then {
                    world.apply(seed, op).await;
                }
            }
            ops.extend(a.then.iter());
        }
        world.quiesce().await.map_err(|e| fail(r, vec![e]))?;
        world.count_deliveries().await;
        let expects = model.expect(&ops, |f| world.policy(f));
        let mut found = check::records(world, seed, &expects).await;
        found.problems.extend(check::drained(world).await);
        // No echo loop: HubSpot writes bounded by the real changes (plus retries of injected
        // failures and re-sends after crashes), and a quiet pass writes nothing.
        let engine_writes = check::write_calls(world)
            .await
            .saturating_sub(world.own_writes - own_before);
        let bound = 2 * ops.len() as u64 + check::injected(world).await + 2 * crashes + 2;
        if engine_writes > bound {
            found.problems.push(format!(
                "ECHO LOOP? {engine_writes} HubSpot writes for {} edits (bound {bound})",
                ops.len()
            ));
        }
        if !found.problems.is_empty() {
            return Err(fail(r, found.problems));
        }
        quiet_pass(world).await.map_err(|p| fail(r, vec![p]))?;
        for (rec, live, values) in &found.agreed {
            model.commit(*rec, *live, values.clone());
        }
        if !found.manual.is_empty() {
            resolve_manual(world, seed, &mut model, &found.manual)
                .await
                .map_err(|p| fail(r, p))?;
        }
    }
    Ok(world.tally.clone())
}

/// A pass right after quiescence makes no HubSpot write.
async fn quiet_pass(world: &World) -> Result<(), String> {
    world
        .call("POST", "/_emulator/reset", None)
        .await
        .expect("reset counters");
    let outcome = world.engine.pass(None).await;
    let writes = check::write_calls(world).await;
    if writes > 0 || outcome.pushed_anything() || !outcome.errors.is_empty() {
        return Err(format!(
            "ECHO: a pass after quiescence made {writes} HubSpot writes: {outcome:?}"
        ));
    }
    Ok(())
}

/// Resolves open `manual` conflicts the way the seed picks, then checks both sides took
/// the chosen value.
async fn resolve_manual(
    world: &mut World,
    seed: u64,
    model: &mut Model,
    open: &[(usize, i64, usize)],
) -> Result<(), Vec<String>> {
    let conn = world.db.store().client().await.expect("conn");
    let all = conflicts::list(
        &conn,
        conflicts::ConflictFilter::Open,
        Some("contacts"),
        1000,
    )
    .await
    .expect("conflicts");
    let mut chosen = BTreeMap::new();
    for (rec, id, f) in open {
        let take = if (seed + *rec as u64 + *f as u64).is_multiple_of(2) {
            TakeSide::Hubspot
        } else {
            TakeSide::Postgres
        };
        for c in all
            .iter()
            .filter(|c| c.detail.hs_object_id == *id && c.detail.field == script::FIELDS[*f])
        {
            conflicts::resolve(&conn, c.id, take)
                .await
                .expect("resolve");
            let value = match take {
                TakeSide::Hubspot => c.detail.hubspot_value.clone(),
                TakeSide::Postgres => c.detail.postgres_value.clone(),
            };
            chosen.insert((*rec, *f), value);
        }
    }
    drop(conn);
    world.quiesce().await.map_err(|e| vec![e])?;
    let mut expects = BTreeMap::new();
    for (rec, _, f) in open {
        let mut values = model.values(*rec);
        values[*f] = chosen.get(&(*rec, *f)).cloned().flatten();
        let fields = values.clone().map(oracle::FieldExpect::Value);
        expects.insert(*rec, RecordExpect::Live(fields));
        model.commit(*rec, true, values);
    }
    let found = check::records(world, seed, &expects).await;
    if found.problems.is_empty() {
        Ok(())
    } else {
        Err(found
            .problems
            .into_iter()
            .map(|p| format!("after resolving manual conflicts: {p}"))
            .collect())
    }
}

/// Runs `seeds`, `jobs` at a time, printing each failure as it happens and a progress
/// line every 100 seeds; returns (passed, failures by seed, tally). Each job has its own
/// emulator (its data, faults, counters and webhook target are per seed) and each seed its
/// own database, so seeds running side by side share nothing but the machine.
pub(crate) async fn run_many(
    seeds: impl Iterator<Item = u64>,
    jobs: usize,
) -> (u64, Vec<Failure>, Tally) {
    let queue: VecDeque<u64> = seeds.collect();
    let total = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..jobs.clamp(1, total.max(1)) {
        let queue = Arc::clone(&queue);
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let emulator = world::emulator().await;
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(seed) = next else { break };
                let base = emulator.base_url();
                let outcome = tokio::spawn(async move { run(&base, seed).await }).await;
                let result = outcome.unwrap_or_else(|panic| Err(Failure::panicked(seed, &panic)));
                if done_tx.send(result).is_err() {
                    break;
                }
            }
        });
    }
    drop(done_tx);
    let mut passed = 0;
    let mut failed = Vec::new();
    let mut tally = Tally::new();
    let mut done = 0;
    while let Some(result) = done_rx.recv().await {
        done += 1;
        match result {
            Ok(t) => {
                passed += 1;
                for (k, v) in t {
                    *tally.entry(k).or_default() += v;
                }
            }
            Err(f) => {
                println!("FAILED {f}");
                failed.push(f);
            }
        }
        if done % 100 == 0 {
            println!(
                "soak progress: {done}/{total} seeds, {} failed",
                failed.len()
            );
        }
    }
    failed.sort_by_key(|f: &Failure| f.seed);
    (passed, failed, tally)
}

/// Seeds run at once (`SIM_JOBS`, default 4; `1` runs them one after another).
fn jobs() -> usize {
    usize::try_from(env_u64("SIM_JOBS", 4)).unwrap_or(1).max(1)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fixed CI set: seeds 0..200 (`SIM_CI_SEEDS` changes the count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_converge_under_faults() {
    let n = env_u64("SIM_CI_SEEDS", 200);
    let (passed, failed, tally) = run_many(0..n, jobs()).await;
    println!("faults injected: {tally:?}");
    assert!(
        failed.is_empty(),
        "failing seeds: {failed:?} ({passed} passed)"
    );
}

/// Soak: `SIM_SEEDS` seeds from `SIM_FIRST` (run by `scripts/soak`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak run: scripts/soak N"]
async fn soak() {
    let n = env_u64("SIM_SEEDS", 100);
    let first = env_u64("SIM_FIRST", 1_000_000);
    let (passed, failed, tally) = run_many(first..first + n, jobs()).await;
    println!("\nfaults injected: {tally:?}");
    for f in &failed {
        println!("failing seed: {}", f.seed);
    }
    println!("{passed} passed, {} failed", failed.len());
    assert!(failed.is_empty());
}

/// Labels of the safety invariants, which hold today (the others wait for the open bugs).
const SAFETY: [&str; 5] = [
    "DUPLICATE",
    "RESURRECTED",
    "ECHO",
    "MISSING",
    "HARNESS PANIC",
];

/// A few seeds in every test run: no duplicate, no resurrected delete, no echo loop, no
/// missing record, whatever else fails (docs/reliability.md lists the open bugs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_seeds_keep_the_safety_invariants() {
    let n = env_u64("SIM_QUICK_SEEDS", 8);
    let (_, failed, _) = run_many(500..500 + n, jobs()).await;
    let broken: Vec<String> = failed
        .iter()
        .flat_map(|f| {
            f.problems
                .iter()
                .map(move |p| format!("seed {}: {p}", f.seed))
        })
        .filter(|p| SAFETY.iter().any(|label| p.contains(label)))
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn one_seed_replays_the_same_history() {
    for seed in [0, 1, 7, 42, 1_000_003] {
        let a = Script::new(seed);
        let b = Script::new(seed);
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(a.log(), b.log(), "seed {seed}");
    }
    assert_ne!(Script::new(1).log(), Script::new(2).log());
}

#[test]
fn the_workload_has_merges() {
    let with_merge = (0..200)
        .filter(|seed| {
            Script::new(*seed)
                .rounds
                .iter()
                .flat_map(|r| r.concurrent.iter())
                .any(|op| matches!(op, Op::Merge { .. }))
        })
        .count();
    assert!(with_merge >= 20, "{with_merge} of 200 seeds merge");
}
