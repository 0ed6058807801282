//! `hubsync run`: the daemon. Starts the HTTP surface and the workers under a supervisor and
//! stops them cleanly on SIGTERM/SIGINT.

mod supervisor;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub(crate) use supervisor::Supervisor;

use crate::{
    config::Config,
    web::{self, Readiness, WebState},
};

/// How long in-flight work may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Runs the daemon until `shutdown` is cancelled (by a signal or by the caller).
pub(crate) async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let url = config.database_url()?.to_owned();
    let store = hubsync_store::Store::connect(&url).await.context("cannot reach PostgreSQL")?;
    hubsync_store::migrate(&store).await.context("cannot migrate the hubsync schema")?;

    let readiness = Arc::new(Readiness::default());
    readiness.set_postgres(true);
    let web_state = WebState { metrics: crate::telemetry::metrics(), readiness: Arc::clone(&readiness) };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(listen = %config.server.listen, "daemon listening");

    let supervisor = Supervisor::new(shutdown.clone());
    let app = web::router(web_state);
    let web_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(web_shutdown.cancelled_owned()).await
    });
    readiness.set_workers(true);

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    readiness.set_workers(false);
    if !supervisor.stop(SHUTDOWN_GRACE).await {
        tracing::warn!("some workers did not finish in time; their work is redone on restart");
    }
    server.await.context("web server task")?.context("web server")?;
    store.close();
    Ok(())
}

/// A token cancelled on SIGINT or SIGTERM.
pub(crate) fn signal_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
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
