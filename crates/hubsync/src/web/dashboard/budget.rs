//! The HubSpot API budget over time: a small in-memory ring buffer of the client's call
//! counters, sampled every [`SAMPLE_EVERY`], and the inline SVG chart drawn from it.
//!
//! Nothing is persisted: the chart covers the last [`CAPACITY`] samples (an hour) of this
//! process. Prometheus (`/metrics`) keeps the long history.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use chrono::{DateTime, Utc};
use hubsync_hubspot::{CallStats, EndpointClass};
use maud::{Markup, html};
use tokio_util::sync::CancellationToken;

use super::Dashboard;
use crate::config::Config;

/// How often the counters are sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples kept (one hour at 5 s).
pub(crate) const CAPACITY: usize = 720;

/// The portal's limits, as configured (HubSpot's stricter reported ones are shown too).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Burst requests per `burst_per`; `None`: unlimited.
    pub(crate) burst: Option<(u32, Duration)>,
    /// Search requests per second.
    pub(crate) search_per_second: u32,
    /// Daily cap.
    pub(crate) daily: Option<u64>,
}

impl Limits {
    /// From `[hubspot]`.
    pub(crate) fn from_config(config: &Config) -> Limits {
        Limits {
            burst: config.hubspot.rate_limit,
            search_per_second: config.hubspot.search_per_second,
            daily: config.hubspot.daily_limit,
        }
    }

    /// The burst limit per 10 seconds (HubSpot's unit), if any.
    pub(crate) fn burst_per_10s(&self) -> Option<f64> {
        self.burst
            .map(|(n, per)| f64::from(n) * 10.0 / per.as_secs_f64().max(0.001))
    }
}

/// One sample of the client's cumulative counters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// When.
    pub(crate) at: DateTime<Utc>,
    /// Requests by class (cumulative).
    pub(crate) by_class: BTreeMap<EndpointClass, u64>,
    /// All requests (cumulative).
    pub(crate) requests: u64,
    /// 429 answers (cumulative).
    pub(crate) rate_limited: u64,
    /// Calls that failed after retries (cumulative).
    pub(crate) failures: u64,
    /// HubSpot's reported remaining daily calls.
    pub(crate) daily_remaining: Option<u64>,
}

impl Sample {
    /// A sample of `stats` taken `at`.
    pub(crate) fn of(stats: &CallStats, at: DateTime<Utc>) -> Sample {
        Sample {
            at,
            by_class: stats.by_class.clone(),
            requests: stats.requests,
            rate_limited: stats.rate_limited,
            failures: stats.failures,
            daily_remaining: stats.daily_remaining,
        }
    }

    fn class(&self, c: EndpointClass) -> u64 {
        self.by_class.get(&c).copied().unwrap_or(0)
    }
}

/// The ring buffer.
#[derive(Debug, Default)]
pub(crate) struct BudgetHistory(Mutex<VecDeque<Sample>>);

