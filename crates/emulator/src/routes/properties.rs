//! `/crm/v3/properties/{objectType}` (hubspot-api.md §9): property CRUD, batch create/read/
//! archive, and property groups. Custom properties of every `type`/`fieldType` pair.

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, Inputs, Params, resolve};
use crate::{
    AppState,
    error::ApiError,
    payload::{batch_response, read_crm, timestamp_now, write_crm},
    properties::{PropOption, PropType, PropertyDef, PropertyGroup},
    records::{iso_millis, now_millis},
    state::{Crm, ObjectTable, ObjectTypeId},
};

pub(crate) fn routes() -> Router<AppState> {
    let p = "/crm/v3/properties/{object_type}";
    Router::new()
        .route(p, get(list).post(create))
        .route(
            &format!("{p}/{{name}}"),
            get(read).patch(update).delete(archive),
        )
        .route(&format!("{p}/batch/create"), post(batch_create))
        .route(&format!("{p}/batch/read"), post(batch_read))
        .route(&format!("{p}/batch/archive"), post(batch_archive))
        .route(&format!("{p}/groups"), get(list_groups).post(create_group))
        .route(
            &format!("{p}/groups/{{name}}"),
            get(read_group).patch(update_group).delete(archive_group),
        )
}

/// `PropertyCreate` / `PropertyUpdate` (every field optional here; create checks the required).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PropertyInput {
    name: Option<String>,
    label: Option<String>,
    #[serde(rename = "type")]
    prop_type: Option<String>,
    field_type: Option<String>,
    pub(crate) group_name: Option<String>,
    description: Option<String>,
    options: Option<Vec<OptionInput>>,
    display_order: Option<i64>,
    has_unique_value: Option<bool>,
    hidden: Option<bool>,
    form_field: Option<bool>,
    external_options: Option<bool>,
    referenced_object_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionInput {
    label: String,
    value: String,
    description: Option<String>,
    display_order: Option<i64>,
    hidden: Option<bool>,
}

fn options(list: &[OptionInput]) -> Vec<PropOption> {
    list.iter()
        .enumerate()
        .map(|(i, o)| PropOption {
            label: o.label.clone(),
            value: o.value.clone(),
            description: o.description.clone(),
            display_order: o.display_order.unwrap_or(i64::try_from(i).unwrap_or(0)),
            hidden: o.hidden.unwrap_or(false),
        })
        .collect()
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 100
}

/// Builds a custom property definition from a create body.
pub(crate) fn new_property(
    input: &PropertyInput,
    table: &ObjectTable,
    now: i64,
) -> Result<PropertyDef, ApiError> {
    let missing: Vec<&str> = [
        ("name", input.name.is_none()),
        ("label", input.label.is_none()),
        ("type", input.prop_type.is_none()),
        ("fieldType", input.field_type.is_none()),
        ("groupName", input.group_name.is_none()),
    ]
    .into_iter()
    .filter_map(|(n, m)| m.then_some(n))
    .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(format!(
            "Invalid input JSON: Cannot build PropertyCreate, some of required attributes are not set [{}]",
            missing.join(", ")
        )));
    }
    let name = input.name.clone().unwrap_or_default();
    if !valid_name(&name) {
        return Err(ApiError::validation(format!(
            "Property name \"{name}\" is invalid: use lower-case letters, digits and underscores, starting with a letter"
        )));
    }
    if table
        .props
        .id(&name)
        .is_some_and(|id| table.props.def(id).is_some_and(|d| !d.archived))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("A property named '{name}' already exists."),
        )
        .with_sub_category("Properties.PROPERTY_WITH_NAME_EXISTS")
        .with_context("name", [name]));
    }
    let type_text = input.prop_type.clone().unwrap_or_default();
    let prop_type = PropType::parse(&type_text)
        .ok_or_else(|| ApiError::validation(format!("Unknown property type {type_text}")))?;
    let field_type = input.field_type.clone().unwrap_or_default();
    if !prop_type.allows_field_type(&field_type) {
        return Err(ApiError::validation(format!(
            "fieldType {field_type} is not valid for a property of type {type_text}"
        )));
    }
    let group = input.group_name.clone().unwrap_or_default();
    if table.props.group(&group).is_none() {
        return Err(
            ApiError::validation(format!("Property group {group} does not exist"))
                .with_context("groupName", [group]),
        );
    }
    let mut opts = options(input.options.as_deref().unwrap_or(&[]));
    let external = input.external_options.unwrap_or(false);
    if prop_type == PropType::Bool && opts.is_empty() {
        opts = PropertyDef::builtin("x", "x", prop_type, "booleancheckbox", "g")
            .with_options(&[("true", "Yes"), ("false", "No")])
            .options;
    }
    if prop_type == PropType::Enumeration
        && opts.is_empty()
        && !external
        && field_type != "booleancheckbox"
    {
        return Err(ApiError::validation(format!(
            "Enumeration property {name} needs options"
        )));
    }
    let mut def = PropertyDef::builtin(
        &name,
        input.label.as_deref().unwrap_or(""),
        prop_type,
        &field_type,
        &group,
    );
    def.hubspot_defined = false;
    def.read_only_definition = false;
    def.description = input.description.clone().unwrap_or_default();
    def.options = opts;
    def.display_order = input.display_order.unwrap_or(-1);
    def.has_unique_value = input.has_unique_value.unwrap_or(false);
    def.hidden = input.hidden.unwrap_or(false);
    def.form_field = input.form_field.unwrap_or(false);
    def.external_options = external;
    def.referenced_object_type = input.referenced_object_type.clone();
    def.calculated = field_type == "calculation_equation";
    def.read_only_value = def.calculated;
    def.created_at = now;
    def.updated_at = now;
    Ok(def)
}

