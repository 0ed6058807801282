//! The rate governor: one per portal (one per [`crate::HubSpotClient`] and its clones).
//!
//! HubSpot counts requests in a **rolling** 10-second window (`Max` per
//! `Interval-Milliseconds`); a request that would make the window hold more than `Max` gets a
//! 429. A GCRA limiter with burst `b` and emission interval `T` lets through at most
//! `b + W/T − 1` requests in any window `W`, so its sustained rate is `(N − b + 1 − margin)/W`
//! for a bound `N`. A big burst therefore costs throughput one-for-one; we pace with burst 2
//! (which absorbs timer lateness without losing the slot) and a one-request margin for arrival
//! jitter: at 100/10 s that is 98 requests per 10 s, never more than 99 in any window.
//!
//! The `X-HubSpot-RateLimit-*` headers feed back in ([`WindowLedger`]): the ledger remembers
//! what *we* sent in the last window, so a `Remaining` lower than our own usage explains is
//! someone else's usage (private-app limits are shared by the portal, lessons.md #4) and is
//! paid for by consuming that many extra cells, which slows us down exactly as much as the
//! other app speeds up. A smaller `Max` or different interval than configured replaces the
//! pacer; a larger one is ignored (the configured value is the user's headroom).
//!
//! Search has its own per-second limiter, and HubSpot exempts search and association batch
//! endpoints from the 10-second bucket, so those classes don't spend burst cells.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;

use crate::error::HubSpotError;

/// A request budget: `requests` per `per` (HubSpot's burst limit is 100 per 10 s on
/// Free/Starter, 190 on Pro/Enterprise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// Requests allowed per period.
    pub requests: NonZeroU32,
    /// The period.
    pub per: Duration,
}

impl Default for RateQuota {
    fn default() -> Self {
        Self {
            requests: NonZeroU32::MIN.saturating_add(99),
            per: Duration::from_secs(10),
        }
    }
}

impl fmt::Display for RateQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms", self.requests, self.per.as_millis())
    }
}

/// Parses `100/10s`, `190/10s`, `5/1s`, `300/1m`, `100/10000ms`.
impl FromStr for RateQuota {
    type Err = HubSpotError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || HubSpotError::Config(format!("rate limit {text:?} is not like \"100/10s\""));
        let (count, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let requests: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(period.len());
        let (digits, unit) = period.split_at(split);
        let amount: u64 = if digits.is_empty() {
            1
        } else {
            digits.parse().map_err(|_| bad())?
        };
        let per = match unit {
            "ms" => Duration::from_millis(amount),
            "s" => Duration::from_secs(amount),
            "m" => Duration::from_secs(amount * 60),
            _ => return Err(bad()),
        };
        if per.is_zero() {
            return Err(bad());
        }
        Ok(Self { requests, per })
    }
}

/// Which budget an endpoint spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointClass {
    /// The 10-second burst bucket (most endpoints).
    Burst,
    /// The per-second search bucket (`…/search`), exempt from the burst bucket.
    Search,
    /// Exempt from the burst bucket (association batch endpoints); counted only daily.
    Exempt,
}

/// The GCRA quota that keeps a rolling window of `bound` under its limit (see module docs).
pub(crate) fn pacing_quota(bound: RateQuota) -> Quota {
    const BURST: u32 = 2;
    let n = bound.requests.get();
    let margin = (n / 100).max(1);
    // Cells per window after the burst and the margin; at least one.
    let per_window = n.saturating_sub(BURST - 1 + margin).max(1);
    let interval = (bound.per / per_window).max(Duration::from_micros(1));
    let burst = NonZeroU32::new(BURST.min(n)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// The search quota: `per_second` with no burst beyond one.
pub(crate) fn search_quota(per_second: NonZeroU32) -> Quota {
    let interval = Duration::from_secs(1) / per_second.get();
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(per_second))
        .allow_burst(NonZeroU32::MIN)
}

/// The `X-HubSpot-RateLimit-*` headers of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// `X-HubSpot-RateLimit-Max`.
    pub max: Option<u32>,
    /// `X-HubSpot-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-HubSpot-RateLimit-Interval-Milliseconds`.
    pub interval_ms: Option<u64>,
    /// `X-HubSpot-RateLimit-Daily`.
    pub daily: Option<u64>,
    /// `X-HubSpot-RateLimit-Daily-Remaining`.
    pub daily_remaining: Option<u64>,
}

