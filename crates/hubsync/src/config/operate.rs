//! `[dashboard]` and `[alerts]`: how people watch and steer a running daemon.
//!
//! ```toml
//! [dashboard]
//! enabled = true                                   # served by `hubsync run` on server.listen
//! token = { env = "HUBSYNC_DASHBOARD_TOKEN" }      # required when server.listen is not loopback
//!
//! [alerts]
//! webhook_url = "https://hooks.example.com/hubsync"  # POSTed a JSON body per incident/recovery
//! command = "/usr/local/bin/page-oncall"            # run with the JSON on stdin
//! check_every = "30s"
//! lag = "15m"                 # an object's lag behind HubSpot (or its oldest outbox entry)
//! error_rate = 0.05           # share of HubSpot calls that failed over the last window
//! open_conflicts = 25         # conflicts waiting for a person
//! api_budget = 0.8            # share of the daily limit used, or any 429 in the window
//! ```

use std::{net::SocketAddr, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::{ConfigError, duration, file::SecretRef, invalid, resolve_secret};

/// `[dashboard]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardSection {
    /// Serve the dashboard (default true).
    pub(crate) enabled: Option<bool>,
    /// Bearer token / basic-auth password.
    pub(crate) token: Option<SecretRef>,
}

/// `[alerts]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsSection {
    /// Where incidents are POSTed.
    pub(crate) webhook_url: Option<String>,
    /// A program run per incident with the JSON on stdin.
    pub(crate) command: Option<String>,
    /// How often thresholds are checked, e.g. `30s`.
    pub(crate) check_every: Option<String>,
    /// Lag threshold, e.g. `15m`.
    pub(crate) lag: Option<String>,
    /// Share of failed HubSpot calls, 0..1.
    pub(crate) error_rate: Option<f64>,
    /// Open conflicts threshold.
    pub(crate) open_conflicts: Option<i64>,
    /// Share of the daily API limit used, 0..1.
    pub(crate) api_budget: Option<f64>,
}

/// `[dashboard]`, validated.
#[derive(Debug)]
pub(crate) struct DashboardConfig {
    /// Whether `hubsync run` serves it.
    pub(crate) enabled: bool,
    /// The token asked for (bearer, or basic-auth password with any user name).
    pub(crate) token: Option<SecretString>,
}

/// `[alerts]`, validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertsConfig {
    /// Webhook target.
    pub(crate) webhook_url: Option<Url>,
    /// Command (run through `sh -c`).
    pub(crate) command: Option<String>,
    /// Check period.
    pub(crate) check_every: Duration,
    /// Lag threshold.
    pub(crate) lag: Option<Duration>,
    /// Failed-call share threshold.
    pub(crate) error_rate: Option<f64>,
    /// Open conflicts threshold.
    pub(crate) open_conflicts: Option<i64>,
    /// Daily budget share threshold.
    pub(crate) api_budget: Option<f64>,
}

impl AlertsConfig {
    /// Whether any alert can fire somewhere.
    pub(crate) fn is_active(&self) -> bool {
        (self.webhook_url.is_some() || self.command.is_some())
            && (self.lag.is_some()
                || self.error_rate.is_some()
                || self.open_conflicts.is_some()
                || self.api_budget.is_some())
    }
}

/// Validates `[dashboard]`: a token is required unless `listen` is a loopback address.
pub(crate) fn dashboard(
    s: DashboardSection,
    listen: SocketAddr,
) -> Result<DashboardConfig, ConfigError> {
    let enabled = s.enabled.unwrap_or(true);
    let token = match &s.token {
        Some(r) => Some(resolve_secret("dashboard.token", r, false)?.ok_or_else(|| {
            invalid(
                "dashboard.token",
                "the referenced variable or file is empty",
            )
        })?),
        None => None,
    };
    if enabled && token.is_none() && !listen.ip().is_loopback() {
        return Err(invalid(
            "dashboard.token",
            format!(
                "server.listen = {listen} is reachable from other machines: set dashboard.token = \
                 {{ env = \"HUBSYNC_DASHBOARD_TOKEN\" }} or dashboard.enabled = false"
            ),
        ));
    }
    Ok(DashboardConfig { enabled, token })
}

/// Validates `[alerts]`.
pub(crate) fn alerts(s: AlertsSection) -> Result<AlertsConfig, ConfigError> {
    let share = |key: &str, v: Option<f64>| match v {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(invalid(key, "a share between 0 and 1")),
        other => Ok(other),
    };
    Ok(AlertsConfig {
        webhook_url: s
            .webhook_url
            .map(|u| Url::parse(&u).map_err(|e| invalid("alerts.webhook_url", e.to_string())))
            .transpose()?,
        command: s.command.filter(|c| !c.trim().is_empty()),
        check_every: duration("alerts.check_every", s.check_every, "30s")?,
        lag: s
            .lag
            .map(|l| duration("alerts.lag", Some(l), "15m"))
            .transpose()?,
        error_rate: share("alerts.error_rate", s.error_rate)?,
        open_conflicts: s.open_conflicts,
        api_budget: share("alerts.api_budget", s.api_budget)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_required_off_loopback() {
        let open: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let local: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert!(dashboard(DashboardSection::default(), open).is_err());
        assert!(dashboard(DashboardSection::default(), local).is_ok());
        let off = DashboardSection {
            enabled: Some(false),
            token: None,
        };
        assert!(dashboard(off, open).is_ok());
    }

    #[test]
    fn the_example_sections_parse_when_uncommented() {
        let mut token = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut token, b"pat-x").expect("write");
        let mut text = format!(
            "[hubspot]\ntoken = {{ file = {:?} }}\n",
            token.path().display().to_string()
        );
        let example = super::super::EXAMPLE;
        let start = example.find("# [dashboard]").expect("dashboard section");
        let end = example.find("\n[[object]]").expect("objects");
        for line in example[start..end].lines() {
            let line = line.strip_prefix("# ").unwrap_or(line);
            text.push_str(line);
            text.push('\n');
        }
        let file_ref = format!("{{ file = {:?} }}", token.path().display().to_string());
        let text = text.replace("{ env = \"HUBSYNC_DASHBOARD_TOKEN\" }", &file_ref);
        let c = super::super::Config::parse(&text).expect("valid");
        assert!(c.dashboard.enabled && c.dashboard.token.is_some());
        assert_eq!(c.alerts.open_conflicts, Some(25));
        assert!(c.alerts.is_active());
    }

    #[test]
    fn alert_shares_are_checked() {
        let bad = AlertsSection {
            error_rate: Some(3.0),
            ..AlertsSection::default()
        };
        assert!(alerts(bad).is_err());
        let ok = AlertsSection {
            command: Some("true".into()),
            lag: Some("1m".into()),
            ..AlertsSection::default()
        };
        let a = alerts(ok).expect("valid");
        assert!(a.is_active());
        assert_eq!(a.lag, Some(Duration::from_secs(60)));
    }
}
