//! Pipelines and their stages (`/crm/v3/pipelines/{type}`): the options of `dealstage`,
//! `pipeline`, `hs_pipeline_stage` and other `externalOptions` enumerations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::pagination::Collection;

/// A pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    /// Id (`default` for the default deal pipeline).
    pub id: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Order.
    #[serde(default)]
    pub display_order: i64,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// Stages.
    #[serde(default)]
    pub stages: Vec<PipelineStage>,
}

/// A pipeline stage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStage {
    /// Id (the enumeration value).
    pub id: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Order.
    #[serde(default)]
    pub display_order: i64,
    /// String metadata (`isClosed`, `probability`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
}

impl HubSpotClient {
    /// The pipelines of `object_type` (`deals`, `tickets`, …).
    ///
    /// # Errors
    /// As for every call.
    pub async fn list_pipelines(&self, object_type: &str) -> Result<Vec<Pipeline>, HubSpotError> {
        let url = self.url(&["crm", "v3", "pipelines", object_type], &[]);
        let page: Collection<Pipeline> = self.get_json(Endpoint::PIPELINES_LIST, url).await?;
        Ok(page.results)
    }
}
