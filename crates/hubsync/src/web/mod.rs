//! The daemon's HTTP surface: health and readiness probes, Prometheus metrics and (added by
//! the real-time work) HubSpot's webhook deliveries and the dashboard.

mod health;
mod metrics;

use std::sync::Arc;

use axum::{Router, routing::get};
use metrics_exporter_prometheus::PrometheusHandle;

pub(crate) use health::Readiness;

/// What every route can reach.
#[derive(Clone)]
pub(crate) struct WebState {
    /// Rendering of the process's metrics.
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Whether the daemon can do its work (PostgreSQL reachable, workers started).
    pub(crate) readiness: Arc<Readiness>,
}

/// The router: `/healthz`, `/readyz`, `/metrics`.
pub(crate) fn router(state: WebState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .with_state(state)
}
