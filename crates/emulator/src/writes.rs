//! Every change to records: create, update, archive, restore, merge and GDPR delete, with
//! validation (values, external options, required and unique properties) and the domain
//! events each change publishes.

// Mutations return `Result<_, ApiError>`: the error is the HTTP answer.
#![allow(clippy::result_large_err)]

use serde_json::{Map, Value};

use crate::associations::AssociationChange;
use crate::error::ApiError;
use crate::events::{ChangeSource, CrmEvent, EventKind};
use crate::properties::{Derived, PropId};
use crate::property_values::{InvalidValue, datetime_millis, invalid_values_error, validate_input};
use crate::records::{Record, Values, now_millis};
use crate::state::{Crm, ObjectTable, ObjectTypeId};

/// Who is writing, and the `sourceId` events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    /// Change source.
    pub source: ChangeSource,
}

impl Writer {
    /// An app using the public API.
    pub const INTEGRATION: Self = Self {
        source: ChangeSource::Integration,
    };
    /// A HubSpot user in the UI (control API).
    pub const USER: Self = Self {
        source: ChangeSource::CrmUi,
    };

    fn source_id(self) -> Option<String> {
        match self.source {
            ChangeSource::CrmUi => Some("userId:1".into()),
            ChangeSource::Integration => Some("1234567".into()),
            ChangeSource::Import => None,
        }
    }

    /// An event of this writer.
    pub fn event(self, ty: ObjectTypeId, id: u64, at: i64, kind: EventKind) -> CrmEvent {
        CrmEvent {
            kind,
            object_type_id: ty,
            object_id: id,
            occurred_at: at,
            change_source: self.source,
            source_id: self.source_id(),
        }
    }

    /// Events for association changes made as a side effect (merge, delete).
    pub fn association_events(self, changes: Vec<AssociationChange>, at: i64) -> Vec<CrmEvent> {
        changes
            .into_iter()
            .map(|c| {
                self.event(
                    c.from_type,
                    c.from_id,
                    at,
                    EventKind::AssociationChange {
                        to_object_type_id: c.to_type,
                        to_object_id: c.to_id,
                        association_type_id: c.kind.type_id,
                        association_category: c.kind.category.as_str().to_owned(),
                        association_type: c.type_name,
                        association_removed: c.removed,
                        is_primary_association: c.primary,
                    },
                )
            })
            .collect()
    }
}

/// A record after a write, and the events the write produced.
pub type Written = (Record, Vec<CrmEvent>);

fn table_of(crm: &Crm, ty: ObjectTypeId) -> Result<&ObjectTable, ApiError> {
    crm.table(ty)
        .ok_or_else(|| ApiError::unknown_object_type(&ty.to_string()))
}

impl Crm {
    /// Validates a `properties` object for a write to `existing` (or a create).
    fn prepare(
        &self,
        ty: ObjectTypeId,
        input: &Map<String, Value>,
        existing: Option<&Record>,
    ) -> Result<Vec<(PropId, String)>, ApiError> {
        let table = table_of(self, ty)?;
        let changes = validate_input(&table.props, input, false)
            .map_err(|invalid| invalid_values_error(&invalid))?;
        let invalid = self.check_external(table, &changes, existing);
        if !invalid.is_empty() {
            return Err(invalid_values_error(&invalid));
        }
        if ty == ObjectTypeId::CONTACT
            && let Some(email) = table.props.id("email")
            && let Some((_, v)) = changes.iter().find(|(p, v)| *p == email && !v.is_empty())
            && self.gdpr_blocklist.contains(&v.to_lowercase())
        {
            return Err(ApiError::validation(format!(
                "Cannot create or update a contact with email {v}: it was permanently deleted under GDPR"
            )));
        }
        self.check_unique(table, &changes, existing.map(|r| r.id))?;
        Ok(changes)
    }

