//! CRM records (v3 objects API): the record JSON ([`SimpleObject`]), write inputs, and the
//! single-record calls (get, create, update, archive, merge, GDPR delete).
//!
//! Object types are passed as HubSpot accepts them in paths: plural names (`contacts`),
//! type ids (`0-1`, `2-123`) or a custom object's fully qualified name.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::wire;

/// The property holding a record's last-modified time: `lastmodifieddate` for contacts,
/// `hs_lastmodifieddate` for every other object (lessons.md #9).
pub fn modified_property(object_type: &str) -> &'static str {
    match object_type.to_ascii_lowercase().as_str() {
        "contacts" | "contact" | "0-1" => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

/// One record as HubSpot returns it (`SimplePublicObject…`, hubspot-api.md §5).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimpleObject {
    /// Record id (a string of digits on the wire).
    #[serde(deserialize_with = "wire::id", serialize_with = "wire::id_as_string")]
    pub id: u64,
    /// Property values; a requested property without a value is `None`.
    #[serde(default, deserialize_with = "wire::property_values")]
    pub properties: BTreeMap<String, Option<String>>,
    /// Value histories, newest first, when `propertiesWithHistory` was requested.
    #[serde(
        default,
        deserialize_with = "wire::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub properties_with_history: BTreeMap<String, Vec<ValueWithTimestamp>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time (mirrors the modified-date property).
    pub updated_at: DateTime<Utc>,
    /// True when the record is archived (recycle bin).
    #[serde(default)]
    pub archived: bool,
    /// When it was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<DateTime<Utc>>,
    /// v3-style associations, keyed by the requested type, when `associations` was requested.
    #[serde(
        default,
        deserialize_with = "wire::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub associations: BTreeMap<String, AssociatedIds>,
    /// Upsert answers only: whether the record was created (`new`).
    #[serde(default, rename = "new", skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    /// Echo of the `objectWriteTraceId` the write supplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
}

impl SimpleObject {
    /// The value of `name`, if present and non-null.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Option::as_deref)
    }

    /// The record's modification time in epoch milliseconds: the modified-date property when
    /// present and parsable (ISO-8601 or epoch ms), else `updatedAt`.
    pub fn modified_ms(&self, property: &str) -> i64 {
        self.property(property)
            .and_then(parse_timestamp_ms)
            .unwrap_or_else(|| self.updated_at.timestamp_millis())
    }
}

/// Parses a HubSpot datetime value: epoch milliseconds or ISO-8601.
pub fn parse_timestamp_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Some(ms);
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// One entry of a property's history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueWithTimestamp {
    /// The value then.
    #[serde(default)]
    pub value: String,
    /// When it was set.
    pub timestamp: DateTime<Utc>,
    /// What set it (`CRM_UI`, `API`, `INTEGRATION`, …).
    #[serde(default)]
    pub source_type: String,
    /// Source detail (`userId:123`, an app id, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Source label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_label: Option<String>,
    /// The HubSpot user who set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by_user_id: Option<u64>,
}

/// v3 associations of one type on a record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct AssociatedIds {
    /// Associated records (a record linked with two types appears twice).
    #[serde(default)]
    pub results: Vec<AssociatedId>,
}

/// One associated record in v3 form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AssociatedId {
    /// The other record's id.
    #[serde(deserialize_with = "wire::id", serialize_with = "wire::id_as_string")]
    pub id: u64,
    /// Type name such as `contact_to_company` or `contact_to_company_unlabeled`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// An association to create together with a record (`associations[]` of a create input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationInput {
    /// The target record.
    pub to: RecordRef,
    /// The association types to create.
    pub types: Vec<AssociationSpec>,
}

/// `{ "id": "…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    /// Record id.
    #[serde(deserialize_with = "wire::id", serialize_with = "wire::id_as_string")]
    pub id: u64,
}

/// An association type: category plus numeric type id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationSpec {
    /// `HUBSPOT_DEFINED`, `USER_DEFINED` or `INTEGRATOR_DEFINED`.
    pub association_category: String,
    /// The type id (e.g. 279 = contact → company, unlabeled).
    pub association_type_id: u32,
}

