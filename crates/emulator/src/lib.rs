//! A local HubSpot: an in-memory CRM behind HubSpot's HTTP API, for tests, demos and trials.
//!
//! Shares no code with `hubsync-hubspot`: the two are independent readings of HubSpot's docs
//! that check each other.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hubsync_emulator::EmulatorError> {
//! let handle = hubsync_emulator::spawn(hubsync_emulator::EmulatorConfig::default()).await?;
//! println!("HubSpot at {}", handle.base_url());
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod associations;
pub mod catalog;
pub mod error;
pub mod events;
pub mod faults;
mod gateway;
pub mod owners;
mod payload;
pub mod pipelines;
pub mod properties;
pub mod property_values;
pub mod rate_limit;
pub mod records;
pub mod render;
mod routes;
pub mod schemas;
pub mod search;
pub mod seed;
pub mod state;
pub mod stats;
pub mod webhooks;
pub mod writes;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::{ApiError, EmulatorError};
pub use events::{ChangeSource, CrmEvent, EventBus, EventKind};
pub use state::{Crm, ObjectTypeId};

/// How many records of each standard type to generate at start, and from which seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedConfig {
    /// Contacts to generate.
    pub contacts: usize,
    /// Companies to generate.
    pub companies: usize,
    /// Deals to generate.
    pub deals: usize,
    /// Tickets to generate.
    pub tickets: usize,
    /// The random seed: the same value gives the same data.
    pub value: u64,
}

impl Default for SeedConfig {
    fn default() -> Self {
        Self {
            contacts: 0,
            companies: 0,
            deals: 0,
            tickets: 0,
            value: 42,
        }
    }
}

/// A request budget over a rolling window (HubSpot's burst limit: 100 per 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

/// Everything the emulator can be told at start.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Accepted bearer tokens; empty accepts any non-empty bearer token.
    pub tokens: Vec<String>,
    /// Generated data.
    pub seed: SeedConfig,
    /// Burst limit; `None` turns it off. Default 100 per 10 s (private app, Free/Starter).
    pub rate_limit: Option<RateLimit>,
    /// Daily request cap; `None` turns it off. Default 250,000.
    pub daily_limit: Option<u64>,
    /// CRM search requests per second; `None` turns it off. Default 5.
    pub search_per_second: Option<u32>,
    /// Where webhooks are delivered (none when `None`).
    pub webhook_url: Option<String>,
    /// The app's client secret used to sign webhooks.
    pub webhook_secret: Option<String>,
    /// The portal (hub) id in URLs and webhook payloads.
    pub portal_id: u32,
    /// Longest request line (method + URI) accepted before answering 414. Default 16,384.
    pub max_request_line: usize,
    /// Largest request body accepted. Default 8 MiB.
    pub max_body_bytes: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: Vec::new(),
            seed: SeedConfig::default(),
            rate_limit: Some(RateLimit {
                requests: 100,
                per: Duration::from_secs(10),
            }),
            daily_limit: Some(250_000),
            search_per_second: Some(5),
            webhook_url: None,
            webhook_secret: None,
            portal_id: 12_345_678,
            max_request_line: 16_384,
            max_body_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Shared state of the running emulator, handed to every route.
#[derive(Clone)]
pub struct AppState {
    /// The CRM data. Never hold the lock across an `.await`.
    pub crm: Arc<RwLock<Crm>>,
    /// Domain events (every mutation).
    pub events: EventBus,
    /// The configuration the emulator started with.
    pub config: Arc<EmulatorConfig>,
    /// Faults, rate limits and request counters.
    pub traffic: Arc<faults::Traffic>,
    /// Webhook settings and subscriptions (the delivery loop runs in the background).
    pub webhooks: Arc<webhooks::Webhooks>,
}

impl AppState {
    /// Builds the state (and seeds the CRM) from a configuration.
    pub fn new(config: EmulatorConfig) -> Self {
        let mut crm = Crm::new(config.portal_id);
        seed::seed(&mut crm, &config.seed);
        let events = EventBus::new();
        let traffic = Arc::new(faults::Traffic::new(&config));
        let webhooks = webhooks::Webhooks::start(&config, &events, traffic.clone());
        Self {
            crm: Arc::new(RwLock::new(crm)),
            events,
            traffic,
            webhooks,
            config: Arc::new(config),
        }
    }
}

/// The full HTTP application over `state` (use with `tower::ServiceExt::oneshot` in tests).
pub fn router(state: AppState) -> Router {
    // Public API routes get bearer auth; the `/_emulator/...` control routes do not.
    let public = Router::new()
        .merge(routes::public_routes())
        .merge(crate::associations::routes())
        .merge(crate::owners::routes())
        .merge(crate::pipelines::routes());
    let app: Router<AppState> = Router::new()
        .merge(gateway::authenticated(public, &state))
        .merge(routes::control::routes())
        .merge(crate::faults::routes())
        .merge(crate::stats::routes())
        .merge(crate::rate_limit::routes())
        .merge(crate::webhooks::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::faults::layer,
        ));
    gateway::outer_layers(app, &state).with_state(state)
}

/// A running emulator.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    state_events: EventBus,
    stop: CancellationToken,
    task: JoinHandle<Result<(), EmulatorError>>,
}

impl EmulatorHandle {
    /// `http://IP:PORT` (no trailing slash): the base URL to give HubSpot clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulator's domain events (every CRM mutation).
    pub fn events(&self) -> &EventBus {
        &self.state_events
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Binds the listener and serves in a background task.
pub async fn spawn(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(EmulatorError::Serve)?;
    let state = AppState::new(config);
    let events = state.events.clone();
    let stop = CancellationToken::new();
    let app = router(state);
    let signal = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { signal.cancelled().await })
        .await
        .map_err(EmulatorError::Serve)
    });
    Ok(EmulatorHandle {
        addr,
        state_events: events,
        stop,
        task,
    })
}

/// Serves until ctrl-c (for the `hubsync emulator` command).
pub async fn serve(config: EmulatorConfig) -> Result<(), EmulatorError> {
    let handle = spawn(config).await?;
    tracing::info!(url = %handle.base_url(), "emulator listening");
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    Ok(())
}
