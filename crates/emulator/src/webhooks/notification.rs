//! From domain events to HubSpot event notifications (hubspot-api.md §12.2–12.3): which
//! subscriptions an event matches, and the JSON object delivered for each match. Ids are JSON
//! numbers (§16.1).

use serde_json::{Map, Value, json};

use super::{Subscription, Webhooks};
use crate::{
    events::{CrmEvent, EventKind},
    state::ObjectTypeId,
};

/// The legacy event-type prefix of an object type (`contact`, `company`, …), if it has one;
/// other types (custom objects) use generic `object.*` event types.
pub fn event_type_prefix(object_type: ObjectTypeId) -> Option<&'static str> {
    if object_type.meta != 0 {
        return None;
    }
    match object_type.number {
        1 => Some("contact"),
        2 => Some("company"),
        3 => Some("deal"),
        5 => Some("ticket"),
        7 => Some("product"),
        8 => Some("line_item"),
        _ => None,
    }
}

/// The event-type suffix of a kind.
fn kind_suffix(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Creation => "creation",
        EventKind::Deletion => "deletion",
        EventKind::PrivacyDeletion => "privacyDeletion",
        EventKind::PropertyChange { .. } => "propertyChange",
        EventKind::Merge { .. } => "merge",
        EventKind::Restore => "restore",
        EventKind::AssociationChange { .. } => "associationChange",
    }
}

/// Whether `sub` wants `event`.
fn matches(sub: &Subscription, event: &CrmEvent) -> bool {
    if !sub.active {
        return false;
    }
    let suffix = kind_suffix(&event.kind);
    let type_matches = match event_type_prefix(event.object_type_id) {
        Some(prefix) => {
            sub.event_type
                .strip_prefix(prefix)
                .and_then(|s| s.strip_prefix('.'))
                == Some(suffix)
                || (sub.event_type.strip_prefix("object.") == Some(suffix)
                    && sub.object_type_id.as_deref()
                        == Some(event.object_type_id.to_string().as_str()))
        }
        None => {
            sub.event_type.strip_prefix("object.") == Some(suffix)
                && sub
                    .object_type_id
                    .as_deref()
                    .is_none_or(|t| t == event.object_type_id.to_string())
        }
    };
    if !type_matches {
        return false;
    }
    match (&event.kind, &sub.property_name) {
        (EventKind::PropertyChange { property_name, .. }, Some(wanted)) => property_name == wanted,
        _ => true,
    }
}

/// The notifications for one event: one per matching subscription, each with its own
/// `eventId` and `attemptNumber` 0.
pub(super) fn notifications(webhooks: &Webhooks, event: &CrmEvent) -> Vec<Map<String, Value>> {
    let app_id = webhooks.settings().app_id;
    webhooks
        .subscriptions()
        .iter()
        .filter(|sub| matches(sub, event))
        .map(|sub| build(webhooks, app_id, sub, event))
        .collect()
}