impl AssociationSpec {
    /// A HubSpot-defined type.
    pub fn hubspot_defined(type_id: u32) -> Self {
        Self {
            association_category: "HUBSPOT_DEFINED".to_owned(),
            association_type_id: type_id,
        }
    }
}

/// A record to create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectInput {
    /// Property values (strings; `""` clears).
    pub properties: BTreeMap<String, String>,
    /// Associations to create with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub associations: Vec<AssociationInput>,
    /// Write trace id; batch calls fill in the input's index when absent so that partial
    /// failures come back per item (207).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
}

impl ObjectInput {
    /// A create input from `(name, value)` pairs.
    pub fn new<K: Into<String>, V: Into<String>>(
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            properties: properties
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Self::default()
        }
    }
}

/// Options for reading one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Properties to return (empty: HubSpot's defaults).
    pub properties: Vec<String>,
    /// Properties to return with history.
    pub properties_with_history: Vec<String>,
    /// Object types whose association ids to return.
    pub associations: Vec<String>,
    /// Read an archived record.
    pub archived: bool,
    /// Treat the id as a value of this unique property.
    pub id_property: Option<String>,
}

#[derive(Serialize)]
struct PropertiesBody<'a> {
    properties: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MergeBody<'a> {
    primary_object_id: &'a str,
    object_id_to_merge: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GdprBody<'a> {
    object_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_property: Option<&'a str>,
}

fn joined(names: &[String]) -> String {
    names.join(",")
}

impl HubSpotClient {
    /// Reads one record by id (or by a unique property's value, see [`GetOptions`]).
    ///
    /// # Errors
    /// 404 → an error with [`HubSpotError::is_not_found`]; others as for every call.
    pub async fn get_object(
        &self,
        object_type: &str,
        id: &str,
        options: &GetOptions,
    ) -> Result<SimpleObject, HubSpotError> {
        let props = joined(&options.properties);
        let history = joined(&options.properties_with_history);
        let assoc = joined(&options.associations);
        let mut query: Vec<(&str, &str)> = Vec::new();
        for (key, value) in [
            ("properties", &props),
            ("propertiesWithHistory", &history),
            ("associations", &assoc),
        ] {
            if !value.is_empty() {
                query.push((key, value));
            }
        }
        if options.archived {
            query.push(("archived", "true"));
        }
        if let Some(id_property) = &options.id_property {
            query.push(("idProperty", id_property));
        }
        let url = self.url(&["crm", "v3", "objects", object_type, id], &query);
        self.get_json(Endpoint::OBJECTS_GET, url).await
    }

    /// Creates one record.
    ///
    /// # Errors
    /// A duplicate contact email → [`HubSpotError::AlreadyExists`] with the existing id.
    pub async fn create_object(
        &self,
        object_type: &str,
        input: &ObjectInput,
    ) -> Result<SimpleObject, HubSpotError> {
        let url = self.url(&["crm", "v3", "objects", object_type], &[]);
        self.send_json(Endpoint::OBJECTS_CREATE, Method::POST, url, input)
            .await
    }

    /// Updates the given properties of one record (`""` clears a value).
    ///
    /// # Errors
    /// As for every call.
    pub async fn update_object(
        &self,
        object_type: &str,
        id: &str,
        id_property: Option<&str>,
        properties: &BTreeMap<String, String>,
    ) -> Result<SimpleObject, HubSpotError> {
        let query: Vec<(&str, &str)> = id_property.map(|p| ("idProperty", p)).into_iter().collect();
        let url = self.url(&["crm", "v3", "objects", object_type, id], &query);
        self.send_json(
            Endpoint::OBJECTS_UPDATE,
            Method::PATCH,
            url,
            &PropertiesBody { properties },
        )
        .await
    }

    /// Archives one record (moves it to the recycle bin).
    ///
    /// # Errors
    /// As for every call.
    pub async fn archive_object(&self, object_type: &str, id: u64) -> Result<(), HubSpotError> {
        let id = id.to_string();
        let url = self.url(&["crm", "v3", "objects", object_type, &id], &[]);
        self.send(Endpoint::OBJECTS_ARCHIVE, Method::DELETE, url, None)
            .await
            .map(drop)
    }