    /// Enumerations whose options live in pipelines and owners.
    fn check_external(
        &self,
        table: &ObjectTable,
        changes: &[(PropId, String)],
        existing: Option<&Record>,
    ) -> Vec<InvalidValue> {
        let mut invalid = Vec::new();
        let value_of = |name: &str| -> Option<String> {
            let id = table.props.id(name)?;
            match changes.iter().find(|(p, _)| *p == id) {
                Some((_, v)) => Some(v.clone()).filter(|v| !v.is_empty()),
                None => existing.and_then(|r| r.values.get(id)).map(str::to_owned),
            }
        };
        let touched = |name: &str| {
            table
                .props
                .id(name)
                .is_some_and(|id| changes.iter().any(|(p, _)| *p == id))
        };
        for (prop, value) in changes {
            let Some(def) = table.props.def(*prop) else {
                continue;
            };
            if def.referenced_object_type.as_deref() == Some("OWNER") && !value.is_empty() {
                let ok = value.parse::<u64>().is_ok_and(|id| self.owners.exists(id));
                if !ok {
                    invalid.push(InvalidValue {
                        name: def.name.clone(),
                        code: "INVALID_OPTION",
                        message: format!("{value} was not one of the allowed options: it is not the id of an owner"),
                    });
                }
            }
        }
        if let Some(value) = primary_change(table, changes).filter(|v| !v.is_empty()) {
            let ok = value
                .parse::<u64>()
                .is_ok_and(|c| self.exists(ObjectTypeId::COMPANY, c));
            if !ok {
                invalid.push(InvalidValue {
                    name: "associatedcompanyid".to_owned(),
                    code: "INVALID_OPTION",
                    message: format!("{value} is not the id of a company"),
                });
            }
        }
        let stage_props = match table.kind.id {
            ObjectTypeId::DEAL => Some(("pipeline", "dealstage", "default")),
            ObjectTypeId::TICKET => Some(("hs_pipeline", "hs_pipeline_stage", "0")),
            _ => None,
        };
        if let Some((pipeline_prop, stage_prop, default)) = stage_props
            && (touched(pipeline_prop) || touched(stage_prop))
            && let Some(stage) = value_of(stage_prop)
        {
            let pipeline = value_of(pipeline_prop).unwrap_or_else(|| default.to_owned());
            if !self
                .pipelines
                .is_valid_stage(table.kind.id, &pipeline, &stage)
            {
                invalid.push(InvalidValue {
                    name: stage_prop.to_owned(),
                    code: "INVALID_OPTION",
                    message: format!(
                        "{stage} was not one of the allowed options: it is not a stage of pipeline {pipeline}"
                    ),
                });
            }
        }
        invalid
    }

    fn check_unique(
        &self,
        table: &ObjectTable,
        changes: &[(PropId, String)],
        own_id: Option<u64>,
    ) -> Result<(), ApiError> {
        for (prop, value) in changes {
            if value.is_empty() || !table.store.is_unique(*prop) {
                continue;
            }
            if let Some(existing) = table.store.find_unique(*prop, value)
                && Some(existing) != own_id
            {
                return Err(unique_conflict(table, *prop, value, existing));
            }
        }
        Ok(())
    }

