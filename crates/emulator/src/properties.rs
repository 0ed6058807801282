//! Property definitions and groups of one object type (hubspot-api.md §9): the registry that
//! interns property names to small indexes (records store values by index), the HubSpot-defined
//! properties of the standard objects, and the Property JSON of the v3 and legacy v2 APIs.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::records::iso_millis;

/// A property's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropType {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `date` (date only, midnight UTC)
    Date,
    /// `datetime`
    Datetime,
    /// `enumeration`
    Enumeration,
    /// `phone_number`
    PhoneNumber,
}

impl PropType {
    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "string" => Self::String,
            "number" => Self::Number,
            "bool" => Self::Bool,
            "date" => Self::Date,
            "datetime" => Self::Datetime,
            "enumeration" => Self::Enumeration,
            "phone_number" => Self::PhoneNumber,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Enumeration => "enumeration",
            Self::PhoneNumber => "phone_number",
        }
    }

    /// The `fieldType`s a property of this type may have (§9.2).
    pub fn allows_field_type(self, field_type: &str) -> bool {
        let allowed: &[&str] = match self {
            Self::String => &[
                "text",
                "textarea",
                "html",
                "file",
                "phonenumber",
                "calculation_equation",
            ],
            Self::Number => &["number", "calculation_equation"],
            Self::Bool => &["booleancheckbox"],
            Self::Enumeration => &[
                "select",
                "radio",
                "checkbox",
                "booleancheckbox",
                "calculation_equation",
            ],
            Self::Date => &["date"],
            Self::Datetime => &["date"],
            Self::PhoneNumber => &["phonenumber"],
        };
        allowed.contains(&field_type)
    }
}

/// Values the emulator computes instead of storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// `hs_object_id`: the record id.
    ObjectId,
    /// `createdate`: the creation time.
    Created,
    /// `lastmodifieddate` / `hs_lastmodifieddate`: the last modification time.
    Modified,
    /// `associatedcompanyid`: the primary company (from the associations; writable).
    PrimaryCompany,
}

/// One enumeration option.
#[derive(Debug, Clone, PartialEq)]
pub struct PropOption {
    /// Label shown in the UI.
    pub label: String,
    /// The internal value the API reads and writes.
    pub value: String,
    /// Optional description.
    pub description: Option<String>,
    /// Display order.
    pub display_order: i64,
    /// Hidden in forms.
    pub hidden: bool,
}

/// One property definition.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Description.
    pub description: String,
    /// Group name.
    pub group_name: String,
    /// `type`.
    pub prop_type: PropType,
    /// `fieldType`.
    pub field_type: String,
    /// Options (enumerations).
    pub options: Vec<PropOption>,
    /// Display order.
    pub display_order: i64,
    /// Unique across records of the type (valid `idProperty`).
    pub has_unique_value: bool,
    /// Hidden in the UI.
    pub hidden: bool,
    /// Value cannot be written (`modificationMetadata.readOnlyValue`).
    pub read_only_value: bool,
    /// Definition cannot be changed.
    pub read_only_definition: bool,
    /// Calculated by HubSpot.
    pub calculated: bool,
    /// Options live elsewhere (pipelines, owners).
    pub external_options: bool,
    /// Built into HubSpot.
    pub hubspot_defined: bool,
    /// Shown on forms.
    pub form_field: bool,
    /// `referencedObjectType` (e.g. `OWNER`).
    pub referenced_object_type: Option<String>,
    /// Archived (deleted) property.
    pub archived: bool,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last update (ms).
    pub updated_at: i64,
    /// When archived (ms).
    pub archived_at: Option<i64>,
    /// Computed value, if any.
    pub derived: Option<Derived>,
}

