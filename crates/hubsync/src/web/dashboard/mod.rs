//! The dashboard served by `hubsync run` (issue 6): server-rendered pages (maud), plain HTML
//! forms, no JavaScript build step.
//!
//! | route | page |
//! |---|---|
//! | `GET /` | overview per object (mode, direction, rows, lag, last sync, outbox, errors) and the API budget chart |
//! | `GET /budget` | HubSpot calls per endpoint class and endpoint vs the burst/search/daily limits, 429s over time |
//! | `GET /conflicts`, `POST /conflicts/{id}/resolve` | the manual conflict queue |
//! | `GET /issues`, `POST /issues/{id}/dismiss`, `POST /rejected/retry`, `POST /rejected/discard` | bad values and writes HubSpot rejected |
//! | `GET /mapping`, `POST /mapping` | field mapping per object: include/exclude, direction, conflict rule |
//! | `GET /audit` | what hubsync changed on a record |
//!
//! **Security** ([`security`]): bound to localhost by default; when `server.listen` is not a
//! loopback address a `dashboard.token` is required by the configuration (bearer token, or
//! basic-auth password with any user name). Every form carries a per-process CSRF token and
//! every POST must come from the dashboard's own origin.
//!
//! **Mapping changes apply without restart**: they are stored in
//! `hubsync.mapping_overrides` (notifying `hubsync_mapping`), and the dashboard asks the
//! daemon to refresh its catalog at once through [`Refresh`]; the engine applies stored
//! overrides at the start of every pass (`hubsync_engine::overrides`), and every other
//! instance's `mapping` worker, notified by the table's trigger, refreshes within moments.

mod budget;
mod layout;
mod mapping;
mod overview;
mod queue;
mod security;

use std::sync::Arc;

use axum::{
    Router,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hubsync_engine::settings::SyncSettings;
use hubsync_hubspot::HubSpotClient;
use hubsync_store::Store;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub(crate) use budget::{BudgetHistory, Limits};

use super::WebState;
use crate::config::Config;

/// Asks the running daemon to refresh its catalog now (after a mapping change); the
/// future ends when the new mapping is in use.
pub(crate) type Refresh = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
        + Send
        + Sync,
>;

/// How long a mapping change waits for the daemon to take it up before answering.
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// One configured object as the dashboard shows it.
#[derive(Debug, Clone)]
pub(crate) struct ObjectView {
    /// Its name.
    pub(crate) name: String,
    /// `two-way`, …
    pub(crate) direction: String,
    /// The object's conflict policy.
    pub(crate) conflict: String,
    /// `realtime`, `every 15m`, …
    pub(crate) mode: String,
}

/// What the dashboard's pages reach.
pub(crate) struct Dashboard {
    /// PostgreSQL.
    pub(crate) store: Store,
    /// The daemon's HubSpot client (shared governor and call statistics).
    pub(crate) client: HubSpotClient,
    /// The configured objects.
    pub(crate) objects: Vec<ObjectView>,
    /// The configured engine settings (before runtime overrides).
    pub(crate) settings: SyncSettings,
    /// The portal's limits.
    pub(crate) limits: Limits,
    /// API calls sampled over time.
    pub(crate) budget: BudgetHistory,
    csrf: String,
    token: Option<SecretString>,
    refresh: Refresh,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Builds the dashboard from the validated configuration; `refresh` is called after a
    /// mapping change.
    pub(crate) fn new(
        config: &Config,
        store: Store,
        client: HubSpotClient,
        refresh: Refresh,
    ) -> Arc<Dashboard> {
        let objects = config
            .objects
            .iter()
            .map(|o| ObjectView {
                name: o.name.clone(),
                direction: o.direction.clone(),
                conflict: o.conflict.clone(),
                mode: match (o.schedule.realtime, o.schedule.every) {
                    (true, None) => "realtime".to_owned(),
                    (true, Some(e)) => {
                        format!("realtime + every {}", humantime::format_duration(e))
                    }
                    (false, Some(e)) => format!("every {}", humantime::format_duration(e)),
                    (false, None) => "scheduled".to_owned(),
                },
            })
            .collect();
        Arc::new(Dashboard {
            limits: Limits::from_config(config),
            store,
            client,
            objects,
            settings: config.sync_settings(),
            budget: BudgetHistory::default(),
            csrf: security::new_csrf_token(),
            token: config.dashboard.token.clone(),
            refresh,
        })
    }

    /// Samples the API budget every few seconds until `shutdown`.
    pub(crate) fn spawn_sampler(self: &Arc<Self>, shutdown: CancellationToken) {
        let d = Arc::clone(self);
        tokio::spawn(async move { budget::sample_until(&d, shutdown).await });
    }

    /// The CSRF token forms carry.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Tells the daemon the mapping changed and waits (at most [`REFRESH_WAIT`]) until it
    /// uses the new mapping; `false` when it could not (it then follows at its next round).
    pub(crate) async fn mapping_changed(&self) -> bool {
        match tokio::time::timeout(REFRESH_WAIT, (self.refresh)()).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = %format!("{err:#}"), "catalog refresh after a mapping change failed; retried next round");
                false
            }
            Err(_) => false,
        }
    }
}

/// The dashboard's routes (none when `dashboard` is `None`).
pub(crate) fn router(dashboard: Option<Arc<Dashboard>>) -> Router<WebState> {
    let Some(d) = dashboard else {
        return Router::new();
    };
    Router::new()
        .route("/", get(overview::page))
        .route("/budget", get(overview::budget_page))
        .route("/budget/chart.svg", get(overview::chart_svg))
        .route("/conflicts", get(queue::conflicts_page))
        .route("/conflicts/{id}/resolve", post(queue::resolve))
        .route("/issues", get(queue::issues_page))
        .route("/issues/{id}/dismiss", post(queue::dismiss))
        .route("/rejected/retry", post(queue::retry_rejected))
        .route("/rejected/discard", post(queue::discard_rejected))
        .route("/mapping", get(mapping::page).post(mapping::save))
        .route("/audit", get(queue::audit_page))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&d),
            security::guard,
        ))
        .with_state(d)
}

/// A page that could not be built: 500 with a one-line reason (no values, no secrets).
#[derive(Debug)]
pub(crate) struct PageError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %format!("{:#}", self.0), "dashboard page failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            layout::page(
                "Error",
                "",
                &maud::html! {
                    p.error { "The page could not be built: " (format!("{:#}", self.0)) }
                },
            ),
        )
            .into_response()
    }
}

/// Result of a page handler.
pub(crate) type PageResult<T> = Result<T, PageError>;
