//! Pre-flight checks for `hubsync check`: is the server new enough, and may the connected
//! role do what hubsync needs (create its schemas or use them, create tables and triggers)?
//! Each finding is a sentence a user can act on.
//!
//! The least-privileged role that passes, for a database `crm` (run as its owner):
//!
//! ```sql
//! CREATE ROLE hubsync LOGIN PASSWORD '…';
//! GRANT CONNECT, CREATE ON DATABASE crm TO hubsync;   -- CREATE: the two schemas
//! -- or create them up front and hand them over instead of database-level CREATE:
//! -- CREATE SCHEMA hubspot AUTHORIZATION hubsync; CREATE SCHEMA hubsync AUTHORIZATION hubsync;
//! -- Applications that write synced tables need rights on those tables only:
//! GRANT USAGE ON SCHEMA hubspot TO app;
//! GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA hubspot TO app;
//! ```
//!
//! No superuser, replication privilege or `wal_level = logical` is needed: change capture
//! uses triggers whose functions run with hubsync's rights (`SECURITY DEFINER`).

use deadpool_postgres::GenericClient;

use crate::error::{Context as _, StoreError};

/// Oldest PostgreSQL major version supported (`CREATE OR REPLACE TRIGGER` is 14+).
pub const MIN_SERVER_VERSION: i32 = 14;

/// Problems that would stop hubsync from working with `data_schema` (where synced tables
/// live) and its own `hubsync` schema. Empty when all is well.
///
/// # Errors
/// Database errors while checking.
pub async fn problems(
    client: &impl GenericClient,
    data_schema: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int / 10000, current_user, \
               current_database(), has_database_privilege(current_database(), 'CREATE')",
            &[],
        )
        .await
        .during("read the server version and role")?;
    let (major, user, database, can_create_schema): (i32, String, String, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if major < MIN_SERVER_VERSION {
        out.push(format!(
            "PostgreSQL {major} is too old: hubsync needs {MIN_SERVER_VERSION} or newer"
        ));
    }
    for schema in [data_schema, crate::STATE_SCHEMA] {
        let row = client
            .query_one(
                "SELECT n.oid IS NOT NULL, \
                   coalesce(has_schema_privilege(n.oid, 'USAGE'), false), \
                   coalesce(has_schema_privilege(n.oid, 'CREATE'), false) \
                 FROM (SELECT $1::text AS name) s \
                 LEFT JOIN pg_namespace n ON n.nspname = s.name",
                &[&schema],
            )
            .await
            .during("check schema privileges")?;
        let (exists, usage, create): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
        if !exists && !can_create_schema {
            out.push(format!(
                "schema {schema} does not exist and role {user} may not create it: \
                 GRANT CREATE ON DATABASE {database} TO {user}, or \
                 CREATE SCHEMA {schema} AUTHORIZATION {user}"
            ));
        } else if exists && !(usage && create) {
            out.push(format!(
                "role {user} needs USAGE and CREATE on schema {schema}: \
                 GRANT USAGE, CREATE ON SCHEMA {schema} TO {user}"
            ));
        }
    }
    Ok(out)
}
