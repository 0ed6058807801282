//! Fault injection and the traffic gate every public API request passes: added latency,
//! injected 5xx and 429 answers (random rates and storms), rate limits, search index lag,
//! webhook faults, and the request counters. Control: `GET|POST|DELETE /_emulator/faults`.
//!
//! Random decisions come from one generator seeded by `seed` (default 0), so a test that sends
//! the same requests in the same order sees the same faults.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Bytes,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    ApiError, AppState, EmulatorConfig,
    payload::parse_json,
    rate_limit::{Policy, RateLimiter, Verdict, classify},
    stats::{Stats, route_label},
};

/// A 429 storm: every public request is throttled until it ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storm {
    /// Lasts this many seconds from when it was set.
    pub seconds: Option<f64>,
    /// Or ends after this many throttled requests.
    pub requests: Option<u64>,
}

/// The fault settings (`POST /_emulator/faults` replaces them; absent fields are off).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every public request, milliseconds.
    pub latency_ms: u64,
    /// Plus a uniform random 0..=jitter_ms.
    pub jitter_ms: u64,
    /// Probability (0–1) of answering a 5xx instead of serving.
    pub error_rate: f64,
    /// The 5xx statuses to pick from (default 500, 502, 503, 504).
    pub error_statuses: Vec<u16>,
    /// Probability (0–1) of answering 429 instead of serving.
    pub rate_limit_rate: f64,
    /// A 429 storm.
    pub storm: Option<Storm>,
    /// Records changed within this many milliseconds are not yet visible to search.
    pub search_lag_ms: u64,
    /// Only requests whose path starts with one of these are affected (empty: all).
    pub paths: Vec<String>,
    /// Probability that a webhook event is never delivered.
    pub webhook_drop: f64,
    /// Probability that a delivered webhook event is delivered again (attemptNumber + 1).
    pub webhook_duplicate: f64,
    /// Probability that a webhook batch is shuffled and sent late (after later batches).
    pub webhook_reorder: f64,
    /// Probability that a webhook event is held back for `webhook_delay_ms`.
    pub webhook_delay: f64,
    /// How long delayed webhook events are held, milliseconds (default 2000).
    pub webhook_delay_ms: u64,
    /// Seed of the random decisions.
    pub seed: u64,
}

/// Default statuses of injected server errors.
const DEFAULT_ERROR_STATUSES: [u16; 4] = [500, 502, 503, 504];
/// Default hold of a delayed webhook event.
const DEFAULT_WEBHOOK_DELAY: Duration = Duration::from_secs(2);

impl FaultConfig {
    fn validate(&self) -> Result<(), String> {
        let rates = [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("webhook_drop", self.webhook_drop),
            ("webhook_duplicate", self.webhook_duplicate),
            ("webhook_reorder", self.webhook_reorder),
            ("webhook_delay", self.webhook_delay),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if let Some(bad) = self
            .error_statuses
            .iter()
            .find(|s| !(500..=599).contains(*s))
        {
            return Err(format!("error_statuses must be 5xx codes, got {bad}"));
        }
        if self
            .storm
            .as_ref()
            .and_then(|s| s.seconds)
            .is_some_and(|s| !(0.0..=1e9).contains(&s))
        {
            return Err("storm.seconds must be a non-negative number".to_owned());
        }
        Ok(())
    }

    fn applies_to(&self, path: &str) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// Webhook fault probabilities, as the delivery loop needs them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WebhookFaults {
    /// See [`FaultConfig::webhook_drop`].
    pub drop: f64,
    /// See [`FaultConfig::webhook_duplicate`].
    pub duplicate: f64,
    /// See [`FaultConfig::webhook_reorder`].
    pub reorder: f64,
    /// See [`FaultConfig::webhook_delay`].
    pub delay: f64,
    /// See [`FaultConfig::webhook_delay_ms`].
    pub delay_for: Duration,
}

#[derive(Debug)]
struct FaultState {
    config: FaultConfig,
    rng: StdRng,
    storm_until: Option<Instant>,
    storm_left: Option<u64>,
}

/// What the fault injector decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Serve,
    ServerError(u16),
    Throttle,
}

/// Traffic control shared by every request: faults, rate limits and counters.
#[derive(Debug)]
pub struct Traffic {
    faults: Mutex<FaultState>,
    /// The rate limiter.
    pub limits: RateLimiter,
    /// The counters.
    pub stats: Stats,
    portal_id: u32,
}

