//! Webhooks in the simulated world: a receiver that does what the daemon's does — checks
//! the v3 signature with the app's secret, parses the delivery and stores the events in
//! `hubsync.inbox` (through the engine's [`inbox_event`]) before answering 204, 503 when
//! PostgreSQL cannot store them — and the emulator's app settings pointing at it. The
//! emulator delivers at least once and unordered, with the drop, duplicate, reorder and
//! delay faults the script sets per round; the engine's inbox worker applies what arrives.

use std::sync::Arc;
use std::time::Duration;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    routing::post,
};
use hubsync_engine::webhook_inbox::inbox_event;
use hubsync_hubspot::webhook::{
    SIGNATURE_HEADER, SIGNATURE_V3_HEADER, SIGNATURE_VERSION_HEADER, SignatureVerifier,
    SignedRequest, TIMESTAMP_HEADER, parse_events,
};
use hubsync_store::{Store, state::inbox};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::world::World;

/// The app's client secret in the simulation.
const SECRET: &str = "sim-webhook-secret";

/// A running receiver; stops when dropped.
pub(crate) struct Receiver {
    /// The URL the emulator delivers to.
    pub(crate) url: String,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Hook {
    store: Store,
    verifier: SignatureVerifier,
    base: String,
}

/// Starts a receiver storing into `store`'s inbox (path unique to this world, so late
/// deliveries meant for an earlier seed on the same emulator are refused, not stored).
pub(crate) async fn receiver(store: Store, seed: u64) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook receiver");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let path = format!("/hook/{seed}-{}", uuid_like());
    let hook = Arc::new(Hook {
        store,
        verifier: SignatureVerifier::new(SECRET.to_owned().into()),
        base: base.clone(),
    });
    let app = Router::new().route(&path, post(receive)).with_state(hook);
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
    });
    Receiver {
        url: format!("{base}{path}"),
        stop,
    }
}

/// A value unique to this process run (no two worlds share a path).
fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn receive(
    State(hook): State<Arc<Hook>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let full_uri = format!(
        "{}{}",
        hook.base,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = SignedRequest {
        method: method.as_str(),
        uri: &full_uri,
        body: &body,
        signature: header(SIGNATURE_HEADER),
        signature_version: header(SIGNATURE_VERSION_HEADER),
        signature_v3: header(SIGNATURE_V3_HEADER),
        timestamp: header(TIMESTAMP_HEADER),
    };
    let now = chrono::Utc::now().timestamp_millis();
    if hook.verifier.verify(&request, now).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(events) = parse_events(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let rows: Vec<_> = events.into_iter().map(inbox_event).collect();
    let stored = async {
        let client = hook.store.client().await.ok()?;
        inbox::insert(&client, &rows).await.ok()
    };
    match stored.await {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Webhook faults of one round, as `POST /_emulator/faults` takes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WebhookFaults {
    /// Probability that an event is never delivered.
    pub(crate) drop: f64,
    /// Probability that a delivered event is delivered again.
    pub(crate) duplicate: f64,
    /// Probability that a batch is shuffled and sent after later ones.
    pub(crate) reorder: f64,
    /// Probability that an event is held back `delay_ms`.
    pub(crate) delay: f64,
    /// How long delayed events are held.
    pub(crate) delay_ms: u64,
}

impl WebhookFaults {
    /// The kinds injected, for the figures.
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        [
            (self.drop, "webhook-drop"),
            (self.duplicate, "webhook-duplicate"),
            (self.reorder, "webhook-reorder"),
            (self.delay, "webhook-delay"),
        ]
        .into_iter()
        .filter(|(p, _)| *p > 0.0)
        .map(|(_, k)| k)
        .collect()
    }

    /// The fields of the emulator's fault settings.
    pub(crate) fn json(&self) -> serde_json::Value {
        json!({
            "webhook_drop": self.drop,
            "webhook_duplicate": self.duplicate,
            "webhook_reorder": self.reorder,
            "webhook_delay": self.delay,
            "webhook_delay_ms": self.delay_ms,
        })
    }
}

/// Points the emulator's app at `url` with short batching and retry delays (a seed lasts
/// seconds, HubSpot's defaults are seconds to minutes).
pub(crate) async fn subscribe(world: &World, url: &str) {
    let settings = json!({
        "url": url,
        "secret": SECRET,
        "flush_ms": 20,
        "retry_base_ms": 20,
        "retry_max_ms": 200,
        "max_retries": 8,
        "timeout_ms": 3000,
    });
    world
        .call("POST", "/_emulator/webhooks", Some(settings))
        .await
        .expect("webhook settings");
}

/// Notifications the emulator has accepted but not yet delivered or given up (retries,
/// delayed and reordered batches), since its counters were last reset.
pub(crate) async fn in_flight(world: &World) -> u64 {
    let stats = world
        .call("GET", "/_emulator/stats", None)
        .await
        .expect("stats");
    let w = &stats["webhooks"];
    let n = |k: &str| w[k].as_u64().unwrap_or(0);
    (n("events_queued") + n("events_duplicated"))
        .saturating_sub(n("events_delivered") + n("events_given_up"))
}

/// Waits (bounded) until every notification has been delivered or given up.
pub(crate) async fn settle(world: &World) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if in_flight(world).await == 0 {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The emulator's delivery counters, for the figures.
pub(crate) async fn delivery(world: &World) -> Vec<(String, u64)> {
    let stats = world
        .call("GET", "/_emulator/stats", None)
        .await
        .expect("stats");
    let keys = [
        "events_delivered",
        "events_dropped",
        "events_duplicated",
        "events_delayed",
        "batches_reordered",
        "attempts_failed",
    ];
    keys.iter()
        .map(|k| {
            (
                format!("webhook {k}"),
                stats["webhooks"][k].as_u64().unwrap_or(0),
            )
        })
        .collect()
}
