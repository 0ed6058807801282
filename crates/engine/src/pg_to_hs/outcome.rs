//! Recording what HubSpot answered: per batch, in one tagged PostgreSQL transaction, the
//! ids HubSpot assigned (written into the rows), the shadow, `hubsync.record_state`
//! (synced, or failed with HubSpot's message), the outbox acknowledgement and the audit
//! (with HubSpot's correlation id of the call that made each write); and the
//! primary-association writes that follow a round.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use hubsync_hubspot::{AssociationCreate, AssociationSpec, ItemError, SimpleObject};
use hubsync_store::{
    GenericClient, StoreError,
    associations::primary_type_id,
    rows::{IdAssignment, assign_hs_object_id},
    state::{
        audit::{self, AuditEntry, Direction as AuditDirection},
        outbox::{self, RecordChange},
        records::{self, SyncStatus},
        shadow::{self, ShadowField as StoredField, Side as StoredSide},
    },
    tombstones::{DeleteMode, archive_records},
};
use uuid::Uuid;

use super::DrainReport;
use super::bisect::{ItemResults, item_message};
use super::plan::{Action, Planned, PrimaryChange};
use super::send::Round;
use crate::model::{Side, Version};
use crate::two_way::{
    TwoWayError,
    shadow_io::{self, ms},
};