impl RateHeaders {
    /// Reads the headers; missing or garbled ones are `None`.
    pub fn parse(headers: &HeaderMap) -> Self {
        fn num<T: FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
            headers.get(name)?.to_str().ok()?.trim().parse().ok()
        }
        Self {
            max: num(headers, "x-hubspot-ratelimit-max"),
            remaining: num(headers, "x-hubspot-ratelimit-remaining"),
            interval_ms: num(headers, "x-hubspot-ratelimit-interval-milliseconds"),
            daily: num(headers, "x-hubspot-ratelimit-daily"),
            daily_remaining: num(headers, "x-hubspot-ratelimit-daily-remaining"),
        }
    }
}

/// What we spent in the current rolling window: our own sends plus cells consumed on behalf
/// of other apps sharing the portal. Pure bookkeeping, driven by explicit instants.
#[derive(Debug)]
pub struct WindowLedger {
    window: Duration,
    entries: VecDeque<(Instant, u32)>,
}

impl WindowLedger {
    /// A ledger for a rolling window of `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            entries: VecDeque::new(),
        }
    }

    /// Changes the window length (HubSpot reported a different interval).
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Records one request sent at `at`.
    pub fn record_send(&mut self, at: Instant) {
        self.entries.push_back((at, 1));
    }

    /// Cells spent in the window that ends at `at` (inclusive).
    pub fn spent_at(&self, at: Instant) -> u32 {
        self.spent_between(at.checked_sub(self.window), at)
    }

    /// Cells spent after `after` (exclusive; `None`: since ever) up to `until` (inclusive).
    fn spent_between(&self, after: Option<Instant>, until: Instant) -> u32 {
        self.entries
            .iter()
            .filter(|(t, _)| *t <= until && after.is_none_or(|s| *t > s))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Takes in an answer to the request sent at `sent_at` that reported `remaining` of `max`,
    /// observed at `now`. Returns how many extra cells to consume for usage we did not make;
    /// they are recorded as spent at `sent_at`, so later answers see them as accounted for.
    ///
    /// Our usage counts every send from the start of that request's window up to `now`, so
    /// requests sent after it that overtook it on the way are never mistaken for someone
    /// else's. Every other benign mismatch (our old sends leaving HubSpot's window first,
    /// refused requests HubSpot does not charge) makes HubSpot report *more* remaining than we
    /// expect, so no further slack is needed.
    pub fn observe(&mut self, sent_at: Instant, remaining: u32, max: u32, now: Instant) -> u32 {
        self.prune(now);
        let ours = self.spent_between(sent_at.checked_sub(self.window), now.max(sent_at));
        let foreign = max.saturating_sub(ours).saturating_sub(remaining);
        if foreign > 0 {
            self.entries.push_back((sent_at, foreign));
        }
        foreign
    }

    fn prune(&mut self, now: Instant) {
        // Keep two windows: answers can arrive up to a window after their send.
        let Some(horizon) = now.checked_sub(self.window * 2) else {
            return;
        };
        while self.entries.front().is_some_and(|(t, _)| *t <= horizon) {
            self.entries.pop_front();
        }
        // Entries are pushed in time order except burns; keep the deque bounded regardless.
        if self.entries.len() > 100_000 {
            self.entries.drain(..50_000);
        }
    }
}

/// The daily budget: the configured cap on our own calls, and HubSpot's reported remainder.
#[derive(Debug)]
struct DailyBudget {
    limit: Option<u64>,
    day: NaiveDate,
    used: u64,
    exhausted_at: Option<Instant>,
}

/// How long to wait before probing again after HubSpot reported the daily budget empty.
const DAILY_PROBE_INTERVAL: Duration = Duration::from_secs(60);

