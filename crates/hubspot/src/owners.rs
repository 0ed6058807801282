//! Owners (`/crm/v3/owners`): the users `hubspot_owner_id` points to, needed to validate owner
//! writes (hubspot-api.md §13).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::pagination::Collection;
use crate::wire;

/// An owner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// Owner id (the value of `hubspot_owner_id`).
    #[serde(deserialize_with = "wire::id", serialize_with = "wire::id_as_string")]
    pub id: u64,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// The HubSpot user id.
    #[serde(
        default,
        deserialize_with = "wire::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<u64>,
    /// Archived (deactivated).
    #[serde(default)]
    pub archived: bool,
    /// Created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl HubSpotClient {
    /// Every owner (follows paging, 100 per call).
    ///
    /// # Errors
    /// As for every call.
    pub async fn list_owners(&self, archived: bool) -> Result<Vec<Owner>, HubSpotError> {
        let mut owners = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("limit", "100")];
            if archived {
                query.push(("archived", "true"));
            }
            if let Some(a) = &after {
                query.push(("after", a));
            }
            let url = self.url(&["crm", "v3", "owners"], &query);
            let page: Collection<Owner> = self.get_json(Endpoint::OWNERS_LIST, url).await?;
            after = page.next_after();
            owners.extend(page.results);
            if after.is_none() {
                return Ok(owners);
            }
        }
    }
}
