//! Record JSON (hubspot-api.md §5): which properties a read returns (requested, defaults and
//! the always-present ones; unknown names silently dropped, empty ones `null`), values of
//! derived properties, `propertiesWithHistory`, and the v3 `associations` expansion.

use std::borrow::Cow;

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
pub fn value_of<'a>(table: &ObjectTable, record: &'a Record, prop: PropId) -> Option<Cow<'a, str>> {
    match table.props.def(prop).and_then(|d| d.derived) {
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

/// A record as `SimplePublicObject(WithAssociations)`.
pub fn record_json(crm: &Crm, table: &ObjectTable, record: &Record, sel: &Selection) -> Value {
    let mut props = Map::new();
    for &p in &sel.props {
        let Some(def) = table.props.def(p) else {
            continue;
        };
        let value =
            value_of(table, record, p).map_or(Value::Null, |v| Value::String(v.into_owned()));
        props.insert(def.name.clone(), value);
    }
    let mut out = Map::new();
    out.insert("id".into(), Value::String(record.id.to_string()));
    out.insert("properties".into(), Value::Object(props));
    if !sel.history.is_empty() {
        let mut hist = Map::new();
        for &p in &sel.history {
            let Some(def) = table.props.def(p) else {
                continue;
            };
            let entries: Vec<Value> = history_entries(table, record, p);
            hist.insert(def.name.clone(), Value::Array(entries));
        }
        out.insert("propertiesWithHistory".into(), Value::Object(hist));
    }
    if !sel.associations.is_empty() {
        let mut assoc = Map::new();
        for (to, name) in &sel.associations {
            let refs = crm.associations.expand_v3(table.kind.id, record.id, *to);
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
            out.insert("associations".into(), Value::Object(assoc));
        }
    }
    out.insert(
        "createdAt".into(),
        Value::String(iso_millis(record.created)),
    );
    out.insert(
        "updatedAt".into(),
        Value::String(iso_millis(record.modified)),
    );
    out.insert("archived".into(), Value::Bool(record.archived_at.is_some()));
    if let Some(at) = record.archived_at {
        out.insert("archivedAt".into(), Value::String(iso_millis(at)));
    }
    out.insert(
        "url".into(),
        Value::String(record_url(crm.portal_id, table.kind.id, record.id)),
    );
    Value::Object(out)
}

fn history_entries(table: &ObjectTable, record: &Record, p: PropId) -> Vec<Value> {
    let derived = table.props.def(p).and_then(|d| d.derived);
    if derived.is_some() {
        let value = value_of(table, record, p).unwrap_or_default().into_owned();
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
