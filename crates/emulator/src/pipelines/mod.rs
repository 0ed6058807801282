//! Deal and ticket pipelines with their stages (`/crm/v3/pipelines/{objectType}`,
//! hubspot-api.md §13). Every portal starts with HubSpot's default sales pipeline (`default`)
//! and support pipeline (`0`); more can be created over the API or seeded.

// Route helpers return `Result<_, ApiError>` like every handler; the error is the response.
#![allow(clippy::result_large_err)]

mod routes;

pub use routes::routes;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{payload::timestamp_now, state::ObjectTypeId};

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Stage id (the value of `dealstage` / `hs_pipeline_stage`).
    pub id: String,
    /// Display label.
    pub label: String,
    /// Position in the pipeline.
    pub display_order: i64,
    /// `isClosed`, `probability` (deals), `ticketState` (tickets): all strings.
    pub metadata: BTreeMap<String, String>,
    /// Archived stages are hidden and no longer valid for writes.
    pub archived: bool,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
}

/// One pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Pipeline id (the value of `pipeline` / `hs_pipeline`).
    pub id: String,
    /// Display label.
    pub label: String,
    /// Position among the pipelines.
    pub display_order: i64,
    /// Archived pipelines are hidden and no longer valid for writes.
    pub archived: bool,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// The stages, in display order.
    pub stages: Vec<Stage>,
}

/// When the default pipelines were "created".
const PORTAL_CREATED: &str = "2020-01-01T00:00:00.000Z";

fn stage(id: &str, label: &str, order: i64, metadata: &[(&str, &str)]) -> Stage {
    Stage {
        id: id.to_owned(),
        label: label.to_owned(),
        display_order: order,
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        archived: false,
        created_at: PORTAL_CREATED.to_owned(),
        updated_at: PORTAL_CREATED.to_owned(),
    }
}

fn deal_stage(id: &str, label: &str, order: i64, probability: &str) -> Stage {
    let closed = if probability == "1.0" || probability == "0.0" {
        "true"
    } else {
        "false"
    };
    stage(
        id,
        label,
        order,
        &[("isClosed", closed), ("probability", probability)],
    )
}

fn ticket_stage(id: &str, label: &str, order: i64, state: &str) -> Stage {
    let closed = if state == "CLOSED" { "true" } else { "false" };
    stage(
        id,
        label,
        order,
        &[("isClosed", closed), ("ticketState", state)],
    )
}

fn pipeline(id: &str, label: &str, order: i64, stages: Vec<Stage>) -> Pipeline {
    Pipeline {
        id: id.to_owned(),
        label: label.to_owned(),
        display_order: order,
        archived: false,
        created_at: PORTAL_CREATED.to_owned(),
        updated_at: PORTAL_CREATED.to_owned(),
        stages,
    }
}

/// The pipelines of the portal.
#[derive(Debug, Clone)]
pub struct Pipelines {
    deals: Vec<Pipeline>,
    tickets: Vec<Pipeline>,
    next_id: u64,
}

impl Default for Pipelines {
    fn default() -> Self {
        let sales = pipeline(
            "default",
            "Sales Pipeline",
            0,
            vec![
                deal_stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2"),
                deal_stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4"),
                deal_stage("presentationscheduled", "Presentation Scheduled", 2, "0.6"),
                deal_stage(
                    "decisionmakerboughtin",
                    "Decision Maker Bought-In",
                    3,
                    "0.8",
                ),
                deal_stage("contractsent", "Contract Sent", 4, "0.9"),
                deal_stage("closedwon", "Closed Won", 5, "1.0"),
                deal_stage("closedlost", "Closed Lost", 6, "0.0"),
            ],
        );
        let support = pipeline(
            "0",
            "Support Pipeline",
            0,
            vec![
                ticket_stage("1", "New", 0, "OPEN"),
                ticket_stage("2", "Waiting on contact", 1, "OPEN"),
                ticket_stage("3", "Waiting on us", 2, "OPEN"),
                ticket_stage("4", "Closed", 3, "CLOSED"),
            ],
        );
        Self {
            deals: vec![sales],
            tickets: vec![support],
            next_id: 1_000_001,
        }
    }
}

impl Pipelines {
    /// The pipelines of `object_type` (deals or tickets), archived ones included.
    pub fn pipelines(&self, object_type: ObjectTypeId) -> &[Pipeline] {
        match object_type {
            ObjectTypeId::DEAL => &self.deals,
            ObjectTypeId::TICKET => &self.tickets,
            _ => &[],
        }
    }

