//! The seeded script of one simulation run: which conflict policy is configured, which
//! records are created, edited, deleted and restored on which side, and which faults and
//! crashes the sync passes meet. It is generated from the seed alone (a model of the
//! records' life cycle, never the engine's behaviour), so one seed always replays the same
//! history; [`Script::log`] is that history as text.
//!
//! A run is a few **rounds**. Each round:
//! 1. **concurrent edits**: creates, updates (same and different fields on both sides,
//!    rapid repeats, equal values on both sides), deletes and HubSpot restores, with no sync
//!    in between — every edit of a field on both sides is a true conflict;
//! 2. **attempts**: sync passes under faults (5xx, 429 rates and storms, latency, search
//!    index lag), each possibly interrupted (task aborted mid-pass, crash at a writer
//!    step, PostgreSQL connections killed), followed by one-sided edits of fields the other
//!    side has not touched this round (so their outcome does not depend on timing);
//! 3. **quiescence** (faults off, passes until no work) and the invariant checks.

use std::collections::BTreeSet;

use hubsync_engine::policy::ConflictPolicy;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::webhooks::WebhookFaults;

/// The synced fields the workload edits (`email` identifies a record and never changes).
pub(crate) const FIELDS: [&str; 3] = ["firstname", "lastname", "phone"];

/// Where an edit is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Side {
    /// In HubSpot (the emulator): as a user in the UI, or by another integration's API call.
    HubSpot,
    /// In PostgreSQL, by SQL on the synced table, as an application would.
    Postgres,
}

/// How a HubSpot-side write is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The emulator's control API (a user in HubSpot's UI).
    Ui,
    /// The public API (another integration).
    Api,
}

/// One change made by the workload. `rec` is the record's index in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A new record with `firstname = value`.
    Create {
        side: Side,
        rec: usize,
        value: String,
    },
    /// `FIELDS[field] = value` (`None`: cleared).
    Update {
        side: Side,
        via: Via,
        rec: usize,
        field: usize,
        value: Option<String>,
    },
    /// Deleted: archived in HubSpot; in PostgreSQL a `DELETE` or (`soft`) `archived_at`.
    Delete { side: Side, rec: usize, soft: bool },
    /// Restored from HubSpot's recycle bin (records archived in HubSpot only).
    Restore { rec: usize },
    /// Merged in HubSpot (the merge endpoint): `loser` is merged into `survivor`, whose
    /// empty fields take the loser's values.
    Merge { survivor: usize, loser: usize },
    /// In HubSpot, the record is associated with (`linked`) or dissociated from company
    /// number `company` of the run (v4 associations API).
    Link {
        rec: usize,
        company: usize,
        linked: bool,
    },
}

impl Op {
    /// The record the op touches.
    pub(crate) fn rec(&self) -> usize {
        match self {
            Op::Create { rec, .. }
            | Op::Update { rec, .. }
            | Op::Delete { rec, .. }
            | Op::Restore { rec }
            | Op::Link { rec, .. } => *rec,
            Op::Merge { loser, .. } => *loser,
        }
    }

    /// Every record the op touches.
    pub(crate) fn recs(&self) -> Vec<usize> {
        match self {
            Op::Merge { survivor, loser } => vec![*survivor, *loser],
            other => vec![other.rec()],
        }
    }
}

/// Faults the emulator injects during one attempt (`POST /_emulator/faults`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Faults {
    /// Probability of a 5xx answer.
    pub(crate) server_errors: f64,
    /// Probability of a 429 answer.
    pub(crate) throttles: f64,
    /// A 429 storm of this many requests.
    pub(crate) storm: Option<u64>,
    /// Added latency and jitter, ms.
    pub(crate) latency_ms: (u64, u64),
    /// Search index lag, ms.
    pub(crate) search_lag_ms: u64,
    /// The emulator's fault generator seed.
    pub(crate) seed: u64,
}

