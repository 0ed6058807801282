//! Control routes that change data as a HubSpot user would in the UI (events carry the
//! `CRM_UI` change source): edit, create and restore records.

use axum::{
    Json, Router,
    extract::{Path, State},
    response::Response,
    routing::post,
};
use serde_json::Value;

use super::objects::{CreateInput, UpdateInput, create_as, table, update_as, written_json};
use super::{Body, resolve};
use crate::{AppState, error::ApiError, payload::write_crm, writes::Writer};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/objects/{object_type}", post(create))
        .route("/_emulator/objects/{object_type}/{object_id}", post(edit))
        .route(
            "/_emulator/objects/{object_type}/{object_id}/restore",
            post(restore),
        )
}

async fn edit(
    State(state): State<AppState>,
    Path((object_type, object_id)): Path<(String, String)>,
    Body(input): Body<UpdateInput>,
) -> Result<Json<Value>, ApiError> {
    update_as(
        &state,
        &object_type,
        &object_id,
        None,
        &input.properties,
        Writer::USER,
    )
}

async fn create(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<CreateInput>,
) -> Result<Response, ApiError> {
    create_as(&state, &object_type, &input, Writer::USER)
}

async fn restore(
    State(state): State<AppState>,
    Path((object_type, object_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (body, events) = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        let id = object_id
            .parse::<u64>()
            .map_err(|_| ApiError::record_not_found(&object_id))?;
        let (record, events) = crm.restore_record(ty, id, Writer::USER)?;
        (written_json(&crm, table(&crm, ty)?, &record), events)
    };
    state.events.publish_all(events);
    Ok(Json(body))
}