    fn pipelines_mut(&mut self, object_type: ObjectTypeId) -> Option<&mut Vec<Pipeline>> {
        match object_type {
            ObjectTypeId::DEAL => Some(&mut self.deals),
            ObjectTypeId::TICKET => Some(&mut self.tickets),
            _ => None,
        }
    }

    /// An active pipeline by id.
    pub fn pipeline(&self, object_type: ObjectTypeId, pipeline_id: &str) -> Option<&Pipeline> {
        self.pipelines(object_type)
            .iter()
            .find(|p| p.id == pipeline_id && !p.archived)
    }

    /// Whether `pipeline_id` is an active pipeline of `object_type`.
    pub fn has_pipeline(&self, object_type: ObjectTypeId, pipeline_id: &str) -> bool {
        self.pipeline(object_type, pipeline_id).is_some()
    }

    /// Whether `stage_id` is an active stage of `pipeline_id` for `object_type` (deals,
    /// tickets). Validates `dealstage`/`pipeline`/`hs_pipeline_stage`.
    pub fn is_valid_stage(
        &self,
        object_type: ObjectTypeId,
        pipeline_id: &str,
        stage_id: &str,
    ) -> bool {
        self.pipeline(object_type, pipeline_id)
            .is_some_and(|p| p.stages.iter().any(|s| s.id == stage_id && !s.archived))
    }

    /// Whether `stage_id` is an active stage of any active pipeline of `object_type` (for writes
    /// that name a stage without a pipeline).
    pub fn is_known_stage(&self, object_type: ObjectTypeId, stage_id: &str) -> bool {
        self.pipelines(object_type)
            .iter()
            .filter(|p| !p.archived)
            .any(|p| p.stages.iter().any(|s| s.id == stage_id && !s.archived))
    }

    /// A fresh numeric id for a created pipeline or stage.
    fn allocate_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        id.to_string()
    }

    /// Adds a pipeline (seeding); its id is generated. Returns the id, or `None` when the
    /// object type has no pipelines.
    pub fn add(
        &mut self,
        object_type: ObjectTypeId,
        label: &str,
        stages: &[(&str, BTreeMap<String, String>)],
    ) -> Option<String> {
        let id = self.allocate_id();
        let now = timestamp_now();
        let mut built = Vec::new();
        for (order, (stage_label, metadata)) in stages.iter().enumerate() {
            built.push(Stage {
                id: self.allocate_id(),
                label: (*stage_label).to_owned(),
                display_order: i64::try_from(order).unwrap_or(i64::MAX),
                metadata: metadata.clone(),
                archived: false,
                created_at: now.clone(),
                updated_at: now.clone(),
            });
        }
        let list = self.pipelines_mut(object_type)?;
        let order = i64::try_from(list.len()).unwrap_or(i64::MAX);
        list.push(Pipeline {
            id: id.clone(),
            label: label.to_owned(),
            display_order: order,
            archived: false,
            created_at: now.clone(),
            updated_at: now,
            stages: built,
        });
        Some(id)
    }
}

impl Stage {
    /// The stage as the pipelines API returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "metadata": self.metadata,
            "archived": self.archived,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        })
    }
}

impl Pipeline {
    /// The pipeline (with its active stages) as the pipelines API returns it.
    pub fn to_json(&self) -> Value {
        let stages: Vec<Value> = self
            .stages
            .iter()
            .filter(|s| !s.archived)
            .map(Stage::to_json)
            .collect();
        json!({
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "stages": stages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pipelines_validate_stages() {
        let p = Pipelines::default();
        assert!(p.is_valid_stage(ObjectTypeId::DEAL, "default", "closedwon"));
        assert!(!p.is_valid_stage(ObjectTypeId::DEAL, "default", "1"));
        assert!(p.is_valid_stage(ObjectTypeId::TICKET, "0", "4"));
        assert!(!p.is_valid_stage(ObjectTypeId::CONTACT, "default", "closedwon"));
        assert!(p.is_known_stage(ObjectTypeId::DEAL, "contractsent"));
    }

    #[test]
    fn added_pipelines_get_numeric_ids() {
        let mut p = Pipelines::default();
        let id = p.add(ObjectTypeId::DEAL, "Renewals", &[("Open", BTreeMap::new())]);
        let Some(id) = id else {
            panic!("deals have pipelines")
        };
        let stage_id = p
            .pipeline(ObjectTypeId::DEAL, &id)
            .map(|x| x.stages[0].id.clone());
        assert!(id.parse::<u64>().is_ok());
        assert!(p.is_valid_stage(ObjectTypeId::DEAL, &id, &stage_id.unwrap_or_default()));
        assert!(p.add(ObjectTypeId::CONTACT, "x", &[]).is_none());
    }
}
