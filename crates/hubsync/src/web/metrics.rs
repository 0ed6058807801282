//! `GET /metrics`: Prometheus text format from the process-wide recorder.

use axum::{extract::State, http::header, response::IntoResponse};

use super::WebState;

/// Renders every metric the process recorded.
pub(crate) async fn render(State(state): State<WebState>) -> impl IntoResponse {
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