impl PropertyDef {
    /// A HubSpot-defined property.
    pub fn builtin(
        name: &str,
        label: &str,
        prop_type: PropType,
        field_type: &str,
        group: &str,
    ) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            description: String::new(),
            group_name: group.to_owned(),
            prop_type,
            field_type: field_type.to_owned(),
            options: Vec::new(),
            display_order: -1,
            has_unique_value: false,
            hidden: false,
            read_only_value: false,
            read_only_definition: true,
            calculated: false,
            external_options: false,
            hubspot_defined: true,
            form_field: false,
            referenced_object_type: None,
            archived: false,
            created_at: 0,
            updated_at: 0,
            archived_at: None,
            derived: None,
        }
    }

    /// Marks the value read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only_value = true;
        self
    }

    /// Marks it calculated (and therefore read-only).
    pub fn calculated(mut self) -> Self {
        self.calculated = true;
        self.read_only_value = true;
        self
    }

    /// Marks it unique.
    pub fn unique(mut self) -> Self {
        self.has_unique_value = true;
        self
    }

    /// Options from `(value, label)` pairs.
    pub fn with_options(mut self, options: &[(&str, &str)]) -> Self {
        self.options = options
            .iter()
            .enumerate()
            .map(|(i, (value, label))| PropOption {
                label: (*label).to_owned(),
                value: (*value).to_owned(),
                description: None,
                display_order: i64::try_from(i).unwrap_or(0),
                hidden: false,
            })
            .collect();
        self
    }

    /// Options kept elsewhere, with an optional referenced object type.
    pub fn external(mut self, referenced: Option<&str>) -> Self {
        self.external_options = true;
        self.referenced_object_type = referenced.map(str::to_owned);
        self
    }

    /// Makes the value computed (read-only except creation time and primary company).
    pub fn derived(mut self, derived: Derived) -> Self {
        self.derived = Some(derived);
        self.read_only_value = !matches!(derived, Derived::Created | Derived::PrimaryCompany);
        self
    }

    /// True for a multi-select (`;`-joined) enumeration.
    pub fn is_multi(&self) -> bool {
        self.prop_type == PropType::Enumeration && self.field_type == "checkbox"
    }

    /// The v3 Property JSON.
    pub fn to_v3_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("name".into(), json!(self.name));
        map.insert("label".into(), json!(self.label));
        map.insert("type".into(), json!(self.prop_type.as_str()));
        map.insert("fieldType".into(), json!(self.field_type));
        map.insert("description".into(), json!(self.description));
        map.insert("groupName".into(), json!(self.group_name));
        map.insert("options".into(), self.options_json());
        map.insert("displayOrder".into(), json!(self.display_order));
        map.insert("calculated".into(), json!(self.calculated));
        map.insert("externalOptions".into(), json!(self.external_options));
        map.insert("archived".into(), json!(self.archived));
        map.insert("hasUniqueValue".into(), json!(self.has_unique_value));
        map.insert("hidden".into(), json!(self.hidden));
        map.insert("showCurrencySymbol".into(), json!(false));
        map.insert(
            "modificationMetadata".into(),
            json!({"archivable": !self.hubspot_defined, "readOnlyDefinition": self.read_only_definition,
                   "readOnlyValue": self.read_only_value}),
        );
        map.insert("formField".into(), json!(self.form_field));
        map.insert("dataSensitivity".into(), json!("non_sensitive"));
        map.insert("createdAt".into(), json!(iso_millis(self.created_at)));
        map.insert("updatedAt".into(), json!(iso_millis(self.updated_at)));
        if self.hubspot_defined {
            map.insert("hubspotDefined".into(), json!(true));
        }
        if let Some(at) = self.archived_at {
            map.insert("archivedAt".into(), json!(iso_millis(at)));
        }
        if let Some(r) = &self.referenced_object_type {
            map.insert("referencedObjectType".into(), json!(r));
        }
        Value::Object(map)
    }

    /// The legacy `/properties/v2/{object}/properties` JSON.
    pub fn to_v2_json(&self) -> Value {
        json!({
            "name": self.name, "label": self.label, "description": self.description,
            "groupName": self.group_name, "type": self.prop_type.as_str(),
            "fieldType": self.field_type, "options": self.options_json(),
            "displayOrder": self.display_order, "readOnlyValue": self.read_only_value,
            "readOnlyDefinition": self.read_only_definition, "hidden": self.hidden,
            "mutableDefinitionNotDeletable": self.hubspot_defined, "calculated": self.calculated,
            "externalOptions": self.external_options, "deleted": self.archived,
            "hubspotDefined": self.hubspot_defined, "formField": self.form_field,
            "hasUniqueValue": self.has_unique_value, "createdAt": self.created_at,
            "updatedAt": self.updated_at, "createdUserId": null, "updatedUserId": null,
            "referencedObjectType": self.referenced_object_type, "favorited": false,
            "searchableInGlobalSearch": false, "optionsAreMutable": !self.external_options,
        })
    }

    fn options_json(&self) -> Value {
        Value::Array(
            self.options
                .iter()
                .map(|o| {
                    let mut v = json!({"label": o.label, "value": o.value,
                                       "displayOrder": o.display_order, "hidden": o.hidden});
                    if let (Some(d), Value::Object(m)) = (&o.description, &mut v) {
                        m.insert("description".into(), json!(d));
                    }
                    v
                })
                .collect(),
        )
    }
}

