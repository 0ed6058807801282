//! The delivery loop: domain events → notifications → batches → signed POSTs, retried with
//! exponential backoff on connection failure, timeout, 408, 429 (honouring `Retry-After`) and
//! 5xx; given up on other 4xx (HubSpot does not retry 400/401/403/404/405, §12.6). Batches are
//! sent concurrently (up to `max_concurrent`), so arrival order is not event order.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::time::Instant;

use super::{SignatureVersion, Webhooks, notification::notifications, signature};
use crate::{events::CrmEvent, faults::Traffic};

/// One notification waiting to be sent.
type Notification = Map<String, Value>;

/// `User-Agent` HubSpot's deliveries carry (third-party capture, §12.4).
const USER_AGENT: &str = "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: \
     webhooks-nio-http-client) - WebhooksExecutorDaemon-executor";

/// Everything a delivery task needs.
#[derive(Clone)]
struct Deliverer {
    webhooks: Arc<Webhooks>,
    traffic: Arc<Traffic>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
}

/// Runs until the event bus closes, then sends what is still buffered.
pub(super) async fn run(
    webhooks: Arc<Webhooks>,
    traffic: Arc<Traffic>,
    mut events: broadcast::Receiver<CrmEvent>,
) {
    install_tls_provider();
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .user_agent(USER_AGENT)
        .build()
    else {
        tracing::error!("webhook delivery disabled: cannot build an HTTP client");
        return;
    };
    let max_concurrent = webhooks.settings().max_concurrent;
    let deliverer = Deliverer {
        webhooks,
        traffic,
        client,
        permits: Arc::new(Semaphore::new(max_concurrent)),
    };
    let (delayed_tx, mut delayed_rx) = mpsc::unbounded_channel::<Notification>();
    let mut buffer: Vec<Notification> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let settings = deliverer.webhooks.settings();
        let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => deliverer.accept(&event, &mut buffer, &delayed_tx),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    deliverer.traffic.stats.webhooks(|w| w.events_lagged += n);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(notification) = delayed_rx.recv() => buffer.push(notification),
            () = tokio::time::sleep_until(wake), if deadline.is_some() => {
                deliverer.flush(&mut buffer, settings.batch_size);
                deadline = None;
            }
        }
        if buffer.len() >= settings.batch_size {
            deliverer.flush(&mut buffer, settings.batch_size);
            deadline = None;
        } else if !buffer.is_empty() && deadline.is_none() {
            deadline = Some(Instant::now() + Duration::from_millis(settings.flush_ms));
        }
    }
    let batch_size = deliverer.webhooks.settings().batch_size;
    deliverer.flush(&mut buffer, batch_size);
}

