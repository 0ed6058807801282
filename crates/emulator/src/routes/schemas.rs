//! Custom object schemas under both `/crm-object-schemas/v3/schemas` and the older
//! `/crm/v3/schemas` (hubspot-api.md §10, §16.16): list, create, read, update, delete, batch
//! read, and association definitions.

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::properties::{PropertyInput, install, new_property};
use super::{Body, Params};
use crate::{
    AppState,
    error::ApiError,
    payload::{read_crm, write_crm},
    properties::PropertyRegistry,
    records::now_millis,
    schemas::{CustomSchema, schema_json},
    state::{Crm, ObjectKind, ObjectTable, ObjectTypeId},
};

pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/crm-object-schemas/v3/schemas", "/crm/v3/schemas"] {
        router = router
            .route(prefix, get(list).post(create))
            .route(&format!("{prefix}/batch/read"), post(batch_read))
            .route(
                &format!("{prefix}/{{object_type}}"),
                get(read).patch(update).delete(remove),
            )
            .route(
                &format!("{prefix}/{{object_type}}/associations"),
                post(create_association),
            )
            .route(
                &format!("{prefix}/{{object_type}}/associations/{{association}}"),
                delete(remove_association),
            );
    }
    router
}

#[derive(Debug, Deserialize)]
struct Labels {
    singular: Option<String>,
    plural: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaInput {
    name: Option<String>,
    labels: Option<Labels>,
    description: Option<String>,
    primary_display_property: Option<String>,
    #[serde(default)]
    secondary_display_properties: Vec<String>,
    #[serde(default)]
    searchable_properties: Vec<String>,
    #[serde(default)]
    required_properties: Vec<String>,
    #[serde(default)]
    properties: Vec<PropertyInput>,
    #[serde(default)]
    associated_objects: Vec<String>,
}

fn custom_table(crm: &Crm, name: &str) -> Result<ObjectTypeId, ApiError> {
    crm.resolve_type(name)
        .filter(|t| t.is_custom())
        .ok_or_else(|| {
            ApiError::not_found(format!("Unable to find object schema for {name}"))
                .with_context("objectType", [name])
        })
}

async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let archived = Params::parse(raw.as_deref()).flag("archived", false)?;
    let crm = read_crm(&state);
    let results: Vec<Value> = crm
        .tables()
        .filter(|t| t.schema.as_ref().is_some_and(|s| s.archived == archived))
        .map(|t| schema_json(&crm, t))
        .collect();
    Ok(Json(json!({ "results": results })))
}

fn resolve_associated(crm: &Crm, names: &[String]) -> Result<Vec<ObjectTypeId>, ApiError> {
    names
        .iter()
        .map(|n| {
            crm.resolve_type(n)
                .ok_or_else(|| ApiError::validation(format!("Unknown associated object {n}")))
        })
        .collect()
}

