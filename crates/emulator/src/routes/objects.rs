//! `/crm/v3/objects/{objectType}[/{objectId}]`: list, read (by id or `idProperty`), create,
//! update, archive; plus merge and GDPR delete (hubspot-api.md §4.1–4.5, §14).

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Body, Params, json_response, resolve};
use crate::{
    AppState,
    associations::AssociationKind,
    error::ApiError,
    events::CrmEvent,
    payload::{read_crm, scalar_text, write_crm},
    records::Record,
    render::{RecordView, Selection, record_json},
    state::{Crm, ObjectTable, ObjectTypeId},
    writes::Writer,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/crm/v3/objects/{object_type}", get(list).post(create))
        .route(
            "/crm/v3/objects/{object_type}/{object_id}",
            get(read).patch(update).delete(archive),
        )
        .route("/crm/v3/objects/{object_type}/merge", post(merge))
        .route(
            "/crm/v3/objects/{object_type}/gdpr-delete",
            post(gdpr_delete),
        )
}

/// Most records a list page may return (50 with property history).
const LIST_MAX: usize = 100;
const HISTORY_MAX: usize = 50;

/// A list page, serialised from record views.
#[derive(Serialize)]
struct ListPage<'a> {
    results: Vec<RecordView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<Value>,
}

async fn list(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(raw.as_deref());
    let history = params.list("propertiesWithHistory");
    let max = if history.is_empty() {
        LIST_MAX
    } else {
        HISTORY_MAX
    };
    let limit = params.limit(10, max)?;
    let archived = params.flag("archived", false)?;
    let after = match params.get("after") {
        None | Some("") => 0,
        Some(text) => text.parse::<u64>().map_err(|_| {
            ApiError::validation(format!("Invalid paging cursor after={text}"))
                .with_context("after", [text])
        })?,
    };
    let crm = read_crm(&state);
    let ty = resolve(&crm, &object_type)?;
    let table = table(&crm, ty)?;
    let props = params.has("properties").then(|| params.list("properties"));
    let sel = Selection::new(
        &crm,
        table,
        props.as_deref(),
        &history,
        &params.list("associations"),
    );
    let mut iter = table.store.page_after(after.saturating_sub(1), archived);
    let page: Vec<&Record> = iter.by_ref().take(limit).collect();
    let more = iter.next().is_some();
    let mut paging = None;
    if more && let Some(last) = page.last() {
        let next = (last.id + 1).to_string();
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        let pairs = raw
            .as_deref()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()));
        for (k, v) in pairs.into_iter().flatten() {
            if k != "after" {
                link.append_pair(&k, &v);
            }
        }
        link.append_pair("after", &next);
        paging = Some(json!({"next": {"after": next,
            "link": format!("{}/crm/v3/objects/{object_type}?{}", origin(&headers), link.finish())}}));
    }
    let results = page
        .into_iter()
        .map(|record| RecordView {
            crm: &crm,
            table,
            record,
            sel: &sel,
        })
        .collect();
    json_response(&ListPage { results, paging })
}

/// Where the client reached us (`http://HOST`), for `paging.next.link`.
fn origin(headers: &HeaderMap) -> String {
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("http://{host}"),
        None => "https://api.hubapi.com".to_owned(),
    }
}

/// The table of a resolved type.
pub(crate) fn table(crm: &Crm, ty: ObjectTypeId) -> Result<&ObjectTable, ApiError> {
    crm.table(ty)
        .ok_or_else(|| ApiError::unknown_object_type(&ty.to_string()))
}

/// Finds a record by id (following merges) or by a unique `idProperty` value.
pub(crate) fn lookup<'a>(
    table: &'a ObjectTable,
    id_text: &str,
    id_property: Option<&str>,
    archived: bool,
) -> Result<&'a Record, ApiError> {
    let id = find_id(table, id_text, id_property)?;
    let record = id.and_then(|id| table.store.get(table.canonical_id(id)));
    record
        .filter(|r| archived || r.archived_at.is_none())
        .ok_or_else(|| ApiError::record_not_found(id_text))
}