impl Faults {
    /// The kinds injected, for the figures.
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.server_errors > 0.0 {
            k.push("5xx");
        }
        if self.throttles > 0.0 {
            k.push("429-rate");
        }
        if self.storm.is_some() {
            k.push("429-storm");
        }
        if self.latency_ms.0 > 0 {
            k.push("latency");
        }
        if self.search_lag_ms > 0 {
            k.push("search-lag");
        }
        k
    }
}

/// What happens to the engine during an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// The pass runs to its end (it may still fail under the faults).
    None,
    /// The process dies this many ms into the pass (the pass task is aborted; everything
    /// not durable is rebuilt).
    Crash { after_ms: u64 },
    /// The writer dies after HubSpot accepted its writes, before PostgreSQL recorded them.
    CrashAfterHubSpot,
    /// The writer dies right after claiming outbox entries.
    CrashAfterClaim,
    /// hubsync's PostgreSQL connections are killed this many ms into the pass.
    ConnectionLoss { after_ms: u64 },
}

impl Interruption {
    /// The kind, for the figures.
    pub(crate) fn kind(self) -> Option<&'static str> {
        match self {
            Interruption::None => None,
            Interruption::Crash { .. } => Some("crash-abort"),
            Interruption::CrashAfterHubSpot => Some("crash-after-hubspot-write"),
            Interruption::CrashAfterClaim => Some("crash-after-claim"),
            Interruption::ConnectionLoss { .. } => Some("pg-connection-loss"),
        }
    }
}

/// One sync attempt under faults, then one-sided edits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attempt {
    pub(crate) faults: Faults,
    pub(crate) interruption: Interruption,
    /// The one-sided edits are made while the pass runs (uninterrupted passes only), not
    /// after it.
    pub(crate) during: bool,
    pub(crate) then: Vec<Op>,
}

/// One round.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Round {
    pub(crate) concurrent: Vec<Op>,
    pub(crate) attempts: Vec<Attempt>,
    /// Webhook faults from the round's first edit until its quiescence.
    pub(crate) webhooks: WebhookFaults,
    /// The inbox worker applies the webhooks of the concurrent edits before the first
    /// attempt (HubSpot's edits reach PostgreSQL by webhook before any pull sees them).
    pub(crate) inbox_first: bool,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Script {
    pub(crate) seed: u64,
    /// The object's conflict policy.
    pub(crate) policy: ConflictPolicy,
    /// `phone`'s own policy, when overridden.
    pub(crate) phone_policy: Option<ConflictPolicy>,
    pub(crate) rounds: Vec<Round>,
}

const POLICIES: [ConflictPolicy; 4] = [
    ConflictPolicy::LastWriteWins,
    ConflictPolicy::HubSpotWins,
    ConflictPolicy::PostgresWins,
    ConflictPolicy::Manual,
];

/// The generator's view of a record (never the engine's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Live and synced on both sides (since an earlier round).
    Synced,
    /// Created this round on one side.
    New(Side),
    /// Deleted; `restorable` when archived in HubSpot by a HubSpot-side delete.
    Gone { restorable: bool },
}

struct Gen {
    rng: StdRng,
    seed: u64,
    lives: Vec<Life>,
    values: u64,
}

impl Gen {
    fn value(&mut self, field: usize) -> String {
        self.values += 1;
        format!("{}-{}-{}", FIELDS[field], self.seed, self.values)
    }

    fn side(&mut self) -> Side {
        if self.rng.random_bool(0.5) {
            Side::HubSpot
        } else {
            Side::Postgres
        }
    }

    fn pick(&mut self, pred: impl Fn(Life) -> bool) -> Option<usize> {
        let found: Vec<usize> = (0..self.lives.len())
            .filter(|&i| pred(self.lives[i]))
            .collect();
        if found.is_empty() {
            None
        } else {
            Some(found[self.rng.random_range(0..found.len())])
        }
    }