impl Deliverer {
    /// Turns one event into notifications, applying the drop and delay faults.
    fn accept(
        &self,
        event: &CrmEvent,
        buffer: &mut Vec<Notification>,
        delayed: &mpsc::UnboundedSender<Notification>,
    ) {
        let settings = self.webhooks.settings();
        if settings.paused {
            return;
        }
        let found = notifications(&self.webhooks, event);
        if found.is_empty() {
            return;
        }
        if settings.url.is_none() {
            let n = found.len() as u64;
            self.traffic
                .stats
                .webhooks(|w| w.events_without_target += n);
            return;
        }
        let faults = self.traffic.webhook_faults();
        for notification in found {
            if self.traffic.roll(faults.drop) {
                self.traffic.stats.webhooks(|w| w.events_dropped += 1);
                continue;
            }
            self.traffic.stats.webhooks(|w| w.events_queued += 1);
            if self.traffic.roll(faults.delay) {
                self.traffic.stats.webhooks(|w| w.events_delayed += 1);
                let sender = delayed.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(faults.delay_for).await;
                    let _ = sender.send(notification);
                });
            } else {
                buffer.push(notification);
            }
        }
    }

    /// Sends everything buffered, in batches of at most `batch_size`.
    fn flush(&self, buffer: &mut Vec<Notification>, batch_size: usize) {
        while !buffer.is_empty() {
            let take = buffer.len().min(batch_size.max(1));
            let batch: Vec<Notification> = buffer.drain(..take).collect();
            let me = self.clone();
            tokio::spawn(async move { me.deliver(batch, 0).await });
        }
    }

    /// Delivers one batch starting at `first_attempt`, retrying until it succeeds or gives up.
    async fn deliver(self, mut batch: Vec<Notification>, first_attempt: u32) {
        let faults = self.traffic.webhook_faults();
        if first_attempt == 0 && !batch.is_empty() && self.traffic.roll(faults.reorder) {
            self.traffic.stats.webhooks(|w| w.batches_reordered += 1);
            for i in (1..batch.len()).rev() {
                batch.swap(i, self.traffic.pick(i + 1));
            }
            // Sent late, so that batches formed after it arrive first.
            let hold = self.webhooks.settings().flush_ms.max(100) * 2;
            tokio::time::sleep(Duration::from_millis(hold)).await;
        }
        let mut attempt = first_attempt;
        loop {
            let settings = self.webhooks.settings();
            if attempt > first_attempt {
                self.traffic.stats.webhooks(|w| w.retries += 1);
            }
            for n in &mut batch {
                n.insert("attemptNumber".into(), json!(attempt));
            }
            let outcome = self.post(&batch).await;
            match outcome {
                Attempt::Delivered => {
                    let count = batch.len() as u64;
                    self.traffic.stats.webhooks(|w| {
                        w.requests_delivered += 1;
                        w.events_delivered += count;
                    });
                    if first_attempt == 0 {
                        self.duplicate(&batch, attempt, faults.duplicate);
                    }
                    return;
                }
                Attempt::Rejected => break,
                Attempt::Failed(retry_after) => {
                    self.traffic.stats.webhooks(|w| w.attempts_failed += 1);
                    let retries_done = attempt - first_attempt;
                    if retries_done >= settings.max_retries || settings.url.is_none() {
                        break;
                    }
                    let wait = retry_after.unwrap_or_else(|| settings.backoff(retries_done + 1));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
        let count = batch.len() as u64;
        self.traffic.stats.webhooks(|w| w.events_given_up += count);
    }

    /// Redelivers some of a delivered batch's notifications (the duplicate fault), as a retry
    /// would: same `eventId`, next `attemptNumber`.
    fn duplicate(&self, batch: &[Notification], attempt: u32, probability: f64) {
        let again: Vec<Notification> = batch
            .iter()
            .filter(|_| self.traffic.roll(probability))
            .cloned()
            .collect();
        if again.is_empty() {
            return;
        }
        let count = again.len() as u64;
        self.traffic
            .stats
            .webhooks(|w| w.events_duplicated += count);
        let me = self.clone();
        tokio::spawn(async move { me.deliver(again, attempt + 1).await });
    }

    /// One signed POST of a batch.
    async fn post(&self, batch: &[Notification]) -> Attempt {
        let settings = self.webhooks.settings();
        let Some(url) = settings
            .url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
        else {
            return Attempt::Failed(None);
        };
        let Ok(body) = serde_json::to_vec(batch) else {
            return Attempt::Rejected;
        };
        let secret = settings.secret.as_deref().unwrap_or_default();
        let uri = url.as_str();
        let timestamp = chrono::Utc::now().timestamp_millis().to_string();
        let (legacy, version) = match settings.signature_version {
            SignatureVersion::V1 => (signature::v1(secret, &body), "v1"),
            SignatureVersion::V2 => (signature::v2(secret, "POST", uri, &body), "v2"),
        };
        let v3 = signature::v3(secret, "POST", uri, &body, &timestamp);
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let request = self
            .client
            .post(url.clone())
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("x-hubspot-signature", legacy)
            .header("x-hubspot-signature-version", version)
            .header("x-hubspot-signature-v3", v3)
            .header("x-hubspot-request-timestamp", timestamp)
            .header("x-hubspot-timeout-millis", settings.timeout_ms.to_string())
            .body(body);
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Rejected;
        };
        match request.send().await {
            Ok(response) => classify(response.status(), retry_after(response.headers())),
            Err(_) => Attempt::Failed(None),
        }
    }
}

/// Installs ring as rustls' process-wide provider unless one is already installed (reqwest is
/// built without a provider of its own). ring is the project's provider (stack.md §4); rustls
/// deprecates it only for lacking post-quantum key exchange.
#[allow(deprecated)]
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Delivered,
    /// Retry, after the given delay when the receiver asked for one.
    Failed(Option<Duration>),
    /// Not retried.
    Rejected,
}

/// HubSpot's retry rule for a response status (§12.6).
fn classify(status: StatusCode, retry_after: Option<Duration>) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Attempt::Failed(retry_after)
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Attempt::Failed(None)
    } else {
        Attempt::Rejected
    }
}

/// `Retry-After` in seconds (HTTP dates are not honoured), capped at ten minutes.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules_follow_hubspot() {
        assert_eq!(classify(StatusCode::OK, None), Attempt::Delivered);
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Attempt::Delivered);
        assert_eq!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, None),
            Attempt::Failed(None)
        );
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None),
            Attempt::Failed(None)
        );
        let wait = Some(Duration::from_secs(2));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, wait),
            Attempt::Failed(wait)
        );
        for status in [400, 401, 403, 404, 405] {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            assert_eq!(classify(status, None), Attempt::Rejected);
        }
    }

    #[test]
    fn retry_after_parses_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("3"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
