//! The association labels API (hubspot-api.md §11.5), served under both
//! `/crm/v4/associations/{from}/{to}/labels` (the SDKs' path) and
//! `/crm/associations/v4/{from}/{to}/labels` (the current spec's path) (§16.16).

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use serde_json::{Value, json};

use super::{
    AssociationCategory, AssociationKind,
    routes::{ensure_pair, resolve, singular, type_json},
};
use crate::{
    ApiError, AppState,
    payload::{parse_json, write_crm},
};

/// Label routes under both prefixes.
pub(super) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/crm/v4/associations", "/crm/associations/v4"] {
        router = router
            .route(
                &format!("{prefix}/{{from}}/{{to}}/labels"),
                get(list).post(create).put(update),
            )
            .route(
                &format!("{prefix}/{{from}}/{{to}}/labels/{{type_id}}"),
                delete(remove),
            );
    }
    router
}

async fn list(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let (from, to) = (resolve(&crm, &from_name)?, resolve(&crm, &to_name)?);
    ensure_pair(&mut crm, from, to);
    let store = &crm.associations;
    let results: Vec<Value> = store
        .definitions()
        .pair(from, to)
        .map(|d| type_json(store, d.kind))
        .collect();
    Ok(axum::Json(json!({"results": results})).into_response())
}

fn required_text<'a>(body: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::validation(format!("{field} is required")))
}

/// `inverseLabel`, when given and not empty (it makes a paired label).
fn inverse_label(body: &Value) -> Option<&str> {
    body.get("inverseLabel")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn create(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let label = required_text(&body, "label")?;
    let name = required_text(&body, "name")?;
    let inverse = inverse_label(&body);
    let mut crm = write_crm(&state);
    let (from, to) = (resolve(&crm, &from_name)?, resolve(&crm, &to_name)?);
    let taken = crm
        .associations
        .definitions()
        .pair(from, to)
        .any(|d| d.name == name);
    if taken {
        return Err(
            ApiError::conflict(format!("A label named '{name}' already exists."))
                .with_context("name", [name]),
        );
    }
    let names = (singular(&crm, from), singular(&crm, to));
    let kinds = crm.associations.definitions_mut().create_label(
        (from, to),
        (&names.0, &names.1),
        name,
        label,
        inverse,
    );
    let store = &crm.associations;
    let results: Vec<Value> = kinds.iter().map(|k| type_json(store, *k)).collect();
    Ok(axum::Json(json!({"results": results})).into_response())
}

fn user_kind(type_id: u64) -> Result<AssociationKind, ApiError> {
    u32::try_from(type_id)
        .map(|type_id| AssociationKind {
            category: AssociationCategory::UserDefined,
            type_id,
        })
        .map_err(|_| ApiError::validation(format!("{type_id} is not a valid association type id")))
}

async fn update(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let type_id = body
        .get("associationTypeId")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::validation("associationTypeId is required"))?;
    let label = required_text(&body, "label")?;
    let inverse = inverse_label(&body);
    let kind = user_kind(type_id)?;
    let mut crm = write_crm(&state);
    let (from, to) = (resolve(&crm, &from_name)?, resolve(&crm, &to_name)?);
    if !crm
        .associations
        .definitions_mut()
        .update_label(from, to, kind, label, inverse)
    {
        return Err(unknown_label(type_id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn unknown_label(type_id: u64) -> ApiError {
    ApiError::not_found(format!(
        "No user-defined association type with id {type_id}"
    ))
    .with_context("associationTypeId", [type_id.to_string()])
}

async fn remove(
    State(state): State<AppState>,
    Path((from_name, to_name, type_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let type_id: u64 = type_id.parse().map_err(|_| {
        ApiError::validation(format!("{type_id} is not a valid association type id"))
    })?;
    let kind = user_kind(type_id)?;
    let mut crm = write_crm(&state);
    let (from, to) = (resolve(&crm, &from_name)?, resolve(&crm, &to_name)?);
    let Some(removed) = crm
        .associations
        .definitions_mut()
        .delete_label(from, to, kind)
    else {
        return Err(unknown_label(type_id));
    };
    for kind in removed {
        crm.associations.remove_kind_everywhere(kind);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
