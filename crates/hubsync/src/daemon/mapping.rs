//! The mapping follower: field-mapping changes (`hubsync.mapping_overrides`, from any
//! instance's dashboard or by SQL) take effect in this daemon within moments.
//!
//! Every change of the table raises `NOTIFY hubsync_mapping` (a trigger, so plain SQL does
//! too). The follower LISTENs on its own connection ([`OutboxListener`], which reconnects
//! and re-LISTENs by itself) and refreshes the catalog — the engine applies the stored
//! overrides over the configuration on every refresh — once per burst of notifications.
//! After every (re)connection, when notifications may have been missed (including the
//! moments between the first catalog and the first LISTEN), it refreshes as well.

use std::sync::Arc;

use hubsync_store::{OutboxListener, Wakeup, state::mapping_overrides::MAPPING_CHANNEL};
use tokio_util::sync::CancellationToken;

use super::shared::Shared;

/// Runs the follower until shutdown.
///
/// # Errors
/// The notification listener stopped (the supervisor restarts the follower).
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut listener = OutboxListener::start_on(shared.store.clone(), vec![MAPPING_CHANNEL.into()]);
    if shared.catalog(&shutdown).await.is_none() {
        return Ok(());
    }
    loop {
        let wake = tokio::select! {
            wake = listener.recv() => wake,
            () = shutdown.cancelled() => return Ok(()),
        };
        let Some(wake) = wake else {
            anyhow::bail!("the mapping listener stopped");
        };
        listener.drain();
        match shared.refresh_catalog().await {
            Ok(_) if matches!(wake, Wakeup::Notified { .. }) => {
                tracing::info!("field mapping changed; catalog refreshed");
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot apply the changed field mapping; the next reconciliation round retries");
            }
        }
    }
}
