//! The catalogue of HubSpot endpoints this client calls: a stable label for metrics and stats,
//! and the budget class each one spends (hubspot-api.md §3.1: search and association batch
//! endpoints are exempt from the 10-second bucket).

use crate::rate_limit::EndpointClass;

/// One kind of call: its metrics label and its budget class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Stable, low-cardinality label (`objects.list`).
    pub label: &'static str,
    /// Which budget it spends.
    pub class: EndpointClass,
}

const fn burst(label: &'static str) -> Endpoint {
    Endpoint {
        label,
        class: EndpointClass::Burst,
    }
}

impl Endpoint {
    /// `GET /crm/v3/objects/{type}`.
    pub const OBJECTS_LIST: Self = burst("objects.list");
    /// `GET /crm/v3/objects/{type}/{id}`.
    pub const OBJECTS_GET: Self = burst("objects.get");
    /// `POST /crm/v3/objects/{type}`.
    pub const OBJECTS_CREATE: Self = burst("objects.create");
    /// `PATCH /crm/v3/objects/{type}/{id}`.
    pub const OBJECTS_UPDATE: Self = burst("objects.update");
    /// `DELETE /crm/v3/objects/{type}/{id}`.
    pub const OBJECTS_ARCHIVE: Self = burst("objects.archive");
    /// `POST /crm/v3/objects/{type}/merge`.
    pub const OBJECTS_MERGE: Self = burst("objects.merge");
    /// `POST /crm/v3/objects/contacts/gdpr-delete`.
    pub const OBJECTS_GDPR_DELETE: Self = burst("objects.gdpr_delete");
    /// `POST …/batch/read`.
    pub const BATCH_READ: Self = burst("batch.read");
    /// `POST …/batch/create`.
    pub const BATCH_CREATE: Self = burst("batch.create");
    /// `POST …/batch/update`.
    pub const BATCH_UPDATE: Self = burst("batch.update");
    /// `POST …/batch/upsert`.
    pub const BATCH_UPSERT: Self = burst("batch.upsert");
    /// `POST …/batch/archive`.
    pub const BATCH_ARCHIVE: Self = burst("batch.archive");
    /// `POST /crm/v3/objects/{type}/search`.
    pub const SEARCH: Self = Self {
        label: "search",
        class: EndpointClass::Search,
    };
    /// `GET /crm/v3/properties/{type}`.
    pub const PROPERTIES_LIST: Self = burst("properties.list");
    /// `GET /crm/v3/properties/{type}/{name}`.
    pub const PROPERTIES_GET: Self = burst("properties.get");
    /// `POST /crm/v3/properties/{type}`.
    pub const PROPERTIES_CREATE: Self = burst("properties.create");
    /// `GET /crm/v3/properties/{type}/groups`.
    pub const PROPERTY_GROUPS_LIST: Self = burst("property_groups.list");
    /// `POST /crm/v3/properties/{type}/groups`.
    pub const PROPERTY_GROUPS_CREATE: Self = burst("property_groups.create");
    /// `GET /crm-object-schemas/v3/schemas`.
    pub const SCHEMAS_LIST: Self = burst("schemas.list");
    /// `GET /crm-object-schemas/v3/schemas/{type}`.
    pub const SCHEMAS_GET: Self = burst("schemas.get");
    /// `POST /crm-object-schemas/v3/schemas`.
    pub const SCHEMAS_CREATE: Self = burst("schemas.create");
    /// `GET /crm/v3/owners`.
    pub const OWNERS_LIST: Self = burst("owners.list");
    /// `GET /crm/v3/pipelines/{type}`.
    pub const PIPELINES_LIST: Self = burst("pipelines.list");
    /// `POST /crm/v4/associations/{from}/{to}/batch/read`.
    pub const ASSOCIATIONS_BATCH_READ: Self = Self {
        label: "associations.batch_read",
        class: EndpointClass::Exempt,
    };
    /// `POST /crm/v4/associations/{from}/{to}/batch/create`.
    pub const ASSOCIATIONS_BATCH_CREATE: Self = Self {
        label: "associations.batch_create",
        class: EndpointClass::Exempt,
    };
    /// `POST /crm/v4/associations/{from}/{to}/batch/associate/default`.
    pub const ASSOCIATIONS_BATCH_DEFAULT: Self = Self {
        label: "associations.batch_default",
        class: EndpointClass::Exempt,
    };
    /// `POST /crm/v4/associations/{from}/{to}/batch/archive` and `…/batch/labels/archive`.
    pub const ASSOCIATIONS_BATCH_ARCHIVE: Self = Self {
        label: "associations.batch_archive",
        class: EndpointClass::Exempt,
    };
    /// `GET|POST /crm/v4/associations/{from}/{to}/labels`.
    pub const ASSOCIATION_LABELS: Self = burst("associations.labels");
}