    /// Merges `merged` into `primary` and returns the surviving record (whose id may be new).
    ///
    /// # Errors
    /// As for every call.
    pub async fn merge_objects(
        &self,
        object_type: &str,
        primary: u64,
        merged: u64,
    ) -> Result<SimpleObject, HubSpotError> {
        let (primary, merged) = (primary.to_string(), merged.to_string());
        let body = MergeBody {
            primary_object_id: &primary,
            object_id_to_merge: &merged,
        };
        let url = self.url(&["crm", "v3", "objects", object_type, "merge"], &[]);
        self.send_json(Endpoint::OBJECTS_MERGE, Method::POST, url, &body)
            .await
    }

    /// Permanently deletes a contact (GDPR), by id or by a unique property's value.
    ///
    /// # Errors
    /// As for every call.
    pub async fn gdpr_delete_contact(
        &self,
        id: &str,
        id_property: Option<&str>,
    ) -> Result<(), HubSpotError> {
        let url = self.url(&["crm", "v3", "objects", "contacts", "gdpr-delete"], &[]);
        let body = GdprBody {
            object_id: id,
            id_property,
        };
        self.send_body(Endpoint::OBJECTS_GDPR_DELETE, Method::POST, url, &body)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_json_parses_with_nulls_history_and_associations() {
        let json = r#"{"id":"512",
         "properties":{"email":"ann@example.com","phone":null,"hs_object_id":"512",
                       "lastmodifieddate":"2019-12-07T16:50:06.678Z"},
         "propertiesWithHistory":{"firstname":[
             {"value":"Ann","timestamp":"2019-12-07T16:50:06.678Z","sourceType":"CRM_UI",
              "sourceId":"userId:123","sourceLabel":null,"updatedByUserId":123}]},
         "associations":{"companies":{"results":[
             {"id":"900","type":"contact_to_company"},
             {"id":"900","type":"contact_to_company_unlabeled"}]}},
         "createdAt":"2019-10-30T03:30:17.883Z","updatedAt":"2019-12-07T16:50:06.678Z",
         "archived":false,"url":"https://app.hubspot.com/contacts/1/record/0-1/512"}"#;
        let r: SimpleObject = serde_json::from_str(json).expect("parses");
        assert_eq!(r.id, 512);
        assert_eq!(r.property("email"), Some("ann@example.com"));
        assert_eq!(r.properties.get("phone"), Some(&None));
        assert_eq!(
            r.properties_with_history["firstname"][0].updated_by_user_id,
            Some(123)
        );
        assert_eq!(r.associations["companies"].results.len(), 2);
        assert_eq!(r.modified_ms("lastmodifieddate"), 1_575_737_406_678);
        assert_eq!(r.modified_ms("missing"), r.updated_at.timestamp_millis());
        assert_eq!(r.archived_at, None);
    }

    #[test]
    fn modified_property_per_object() {
        assert_eq!(modified_property("contacts"), "lastmodifieddate");
        assert_eq!(modified_property("0-1"), "lastmodifieddate");
        assert_eq!(modified_property("companies"), "hs_lastmodifieddate");
        assert_eq!(modified_property("2-123"), "hs_lastmodifieddate");
    }

    #[test]
    fn timestamps_parse_both_ways() {
        assert_eq!(parse_timestamp_ms("1727000000000"), Some(1_727_000_000_000));
        assert_eq!(
            parse_timestamp_ms("2019-10-30T03:30:17.883Z"),
            Some(1_572_406_217_883)
        );
        assert_eq!(parse_timestamp_ms(""), None);
        assert_eq!(parse_timestamp_ms("soon"), None);
    }

    #[test]
    fn create_input_serializes_like_hubspot_expects() {
        let mut input = ObjectInput::new([("email", "a@x.com")]);
        input.associations.push(AssociationInput {
            to: RecordRef { id: 9001 },
            types: vec![AssociationSpec::hubspot_defined(279)],
        });
        let json = serde_json::to_value(&input).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"properties":{"email":"a@x.com"},
              "associations":[{"to":{"id":"9001"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":279}]}]})
        );
    }
}