impl Traffic {
    /// Traffic control for a configuration (no faults set).
    pub fn new(config: &EmulatorConfig) -> Self {
        Self {
            faults: Mutex::new(FaultState {
                config: FaultConfig::default(),
                rng: StdRng::seed_from_u64(0),
                storm_until: None,
                storm_left: None,
            }),
            limits: RateLimiter::new(config),
            stats: Stats::default(),
            portal_id: config.portal_id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records modified within this duration are not yet visible to search (CORE's search
    /// honours it).
    pub fn search_lag(&self) -> Duration {
        Duration::from_millis(self.lock().config.search_lag_ms)
    }

    /// The current fault settings.
    pub fn faults(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Replaces the fault settings (re-seeds the generator, restarts any storm).
    pub fn set_faults(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        let mut state = self.lock();
        let now = Instant::now();
        state.rng = StdRng::seed_from_u64(config.seed);
        state.storm_until = config
            .storm
            .as_ref()
            .and_then(|s| s.seconds)
            .map(|s| now + Duration::from_secs_f64(s));
        state.storm_left = config.storm.as_ref().and_then(|s| s.requests);
        state.config = config;
        Ok(())
    }

    /// The webhook fault probabilities.
    pub fn webhook_faults(&self) -> WebhookFaults {
        let c = &self.lock().config;
        WebhookFaults {
            drop: c.webhook_drop,
            duplicate: c.webhook_duplicate,
            reorder: c.webhook_reorder,
            delay: c.webhook_delay,
            delay_for: if c.webhook_delay_ms == 0 {
                DEFAULT_WEBHOOK_DELAY
            } else {
                Duration::from_millis(c.webhook_delay_ms)
            },
        }
    }

    /// True with probability `p`, from the seeded generator.
    pub fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.lock().rng.random_bool(p.min(1.0))
    }

    /// A random number in `0..n` from the seeded generator (0 when `n` is 0).
    pub fn pick(&self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.lock().rng.random_range(0..n)
        }
    }

    /// Decides latency and outcome for one request.
    fn decide(&self, path: &str, now: Instant) -> (Duration, Outcome) {
        let mut guard = self.lock();
        let s = &mut *guard;
        if !s.config.applies_to(path) {
            return (Duration::ZERO, Outcome::Serve);
        }
        let jitter = if s.config.jitter_ms > 0 {
            s.rng.random_range(0..=s.config.jitter_ms)
        } else {
            0
        };
        let latency = Duration::from_millis(s.config.latency_ms.saturating_add(jitter));
        let in_storm = s.storm_until.is_some_and(|until| now < until)
            || s.storm_left.is_some_and(|left| left > 0);
        if in_storm {
            if let Some(left) = s.storm_left.as_mut() {
                *left = left.saturating_sub(1);
            }
            return (latency, Outcome::Throttle);
        }
        let (error_rate, limit_rate) = (s.config.error_rate, s.config.rate_limit_rate);
        if error_rate > 0.0 && s.rng.random_bool(error_rate.min(1.0)) {
            let statuses = if s.config.error_statuses.is_empty() {
                DEFAULT_ERROR_STATUSES.to_vec()
            } else {
                s.config.error_statuses.clone()
            };
            let status = statuses[s.rng.random_range(0..statuses.len())];
            return (latency, Outcome::ServerError(status));
        }
        if limit_rate > 0.0 && s.rng.random_bool(limit_rate.min(1.0)) {
            return (latency, Outcome::Throttle);
        }
        (latency, Outcome::Serve)
    }

    fn storm_json(&self) -> Value {
        let s = self.lock();
        let now = Instant::now();
        json!({
            "active": s.storm_until.is_some_and(|u| now < u) || s.storm_left.is_some_and(|l| l > 0),
            "seconds_left": s.storm_until.map(|u| u.saturating_duration_since(now).as_secs_f64()),
            "requests_left": s.storm_left,
        })
    }
}

/// An injected server error (HubSpot's 5xx bodies vary; this is the JSON form).
fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, "INTERNAL_ERROR", "internal error").into_response()
}

