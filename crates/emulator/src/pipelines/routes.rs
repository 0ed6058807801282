//! The pipelines API routes: pipelines and stages CRUD for deals and tickets.

use std::collections::BTreeMap;

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use super::{Pipeline, Pipelines, Stage};
use crate::{
    ApiError, AppState,
    payload::{parse_json, read_crm, scalar_text, timestamp_now, write_crm},
    state::{Crm, ObjectTypeId},
};

/// Pipeline routes (public API; the caller adds authentication).
pub fn routes() -> Router<AppState> {
    let base = "/crm/v3/pipelines/{object_type}";
    Router::new()
        .route(base, get(list).post(create))
        .route(
            &format!("{base}/{{pipeline_id}}"),
            get(read_one).patch(update).put(replace).delete(archive),
        )
        .route(
            &format!("{base}/{{pipeline_id}}/stages"),
            get(list_stages).post(create_stage),
        )
        .route(
            &format!("{base}/{{pipeline_id}}/stages/{{stage_id}}"),
            get(read_stage)
                .patch(update_stage)
                .put(replace_stage)
                .delete(archive_stage),
        )
}

/// Resolves the object type; only deals and tickets have pipelines.
fn pipeline_type(crm: &Crm, name: &str) -> Result<ObjectTypeId, ApiError> {
    match crm.resolve_type(name) {
        Some(t) if t == ObjectTypeId::DEAL || t == ObjectTypeId::TICKET => Ok(t),
        Some(_) => Err(ApiError::validation(format!(
            "Object type {name} does not have pipelines"
        ))),
        None => Err(ApiError::unknown_object_type(name)),
    }
}

fn pipeline_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Unable to find pipeline {id}")).with_context("pipelineId", [id])
}

fn stage_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Unable to find stage {id}")).with_context("stageId", [id])
}

/// An active pipeline of the object type named in the path.
fn active_pipeline<'a>(
    crm: &'a Crm,
    object_type: &str,
    pipeline_id: &str,
) -> Result<&'a Pipeline, ApiError> {
    let object_type = pipeline_type(crm, object_type)?;
    crm.pipelines
        .pipeline(object_type, pipeline_id)
        .ok_or_else(|| pipeline_not_found(pipeline_id))
}

/// An active pipeline of the object type named in the path, for editing.
fn active_pipeline_mut<'a>(
    crm: &'a mut Crm,
    object_type: &str,
    pipeline_id: &str,
) -> Result<&'a mut Pipeline, ApiError> {
    let object_type = pipeline_type(crm, object_type)?;
    find_mut(&mut crm.pipelines, object_type, pipeline_id)
}

fn find_mut<'a>(
    pipelines: &'a mut Pipelines,
    object_type: ObjectTypeId,
    id: &str,
) -> Result<&'a mut Pipeline, ApiError> {
    pipelines
        .pipelines_mut(object_type)
        .and_then(|list| list.iter_mut().find(|p| p.id == id && !p.archived))
        .ok_or_else(|| pipeline_not_found(id))
}

async fn list(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
) -> Result<Response, ApiError> {
    let crm = read_crm(&state);
    let object_type = pipeline_type(&crm, &object_type)?;
    let results: Vec<Value> = crm
        .pipelines
        .pipelines(object_type)
        .iter()
        .filter(|p| !p.archived)
        .map(Pipeline::to_json)
        .collect();
    Ok(axum::Json(json!({"results": results})).into_response())
}

async fn read_one(
    State(state): State<AppState>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let crm = read_crm(&state);
    let pipeline = active_pipeline(&crm, &object_type, &pipeline_id)?;
    Ok(axum::Json(pipeline.to_json()).into_response())
}

fn text_field(body: &Value, field: &str) -> Option<String> {
    body.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn order_field(body: &Value) -> Option<i64> {
    body.get("displayOrder").and_then(Value::as_i64)
}

/// `metadata` as strings (HubSpot stores every metadata value as a string).
fn metadata_field(body: &Value) -> BTreeMap<String, String> {
    body.get("metadata")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect())
        .unwrap_or_default()
}

/// `label`, which creation and PUT require.
fn required_label(body: &Value) -> Result<String, ApiError> {
    text_field(body, "label").ok_or_else(|| ApiError::validation("label is required"))
}

