//! Alerts (`[alerts]`): thresholds on lag, error rate, open conflicts and API budget,
//! checked by the daemon every `alerts.check_every`, delivered to a webhook URL (JSON
//! `POST`) and/or a command (`sh -c`, the same JSON on stdin) **once per incident**, with a
//! recovery notice when the condition clears.
//!
//! Owned by the operations work (issue 6); the daemon only starts it ([`spawn`]). An
//! incident is keyed by what it is about (`lag:contacts`, `error_rate`, `open_conflicts`,
//! `api_budget`); state is in memory, so a restart re-announces incidents still open.
//!
//! | alert | fires when |
//! |---|---|
//! | `lag:OBJECT` | the object's oldest change not yet applied (a webhook event in the inbox, or a PostgreSQL change in the outbox) is older than `alerts.lag` |
//! | `error_rate` | of the HubSpot calls in the last 5 minutes (at least 10), this share or more failed after retries |
//! | `open_conflicts` | at least this many conflicts wait for a person |
//! | `api_budget` | this share of `hubspot.daily_limit` is used (HubSpot's daily-remaining header), or HubSpot answered 429 in the last 5 minutes |

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use hubsync_hubspot::HubSpotClient;
use hubsync_store::{Store, state::summary};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::{commands::status::object_status, config::Config};

/// The window of the rate-based alerts.
const WINDOW: Duration = Duration::from_secs(300);
/// Fewest calls in the window for an error rate to mean anything.
const MIN_CALLS: u64 = 10;

/// A condition observed in one check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observation {
    /// Incident key.
    pub(crate) key: String,
    /// Whether the threshold is crossed.
    pub(crate) breached: bool,
    /// Measured value (seconds, share, count).
    pub(crate) value: f64,
    /// The threshold.
    pub(crate) threshold: f64,
    /// One line for people.
    pub(crate) message: String,
}

/// What is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Notice {
    /// `firing` or `resolved`.
    pub(crate) status: &'static str,
    /// Incident key.
    pub(crate) alert: String,
    /// Measured value.
    pub(crate) value: f64,
    /// The threshold.
    pub(crate) threshold: f64,
    /// One line for people.
    pub(crate) message: String,
    /// When the incident began.
    pub(crate) since: DateTime<Utc>,
    /// When this notice was made.
    pub(crate) at: DateTime<Utc>,
}

/// Open incidents, by key, with their start.
#[derive(Debug, Default)]
pub(crate) struct Incidents(BTreeMap<String, DateTime<Utc>>);

impl Incidents {
    /// The notices `observations` cause: `firing` for a newly breached key, `resolved` for
    /// an open one that is no longer breached; nothing while a state holds.
    pub(crate) fn step(&mut self, observations: &[Observation], now: DateTime<Utc>) -> Vec<Notice> {
        let mut out = Vec::new();
        for o in observations {
            let notice = |status, since| Notice {
                status,
                alert: o.key.clone(),
                value: o.value,
                threshold: o.threshold,
                message: o.message.clone(),
                since,
                at: now,
            };
            match (o.breached, self.0.get(&o.key).copied()) {
                (true, None) => {
                    self.0.insert(o.key.clone(), now);
                    out.push(notice("firing", now));
                }
                (false, Some(since)) => {
                    self.0.remove(&o.key);
                    out.push(notice("resolved", since));
                }
                _ => {}
            }
        }
        out
    }
}

/// Starts the checker when `[alerts]` has a target and a threshold.
pub(crate) fn spawn(
    config: &Config,
    store: Store,
    client: HubSpotClient,
    shutdown: CancellationToken,
) {
    if !config.alerts.is_active() {
        return;
    }
    let checker = Arc::new(Checker {
        alerts: config.alerts.clone(),
        objects: config
            .objects
            .iter()
            .map(|o| (o.name.clone(), o.direction.clone()))
            .collect(),
        schema: config.postgres.schema.clone(),
        daily_limit: config.hubspot.daily_limit,
        store,
        client,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
    });
    tokio::spawn(async move { checker.run(shutdown).await });
}

struct Checker {
    alerts: crate::config::AlertsConfig,
    objects: Vec<(String, String)>,
    schema: String,
    daily_limit: Option<u64>,
    store: Store,
    client: HubSpotClient,
    http: reqwest::Client,
}