impl Round<'_> {
    pub(super) async fn record_creates(
        &self,
        tx: &impl GenericClient,
        v: &[(&RecordChange, BTreeMap<String, String>)],
        results: ItemResults,
    ) -> Result<DrainReport, TwoWayError> {
        let mut report = DrainReport::default();
        let mut shadows = Vec::new();
        let mut audits = Vec::new();
        for ((change, properties), answer) in v.iter().zip(results) {
            let record = match answer.result {
                Ok(r) => r,
                Err(e) => {
                    self.fail_record(tx, change, &item_message(&e)).await?;
                    report.failed += 1;
                    continue;
                }
            };
            let hs_id = i64::try_from(record.id).unwrap_or_default();
            if !self.link(tx, change, hs_id).await? {
                continue;
            }
            let mut entry = AuditEntry {
                hs_object_id: Some(hs_id),
                row_key: Some(change.row_key.clone()),
                correlation_id: answer.correlation_id,
                ..AuditEntry::new(
                    AuditDirection::PostgresToHubspot,
                    self.object.name(),
                    "create",
                )
            };
            for (field, value) in properties {
                entry = entry.change(field, None, Some(value));
            }
            shadows.extend(self.created_shadow(&record, properties, hs_id, change.version));
            audits.push(entry);
            self.succeed(tx, change, hs_id).await?;
            report.entries += change.entry_ids.len() as u64;
            report.created += 1;
        }
        shadow::put_many(tx, &shadows).await?;
        audit::insert(tx, &audits).await?;
        Ok(report)
    }

    pub(super) async fn record_updates(
        &self,
        tx: &impl GenericClient,
        v: &[(&RecordChange, i64, Action)],
        results: ItemResults,
    ) -> Result<DrainReport, TwoWayError> {
        let mut report = DrainReport::default();
        let mut stored = Vec::new();
        let mut audits = Vec::new();
        for ((change, hs_id, action), answer) in v.iter().zip(results) {
            let correlation_id = answer.correlation_id;
            let record = match answer.result {
                Ok(r) => r,
                Err(e) if is_not_found(&e) => {
                    report.entries += self
                        .lose_to_delete(tx, change, *hs_id, action, correlation_id)
                        .await?;
                    report.unchanged += 1;
                    continue;
                }
                Err(e) => {
                    self.fail_record(tx, change, &item_message(&e)).await?;
                    report.failed += 1;
                    continue;
                }
            };
            let Action::Update {
                properties,
                shadows,
                ..
            } = action
            else {
                continue;
            };
            let mut entry = AuditEntry {
                hs_object_id: Some(*hs_id),
                row_key: Some(change.row_key.clone()),
                correlation_id,
                ..AuditEntry::new(
                    AuditDirection::PostgresToHubspot,
                    self.object.name(),
                    "update",
                )
            };
            for (field, s) in shadows {
                let mut s = s.clone();
                s.acknowledge(Side::HubSpot, Version::hubspot(ms(record.updated_at)));
                stored.push(shadow_io::to_store(self.object.name(), *hs_id, field, &s));
            }
            for (field, value) in properties {
                entry = entry.change(field, None, Some(value));
            }
            audits.push(entry);
            self.succeed(tx, change, *hs_id).await?;
            report.entries += change.entry_ids.len() as u64;
            report.updated += 1;
        }
        shadow::put_many(tx, &stored).await?;
        audit::insert(tx, &audits).await?;
        Ok(report)
    }

    /// Records archives HubSpot accepted; `correlation_id` is HubSpot's id of the archive
    /// call.
    pub(super) async fn record_archives(
        &self,
        tx: &impl GenericClient,
        changes: &[(&RecordChange, Option<i64>)],
        correlation_id: Option<&str>,
    ) -> Result<DrainReport, TwoWayError> {
        let mut report = DrainReport::default();
        let ids: Vec<i64> = changes.iter().filter_map(|(_, id)| *id).collect();
        shadow::delete_records(tx, self.object.name(), &ids).await?;
        let mut audits = Vec::new();
        for (change, id) in changes {
            audits.push(AuditEntry {
                hs_object_id: *id,
                row_key: Some(change.row_key.clone()),
                correlation_id: correlation_id.map(str::to_owned),
                ..AuditEntry::new(
                    AuditDirection::PostgresToHubspot,
                    self.object.name(),
                    "archive",
                )
            });
            records::set(
                tx,
                self.object.name(),
                &change.row_key,
                *id,
                SyncStatus::Synced,
                None,
            )
            .await?;
            report.entries += outbox::ack(tx, &self.options.consumer, &change.entry_ids).await?;
            report.archived += 1;
        }
        audit::insert(tx, &audits).await?;
        Ok(report)
    }

    /// An update of a record HubSpot no longer has (archived or deleted there before the
    /// pull saw it): the delete wins (docs/conflicts.md, delete rule). The row is archived,
    /// the update's values are kept in the audit log, the entries are acknowledged and the
    /// record is synced. Returns the entries acknowledged. `correlation_id` is HubSpot's id
    /// of the call that answered "not found".
    async fn lose_to_delete(
        &self,
        tx: &impl GenericClient,
        change: &RecordChange,
        hs_id: i64,
        action: &Action,
        correlation_id: Option<String>,
    ) -> Result<u64, StoreError> {
        archive_records(
            tx,
            &self.object.mapping,
            &[hs_id],
            Utc::now(),
            DeleteMode::Soft,
        )
        .await?;
        let mut entry = AuditEntry {
            hs_object_id: Some(hs_id),
            row_key: Some(change.row_key.clone()),
            correlation_id,
            ..AuditEntry::new(
                AuditDirection::HubspotToPostgres,
                self.object.name(),
                "update_lost_to_delete",
            )
        };
        if let Action::Update { properties, .. } = action {
            for (field, value) in properties {
                entry = entry.change(field, Some(value), None);
            }
        }
        audit::insert(tx, &[entry]).await?;
        records::set(
            tx,
            self.object.name(),
            &change.row_key,
            Some(hs_id),
            SyncStatus::Synced,
            None,
        )
        .await?;
        outbox::ack(tx, &self.options.consumer, &change.entry_ids).await
    }

    /// Records HubSpot's id in the row. Returns false if the row is gone (its pending
    /// DELETE then archives the record).
    pub(super) async fn link(
        &self,
        tx: &impl GenericClient,
        change: &RecordChange,
        hs_id: i64,
    ) -> Result<bool, TwoWayError> {
        let Ok(key) = Uuid::parse_str(&change.row_key) else {
            return Ok(false);
        };
        let mapping = &self.object.mapping;
        match assign_hs_object_id(tx, mapping, key, hs_id).await? {
            IdAssignment::Assigned | IdAssignment::AlreadySet => Ok(true),
            IdAssignment::TakenBy(other) => {
                // The inbound sync stored the record as a new row before its id was
                // recorded here (lesson 14): that row is a copy of this one; drop it.
                let sql = format!(
                    "DELETE FROM {} WHERE hubsync_row_id = $1",
                    mapping.qualified_table()
                );
                tx.execute(&sql, &[&other])
                    .await
                    .map_err(|e| StoreError::postgres("drop a duplicate row", e))?;
                Ok(matches!(
                    assign_hs_object_id(tx, mapping, key, hs_id).await?,
                    IdAssignment::Assigned
                ))
            }
            IdAssignment::AlreadyHas(existing) => {
                let reason = format!(
                    "the row is linked to HubSpot record {existing}, but HubSpot created {hs_id} for it"
                );
                self.fail_record(tx, change, &reason).await?;
                Ok(false)
            }
            IdAssignment::RowMissing => {
                outbox::ack(tx, &self.options.consumer, &change.entry_ids).await?;
                Ok(false)
            }
        }
    }

    pub(super) async fn succeed(
        &self,
        tx: &impl GenericClient,
        change: &RecordChange,
        hs_id: i64,
    ) -> Result<(), StoreError> {
        records::set(
            tx,
            self.object.name(),
            &change.row_key,
            Some(hs_id),
            SyncStatus::Synced,
            None,
        )
        .await?;
        outbox::ack(tx, &self.options.consumer, &change.entry_ids).await?;
        Ok(())
    }

    /// Marks a record failed: entries kept (retried with the row's next change), message
    /// visible in `hubsync.record_state`.
    pub(super) async fn fail_record(
        &self,
        tx: &impl GenericClient,
        change: &RecordChange,
        reason: &str,
    ) -> Result<(), StoreError> {
        outbox::fail(tx, &self.options.consumer, &change.entry_ids, reason, None).await?;
        let id = change.hs_object_id;
        records::set(
            tx,
            self.object.name(),
            &change.row_key,
            id,
            SyncStatus::Failed,
            Some(reason),
        )
        .await
    }

    /// The shadow after a create: every written field, with the value HubSpot now has —
    /// the value sent, or empty for a field the create left empty — so a later
    /// PostgreSQL edit of a field that was empty at create is a PostgreSQL change, not a
    /// conflict with HubSpot's empty value. A field HubSpot answered with a value hubsync
    /// did not send (an upsert that found the record already there) gets no shadow: it is
    /// then pulled as HubSpot's change.
    fn created_shadow(
        &self,
        record: &SimpleObject,
        sent: &BTreeMap<String, String>,
        hs_id: i64,
        outbox_id: i64,
    ) -> Vec<StoredField> {
        let hs_version = Some(record.updated_at);
        self.object
            .written_columns()
            .filter_map(|c| {
                let field = c.property.as_str();
                let value = match sent.get(field) {
                    Some(v) => Some(v.clone()),
                    None if record.property(field).is_some_and(|v| !v.is_empty()) => {
                        return None;
                    }
                    None => None,
                };
                Some(self.stored_field(hs_id, field, value, hs_version, outbox_id))
            })
            .collect()
    }

    pub(super) fn stored_field(
        &self,
        hs_id: i64,
        field: &str,
        value: Option<String>,
        hubspot_version: Option<chrono::DateTime<Utc>>,
        outbox_id: i64,
    ) -> StoredField {
        StoredField {
            object: self.object.name().to_owned(),
            hs_object_id: hs_id,
            field: field.to_owned(),
            value,
            hubspot_version,
            postgres_version: Some(outbox_id),
            agreed_from: StoredSide::Postgres,
            agreed_at: None,
        }
    }

    /// Writes changed primary associations (the new one as primary; the old primary label
    /// removed). Returns how many were written.
    pub(super) async fn write_primary(
        &self,
        planned: &[(&RecordChange, Planned<'_>)],
    ) -> Result<u64, TwoWayError> {
        let changes: Vec<(&RecordChange, &PrimaryChange<'_>)> = planned
            .iter()
            .flat_map(|(c, p)| p.primary.iter().map(move |pc| (*c, pc)))
            .collect();
        if changes.is_empty() {
            return Ok(0);
        }
        let client = self.store.client().await?;
        let keys: Vec<Uuid> = changes
            .iter()
            .filter_map(|(c, _)| Uuid::parse_str(&c.row_key).ok())
            .collect();
        let sql = format!(
            "SELECT hubsync_row_id::text, hs_object_id FROM {} WHERE hubsync_row_id = ANY($1) AND hs_object_id IS NOT NULL",
            self.object.mapping.qualified_table()
        );
        let ids: HashMap<String, i64> = client
            .query(&sql, &[&keys])
            .await
            .map_err(|e| StoreError::postgres("read ids for associations", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut written = 0;
        for (change, pc) in changes {
            let Some(from) = ids
                .get(&change.row_key)
                .and_then(|i| u64::try_from(*i).ok())
            else {
                continue;
            };
            let Some(type_id) =
                primary_type_id(self.object.name(), pc.target).and_then(|t| u32::try_from(t).ok())
            else {
                continue;
            };
            let spec = AssociationSpec::hubspot_defined(type_id);
            if let Some(old) = pc.old.and_then(|o| u64::try_from(o).ok()) {
                let input = AssociationCreate {
                    from,
                    to: old,
                    types: vec![spec.clone()],
                };
                self.hubspot
                    .archive_association_labels(self.object.name(), pc.target, &[input])
                    .await?;
            }
            if let Some(new) = pc.new.and_then(|n| u64::try_from(n).ok()) {
                let input = AssociationCreate {
                    from,
                    to: new,
                    types: vec![spec],
                };
                let out = self
                    .hubspot
                    .create_associations(self.object.name(), pc.target, &[input])
                    .await?;
                if let Some(e) = out.errors.first() {
                    records::set(
                        &client,
                        self.object.name(),
                        &change.row_key,
                        None,
                        SyncStatus::Failed,
                        Some(&item_message(e)),
                    )
                    .await?;
                    continue;
                }
            }
            written += 1;
        }
        Ok(written)
    }
}

/// Whether HubSpot rejected a record because it does not have it (archived or deleted).
fn is_not_found(e: &ItemError) -> bool {
    e.status == 404 || e.category.as_deref() == Some("OBJECT_NOT_FOUND")
}