/// Adds a definition to a table (and its unique index).
pub(crate) fn install(table: &mut ObjectTable, def: PropertyDef) -> Value {
    let unique = def.has_unique_value;
    let json = def.to_v3_json();
    let id = table.props.push(def);
    if unique {
        table.store.add_unique(id);
    }
    json
}

fn table_mut<'a>(crm: &'a mut Crm, name: &str) -> Result<&'a mut ObjectTable, ApiError> {
    let ty = resolve(crm, name)?;
    crm.table_mut(ty)
        .ok_or_else(|| ApiError::unknown_object_type(name))
}

fn table_ref<'a>(crm: &'a Crm, name: &str) -> Result<(ObjectTypeId, &'a ObjectTable), ApiError> {
    let ty = resolve(crm, name)?;
    Ok((
        ty,
        crm.table(ty)
            .ok_or_else(|| ApiError::unknown_object_type(name))?,
    ))
}

fn property_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Unable to find property {name}")).with_context("name", [name])
}

async fn list(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref());
    let archived = params.flag("archived", false)?;
    let wanted = params.list("properties");
    let crm = read_crm(&state);
    let (_, table) = table_ref(&crm, &object_type)?;
    let results: Vec<Value> = table
        .props
        .iter()
        .filter(|(_, d)| d.archived == archived)
        .filter(|(_, d)| wanted.is_empty() || wanted.contains(&d.name))
        .map(|(_, d)| d.to_v3_json())
        .collect();
    Ok(Json(json!({ "results": results })))
}

async fn create(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<PropertyInput>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    let def = new_property(&input, table, now_millis())?;
    Ok((StatusCode::CREATED, Json(install(table, def))).into_response())
}

async fn read(
    State(state): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let archived = Params::parse(raw.as_deref()).flag("archived", false)?;
    let crm = read_crm(&state);
    let (_, table) = table_ref(&crm, &object_type)?;
    let def = table
        .props
        .id(&name)
        .and_then(|id| table.props.def(id))
        .filter(|d| d.archived == archived)
        .ok_or_else(|| property_not_found(&name))?;
    Ok(Json(def.to_v3_json()))
}

async fn update(
    State(state): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
    Body(input): Body<PropertyInput>,
) -> Result<Json<Value>, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    let (id, _) = table
        .props
        .live(&name)
        .ok_or_else(|| property_not_found(&name))?;
    let group_ok = input
        .group_name
        .as_ref()
        .is_none_or(|g| table.props.group(g).is_some());
    if !group_ok {
        return Err(ApiError::validation("Property group does not exist"));
    }
    let def = table
        .props
        .def_mut(id)
        .ok_or_else(|| property_not_found(&name))?;
    if def.hubspot_defined && (input.prop_type.is_some() || input.field_type.is_some()) {
        return Err(ApiError::validation(format!(
            "Property {name} is HubSpot-defined: its type and fieldType cannot be changed"
        )));
    }
    let prop_type = match &input.prop_type {
        Some(t) => PropType::parse(t)
            .ok_or_else(|| ApiError::validation(format!("Unknown property type {t}")))?,
        None => def.prop_type,
    };
    let field_type = input
        .field_type
        .clone()
        .unwrap_or_else(|| def.field_type.clone());
    if !prop_type.allows_field_type(&field_type) {
        return Err(ApiError::validation(format!(
            "fieldType {field_type} is not valid for a property of type {}",
            prop_type.as_str()
        )));
    }
    def.prop_type = prop_type;
    def.field_type = field_type;
    if let Some(v) = &input.label {
        def.label.clone_from(v);
    }
    if let Some(v) = &input.description {
        def.description.clone_from(v);
    }
    if let Some(v) = &input.group_name {
        def.group_name.clone_from(v);
    }
    if let Some(v) = &input.options {
        def.options = options(v);
    }
    if let Some(v) = input.display_order {
        def.display_order = v;
    }
    if let Some(v) = input.hidden {
        def.hidden = v;
    }
    if let Some(v) = input.form_field {
        def.form_field = v;
    }
    def.updated_at = now_millis();
    Ok(Json(def.to_v3_json()))
}

