//! The configuration file as written by users: plain serde shapes, nothing resolved yet.
//!
//! Parsing only checks syntax; [`super::validate`] turns a [`FileConfig`] into a typed
//! [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole `hubsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// The HubSpot portal.
    pub(crate) hubspot: HubSpotSection,
    /// The PostgreSQL database.
    #[serde(default)]
    pub(crate) postgres: PostgresSection,
    /// The daemon's HTTP surface and intervals.
    #[serde(default)]
    pub(crate) server: ServerSection,
    /// The dashboard (`[dashboard]`).
    #[serde(default)]
    pub(crate) dashboard: super::operate::DashboardSection,
    /// Alert thresholds and targets (`[alerts]`).
    #[serde(default)]
    pub(crate) alerts: super::operate::AlertsSection,
    /// What to sync.
    #[serde(default, rename = "object")]
    pub(crate) objects: Vec<ObjectSection>,
}

/// `[hubspot]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HubSpotSection {
    /// API base URL.
    pub(crate) base_url: Option<String>,
    /// The private-app token (env or file reference, never a literal).
    pub(crate) token: Option<SecretRef>,
    /// Burst limit like `100/10s`.
    pub(crate) rate_limit: Option<String>,
    /// Search requests per second.
    pub(crate) search_rate_limit: Option<u32>,
    /// Daily request cap.
    pub(crate) daily_limit: Option<u64>,
    /// The app's client secret for webhook signatures.
    pub(crate) webhook_secret: Option<SecretRef>,
}

/// `[postgres]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresSection {
    /// Connection URL or libpq string (env or file reference; a literal is accepted only
    /// when it carries no password).
    pub(crate) url: Option<UrlRef>,
    /// Schema of the synced tables.
    pub(crate) schema: Option<String>,
    /// Delete rows when HubSpot deletes records instead of setting `archived_at`.
    pub(crate) hard_delete: Option<bool>,
    /// Allow TRUNCATE of synced tables (refused by default).
    pub(crate) allow_truncate: Option<bool>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// Listen address of the daemon.
    pub(crate) listen: Option<String>,
    /// Path HubSpot posts webhooks to.
    pub(crate) webhook_path: Option<String>,
    /// Micro-batch window for writeback, e.g. `50ms`.
    pub(crate) writeback_window: Option<String>,
    /// Interval of the reconciliation sweep, e.g. `5m`.
    pub(crate) reconcile_every: Option<String>,
    /// How far behind real time the settled pass runs, e.g. `2m`.
    pub(crate) settle_delay: Option<String>,
    /// How long audit entries are kept, e.g. `90days`.
    pub(crate) audit_retention: Option<String>,
    /// The public base URL HubSpot calls (`https://sync.example.com`); signatures cover it.
    pub(crate) public_url: Option<String>,
    /// Largest webhook body accepted, in bytes.
    pub(crate) webhook_max_bytes: Option<usize>,
    /// Signature versions accepted (`["v3"]` by default; add `"v1"`/`"v2"` for legacy apps).
    pub(crate) webhook_signatures: Option<Vec<String>>,
    /// How old a v3 request timestamp may be, e.g. `5m`.
    pub(crate) webhook_max_age: Option<String>,
    /// How long processed webhook events are kept for deduplication, e.g. `7days`.
    pub(crate) inbox_retention: Option<String>,
}

/// A secret: `{ env = "NAME" }` or `{ file = "PATH" }`; a bare string is refused.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SecretRef {
    /// Read from an environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Read from a file (trailing newline trimmed).
    File {
        /// The file's path.
        file: String,
    },
    /// A literal in the file: refused for secrets.
    Literal(String),
}

/// The PostgreSQL URL: like a secret, but a literal without a password is allowed.
pub(crate) type UrlRef = SecretRef;

/// One `[[object]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectSection {
    /// contacts | companies | deals | tickets | a custom object's name.
    pub(crate) name: String,
    /// hubspot-to-postgres | postgres-to-hubspot | two-way.
    pub(crate) direction: Option<String>,
    /// `"all"` or a list of property names.
    pub(crate) properties: Option<PropertyList>,
    /// Default conflict policy for the object's fields.
    pub(crate) conflict: Option<String>,
    /// `"realtime"`, `{ every = "15m" }` or `{ realtime = true, every = "15m" }`.
    pub(crate) mode: Option<ModeSection>,
    /// Per-field overrides.
    #[serde(default)]
    pub(crate) fields: BTreeMap<String, FieldSection>,
}

/// `properties = "all"` or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum PropertyList {
    /// The word `all` (anything else is an error at validation).
    Word(String),
    /// Only these.
    List(Vec<String>),
}

/// `mode = …`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ModeSection {
    /// `"realtime"`.
    Word(String),
    /// `{ every = "15m" }`, optionally with `realtime = true` (hybrid).
    Table {
        /// Poll interval.
        every: Option<String>,
        /// Also real time.
        realtime: Option<bool>,
    },
}

/// `[object.fields.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldSection {
    /// Conflict policy for this field.
    pub(crate) conflict: Option<String>,
    /// Direction for this field.
    pub(crate) direction: Option<String>,
}
