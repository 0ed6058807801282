//! `hubsync.leases`: units of work (portal/object/direction) held by one instance at a
//! time. A lease is taken when free or expired, renewed by its holder, and carries a
//! fencing number that grows whenever it changes hands.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::{
    error::{Context as _, StoreError},
    state::seconds,
};

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The unit of work.
    pub unit: String,
    /// Who holds it.
    pub holder: String,
    /// Grows each time the lease changes hands.
    pub fencing: i64,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// Takes `unit` for `holder` for `ttl` if it is free, expired or already `holder`'s
/// (renewal). Returns `None` when another holder has it.
///
/// # Errors
/// Database errors.
pub async fn acquire(
    client: &impl GenericClient,
    unit: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>, StoreError> {
    let row = client
        .query_opt(
            "INSERT INTO hubsync.leases (unit, holder, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3)) \
             ON CONFLICT (unit) DO UPDATE SET \
               holder = excluded.holder, expires_at = excluded.expires_at, \
               fencing = leases.fencing \
                 + CASE WHEN leases.holder = excluded.holder THEN 0 ELSE 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder \
                 THEN leases.acquired_at ELSE now() END \
             WHERE leases.holder = excluded.holder OR leases.expires_at < now() \
             RETURNING fencing, expires_at",
            &[&unit, &holder, &seconds(ttl)],
        )
        .await
        .during("acquire a lease")?;
    Ok(row.map(|r| Lease {
        unit: unit.to_owned(),
        holder: holder.to_owned(),
        fencing: r.get(0),
        expires_at: r.get(1),
    }))
}

/// Gives a lease up; returns whether `holder` had it.
///
/// # Errors
/// Database errors.
pub async fn release(
    client: &impl GenericClient,
    unit: &str,
    holder: &str,
) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "DELETE FROM hubsync.leases WHERE unit = $1 AND holder = $2",
            &[&unit, &holder],
        )
        .await
        .during("release a lease")?;
    Ok(n > 0)
}

/// All leases, live or expired.
///
/// # Errors
/// Database errors.
pub async fn list(client: &impl GenericClient) -> Result<Vec<Lease>, StoreError> {
    let rows = client
        .query(
            "SELECT unit, holder, fencing, expires_at FROM hubsync.leases ORDER BY unit",
            &[],
        )
        .await
        .during("list leases")?;
    Ok(rows
        .iter()
        .map(|r| Lease {
            unit: r.get(0),
            holder: r.get(1),
            fencing: r.get(2),
            expires_at: r.get(3),
        })
        .collect())
}