/// The traffic gate (install as a layer): control routes pass untouched; public requests are
/// counted, delayed, possibly failed or throttled, rate limited, and get the rate-limit headers.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/_emulator") {
        return next.run(request).await;
    }
    let traffic = &state.traffic;
    let method = request.method().clone();
    traffic.stats.request(route_label(&method, &path));
    let class = classify(&method, &path);
    let now = Instant::now();
    let (latency, outcome) = traffic.decide(&path, now);
    if !latency.is_zero() {
        traffic.stats.update(|c| c.faults.delayed += 1);
        tokio::time::sleep(latency).await;
    }
    let (response, policy) = match outcome {
        Outcome::ServerError(status) => {
            traffic.stats.update(|c| c.faults.server_errors += 1);
            (server_error(status), None)
        }
        Outcome::Throttle => {
            traffic.stats.update(|c| c.faults.throttled += 1);
            let policy = Policy::for_class(class);
            (
                policy.error(traffic.portal_id).into_response(),
                Some(policy),
            )
        }
        Outcome::Serve => match traffic.limits.check(class, now) {
            Verdict::Refused(policy, headers) => {
                let mut response = policy.error(traffic.portal_id).into_response();
                response.headers_mut().extend(headers);
                (response, Some(policy))
            }
            Verdict::Allowed(headers) => {
                let mut response = next.run(request).await;
                response.headers_mut().extend(headers);
                (response, None)
            }
        },
    };
    let policy_name = policy.map(|p| match p {
        Policy::TenSecondlyRolling => "TEN_SECONDLY_ROLLING",
        Policy::Secondly => "SECONDLY",
        Policy::Daily => "DAILY",
    });
    traffic
        .stats
        .response(response.status().as_u16(), policy_name);
    response
}

/// `GET|POST|DELETE /_emulator/faults` (control API: no auth, no limits).
pub fn routes() -> Router<AppState> {
    Router::new().route("/_emulator/faults", get(show).post(set).delete(clear))
}

fn faults_json(traffic: &Traffic) -> Value {
    let mut body = serde_json::to_value(traffic.faults()).unwrap_or_default();
    body["storm_state"] = traffic.storm_json();
    body
}

async fn show(State(state): State<AppState>) -> Response {
    axum::Json(faults_json(&state.traffic)).into_response()
}

async fn set(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let value = if body.is_empty() {
        json!({})
    } else {
        parse_json(&body)?
    };
    let config: FaultConfig = serde_json::from_value(value)
        .map_err(|e| ApiError::validation(format!("Invalid fault settings: {e}")))?;
    state
        .traffic
        .set_faults(config)
        .map_err(ApiError::validation)?;
    Ok(axum::Json(faults_json(&state.traffic)).into_response())
}

async fn clear(State(state): State<AppState>) -> Response {
    let _ = state.traffic.set_faults(FaultConfig::default());
    axum::Json(faults_json(&state.traffic)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(config: FaultConfig) -> Traffic {
        let t = Traffic::new(&EmulatorConfig::default());
        assert_eq!(t.set_faults(config), Ok(()));
        t
    }

    #[test]
    fn same_seed_same_decisions() {
        let config = FaultConfig {
            error_rate: 0.3,
            rate_limit_rate: 0.3,
            seed: 9,
            ..FaultConfig::default()
        };
        let (a, b) = (traffic(config.clone()), traffic(config));
        let now = Instant::now();
        let run = |t: &Traffic| (0..50).map(|_| t.decide("/crm", now).1).collect::<Vec<_>>();
        let first = run(&a);
        assert_eq!(first, run(&b));
        assert!(first.contains(&Outcome::Throttle));
        assert!(
            first
                .iter()
                .any(|o| matches!(o, Outcome::ServerError(500..=504)))
        );
        assert!(first.contains(&Outcome::Serve));
    }

    #[test]
    fn request_counted_storm_ends() {
        let storm = Storm {
            seconds: None,
            requests: Some(2),
        };
        let t = traffic(FaultConfig {
            storm: Some(storm),
            ..FaultConfig::default()
        });
        let now = Instant::now();
        assert_eq!(t.decide("/crm", now).1, Outcome::Throttle);
        assert_eq!(t.decide("/crm", now).1, Outcome::Throttle);
        assert_eq!(t.decide("/crm", now).1, Outcome::Serve);
    }

    #[test]
    fn timed_storm_and_path_filter() {
        let storm = Storm {
            seconds: Some(5.0),
            requests: None,
        };
        let config = FaultConfig {
            storm: Some(storm),
            paths: vec!["/crm/v3".into()],
            ..FaultConfig::default()
        };
        let t = traffic(config);
        let now = Instant::now();
        assert_eq!(
            t.decide("/crm/v3/objects/contacts", now).1,
            Outcome::Throttle
        );
        assert_eq!(t.decide("/crm/v4/objects", now).1, Outcome::Serve);
        let later = now + Duration::from_secs(6);
        assert_eq!(
            t.decide("/crm/v3/objects/contacts", later).1,
            Outcome::Serve
        );
    }

    #[test]
    fn invalid_rates_are_refused() {
        let t = Traffic::new(&EmulatorConfig::default());
        let bad = FaultConfig {
            webhook_drop: 1.5,
            ..FaultConfig::default()
        };
        assert!(t.set_faults(bad).is_err());
        let bad = FaultConfig {
            error_statuses: vec![404],
            ..FaultConfig::default()
        };
        assert!(t.set_faults(bad).is_err());
    }
}