impl DailyBudget {
    fn check_and_count(&mut self, today: NaiveDate, now: Instant) -> Result<(), HubSpotError> {
        if today != self.day {
            self.day = today;
            self.used = 0;
            self.exhausted_at = None;
        }
        if self.limit.is_some_and(|limit| self.used >= limit) {
            return Err(HubSpotError::DailyLimitExhausted);
        }
        if let Some(at) = self.exhausted_at {
            if now.duration_since(at) < DAILY_PROBE_INTERVAL {
                return Err(HubSpotError::DailyLimitExhausted);
            }
            self.exhausted_at = Some(now);
        }
        self.used += 1;
        Ok(())
    }
}

struct Pacer {
    bound: RateQuota,
    limiter: DefaultDirectRateLimiter,
}

impl Pacer {
    fn new(bound: RateQuota) -> Arc<Self> {
        Arc::new(Self {
            bound,
            limiter: RateLimiter::direct(pacing_quota(bound)),
        })
    }
}

/// The per-portal governor (see module docs).
pub(crate) struct Governor {
    pacer: RwLock<Arc<Pacer>>,
    search: DefaultDirectRateLimiter,
    ledger: Mutex<WindowLedger>,
    daily: Mutex<DailyBudget>,
}

impl fmt::Debug for Governor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Governor")
            .field("bound", &self.bound())
            .finish_non_exhaustive()
    }
}

impl Governor {
    pub(crate) fn new(bound: RateQuota, search_per_second: NonZeroU32, daily: Option<u64>) -> Self {
        Self {
            pacer: RwLock::new(Pacer::new(bound)),
            search: RateLimiter::direct(search_quota(search_per_second)),
            ledger: Mutex::new(WindowLedger::new(bound.per)),
            daily: Mutex::new(DailyBudget {
                limit: daily,
                day: Utc::now().date_naive(),
                used: 0,
                exhausted_at: None,
            }),
        }
    }

    /// The burst bound currently paced to.
    pub(crate) fn bound(&self) -> RateQuota {
        self.current_pacer().bound
    }