/// The record id named by `id_text` (`None` when nothing matches).
pub(crate) fn find_id(
    table: &ObjectTable,
    id_text: &str,
    id_property: Option<&str>,
) -> Result<Option<u64>, ApiError> {
    match id_property.filter(|p| *p != "hs_object_id" && !p.is_empty()) {
        None => Ok(id_text
            .trim()
            .parse::<u64>()
            .ok()
            .map(|id| table.canonical_id(id))),
        Some(name) => {
            let (prop, def) = table.props.live(name).ok_or_else(|| {
                ApiError::validation(format!("Property \"{name}\" does not exist"))
                    .with_context("idProperty", [name])
            })?;
            if !def.has_unique_value {
                return Err(ApiError::validation(format!(
                    "Property \"{name}\" is not a unique property and cannot be used as idProperty"
                ))
                .with_context("idProperty", [name]));
            }
            Ok(table.store.find_unique(prop, id_text))
        }
    }
}

async fn read(
    State(state): State<AppState>,
    Path((object_type, object_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref());
    let archived = params.flag("archived", false)?;
    let crm = read_crm(&state);
    let ty = resolve(&crm, &object_type)?;
    let table = table(&crm, ty)?;
    let record = lookup(table, &object_id, params.get("idProperty"), archived)?;
    let props = params.has("properties").then(|| params.list("properties"));
    let sel = Selection::new(
        &crm,
        table,
        props.as_deref(),
        &params.list("propertiesWithHistory"),
        &params.list("associations"),
    );
    Ok(Json(record_json(&crm, table, record, &sel)))
}

/// A write's response JSON: every property with a value, plus the always-present ones.
pub(crate) fn written_json(crm: &Crm, table: &ObjectTable, record: &Record) -> Value {
    let names: Vec<String> = record
        .values
        .iter()
        .filter_map(|(p, _)| table.props.def(p).map(|d| d.name.clone()))
        .collect();
    let sel = Selection::new(crm, table, Some(&names), &[], &[]);
    record_json(crm, table, record, &sel)
}

/// `SimplePublicObjectInputForCreate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateInput {
    #[serde(default)]
    pub(crate) properties: Map<String, Value>,
    #[serde(default)]
    pub(crate) associations: Vec<AssociationInput>,
    #[serde(default)]
    pub(crate) object_write_trace_id: Option<String>,
}

/// One association of a create body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AssociationInput {
    to: AssociationTarget,
    #[serde(default)]
    types: Vec<AssociationTypeInput>,
}

#[derive(Debug, Deserialize)]
struct AssociationTarget {
    id: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationTypeInput {
    association_category: String,
    association_type_id: u32,
}

/// Resolves a create body's associations to `(target type, target id, kinds)`.
pub(crate) fn plan_associations(
    crm: &Crm,
    from: ObjectTypeId,
    inputs: &[AssociationInput],
) -> Result<Vec<(ObjectTypeId, u64, Vec<AssociationKind>)>, ApiError> {
    let mut out = Vec::new();
    for input in inputs {
        let to_id = match &input.to.id {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or_else(|| ApiError::validation(format!("{} is not a valid ID", input.to.id)))?;
        let mut kinds = Vec::new();
        let mut to_type = None;
        for t in &input.types {
            let kind = parse_kind(&t.association_category, t.association_type_id)?;
            let def = crm
                .associations
                .definitions()
                .get(kind)
                .filter(|d| d.from_type == from)
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "association type {}/{} is not valid from {from}",
                        t.association_category, t.association_type_id
                    ))
                })?;
            to_type = Some(def.to_type);
            kinds.push(kind);
        }
        let to_type = to_type
            .ok_or_else(|| ApiError::validation("Each association needs at least one type"))?;
        if !crm.exists(to_type, to_id) {
            return Err(ApiError::validation(format!("{to_id} is not a valid ID"))
                .with_sub_category("crm.associations.INVALID_IDENTIFIER")
                .with_context("id", [to_id.to_string()]));
        }
        out.push((to_type, to_id, kinds));
    }
    Ok(out)
}

fn parse_kind(category: &str, type_id: u32) -> Result<AssociationKind, ApiError> {
    use crate::associations::AssociationCategory as C;
    let category = match category {
        "HUBSPOT_DEFINED" => C::HubspotDefined,
        "USER_DEFINED" => C::UserDefined,
        "INTEGRATOR_DEFINED" => C::IntegratorDefined,
        other => {
            return Err(ApiError::validation(format!(
                "Unknown associationCategory {other}"
            )));
        }
    };
    Ok(AssociationKind { category, type_id })
}

