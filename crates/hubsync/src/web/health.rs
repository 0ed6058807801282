//! `/healthz` (the process answers) and `/readyz` (it can do its work).

use std::sync::atomic::{AtomicBool, Ordering};

use axum::{extract::State, http::StatusCode};

use super::WebState;

/// Readiness flags set by the daemon as its parts come up and go down.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    postgres: AtomicBool,
    workers: AtomicBool,
}

impl Readiness {
    /// Records whether PostgreSQL answered the last probe.
    pub(crate) fn set_postgres(&self, up: bool) {
        self.postgres.store(up, Ordering::Relaxed);
    }

    /// Records that the workers were started (or stopped).
    pub(crate) fn set_workers(&self, up: bool) {
        self.workers.store(up, Ordering::Relaxed);
    }

    fn reasons(&self) -> Vec<&'static str> {
        let mut not = Vec::new();
        if !self.postgres.load(Ordering::Relaxed) {
            not.push("postgres unreachable");
        }
        if !self.workers.load(Ordering::Relaxed) {
            not.push("workers not running");
        }
        not
    }
}

/// Liveness: always 200 while the process serves HTTP.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when ready, 503 with the reasons otherwise.
pub(crate) async fn readyz(State(state): State<WebState>) -> (StatusCode, String) {
    let not = state.readiness.reasons();
    if !not.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, not.join(", "))
    } else {
        (StatusCode::OK, "ready".into())
    }
}
