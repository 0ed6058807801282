//! Configuration: parse `hubsync.toml` ([`file`]), validate it into a typed [`Config`], use it.
//!
//! Secrets are resolved here, from the environment or a file; a literal secret in the file is
//! refused. Nothing downstream sees raw strings for URLs, durations or limits.

mod engine;
mod example;
mod file;
mod objects;
mod operate;

use std::{net::SocketAddr, path::Path, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub(crate) use example::EXAMPLE;
use file::{FileConfig, SecretRef};
pub(crate) use objects::ObjectConfig;
pub(crate) use operate::{AlertsConfig, DashboardConfig};

/// A validated configuration, ready to use.
#[derive(Debug)]
pub(crate) struct Config {
    /// The HubSpot side.
    pub(crate) hubspot: HubSpotConfig,
    /// The PostgreSQL side.
    pub(crate) postgres: PostgresConfig,
    /// The daemon's HTTP surface and intervals.
    pub(crate) server: ServerConfig,
    /// What to sync, in config order.
    pub(crate) objects: Vec<ObjectConfig>,
    /// `[dashboard]`.
    pub(crate) dashboard: DashboardConfig,
    /// `[alerts]`.
    pub(crate) alerts: AlertsConfig,
}

/// `[hubspot]`, validated.
#[derive(Debug)]
pub(crate) struct HubSpotConfig {
    /// API base URL.
    pub(crate) base_url: Url,
    /// The private-app token.
    pub(crate) token: SecretString,
    /// Burst limit: requests per period; `None` = unlimited.
    pub(crate) rate_limit: Option<(u32, Duration)>,
    /// Search requests per second.
    pub(crate) search_per_second: u32,
    /// Daily request cap.
    pub(crate) daily_limit: Option<u64>,
    /// Webhook client secret (needed by `hubsync run` for signature checks).
    pub(crate) webhook_secret: Option<SecretString>,
    /// Why a configured webhook secret resolved to nothing (an unset variable, an empty
    /// file): `hubsync check` reports it, `hubsync run` warns and refuses webhooks.
    pub(crate) webhook_secret_missing: Option<String>,
}

/// `[postgres]`, validated.
#[derive(Debug)]
pub(crate) struct PostgresConfig {
    /// Connection string; `None` when the referenced variable is unset (demo only).
    pub(crate) url: Option<SecretString>,
    /// Schema of the synced tables.
    pub(crate) schema: String,
    /// Delete rows instead of soft-deleting them.
    pub(crate) hard_delete: bool,
    /// Allow TRUNCATE of synced tables.
    pub(crate) allow_truncate: bool,
}

/// `[server]`, validated.
#[derive(Debug)]
pub(crate) struct ServerConfig {
    /// Listen address.
    pub(crate) listen: SocketAddr,
    /// Path HubSpot posts webhooks to.
    pub(crate) webhook_path: String,
    /// Micro-batch window for writeback.
    pub(crate) writeback_window: Duration,
    /// Reconciliation sweep interval.
    pub(crate) reconcile_every: Duration,
    /// Delay of the settled pass behind real time.
    pub(crate) settle_delay: Duration,
    /// Audit retention.
    pub(crate) audit_retention: Duration,
    /// The public base URL HubSpot calls, without the path (`None`: taken from the request's
    /// `Host` and `X-Forwarded-Proto` headers).
    pub(crate) public_url: Option<Url>,
    /// Largest webhook body accepted, in bytes.
    pub(crate) webhook_max_bytes: usize,
    /// Accept v1 signatures.
    pub(crate) accept_v1: bool,
    /// Accept v2 signatures.
    pub(crate) accept_v2: bool,
    /// Window of the v3 request timestamp.
    pub(crate) webhook_max_age: Duration,
    /// How long processed webhook events are kept (deduplication of HubSpot's retries).
    pub(crate) inbox_retention: Duration,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse into the expected shape.
    #[error("invalid configuration file")]
    Syntax(#[source] toml::de::Error),
    /// A value is not acceptable.
    #[error("{key}: {reason}")]
    Invalid {
        /// The config key.
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parses and validates configuration text.
    pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(ConfigError::Syntax)?;
        validate(file)
    }

    /// The PostgreSQL connection string, or a clear error when it is not set.
    pub(crate) fn database_url(&self) -> Result<&str, ConfigError> {
        self.postgres
            .url
            .as_ref()
            .map(|s| s.expose_secret())
            .ok_or_else(|| {
                invalid(
                    "postgres.url",
                    "not set: export DATABASE_URL or set postgres.url",
                )
            })
    }
}

fn validate(file: FileConfig) -> Result<Config, ConfigError> {
    let h = file.hubspot;
    let base_url = h.base_url.as_deref().unwrap_or("https://api.hubapi.com");
    let base_url = Url::parse(base_url).map_err(|e| invalid("hubspot.base_url", e.to_string()))?;
    let token = match &h.token {
        Some(r) => resolve_secret("hubspot.token", r, false)?
            .ok_or_else(|| invalid("hubspot.token", empty_secret(r)))?,
        None => {
            return Err(invalid(
                "hubspot.token",
                "missing: token = { env = \"HUBSPOT_TOKEN\" }",
            ));
        }
    };
    let rate_limit = parse_rate_limit(h.rate_limit.as_deref().unwrap_or("100/10s"))
        .map_err(|r| invalid("hubspot.rate_limit", r))?;
    let (webhook_secret, webhook_secret_missing) = match h.webhook_secret {
        Some(r) => {
            let secret = resolve_secret("hubspot.webhook_secret", &r, false)?;
            let missing = secret.is_none().then(|| empty_secret(&r));
            (secret, missing)
        }
        None => (None, None),
    };
    let hubspot = HubSpotConfig {
        base_url,
        token,
        rate_limit,
        search_per_second: h.search_rate_limit.unwrap_or(4).max(1),
        daily_limit: h.daily_limit,
        webhook_secret,
        webhook_secret_missing,
    };

    let p = file.postgres;
    let url = match p.url {
        Some(r) => resolve_secret("postgres.url", &r, true)?,
        None => std::env::var("DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .map(Into::into),
    };
    let schema = p.schema.unwrap_or_else(|| "hubspot".into());
    if schema.is_empty() || schema == "hubsync" || schema.len() > 63 {
        return Err(invalid(
            "postgres.schema",
            "must be 1-63 bytes and not \"hubsync\"",
        ));
    }
    let postgres = PostgresConfig {
        url,
        schema,
        hard_delete: p.hard_delete.unwrap_or(false),
        allow_truncate: p.allow_truncate.unwrap_or(false),
    };

    let s = file.server;
    let listen = s.listen.as_deref().unwrap_or("127.0.0.1:8080");
    let listen = listen
        .parse()
        .map_err(|_| invalid("server.listen", "expected HOST:PORT"))?;
    let webhook_path = s.webhook_path.unwrap_or_else(|| "/webhooks/hubspot".into());
    if !webhook_path.starts_with('/') {
        return Err(invalid("server.webhook_path", "must start with /"));
    }
    let server = ServerConfig {
        listen,
        webhook_path,
        writeback_window: duration("server.writeback_window", s.writeback_window, "50ms")?,
        reconcile_every: duration("server.reconcile_every", s.reconcile_every, "5m")?,
        settle_delay: duration("server.settle_delay", s.settle_delay, "2m")?,
        audit_retention: duration("server.audit_retention", s.audit_retention, "90days")?,
        public_url: s
            .public_url
            .map(|u| Url::parse(&u).map_err(|e| invalid("server.public_url", e.to_string())))
            .transpose()?,
        webhook_max_bytes: s.webhook_max_bytes.unwrap_or(1 << 20).max(1024),
        accept_v1: false,
        accept_v2: false,
        webhook_max_age: duration("server.webhook_max_age", s.webhook_max_age, "5m")?,
        inbox_retention: duration("server.inbox_retention", s.inbox_retention, "7days")?,
    };
    let server = signature_versions(server, s.webhook_signatures)?;

    let objects = objects::validate(file.objects)?;
    let dashboard = operate::dashboard(file.dashboard, server.listen)?;
    let alerts = operate::alerts(file.alerts)?;
    Ok(Config {
        hubspot,
        postgres,
        server,
        objects,
        dashboard,
        alerts,
    })
}

/// Applies `server.webhook_signatures` (default `["v3"]`). v3 is always checked when its
/// header is present; listing `v1`/`v2` also accepts deliveries signed only that way.
fn signature_versions(
    mut server: ServerConfig,
    versions: Option<Vec<String>>,
) -> Result<ServerConfig, ConfigError> {
    let versions = versions.unwrap_or_else(|| vec!["v3".to_owned()]);
    if versions.is_empty() {
        return Err(invalid(
            "server.webhook_signatures",
            "accept at least one of v1, v2, v3",
        ));
    }
    for v in versions {
        match v.as_str() {
            "v1" => server.accept_v1 = true,
            "v2" => server.accept_v2 = true,
            "v3" => {} // always accepted when its header is present
            other => {
                return Err(invalid(
                    "server.webhook_signatures",
                    format!("{other:?}: v1, v2 or v3"),
                ));
            }
        }
    }
    Ok(server)
}

/// Parses `100/10s` into (requests, period); `off` into `None`.
pub(crate) fn parse_rate_limit(text: &str) -> Result<Option<(u32, Duration)>, String> {
    if text.trim() == "off" {
        return Ok(None);
    }
    let (n, per) = text
        .split_once('/')
        .ok_or("expected REQUESTS/PERIOD like 100/10s, or off")?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a request count"))?;
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
        per
    } else {
        &format!("1{per}")
    };
    let per = humantime::parse_duration(per).map_err(|e| format!("bad period: {e}"))?;
    if n == 0 || per.is_zero() {
        return Err("requests and period must be positive".into());
    }
    Ok(Some((n, per)))
}

pub(crate) fn duration(
    key: &str,
    v: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = v.as_deref().unwrap_or(default);
    humantime::parse_duration(text).map_err(|e| invalid(key, format!("{text:?}: {e}")))
}

/// Resolves a secret reference; `Ok(None)` when the environment variable is unset or empty.
fn resolve_secret(
    key: &str,
    r: &SecretRef,
    literal_ok_without_password: bool,
) -> Result<Option<SecretString>, ConfigError> {
    match r {
        SecretRef::Env { env } => Ok(std::env::var(env)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)),
        SecretRef::File { file } => {
            let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
            })?;
            let text = text.trim_end_matches(['\n', '\r']);
            Ok((!text.is_empty()).then(|| SecretString::from(text.to_owned())))
        }
        SecretRef::Literal(text) if literal_ok_without_password && !has_password(text) => {
            Ok(Some(SecretString::from(text.clone())))
        }
        SecretRef::Literal(_) => Err(invalid(
            key,
            "a literal secret in the config file is refused; use { env = \"NAME\" } or \
             { file = \"PATH\" }",
        )),
    }
}

/// Why a referenced secret resolved to nothing, naming the variable or file to fix.
fn empty_secret(r: &SecretRef) -> String {
    match r {
        SecretRef::Env { env } => format!("the environment variable {env} is not set"),
        SecretRef::File { file } => format!("the file {file} is empty"),
        SecretRef::Literal(_) => "empty".into(),
    }
}

/// Whether a PostgreSQL URL or key/value string carries a password.
fn has_password(conn: &str) -> bool {
    if let Ok(url) = Url::parse(conn)
        && url.scheme().starts_with("postgres")
    {
        return url.password().is_some()
            || url
                .query_pairs()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"));
    }
    conn.split_whitespace()
        .any(|kv| kv.to_ascii_lowercase().starts_with("password="))
}

#[cfg(test)]
mod tests;
