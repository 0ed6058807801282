//! Custom object schemas (`/crm-object-schemas/v3/schemas`, hubspot-api.md §10): list, read
//! and create, so custom objects get tables like standard ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::pagination::Collection;
use crate::properties::{Property, PropertyCreate};

/// Singular and plural labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ObjectLabels {
    /// Singular label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singular: Option<String>,
    /// Plural label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
}

/// An association definition of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationDefinition {
    /// Association type id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// From type (`2-123456`).
    pub from_object_type_id: String,
    /// To type (`0-1`).
    pub to_object_type_id: String,
}

/// A custom object schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSchema {
    /// Numeric part of the type id.
    pub id: String,
    /// `2-{id}`, usable in object paths.
    pub object_type_id: String,
    /// `p{portal}_{name}`, usable in object paths.
    #[serde(default)]
    pub fully_qualified_name: String,
    /// Name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: ObjectLabels,
    /// Primary display property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_display_property: Option<String>,
    /// Properties required on create.
    #[serde(default)]
    pub required_properties: Vec<String>,
    /// Searchable properties.
    #[serde(default)]
    pub searchable_properties: Vec<String>,
    /// Property definitions (HubSpot adds `hs_*` system ones).
    #[serde(default)]
    pub properties: Vec<Property>,
    /// Association definitions.
    #[serde(default)]
    pub associations: Vec<AssociationDefinition>,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// Created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A schema to create (`ObjectSchemaEgg`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSchemaCreate {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: ObjectLabels,
    /// Primary display property.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_display_property: Option<String>,
    /// Properties required on create.
    pub required_properties: Vec<String>,
    /// Searchable properties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub searchable_properties: Vec<String>,
    /// Initial properties.
    pub properties: Vec<PropertyCreate>,
    /// Object types it associates with (`CONTACT`, `COMPANY`, or type ids).
    pub associated_objects: Vec<String>,
    /// Extra fields passed through as-is (description, secondaryDisplayProperties…).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl HubSpotClient {
    /// Every custom object schema.
    ///
    /// # Errors
    /// As for every call (403 without the schemas scope).
    pub async fn list_schemas(&self) -> Result<Vec<ObjectSchema>, HubSpotError> {
        let url = self.url(&["crm-object-schemas", "v3", "schemas"], &[]);
        let page: Collection<ObjectSchema> = self.get_json(Endpoint::SCHEMAS_LIST, url).await?;
        Ok(page.results)
    }

    /// One schema by type id (`2-123`) or fully qualified name.
    ///
    /// # Errors
    /// 404 when unknown.
    pub async fn get_schema(&self, object_type: &str) -> Result<ObjectSchema, HubSpotError> {
        let url = self.url(&["crm-object-schemas", "v3", "schemas", object_type], &[]);
        self.get_json(Endpoint::SCHEMAS_GET, url).await
    }

    /// Creates a custom object schema.
    ///
    /// # Errors
    /// As for every call.
    pub async fn create_schema(
        &self,
        schema: &ObjectSchemaCreate,
    ) -> Result<ObjectSchema, HubSpotError> {
        let url = self.url(&["crm-object-schemas", "v3", "schemas"], &[]);
        self.send_json(Endpoint::SCHEMAS_CREATE, Method::POST, url, schema)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses() {
        let s: ObjectSchema = serde_json::from_str(
            r#"{"id":"123456","objectTypeId":"2-123456","fullyQualifiedName":"p7878787_cars","name":"cars",
             "labels":{"singular":"Car","plural":"Cars"},"metaType":"PORTAL_SPECIFIC",
             "primaryDisplayProperty":"model","requiredProperties":["vin"],"searchableProperties":["vin"],
             "properties":[{"name":"vin","label":"VIN","type":"string","fieldType":"text","hasUniqueValue":true}],
             "associations":[{"id":"105","name":"cars_to_contact","fromObjectTypeId":"2-123456","toObjectTypeId":"0-1"}],
             "archived":false,"createdAt":"2020-02-20T18:07:11.390Z"}"#,
        )
        .expect("parses");
        assert_eq!(s.object_type_id, "2-123456");
        assert!(s.properties[0].has_unique_value);
        assert_eq!(s.associations[0].to_object_type_id, "0-1");
    }
}
