//! Origin tagging: hubsync's own writes to synced tables run in transactions marked with
//! `SET LOCAL hubsync.origin = 'hubsync'`, which the capture triggers read and skip, so data
//! that came from HubSpot never flows back to HubSpot.

use deadpool_postgres::GenericClient;

use crate::{
    error::StoreError,
    pool::{StoreClient, StoreTransaction},
};

/// The custom setting the capture triggers read.
pub const ORIGIN_SETTING: &str = "hubsync.origin";

/// The value of [`ORIGIN_SETTING`] that marks a write as hubsync's own.
pub const ORIGIN_HUBSYNC: &str = "hubsync";

/// Marks the current transaction as hubsync's own (`SET LOCAL`, so it ends with the
/// transaction and never leaks to the next user of a pooled connection).
///
/// # Errors
/// The statement failed.
pub async fn tag_transaction(tx: &impl GenericClient) -> Result<(), StoreError> {
    tx.execute("SELECT set_config('hubsync.origin', 'hubsync', true)", &[])
        .await
        .map_err(|e| StoreError::postgres("tag the transaction as hubsync's own", e))?;
    Ok(())
}

/// Begins a transaction already tagged with [`tag_transaction`].
///
/// ```no_run
/// # async fn f(store: &hubsync_store::Store) -> Result<(), hubsync_store::StoreError> {
/// let mut client = store.client().await?;
/// let tx = hubsync_store::tagged_transaction(&mut client).await?;
/// tx.execute("UPDATE hubspot.contacts SET email = 'a@b.c' WHERE hs_object_id = 1", &[])
///     .await
///     .map_err(|e| hubsync_store::StoreError::postgres("update", e))?;
/// tx.commit().await.map_err(|e| hubsync_store::StoreError::postgres("commit", e))?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// `BEGIN` or the tagging statement failed.
pub async fn tagged_transaction(
    client: &mut StoreClient,
) -> Result<StoreTransaction<'_>, StoreError> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| StoreError::postgres("begin a transaction", e))?;
    tag_transaction(&tx).await?;
    Ok(tx)
}
