//! The legacy properties listing existing connectors still call:
//! `GET /properties/v2/{objectType}/properties` (and the v1 contacts/companies/deals forms),
//! answered as a bare JSON array in the v2 shape. It also answers for the two property scopes
//! HubSpot's legacy listing serves that are not object types here (deal splits and forms), which
//! Airbyte's `source-hubspot` reads during `discover` and treats a 400 on as fatal.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use serde_json::Value;

use super::resolve;
use crate::properties::{PropType, PropertyDef};
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
    if crm.resolve_type(&object_type).is_none()
        && let Some(list) = scope_only(&object_type)
    {
        return Ok(Json(list));
    }
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

/// The listing for a legacy property scope that has no object type in the emulator (deal splits,
/// forms): the system properties every HubSpot object has. Never empty: Airbyte's schema loader
/// turns an empty array into a nameless property and fails. `None` for any other name.
fn scope_only(name: &str) -> Option<Value> {
    let group = match name.to_ascii_lowercase().as_str() {
        "deal_split" | "deal_splits" => "dealsplitinformation",
        "form" | "forms" => "forminformation",
        _ => return None,
    };
    let defs = [
        ("hs_object_id", "Record ID", PropType::Number, "number"),
        ("hs_createdate", "Create Date", PropType::Datetime, "date"),
        (
            "hs_lastmodifieddate",
            "Last Modified Date",
            PropType::Datetime,
            "date",
        ),
    ];
    let list = defs
        .into_iter()
        .map(|(name, label, prop_type, field)| {
            PropertyDef::builtin(name, label, prop_type, field, group)
                .read_only()
                .to_v2_json()
        })
        .collect();
    Some(Value::Array(list))
}
