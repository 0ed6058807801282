//! The legacy properties listing existing connectors still call:
//! `GET /properties/v2/{objectType}/properties` (and the v1 contacts/companies/deals forms),
//! answered as a bare JSON array in the v2 shape.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use serde_json::Value;

use super::resolve;
use crate::{AppState, error::ApiError, payload::read_crm};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/properties/v2/{object_type}/properties", get(list))
        .route("/properties/v1/{object_type}/properties", get(list))
}

async fn list(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let crm = read_crm(&state);
    let ty = resolve(&crm, &object_type)?;
    let table = crm
        .table(ty)
        .ok_or_else(|| ApiError::unknown_object_type(&object_type))?;
    let list: Vec<Value> = table
        .props
        .iter()
        .filter(|(_, d)| !d.archived)
        .map(|(_, d)| d.to_v2_json())
        .collect();
    Ok(Json(Value::Array(list)))
}
