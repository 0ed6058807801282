//! The shadow copy as the merge sees it ([`crate::model::ShadowField`]) versus as the store
//! keeps it (`hubsync.shadow` plus open rows of `hubsync.conflicts`), and the version
//! conversions between them.
//!
//! Versions: HubSpot's are property timestamps (ms). PostgreSQL's are the outbox id (commit
//! order per record) and the capture time; the store keeps only the id, so a version read
//! back from the store gets `at_ms = i64::MAX`, which makes an observation with the same
//! outbox id "not newer" (it is the same change) and any later id newer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hubsync_store::{
    GenericClient, StoreError,
    state::{
        conflicts::NewConflict,
        shadow::{self, ShadowField as StoredField, Side as StoredSide},
    },
};

use crate::model::{Observed, OpenConflict, ShadowField, Side, Version};

/// Shadow fields of several records: id → field → merge view.
pub(crate) type Shadows = HashMap<i64, HashMap<String, ShadowField>>;

/// ms since the epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The timestamp of a HubSpot version.
pub(crate) fn hubspot_time(v: Version) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v.at_ms)
}

/// A PostgreSQL version as the store keeps it (outbox id only).
pub(crate) fn stored_postgres_version(id: i64) -> Version {
    Version {
        seq: id,
        at_ms: i64::MAX,
    }
}

/// A PostgreSQL observation's version: outbox id and capture time.
pub(crate) fn postgres_version(outbox_id: i64, at: DateTime<Utc>) -> Version {
    Version::postgres(ms(at), outbox_id)
}

fn side_from_store(s: StoredSide) -> Side {
    match s {
        StoredSide::Hubspot => Side::HubSpot,
        StoredSide::Postgres => Side::Postgres,
    }
}

fn side_to_store(s: Side) -> StoredSide {
    match s {
        Side::HubSpot => StoredSide::Hubspot,
        Side::Postgres => StoredSide::Postgres,
    }
}

/// The store's row → the merge's view.
pub(crate) fn from_store(f: &StoredField) -> ShadowField {
    ShadowField {
        value: f.value.clone(),
        hubspot_version: f.hubspot_version.map(|t| Version::hubspot(ms(t))),
        postgres_version: f.postgres_version.map(stored_postgres_version),
        agreed_at_ms: f.agreed_at.map_or(0, ms),
        origin: Some(side_from_store(f.agreed_from)),
        conflict: None,
    }
}

/// The merge's view → the store's row.
pub(crate) fn to_store(
    object: &str,
    hs_object_id: i64,
    field: &str,
    s: &ShadowField,
) -> StoredField {
    StoredField {
        object: object.to_owned(),
        hs_object_id,
        field: field.to_owned(),
        value: s.value.clone(),
        hubspot_version: s.hubspot_version.and_then(hubspot_time),
        postgres_version: s.postgres_version.map(|v| v.seq),
        agreed_from: side_to_store(s.origin.unwrap_or(Side::HubSpot)),
        agreed_at: DateTime::from_timestamp_millis(s.agreed_at_ms).filter(|_| s.agreed_at_ms > 0),
    }
}

/// A conflict row for an open manual conflict found by the merge.
pub(crate) fn new_conflict(
    object: &str,
    hs_object_id: i64,
    field: &str,
    shadow: Option<&ShadowField>,
    open: &OpenConflict,
) -> NewConflict {
    NewConflict {
        object: object.to_owned(),
        hs_object_id,
        field: field.to_owned(),
        shadow_value: shadow.and_then(|s| s.value.clone()),
        hubspot_value: open.hubspot.value.clone(),
        postgres_value: open.postgres.value.clone(),
        hubspot_version: hubspot_time(open.hubspot.version),
        postgres_version: Some(open.postgres.version.seq),
    }
}

/// Reads the shadow of `ids`, with each field's open manual conflict attached.
///
/// # Errors
/// Database errors.
pub(crate) async fn load(
    client: &impl GenericClient,
    object: &str,
    ids: &[i64],
) -> Result<Shadows, StoreError> {
    let stored = shadow::get_many(client, object, ids).await?;
    let mut out: Shadows = stored
        .into_iter()
        .map(|(id, fields)| {
            (
                id,
                fields
                    .iter()
                    .map(|(k, f)| (k.clone(), from_store(f)))
                    .collect(),
            )
        })
        .collect();
    let rows = client
        .query(
            "SELECT hs_object_id, field, hubspot_value, postgres_value, hubspot_version, \
               postgres_version, detected_at FROM hubsync.conflicts \
             WHERE object = $1 AND status = 'open' AND hs_object_id = ANY($2)",
            &[&object, &ids],
        )
        .await
        .map_err(|e| StoreError::postgres("read open conflicts", e))?;
    for r in rows {
        let id: i64 = r.get(0);
        let field: String = r.get(1);
        let hs_at: Option<DateTime<Utc>> = r.get(4);
        let pg_id: Option<i64> = r.get(5);
        let detected: DateTime<Utc> = r.get(6);
        let fields = out.entry(id).or_default();
        let open = OpenConflict {
            hubspot: Observed::new(r.get(2), Version::hubspot(hs_at.map_or(0, ms))),
            postgres: Observed::new(
                r.get(3),
                Version::postgres(ms(detected), pg_id.unwrap_or(0)),
            ),
            no_base: !fields.contains_key(&field),
        };
        let entry = fields.entry(field).or_insert_with(|| ShadowField {
            value: None,
            hubspot_version: None,
            postgres_version: None,
            agreed_at_ms: 0,
            origin: None,
            conflict: None,
        });
        entry.conflict = Some(open);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::is_newer;

    #[test]
    fn a_stored_postgres_version_is_not_older_than_its_own_change() {
        let stored = stored_postgres_version(7);
        let same = postgres_version(7, Utc::now());
        assert!(!is_newer(same, Some(stored)));
        assert!(is_newer(
            postgres_version(8, DateTime::UNIX_EPOCH),
            Some(stored)
        ));
    }

    #[test]
    fn store_round_trip() {
        let f = ShadowField {
            value: Some("a".into()),
            hubspot_version: Some(Version::hubspot(1_700_000_000_123)),
            postgres_version: Some(stored_postgres_version(4)),
            agreed_at_ms: 1_700_000_000_000,
            origin: Some(Side::Postgres),
            conflict: None,
        };
        let back = from_store(&to_store("contacts", 1, "email", &f));
        assert_eq!(back, f);
    }
}