async fn create(
    State(state): State<AppState>,
    Body(input): Body<SchemaInput>,
) -> Result<Response, ApiError> {
    let (Some(name), Some(labels)) = (input.name.clone(), input.labels.as_ref()) else {
        return Err(ApiError::validation(
            "Invalid input JSON: Cannot build ObjectSchemaEgg, some of required attributes are not set [name, labels]",
        ));
    };
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ApiError::validation(format!(
            "Object name \"{name}\" is invalid"
        )));
    }
    let mut crm = write_crm(&state);
    if crm.resolve_type(&name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("An object type with name {name} already exists"),
        )
        .with_context("name", [name]));
    }
    let associated = resolve_associated(&crm, &input.associated_objects)?;
    let now = now_millis();
    let id = crm.next_custom_type_id();
    let kind = ObjectKind {
        id,
        name: name.clone(),
        singular: name.clone(),
        fully_qualified_name: Some(format!("p{}_{name}", crm.portal_id)),
        modified_property: "hs_lastmodifieddate",
        default_properties: input.primary_display_property.iter().cloned().collect(),
    };
    let group = format!("{}_information", name.to_lowercase());
    let mut table = ObjectTable::new(
        kind,
        PropertyRegistry::with_system("hs_lastmodifieddate", (&group, "Information")),
        None,
    );
    for p in &input.properties {
        let mut p = p.clone();
        if p.group_name.is_none() {
            p.group_name = Some(group.clone());
        }
        let def = new_property(&p, &table, now)?;
        install(&mut table, def);
    }
    for n in input
        .required_properties
        .iter()
        .chain(&input.primary_display_property)
    {
        if table.props.live(n).is_none() {
            return Err(ApiError::validation(format!(
                "Property {n} is not defined on the schema"
            )));
        }
    }
    table.schema = Some(CustomSchema {
        singular_label: labels.singular.clone().unwrap_or_else(|| name.clone()),
        plural_label: labels.plural.clone().unwrap_or_else(|| name.clone()),
        description: input.description.clone(),
        primary_display_property: input.primary_display_property.clone(),
        secondary_display_properties: input.secondary_display_properties.clone(),
        searchable_properties: input.searchable_properties.clone(),
        required_properties: input.required_properties.clone(),
        associated_objects: input.associated_objects.clone(),
        associated_types: associated.clone(),
        archived: false,
        created_at: now,
        updated_at: now,
    });
    crm.register(table);
    for to in associated {
        let to_name = crm.kind(to).map(|k| k.singular.clone()).unwrap_or_default();
        crm.associations.ensure_pair(id, to, (&name, &to_name));
    }
    let body = crm
        .table(id)
        .map(|t| schema_json(&crm, t))
        .unwrap_or_default();
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn read(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let crm = read_crm(&state);
    let id = custom_table(&crm, &object_type)?;
    Ok(Json(
        crm.table(id)
            .map(|t| schema_json(&crm, t))
            .unwrap_or_default(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaPatch {
    labels: Option<Labels>,
    description: Option<String>,
    #[serde(default)]
    clear_description: bool,
    primary_display_property: Option<String>,
    secondary_display_properties: Option<Vec<String>>,
    searchable_properties: Option<Vec<String>>,
    required_properties: Option<Vec<String>>,
}

async fn update(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(patch): Body<SchemaPatch>,
) -> Result<Json<Value>, ApiError> {
    let mut crm = write_crm(&state);
    let id = custom_table(&crm, &object_type)?;
    let table = crm
        .table_mut(id)
        .ok_or_else(|| ApiError::unknown_object_type(&object_type))?;
    for n in patch
        .required_properties
        .iter()
        .flatten()
        .chain(&patch.primary_display_property)
    {
        if table.props.live(n).is_none() {
            return Err(ApiError::validation(format!(
                "Property {n} is not defined on the schema"
            )));
        }
    }
    let Some(schema) = table.schema.as_mut() else {
        return Err(ApiError::unknown_object_type(&object_type));
    };
    if let Some(labels) = patch.labels {
        if let Some(s) = labels.singular {
            schema.singular_label = s;
        }
        if let Some(p) = labels.plural {
            schema.plural_label = p;
        }
    }
    if patch.clear_description {
        schema.description = None;
    } else if let Some(d) = patch.description {
        schema.description = Some(d);
    }
    if let Some(p) = patch.primary_display_property {
        schema.primary_display_property = Some(p);
    }
    if let Some(v) = patch.secondary_display_properties {
        schema.secondary_display_properties = v;
    }
    if let Some(v) = patch.searchable_properties {
        schema.searchable_properties = v;
    }
    if let Some(v) = patch.required_properties {
        schema.required_properties = v;
    }
    schema.updated_at = now_millis();
    Ok(Json(
        crm.table(id)
            .map(|t| schema_json(&crm, t))
            .unwrap_or_default(),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let hard = Params::parse(raw.as_deref()).flag("archived", false)?;
    let mut crm = write_crm(&state);
    let id = custom_table(&crm, &object_type)?;
    let table = crm
        .table_mut(id)
        .ok_or_else(|| ApiError::unknown_object_type(&object_type))?;
    if table.store.live_count() > 0 {
        return Err(ApiError::validation(format!(
            "Object type {object_type} still has records; delete them before deleting the schema"
        )));
    }
    let archived = table.schema.as_ref().is_some_and(|s| s.archived);
    if hard {
        if !archived {
            return Err(ApiError::validation(
                "Only an archived schema can be purged with archived=true",
            ));
        }
        crm.unregister(id);
    } else if let Some(schema) = table.schema.as_mut() {
        schema.archived = true;
        schema.updated_at = now_millis();
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct BatchRead {
    inputs: Vec<String>,
}

async fn batch_read(
    State(state): State<AppState>,
    Body(input): Body<BatchRead>,
) -> Result<Json<Value>, ApiError> {
    let crm = read_crm(&state);
    let results: Vec<Value> = input
        .inputs
        .iter()
        .filter_map(|n| custom_table(&crm, n).ok())
        .filter_map(|id| crm.table(id).map(|t| schema_json(&crm, t)))
        .collect();
    Ok(Json(json!({"status": "COMPLETE", "results": results})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationDefInput {
    to_object_type_id: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_association(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<AssociationDefInput>,
) -> Result<Response, ApiError> {
    let mut crm = write_crm(&state);
    let from = custom_table(&crm, &object_type)?;
    let to = crm
        .resolve_type(&input.to_object_type_id)
        .ok_or_else(|| ApiError::unknown_object_type(&input.to_object_type_id))?;
    let from_name = crm
        .kind(from)
        .map(|k| k.singular.clone())
        .unwrap_or_default();
    let to_name = crm.kind(to).map(|k| k.singular.clone()).unwrap_or_default();
    crm.associations
        .ensure_pair(from, to, (&from_name, &to_name));
    if let Some(schema) = crm.table_mut(from).and_then(|t| t.schema.as_mut())
        && !schema.associated_types.contains(&to)
    {
        schema.associated_types.push(to);
    }
    let def = crm
        .associations
        .definitions()
        .pair(from, to)
        .find(|d| d.is_default)
        .map(|d| {
            let now = crate::records::iso_millis(now_millis());
            json!({"id": d.kind.type_id.to_string(), "name": input.name.clone().unwrap_or_else(|| d.name.clone()),
                   "fromObjectTypeId": from, "toObjectTypeId": to, "createdAt": now, "updatedAt": now})
        })
        .unwrap_or_default();
    Ok((StatusCode::CREATED, Json(def)).into_response())
}

async fn remove_association(
    State(state): State<AppState>,
    Path((object_type, _association)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let crm = read_crm(&state);
    custom_table(&crm, &object_type)?;
    Ok(StatusCode::NO_CONTENT)
}