    fn update(&mut self, side: Side, rec: usize, field: usize) -> Op {
        let value = if self.rng.random_bool(0.1) {
            None
        } else {
            Some(self.value(field))
        };
        let via = if side == Side::HubSpot && self.rng.random_bool(0.3) {
            Via::Api
        } else {
            Via::Ui
        };
        Op::Update {
            side,
            via,
            rec,
            field,
            value,
        }
    }

    fn concurrent(&mut self) -> Vec<Op> {
        let mut ops = Vec::new();
        for _ in 0..self.rng.random_range(0..=2) {
            let side = self.side();
            let rec = self.lives.len();
            self.lives.push(Life::New(side));
            let value = self.value(0);
            ops.push(Op::Create { side, rec, value });
            if self.rng.random_bool(0.3) {
                // Rapid edits right after the create (coalesced into it in PostgreSQL).
                for _ in 0..self.rng.random_range(1..=3) {
                    let field = self.rng.random_range(0..FIELDS.len());
                    ops.push(self.update(side, rec, field));
                }
            }
        }
        for _ in 0..self.rng.random_range(1..=6) {
            let Some(rec) = self.pick(|l| l == Life::Synced) else {
                break;
            };
            let field = self.rng.random_range(0..FIELDS.len());
            match self.rng.random_range(0..10) {
                // The same field on both sides: a true conflict (sometimes to equal values).
                0..=3 => {
                    let first = self.side();
                    let a = self.update(first, rec, field);
                    let other = if first == Side::HubSpot {
                        Side::Postgres
                    } else {
                        Side::HubSpot
                    };
                    let mut b = self.update(other, rec, field);
                    if self.rng.random_bool(0.15)
                        && let (Op::Update { value: va, .. }, Op::Update { value: vb, .. }) =
                            (&a, &mut b)
                    {
                        vb.clone_from(va);
                    }
                    ops.push(a);
                    ops.push(b);
                }
                // Rapid repeated edits of one field on one side.
                4..=5 => {
                    let side = self.side();
                    for _ in 0..self.rng.random_range(2..=4) {
                        ops.push(self.update(side, rec, field));
                    }
                }
                // Different fields on the two sides.
                6..=7 => {
                    let other = (field + 1) % FIELDS.len();
                    ops.push(self.update(Side::HubSpot, rec, field));
                    ops.push(self.update(Side::Postgres, rec, other));
                }
                _ => {
                    let side = self.side();
                    ops.push(self.update(side, rec, field));
                }
            }
        }
        if self.rng.random_bool(0.35)
            && let Some(rec) = self.pick(|l| matches!(l, Life::Synced | Life::New(_)))
        {
            let side = match self.lives[rec] {
                Life::New(s) => s,
                _ => self.side(),
            };
            let soft = side == Side::Postgres && self.rng.random_bool(0.5);
            ops.push(Op::Delete { side, rec, soft });
            self.lives[rec] = Life::Gone {
                restorable: side == Side::HubSpot && matches!(self.lives[rec], Life::Synced),
            };
        }
        let touched: BTreeSet<usize> = ops.iter().map(Op::rec).collect();
        if self.rng.random_bool(0.3)
            && let Some(rec) = self.pick(|l| l == Life::Gone { restorable: true })
            && !touched.contains(&rec)
        {
            ops.push(Op::Restore { rec });
            self.lives[rec] = Life::Synced;
        }
        ops
    }

    fn faults(&mut self) -> Faults {
        let mut f = Faults {
            seed: self.rng.random_range(0..u64::from(u32::MAX)),
            ..Faults::default()
        };
        if self.rng.random_bool(0.4) {
            f.server_errors = [0.05, 0.15, 0.3][self.rng.random_range(0..3)];
        }
        if self.rng.random_bool(0.25) {
            f.throttles = [0.05, 0.2][self.rng.random_range(0..2)];
        }
        if self.rng.random_bool(0.2) {
            f.storm = Some(self.rng.random_range(2..=12));
        }
        if self.rng.random_bool(0.3) {
            f.latency_ms = (self.rng.random_range(1..=15), self.rng.random_range(0..=10));
        }
        if self.rng.random_bool(0.3) {
            f.search_lag_ms = self.rng.random_range(50..=1_500);
        }
        f
    }

