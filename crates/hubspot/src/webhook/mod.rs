//! Webhook deliveries (hubspot-api.md §12): the event payload and signature verification.
//!
//! A delivery is a JSON array of events, at-least-once and unordered: dedupe on
//! [`WebhookEvent::event_id`], order per record by `occurred_at`, and treat events as hints to
//! re-read the record (lessons.md #24). Ids are JSON numbers here.

mod signature;

pub use signature::{
    SIGNATURE_HEADER, SIGNATURE_V3_HEADER, SIGNATURE_VERSION_HEADER, SignatureError,
    SignatureVerifier, SignatureVersion, SignedRequest, TIMESTAMP_HEADER, sign,
};

use serde::{Deserialize, Serialize};

use crate::wire;

/// What happened, from the `subscriptionType` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `*.creation`.
    Creation,
    /// `*.deletion`.
    Deletion,
    /// `*.propertyChange`.
    PropertyChange,
    /// `*.merge`.
    Merge,
    /// `*.restore`.
    Restore,
    /// `*.associationChange`.
    AssociationChange,
    /// `contact.privacyDeletion` / `conversation.privacyDeletion`.
    PrivacyDeletion,
    /// `conversation.newMessage`.
    NewMessage,
    /// `event.completed`.
    Completed,
    /// Anything else (new HubSpot event types).
    Other,
}

/// One webhook event. Fields that only some kinds carry are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Unique per event; the idempotency key.
    #[serde(deserialize_with = "wire::id")]
    pub event_id: u64,
    /// The subscription that fired.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscription_id: Option<u64>,
    /// The portal (account) id.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub portal_id: Option<u64>,
    /// The app id.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_id: Option<u64>,
    /// When the change happened (epoch ms).
    pub occurred_at: i64,
    /// `contact.propertyChange`, `object.creation`, …
    pub subscription_type: String,
    /// 0 on the first delivery.
    #[serde(default)]
    pub attempt_number: u32,
    /// The record.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub object_id: Option<u64>,
    /// Object type id on generic `object.*` events (`0-1`, `2-123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_id: Option<String>,
    /// propertyChange: the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    /// propertyChange: the new value (a hint; re-read the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_value: Option<String>,
    /// `CRM`, `CRM_UI`, `API`, `INTEGRATION`, `IMPORT`, … (open set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_source: Option<String>,
    /// `userId:45678`, an app id, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// `NEW`, `CREATED`, `DELETED`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_flag: Option<String>,
    /// merge: the record kept.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_object_id: Option<u64>,
    /// merge: the records merged away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_object_ids: Vec<u64>,
    /// merge: the survivor's new id, when HubSpot minted one.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub new_object_id: Option<u64>,
    /// merge: properties moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_properties_moved: Option<u64>,
    /// associationChange: source record.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub from_object_id: Option<u64>,
    /// associationChange: target record.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub to_object_id: Option<u64>,
    /// associationChange: `CONTACT_TO_COMPANY`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type: Option<String>,
    /// associationChange: removed rather than added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_removed: Option<bool>,
    /// associationChange: primary association.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_primary_association: Option<bool>,
    /// associationChange (newer payloads): source type id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_object_type_id: Option<String>,
    /// associationChange (newer payloads): target type id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_object_type_id: Option<String>,
    /// associationChange (newer payloads): type id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type_id: Option<u32>,
    /// associationChange (newer payloads): category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_category: Option<String>,
}

impl WebhookEvent {
    /// The event kind.
    pub fn kind(&self) -> EventKind {
        match self
            .subscription_type
            .rsplit_once('.')
            .map_or("", |(_, action)| action)
        {
            "creation" => EventKind::Creation,
            "deletion" => EventKind::Deletion,
            "propertyChange" => EventKind::PropertyChange,
            "merge" => EventKind::Merge,
            "restore" => EventKind::Restore,
            "associationChange" => EventKind::AssociationChange,
            "privacyDeletion" => EventKind::PrivacyDeletion,
            "newMessage" => EventKind::NewMessage,
            "completed" => EventKind::Completed,
            _ => EventKind::Other,
        }
    }

