//! The v4 association endpoints (hubspot-api.md §11.3–11.4): record-level list/create/delete and
//! the `/crm/v4/associations/{from}/{to}/batch/...` endpoints. Ids are JSON numbers in v4
//! payloads (§16.1) except inside `from`/`to` objects, which echo strings as HubSpot does.

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::RwLockWriteGuard;

use super::{
    AssociationChange, AssociationError, AssociationKind, AssociationStore, batch, labels, v3,
};
use crate::{
    ApiError, AppState,
    payload::{batch_response, parse_json, read_crm, timestamp_now, write_crm},
    records::now_millis,
    state::{Crm, ObjectTypeId},
    writes::Writer,
};

/// Largest page of targets per source record (list and batch read).
pub(super) const MAX_PAGE: usize = 500;
/// Most inputs accepted by batch read (HubSpot raised it to 1,000 in 2025).
pub(super) const MAX_BATCH_READ: usize = 1000;
/// Most inputs accepted by the other batch endpoints.
pub(super) const MAX_BATCH_WRITE: usize = 100;

/// Every association route (public API; the caller adds authentication).
pub fn routes() -> Router<AppState> {
    let record = "/crm/v4/objects/{object_type}/{object_id}/associations";
    let pair = "/crm/v4/associations/{from}/{to}";
    Router::new()
        .route(&format!("{record}/{{to_type}}"), get(list))
        .route(
            &format!("{record}/{{to_type}}/{{to_id}}"),
            put(create_labelled).delete(remove),
        )
        .route(
            &format!("{record}/default/{{to_type}}/{{to_id}}"),
            put(create_default),
        )
        .route(&format!("{pair}/batch/read"), post(batch::read))
        .route(&format!("{pair}/batch/create"), post(batch::create))
        .route(
            &format!("{pair}/batch/associate/default"),
            post(batch::associate_default),
        )
        .route(&format!("{pair}/batch/archive"), post(batch::archive))
        .route(
            &format!("{pair}/batch/labels/archive"),
            post(batch::archive_labels),
        )
        .merge(labels::routes())
        .merge(v3::routes())
}

/// Resolves an object type path segment or answers HubSpot's 400.
pub(super) fn resolve(crm: &Crm, name: &str) -> Result<ObjectTypeId, ApiError> {
    crm.resolve_type(name)
        .ok_or_else(|| ApiError::unknown_object_type(name))
}

/// The singular name of a type (`contact`, a custom object's name).
pub(super) fn singular(crm: &Crm, object_type: ObjectTypeId) -> String {
    crm.kind(object_type)
        .map_or_else(|| object_type.to_string(), |k| k.singular.clone())
}

/// Makes sure the pair has association types (custom objects get theirs on first use).
pub(super) fn ensure_pair(crm: &mut Crm, from: ObjectTypeId, to: ObjectTypeId) {
    let names = (singular(crm, from), singular(crm, to));
    crm.associations.ensure_pair(from, to, (&names.0, &names.1));
}

pub(super) fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| invalid_identifier(text))
}

pub(super) fn invalid_identifier(text: &str) -> ApiError {
    ApiError::validation(format!("{text} is not a valid ID"))
        .with_sub_category("crm.associations.INVALID_IDENTIFIER")
        .with_context("id", [text])
}

fn missing_record(crm: &Crm, object_type: ObjectTypeId, id: u64) -> ApiError {
    ApiError::not_found(format!(
        "No {} with ID {id} exists",
        singular(crm, object_type)
    ))
    .with_context("id", [id.to_string()])
}

pub(super) fn check_exists(crm: &Crm, object_type: ObjectTypeId, id: u64) -> Result<(), ApiError> {
    if crm.exists(object_type, id) {
        Ok(())
    } else {
        Err(missing_record(crm, object_type, id))
    }
}

pub(super) fn association_error(err: &AssociationError) -> ApiError {
    match err {
        AssociationError::SelfAssociation(_) => ApiError::validation(err.to_string())
            .with_sub_category("crm.associations.INVALID_IDENTIFIER"),
        AssociationError::InvalidType { .. } => ApiError::validation(err.to_string())
            .with_sub_category("crm.associations.INVALID_ASSOCIATION_TYPE"),
    }
}