impl Checker {
    async fn run(&self, shutdown: CancellationToken) {
        let mut incidents = Incidents::default();
        let mut calls: VecDeque<(DateTime<Utc>, u64, u64, u64)> = VecDeque::new();
        loop {
            let now = Utc::now();
            let s = self.client.stats();
            calls.push_back((now, s.requests, s.failures, s.rate_limited));
            while calls
                .front()
                .is_some_and(|c| now - c.0 > chrono::Duration::from_std(WINDOW).unwrap_or_default())
            {
                calls.pop_front();
            }
            match self.observe(&calls).await {
                Ok(observations) => {
                    for notice in incidents.step(&observations, now) {
                        self.deliver(&notice).await;
                    }
                }
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "alert check failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.alerts.check_every) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn observe(
        &self,
        calls: &VecDeque<(DateTime<Utc>, u64, u64, u64)>,
    ) -> anyhow::Result<Vec<Observation>> {
        let a = &self.alerts;
        let mut out = Vec::new();
        let conn = self.store.client().await?;
        if let Some(limit) = a.lag {
            let summaries = summary::by_object(&conn).await?;
            for (name, direction) in &self.objects {
                let summary = summaries.get(name).cloned().unwrap_or_default();
                let st = object_status(&conn, &self.schema, name, direction, &summary).await?;
                let lag = st.lag_seconds.unwrap_or(0) as f64;
                out.push(Observation {
                    key: format!("lag:{name}"),
                    breached: lag > limit.as_secs_f64(),
                    value: lag,
                    threshold: limit.as_secs_f64(),
                    message: format!(
                        "{name} is {lag:.0} s behind (threshold {} s)",
                        limit.as_secs()
                    ),
                });
            }
        }
        let (first, last) = (calls.front().copied(), calls.back().copied());
        let (requests, failures, limited) = match (first, last) {
            (Some(f), Some(l)) => (l.1 - f.1.min(l.1), l.2 - f.2.min(l.2), l.3 - f.3.min(l.3)),
            _ => (0, 0, 0),
        };
        if let Some(threshold) = a.error_rate {
            let rate = if requests >= MIN_CALLS {
                failures as f64 / requests as f64
            } else {
                0.0
            };
            out.push(Observation {
                key: "error_rate".into(),
                breached: requests >= MIN_CALLS && rate >= threshold,
                value: rate,
                threshold,
                message: format!(
                    "{failures} of {requests} HubSpot calls failed in the last 5 minutes"
                ),
            });
        }
        if let Some(threshold) = a.open_conflicts {
            let open: i64 = conn
                .query_one(
                    "SELECT count(*) FROM hubsync.conflicts WHERE status = 'open'",
                    &[],
                )
                .await?
                .get(0);
            out.push(Observation {
                key: "open_conflicts".into(),
                breached: open >= threshold,
                value: open as f64,
                threshold: threshold as f64,
                message: format!("{open} conflicts wait for a person (hubsync conflicts list)"),
            });
        }
        if let Some(threshold) = a.api_budget {
            let used = self
                .daily_limit
                .zip(self.client.stats().daily_remaining)
                .map_or(0.0, |(cap, left)| {
                    cap.saturating_sub(left) as f64 / cap.max(1) as f64
                });
            out.push(Observation {
                key: "api_budget".into(),
                breached: used >= threshold || limited > 0,
                value: used,
                threshold,
                message: format!(
                    "{:.0}% of the daily API limit used; {limited} answers 429 in the last 5 minutes",
                    used * 100.0
                ),
            });
        }
        Ok(out)
    }

    async fn deliver(&self, notice: &Notice) {
        tracing::warn!(alert = %notice.alert, status = notice.status, message = %notice.message, "alert");
        let body = serde_json::to_vec(notice).unwrap_or_default();
        if let Some(url) = &self.alerts.webhook_url {
            let sent = self
                .http
                .post(url.clone())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    "alert webhook refused the notice"
                ),
                Err(err) => tracing::warn!(error = %err, "alert webhook unreachable"),
            }
        }
        if let Some(command) = &self.alerts.command
            && let Err(err) = run_command(command, notice, &body).await
        {
            tracing::warn!(error = %format!("{err:#}"), "alert command failed");
        }
    }
}

async fn run_command(command: &str, notice: &Notice, body: &[u8]) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("HUBSYNC_ALERT", &notice.alert)
        .env("HUBSYNC_ALERT_STATUS", notice.status)
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body).await?;
        stdin.write_all(b"\n").await?;
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    anyhow::ensure!(status.success(), "exited with {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(key: &str, breached: bool) -> Observation {
        Observation {
            key: key.into(),
            breached,
            value: 1.0,
            threshold: 1.0,
            message: String::new(),
        }
    }

    #[test]
    fn once_per_incident_with_recovery() {
        let mut i = Incidents::default();
        let t = Utc::now();
        let fired = i.step(&[obs("lag:contacts", true), obs("error_rate", false)], t);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].status, "firing");
        assert!(
            i.step(&[obs("lag:contacts", true)], t).is_empty(),
            "not once per poll"
        );
        let resolved = i.step(&[obs("lag:contacts", false)], t);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, "resolved");
        assert!(i.step(&[obs("lag:contacts", false)], t).is_empty());
        assert_eq!(
            i.step(&[obs("lag:contacts", true)], t).len(),
            1,
            "a new incident"
        );
    }
}
