//! Migrations of hubsync's own schema `hubsync`, embedded in the binary with refinery
//! (`migrations/V{n}__{name}.sql`). Their history lives in `hubsync.refinery_schema_history`.
//! Concurrent runs (several instances starting at once, parallel tests) are serialised with
//! an advisory lock, and a second run is a no-op.

use deadpool_postgres::GenericClient as _;

use crate::{Store, error::StoreError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The schema holding hubsync's state.
pub const STATE_SCHEMA: &str = "hubsync";

/// Where refinery records the applied migrations.
pub const HISTORY_TABLE: &str = "hubsync.refinery_schema_history";

/// Advisory-lock key that serialises migration runs ("hubsync" in ASCII).
const MIGRATION_LOCK: i64 = 0x0068_7562_7379_6e63;

/// Versions and names of the embedded migrations, in order.
pub fn embedded_migrations() -> Vec<(i32, String)> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.name().to_owned()))
        .collect()
}

/// Applies every embedded migration not yet applied; returns the versions applied now.
///
/// # Errors
/// A connection failure, or a migration that failed or diverges from the one applied
/// before under the same version.
pub async fn migrate(store: &Store) -> Result<Vec<i32>, StoreError> {
    let mut client = store.client().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StoreError::postgres("lock migrations", e))?;
    let result = run(&mut client).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StoreError::postgres("unlock migrations", e));
    let applied = result?;
    unlock?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "applied hubsync schema migrations");
    }
    Ok(applied)
}

async fn run(client: &mut crate::pool::StoreClient) -> Result<Vec<i32>, StoreError> {
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS hubsync")
        .await
        .map_err(|e| StoreError::postgres("create the hubsync schema", e))?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(HISTORY_TABLE);
    let report = runner.set_grouped(true).run_async(&mut ***client).await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.version())
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        let versions: Vec<i32> = super::embedded_migrations()
            .iter()
            .map(|(v, _)| *v)
            .collect();
        let expected: Vec<i32> = (1..=versions.len() as i32).collect();
        assert_eq!(versions, expected);
    }
}
