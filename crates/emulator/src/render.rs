//! Record JSON (hubspot-api.md §5): which properties a read returns (requested, defaults and
//! the always-present ones; unknown names silently dropped, empty ones `null`), values of
//! derived properties, `propertiesWithHistory`, and the v3 `associations` expansion.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::properties::{Derived, PropId};
use crate::records::{Record, iso_millis};
use crate::state::{Crm, ObjectTable, ObjectTypeId};

/// What a read asked to see.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Properties to return.
    pub props: Vec<PropId>,
    /// Properties to return with history.
    pub history: Vec<PropId>,
    /// Association target types, with the name to key them by.
    pub associations: Vec<(ObjectTypeId, String)>,
}

impl Selection {
    /// Resolves requested names. No `properties` at all means the type's defaults; the
    /// always-present ones are added either way.
    pub fn new(
        crm: &Crm,
        table: &ObjectTable,
        properties: Option<&[String]>,
        history: &[String],
        associations: &[String],
    ) -> Self {
        let mut props = Vec::new();
        let names: Vec<&str> = match properties {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => table
                .kind
                .default_properties
                .iter()
                .map(String::as_str)
                .collect(),
        };
        let always = ["hs_object_id", "createdate", table.kind.modified_property];
        for name in names.into_iter().chain(always) {
            if let Some((id, _)) = table.props.live(name)
                && !props.contains(&id)
            {
                props.push(id);
            }
        }
        let history = history
            .iter()
            .filter_map(|n| table.props.live(n).map(|(id, _)| id))
            .collect();
        let associations = associations
            .iter()
            .filter_map(|n| crm.resolve_type(n).map(|t| (t, n.clone())))
            .collect();
        Self {
            props,
            history,
            associations,
        }
    }
}

/// The value of one property of a record (derived ones computed).
pub fn value_of<'a>(
    crm: &Crm,
    table: &ObjectTable,
    record: &'a Record,
    prop: PropId,
) -> Option<Cow<'a, str>> {
    match table.props.def(prop).and_then(|d| d.derived) {
        Some(Derived::PrimaryCompany) => crm
            .associations
            .primary_company(table.kind.id, record.id)
            .map(|id| Cow::Owned(id.to_string())),
        Some(Derived::ObjectId) => Some(Cow::Owned(record.id.to_string())),
        Some(Derived::Created) => Some(Cow::Owned(iso_millis(record.created))),
        Some(Derived::Modified) => Some(Cow::Owned(iso_millis(record.modified))),
        None => record.values.get(prop).map(Cow::Borrowed),
    }
}

/// The app URL HubSpot includes on newer responses.
pub fn record_url(portal_id: u32, ty: ObjectTypeId, id: u64) -> String {
    format!("https://app.hubspot.com/contacts/{portal_id}/record/{ty}/{id}")
}

/// A record as `SimplePublicObject(WithAssociations)`, serialised straight from the store (no
/// intermediate JSON tree: list and search pages are built from these).
pub struct RecordView<'a> {
    /// The CRM (associations, portal id).
    pub crm: &'a Crm,
    /// The record's type.
    pub table: &'a ObjectTable,
    /// The record.
    pub record: &'a Record,
    /// What to include.
    pub sel: &'a Selection,
}

struct PropsView<'a>(&'a RecordView<'a>);

impl Serialize for PropsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        let mut map = s.serialize_map(Some(v.sel.props.len()))?;
        for &p in &v.sel.props {
            if let Some(def) = v.table.props.def(p) {
                map.serialize_entry(def.name.as_str(), &value_of(v.crm, v.table, v.record, p))?;
            }
        }
        map.end()
    }
}

impl Serialize for RecordView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (table, record, sel) = (self.table, self.record, self.sel);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &record.id.to_string())?;
        map.serialize_entry("properties", &PropsView(self))?;
        if !sel.history.is_empty() {
            let mut hist = Map::new();
            for &p in &sel.history {
                if let Some(def) = table.props.def(p) {
                    hist.insert(
                        def.name.clone(),
                        Value::Array(history_entries(self.crm, table, record, p)),
                    );
                }
            }
            map.serialize_entry("propertiesWithHistory", &hist)?;
        }
        if !sel.associations.is_empty() {
            let mut assoc = Map::new();
            for (to, name) in &sel.associations {
                let refs = self
                    .crm
                    .associations
                    .expand_v3(table.kind.id, record.id, *to);
                if refs.is_empty() {
                    continue;
                }
                let results: Vec<Value> = refs
                    .into_iter()
                    .map(|r| json!({"id": r.id.to_string(), "type": r.type_name}))
                    .collect();
                assoc.insert(name.clone(), json!({ "results": results }));
            }
            if !assoc.is_empty() {
                map.serialize_entry("associations", &assoc)?;
            }
        }
        map.serialize_entry("createdAt", &iso_millis(record.created))?;
        map.serialize_entry("updatedAt", &iso_millis(record.modified))?;
        map.serialize_entry("archived", &record.archived_at.is_some())?;
        if let Some(at) = record.archived_at {
            map.serialize_entry("archivedAt", &iso_millis(at))?;
        }
        map.serialize_entry(
            "url",
            &record_url(self.crm.portal_id, table.kind.id, record.id),
        )?;
        map.end()
    }
}

/// A record as `SimplePublicObject(WithAssociations)` JSON.
pub fn record_json(crm: &Crm, table: &ObjectTable, record: &Record, sel: &Selection) -> Value {
    serde_json::to_value(RecordView {
        crm,
        table,
        record,
        sel,
    })
    .unwrap_or_default()
}

fn history_entries(crm: &Crm, table: &ObjectTable, record: &Record, p: PropId) -> Vec<Value> {
    let derived = table.props.def(p).and_then(|d| d.derived);
    if derived.is_some() {
        let value = value_of(crm, table, record, p)
            .unwrap_or_default()
            .into_owned();
        let at = if derived == Some(Derived::Modified) {
            record.modified
        } else {
            record.created
        };
        return vec![
            json!({"value": value, "timestamp": iso_millis(at), "sourceType": "CALCULATED"}),
        ];
    }
    record
        .history_of(p)
        .into_iter()
        .map(|(value, at, source)| {
            json!({"value": value, "timestamp": iso_millis(at), "sourceType": source.as_str(),
                   "sourceId": source_id(source)})
        })
        .collect()
}

fn source_id(source: crate::events::ChangeSource) -> Value {
    match source {
        crate::events::ChangeSource::CrmUi => json!("userId:1"),
        crate::events::ChangeSource::Integration => json!("1234567"),
        crate::events::ChangeSource::Import => Value::Null,
    }
}
