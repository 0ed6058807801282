//! Per-call accounting: Prometheus metrics through the `metrics` facade, and the in-process
//! [`CallStats`] snapshot that tests and the dashboard read. Labels are low-cardinality
//! (endpoint label and status code); no ids, values or tokens ever reach them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::rate_limit::{EndpointClass, RateHeaders};

/// Counter: HTTP requests sent to HubSpot, by `endpoint` and `status` (`transport` when no
/// answer came back).
pub const REQUESTS_TOTAL: &str = "hubsync_hubspot_requests_total";
/// Counter: 429 answers.
pub const RATE_LIMITED_TOTAL: &str = "hubsync_hubspot_rate_limited_total";
/// Counter: retries scheduled.
pub const RETRIES_TOTAL: &str = "hubsync_hubspot_retries_total";
/// Gauge: `X-HubSpot-RateLimit-Remaining` of the last answer.
pub const RATE_REMAINING: &str = "hubsync_hubspot_rate_limit_remaining";
/// Gauge: `X-HubSpot-RateLimit-Daily-Remaining` of the last answer.
pub const DAILY_REMAINING: &str = "hubsync_hubspot_daily_remaining";

/// A snapshot of what one client (and its clones) has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests by endpoint label (`objects.list`, `search`, …).
    pub by_endpoint: BTreeMap<&'static str, u64>,
    /// Requests by budget class.
    pub by_class: BTreeMap<EndpointClass, u64>,
    /// Answers by HTTP status (0 = no answer).
    pub by_status: BTreeMap<u16, u64>,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Calls that ended in an error after all retries.
    pub failures: u64,
    /// `X-HubSpot-RateLimit-Remaining` of the last answer that carried it.
    pub remaining: Option<u32>,
    /// `X-HubSpot-RateLimit-Daily-Remaining` of the last answer that carried it.
    pub daily_remaining: Option<u64>,
}

/// The shared, mutable tally behind [`CallStats`].
#[derive(Debug, Default)]
pub(crate) struct Tally(Mutex<CallStats>);

impl Tally {
    fn with<R>(&self, f: impl FnOnce(&mut CallStats) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        self.with(|s| s.clone())
    }

    /// One request went out and `status` (0: none) came back.
    pub(crate) fn request(
        &self,
        endpoint: &'static str,
        class: EndpointClass,
        status: u16,
        rate: &RateHeaders,
    ) {
        let status_label = if status == 0 {
            "transport".to_owned()
        } else {
            status.to_string()
        };
        metrics::counter!(REQUESTS_TOTAL, "endpoint" => endpoint, "status" => status_label)
            .increment(1);
        if status == 429 {
            metrics::counter!(RATE_LIMITED_TOTAL, "endpoint" => endpoint).increment(1);
        }
        if let Some(remaining) = rate.remaining {
            metrics::gauge!(RATE_REMAINING).set(f64::from(remaining));
        }
        if let Some(daily) = rate.daily_remaining {
            // Precision loss above 2^52 is irrelevant for a daily budget.
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(DAILY_REMAINING).set(daily as f64);
        }
        self.with(|s| {
            s.requests += 1;
            *s.by_endpoint.entry(endpoint).or_default() += 1;
            *s.by_class.entry(class).or_default() += 1;
            *s.by_status.entry(status).or_default() += 1;
            if status == 429 {
                s.rate_limited += 1;
            }
            if rate.remaining.is_some() {
                s.remaining = rate.remaining;
            }
            if rate.daily_remaining.is_some() {
                s.daily_remaining = rate.daily_remaining;
            }
        });
    }

    pub(crate) fn retry(&self, endpoint: &'static str) {
        metrics::counter!(RETRIES_TOTAL, "endpoint" => endpoint).increment(1);
        self.with(|s| s.retries += 1);
    }

    pub(crate) fn failure(&self) {
        self.with(|s| s.failures += 1);
    }
}