    fn interruption(&mut self) -> Interruption {
        match self.rng.random_range(0..20) {
            0..=9 => Interruption::None,
            10..=13 => Interruption::Crash {
                after_ms: self.rng.random_range(0..=60),
            },
            14..=15 => Interruption::CrashAfterHubSpot,
            16 => Interruption::CrashAfterClaim,
            _ => Interruption::ConnectionLoss {
                after_ms: self.rng.random_range(0..=40),
            },
        }
    }

    /// One-sided edits after an attempt: fields nobody on the other side touched this
    /// round, of records that side can see and nobody deleted this round.
    fn one_sided(&mut self, round: &[Op], earlier: &[Op]) -> Vec<Op> {
        let mut ops = Vec::new();
        for _ in 0..self.rng.random_range(0..=2) {
            let side = self.side();
            let Some(rec) = self.pick(|l| l == Life::Synced || l == Life::New(side)) else {
                break;
            };
            let field = self.rng.random_range(0..FIELDS.len());
            let all = || round.iter().chain(earlier).chain(ops.iter());
            let blocked = all().any(|op| match op {
                Op::Update {
                    side: s,
                    rec: r,
                    field: f,
                    ..
                } => *r == rec && *f == field && *s != side,
                Op::Delete { rec: r, .. } | Op::Restore { rec: r } => *r == rec,
                Op::Merge { survivor, loser } => *survivor == rec || *loser == rec,
                Op::Create { .. } | Op::Link { .. } => false,
            });
            if !blocked {
                let n = if self.rng.random_bool(0.3) { 2 } else { 1 };
                for _ in 0..n {
                    let op = self.update(side, rec, field);
                    ops.push(op);
                }
            }
        }
        ops
    }
}

impl Script {
    /// The script of `seed` (with faults unless `SIM_CALM` is set).
    pub(crate) fn new(seed: u64) -> Script {
        let calm = std::env::var_os("SIM_CALM").is_some();
        let mut script = Script::generate(seed);
        if calm {
            // The same history with every fault and crash taken out: tells a fault-handling
            // bug from a merge bug.
            for a in script.rounds.iter_mut().flat_map(|r| r.attempts.iter_mut()) {
                a.faults = Faults::default();
                a.interruption = Interruption::None;
            }
            for r in &mut script.rounds {
                r.webhooks = WebhookFaults::default();
            }
        }
        script
    }

    fn generate(seed: u64) -> Script {
        let mut g = Gen {
            rng: StdRng::seed_from_u64(seed),
            seed,
            lives: Vec::new(),
            values: 0,
        };
        let policy = POLICIES[g.rng.random_range(0..POLICIES.len())];
        let phone_policy = g
            .rng
            .random_bool(0.3)
            .then(|| POLICIES[g.rng.random_range(0..POLICIES.len())]);
        let mut rounds = Vec::new();
        // The first round only creates, so later rounds have synced records to work on.
        let first: Vec<Op> = (0..g.rng.random_range(2..=4))
            .map(|rec| {
                let side = g.side();
                g.lives.push(Life::New(side));
                let value = g.value(0);
                Op::Create { side, rec, value }
            })
            .collect();
        let first_attempt = Attempt {
            faults: g.faults(),
            interruption: g.interruption(),
            during: false,
            then: Vec::new(),
        };
        rounds.push(Round {
            concurrent: first,
            attempts: vec![first_attempt],
            webhooks: WebhookFaults::default(),
            inbox_first: false,
        });
        settle(&mut g.lives);
        for _ in 0..g.rng.random_range(2..=3) {
            let concurrent = g.concurrent();
            let mut attempts = Vec::new();
            let mut earlier: Vec<Op> = Vec::new();
            for _ in 0..g.rng.random_range(1..=3) {
                let faults = g.faults();
                let interruption = g.interruption();
                let then = g.one_sided(&concurrent, &earlier);
                earlier.extend(then.iter().cloned());
                let during = interruption == Interruption::None && g.rng.random_bool(0.5);
                attempts.push(Attempt {
                    faults,
                    interruption,
                    during,
                    then,
                });
            }
            rounds.push(Round {
                concurrent,
                attempts,
                webhooks: WebhookFaults::default(),
                inbox_first: false,
            });
            settle(&mut g.lives);
        }
        webhook_rounds(seed, &mut rounds);
        merge_rounds(seed, &mut rounds);
        link_rounds(seed, &mut rounds);
        Script {
            seed,
            policy,
            phone_policy,
            rounds,
        }
    }

