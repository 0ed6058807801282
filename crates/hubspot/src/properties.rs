//! Property definitions (v3 properties API, hubspot-api.md §9): discovery for the schema
//! mapper, creation (including hubsync's own unique-value property for idempotent creates,
//! lessons.md #14), and property groups.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::pagination::Collection;

/// A property definition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    /// Internal name (`firstname`).
    pub name: String,
    /// Display label.
    #[serde(default)]
    pub label: String,
    /// Data type: `string`, `number`, `date`, `datetime`, `enumeration`, `bool`,
    /// `phone_number` (read side also `json`, `object_coordinates`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Form field: `text`, `textarea`, `select`, `checkbox`, `booleancheckbox`, `date`, …
    #[serde(default)]
    pub field_type: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Property group.
    #[serde(default)]
    pub group_name: String,
    /// Enumeration options (empty when `external_options`).
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    /// Display order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_order: Option<i64>,
    /// Calculated by HubSpot.
    #[serde(default)]
    pub calculated: bool,
    /// Options live elsewhere (pipelines, owners).
    #[serde(default)]
    pub external_options: bool,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// Values are unique; usable as `idProperty`.
    #[serde(default)]
    pub has_unique_value: bool,
    /// Hidden in the UI.
    #[serde(default)]
    pub hidden: bool,
    /// Built into HubSpot (absent on custom properties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot_defined: Option<bool>,
    /// Who may change what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification_metadata: Option<ModificationMetadata>,
    /// Shown on forms.
    #[serde(default)]
    pub form_field: bool,
    /// `non_sensitive`, `sensitive` or `highly_sensitive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sensitivity: Option<String>,
    /// The object an id-valued property points to (`OWNER`, `COMPANY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_object_type: Option<String>,
    /// Created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Property {
    /// True when values cannot be written through the API (`readOnlyValue`, or calculated).
    pub fn is_read_only(&self) -> bool {
        self.modification_metadata
            .as_ref()
            .is_some_and(|m| m.read_only_value)
            || self.calculated
    }

    /// True for multi-select checkboxes (values joined by `;`).
    pub fn is_multi_valued(&self) -> bool {
        self.kind == "enumeration" && self.field_type == "checkbox"
    }
}

/// `modificationMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ModificationMetadata {
    /// May be archived.
    pub archivable: bool,
    /// The definition cannot change.
    pub read_only_definition: bool,
    /// Values cannot be written.
    pub read_only_value: bool,
    /// Options cannot change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_options: Option<bool>,
}

/// An enumeration option; the API reads and writes `value`, never `label`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOption {
    /// Display label.
    pub label: String,
    /// Stored value.
    pub value: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Order (−1 = after the positives).
    #[serde(default)]
    pub display_order: i64,
    /// Hidden.
    #[serde(default)]
    pub hidden: bool,
}

/// A property to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyCreate {
    /// Internal name (lowercase snake case).
    pub name: String,
    /// Label.
    pub label: String,
    /// Data type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Field type.
    pub field_type: String,
    /// Group.
    pub group_name: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Options for enumerations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PropertyOption>,
    /// Unique values (set only at creation, never changeable).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub has_unique_value: bool,
    /// Hidden.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Shown on forms.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub form_field: bool,
}

impl PropertyCreate {
    /// A single-line text property.
    pub fn text(
        name: impl Into<String>,
        label: impl Into<String>,
        group: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind: "string".to_owned(),
            field_type: "text".to_owned(),
            group_name: group.into(),
            description: None,
            options: Vec::new(),
            has_unique_value: false,
            hidden: false,
            form_field: false,
        }
    }

    /// Makes the property's values unique (usable as `idProperty`).
    #[must_use]
    pub fn unique(mut self) -> Self {
        self.has_unique_value = true;
        self
    }
}

/// A property group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyGroup {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Order.
    #[serde(default)]
    pub display_order: i64,
    /// Archived.
    #[serde(default, skip_serializing)]
    pub archived: bool,
}

impl HubSpotClient {
    /// Every property of `object_type` (one call, no paging).
    ///
    /// # Errors
    /// As for every call.
    pub async fn list_properties(
        &self,
        object_type: &str,
        archived: bool,
    ) -> Result<Vec<Property>, HubSpotError> {
        let query: &[(&str, &str)] = if archived {
            &[("archived", "true")]
        } else {
            &[]
        };
        let url = self.url(&["crm", "v3", "properties", object_type], query);
        let page: Collection<Property> = self.get_json(Endpoint::PROPERTIES_LIST, url).await?;
        Ok(page.results)
    }

