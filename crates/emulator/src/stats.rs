//! Request and delivery counters behind `GET /_emulator/stats`, cleared by
//! `POST /_emulator/reset`. Only public API requests count (control routes are not).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::Method,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    ApiError, AppState,
    payload::{parse_json, write_crm},
};

/// Webhook delivery counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct WebhookCounters {
    /// Events handed to the delivery queue (after subscription matching).
    pub events_queued: u64,
    /// Events in successfully delivered requests (a duplicate counts again).
    pub events_delivered: u64,
    /// Successful POSTs.
    pub requests_delivered: u64,
    /// Failed attempts (error status, timeout, connection failure).
    pub attempts_failed: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Events abandoned after the last retry or a non-retryable answer.
    pub events_given_up: u64,
    /// Events dropped by the `webhook_drop` fault.
    pub events_dropped: u64,
    /// Extra deliveries made by the `webhook_duplicate` fault.
    pub events_duplicated: u64,
    /// Events held back by the `webhook_delay` fault.
    pub events_delayed: u64,
    /// Batches shuffled by the `webhook_reorder` fault.
    pub batches_reordered: u64,
    /// Events discarded because no target URL was set.
    pub events_without_target: u64,
    /// Events lost because delivery fell too far behind the event bus.
    pub events_lagged: u64,
}

/// Fault-injection counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FaultCounters {
    /// Requests that were delayed.
    pub delayed: u64,
    /// Injected 5xx answers.
    pub server_errors: u64,
    /// Injected 429 answers (random rate and storms).
    pub throttled: u64,
}

/// Every counter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Counters {
    /// When counting started (ISO-8601).
    pub since: String,
    /// Public API requests received.
    pub requests_total: u64,
    /// Requests answered 429 (real limits and injected).
    pub rate_limited_total: u64,
    /// Requests per `METHOD /path` with ids replaced by `{id}`.
    pub by_route: BTreeMap<String, u64>,
    /// Responses per status code.
    pub by_status: BTreeMap<u16, u64>,
    /// 429s per policy (`TEN_SECONDLY_ROLLING`, `SECONDLY`, `DAILY`).
    pub rate_limited_by_policy: BTreeMap<String, u64>,
    /// Fault injection.
    pub faults: FaultCounters,
    /// Webhook delivery.
    pub webhooks: WebhookCounters,
    /// The `X-HubSpot-Correlation-Id` of the last answer per `METHOD /path` (keys as in
    /// `by_route`), so a test can match what a client recorded with the emulator's answer.
    pub last_correlation_ids: BTreeMap<String, String>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            since: crate::payload::timestamp_now(),
            requests_total: 0,
            rate_limited_total: 0,
            by_route: BTreeMap::new(),
            by_status: BTreeMap::new(),
            rate_limited_by_policy: BTreeMap::new(),
            faults: FaultCounters::default(),
            webhooks: WebhookCounters::default(),
            last_correlation_ids: BTreeMap::new(),
        }
    }
}

/// Most distinct `by_route` keys kept.
pub const MAX_ROUTES: usize = 1000;

/// Thread-safe counters.
#[derive(Debug, Default)]
pub struct Stats {
    counters: Mutex<Counters>,
}

impl Stats {
    /// Applies `f` to the counters.
    pub fn update(&self, f: impl FnOnce(&mut Counters)) {
        let mut c = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut c);
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Counters {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        self.update(|c| *c = Counters::default());
    }

    /// Counts one incoming request (routes beyond [`MAX_ROUTES`] distinct keys count under
    /// `"other"`, so odd paths cannot grow the map without bound).
    pub fn request(&self, route: String) {
        self.update(|c| {
            c.requests_total += 1;
            let key = if c.by_route.len() >= MAX_ROUTES && !c.by_route.contains_key(&route) {
                "other".to_owned()
            } else {
                route
            };
            *c.by_route.entry(key).or_default() += 1;
        });
    }

    /// Remembers the correlation id of the last answer on `route` (bounded like `by_route`).
    pub fn correlation(&self, route: String, id: String) {
        self.update(|c| {
            let known = c.last_correlation_ids.contains_key(&route);
            if known || c.last_correlation_ids.len() < MAX_ROUTES {
                c.last_correlation_ids.insert(route, id);
            }
        });
    }

    /// Counts one response status (and a 429's policy).
    pub fn response(&self, status: u16, policy: Option<&str>) {
        self.update(|c| {
            *c.by_status.entry(status).or_default() += 1;
            if status == 429 {
                c.rate_limited_total += 1;
                if let Some(policy) = policy {
                    *c.rate_limited_by_policy
                        .entry(policy.to_owned())
                        .or_default() += 1;
                }
            }
        });
    }

    /// Updates the webhook counters.
    pub fn webhooks(&self, f: impl FnOnce(&mut WebhookCounters)) {
        self.update(|c| f(&mut c.webhooks));
    }
}

/// Whether a path segment is a record id (digits, or an email used with `idProperty`).
fn is_id(segment: &str) -> bool {
    (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())) || segment.contains('@')
}

/// `METHOD /path` with ids replaced by `{id}` (the `by_route` key).
pub fn route_label(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| if is_id(s) { "{id}" } else { s })
        .collect();
    format!("{method} {}", segments.join("/"))
}

/// `GET /_emulator/stats` and `POST /_emulator/reset` (control API).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/stats", get(show))
        .route("/_emulator/reset", post(reset))
}

async fn show(State(state): State<AppState>) -> Response {
    let mut body = serde_json::to_value(state.traffic.stats.snapshot()).unwrap_or_default();
    body["rate_limits"] = serde_json::to_value(state.traffic.limits.settings()).unwrap_or_default();
    axum::Json(body).into_response()
}

/// Clears the counters and rate-limit usage; with `{"data": true}` also deletes every record
/// and association (object types, custom schemas, labels, owners and pipelines stay).
async fn reset(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&body)?
    };
    let data = value.get("data").and_then(Value::as_bool).unwrap_or(false);
    state.traffic.stats.reset();
    state.traffic.limits.reset_usage();
    if data {
        write_crm(&state).clear_data();
    }
    Ok(axum::Json(json!({"reset": true, "data": data})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_hide_ids() {
        assert_eq!(
            route_label(&Method::GET, "/crm/v3/objects/contacts/123"),
            "GET /crm/v3/objects/contacts/{id}"
        );
        assert_eq!(
            route_label(&Method::GET, "/crm/v3/objects/2-99/a@b.com"),
            "GET /crm/v3/objects/2-99/{id}"
        );
        assert_eq!(
            route_label(&Method::POST, "/crm/v3/objects/contacts/search"),
            "POST /crm/v3/objects/contacts/search"
        );
    }

    #[test]
    fn counters_reset() {
        let stats = Stats::default();
        stats.request("GET /x".into());
        stats.response(429, Some("SECONDLY"));
        let snap = stats.snapshot();
        assert_eq!((snap.requests_total, snap.rate_limited_total), (1, 1));
        assert_eq!(snap.rate_limited_by_policy.get("SECONDLY"), Some(&1));
        stats.reset();
        assert_eq!(stats.snapshot().requests_total, 0);
    }

    #[test]
    fn route_keys_are_bounded() {
        let stats = Stats::default();
        for n in 0..MAX_ROUTES + 10 {
            stats.request(format!("GET /x/{n}x"));
        }
        let snap = stats.snapshot();
        assert!(snap.by_route.len() <= MAX_ROUTES + 1);
        assert_eq!(snap.by_route.get("other"), Some(&10));
    }
}