    /// The history as text, one line per step (what a failure report shows).
    pub(crate) fn log(&self) -> Vec<String> {
        let mut log = vec![format!(
            "seed {} policy {} phone {:?}",
            self.seed,
            self.policy.as_str(),
            self.phone_policy.map(ConflictPolicy::as_str)
        )];
        for (i, round) in self.rounds.iter().enumerate() {
            log.push(format!(
                "round {i} webhooks {:?}{}",
                round.webhooks,
                if round.inbox_first {
                    ", inbox applied before the first sync"
                } else {
                    ""
                }
            ));
            for op in &round.concurrent {
                log.push(format!("  {op:?}"));
            }
            for a in &round.attempts {
                let when = if a.during { "during" } else { "then" };
                log.push(format!(
                    "  sync {:?} {:?}, edits {when}:",
                    a.faults, a.interruption
                ));
                for op in &a.then {
                    log.push(format!("    {op:?}"));
                }
            }
            log.push("  quiesce + check".to_owned());
        }
        log
    }
}

/// Webhook faults and inbox timing of every round, from a stream of their own: the edits,
/// API faults and crashes of a seed stay what they were before webhooks were simulated.
fn webhook_rounds(seed: u64, rounds: &mut [Round]) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7765_6268_6F6F_6B73);
    for round in rounds {
        let mut pick = |p: f64, values: &[f64]| {
            if rng.random_bool(p) {
                values[rng.random_range(0..values.len())]
            } else {
                0.0
            }
        };
        let drop = pick(0.35, &[0.1, 0.3, 1.0]);
        let duplicate = pick(0.4, &[0.2, 0.5]);
        let reorder = pick(0.4, &[0.3, 0.8]);
        let delay = pick(0.4, &[0.2, 0.5]);
        round.webhooks = WebhookFaults {
            drop,
            duplicate,
            reorder,
            delay,
            delay_ms: rng.random_range(50..=800),
        };
        round.inbox_first = rng.random_bool(0.5);
    }
}