/// Archives a custom property (HubSpot-defined ones cannot be archived).
fn archive_in(table: &mut ObjectTable, name: &str) -> Result<(), ApiError> {
    let Some((id, def)) = table.props.live(name) else {
        return Ok(());
    };
    if def.hubspot_defined {
        return Err(ApiError::validation(format!(
            "Property {name} is HubSpot-defined and cannot be archived"
        )));
    }
    if let Some(def) = table.props.def_mut(id) {
        let now = now_millis();
        def.archived = true;
        def.archived_at = Some(now);
        def.updated_at = now;
    }
    Ok(())
}

async fn archive(
    State(state): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    if table.props.live(&name).is_none() {
        return Err(property_not_found(&name));
    }
    archive_in(table, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct NameInput {
    name: String,
}

async fn batch_create(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<PropertyInput>>,
) -> Result<Response, ApiError> {
    let started = now_millis();
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for item in &input.inputs {
        match new_property(item, table, started) {
            Ok(def) => results.push(install(table, def)),
            Err(err) => errors.push(err.batch_item()),
        }
    }
    Ok(batch_response(
        StatusCode::CREATED,
        &iso_millis(started),
        results,
        errors,
    ))
}

async fn batch_read(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<NameInput>>,
) -> Result<Response, ApiError> {
    let started = timestamp_now();
    let crm = read_crm(&state);
    let (_, table) = table_ref(&crm, &object_type)?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for item in &input.inputs {
        match table.props.live(&item.name) {
            Some((_, def)) => results.push(def.to_v3_json()),
            None => errors.push(property_not_found(&item.name).batch_item()),
        }
    }
    Ok(batch_response(StatusCode::OK, &started, results, errors))
}

async fn batch_archive(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Inputs<NameInput>>,
) -> Result<StatusCode, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    for item in &input.inputs {
        let _ = archive_in(table, &item.name);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupInput {
    name: Option<String>,
    label: Option<String>,
    display_order: Option<i64>,
}

fn group_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Unable to find property group {name}"))
        .with_context("name", [name])
}

/// The unarchived group `name`, for editing.
fn live_group_mut<'a>(
    table: &'a mut ObjectTable,
    name: &str,
) -> Result<&'a mut PropertyGroup, ApiError> {
    table
        .props
        .groups
        .iter_mut()
        .find(|g| g.name == name && !g.archived)
        .ok_or_else(|| group_not_found(name))
}

async fn list_groups(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let crm = read_crm(&state);
    let (_, table) = table_ref(&crm, &object_type)?;
    let results: Vec<Value> = table
        .props
        .groups
        .iter()
        .filter(|g| !g.archived)
        .map(PropertyGroup::to_json)
        .collect();
    Ok(Json(json!({ "results": results })))
}

async fn create_group(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<GroupInput>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    let (Some(name), Some(label)) = (input.name, input.label) else {
        return Err(ApiError::validation(
            "Invalid input JSON: Cannot build PropertyGroupCreate, some of required attributes are not set [name, label]",
        ));
    };
    if !valid_name(&name) {
        return Err(ApiError::validation(format!(
            "Property group name \"{name}\" is invalid"
        )));
    }
    if table.props.group(&name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("A property group named '{name}' already exists."),
        )
        .with_context("name", [name]));
    }
    table.props.groups.retain(|g| g.name != name);
    let group = PropertyGroup {
        name,
        label,
        display_order: input.display_order.unwrap_or(-1),
        archived: false,
    };
    let json = group.to_json();
    table.props.groups.push(group);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

async fn read_group(
    State(state): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let crm = read_crm(&state);
    let (_, table) = table_ref(&crm, &object_type)?;
    table
        .props
        .group(&name)
        .map(|g| Json(g.to_json()))
        .ok_or_else(|| group_not_found(&name))
}

async fn update_group(
    State(state): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
    Body(input): Body<GroupInput>,
) -> Result<Json<Value>, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    let group = live_group_mut(table, &name)?;
    if let Some(label) = input.label {
        group.label = label;
    }
    if let Some(order) = input.display_order {
        group.display_order = order;
    }
    Ok(Json(group.to_json()))
}

async fn archive_group(
    State(state): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut crm = write_crm(&state);
    let table = table_mut(&mut crm, &object_type)?;
    let group = live_group_mut(table, &name)?;
    group.archived = true;
    Ok(StatusCode::NO_CONTENT)
}
