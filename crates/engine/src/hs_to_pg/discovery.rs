//! Property discovery: HubSpot's property definitions of an object → the store's
//! [`ObjectSpec`] → its table (created or evolved online by the store), and the list of
//! property names to request.
//!
//! Runs at the start of every pass, so a property added in HubSpot becomes a column on the
//! next pass without a restart (lessons.md 20). With an allowlist only the listed properties
//! are ever requested from HubSpot; listed names HubSpot does not know are reported once
//! per pass and skipped.

use hubsync_hubspot::HubSpotClient;
use hubsync_store::{
    Store,
    catalog::ensure_table,
    schema::{ObjectSpec, PropertySpec, TableMapping},
};

use super::error::{SyncError, on};
use super::records::requested_properties;
use crate::settings::{ObjectSettings, PropertySelection};

/// Everything a pass needs to know about one object.
#[derive(Debug, Clone)]
pub struct ObjectContext {
    /// The object's settings.
    pub settings: ObjectSettings,
    /// Its table and columns.
    pub mapping: TableMapping,
    /// The synced properties HubSpot defines (allowlist ∩ definitions).
    pub synced: Vec<String>,
    /// The property names sent to HubSpot when reading records.
    pub requested: Vec<String>,
    /// The client the records are read with (two-way merges read property history with it).
    pub hubspot: HubSpotClient,
}

impl ObjectContext {
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }
}

/// Objects that have a primary company (hubspot-api.md §11.6).
const HAS_PRIMARY_COMPANY: [&str; 3] = ["contacts", "deals", "tickets"];

/// The store's spec for `settings` given HubSpot's `definitions`; `companies_synced` says
/// whether the primary company column is wanted.
pub fn object_spec(
    settings: &ObjectSettings,
    definitions: Vec<PropertySpec>,
    companies_synced: bool,
) -> ObjectSpec {
    let properties: Vec<PropertySpec> = definitions
        .into_iter()
        .filter(|p| settings.properties.allows(&p.name))
        .filter(|p| p.name != crate::two_way::ROW_ID_PROPERTY)
        .collect();
    let mut spec = ObjectSpec::new(&settings.name, properties);
    if companies_synced && HAS_PRIMARY_COMPANY.contains(&settings.name.as_str()) {
        spec.primary_associations.push("companies".to_owned());
    }
    spec
}

/// Allowlisted names HubSpot does not define.
pub fn unknown_allowlisted(settings: &ObjectSettings, spec: &ObjectSpec) -> Vec<String> {
    match &settings.properties {
        PropertySelection::All | PropertySelection::AllExcept(_) => Vec::new(),
        PropertySelection::Only(names) => names
            .iter()
            .filter(|n| !spec.properties.iter().any(|p| &p.name == *n))
            .cloned()
            .collect(),
    }
}

/// Reads HubSpot's definitions for the object and creates or evolves its table.
///
/// # Errors
/// HubSpot or PostgreSQL failures; an object HubSpot does not know.
pub async fn discover(
    client: &HubSpotClient,
    store: &Store,
    schema: &str,
    settings: &ObjectSettings,
    companies_synced: bool,
) -> Result<ObjectContext, SyncError> {
    let object = settings.name.as_str();
    let definitions = fetch_definitions(client, object).await.map_err(|e| {
        if e.is_unknown_object_type() {
            SyncError::Setup(format!(
                "HubSpot has no object type {object:?} (use a standard object's plural name, \
                 such as contacts, or a custom object's name or object type id)"
            ))
        } else {
            on(object)(e)
        }
    })?;
    let spec = object_spec(settings, definitions, companies_synced);
    for name in unknown_allowlisted(settings, &spec) {
        tracing::warn!(object, property = %name, "configured property does not exist in HubSpot; skipped");
    }
    let mut conn = store.client().await.map_err(on(object))?;
    let mapping = ensure_table(&mut conn, schema, &spec)
        .await
        .map_err(on(object))?;
    let synced: Vec<String> = spec.properties.iter().map(|p| p.name.clone()).collect();
    let mut requested = requested_properties(&synced);
    if settings.direction.allows_from(crate::model::Side::Postgres) {
        // Links inbound copies to the rows that created them (crate::two_way::inbound).
        requested.push(crate::two_way::ROW_ID_PROPERTY.to_owned());
    }
    Ok(ObjectContext {
        settings: settings.clone(),
        mapping,
        synced,
        requested,
        hubspot: client.clone(),
    })
}

/// HubSpot's (non-archived) property definitions of `object`, in the store's model.
///
/// # Errors
/// The client's error.
pub async fn fetch_definitions(
    client: &HubSpotClient,
    object: &str,
) -> Result<Vec<PropertySpec>, hubsync_hubspot::HubSpotError> {
    let properties = client.list_properties(object, false).await?;
    Ok(properties
        .into_iter()
        .map(|p| PropertySpec {
            read_only: p.is_read_only(),
            name: p.name,
            label: p.label,
            hs_type: p.kind,
            field_type: p.field_type,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Vec<PropertySpec> {
        vec![
            PropertySpec::new("email", "Email", "string", "text"),
            PropertySpec::new("phone", "Phone", "string", "phonenumber"),
        ]
    }

    #[test]
    fn allowlist_limits_the_spec_and_unknown_names_are_reported() {
        let mut s = ObjectSettings::new("contacts");
        s.properties = PropertySelection::Only(["email".to_owned(), "nope".to_owned()].into());
        let spec = object_spec(&s, defs(), true);
        assert_eq!(spec.properties.len(), 1);
        assert_eq!(spec.primary_associations, vec!["companies".to_owned()]);
        assert_eq!(unknown_allowlisted(&s, &spec), vec!["nope".to_owned()]);
    }

    #[test]
    fn companies_have_no_primary_company() {
        let s = ObjectSettings::new("companies");
        let spec = object_spec(&s, defs(), true);
        assert!(spec.primary_associations.is_empty());
        assert_eq!(spec.properties.len(), 2);
        let contacts = object_spec(&ObjectSettings::new("contacts"), defs(), false);
        assert!(contacts.primary_associations.is_empty());
    }
}