/// JSON of one association type as v4 responses show it (`label` null when unlabeled).
pub(super) fn type_json(store: &AssociationStore, kind: AssociationKind) -> Value {
    let label = store.definitions().get(kind).and_then(|d| d.label.clone());
    json!({"category": kind.category.as_str(), "typeId": kind.type_id, "label": label})
}

/// Kinds for output: primary / labelled types before the unlabeled one, as HubSpot lists them.
fn ordered_kinds(store: &AssociationStore, kinds: &[AssociationKind]) -> Vec<AssociationKind> {
    let mut out = kinds.to_vec();
    out.sort_by_key(|k| store.definitions().get(*k).is_some_and(|d| d.is_default));
    out
}

fn target_json(store: &AssociationStore, to_id: u64, kinds: &[AssociationKind]) -> Value {
    let types: Vec<Value> = ordered_kinds(store, kinds)
        .into_iter()
        .map(|k| type_json(store, k))
        .collect();
    json!({"toObjectId": to_id, "associationTypes": types})
}

/// Publishes association changes made through the public API (after releasing the lock).
/// Contacts' `associatedcompanyid` is derived from the primary association by the core.
pub(super) fn publish(
    state: &AppState,
    crm: RwLockWriteGuard<'_, Crm>,
    changes: Vec<AssociationChange>,
) {
    drop(crm);
    let events = Writer::INTEGRATION.association_events(changes, now_millis());
    state.events.publish_all(events);
}

/// `limit`/`after` of the record-level list.
#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
}

/// Encodes a page cursor (opaque to clients; HubSpot's look like base64 too).
fn encode_after(to_type: ObjectTypeId, id: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{to_type}-{id}"))
}