    fn current_pacer(&self) -> Arc<Pacer> {
        match self.pacer.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Waits for a cell of `class` and returns the send instant.
    pub(crate) async fn acquire(&self, class: EndpointClass) -> Result<Instant, HubSpotError> {
        match class {
            EndpointClass::Burst => {
                let pacer = self.current_pacer();
                pacer.limiter.until_ready().await;
            }
            EndpointClass::Search => self.search.until_ready().await,
            EndpointClass::Exempt => {}
        }
        let now = Instant::now();
        lock(&self.daily).check_and_count(Utc::now().date_naive(), now)?;
        if class == EndpointClass::Burst {
            lock(&self.ledger).record_send(now);
        }
        Ok(now)
    }

    /// Feeds one answer's headers back; may wait while paying for other apps' usage.
    pub(crate) async fn observe(
        &self,
        class: EndpointClass,
        sent_at: Instant,
        headers: &RateHeaders,
    ) {
        match headers.daily_remaining {
            Some(0) => {
                lock(&self.daily)
                    .exhausted_at
                    .get_or_insert_with(Instant::now);
            }
            Some(_) => lock(&self.daily).exhausted_at = None,
            None => {}
        }
        if class != EndpointClass::Burst {
            return;
        }
        self.adopt_reported_bound(headers);
        let (Some(remaining), Some(max)) = (headers.remaining, headers.max) else {
            return;
        };
        let foreign = lock(&self.ledger).observe(sent_at, remaining, max, Instant::now());
        if foreign > 0 {
            tracing::debug!(
                foreign,
                remaining,
                "rate budget used elsewhere; slowing down"
            );
            let pacer = self.current_pacer();
            for _ in 0..foreign {
                pacer.limiter.until_ready().await;
            }
        }
    }

    /// Switches to HubSpot's reported bound when it is stricter than ours.
    fn adopt_reported_bound(&self, headers: &RateHeaders) {
        let (Some(max), Some(interval_ms)) = (headers.max, headers.interval_ms) else {
            return;
        };
        let (Some(requests), false) = (NonZeroU32::new(max), interval_ms == 0) else {
            return;
        };
        let reported = RateQuota {
            requests,
            per: Duration::from_millis(interval_ms),
        };
        let current = self.bound();
        // Compare rates: requests per millisecond, cross-multiplied.
        let stricter = u128::from(reported.requests.get()) * current.per.as_millis()
            < u128::from(current.requests.get()) * reported.per.as_millis()
            || reported.requests < current.requests;
        if stricter && reported != current {
            tracing::info!(%reported, %current, "HubSpot reports a stricter rate limit; adopting it");
            let new = RateQuota {
                requests: reported.requests.min(current.requests),
                per: reported.per,
            };
            if let Ok(mut guard) = self.pacer.write() {
                *guard = Pacer::new(new);
            }
            lock(&self.ledger).set_window(new.per);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::{Clock, FakeRelativeClock, Reference};
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    /// Greedily takes every cell the quota allows for `run`, stepping 1 ms, and returns the
    /// grant times in ms.
    fn greedy_grants(quota: Quota, run_ms: u64) -> Vec<u64> {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        let start = clock.now();
        let mut grants = Vec::new();
        for _ in 0..run_ms {
            while limiter.check().is_ok() {
                grants.push(clock.now().duration_since(start).as_u64() / 1_000_000);
            }
            clock.advance(Duration::from_millis(1));
        }
        grants
    }

    fn max_in_window(grants: &[u64], window_ms: u64) -> usize {
        // Half-open windows (t - W, t] ending at each grant.
        grants
            .iter()
            .map(|&end| {
                grants
                    .iter()
                    .filter(|&&t| t <= end && t + window_ms > end)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn default_pacing_stays_under_the_rolling_window_and_reaches_97_percent() {
        let bound = RateQuota::default();
        let grants = greedy_grants(pacing_quota(bound), 60_000);
        let worst = max_in_window(&grants, 10_000);
        assert!(worst <= 99, "{worst} requests in one 10 s window");
        // 60 s at 100/10 s is a bound of 600 (plus the window already open at the end).
        assert!(
            grants.len() as f64 >= 0.97 * 600.0,
            "only {} grants",
            grants.len()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn pacing_never_exceeds_any_bound(n in 5u32..400, per_s in 1u64..20) {
            let bound = RateQuota { requests: NonZeroU32::new(n).unwrap(), per: Duration::from_secs(per_s) };
            let run = per_s * 1000 * 4;
            let grants = greedy_grants(pacing_quota(bound), run);
            let worst = max_in_window(&grants, per_s * 1000);
            prop_assert!(worst < n as usize, "{} in a window of bound {}", worst, n);
            if n >= 100 {
                let ideal = f64::from(n) * 4.0;
                prop_assert!(grants.len() as f64 >= 0.97 * ideal, "{} of {}", grants.len(), ideal);
            }
        }
    }

    #[test]
    fn search_pacing_leaves_headroom_under_five_per_second() {
        let grants = greedy_grants(search_quota(NonZeroU32::new(4).unwrap()), 10_000);
        assert!(max_in_window(&grants, 1_000) <= 4);
        assert!(grants.len() >= 39);
    }

    #[test]
    fn quota_parses() {
        let q: RateQuota = "190/10s".parse().expect("parses");
        assert_eq!(q.requests.get(), 190);
        assert_eq!(q.per, Duration::from_secs(10));
        assert_eq!(
            "5/1s".parse::<RateQuota>().expect("parses").per,
            Duration::from_secs(1)
        );
        assert_eq!(
            "300/1m".parse::<RateQuota>().expect("parses").per,
            Duration::from_secs(60)
        );
        assert_eq!(
            "5/500ms".parse::<RateQuota>().expect("parses").per,
            Duration::from_millis(500)
        );
        assert_eq!(
            "5/s".parse::<RateQuota>().expect("parses").per,
            Duration::from_secs(1)
        );
        for bad in ["", "100", "0/10s", "100/10h", "x/10s", "100/0s"] {
            assert!(bad.parse::<RateQuota>().is_err(), "{bad:?}");
        }
        assert_eq!(RateQuota::default().requests.get(), 100);
    }

    #[test]
    fn headers_parse() {
        let mut h = HeaderMap::new();
        h.insert("X-HubSpot-RateLimit-Max", HeaderValue::from_static("150"));
        h.insert(
            "X-HubSpot-RateLimit-Remaining",
            HeaderValue::from_static("149"),
        );
        h.insert(
            "X-HubSpot-RateLimit-Interval-Milliseconds",
            HeaderValue::from_static("10000"),
        );
        h.insert(
            "X-HubSpot-RateLimit-Daily-Remaining",
            HeaderValue::from_static("498677"),
        );
        h.insert(
            "X-HubSpot-RateLimit-Daily",
            HeaderValue::from_static("junk"),
        );
        let r = RateHeaders::parse(&h);
        assert_eq!(r.max, Some(150));
        assert_eq!(r.remaining, Some(149));
        assert_eq!(r.interval_ms, Some(10_000));
        assert_eq!(r.daily_remaining, Some(498_677));
        assert_eq!(r.daily, None);
    }

    #[test]
    fn ledger_ignores_our_own_usage_and_charges_foreign_usage_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut ledger = WindowLedger::new(Duration::from_secs(10));
        // We send 50 requests; HubSpot reports exactly what we used.
        for i in 0..50 {
            ledger.record_send(t0 + ms(i * 100));
        }
        let last = t0 + ms(4900);
        assert_eq!(ledger.observe(last, 50, 100, last + ms(20)), 0);
        // More remaining than we expect (our old sends left HubSpot's window first): free.
        assert_eq!(ledger.observe(last, 53, 100, last + ms(20)), 0);
        // Another app used 20 more: we pay 20 once...
        assert_eq!(ledger.observe(last, 30, 100, last + ms(20)), 20);
        // ...and the same report again costs nothing more.
        assert_eq!(ledger.observe(last, 30, 100, last + ms(30)), 0);
        // A later send of ours that overtook this one is not someone else's.
        ledger.record_send(last + ms(10));
        assert_eq!(ledger.observe(last, 29, 100, last + ms(40)), 0);
        // Sends older than the window no longer count as ours.
        let later = t0 + ms(30_000);
        ledger.record_send(later);
        assert_eq!(ledger.spent_at(later), 1);
        assert_eq!(ledger.observe(later, 99, 100, later), 0);
    }

    #[test]
    fn only_a_stricter_reported_bound_is_adopted() {
        let governor = Governor::new(RateQuota::default(), NonZeroU32::MIN, None);
        let report = |max, interval_ms| RateHeaders {
            max: Some(max),
            interval_ms: Some(interval_ms),
            ..RateHeaders::default()
        };
        governor.adopt_reported_bound(&report(190, 10_000));
        assert_eq!(
            governor.bound(),
            RateQuota::default(),
            "a looser portal keeps our headroom"
        );
        governor.adopt_reported_bound(&report(0, 10_000));
        assert_eq!(governor.bound(), RateQuota::default(), "garbage is ignored");
        governor.adopt_reported_bound(&report(50, 10_000));
        assert_eq!(governor.bound(), "50/10s".parse().expect("quota"));
        governor.adopt_reported_bound(&report(5, 1_000));
        assert_eq!(governor.bound(), "5/1s".parse().expect("quota"));
        assert_eq!(lock(&governor.ledger).window, Duration::from_secs(1));
    }

    #[test]
    fn daily_budget_counts_and_rolls_over() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
        let now = Instant::now();
        let mut b = DailyBudget {
            limit: Some(2),
            day,
            used: 0,
            exhausted_at: None,
        };
        assert!(b.check_and_count(day, now).is_ok());
        assert!(b.check_and_count(day, now).is_ok());
        assert!(matches!(
            b.check_and_count(day, now),
            Err(HubSpotError::DailyLimitExhausted)
        ));
        let tomorrow = day.succ_opt().expect("date");
        assert!(b.check_and_count(tomorrow, now).is_ok());
        // HubSpot said zero left: refuse, then probe once a minute.
        b.exhausted_at = Some(now);
        b.limit = None;
        assert!(
            b.check_and_count(tomorrow, now + Duration::from_secs(1))
                .is_err()
        );
        assert!(
            b.check_and_count(tomorrow, now + DAILY_PROBE_INTERVAL)
                .is_ok()
        );
    }
}
