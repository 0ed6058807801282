//! Logging set-up: human-readable or JSON lines on stderr, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt};

use crate::cli::LogFormat;

/// Installs the global subscriber. Default level `info` for hubsync's crates, `warn` otherwise.
pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "warn,hubsync=info,hubsync_engine=info,hubsync_store=info,hubsync_hubspot=info,\
             hubsync_emulator=info",
        )
    });
    // Colours only for a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub(crate) fn metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Metric names the daemon records (HubSpot calls, 429s and remaining budget come from
/// `hubsync_hubspot::metric_names`). Labels stay low-cardinality: object, direction, outcome.
pub(crate) mod names {
    /// Counter: webhook deliveries by `outcome` (accepted, bad_signature, stale, too_large,
    /// malformed, unavailable).
    pub(crate) const WEBHOOK_REQUESTS: &str = "hubsync_webhook_requests_total";
    /// Counter: webhook events by `outcome` (new, duplicate).
    pub(crate) const WEBHOOK_EVENTS: &str = "hubsync_webhook_events_total";
    /// Summary: seconds from a webhook's arrival to its record committed in PostgreSQL.
    pub(crate) const WEBHOOK_APPLY_SECONDS: &str = "hubsync_webhook_apply_seconds";
    /// Gauge: unprocessed webhook events, by `object`.
    pub(crate) const INBOX_DEPTH: &str = "hubsync_inbox_depth";
    /// Gauge: outbox entries waiting for HubSpot, by `object`.
    pub(crate) const OUTBOX_PENDING: &str = "hubsync_outbox_pending";
    /// Gauge: outbox entries HubSpot rejected, by `object`.
    pub(crate) const OUTBOX_FAILED: &str = "hubsync_outbox_failed";
    /// Gauge: open conflicts, by `object`.
    pub(crate) const CONFLICTS_OPEN: &str = "hubsync_conflicts_open";
    /// Gauge: rows in the synced table, by `object`.
    pub(crate) const OBJECT_ROWS: &str = "hubsync_object_rows";
    /// Gauge: age in seconds of the oldest change not yet carried over (inbox or outbox),
    /// by `object`; 0 when nothing waits.
    pub(crate) const OBJECT_LAG: &str = "hubsync_object_lag_seconds";
    /// Gauge: Unix time of the last successful unit of work, by `object` and `direction`.
    pub(crate) const LAST_SUCCESS: &str = "hubsync_object_last_success_timestamp_seconds";
    /// Counter: failed units of work, by `object` and `direction`.
    pub(crate) const OBJECT_ERRORS: &str = "hubsync_object_errors_total";
    /// Counter: rows written to PostgreSQL, by `object` and `source` (webhook, poll,
    /// settled).
    pub(crate) const ROWS_WRITTEN: &str = "hubsync_rows_written_total";
    /// Counter: HubSpot record writes from PostgreSQL, by `object` and `op` (created,
    /// updated, archived, failed).
    pub(crate) const WRITEBACK_RECORDS: &str = "hubsync_writeback_records_total";
    /// Gauge: open values that did not fit their column (`hubsync.issues`), by `object`.
    pub(crate) const ISSUES_OPEN: &str = "hubsync_issues_open";
}