    /// The object the event is about: the subscription prefix (`contact`, `deal`, …), or the
    /// `objectTypeId` for generic `object.*` events.
    pub fn object(&self) -> &str {
        let prefix = self
            .subscription_type
            .split_once('.')
            .map_or(self.subscription_type.as_str(), |(p, _)| p);
        match (prefix, &self.object_type_id) {
            ("object", Some(type_id)) => type_id,
            _ => prefix,
        }
    }

    /// For merges, the record that survives: `newObjectId`, else `primaryObjectId`, else
    /// `objectId`.
    pub fn survivor_id(&self) -> Option<u64> {
        self.new_object_id
            .or(self.primary_object_id)
            .or(self.object_id)
    }
}

/// Parses a delivery body (a JSON array of events).
///
/// # Errors
/// The body is not an array of events.
pub fn parse_events(body: &[u8]) -> Result<Vec<WebhookEvent>, serde_json::Error> {
    serde_json::from_slice(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_shape_parses() {
        let body = br#"[
          {"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,
           "subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321},
          {"eventId":100,"subscriptionId":1234,"portalId":12345678,"appId":98765,"occurredAt":1711234567890,
           "subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,
           "propertyName":"lifecyclestage","propertyValue":"marketingqualifiedlead","changeSource":"CRM","sourceId":"userId:12345"},
          {"eventId":3,"occurredAt":1,"subscriptionType":"contact.merge","objectId":123,"primaryObjectId":123,
           "mergedObjectIds":[456,789],"newObjectId":999,"numberOfPropertiesMoved":4},
          {"eventId":4,"occurredAt":1,"subscriptionType":"company.associationChange","fromObjectId":1,"toObjectId":2,
           "associationType":"COMPANY_TO_CONTACT","associationRemoved":false,"isPrimaryAssociation":true,
           "fromObjectTypeId":"0-2","toObjectTypeId":"0-1","associationTypeId":280,"associationCategory":"HUBSPOT_DEFINED"},
          {"eventId":5,"occurredAt":1,"subscriptionType":"object.creation","objectTypeId":"2-123","objectId":"77"},
          {"eventId":6,"occurredAt":1,"subscriptionType":"contact.privacyDeletion","objectId":8},
          {"eventId":7,"occurredAt":1,"subscriptionType":"deal.deletion","objectId":9,"changeFlag":"DELETED"},
          {"eventId":8,"occurredAt":1,"subscriptionType":"ticket.restore","objectId":10},
          {"eventId":9,"occurredAt":1,"subscriptionType":"conversation.newMessage","objectId":11},
          {"eventId":10,"occurredAt":1,"subscriptionType":"event.completed"},
          {"eventId":11,"occurredAt":1,"subscriptionType":"line_item.brandNew","objectId":12}
        ]"#;
        let events = parse_events(body).expect("parses");
        let kinds: Vec<EventKind> = events.iter().map(WebhookEvent::kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::Creation,
                EventKind::PropertyChange,
                EventKind::Merge,
                EventKind::AssociationChange,
                EventKind::Creation,
                EventKind::PrivacyDeletion,
                EventKind::Deletion,
                EventKind::Restore,
                EventKind::NewMessage,
                EventKind::Completed,
                EventKind::Other,
            ]
        );
        assert_eq!(events[0].object(), "contact");
        assert_eq!(events[4].object(), "2-123");
        assert_eq!(events[4].object_id, Some(77));
        assert_eq!(events[2].survivor_id(), Some(999));
        assert_eq!(events[2].merged_object_ids, vec![456, 789]);
        assert_eq!(events[3].association_type_id, Some(280));
        assert_eq!(
            events[1].property_value.as_deref(),
            Some("marketingqualifiedlead")
        );
        assert_eq!(events[10].object(), "line_item");
    }
}