    /// Creates a record from a `properties` object.
    pub fn create_record(
        &mut self,
        ty: ObjectTypeId,
        input: &Map<String, Value>,
        writer: Writer,
    ) -> Result<Written, ApiError> {
        let changes = self.prepare(ty, input, None)?;
        let id = self.next_record_id();
        let table = table_of(self, ty)?;
        if let Some(schema) = &table.schema {
            let missing: Vec<&String> = schema
                .required_properties
                .iter()
                .filter(|name| {
                    let id = table.props.id(name);
                    !changes.iter().any(|(p, v)| Some(*p) == id && !v.is_empty())
                })
                .collect();
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|s| (*s).clone()).collect();
                return Err(ApiError::validation(format!(
                    "Required properties are missing: {}",
                    names.join(", ")
                ))
                .with_context("properties", names));
            }
        }
        let now = now_millis();
        let (created, values) = split_created(table, &changes);
        let primary = primary_change(table, &changes);
        let record = Record {
            id,
            created: created.unwrap_or(now),
            modified: now,
            archived_at: None,
            values: Values::from_pairs(values.iter().map(|(p, v)| (*p, v.as_str()))),
            history: None,
            source: writer.source,
        };
        let mut events = vec![writer.event(ty, id, now, EventKind::Creation)];
        events.extend(property_events(table, ty, id, now, writer, &changes));
        let table = self
            .table_mut(ty)
            .ok_or_else(|| ApiError::unknown_object_type(""))?;
        table.store.put(record.clone());
        events.extend(self.apply_primary(ty, id, primary.as_deref(), writer, now));
        Ok((record, events))
    }

    /// Applies a partial update to a live record.
    pub fn update_record(
        &mut self,
        ty: ObjectTypeId,
        id: u64,
        input: &Map<String, Value>,
        writer: Writer,
    ) -> Result<Written, ApiError> {
        let table = table_of(self, ty)?;
        let existing = table
            .store
            .live(id)
            .ok_or_else(|| ApiError::record_not_found(&id.to_string()))?
            .clone();
        let changes = self.prepare(ty, input, Some(&existing))?;
        let table = table_of(self, ty)?;
        let (created, values) = split_created(table, &changes);
        let real: Vec<(PropId, String)> = values
            .into_iter()
            .filter(|(p, v)| existing.values.get(*p).unwrap_or("") != v)
            .collect();
        let created_changed = created.is_some_and(|c| c != existing.created);
        let primary = primary_change(table, &changes);
        if real.is_empty() && !created_changed {
            let events = self.apply_primary(ty, id, primary.as_deref(), writer, now_millis());
            return Ok((existing, events));
        }
        let now = now_millis().max(existing.modified);
        let mut record = existing;
        record.remember(&real, now, writer.source);
        record.values = record.values.with_changes(&real);
        record.modified = now;
        if let Some(c) = created {
            record.created = c;
        }
        let mut all = real.clone();
        if created_changed && let Some(p) = table.props.id("createdate") {
            all.push((p, crate::records::iso_millis(record.created)));
        }
        let events = property_events(table, ty, id, now, writer, &all);
        let table = self
            .table_mut(ty)
            .ok_or_else(|| ApiError::unknown_object_type(""))?;
        table.store.put(record.clone());
        let mut events = events;
        events.extend(self.apply_primary(ty, id, primary.as_deref(), writer, now));
        Ok((record, events))
    }

    /// Sets (or with `""` clears) the primary company written through `associatedcompanyid`.
    fn apply_primary(
        &mut self,
        ty: ObjectTypeId,
        id: u64,
        value: Option<&str>,
        writer: Writer,
        at: i64,
    ) -> Vec<CrmEvent> {
        let company = ObjectTypeId::COMPANY;
        let Some(value) = value else {
            return Vec::new();
        };
        let Some(primary) = self.associations.definitions().primary_kind(ty, company) else {
            return Vec::new();
        };
        let changes = if value.is_empty() {
            match self.associations.primary_company(ty, id) {
                Some(old) => self
                    .associations
                    .remove_kinds((ty, id), (company, old), &[primary]),
                None => Vec::new(),
            }
        } else {
            let Ok(cid) = value.parse::<u64>() else {
                return Vec::new();
            };
            self.associations
                .associate((ty, id), (company, cid), &[primary])
                .unwrap_or_default()
        };
        writer.association_events(changes, at)
    }

    /// Archives a live record; unknown or already archived ids are a no-op (HubSpot answers
    /// 204 either way).
    pub fn archive_record(&mut self, ty: ObjectTypeId, id: u64, writer: Writer) -> Vec<CrmEvent> {
        let Some(table) = self.table_mut(ty) else {
            return Vec::new();
        };
        let Some(mut record) = table.store.live(id).cloned() else {
            return Vec::new();
        };
        let now = now_millis();
        record.archived_at = Some(now);
        table.store.put(record);
        vec![writer.event(ty, id, now, EventKind::Deletion)]
    }

    /// Restores an archived record (409 when its unique values were taken meanwhile).
    pub fn restore_record(
        &mut self,
        ty: ObjectTypeId,
        id: u64,
        writer: Writer,
    ) -> Result<Written, ApiError> {
        let table = table_of(self, ty)?;
        let record = table
            .store
            .get(id)
            .filter(|r| r.archived_at.is_some())
            .ok_or_else(|| ApiError::record_not_found(&id.to_string()))?
            .clone();
        let values: Vec<(PropId, String)> = record
            .values
            .iter()
            .map(|(p, v)| (p, v.to_owned()))
            .collect();
        self.check_unique(table, &values, Some(id))?;
        let now = now_millis();
        let mut restored = record;
        restored.archived_at = None;
        restored.modified = now;
        let table = self
            .table_mut(ty)
            .ok_or_else(|| ApiError::unknown_object_type(""))?;
        table.store.put(restored.clone());
        Ok((
            restored,
            vec![writer.event(ty, id, now, EventKind::Restore)],
        ))
    }

    /// Merges `loser_id` into `primary_id`: the primary's values win, the loser's fill gaps;
    /// the loser disappears (its id then resolves to the survivor) and its associations move.
    pub fn merge_records(
        &mut self,
        ty: ObjectTypeId,
        primary_id: u64,
        loser_id: u64,
        writer: Writer,
    ) -> Result<Written, ApiError> {
        if primary_id == loser_id {
            return Err(ApiError::validation("Cannot merge an object with itself"));
        }
        let table = table_of(self, ty)?;
        let primary = table
            .store
            .live(primary_id)
            .ok_or_else(|| ApiError::record_not_found(&primary_id.to_string()))?
            .clone();
        let loser = table
            .store
            .live(loser_id)
            .ok_or_else(|| ApiError::record_not_found(&loser_id.to_string()))?
            .clone();
        let merged_prop = table.props.id("hs_merged_object_ids");
        let mut moved: Vec<(PropId, String)> = loser
            .values
            .iter()
            .filter(|(p, _)| primary.values.get(*p).is_none() && Some(*p) != merged_prop)
            .filter(|(p, _)| !table.store.is_unique(*p))
            .map(|(p, v)| (p, v.to_owned()))
            .collect();
        let moved_count = u32::try_from(moved.len()).unwrap_or(u32::MAX);
        let mut merged_ids: Vec<String> = Vec::new();
        for r in [&primary, &loser] {
            if let Some(list) = merged_prop.and_then(|p| r.values.get(p)) {
                merged_ids.extend(list.split(';').filter(|s| !s.is_empty()).map(str::to_owned));
            }
        }
        merged_ids.push(loser_id.to_string());
        if let Some(p) = merged_prop {
            moved.push((p, merged_ids.join(";")));
        }
        if ty == ObjectTypeId::CONTACT {
            if let Some(p) = table.props.id("hs_calculated_merged_vids") {
                moved.push((p, merged_ids.join(";")));
            }
            if let (Some(email), Some(extra)) = (
                table.props.id("email"),
                table.props.id("hs_additional_emails"),
            ) {
                let mut emails: Vec<String> = primary
                    .values
                    .get(extra)
                    .map(|s| s.split(';').map(str::to_owned).collect())
                    .unwrap_or_default();
                if let Some(e) = loser.values.get(email) {
                    emails.push(e.to_owned());
                }
                if !emails.is_empty() {
                    moved.push((extra, emails.join(";")));
                }
            }
        }
        let now = now_millis().max(primary.modified);
        let mut survivor = primary;
        survivor.remember(&moved, now, writer.source);
        survivor.values = survivor.values.with_changes(&moved);
        survivor.modified = now;
        let table = self
            .table_mut(ty)
            .ok_or_else(|| ApiError::unknown_object_type(""))?;
        table.store.remove(loser_id);
        table.store.put(survivor.clone());
        table.aliases.insert(loser_id, primary_id);
        let assoc = self.associations.repoint(ty, loser_id, primary_id);
        let mut events = vec![writer.event(
            ty,
            primary_id,
            now,
            EventKind::Merge {
                primary_object_id: primary_id,
                merged_object_ids: vec![loser_id],
                new_object_id: primary_id,
                number_of_properties_moved: moved_count,
            },
        )];
        events.push(writer.event(ty, loser_id, now, EventKind::Deletion));
        events.extend(writer.association_events(assoc, now));
        Ok((survivor, events))
    }

    /// Permanently deletes a contact (GDPR): the record, its associations and history go; the
    /// email is blocked from reuse. An unknown email is still blocked.
    pub fn gdpr_delete(
        &mut self,
        id: Option<u64>,
        email: Option<&str>,
        writer: Writer,
    ) -> Vec<CrmEvent> {
        let ty = ObjectTypeId::CONTACT;
        if let Some(e) = email {
            self.gdpr_blocklist.insert(e.trim().to_lowercase());
        }
        let Some(table) = self.table_mut(ty) else {
            return Vec::new();
        };
        let found = id.or_else(|| {
            let prop = table.props.id("email")?;
            table.store.find_unique(prop, email?)
        });
        let Some(id) = found else { return Vec::new() };
        let Some(record) = table.store.remove(id) else {
            return Vec::new();
        };
        let email_prop = table.props.id("email");
        if let Some(e) = email_prop.and_then(|p| record.values.get(p)) {
            self.gdpr_blocklist.insert(e.to_lowercase());
        }
        let now = now_millis();
        let assoc = self.associations.remove_object(ty, id);
        let mut events = vec![
            writer.event(ty, id, now, EventKind::PrivacyDeletion),
            writer.event(ty, id, now, EventKind::Deletion),
        ];
        events.extend(writer.association_events(assoc, now));
        events
    }
}