impl BudgetHistory {
    /// Appends a sample, dropping the oldest beyond [`CAPACITY`].
    pub(crate) fn push(&self, s: Sample) {
        let mut q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() == CAPACITY {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// A copy of the samples, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.iter().cloned().collect()
    }
}

/// Samples `d.client` until `shutdown`.
pub(super) async fn sample_until(d: &Dashboard, shutdown: CancellationToken) {
    loop {
        d.budget.push(Sample::of(&d.client.stats(), Utc::now()));
        tokio::select! {
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Chart geometry.
const W: f64 = 720.0;
const H: f64 = 180.0;
const PAD: f64 = 30.0;

/// The chart with its legend.
pub(crate) fn chart(samples: &[Sample], limits: &Limits) -> Markup {
    html! {
        (chart_svg(samples, limits))
        p.muted { "Blue: burst-bucket calls per 10 s. Green: search calls per 10 s. Red dots: 429 answers. Sampled every "
            (SAMPLE_EVERY.as_secs()) " s." }
    }
}

/// The chart alone: burst-class calls per 10 s (blue) and search calls per 10 s (green)
/// against the burst limit (dashed), 429s as red marks.
pub(crate) fn chart_svg(samples: &[Sample], limits: &Limits) -> Markup {
    let rates: Vec<(f64, f64, u64)> = samples
        .windows(2)
        .map(|w| {
            let secs = (w[1].at - w[0].at).as_seconds_f64().max(0.001);
            let per10 = |c| (w[1].class(c).saturating_sub(w[0].class(c))) as f64 * 10.0 / secs;
            (
                per10(EndpointClass::Burst),
                per10(EndpointClass::Search),
                w[1].rate_limited.saturating_sub(w[0].rate_limited),
            )
        })
        .collect();
    let limit = limits.burst_per_10s();
    let top = rates
        .iter()
        .map(|r| r.0.max(r.1))
        .fold(limit.unwrap_or(10.0), f64::max)
        .max(1.0)
        * 1.1;
    let n = rates.len().max(2) as f64 - 1.0;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / n;
    let y = |v: f64| H - PAD - (H - 2.0 * PAD) * v / top;
    let line = |pick: fn(&(f64, f64, u64)) -> f64| {
        rates
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(pick(r))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let span = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => humantime::format_duration(Duration::from_secs(
            (b.at - a.at).num_seconds().max(0).unsigned_abs(),
        ))
        .to_string(),
        _ => "0s".to_owned(),
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H) viewBox={"0 0 " (W) " " (H)}
            role="img" aria-label="HubSpot calls per 10 seconds" style="background:#fff;border:1px solid #e3e6eb" {
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#9aa3b2" {}
            text x=(PAD) y=(H - 8.0) font-size="11" fill="#6b7280" { "last " (span) }
            text x=(PAD) y="16" font-size="11" fill="#6b7280" { "calls / 10 s (max " (format!("{top:.0}")) ")" }
            @if let Some(l) = limit {
                line x1=(PAD) y1=(y(l)) x2=(W - PAD) y2=(y(l)) stroke="#b42318" stroke-dasharray="6 4" {}
                text x=(W - PAD - 120.0) y=(y(l) - 4.0) font-size="11" fill="#b42318" { "burst limit " (format!("{l:.0}")) "/10 s" }
            }
            @if rates.len() > 1 {
                polyline points=(line(|r| r.0)) fill="none" stroke="#2563eb" stroke-width="1.6" {}
                polyline points=(line(|r| r.1)) fill="none" stroke="#16a34a" stroke-width="1.2" {}
            }
            @for (i, r) in rates.iter().enumerate() {
                @if r.2 > 0 {
                    circle cx=(x(i)) cy=(y(0.0)) r="4" fill="#b42318" { title { (r.2) " × 429" } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: i64, burst: u64, limited: u64) -> Sample {
        Sample {
            at: DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default(),
            by_class: BTreeMap::from([(EndpointClass::Burst, burst)]),
            requests: burst,
            rate_limited: limited,
            failures: 0,
            daily_remaining: None,
        }
    }

    #[test]
    fn ring_buffer_keeps_the_newest_and_windows_deltas() {
        let h = BudgetHistory::default();
        for i in 0..(CAPACITY as i64 + 10) {
            h.push(sample(i * 5, (i * 3) as u64, 0));
        }
        let s = h.samples();
        assert_eq!(s.len(), CAPACITY);
        assert_eq!(s[0].at.timestamp(), 50);
    }

    #[test]
    fn chart_marks_429s_and_the_limit() {
        let limits = Limits {
            burst: Some((100, Duration::from_secs(10))),
            search_per_second: 4,
            daily: None,
        };
        let svg = chart(
            &[sample(0, 0, 0), sample(5, 40, 0), sample(10, 90, 2)],
            &limits,
        )
        .into_string();
        assert!(svg.contains("burst limit 100/10 s"));
        assert!(svg.contains("2 × 429"));
        assert!(svg.contains("polyline"));
    }
}