/// HubSpot-side merges, from a stream of their own (a seed without a merge keeps the
/// history it had before merges were simulated): in some rounds, two records live and
/// synced since an earlier round that nothing else touches that round are merged at the end
/// of its concurrent edits; later edits of the loser (merged away) are dropped.
fn merge_rounds(seed: u64, rounds: &mut [Round]) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6D65_7267_6573_2121);
    let mut live: BTreeSet<usize> = BTreeSet::new();
    let mut merged: BTreeSet<usize> = BTreeSet::new();
    for round in rounds.iter_mut() {
        round
            .concurrent
            .retain(|op| op.recs().iter().all(|r| !merged.contains(r)));
        for a in &mut round.attempts {
            a.then
                .retain(|op| op.recs().iter().all(|r| !merged.contains(r)));
        }
        let touched: BTreeSet<usize> = round
            .concurrent
            .iter()
            .chain(round.attempts.iter().flat_map(|a| a.then.iter()))
            .flat_map(Op::recs)
            .collect();
        let candidates: Vec<usize> = live
            .iter()
            .copied()
            .filter(|r| !touched.contains(r))
            .collect();
        let mut merge = None;
        if candidates.len() >= 2 && rng.random_bool(0.3) {
            let s = rng.random_range(0..candidates.len());
            let mut l = rng.random_range(0..candidates.len() - 1);
            if l >= s {
                l += 1;
            }
            merge = Some(Op::Merge {
                survivor: candidates[s],
                loser: candidates[l],
            });
        }
        // Who is live (on both sides) at the end of the round.
        for op in round
            .concurrent
            .iter()
            .chain(round.attempts.iter().flat_map(|a| a.then.iter()))
        {
            match op {
                Op::Create { rec, .. } | Op::Restore { rec } => {
                    live.insert(*rec);
                }
                Op::Delete { rec, .. } => {
                    live.remove(rec);
                }
                Op::Update { .. } | Op::Merge { .. } | Op::Link { .. } => {}
            }
        }
        if let Some(op @ Op::Merge { loser, .. }) = merge {
            live.remove(&loser);
            merged.insert(loser);
            round.concurrent.push(op);
        }
    }
}

/// Companies every run has in HubSpot (records are associated with them).
pub(crate) const COMPANIES: usize = 2;

/// HubSpot-side association changes, from a stream of their own: in some rounds, records
/// live since an earlier round that no delete, restore or merge touches that round are
/// associated with or dissociated from one of the run's companies (at the end of the
/// round's concurrent edits, so the change is in HubSpot while PostgreSQL edits the row).
fn link_rounds(seed: u64, rounds: &mut [Round]) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6C69_6E6B_7321_2121);
    let mut live: BTreeSet<usize> = BTreeSet::new();
    let mut linked: BTreeSet<(usize, usize)> = BTreeSet::new();
    for round in rounds.iter_mut() {
        let all: Vec<Op> = round
            .concurrent
            .iter()
            .chain(round.attempts.iter().flat_map(|a| a.then.iter()))
            .cloned()
            .collect();
        let blocked: BTreeSet<usize> = all
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    Op::Delete { .. } | Op::Restore { .. } | Op::Merge { .. }
                )
            })
            .flat_map(Op::recs)
            .collect();
        let candidates: Vec<usize> = live
            .iter()
            .copied()
            .filter(|r| !blocked.contains(r))
            .collect();
        let mut links = Vec::new();
        if !candidates.is_empty() && rng.random_bool(0.4) {
            for _ in 0..rng.random_range(1..=3) {
                let rec = candidates[rng.random_range(0..candidates.len())];
                let company = rng.random_range(0..COMPANIES);
                let now = !linked.contains(&(rec, company));
                if now {
                    linked.insert((rec, company));
                } else {
                    linked.remove(&(rec, company));
                }
                links.push(Op::Link {
                    rec,
                    company,
                    linked: now,
                });
            }
        }
        for op in &all {
            match op {
                Op::Create { rec, .. } | Op::Restore { rec } => {
                    live.insert(*rec);
                }
                Op::Delete { rec, .. } => {
                    live.remove(rec);
                }
                Op::Merge { survivor, loser } => {
                    live.remove(loser);
                    let moved: Vec<usize> = (0..COMPANIES)
                        .filter(|c| linked.remove(&(*loser, *c)))
                        .collect();
                    for c in moved {
                        linked.insert((*survivor, c));
                    }
                }
                Op::Update { .. } | Op::Link { .. } => {}
            }
        }
        round.concurrent.extend(links);
    }
}

/// End of a round: every new record is synced.
fn settle(lives: &mut [Life]) {
    for l in lives {
        if matches!(l, Life::New(_)) {
            *l = Life::Synced;
        }
    }
}
