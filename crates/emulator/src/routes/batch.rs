//! `/crm/v3/objects/{objectType}/batch/{read,create,update,upsert,archive}` (hubspot-api.md
//! §4.6, §16.3): ≤100 inputs, exact success codes (create 201, others 200, archive 204), 207
//! with per-item errors where HubSpot gives them, all-or-nothing batch create unless every
//! input carries a unique `objectWriteTraceId`.

use std::collections::HashSet;

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
    routing::post,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::objects::{CreateInput, create_one, find_id, table, written_json};
use super::{Body, Inputs, Params, resolve};
use crate::{
    AppState,
    error::ApiError,
    events::CrmEvent,
    payload::{batch_response, read_crm, scalar_text, timestamp_now, write_crm},
    render::{Selection, record_json},
    state::{Crm, ObjectTypeId},
    writes::Writer,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/crm/v3/objects/{object_type}/batch/read", post(read))
        .route("/crm/v3/objects/{object_type}/batch/create", post(create))
        .route("/crm/v3/objects/{object_type}/batch/update", post(update))
        .route("/crm/v3/objects/{object_type}/batch/upsert", post(upsert))
        .route("/crm/v3/objects/{object_type}/batch/archive", post(archive))
}

/// Most inputs per batch call.
const BATCH_MAX: usize = 100;
/// Most inputs of a batch read with property history.
const BATCH_HISTORY_MAX: usize = 50;

fn check_size(n: usize, max: usize) -> Result<(), ApiError> {
    if n > max {
        let message = if max == BATCH_HISTORY_MAX {
            "The maximum number of inputs supported in a batch request for property histories is 50. \
             Please reduce the number of items and try again"
                .to_owned()
        } else {
            format!(
                "Too many inputs: {n}. The maximum number of inputs supported in a batch request is {max}"
            )
        };
        return Err(ApiError::validation(message));
    }
    Ok(())
}

