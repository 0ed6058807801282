//! `hubsync.mapping_overrides`: field-mapping changes made while hubsync runs (from the
//! dashboard, or by SQL), layered over the configuration file: include or exclude a
//! property, change its direction or its conflict rule.
//!
//! The engine reads them at the start of every pass (`hubsync_engine::overrides`). Every
//! change of the table — through [`set`] or plain SQL — notifies [`MAPPING_CHANNEL`] by a
//! trigger (migration V4) in the changing transaction, so every running daemon refreshes
//! its catalog at once instead of at its next reconciliation round.

use deadpool_postgres::GenericClient;

use crate::error::{Context as _, StoreError};

/// `NOTIFY` channel raised by every change of the table (payload: the object's name; empty
/// after a `TRUNCATE`).
pub const MAPPING_CHANNEL: &str = "hubsync_mapping";

/// One property's override. `None` fields keep what the configuration says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MappingOverride {
    /// HubSpot object (`contacts`).
    pub object: String,
    /// HubSpot property (`lifecyclestage`).
    pub property: String,
    /// `Some(true)`: synced even if the configured list omits it; `Some(false)`: never
    /// requested from HubSpot any more.
    pub included: Option<bool>,
    /// `hubspot-to-postgres`, `postgres-to-hubspot` or `two-way`.
    pub direction: Option<String>,
    /// `last-write-wins`, `hubspot-wins`, `postgres-wins` or `manual`.
    pub conflict: Option<String>,
    /// Who made the change (free text, e.g. `dashboard`).
    pub updated_by: Option<String>,
}

impl MappingOverride {
    /// Whether the override changes nothing (it is then deleted rather than stored).
    pub fn is_empty(&self) -> bool {
        self.included.is_none() && self.direction.is_none() && self.conflict.is_none()
    }
}

/// Every override, or those of `object`, ordered by object and property.
///
/// # Errors
/// Database errors.
pub async fn list(
    client: &impl GenericClient,
    object: Option<&str>,
) -> Result<Vec<MappingOverride>, StoreError> {
    let rows = client
        .query(
            "SELECT object, property, included, direction, conflict, updated_by \
             FROM hubsync.mapping_overrides WHERE $1::text IS NULL OR object = $1 \
             ORDER BY object, property",
            &[&object],
        )
        .await
        .during("read mapping overrides")?;
    Ok(rows
        .iter()
        .map(|r| MappingOverride {
            object: r.get(0),
            property: r.get(1),
            included: r.get(2),
            direction: r.get(3),
            conflict: r.get(4),
            updated_by: r.get(5),
        })
        .collect())
}

/// Stores `o` (replacing the property's previous override; an empty one deletes it); the
/// table's trigger notifies [`MAPPING_CHANNEL`] when the change commits.
///
/// # Errors
/// Database errors; a direction or conflict spelling the table refuses.
pub async fn set(client: &impl GenericClient, o: &MappingOverride) -> Result<(), StoreError> {
    if o.is_empty() {
        client
            .execute(
                "DELETE FROM hubsync.mapping_overrides WHERE object = $1 AND property = $2",
                &[&o.object, &o.property],
            )
            .await
            .during("delete a mapping override")?;
    } else {
        client
            .execute(
                "INSERT INTO hubsync.mapping_overrides \
                   (object, property, included, direction, conflict, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (object, property) DO UPDATE SET included = excluded.included, \
                   direction = excluded.direction, conflict = excluded.conflict, \
                   updated_by = excluded.updated_by, updated_at = now()",
                &[
                    &o.object,
                    &o.property,
                    &o.included,
                    &o.direction,
                    &o.conflict,
                    &o.updated_by,
                ],
            )
            .await
            .during("store a mapping override")?;
    }
    Ok(())
}
