//! The domain event bus: every mutation of CRM data is published here as a [`CrmEvent`];
//! webhook delivery (and tests) subscribe to it.

use tokio::sync::broadcast;

use crate::state::ObjectTypeId;

/// Who made a change (webhook `changeSource`, hubspot-api.md §12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeSource {
    /// A HubSpot user in the CRM UI (the emulator's control API).
    CrmUi,
    /// An app through the public API (private-app or OAuth token).
    Integration,
    /// The emulator's own seeding (no events are published for it).
    Import,
}

impl ChangeSource {
    /// The wire string (`CRM_UI`, `INTEGRATION`, `IMPORT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrmUi => "CRM_UI",
            Self::Integration => "INTEGRATION",
            Self::Import => "IMPORT",
        }
    }
}

/// What happened to the object.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The record was created.
    Creation,
    /// The record was archived (or hard-deleted).
    Deletion,
    /// A contact was permanently deleted under GDPR (`contact.privacyDeletion`).
    PrivacyDeletion,
    /// One property changed; one event per changed property.
    PropertyChange {
        /// Internal property name.
        property_name: String,
        /// The new value as stored (empty string when cleared).
        property_value: String,
    },
    /// Records were merged; `object_id` of the event is the survivor.
    Merge {
        /// The record whose id was asked to survive.
        primary_object_id: u64,
        /// Every id merged into the survivor by this merge.
        merged_object_ids: Vec<u64>,
        /// The survivor's id after the merge.
        new_object_id: u64,
        /// How many property values moved from the loser to the survivor.
        number_of_properties_moved: u32,
    },
    /// An archived record was restored.
    Restore,
    /// An association was added or removed (published by the associations module).
    AssociationChange {
        /// Target object type.
        to_object_type_id: ObjectTypeId,
        /// Target record id.
        to_object_id: u64,
        /// Association type id (e.g. 279).
        association_type_id: u32,
        /// `HUBSPOT_DEFINED`, `USER_DEFINED`, `INTEGRATOR_DEFINED`.
        association_category: String,
        /// Legacy name such as `CONTACT_TO_COMPANY`.
        association_type: String,
        /// True when the association was removed.
        association_removed: bool,
        /// True for a primary association.
        is_primary_association: bool,
    },
}

/// One domain event.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmEvent {
    /// What happened.
    pub kind: EventKind,
    /// The object type (`0-1`, `2-123`…).
    pub object_type_id: ObjectTypeId,
    /// The record id (the "from" record for association changes).
    pub object_id: u64,
    /// When it happened, epoch milliseconds.
    pub occurred_at: i64,
    /// Who made the change.
    pub change_source: ChangeSource,
    /// `sourceId` (e.g. `userId:12345` for UI edits, the app id for integrations).
    pub source_id: Option<String>,
}

/// Broadcast bus of [`CrmEvent`]s. Cloning shares the bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<CrmEvent>,
}

/// How many events a slow subscriber may fall behind before it starts losing the oldest.
const BUS_CAPACITY: usize = 65_536;

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BUS_CAPACITY);
        Self { sender }
    }

    /// Publishes one event (dropped when nobody listens).
    pub fn publish(&self, event: CrmEvent) {
        let _ = self.sender.send(event);
    }

    /// Publishes several events in order.
    pub fn publish_all(&self, events: impl IntoIterator<Item = CrmEvent>) {
        for event in events {
            self.publish(event);
        }
    }

    /// A new receiver seeing every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CrmEvent> {
        self.sender.subscribe()
    }
}