/// Creates one record with its associations; returns it and the events.
pub(crate) fn create_one(
    crm: &mut Crm,
    ty: ObjectTypeId,
    input: &CreateInput,
    writer: Writer,
) -> Result<(Record, Vec<CrmEvent>), ApiError> {
    let links = plan_associations(crm, ty, &input.associations)?;
    let (record, mut events) = crm.create_record(ty, &input.properties, writer)?;
    for (to_type, to_id, kinds) in links {
        let at = record.created.max(record.modified);
        match crm
            .associations
            .associate((ty, record.id), (to_type, to_id), &kinds)
        {
            Ok(changes) => events.extend(writer.association_events(changes, at)),
            Err(e) => return Err(ApiError::validation(e.to_string())),
        }
    }
    Ok((record, events))
}

/// Creates one record as `writer` and answers 201 with its JSON.
pub(crate) fn create_as(
    state: &AppState,
    object_type: &str,
    input: &CreateInput,
    writer: Writer,
) -> Result<Response, ApiError> {
    let (body, events) = {
        let mut crm = write_crm(state);
        let ty = resolve(&crm, object_type)?;
        let (record, events) = create_one(&mut crm, ty, input, writer)?;
        (written_json(&crm, table(&crm, ty)?, &record), events)
    };
    state.events.publish_all(events);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn create(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<CreateInput>,
) -> Result<Response, ApiError> {
    create_as(&state, &object_type, &input, Writer::INTEGRATION)
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateInput {
    #[serde(default)]
    pub(crate) properties: Map<String, Value>,
}

/// Applies an update as `writer` and answers the record JSON.
pub(crate) fn update_as(
    state: &AppState,
    object_type: &str,
    object_id: &str,
    id_property: Option<&str>,
    properties: &Map<String, Value>,
    writer: Writer,
) -> Result<Json<Value>, ApiError> {
    let (body, events) = {
        let mut crm = write_crm(state);
        let ty = resolve(&crm, object_type)?;
        let id = lookup(table(&crm, ty)?, object_id, id_property, false)?.id;
        let (record, events) = crm.update_record(ty, id, properties, writer)?;
        (written_json(&crm, table(&crm, ty)?, &record), events)
    };
    state.events.publish_all(events);
    Ok(Json(body))
}

async fn update(
    State(state): State<AppState>,
    Path((object_type, object_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    Body(input): Body<UpdateInput>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref());
    update_as(
        &state,
        &object_type,
        &object_id,
        params.get("idProperty"),
        &input.properties,
        Writer::INTEGRATION,
    )
}

async fn archive(
    State(state): State<AppState>,
    Path((object_type, object_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let events = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        match object_id.parse::<u64>() {
            Ok(id) => crm.archive_record(ty, id, Writer::INTEGRATION),
            Err(_) => Vec::new(),
        }
    };
    state.events.publish_all(events);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeInput {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

fn id_value(v: &Value, what: &str) -> Result<u64, ApiError> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| ApiError::validation(format!("{what} must be a record id, got {v}")))
}

async fn merge(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<MergeInput>,
) -> Result<Json<Value>, ApiError> {
    let primary = id_value(&input.primary_object_id, "primaryObjectId")?;
    let loser = id_value(&input.object_id_to_merge, "objectIdToMerge")?;
    let (body, events) = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        let (record, events) = crm.merge_records(ty, primary, loser, Writer::INTEGRATION)?;
        (written_json(&crm, table(&crm, ty)?, &record), events)
    };
    state.events.publish_all(events);
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdprInput {
    object_id: Value,
    #[serde(default)]
    id_property: Option<String>,
}

async fn gdpr_delete(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<GdprInput>,
) -> Result<StatusCode, ApiError> {
    let events = {
        let mut crm = write_crm(&state);
        let ty = resolve(&crm, &object_type)?;
        if ty != ObjectTypeId::CONTACT {
            return Err(ApiError::validation(
                "GDPR delete is only available for contacts",
            ));
        }
        let text = scalar_text(&input.object_id);
        match input
            .id_property
            .as_deref()
            .filter(|p| *p != "hs_object_id")
        {
            Some("email") => crm.gdpr_delete(None, Some(&text), Writer::INTEGRATION),
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "idProperty {other} is not supported for GDPR delete"
                )));
            }
            None => {
                let id = id_value(&input.object_id, "objectId")?;
                let table = table(&crm, ty)?;
                if table.store.get(table.canonical_id(id)).is_none() {
                    return Err(ApiError::record_not_found(&text));
                }
                let id = table.canonical_id(id);
                crm.gdpr_delete(Some(id), None, Writer::INTEGRATION)
            }
        }
    };
    state.events.publish_all(events);
    Ok(StatusCode::NO_CONTENT)
}
