//! `hubsync run`: the daemon. Starts the HTTP surface (webhooks, probes, metrics) and the
//! workers under a supervisor, and stops them cleanly on SIGTERM/SIGINT.
//!
//! | worker | does |
//! |---|---|
//! | `reconcile` ([`schedule`]) | refreshes the catalog; per object on its schedule: backfill / incremental / sweeps, settled pass |
//! | `inbox` ([`inbox`]) | webhook events → batch reads → rows |
//! | `writeback` ([`writeback`]) | NOTIFY + micro-batch window → outbox → HubSpot |
//! | `mapping` ([`mapping`]) | `NOTIFY hubsync_mapping` → catalog refresh (field-mapping changes of any instance) |
//! | `observe` ([`observe`]) | readiness probe, per-object gauges, retention purges |
//!
//! A failed worker is restarted with backoff ([`Supervisor`]); on shutdown, in-flight
//! batches get [`SHUTDOWN_GRACE`] to finish, and whatever is abandoned is redone on the next
//! start (every hand-off is a table: nothing lives only in memory).

mod inbox;
mod mapping;
mod observe;
mod schedule;
mod settled;
mod shared;
mod supervisor;
mod writeback;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use hubsync_hubspot::webhook::SignatureVerifier;
use tokio_util::sync::CancellationToken;

pub(crate) use supervisor::Supervisor;

use crate::{
    config::Config,
    web::{self, Readiness, Receiver, Routes, WebState},
};
use shared::Shared;

/// How long in-flight work may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Runs the daemon until `shutdown` is cancelled (by a signal or by the caller).
pub(crate) async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let url = config.database_url()?.to_owned();
    let store = hubsync_store::Store::connect(&url)
        .await
        .context("cannot reach PostgreSQL")?;
    hubsync_store::migrate(&store)
        .await
        .context("cannot migrate the hubsync schema")?;
    let client = config.hubspot_client()?;
    let shared = Arc::new(Shared::new(&config, store.clone(), client));

    let readiness = Arc::new(Readiness::default());
    readiness.set_postgres(true);
    let webhooks = match &config.hubspot.webhook_secret {
        Some(secret) => Some(Arc::new(Receiver {
            store: store.clone(),
            verifier: SignatureVerifier::new(secret.clone())
                .max_age(config.server.webhook_max_age)
                .accept_legacy(config.server.accept_v1, config.server.accept_v2),
            public_url: config.server.public_url.clone(),
        })),
        None => {
            tracing::warn!(
                why = config.hubspot.webhook_secret_missing.as_deref().unwrap_or("not configured"),
                every = ?config.server.reconcile_every,
                "hubspot.webhook_secret is not set: webhooks are refused and HubSpot changes arrive by polling only"
            );
            None
        }
    };
    let web_state = WebState {
        metrics: crate::telemetry::metrics(),
        readiness: Arc::clone(&readiness),
        webhooks,
        dashboard: dashboard(&config, &shared, &shutdown),
    };
    let routes = Routes {
        webhook_path: config.server.webhook_path.clone(),
        webhook_max_bytes: config.server.webhook_max_bytes,
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(listen = %config.server.listen, webhook_path = %routes.webhook_path, holder = shared.holder(), "daemon listening");

    crate::alerts::spawn(
        &config,
        store.clone(),
        shared.client.clone(),
        shutdown.clone(),
    );
    let supervisor = Supervisor::new(shutdown.clone());
    let app = web::router(web_state, &routes);
    let web_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(web_shutdown.cancelled_owned())
            .await
    });

    let s = Arc::clone(&shared);
    supervisor.spawn("reconcile", move |token| {
        let s = Arc::clone(&s);
        on_own_thread(move || schedule::run(s, token))
    });
    let s = Arc::clone(&shared);
    supervisor.spawn("inbox", move |token| {
        boxed(inbox::run(Arc::clone(&s), token))
    });
    let s = Arc::clone(&shared);
    supervisor.spawn("writeback", move |token| {
        let s = Arc::clone(&s);
        on_own_thread(move || writeback::run(s, token))
    });
    let s = Arc::clone(&shared);
    supervisor.spawn("mapping", move |token| {
        boxed(mapping::run(Arc::clone(&s), token))
    });
    let s = Arc::clone(&shared);
    let r = Arc::clone(&readiness);
    supervisor.spawn("observe", move |token| {
        boxed(observe::run(Arc::clone(&s), Arc::clone(&r), token))
    });

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    readiness.set_workers(false);
    if !supervisor.stop(SHUTDOWN_GRACE).await {
        tracing::warn!("some workers did not finish in time; their work is redone on restart");
    }
    server
        .await
        .context("web server task")?
        .context("web server")?;
    store.close();
    tracing::info!("stopped");
    Ok(())
}

/// The dashboard (issue 6), wired to this daemon: a mapping change refreshes the catalog
/// at once; the API budget is sampled until shutdown.
fn dashboard(
    config: &Config,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
) -> Option<Arc<web::dashboard::Dashboard>> {
    if !config.dashboard.enabled {
        return None;
    }
    let s = Arc::clone(shared);
    let refresh: web::dashboard::Refresh = Arc::new(move || {
        let s = Arc::clone(&s);
        Box::pin(async move { s.refresh_catalog().await.map(drop) })
    });
    let (store, client) = (shared.store.clone(), shared.client.clone());
    let d = web::dashboard::Dashboard::new(config, store, client, refresh);
    d.spawn_sampler(shutdown.clone());
    Some(d)
}

/// A worker's future, boxed where its concrete type is known (spares the compiler a
/// higher-ranked `Send` proof inside the supervisor's generic bounds).
type Worker = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

fn boxed(f: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static) -> Worker {
    Box::pin(f)
}

/// Runs a worker whose future the compiler cannot prove `Send` (some engine futures hold
/// iterator borrows across awaits, rust-lang/rust#110338) on a blocking-pool thread that
/// drives it with the runtime's handle: it still uses the runtime's timers and sockets.
fn on_own_thread<F, Fut>(make: F) -> Worker
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + 'static,
{
    let handle = tokio::runtime::Handle::current();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || handle.block_on(make()))
            .await
            .context("worker thread")?
    })
}

/// A token cancelled on SIGINT or SIGTERM.
pub(crate) fn signal_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let kind = tokio::signal::unix::SignalKind::terminate();
            let Ok(mut term) = tokio::signal::unix::signal(kind) else {
                let _ = ctrl_c.await;
                t.cancel();
                return;
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        t.cancel();
    });
    token
}
