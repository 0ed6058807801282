//! HTTP routes of the core CRM API (objects, batch, search, properties, schemas) and the
//! control routes that edit data as a HubSpot user, plus the request parsing they share:
//! query strings with repeated and comma-joined lists, JSON bodies with HubSpot's 400s.

// Handlers return `Result<_, ApiError>`: the error is the response.
#![allow(clippy::result_large_err)]

pub(crate) mod batch;
pub(crate) mod control;
pub(crate) mod legacy;
pub(crate) mod objects;
pub(crate) mod properties;
pub(crate) mod schemas;
pub(crate) mod search;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{
    Router,
    body::Bytes,
    extract::{FromRequest, Request},
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    AppState,
    error::ApiError,
    state::{Crm, ObjectTypeId},
};

/// Every public CRM route of the core (bearer auth is applied by the caller).
pub(crate) fn public_routes() -> Router<AppState> {
    Router::new()
        .merge(objects::routes())
        .merge(batch::routes())
        .merge(search::routes())
        .merge(properties::routes())
        .merge(legacy::routes())
        .merge(schemas::routes())
}

/// A JSON request body; malformed JSON and oversized bodies become HubSpot error bodies.
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "VALIDATION_ERROR", e.body_text()))?;
        parse_body(&bytes).map(Body)
    }
}

/// A batch body: `{"inputs": [...]}`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Inputs<T> {
    /// The inputs, in the caller's order.
    pub(crate) inputs: Vec<T>,
}

/// Parses JSON as HubSpot reports failures (`Invalid input JSON on line L, column C: …`).
pub(crate) fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| {
        ApiError::validation(format!(
            "Invalid input JSON on line {}, column {}: {}",
            err.line(),
            err.column(),
            err
        ))
    })
}

/// A parsed query string.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when `name` appears at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// A list given as repeated parameters, comma-joined values, or both.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A boolean parameter (`true`/`false`), default when absent.
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ApiError::validation(format!(
                "Invalid value for query parameter {name}: {other} is not a boolean"
            ))),
        }
    }

    /// A page size: default when absent, 400 outside `1..=max`.
    pub(crate) fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(default),
            Some(text) => parse_limit(text, max),
        }
    }
}

/// Checks a limit value against `1..=max`.
pub(crate) fn parse_limit(text: &str, max: usize) -> Result<usize, ApiError> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= max) => {
            Ok(usize::try_from(n).unwrap_or(max))
        }
        _ => Err(ApiError::validation(format!(
            "limit must be a whole number between 1 and {max}, got {text}"
        ))
        .with_context("limit", [text])),
    }
}

/// A 200 JSON response serialised straight from `value` (no intermediate JSON tree).
pub(crate) fn json_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(value).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            e.to_string(),
        )
    })?;
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    Ok(response)
}

/// Resolves `{objectType}` or answers HubSpot's 400.
pub(crate) fn resolve(crm: &Crm, name: &str) -> Result<ObjectTypeId, ApiError> {
    crm.resolve_type(name)
        .ok_or_else(|| ApiError::unknown_object_type(name))
}
