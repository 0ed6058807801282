//! The v3 association endpoints some connectors still call (hubspot-api.md §11.4, last
//! paragraph): `/crm/v3/associations/{from}/{to}/batch/{read,create,archive}` and
//! `GET /crm/v3/associations/{from}/{to}/types`. v3 names types by string
//! (`contact_to_company`) and gives ids as strings.

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use super::batch::{
    batch_write, batch_write_answer, endpoints, no_associations, object_ref, read_each,
};
use super::routes::{association_error, ensure_pair, parse_id, resolve};
use crate::{
    ApiError, AppState,
    payload::{scalar_text, write_crm},
    state::ObjectTypeId,
};

/// Most inputs accepted by v3 batch read.
const MAX_V3_READ: usize = 1000;

/// v3 association routes (public API; the caller adds authentication).
pub(super) fn routes() -> Router<AppState> {
    let base = "/crm/v3/associations/{from}/{to}";
    Router::new()
        .route(&format!("{base}/types"), get(types))
        .route(&format!("{base}/batch/read"), post(read))
        .route(&format!("{base}/batch/create"), post(create))
        .route(&format!("{base}/batch/archive"), post(archive))
}

async fn types(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let (from, to) = (resolve(&crm, &from_name)?, resolve(&crm, &to_name)?);
    ensure_pair(&mut crm, from, to);
    let results: Vec<Value> = crm
        .associations
        .definitions()
        .pair(from, to)
        .map(|d| json!({"id": d.kind.type_id.to_string(), "name": d.name}))
        .collect();
    Ok(axum::Json(json!({"results": results})).into_response())
}

async fn read(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    read_each(
        &state,
        (&from_name, &to_name),
        &body,
        MAX_V3_READ,
        |crm, (from, to), id, _| {
            let refs = crm.associations.expand_v3(from, id, to);
            if refs.is_empty() {
                return Err(no_associations(crm, (from, id), to));
            }
            let targets: Vec<Value> = refs
                .iter()
                .map(|r| json!({"id": r.id.to_string(), "type": r.type_name}))
                .collect();
            Ok(json!({"from": {"id": id.to_string()}, "to": targets}))
        },
    )
}

/// The kind named by a v3 input's `type`.
fn input_kind(
    crm: &crate::state::Crm,
    (from, to): (ObjectTypeId, ObjectTypeId),
    item: &Value,
) -> Result<super::AssociationKind, ApiError> {
    let name = item.get("type").and_then(Value::as_str).unwrap_or_default();
    crm.associations
        .definitions()
        .by_name(from, to, name)
        .ok_or_else(|| ApiError::validation(format!("{name} is not a valid association type")))
}

async fn create(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    batch_write_answer(
        &state,
        (&from_name, &to_name),
        &body,
        StatusCode::CREATED,
        &mut |crm, pair, item| {
            let (from_id, to_id) = endpoints(crm, pair, item)?;
            let kind = input_kind(crm, pair, item)?;
            let changes = crm
                .associations
                .associate((pair.0, from_id), (pair.1, to_id), &[kind])
                .map_err(|e| association_error(&e))?;
            let name = crm
                .associations
                .definitions()
                .get(kind)
                .map(|d| d.name.clone());
            let result = json!({"from": {"id": from_id.to_string()},
                "to": {"id": to_id.to_string()}, "type": name});
            Ok((vec![result], changes))
        },
    )
}

async fn archive(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    batch_write(
        &state,
        (&from_name, &to_name),
        &body,
        &mut |crm, pair, item| {
            let from_id = object_ref(item.get("from"))?;
            let to_id = parse_id(&item.pointer("/to/id").map(scalar_text).unwrap_or_default())?;
            // v3 has no labels: archiving removes the whole link, whatever `type` says.
            let changes = crm
                .associations
                .remove_pair((pair.0, from_id), (pair.1, to_id));
            Ok((Vec::new(), changes))
        },
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