/// A property group.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyGroup {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Display order.
    pub display_order: i64,
    /// Archived.
    pub archived: bool,
}

impl PropertyGroup {
    /// The v3 JSON.
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "label": self.label, "displayOrder": self.display_order,
               "archived": self.archived})
    }
}

/// Index of a property in its type's registry.
pub type PropId = u16;

/// Every property and group of one object type. Names are interned: records refer to
/// properties by [`PropId`].
#[derive(Debug, Clone, Default)]
pub struct PropertyRegistry {
    defs: Vec<PropertyDef>,
    by_name: HashMap<String, PropId>,
    /// Property groups.
    pub groups: Vec<PropertyGroup>,
}

impl PropertyRegistry {
    /// A registry with the derived properties every type has, and one group.
    pub fn with_system(modified_property: &str, group: (&str, &str)) -> Self {
        let mut reg = Self::default();
        reg.groups.push(PropertyGroup {
            name: group.0.to_owned(),
            label: group.1.to_owned(),
            display_order: -1,
            archived: false,
        });
        let g = group.0;
        reg.push(
            PropertyDef::builtin("hs_object_id", "Record ID", PropType::Number, "number", g)
                .derived(Derived::ObjectId),
        );
        reg.push(
            PropertyDef::builtin("createdate", "Create Date", PropType::Datetime, "date", g)
                .derived(Derived::Created),
        );
        reg.push(
            PropertyDef::builtin(
                "hs_lastmodifieddate",
                "Last Modified Date",
                PropType::Datetime,
                "date",
                g,
            )
            .derived(Derived::Modified),
        );
        if modified_property != "hs_lastmodifieddate" {
            reg.push(
                PropertyDef::builtin(
                    modified_property,
                    "Last Modified Date",
                    PropType::Datetime,
                    "date",
                    g,
                )
                .derived(Derived::Modified),
            );
        }
        reg.push(
            PropertyDef::builtin(
                "hs_merged_object_ids",
                "Merged Record IDs",
                PropType::Enumeration,
                "checkbox",
                g,
            )
            .read_only(),
        );
        reg
    }

    /// Adds (or replaces, by name) a definition and returns its id.
    pub fn push(&mut self, def: PropertyDef) -> PropId {
        if let Some(&id) = self.by_name.get(&def.name) {
            self.defs[usize::from(id)] = def;
            return id;
        }
        let id = PropId::try_from(self.defs.len()).unwrap_or(PropId::MAX);
        self.by_name.insert(def.name.clone(), id);
        self.defs.push(def);
        id
    }

    /// Looks up a property by name (archived ones included).
    pub fn id(&self, name: &str) -> Option<PropId> {
        self.by_name.get(name).copied()
    }

    /// Looks up a live (not archived) property by name.
    pub fn live(&self, name: &str) -> Option<(PropId, &PropertyDef)> {
        let id = self.id(name)?;
        let def = self.def(id)?;
        (!def.archived).then_some((id, def))
    }

    /// The definition with this id.
    pub fn def(&self, id: PropId) -> Option<&PropertyDef> {
        self.defs.get(usize::from(id))
    }

    /// Mutable definition.
    pub fn def_mut(&mut self, id: PropId) -> Option<&mut PropertyDef> {
        self.defs.get_mut(usize::from(id))
    }

    /// Every definition with its id.
    pub fn iter(&self) -> impl Iterator<Item = (PropId, &PropertyDef)> {
        self.defs
            .iter()
            .enumerate()
            .map(|(i, d)| (PropId::try_from(i).unwrap_or(PropId::MAX), d))
    }

    /// How many definitions (archived included).
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// The group with this name.
    pub fn group(&self, name: &str) -> Option<&PropertyGroup> {
        self.groups.iter().find(|g| g.name == name && !g.archived)
    }
}
