//! HubSpot's rate limits (hubspot-api.md §3): a rolling 10-second burst bucket, a daily bucket
//! and a separate per-second bucket for CRM search; the `X-HubSpot-RateLimit-*` headers on
//! every non-search response (§3.2) and the exact 429 bodies clients match on (§3.3, §16.6–7).
//!
//! Search endpoints and association batch endpoints are exempt from the burst bucket
//! (`x-hubspot-rate-limit-exemptions: ["ten-secondly"]`); everything counts toward the daily
//! bucket. Rejected requests are not charged.

// Route helpers return `Result<_, ApiError>` like every handler; the error is the response.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ApiError, AppState, EmulatorConfig, RateLimit, payload::parse_json};

/// Which buckets a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// Burst + daily; carries the rate-limit headers.
    Standard,
    /// CRM search: search-per-second + daily; no rate-limit headers.
    Search,
    /// Association batch endpoints: daily only (exempt from the burst bucket).
    BurstExempt,
}

/// Classifies a public API request.
pub fn classify(method: &Method, path: &str) -> RequestClass {
    let path = path.trim_end_matches('/');
    if *method == Method::POST && path.starts_with("/crm/") && path.ends_with("/search") {
        return RequestClass::Search;
    }
    let association_batch = (path.starts_with("/crm/v4/associations/")
        || path.starts_with("/crm/v3/associations/"))
        && path.contains("/batch/");
    if association_batch {
        RequestClass::BurstExempt
    } else {
        RequestClass::Standard
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The rolling 10-second burst limit.
    TenSecondlyRolling,
    /// The search per-second limit.
    Secondly,
    /// The daily limit.
    Daily,
}

impl Policy {
    /// The policy a throttled request of this class is refused under (fault-injected 429s).
    pub fn for_class(class: RequestClass) -> Self {
        if class == RequestClass::Search {
            Self::Secondly
        } else {
            Self::TenSecondlyRolling
        }
    }

    /// The 429 body HubSpot sends for this policy (§3.3).
    pub fn error(self, portal_id: u32) -> ApiError {
        match self {
            Self::TenSecondlyRolling => ApiError::rate_limited(
                "You have reached your ten_secondly_rolling limit.",
                "TEN_SECONDLY_ROLLING",
                &format!("publicapi:private-app-api-calls-ten-secondly:{portal_id}"),
            ),
            Self::Secondly => ApiError::rate_limited(
                "You have reached your secondly limit.",
                "SECONDLY",
                &format!("publicapi:private-app-secondly:{portal_id}"),
            ),
            Self::Daily => ApiError::rate_limited(
                "You have reached your daily limit.",
                "DAILY",
                &format!("publicapi:private-app-api-calls-daily:{portal_id}"),
            ),
        }
    }
}

/// The limits in force (settable at runtime through `/_emulator/rate-limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitSettings {
    /// Burst limit as `"N/Ts"` (`"100/10s"`), or `"off"`.
    pub burst: String,
    /// Daily cap, or `null` for none.
    pub daily: Option<u64>,
    /// Search requests per second, or `null` for none.
    pub search_per_second: Option<u32>,
}

/// Parses `"100/10s"`, `"5/1s"`, `"100/10"` (seconds) or `"off"`.
pub fn parse_burst(text: &str) -> Result<Option<RateLimit>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (requests, per) = text
        .split_once('/')
        .ok_or_else(|| format!("expected N/10s or off, got {text:?}"))?;
    let requests: u32 = requests
        .trim()
        .parse()
        .map_err(|_| format!("bad request count in {text:?}"))?;
    let per = per.trim();
    let (number, unit) = per.split_at(per.find(|c: char| !c.is_ascii_digit()).unwrap_or(per.len()));
    let number: u64 = if number.is_empty() {
        1
    } else {
        number
            .parse()
            .map_err(|_| format!("bad window in {text:?}"))?
    };
    let seconds = match unit {
        "" | "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("bad window unit in {text:?}")),
    };
    if requests == 0 || seconds == 0 {
        return Err(format!("limit and window must be positive in {text:?}"));
    }
    Ok(Some(RateLimit {
        requests,
        per: Duration::from_secs(seconds),
    }))
}

/// Formats a burst limit back to `"N/Ts"`.
pub fn format_burst(limit: Option<RateLimit>) -> String {
    limit.map_or_else(
        || "off".to_owned(),
        |l| format!("{}/{}s", l.requests, l.per.as_secs()),
    )
}

#[derive(Debug)]
struct Buckets {
    burst: Option<RateLimit>,
    daily: Option<u64>,
    search_per_second: Option<u32>,
    burst_log: VecDeque<Instant>,
    search_log: VecDeque<Instant>,
    daily_used: u64,
    day: chrono::NaiveDate,
}

