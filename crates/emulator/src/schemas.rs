//! Custom object schemas (hubspot-api.md §10): what a custom object type adds on top of an
//! ordinary object table (labels, display/search/required properties, associated objects), and
//! the `ObjectSchema` JSON.

use serde_json::{Value, json};

use crate::records::iso_millis;
use crate::state::{Crm, ObjectTable};

/// The schema part of a custom object type.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSchema {
    /// `labels.singular`.
    pub singular_label: String,
    /// `labels.plural`.
    pub plural_label: String,
    /// Description.
    pub description: Option<String>,
    /// `primaryDisplayProperty`.
    pub primary_display_property: Option<String>,
    /// `secondaryDisplayProperties`.
    pub secondary_display_properties: Vec<String>,
    /// `searchableProperties` (also what `query` matches in search).
    pub searchable_properties: Vec<String>,
    /// `requiredProperties` (a create without them fails).
    pub required_properties: Vec<String>,
    /// Object types it associates with, as given (`CONTACT`, `0-2`…).
    pub associated_objects: Vec<String>,
    /// The associated object types, resolved.
    pub associated_types: Vec<crate::state::ObjectTypeId>,
    /// Archived schema.
    pub archived: bool,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last update (ms).
    pub updated_at: i64,
}

/// The `ObjectSchema` JSON of a custom type.
pub fn schema_json(crm: &Crm, table: &ObjectTable) -> Value {
    let Some(schema) = &table.schema else {
        return Value::Null;
    };
    let kind = &table.kind;
    let properties: Vec<Value> = table
        .props
        .iter()
        .filter(|(_, d)| !d.archived)
        .map(|(_, d)| d.to_v3_json())
        .collect();
    let associations: Vec<Value> = schema
        .associated_types
        .iter()
        .flat_map(|to| crm.associations.definitions().pair(kind.id, *to))
        .filter(|d| d.is_default)
        .map(|d| {
            json!({"id": d.kind.type_id.to_string(), "name": d.name, "fromObjectTypeId": d.from_type,
                   "toObjectTypeId": d.to_type, "createdAt": iso_millis(schema.created_at),
                   "updatedAt": iso_millis(schema.updated_at)})
        })
        .collect();
    json!({
        "id": kind.id.number.to_string(),
        "objectTypeId": kind.id,
        "fullyQualifiedName": kind.fully_qualified_name,
        "name": kind.name,
        "labels": {"singular": schema.singular_label, "plural": schema.plural_label},
        "description": schema.description,
        "metaType": "PORTAL_SPECIFIC",
        "primaryDisplayProperty": schema.primary_display_property,
        "secondaryDisplayProperties": schema.secondary_display_properties,
        "requiredProperties": schema.required_properties,
        "searchableProperties": schema.searchable_properties,
        "properties": properties,
        "associations": associations,
        "archived": schema.archived,
        "allowsSensitiveProperties": false,
        "createdAt": iso_millis(schema.created_at),
        "updatedAt": iso_millis(schema.updated_at),
        "createdByUserId": 1,
        "updatedByUserId": 1,
    })
}
