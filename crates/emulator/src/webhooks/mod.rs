//! Webhook delivery as HubSpot does it (hubspot-api.md §12): the app's settings (target URL,
//! client secret), its subscriptions, and a delivery loop that turns domain events into
//! event notifications, batches them (JSON arrays of up to 100), signs them (v1/v2 and v3),
//! POSTs them and retries failures with exponential backoff (at-least-once, unordered), with
//! injectable drop/duplicate/reorder/delay faults.
//!
//! Settings come from [`crate::EmulatorConfig`] (`webhook_url`, `webhook_secret`) and can be
//! changed at runtime through `POST /_emulator/webhooks` or HubSpot's own
//! `/webhooks/v3/{appId}/settings` and `/subscriptions` API.

// Route helpers return `Result<_, ApiError>` like every handler; the error is the response.
#![allow(clippy::result_large_err)]

mod delivery;
mod notification;
mod routes;
pub mod signature;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use notification::event_type_prefix;
pub use routes::routes;

use crate::{EmulatorConfig, events::EventBus, faults::Traffic};

/// Which `X-HubSpot-Signature` version accompanies the v3 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    /// `sha256(secret + body)`: what HubSpot sends for webhook-API deliveries.
    V1,
    /// `sha256(secret + method + uri + body)`: workflow webhooks / CRM cards.
    V2,
}

/// The app's webhook settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where notifications are POSTed; none: nothing is delivered.
    pub url: Option<String>,
    /// The app's client secret (signs every request); empty when unset.
    #[serde(skip_serializing)]
    pub secret: Option<String>,
    /// `appId` in payloads and the management API.
    pub app_id: u64,
    /// Version of `X-HubSpot-Signature` (`v1` default, or `v2`).
    pub signature_version: SignatureVersion,
    /// Most notifications per POST (default 100).
    pub batch_size: usize,
    /// How long notifications wait to be batched, milliseconds (default 1000).
    pub flush_ms: u64,
    /// Per-request timeout, milliseconds (default 5000).
    pub timeout_ms: u64,
    /// Retries after the first attempt (default 10).
    pub max_retries: u32,
    /// First retry delay, milliseconds; doubles each retry (default 1000).
    pub retry_base_ms: u64,
    /// Longest retry delay, milliseconds (default 60000).
    pub retry_max_ms: u64,
    /// Most requests in flight at once (HubSpot's `maxConcurrentRequests`, default 10).
    pub max_concurrent: usize,
    /// Deliveries paused (HubSpot's `DELETE …/settings`): events are not queued.
    pub paused: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            app_id: 1_234_567,
            signature_version: SignatureVersion::V1,
            batch_size: 100,
            flush_ms: 1000,
            timeout_ms: 5000,
            max_retries: 10,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            max_concurrent: 10,
            paused: false,
        }
    }
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            let parsed = url::Url::parse(url).map_err(|e| format!("invalid url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err("url must be http or https".to_owned());
            }
        }
        if self.batch_size == 0 || self.batch_size > 1000 {
            return Err("batch_size must be between 1 and 1000".to_owned());
        }
        if self.max_concurrent == 0 {
            return Err("max_concurrent must be at least 1".to_owned());
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1-based): `retry_base_ms * 2^(retry-1)`, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u64::MAX);
        Duration::from_millis(
            self.retry_base_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms),
        )
    }
}

/// One subscription of the app (hubspot-api.md §12.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Subscription id (`subscriptionId` in payloads).
    #[serde(serialize_with = "id_as_string")]
    pub id: u64,
    /// `contact.propertyChange`, `object.creation`, …
    pub event_type: String,
    /// For propertyChange: the one property; `None` (emulator extension): every property.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    /// For `object.*` types: the object type; `None`: every type without a legacy event type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    /// Inactive subscriptions deliver nothing.
    pub active: bool,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
}

fn id_as_string<S: serde::Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// The event kinds every object type can be subscribed to.
const KINDS: [&str; 6] = [
    "creation",
    "deletion",
    "propertyChange",
    "merge",
    "restore",
    "associationChange",
];

/// The event-type prefixes HubSpot accepts (§12.2); a fresh emulator subscribes to each.
const OBJECT_PREFIXES: [&str; 7] = [
    "contact",
    "company",
    "deal",
    "ticket",
    "line_item",
    "product",
    "object",
];

