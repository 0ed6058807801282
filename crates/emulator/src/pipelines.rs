//! Deal and ticket pipelines with their stages (`/crm/v3/pipelines/{objectType}`).

/// The pipelines of the portal.
#[derive(Debug, Default)]
pub struct Pipelines {
    _private: (),
}

impl Pipelines {
    /// Whether `stage_id` is a stage of `pipeline_id` for `object_type` (`"0-3"`/`deals`,
    /// `"0-5"`/`tickets`). Validates `dealstage`/`pipeline`/`hs_pipeline_stage`.
    pub fn is_valid_stage(&self, object_type: &str, pipeline_id: &str, stage_id: &str) -> bool {
        let _ = (object_type, pipeline_id, stage_id);
        false
    }
}
