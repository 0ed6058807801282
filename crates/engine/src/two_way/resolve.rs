//! Carrying out manual resolutions: a conflict resolved with `hubsync conflicts resolve ID
//! --take hubspot|postgres` (or `UPDATE hubsync.conflicts SET resolution = …`) has its
//! winning value written to the other side, the shadow set to it, and `applied_at` stamped.
//! Also the typed PostgreSQL field write both this and the writer's reverts use.

use std::collections::{BTreeMap, HashMap};

use hubsync_hubspot::{HubSpotClient, UpdateInput};
use hubsync_store::{
    GenericClient, Store, StoreError,
    naming::quote_ident,
    schema::TableMapping,
    state::{
        audit::{self, AuditEntry},
        conflicts::{self, Conflict, ConflictFilter},
        shadow::{self, ShadowField, Side as StoredSide},
    },
    tagged_transaction,
    tokio_postgres::types::ToSql,
    values::to_sql_text,
};

use super::{TwoWayError, TwoWayObject, inbound::audit_direction};
use crate::model::{FieldValue, Side};

/// What [`apply_resolutions`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveReport {
    /// Resolutions carried to PostgreSQL (HubSpot's value taken).
    pub to_postgres: u64,
    /// Resolutions carried to HubSpot (PostgreSQL's value taken).
    pub to_hubspot: u64,
    /// Resolutions HubSpot rejected (left unapplied; see the log).
    pub rejected: u64,
}

/// Most resolutions applied per call.
const MAX_RESOLUTIONS: i64 = 1_000;

/// Applies every resolved-but-unapplied conflict of `object`.
///
/// # Errors
/// Database errors; HubSpot failures of a whole call.
pub async fn apply_resolutions(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
) -> Result<ResolveReport, TwoWayError> {
    let mut client = store.client().await?;
    let todo = conflicts::list(
        &client,
        ConflictFilter::ToApply,
        Some(object.name()),
        MAX_RESOLUTIONS,
    )
    .await?;
    let mut report = ResolveReport::default();
    let (take_hs, take_pg): (Vec<Conflict>, Vec<Conflict>) = todo
        .into_iter()
        .partition(|c| c.resolution == Some(StoredSide::Hubspot));

    if !take_hs.is_empty() {
        let tx = tagged_transaction(&mut client).await?;
        for c in &take_hs {
            let d = &c.detail;
            let fields = BTreeMap::from([(d.field.clone(), d.hubspot_value.clone())]);
            write_fields_to_postgres(&tx, &object.mapping, d.hs_object_id, &fields).await?;
            finish(&tx, c, Side::HubSpot, d.hubspot_version).await?;
            report.to_postgres += 1;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit resolutions", e))?;
    }

    let mut by_record: BTreeMap<i64, Vec<&Conflict>> = BTreeMap::new();
    for c in &take_pg {
        by_record.entry(c.detail.hs_object_id).or_default().push(c);
    }
    let inputs: Vec<UpdateInput> = by_record
        .iter()
        .map(|(id, cs)| UpdateInput {
            id: id.to_string(),
            id_property: None,
            properties: cs
                .iter()
                .map(|c| {
                    (
                        c.detail.field.clone(),
                        c.detail.postgres_value.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            object_write_trace_id: None,
        })
        .collect();
    if inputs.is_empty() {
        return Ok(report);
    }
    let outcome = hubspot.batch_update(object.name(), &inputs).await?;
    let failed: Vec<usize> = outcome
        .errors
        .iter()
        .flat_map(|e| e.indices.clone())
        .collect();
    let updated: HashMap<u64, _> = outcome
        .results
        .iter()
        .map(|r| (r.id, r.updated_at))
        .collect();
    let tx = tagged_transaction(&mut client).await?;
    for (i, (id, cs)) in by_record.iter().enumerate() {
        if failed.contains(&i) {
            report.rejected += cs.len() as u64;
            tracing::warn!(
                object = object.name(),
                hs_object_id = id,
                "HubSpot rejected a resolution"
            );
            continue;
        }
        let at = u64::try_from(*id)
            .ok()
            .and_then(|k| updated.get(&k))
            .copied();
        for c in cs {
            finish(&tx, c, Side::Postgres, at).await?;
            report.to_hubspot += 1;
        }
    }
    tx.commit()
        .await
        .map_err(|e| StoreError::postgres("commit resolutions", e))?;
    Ok(report)
}

/// Sets the shadow to the winning value, stamps the conflict applied and audits it.
async fn finish(
    tx: &impl GenericClient,
    c: &Conflict,
    winner: Side,
    hubspot_version: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), StoreError> {
    let d = &c.detail;
    let (value, lost) = match winner {
        Side::HubSpot => (&d.hubspot_value, &d.postgres_value),
        Side::Postgres => (&d.postgres_value, &d.hubspot_value),
    };
    let field = ShadowField {
        object: d.object.clone(),
        hs_object_id: d.hs_object_id,
        field: d.field.clone(),
        value: value.clone(),
        hubspot_version: hubspot_version.or(d.hubspot_version),
        postgres_version: d.postgres_version,
        agreed_from: match winner {
            Side::HubSpot => StoredSide::Hubspot,
            Side::Postgres => StoredSide::Postgres,
        },
        agreed_at: None,
    };
    shadow::put_many(tx, &[field]).await?;
    conflicts::mark_applied(tx, c.id).await?;
    let entry = AuditEntry {
        hs_object_id: Some(d.hs_object_id),
        ..AuditEntry::new(audit_direction(winner), &d.object, "conflict_resolved")
    }
    .change(&d.field, lost.as_deref(), value.as_deref());
    audit::insert(tx, &[entry]).await?;
    Ok(())
}

/// Writes HubSpot-form values into the promoted columns of the row with `hs_object_id`
/// (properties without a column are skipped). Run it in a tagged transaction so the write
/// is not captured. Returns whether a row was updated.
///
/// # Errors
/// Database errors (a value PostgreSQL cannot cast fails the statement).
pub async fn write_fields_to_postgres(
    client: &impl GenericClient,
    mapping: &TableMapping,
    hs_object_id: i64,
    fields: &BTreeMap<String, FieldValue>,
) -> Result<bool, StoreError> {
    let mut sets = Vec::new();
    let mut values: Vec<Option<String>> = Vec::new();
    for (property, value) in fields {
        let Some(column) = mapping.column_for(property) else {
            continue;
        };
        values.push(
            value
                .as_deref()
                .and_then(|v| to_sql_text(column.column_type, v).value),
        );
        sets.push(format!(
            "{} = CAST(${}::text AS {})",
            quote_ident(&column.column),
            values.len(),
            column.column_type.sql()
        ));
    }
    if sets.is_empty() {
        return Ok(false);
    }
    let sql = format!(
        "UPDATE {} SET {} WHERE hs_object_id = ${}",
        mapping.qualified_table(),
        sets.join(", "),
        values.len() + 1
    );
    let mut params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    params.push(&hs_object_id);
    let n = client
        .execute(&sql, &params)
        .await
        .map_err(|e| StoreError::postgres("write resolved values", e))?;
    Ok(n > 0)
}