/// New stages from the body's `stages`, ordered as given unless they say otherwise.
fn new_stages(pipelines: &mut Pipelines, body: &Value) -> Result<Vec<Stage>, ApiError> {
    let inputs = body
        .get("stages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    inputs
        .enumerate()
        .map(|(n, input)| new_stage(pipelines, input, i64::try_from(n).unwrap_or(i64::MAX)))
        .collect()
}

fn new_stage(
    pipelines: &mut Pipelines,
    body: &Value,
    default_order: i64,
) -> Result<Stage, ApiError> {
    let label = required_label(body)?;
    let now = timestamp_now();
    Ok(Stage {
        id: pipelines.allocate_id(),
        label,
        display_order: order_field(body).unwrap_or(default_order),
        metadata: metadata_field(body),
        archived: false,
        created_at: now.clone(),
        updated_at: now,
    })
}

async fn create(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let label = required_label(&body)?;
    let mut crm = write_crm(&state);
    let object_type = pipeline_type(&crm, &object_type)?;
    let pipelines = &mut crm.pipelines;
    let stages = new_stages(pipelines, &body)?;
    let now = timestamp_now();
    let id = pipelines.allocate_id();
    let list = pipelines
        .pipelines_mut(object_type)
        .ok_or_else(|| pipeline_not_found(&id))?;
    let pipeline = Pipeline {
        id,
        label,
        display_order: order_field(&body).unwrap_or(i64::try_from(list.len()).unwrap_or(0)),
        archived: false,
        created_at: now.clone(),
        updated_at: now,
        stages,
    };
    let out = pipeline.to_json();
    list.push(pipeline);
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

async fn update(
    State(state): State<AppState>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let mut crm = write_crm(&state);
    let pipeline = active_pipeline_mut(&mut crm, &object_type, &pipeline_id)?;
    if let Some(label) = text_field(&body, "label") {
        pipeline.label = label;
    }
    if let Some(order) = order_field(&body) {
        pipeline.display_order = order;
    }
    pipeline.updated_at = timestamp_now();
    Ok(axum::Json(pipeline.to_json()).into_response())
}

/// PUT: label, order and stages replaced; the old stages are archived, the new ones get new ids.
async fn replace(
    State(state): State<AppState>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let label = required_label(&body)?;
    let mut crm = write_crm(&state);
    let object_type = pipeline_type(&crm, &object_type)?;
    find_mut(&mut crm.pipelines, object_type, &pipeline_id)?;
    let stages = new_stages(&mut crm.pipelines, &body)?;
    let pipeline = find_mut(&mut crm.pipelines, object_type, &pipeline_id)?;
    let now = timestamp_now();
    for old in &mut pipeline.stages {
        old.archived = true;
        old.updated_at.clone_from(&now);
    }
    pipeline.stages.extend(stages);
    pipeline.label = label;
    if let Some(order) = order_field(&body) {
        pipeline.display_order = order;
    }
    pipeline.updated_at = now;
    Ok(axum::Json(pipeline.to_json()).into_response())
}

async fn archive(
    State(state): State<AppState>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let pipeline = active_pipeline_mut(&mut crm, &object_type, &pipeline_id)?;
    pipeline.archived = true;
    pipeline.updated_at = timestamp_now();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_stages(
    State(state): State<AppState>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let crm = read_crm(&state);
    let pipeline = active_pipeline(&crm, &object_type, &pipeline_id)?;
    let results: Vec<Value> = pipeline
        .stages
        .iter()
        .filter(|s| !s.archived)
        .map(Stage::to_json)
        .collect();
    Ok(axum::Json(json!({"results": results})).into_response())
}

async fn read_stage(
    State(state): State<AppState>,
    Path((object_type, pipeline_id, stage_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let crm = read_crm(&state);
    let pipeline = active_pipeline(&crm, &object_type, &pipeline_id)?;
    let stage = pipeline
        .stages
        .iter()
        .find(|s| s.id == stage_id && !s.archived)
        .ok_or_else(|| stage_not_found(&stage_id))?;
    Ok(axum::Json(stage.to_json()).into_response())
}

async fn create_stage(
    State(state): State<AppState>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let mut crm = write_crm(&state);
    let object_type = pipeline_type(&crm, &object_type)?;
    let count = crm
        .pipelines
        .pipeline(object_type, &pipeline_id)
        .ok_or_else(|| pipeline_not_found(&pipeline_id))?
        .stages
        .len();
    let stage = new_stage(&mut crm.pipelines, &body, i64::try_from(count).unwrap_or(0))?;
    let out = stage.to_json();
    find_mut(&mut crm.pipelines, object_type, &pipeline_id)?
        .stages
        .push(stage);
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

fn stage_mut<'a>(pipeline: &'a mut Pipeline, stage_id: &str) -> Result<&'a mut Stage, ApiError> {
    pipeline
        .stages
        .iter_mut()
        .find(|s| s.id == stage_id && !s.archived)
        .ok_or_else(|| stage_not_found(stage_id))
}

async fn update_stage(
    state: State<AppState>,
    path: Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write_stage(state, path, &body, false)
}

async fn replace_stage(
    state: State<AppState>,
    path: Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write_stage(state, path, &body, true)
}

/// PATCH (`replace` false: only the given fields) or PUT (`replace` true: label required,
/// metadata replaced) of one stage.
fn write_stage(
    State(state): State<AppState>,
    Path((object_type, pipeline_id, stage_id)): Path<(String, String, String)>,
    body: &[u8],
    replace: bool,
) -> Result<Response, ApiError> {
    let body = parse_json(body)?;
    let label = text_field(&body, "label");
    if replace && label.is_none() {
        return Err(ApiError::validation("label is required"));
    }
    let mut crm = write_crm(&state);
    let pipeline = active_pipeline_mut(&mut crm, &object_type, &pipeline_id)?;
    let stage = stage_mut(pipeline, &stage_id)?;
    if let Some(label) = label {
        stage.label = label;
    }
    if let Some(order) = order_field(&body) {
        stage.display_order = order;
    }
    if replace || body.get("metadata").is_some() {
        stage.metadata = metadata_field(&body);
    }
    stage.updated_at = timestamp_now();
    Ok(axum::Json(stage.to_json()).into_response())
}

async fn archive_stage(
    State(state): State<AppState>,
    Path((object_type, pipeline_id, stage_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let pipeline = active_pipeline_mut(&mut crm, &object_type, &pipeline_id)?;
    let stage = stage_mut(pipeline, &stage_id)?;
    stage.archived = true;
    stage.updated_at = timestamp_now();
    Ok(StatusCode::NO_CONTENT.into_response())
}