fn not_found_item(crm: &Crm, ty: ObjectTypeId, ids: Vec<String>) -> Value {
    let upper = crm.kind(ty).map(|k| k.upper_singular()).unwrap_or_default();
    ApiError::not_found(format!(
        "Could not get some {upper} objects, they may be deleted or not exist. Check that ids are valid."
    ))
    .with_context("ids", ids)
    .batch_item()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdInput {
    id: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadInput {
    #[serde(default)]
    properties: Option<Vec<String>>,
    #[serde(default)]
    properties_with_history: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
    inputs: Vec<IdInput>,
}

async fn read(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
    Body(input): Body<ReadInput>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    let archived = Params::parse(raw.as_deref()).flag("archived", false)?;
    let max = if input.properties_with_history.is_empty() {
        BATCH_MAX
    } else {
        BATCH_HISTORY_MAX
    };
    check_size(input.inputs.len(), max)?;
    let crm = read_crm(&state);
    let ty = resolve(&crm, &object_type)?;
    let table = table(&crm, ty)?;
    let sel = Selection::new(
        &crm,
        table,
        input.properties.as_deref(),
        &input.properties_with_history,
        &[],
    );
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for item in &input.inputs {
        let text = scalar_text(&item.id);
        let record = find_id(table, &text, input.id_property.as_deref())?
            .and_then(|id| table.store.get(id))
            .filter(|r| r.archived_at.is_some() == archived);
        match record {
            Some(r) if seen.insert(r.id) => results.push(record_json(&crm, table, r, &sel)),
            Some(_) => {}
            None => missing.push(text),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![not_found_item(&crm, ty, missing)]
    };
    Ok(batch_response(StatusCode::OK, &started, results, errors))
}

/// True when every input has an `objectWriteTraceId` and no two share one (multi-status mode).
fn multi_status<'a>(traces: impl Iterator<Item = Option<&'a String>>) -> bool {
    let mut seen = HashSet::new();
    traces
        .into_iter()
        .all(|t| t.is_some_and(|t| seen.insert(t.clone())))
}

/// A written record as a batch result, echoing its `objectWriteTraceId`.
fn result_json(
    crm: &Crm,
    table: &crate::state::ObjectTable,
    record: &crate::records::Record,
    trace: Option<&String>,
) -> Value {
    let mut v = written_json(crm, table, record);
    if let Some(t) = trace {
        v["objectWriteTraceId"] = json!(t);
    }
    v
}

fn traced(err: &ApiError, trace: Option<&String>) -> Value {
    let mut err = err.clone();
    if let Some(t) = trace {
        err = err.with_context("objectWriteTraceId", [t.clone()]);
    }
    err.batch_item()
}

async fn create(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<CreateInput>>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    check_size(input.inputs.len(), BATCH_MAX)?;
    let partial = multi_status(
        input
            .inputs
            .iter()
            .map(|i| i.object_write_trace_id.as_ref()),
    );
    let (response, events) = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        let mut created = Vec::new();
        let mut events: Vec<CrmEvent> = Vec::new();
        let mut errors = Vec::new();
        for item in &input.inputs {
            match create_one(&mut crm, ty, item, Writer::INTEGRATION) {
                Ok((record, ev)) => {
                    created.push((record, item.object_write_trace_id.clone()));
                    events.extend(ev);
                }
                Err(err) if partial => {
                    errors.push(traced(&err, item.object_write_trace_id.as_ref()))
                }
                Err(err) => {
                    roll_back(&mut crm, ty, created.iter().map(|(r, _)| r.id));
                    return Err(err);
                }
            }
        }
        let table = table(&crm, ty)?;
        let results = created
            .iter()
            .map(|(r, trace)| result_json(&crm, table, r, trace.as_ref()))
            .collect();
        (
            batch_response(StatusCode::CREATED, &started, results, errors),
            events,
        )
    };
    state.events.publish_all(events);
    Ok(response)
}

/// Undoes creations of an all-or-nothing batch that failed part-way.
fn roll_back(crm: &mut Crm, ty: ObjectTypeId, ids: impl Iterator<Item = u64>) {
    for id in ids {
        let _ = crm.associations.remove_object(ty, id);
        if let Some(table) = crm.table_mut(ty) {
            table.store.remove(id);
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateItem {
    id: Value,
    #[serde(default)]
    id_property: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<UpdateItem>>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    check_size(input.inputs.len(), BATCH_MAX)?;
    let texts: Vec<String> = input.inputs.iter().map(|i| scalar_text(&i.id)).collect();
    let mut seen = HashSet::new();
    let dups: Vec<String> = texts.iter().filter(|t| !seen.insert(*t)).cloned().collect();
    if !dups.is_empty() {
        return Err(ApiError::validation(format!(
            "Duplicate IDs found in batch input: [{}]. IDs must be unique",
            dups.join(", ")
        ))
        .with_context("ids", dups));
    }
    let partial = multi_status(
        input
            .inputs
            .iter()
            .map(|i| i.object_write_trace_id.as_ref()),
    );
    let (response, events) = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        let mut targets = Vec::new();
        let mut missing = Vec::new();
        for (item, text) in input.inputs.iter().zip(&texts) {
            let t = table(&crm, ty)?;
            match find_id(t, text, item.id_property.as_deref())?
                .filter(|id| t.store.live(*id).is_some())
            {
                Some(id) => targets.push((id, item)),
                None => missing.push(text.clone()),
            }
        }
        if !partial {
            // All-or-nothing: validate everything before writing anything.
            for (_, item) in &targets {
                validate_only(&crm, ty, &item.properties)?;
            }
        }
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut events = Vec::new();
        for (id, item) in targets {
            match crm.update_record(ty, id, &item.properties, Writer::INTEGRATION) {
                Ok((record, ev)) => {
                    events.extend(ev);
                    let trace = item.object_write_trace_id.as_ref();
                    results.push(result_json(&crm, table(&crm, ty)?, &record, trace));
                }
                Err(err) => errors.push(traced(&err, item.object_write_trace_id.as_ref())),
            }
        }
        if !missing.is_empty() {
            errors.push(not_found_item(&crm, ty, missing));
        }
        (
            batch_response(StatusCode::OK, &started, results, errors),
            events,
        )
    };
    state.events.publish_all(events);
    Ok(response)
}

/// Runs the validation of an update without applying it.
fn validate_only(crm: &Crm, ty: ObjectTypeId, props: &Map<String, Value>) -> Result<(), ApiError> {
    let table = table(crm, ty)?;
    crate::property_values::validate_input(&table.props, props, false)
        .map_err(|invalid| crate::property_values::invalid_values_error(&invalid))?;
    Ok(())
}

async fn upsert(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<UpdateItem>>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    check_size(input.inputs.len(), BATCH_MAX)?;
    let (response, events) = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut events = Vec::new();
        for item in &input.inputs {
            let text = scalar_text(&item.id);
            let outcome = upsert_one(&mut crm, ty, item, &text);
            match outcome {
                Ok((record, is_new, ev)) => {
                    events.extend(ev);
                    let trace = item.object_write_trace_id.as_ref();
                    let mut v = result_json(&crm, table(&crm, ty)?, &record, trace);
                    v["new"] = json!(is_new);
                    results.push(v);
                }
                Err(err) => errors.push(traced(&err, item.object_write_trace_id.as_ref())),
            }
        }
        (
            batch_response(StatusCode::OK, &started, results, errors),
            events,
        )
    };
    state.events.publish_all(events);
    Ok(response)
}

fn upsert_one(
    crm: &mut Crm,
    ty: ObjectTypeId,
    item: &UpdateItem,
    text: &str,
) -> Result<(crate::records::Record, bool, Vec<CrmEvent>), ApiError> {
    let t = table(crm, ty)?;
    let existing =
        find_id(t, text, item.id_property.as_deref())?.filter(|id| t.store.live(*id).is_some());
    match existing {
        Some(id) => {
            let (r, ev) = crm.update_record(ty, id, &item.properties, Writer::INTEGRATION)?;
            Ok((r, false, ev))
        }
        None => {
            let Some(prop) = item.id_property.as_deref().filter(|p| *p != "hs_object_id") else {
                return Err(ApiError::record_not_found(text));
            };
            let mut properties = item.properties.clone();
            properties.insert(prop.to_owned(), Value::String(text.to_owned()));
            let input = CreateInput {
                properties,
                associations: Vec::new(),
                object_write_trace_id: None,
            };
            let (r, ev) = create_one(crm, ty, &input, Writer::INTEGRATION)?;
            Ok((r, true, ev))
        }
    }
}

async fn archive(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<IdInput>>,
) -> Result<StatusCode, ApiError> {
    check_size(input.inputs.len(), BATCH_MAX)?;
    let events = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        let mut events = Vec::new();
        for item in &input.inputs {
            if let Ok(id) = scalar_text(&item.id).parse::<u64>() {
                events.extend(crm.archive_record(ty, id, Writer::INTEGRATION));
            }
        }
        events
    };
    state.events.publish_all(events);
    Ok(StatusCode::NO_CONTENT)
}