    /// One property.
    ///
    /// # Errors
    /// 404 when it does not exist.
    pub async fn get_property(
        &self,
        object_type: &str,
        name: &str,
    ) -> Result<Property, HubSpotError> {
        let url = self.url(&["crm", "v3", "properties", object_type, name], &[]);
        self.get_json(Endpoint::PROPERTIES_GET, url).await
    }

    /// Creates a property.
    ///
    /// # Errors
    /// A name clash is a 409 (`OBJECT_ALREADY_EXISTS`).
    pub async fn create_property(
        &self,
        object_type: &str,
        property: &PropertyCreate,
    ) -> Result<Property, HubSpotError> {
        let url = self.url(&["crm", "v3", "properties", object_type], &[]);
        self.send_json(Endpoint::PROPERTIES_CREATE, Method::POST, url, property)
            .await
    }

    /// Makes sure a unique-value text property exists (hubsync's external id for idempotent
    /// creates): creates it, or accepts an existing one with unique values.
    ///
    /// # Errors
    /// [`HubSpotError::InvalidInput`] when a property of that name exists without unique
    /// values (it can never be made unique); otherwise as for every call.
    pub async fn ensure_unique_property(
        &self,
        object_type: &str,
        property: &PropertyCreate,
    ) -> Result<Property, HubSpotError> {
        let wanted = PropertyCreate {
            has_unique_value: true,
            ..property.clone()
        };
        let existing = match self.get_property(object_type, &wanted.name).await {
            Ok(found) => found,
            Err(err) if err.is_not_found() => {
                match self.create_property(object_type, &wanted).await {
                    Ok(created) => return Ok(created),
                    Err(err) if err.status() == Some(409) => {
                        self.get_property(object_type, &wanted.name).await?
                    }
                    Err(err) => return Err(err),
                }
            }
            Err(err) => return Err(err),
        };
        if existing.has_unique_value {
            Ok(existing)
        } else {
            Err(HubSpotError::InvalidInput(format!(
                "property {} on {object_type} exists without unique values",
                wanted.name
            )))
        }
    }

    /// The property groups of `object_type`.
    ///
    /// # Errors
    /// As for every call.
    pub async fn list_property_groups(
        &self,
        object_type: &str,
    ) -> Result<Vec<PropertyGroup>, HubSpotError> {
        let url = self.url(&["crm", "v3", "properties", object_type, "groups"], &[]);
        let page: Collection<PropertyGroup> =
            self.get_json(Endpoint::PROPERTY_GROUPS_LIST, url).await?;
        Ok(page.results)
    }

    /// Creates a property group.
    ///
    /// # Errors
    /// As for every call.
    pub async fn create_property_group(
        &self,
        object_type: &str,
        group: &PropertyGroup,
    ) -> Result<PropertyGroup, HubSpotError> {
        let url = self.url(&["crm", "v3", "properties", object_type, "groups"], &[]);
        self.send_json(Endpoint::PROPERTY_GROUPS_CREATE, Method::POST, url, group)
            .await
    }
}

/// Property definitions by name, for lookups.
pub fn by_name(properties: Vec<Property>) -> BTreeMap<String, Property> {
    properties
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_property_json_parses() {
        let p: Property = serde_json::from_str(
            r#"{"name":"autogen","label":"autogen","type":"enumeration","fieldType":"booleancheckbox",
             "description":"…","groupName":"contactinformation",
             "options":[{"label":"Yes","value":"true","displayOrder":0,"hidden":false},
                        {"label":"No","value":"false","displayOrder":1,"hidden":false}],
             "createdUserId":"61526374","updatedUserId":"61526374","displayOrder":-1,
             "calculated":false,"externalOptions":false,"archived":false,"hasUniqueValue":false,
             "hidden":false,"showCurrencySymbol":false,
             "modificationMetadata":{"archivable":true,"readOnlyDefinition":false,"readOnlyValue":false},
             "formField":true,"dataSensitivity":"non_sensitive",
             "createdAt":"2024-01-08T23:09:00.469Z","updatedAt":"2024-01-08T23:09:00.469Z"}"#,
        )
        .expect("parses");
        assert_eq!(p.kind, "enumeration");
        assert_eq!(p.options[1].value, "false");
        assert!(!p.is_read_only());
        assert!(!p.is_multi_valued());
        let ro: Property = serde_json::from_str(
            r#"{"name":"hubspotscore","type":"number","modificationMetadata":{"readOnlyValue":true}}"#,
        )
        .expect("parses");
        assert!(ro.is_read_only());
    }

    #[test]
    fn unique_create_body() {
        let body = serde_json::to_value(
            PropertyCreate::text("hubsync_id", "hubsync id", "contactinformation").unique(),
        )
        .expect("json");
        assert_eq!(body["hasUniqueValue"], true);
        assert_eq!(body["type"], "string");
        assert!(body.get("options").is_none());
    }
}
