//! The v4 association batch endpoints (hubspot-api.md §11.4):
//! `/crm/v4/associations/{from}/{to}/batch/{read,create,associate/default,archive,labels/archive}`.
//! Batch read reports a record without associations as a 207 error item (§16.4).

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::AssociationChange;
use super::routes::{
    MAX_BATCH_READ, MAX_BATCH_WRITE, MAX_PAGE, association_error, check_exists, decode_after,
    default_result, ensure_pair, labels_between, page, parse_id, parse_kinds, publish, resolve,
    singular,
};
use crate::{
    ApiError, AppState,
    payload::{batch_response, parse_json, read_crm, scalar_text, timestamp_now, write_crm},
    state::{Crm, ObjectTypeId},
};

/// `{"inputs": [...]}` with a size check.
pub(super) fn inputs(body: &Bytes, max: usize) -> Result<Vec<Value>, ApiError> {
    let value = parse_json(body)?;
    let Some(Value::Array(items)) = value.get("inputs").cloned() else {
        return Err(ApiError::validation(
            "Invalid input JSON: inputs is required",
        ));
    };
    if items.len() > max {
        return Err(ApiError::validation(format!(
            "Too many inputs: {} (the limit is {max})",
            items.len()
        )));
    }
    Ok(items)
}

/// The id inside `{"id": "1"}` (string or number).
pub(super) fn object_ref(value: Option<&Value>) -> Result<u64, ApiError> {
    let raw = value.and_then(|v| v.get("id")).unwrap_or(&Value::Null);
    parse_id(&scalar_text(raw))
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    read_each(
        &state,
        (&from_name, &to_name),
        &body,
        MAX_BATCH_READ,
        |crm, (from, to), id, item| {
            let after = item
                .get("after")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty());
            let after = after.map(decode_after).transpose()?;
            let (targets, next) = page(&crm.associations, (from, id), to, after, MAX_PAGE);
            if targets.is_empty() {
                return Err(no_associations(crm, (from, id), to));
            }
            let mut result = json!({"from": {"id": id.to_string()}, "to": targets});
            if let Some(after) = next {
                result["paging"] = json!({"next": {"after": after}});
            }
            Ok(result)
        },
    )
}

/// A batch read: answers each input's id with `read_one`'s result or error item (200, or
/// 207 when any input failed).
pub(super) fn read_each<F>(
    state: &AppState,
    (from_name, to_name): (&str, &str),
    body: &Bytes,
    max: usize,
    read_one: F,
) -> Result<Response, ApiError>
where
    F: Fn(&Crm, (ObjectTypeId, ObjectTypeId), u64, &Value) -> Result<Value, ApiError>,
{
    let started = timestamp_now();
    let items = inputs(body, max)?;
    let crm = read_crm(state);
    let pair = (resolve(&crm, from_name)?, resolve(&crm, to_name)?);
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for item in &items {
        match object_ref(Some(item)).and_then(|id| read_one(&crm, pair, id, item)) {
            Ok(result) => results.push(result),
            Err(err) => errors.push(err.batch_item()),
        }
    }
    Ok(batch_response(StatusCode::OK, &started, results, errors))
}

/// The 207 item HubSpot reports for a record without associations (§16.4).
pub(super) fn no_associations(
    crm: &Crm,
    (from, id): (ObjectTypeId, u64),
    to: ObjectTypeId,
) -> ApiError {
    let (from_name, to_name) = (singular(crm, from), singular(crm, to));
    ApiError::not_found(format!("No {to_name} is associated with {from_name} {id}."))
        .with_sub_category("crm.associations.NO_ASSOCIATIONS_FOUND")
        .with_context("fromObjectId", [id.to_string()])
        .with_context("fromObjectType", [from_name])
        .with_context("toObjectType", [to_name])
}

/// What a batch write does with one input: its result items and the changes it made.
pub(super) type WriteOne<'a> = dyn FnMut(
        &mut Crm,
        (ObjectTypeId, ObjectTypeId),
        &Value,
    ) -> Result<(Vec<Value>, Vec<AssociationChange>), ApiError>
    + 'a;

/// Runs `apply` for each of the body's inputs (at most [`MAX_BATCH_WRITE`]) under one write
/// lock; collects results, errors and changes.
pub(super) fn batch_write(
    state: &AppState,
    (from_name, to_name): (&str, &str),
    body: &Bytes,
    apply: &mut WriteOne<'_>,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let items = inputs(body, MAX_BATCH_WRITE)?;
    let mut crm = write_crm(state);
    let pair = (resolve(&crm, from_name)?, resolve(&crm, to_name)?);
    ensure_pair(&mut crm, pair.0, pair.1);
    let (mut results, mut errors, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    for item in &items {
        match apply(&mut crm, pair, item) {
            Ok((mut out, mut changed)) => {
                results.append(&mut out);
                changes.append(&mut changed);
            }
            Err(err) => errors.push(err.batch_item()),
        }
    }
    publish(state, crm, changes);
    Ok((results, errors))
}

/// A batch write answered with its results and error items (`status`, or 207 when any
/// input failed).
pub(super) fn batch_write_answer(
    state: &AppState,
    names: (&str, &str),
    body: &Bytes,
    status: StatusCode,
    apply: &mut WriteOne<'_>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    let (results, errors) = batch_write(state, names, body, apply)?;
    Ok(batch_response(status, &started, results, errors))
}

/// Parses `from`/`to` of a batch input and checks both records exist.
pub(super) fn endpoints(
    crm: &Crm,
    (from, to): (ObjectTypeId, ObjectTypeId),
    item: &Value,
) -> Result<(u64, u64), ApiError> {
    let from_id = object_ref(item.get("from"))?;
    let to_id = object_ref(item.get("to"))?;
    check_exists(crm, from, from_id)?;
    check_exists(crm, to, to_id)?;
    Ok((from_id, to_id))
}

pub(super) async fn create(
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
            let kinds = parse_kinds(item.get("types").unwrap_or(&Value::Null))?;
            let changes = crm
                .associations
                .associate((pair.0, from_id), (pair.1, to_id), &kinds)
                .map_err(|e| association_error(&e))?;
            let result = labels_between(&crm.associations, (pair.0, from_id), (pair.1, to_id));
            Ok((vec![result], changes))
        },
    )
}

pub(super) async fn associate_default(
    State(state): State<AppState>,
    Path((from_name, to_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    batch_write_answer(
        &state,
        (&from_name, &to_name),
        &body,
        StatusCode::OK,
        &mut |crm, pair, item| {
            let (from_id, to_id) = endpoints(crm, pair, item)?;
            let changes = crm
                .associations
                .associate_default((pair.0, from_id), (pair.1, to_id))
                .map_err(|e| association_error(&e))?;
            Ok((
                default_result(&crm.associations, (pair.0, from_id), (pair.1, to_id)),
                changes,
            ))
        },
    )
}

pub(super) async fn archive(
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
            let targets = item
                .get("to")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut changes = Vec::new();
            for target in &targets {
                let to_id = object_ref(Some(target))?;
                changes.extend(
                    crm.associations
                        .remove_pair((pair.0, from_id), (pair.1, to_id)),
                );
            }
            Ok((Vec::new(), changes))
        },
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn archive_labels(
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
            let to_id = object_ref(item.get("to"))?;
            let kinds = parse_kinds(item.get("types").unwrap_or(&Value::Null))?;
            Ok((
                Vec::new(),
                crm.associations
                    .remove_kinds((pair.0, from_id), (pair.1, to_id), &kinds),
            ))
        },
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