/// What the limiter decided for one request.
#[derive(Debug)]
pub enum Verdict {
    /// Allowed; put these headers on the response.
    Allowed(HeaderMap),
    /// Refused under this policy (the headers still apply).
    Refused(Policy, HeaderMap),
}

/// The emulator's rate limiter.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<Buckets>,
}

fn trim(log: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while log
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        log.pop_front();
    }
}

fn header(map: &mut HeaderMap, name: &'static str, value: u64) {
    if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
        map.insert(HeaderName::from_static(name), value);
    }
}

impl RateLimiter {
    /// A limiter with the configured limits.
    pub fn new(config: &EmulatorConfig) -> Self {
        Self {
            buckets: Mutex::new(Buckets {
                burst: config.rate_limit,
                daily: config.daily_limit,
                search_per_second: config.search_per_second,
                burst_log: VecDeque::new(),
                search_log: VecDeque::new(),
                daily_used: 0,
                day: chrono::Utc::now().date_naive(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The limits in force.
    pub fn settings(&self) -> LimitSettings {
        let b = self.lock();
        LimitSettings {
            burst: format_burst(b.burst),
            daily: b.daily,
            search_per_second: b.search_per_second,
        }
    }

    /// Replaces the limits (usage counters are kept).
    pub fn set(&self, burst: Option<RateLimit>, daily: Option<u64>, search: Option<u32>) {
        let mut b = self.lock();
        b.burst = burst;
        b.daily = daily;
        b.search_per_second = search;
    }

    /// Forgets all usage (windows and the daily count).
    pub fn reset_usage(&self) {
        let mut b = self.lock();
        b.burst_log.clear();
        b.search_log.clear();
        b.daily_used = 0;
    }

    /// Charges one request of `class` at `now`, or refuses it.
    pub fn check(&self, class: RequestClass, now: Instant) -> Verdict {
        let mut b = self.lock();
        let today = chrono::Utc::now().date_naive();
        if today != b.day {
            b.day = today;
            b.daily_used = 0;
        }
        if let Some(limit) = b.burst {
            let per = limit.per;
            trim(&mut b.burst_log, now, per);
        }
        trim(&mut b.search_log, now, Duration::from_secs(1));
        let refused = if b.daily.is_some_and(|d| b.daily_used >= d) {
            Some(Policy::Daily)
        } else {
            match class {
                RequestClass::Standard => b
                    .burst
                    .filter(|l| b.burst_log.len() >= l.requests as usize)
                    .map(|_| Policy::TenSecondlyRolling),
                RequestClass::Search => b
                    .search_per_second
                    .filter(|n| b.search_log.len() >= *n as usize)
                    .map(|_| Policy::Secondly),
                RequestClass::BurstExempt => None,
            }
        };
        if refused.is_none() {
            b.daily_used += 1;
            match class {
                RequestClass::Standard if b.burst.is_some() => b.burst_log.push_back(now),
                RequestClass::Search => b.search_log.push_back(now),
                _ => {}
            }
        }
        let headers = if class == RequestClass::Search {
            HeaderMap::new()
        } else {
            headers(&b, now)
        };
        match refused {
            Some(policy) => Verdict::Refused(policy, headers),
            None => Verdict::Allowed(headers),
        }
    }
}

/// The `X-HubSpot-RateLimit-*` headers (§3.2) for the current usage.
fn headers(b: &Buckets, now: Instant) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Some(daily) = b.daily {
        header(&mut map, "x-hubspot-ratelimit-daily", daily);
        header(
            &mut map,
            "x-hubspot-ratelimit-daily-remaining",
            daily.saturating_sub(b.daily_used),
        );
    }
    if let Some(limit) = b.burst {
        let max = u64::from(limit.requests);
        let used = b.burst_log.len() as u64;
        let window_ms = u64::try_from(limit.per.as_millis()).unwrap_or(u64::MAX);
        let secondly = (max * 1000 / window_ms.max(1)).max(1);
        let last_second = b
            .burst_log
            .iter()
            .rev()
            .take_while(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count() as u64;
        header(
            &mut map,
            "x-hubspot-ratelimit-interval-milliseconds",
            window_ms,
        );
        header(&mut map, "x-hubspot-ratelimit-max", max);
        header(
            &mut map,
            "x-hubspot-ratelimit-remaining",
            max.saturating_sub(used),
        );
        header(&mut map, "x-hubspot-ratelimit-secondly", secondly);
        header(
            &mut map,
            "x-hubspot-ratelimit-secondly-remaining",
            secondly.saturating_sub(last_second),
        );
    }
    map
}

/// `GET|POST /_emulator/rate-limits` (control API): shows or changes the limits at runtime.
/// POST takes any of `{"burst": "100/10s"|"off", "daily": N|"off"|null,
/// "search_per_second": N|"off"|null}` (as the `--daily-limit` / `--search-rate-limit` flags
/// take `off`); absent fields keep their value.
pub fn routes() -> Router<AppState> {
    Router::new().route("/_emulator/rate-limits", get(show).post(set))
}

async fn show(State(state): State<AppState>) -> Response {
    axum::Json(state.traffic.limits.settings()).into_response()
}

async fn set(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let value = parse_json(&body)?;
    let limits = &state.traffic.limits;
    let current = limits.settings();
    let burst_text = match value.get("burst") {
        None => current.burst,
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => "off".to_owned(),
        Some(other) => {
            return Err(ApiError::validation(format!(
                "burst must be a string, got {other}"
            )));
        }
    };
    let burst = parse_burst(&burst_text).map_err(ApiError::validation)?;
    let number = |field: &str, current: Option<u64>| -> Result<Option<u64>, ApiError> {
        match value.get(field) {
            None => Ok(current),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("off") => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ApiError::validation(format!("{field} must be a number, \"off\" or null"))
            }),
        }
    };
    let daily = number("daily", current.daily)?;
    let search = number(
        "search_per_second",
        current.search_per_second.map(u64::from),
    )?
    .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    limits.set(burst, daily, search);
    Ok(axum::Json(limits.settings()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: &str, daily: Option<u64>, search: Option<u32>) -> RateLimiter {
        let config = EmulatorConfig {
            rate_limit: parse_burst(burst).unwrap_or_default(),
            daily_limit: daily,
            search_per_second: search,
            ..EmulatorConfig::default()
        };
        RateLimiter::new(&config)
    }

    #[test]
    fn burst_window_rolls() {
        let l = limiter("3/10s", None, None);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(matches!(
                l.check(RequestClass::Standard, t0),
                Verdict::Allowed(_)
            ));
        }
        assert!(matches!(
            l.check(RequestClass::Standard, t0),
            Verdict::Refused(Policy::TenSecondlyRolling, _)
        ));
        // Exempt classes pass while the burst bucket is full.
        assert!(matches!(
            l.check(RequestClass::BurstExempt, t0),
            Verdict::Allowed(_)
        ));
        let later = t0 + Duration::from_secs(10);
        assert!(matches!(
            l.check(RequestClass::Standard, later),
            Verdict::Allowed(_)
        ));
    }

    #[test]
    fn headers_count_down() {
        let l = limiter("100/10s", Some(1000), Some(5));
        let Verdict::Allowed(h) = l.check(RequestClass::Standard, Instant::now()) else {
            panic!("first request is allowed")
        };
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(get("x-hubspot-ratelimit-max").as_deref(), Some("100"));
        assert_eq!(get("x-hubspot-ratelimit-remaining").as_deref(), Some("99"));
        assert_eq!(
            get("x-hubspot-ratelimit-interval-milliseconds").as_deref(),
            Some("10000")
        );
        assert_eq!(get("x-hubspot-ratelimit-secondly").as_deref(), Some("10"));
        assert_eq!(
            get("x-hubspot-ratelimit-daily-remaining").as_deref(),
            Some("999")
        );
        let Verdict::Allowed(search) = l.check(RequestClass::Search, Instant::now()) else {
            panic!("search is allowed")
        };
        assert!(search.is_empty());
    }

    #[test]
    fn search_and_daily_limits() {
        let l = limiter("off", Some(3), Some(2));
        let t0 = Instant::now();
        assert!(matches!(
            l.check(RequestClass::Search, t0),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            l.check(RequestClass::Search, t0),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            l.check(RequestClass::Search, t0),
            Verdict::Refused(Policy::Secondly, _)
        ));
        assert!(matches!(
            l.check(RequestClass::Standard, t0),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            l.check(RequestClass::Standard, t0),
            Verdict::Refused(Policy::Daily, _)
        ));
    }

    #[test]
    fn parses_burst_specs() {
        assert_eq!(parse_burst("off"), Ok(None));
        let limit = parse_burst("190/10s").ok().flatten();
        assert_eq!(
            limit.map(|l| (l.requests, l.per.as_secs())),
            Some((190, 10))
        );
        assert!(parse_burst("ten").is_err());
        assert!(parse_burst("0/10s").is_err());
        assert_eq!(format_burst(parse_burst("5/1m").ok().flatten()), "5/60s");
    }

    #[test]
    fn classifies_paths() {
        assert_eq!(
            classify(&Method::POST, "/crm/v3/objects/contacts/search"),
            RequestClass::Search
        );
        assert_eq!(
            classify(&Method::GET, "/crm/v3/objects/contacts"),
            RequestClass::Standard
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/crm/v4/associations/contacts/companies/batch/read"
            ),
            RequestClass::BurstExempt
        );
    }
}