/// The value written to the primary-company property (`associatedcompanyid`), if any.
fn primary_change(table: &ObjectTable, changes: &[(PropId, String)]) -> Option<String> {
    changes.iter().find_map(|(p, v)| {
        let derived = table.props.def(*p).and_then(|d| d.derived);
        (derived == Some(Derived::PrimaryCompany)).then(|| v.clone())
    })
}

/// Splits a write into the creation time (writable `createdate`) and stored values.
fn split_created(
    table: &ObjectTable,
    changes: &[(PropId, String)],
) -> (Option<i64>, Vec<(PropId, String)>) {
    let mut created = None;
    let mut values = Vec::with_capacity(changes.len());
    for (p, v) in changes {
        match table.props.def(*p).and_then(|d| d.derived) {
            Some(Derived::Created) => created = datetime_millis(v),
            Some(_) => {}
            None => values.push((*p, v.clone())),
        }
    }
    (created, values)
}

fn property_events(
    table: &ObjectTable,
    ty: ObjectTypeId,
    id: u64,
    at: i64,
    writer: Writer,
    changes: &[(PropId, String)],
) -> Vec<CrmEvent> {
    changes
        .iter()
        .filter_map(|(p, v)| {
            let def = table.props.def(*p)?;
            Some(writer.event(
                ty,
                id,
                at,
                EventKind::PropertyChange {
                    property_name: def.name.clone(),
                    property_value: v.clone(),
                },
            ))
        })
        .collect()
}

/// The 409 for a unique value already held by another record (§2.1: contacts' wording).
pub fn unique_conflict(table: &ObjectTable, prop: PropId, value: &str, existing: u64) -> ApiError {
    let name = table.props.def(prop).map(|d| d.name.as_str()).unwrap_or("");
    let message = if table.kind.id == ObjectTypeId::CONTACT && name == "email" {
        format!("Contact already exists. Existing ID: {existing}")
    } else {
        format!(
            "A {} with the unique value \"{value}\" for property \"{name}\" already exists. Existing ID: {existing}",
            table.kind.singular
        )
    };
    ApiError::conflict(message).with_context("existingId", [existing.to_string()])
}