fn build(
    webhooks: &Webhooks,
    app_id: u64,
    sub: &Subscription,
    event: &CrmEvent,
) -> Map<String, Value> {
    let mut n = Map::new();
    n.insert("eventId".into(), json!(webhooks.allocate_event_id()));
    n.insert("subscriptionId".into(), json!(sub.id));
    n.insert("portalId".into(), json!(webhooks.portal_id));
    n.insert("appId".into(), json!(app_id));
    n.insert("occurredAt".into(), json!(event.occurred_at));
    n.insert("subscriptionType".into(), json!(sub.event_type));
    n.insert("attemptNumber".into(), json!(0));
    n.insert("objectId".into(), json!(event.object_id));
    n.insert("changeSource".into(), json!(event.change_source.as_str()));
    if let Some(source_id) = &event.source_id {
        n.insert("sourceId".into(), json!(source_id));
    }
    if sub.event_type.starts_with("object.") {
        n.insert(
            "objectTypeId".into(),
            json!(event.object_type_id.to_string()),
        );
    }
    match &event.kind {
        EventKind::Creation => {
            n.insert("changeFlag".into(), json!("NEW"));
        }
        EventKind::Deletion => {
            n.insert("changeFlag".into(), json!("DELETED"));
        }
        EventKind::PropertyChange {
            property_name,
            property_value,
        } => {
            n.insert("propertyName".into(), json!(property_name));
            n.insert("propertyValue".into(), json!(property_value));
        }
        EventKind::Merge {
            primary_object_id,
            merged_object_ids,
            new_object_id,
            number_of_properties_moved,
        } => {
            n.insert("primaryObjectId".into(), json!(primary_object_id));
            n.insert("mergedObjectIds".into(), json!(merged_object_ids));
            n.insert("newObjectId".into(), json!(new_object_id));
            n.insert(
                "numberOfPropertiesMoved".into(),
                json!(number_of_properties_moved),
            );
        }
        EventKind::AssociationChange {
            to_object_type_id,
            to_object_id,
            association_type_id,
            association_category,
            association_type,
            association_removed,
            is_primary_association,
        } => {
            // Legacy names drop the `_UNLABELED` suffix; primary-ness is its own flag.
            let legacy = association_type.trim_end_matches("_UNLABELED");
            n.insert("fromObjectId".into(), json!(event.object_id));
            n.insert("toObjectId".into(), json!(to_object_id));
            n.insert(
                "fromObjectTypeId".into(),
                json!(event.object_type_id.to_string()),
            );
            n.insert(
                "toObjectTypeId".into(),
                json!(to_object_type_id.to_string()),
            );
            n.insert("associationType".into(), json!(legacy));
            n.insert("associationTypeId".into(), json!(association_type_id));
            n.insert("associationCategory".into(), json!(association_category));
            n.insert("associationRemoved".into(), json!(association_removed));
            n.insert("isPrimaryAssociation".into(), json!(is_primary_association));
        }
        EventKind::Restore | EventKind::PrivacyDeletion => {}
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmulatorConfig, events::ChangeSource};

    fn event(object_type: ObjectTypeId, kind: EventKind) -> CrmEvent {
        CrmEvent {
            kind,
            object_type_id: object_type,
            object_id: 42,
            occurred_at: 1_700_000_000_000,
            change_source: ChangeSource::Integration,
            source_id: None,
        }
    }

    fn change(name: &str) -> EventKind {
        EventKind::PropertyChange {
            property_name: name.into(),
            property_value: "x".into(),
        }
    }

    #[test]
    fn default_subscriptions_give_one_notification_per_event() {
        let w = Webhooks::new(&EmulatorConfig::default());
        let n = notifications(&w, &event(ObjectTypeId::CONTACT, change("email")));
        assert_eq!(n.len(), 1);
        assert_eq!(
            n[0].get("subscriptionType"),
            Some(&json!("contact.propertyChange"))
        );
        assert_eq!(n[0].get("objectId"), Some(&json!(42)));
        assert_eq!(n[0].get("propertyValue"), Some(&json!("x")));
        assert_eq!(n[0].get("changeSource"), Some(&json!("INTEGRATION")));
        let custom = ObjectTypeId {
            meta: 2,
            number: 77,
        };
        let n = notifications(&w, &event(custom, EventKind::Creation));
        assert_eq!(n.len(), 1);
        assert_eq!(
            n[0].get("subscriptionType"),
            Some(&json!("object.creation"))
        );
        assert_eq!(n[0].get("objectTypeId"), Some(&json!("2-77")));
    }

    #[test]
    fn property_subscriptions_filter_by_name() {
        let sub = Subscription {
            id: 9,
            event_type: "contact.propertyChange".into(),
            property_name: Some("email".into()),
            object_type_id: None,
            active: true,
            created_at: String::new(),
            updated_at: String::new(),
        };
        assert!(matches(
            &sub,
            &event(ObjectTypeId::CONTACT, change("email"))
        ));
        assert!(!matches(
            &sub,
            &event(ObjectTypeId::CONTACT, change("phone"))
        ));
        assert!(!matches(
            &sub,
            &event(ObjectTypeId::COMPANY, change("email"))
        ));
        let inactive = Subscription {
            active: false,
            ..sub
        };
        assert!(!matches(
            &inactive,
            &event(ObjectTypeId::CONTACT, change("email"))
        ));
    }

    #[test]
    fn association_changes_carry_both_ends() {
        let w = Webhooks::new(&EmulatorConfig::default());
        let kind = EventKind::AssociationChange {
            to_object_type_id: ObjectTypeId::COMPANY,
            to_object_id: 7,
            association_type_id: 279,
            association_category: "HUBSPOT_DEFINED".into(),
            association_type: "CONTACT_TO_COMPANY_UNLABELED".into(),
            association_removed: false,
            is_primary_association: false,
        };
        let n = notifications(&w, &event(ObjectTypeId::CONTACT, kind));
        assert_eq!(n.len(), 1);
        assert_eq!(
            n[0].get("associationType"),
            Some(&json!("CONTACT_TO_COMPANY"))
        );
        assert_eq!(n[0].get("toObjectId"), Some(&json!(7)));
        assert_eq!(n[0].get("fromObjectId"), Some(&json!(42)));
    }
}