/// The subscriptions a fresh emulator has: every kind for contacts, companies, deals, tickets,
/// line items and products (propertyChange for every property; products have no
/// associationChange), contact privacy deletion, and `object.*` for every type without a legacy
/// event type (custom objects, quotes, engagements…).
fn default_subscriptions() -> Vec<Subscription> {
    let now = crate::payload::timestamp_now();
    let mut types: Vec<String> = Vec::new();
    for object in OBJECT_PREFIXES {
        for kind in KINDS {
            if !(object == "product" && kind == "associationChange") {
                types.push(format!("{object}.{kind}"));
            }
        }
    }
    types.push("contact.privacyDeletion".to_owned());
    types
        .into_iter()
        .zip(1..)
        .map(|(event_type, id)| Subscription {
            id,
            event_type,
            property_name: None,
            object_type_id: None,
            active: true,
            created_at: now.clone(),
            updated_at: now.clone(),
        })
        .collect()
}

/// The app's webhook configuration, shared by the routes and the delivery loop.
#[derive(Debug)]
pub struct Webhooks {
    settings: RwLock<WebhookSettings>,
    subscriptions: RwLock<Vec<Subscription>>,
    next_subscription_id: AtomicU64,
    next_event_id: AtomicU64,
    portal_id: u32,
    created_at: String,
}

impl Webhooks {
    /// Webhook configuration from the emulator configuration.
    pub fn new(config: &EmulatorConfig) -> Self {
        let subscriptions = default_subscriptions();
        let next = subscriptions.len() as u64 + 1;
        let settings = WebhookSettings {
            url: config.webhook_url.clone(),
            secret: config.webhook_secret.clone(),
            ..WebhookSettings::default()
        };
        Self {
            settings: RwLock::new(settings),
            subscriptions: RwLock::new(subscriptions),
            next_subscription_id: AtomicU64::new(next),
            next_event_id: AtomicU64::new(1),
            portal_id: config.portal_id,
            created_at: crate::payload::timestamp_now(),
        }
    }

    /// Builds the configuration and, inside a tokio runtime, starts the delivery loop, which
    /// runs until every sender of `events` is gone.
    pub fn start(config: &EmulatorConfig, events: &EventBus, traffic: Arc<Traffic>) -> Arc<Self> {
        let webhooks = Arc::new(Self::new(config));
        if tokio::runtime::Handle::try_current().is_ok() {
            let receiver = events.subscribe();
            tokio::spawn(delivery::run(webhooks.clone(), traffic, receiver));
        }
        webhooks
    }

    /// The current settings (secret included).
    pub fn settings(&self) -> WebhookSettings {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings after validating them.
    pub fn set_settings(&self, settings: WebhookSettings) -> Result<(), String> {
        settings.validate()?;
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
        Ok(())
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.subscriptions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Changes the subscriptions under the lock.
    pub fn update_subscriptions<T>(&self, f: impl FnOnce(&mut Vec<Subscription>) -> T) -> T {
        f(&mut self
            .subscriptions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A fresh subscription id.
    pub fn allocate_subscription_id(&self) -> u64 {
        self.next_subscription_id.fetch_add(1, Ordering::Relaxed)
    }

    fn allocate_event_id(&self) -> u64 {
        self.next_event_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = WebhookSettings {
            retry_base_ms: 100,
            retry_max_ms: 1000,
            ..Default::default()
        };
        let ms: Vec<u128> = (1..=6).map(|n| s.backoff(n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(s.backoff(200), Duration::from_millis(1000));
    }

    #[test]
    fn settings_are_validated() {
        let w = Webhooks::new(&EmulatorConfig::default());
        let bad = WebhookSettings {
            url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(w.set_settings(bad).is_err());
        let bad = WebhookSettings {
            batch_size: 0,
            ..Default::default()
        };
        assert!(w.set_settings(bad).is_err());
        let good = WebhookSettings {
            url: Some("http://127.0.0.1:9/hook".into()),
            ..Default::default()
        };
        assert_eq!(w.set_settings(good), Ok(()));
    }

    #[test]
    fn default_subscriptions_have_unique_ids() {
        let subs = default_subscriptions();
        let mut ids: Vec<u64> = subs.iter().map(|s| s.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), subs.len());
        assert!(
            subs.iter()
                .any(|s| s.event_type == "contact.propertyChange")
        );
    }
}
