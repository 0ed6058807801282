//! The daemon's HTTP surface: health and readiness probes, Prometheus metrics, HubSpot's
//! webhook deliveries and (issue 6) the dashboard.

pub(crate) mod dashboard;
mod health;
mod metrics;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use metrics_exporter_prometheus::PrometheusHandle;

pub(crate) use health::Readiness;
pub(crate) use webhooks::Receiver;

/// What every route can reach.
#[derive(Clone)]
pub(crate) struct WebState {
    /// Rendering of the process's metrics.
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Whether the daemon can do its work (PostgreSQL reachable, workers started).
    pub(crate) readiness: Arc<Readiness>,
    /// The webhook receiver; `None` when no webhook secret is configured.
    pub(crate) webhooks: Option<Arc<Receiver>>,
    /// The dashboard; `None` when `dashboard.enabled = false`.
    pub(crate) dashboard: Option<Arc<dashboard::Dashboard>>,
}

/// Where the routes live and how large a webhook body may be.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    /// `server.webhook_path`.
    pub(crate) webhook_path: String,
    /// `server.webhook_max_bytes`.
    pub(crate) webhook_max_bytes: usize,
}

/// The router: `/healthz`, `/readyz`, `/metrics` and the webhook path. The dashboard's
/// routes are merged here when it exists.
pub(crate) fn router(state: WebState, routes: &Routes) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route(
            &routes.webhook_path,
            post(webhooks::receive).layer(DefaultBodyLimit::max(routes.webhook_max_bytes)),
        )
        .merge(dashboard::router(state.dashboard.clone()))
        .with_state(state)
}
