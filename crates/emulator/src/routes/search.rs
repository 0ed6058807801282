//! `POST /crm/v3/objects/{objectType}/search` (hubspot-api.md §7): request parsing (filter
//! groups or the legacy top-level `filters`, sorts as strings or objects, `after` as string or
//! number), the group/filter limits, and the response with `total` and offset paging.

use std::time::Duration;

use axum::{
    Router,
    extract::{Path, State},
    response::Response,
    routing::post,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::objects::table;
use super::{Body, json_response, parse_limit, resolve};
use crate::{
    AppState, catalog,
    error::ApiError,
    payload::{read_crm, scalar_text},
    records::now_millis,
    render::{RecordView, Selection},
    search::{self, Filter, Op, Query},
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/crm/v3/objects/{object_type}/search", post(search_records))
}

/// Most filter groups, filters per group and filters in all (the strictest current reading).
const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 6;
const MAX_FILTERS: usize = 18;
/// Largest search page.
const SEARCH_MAX: usize = 200;
/// Longest `query`.
const MAX_QUERY_CHARS: usize = 3000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterInput {
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    high_value: Option<Value>,
    #[serde(default)]
    values: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct GroupInput {
    #[serde(default)]
    filters: Vec<FilterInput>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SortInput {
    Name(String),
    Rule {
        #[serde(rename = "propertyName")]
        property_name: String,
        #[serde(default)]
        direction: Option<String>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchInput {
    #[serde(default)]
    filter_groups: Vec<GroupInput>,
    #[serde(default)]
    filters: Vec<FilterInput>,
    #[serde(default)]
    sorts: Vec<SortInput>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    properties: Option<Vec<String>>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    after: Option<Value>,
}

fn filter(input: &FilterInput) -> Result<Filter, ApiError> {
    let op = Op::parse(&input.operator).ok_or_else(|| {
        ApiError::validation(format!("Unknown filter operator {}", input.operator))
            .with_context("operator", [input.operator.clone()])
    })?;
    Ok(Filter {
        property: input.property_name.clone(),
        op,
        value: input
            .value
            .as_ref()
            .filter(|v| !v.is_null())
            .map(scalar_text),
        high_value: input
            .high_value
            .as_ref()
            .filter(|v| !v.is_null())
            .map(scalar_text),
        values: input.values.iter().flatten().map(scalar_text).collect(),
    })
}

fn parse_query(input: &SearchInput) -> Result<Query, ApiError> {
    let mut groups: Vec<Vec<Filter>> = input
        .filter_groups
        .iter()
        .map(|g| g.filters.iter().map(filter).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    if !input.filters.is_empty() {
        groups.push(
            input
                .filters
                .iter()
                .map(filter)
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    groups.retain(|g| !g.is_empty());
    let total: usize = groups.iter().map(Vec::len).sum();
    if groups.len() > MAX_GROUPS
        || groups.iter().any(|g| g.len() > MAX_FILTERS_PER_GROUP)
        || total > MAX_FILTERS
    {
        return Err(ApiError::validation(format!(
            "Too many filters: at most {MAX_GROUPS} filterGroups, {MAX_FILTERS_PER_GROUP} filters per group \
             and {MAX_FILTERS} filters in total are allowed (got {} groups, {total} filters)",
            groups.len()
        )));
    }
    let sort = input.sorts.first().map(|s| match s {
        SortInput::Name(n) => match n.strip_prefix('-') {
            Some(name) => (name.to_owned(), false),
            None => (n.clone(), true),
        },
        SortInput::Rule {
            property_name,
            direction,
        } => {
            let asc = !direction
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case("DESCENDING"));
            (property_name.clone(), asc)
        }
    });
    if input
        .query
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::validation(format!(
            "query must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = match &input.limit {
        None | Some(Value::Null) => 10,
        Some(v) => parse_limit(&scalar_text(v), SEARCH_MAX)?,
    };
    let offset = match &input.after {
        None | Some(Value::Null) => 0,
        Some(v) => {
            let text = scalar_text(v);
            if text.is_empty() {
                0
            } else {
                text.trim().parse::<usize>().map_err(|_| {
                    ApiError::validation(format!("Invalid paging cursor after={text}"))
                        .with_context("after", [text.clone()])
                })?
            }
        }
    };
    Ok(Query {
        groups,
        sort,
        text: input.query.clone().filter(|q| !q.trim().is_empty()),
        limit,
        offset,
    })
}

/// How far the search index trails writes (fault injection; zero by default).
fn search_lag(state: &AppState) -> Duration {
    state.traffic.search_lag()
}

async fn search_records(
    State(state): State<AppState>,
    Path(object_type): Path<String>,
    Body(input): Body<Value>,
) -> Result<Response, ApiError> {
    let input: SearchInput = if input.is_null() {
        SearchInput::default()
    } else {
        serde_json::from_value(input)
            .map_err(|e| ApiError::validation(format!("Invalid input JSON: {e}")))?
    };
    let query = parse_query(&input)?;
    let lag = search_lag(&state);
    let visible_until =
        (!lag.is_zero()).then(|| now_millis() - i64::try_from(lag.as_millis()).unwrap_or(i64::MAX));
    let crm = read_crm(&state);
    let ty = resolve(&crm, &object_type)?;
    let table = table(&crm, ty)?;
    let text_props: Vec<String> = match &table.schema {
        Some(schema) => schema.searchable_properties.clone(),
        None => catalog::query_properties(ty)
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let page = search::run(&crm, table, &query, &text_props, visible_until)?;
    let sel = Selection::new(&crm, table, input.properties.as_deref(), &[], &[]);
    let results = page
        .ids
        .iter()
        .filter_map(|id| table.store.get(*id))
        .map(|record| RecordView {
            crm: &crm,
            table,
            record,
            sel: &sel,
        })
        .collect();
    let paging = page
        .next
        .map(|next| json!({"next": {"after": next.to_string()}}));
    json_response(&SearchPage {
        total: page.total,
        results,
        paging,
    })
}

/// A search page, serialised from record views.
#[derive(Serialize)]
struct SearchPage<'a> {
    total: usize,
    results: Vec<RecordView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<Value>,
}