pub(super) fn decode_after(text: &str) -> Result<u64, ApiError> {
    use base64::Engine as _;
    let bad = || ApiError::validation(format!("Invalid after cursor: {text}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(bytes).map_err(|_| bad())?;
    decoded
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

/// One page of targets plus the cursor of the next page.
pub(super) fn page(
    store: &AssociationStore,
    (from_type, from_id): (ObjectTypeId, u64),
    to_type: ObjectTypeId,
    after: Option<u64>,
    limit: usize,
) -> (Vec<Value>, Option<String>) {
    let mut results = Vec::new();
    let mut last = None;
    let mut more = false;
    for (id, kinds) in store.targets(from_type, from_id, to_type, after) {
        if results.len() == limit {
            more = true;
            break;
        }
        results.push(target_json(store, id, kinds));
        last = Some(id);
    }
    let next = if more {
        last.map(|id| encode_after(to_type, id))
    } else {
        None
    };
    (results, next)
}

async fn list(
    State(state): State<AppState>,
    Path((object_type, object_id, to_type)): Path<(String, String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = match query.limit.as_deref() {
        None | Some("") => MAX_PAGE,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::validation(format!("Invalid limit: {text}")))?
            .clamp(1, MAX_PAGE),
    };
    let after = query
        .after
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(decode_after)
        .transpose()?;
    let crm = read_crm(&state);
    let from = resolve(&crm, &object_type)?;
    let to = resolve(&crm, &to_type)?;
    let id = parse_id(&object_id)?;
    let (results, next) = page(&crm.associations, (from, id), to, after, limit);
    let mut body = json!({"results": results});
    if let Some(after) = next {
        let link = format!(
            "/crm/v4/objects/{object_type}/{object_id}/associations/{to_type}?limit={limit}&after={after}"
        );
        body["paging"] = json!({"next": {"after": after, "link": link}});
    }
    Ok(axum::Json(body).into_response())
}

/// Parses `[{associationCategory, associationTypeId}]`.
pub(super) fn parse_kinds(value: &Value) -> Result<Vec<AssociationKind>, ApiError> {
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::validation("Expected a list of association types"))?;
    items
        .iter()
        .map(|item| {
            let category = item
                .get("associationCategory")
                .cloned()
                .and_then(|c| serde_json::from_value(c).ok())
                .ok_or_else(|| ApiError::validation("associationCategory is missing or invalid"))?;
            let type_id = item
                .get("associationTypeId")
                .and_then(|t| {
                    t.as_u64()
                        .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
                })
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| ApiError::validation("associationTypeId is missing or invalid"))?;
            Ok(AssociationKind { category, type_id })
        })
        .collect()
}

pub(super) fn labels_between(
    store: &AssociationStore,
    from: (ObjectTypeId, u64),
    to: (ObjectTypeId, u64),
) -> Value {
    let labels: Vec<Value> = ordered_kinds(store, store.kinds_between(from.0, from.1, to.0, to.1))
        .into_iter()
        .filter_map(|k| store.definitions().get(k).and_then(|d| d.label.clone()))
        .map(Value::from)
        .collect();
    json!({
        "fromObjectTypeId": from.0.to_string(),
        "fromObjectId": from.1,
        "toObjectTypeId": to.0.to_string(),
        "toObjectId": to.1,
        "labels": labels,
    })
}

async fn create_labelled(
    State(state): State<AppState>,
    Path(path): Path<RecordPairPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value = parse_json(&body)?;
    let kinds = parse_kinds(&value)?;
    let mut crm = write_crm(&state);
    let [(from, from_id), (to, to_id)] = existing_pair(&mut crm, &path)?;
    let changes = crm
        .associations
        .associate((from, from_id), (to, to_id), &kinds)
        .map_err(|e| association_error(&e))?;
    let body = labels_between(&crm.associations, (from, from_id), (to, to_id));
    publish(&state, crm, changes);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `{object_type}/{object_id}/…/{to_type}/{to_id}` of the single-pair routes.
type RecordPairPath = (String, String, String, String);

/// The two records a single-pair write names: types resolved, ids parsed, both checked to
/// exist, and the pair's definitions in place.
fn existing_pair(
    crm: &mut Crm,
    (object_type, object_id, to_type, to_id): &RecordPairPath,
) -> Result<[(ObjectTypeId, u64); 2], ApiError> {
    let (from, to) = (resolve(crm, object_type)?, resolve(crm, to_type)?);
    let (from_id, to_id) = (parse_id(object_id)?, parse_id(to_id)?);
    check_exists(crm, from, from_id)?;
    check_exists(crm, to, to_id)?;
    ensure_pair(crm, from, to);
    Ok([(from, from_id), (to, to_id)])
}

pub(super) fn default_result(
    store: &AssociationStore,
    from: (ObjectTypeId, u64),
    to: (ObjectTypeId, u64),
) -> Vec<Value> {
    ordered_kinds(store, store.kinds_between(from.0, from.1, to.0, to.1))
        .into_iter()
        .map(|k| {
            json!({
                "from": {"id": from.1.to_string()},
                "to": {"id": to.1.to_string()},
                "associationSpec": {"associationCategory": k.category.as_str(), "associationTypeId": k.type_id},
            })
        })
        .collect()
}

async fn create_default(
    State(state): State<AppState>,
    Path(path): Path<RecordPairPath>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    let mut crm = write_crm(&state);
    let [(from, from_id), (to, to_id)] = existing_pair(&mut crm, &path)?;
    let changes = crm
        .associations
        .associate_default((from, from_id), (to, to_id))
        .map_err(|e| association_error(&e))?;
    let results = default_result(&crm.associations, (from, from_id), (to, to_id));
    publish(&state, crm, changes);
    Ok(batch_response(
        StatusCode::OK,
        &started,
        results,
        Vec::new(),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Path((object_type, object_id, to_type, to_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let (from, to) = (resolve(&crm, &object_type)?, resolve(&crm, &to_type)?);
    let (from_id, to_id) = (parse_id(&object_id)?, parse_id(&to_id)?);
    let changes = crm.associations.remove_pair((from, from_id), (to, to_id));
    publish(&state, crm, changes);
    Ok(StatusCode::NO_CONTENT.into_response())
}
