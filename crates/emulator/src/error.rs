//! HubSpot's error model: the JSON error body every failing endpoint returns, the
//! `X-HubSpot-Correlation-Id` header, and the crate's own start-up errors.
//!
//! Body shape (hubspot-api.md §2.1): `status` ("error"), `message`, `correlationId`, `category`,
//! optional `subCategory`, `errors[]`, `context`, `links`, plus extra top-level keys some
//! endpoints add (429 bodies carry `errorType`, `policyName`, `groupName` and no `category`).

use axum::{
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Map, Value};

/// The header HubSpot puts on every response.
pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-hubspot-correlation-id");

/// One entry of an error body's `errors[]` (HubSpot's `ErrorDetail`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorDetail {
    /// Human-readable text.
    pub message: String,
    /// Machine token such as `PROPERTY_DOESNT_EXIST` or `INVALID_OPTION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Extra data, every value a list of strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
}

/// A HubSpot API error: status code plus the JSON body HubSpot sends for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `message`.
    pub message: String,
    /// `category` (omitted when `None`, as in 429 bodies).
    pub category: Option<String>,
    /// `subCategory`.
    pub sub_category: Option<String>,
    /// `errors[]` (omitted when empty).
    pub errors: Vec<ErrorDetail>,
    /// `context` (map of string lists; omitted when empty).
    pub context: Map<String, Value>,
    /// Further top-level keys (`errorType`, `policyName`, `links`…).
    pub extra: Map<String, Value>,
    /// Extra response headers (e.g. `x-hubspot-auth-failure`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with the given status, category and message.
    pub fn new(status: StatusCode, category: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            category: Some(category.to_owned()),
            sub_category: None,
            errors: Vec::new(),
            context: Map::new(),
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    /// 400 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// 404 `OBJECT_NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
    }

    /// 404 for a record id, exactly as HubSpot words it (two spaces after the first period).
    pub fn record_not_found(id: &str) -> Self {
        Self::not_found("Object not found.  objectId are usually numeric.").with_context("id", [id])
    }

    /// 409 `CONFLICT`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 400 for an object type the portal does not know.
    pub fn unknown_object_type(name: &str) -> Self {
        Self::validation(format!("Unable to infer object type from: {name}"))
    }

    /// 401 `INVALID_AUTHENTICATION` with the `x-hubspot-auth-failure` header (§1.3).
    pub fn unauthenticated() -> Self {
        let mut err = Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and \
             you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        );
        err.headers.push((
            HeaderName::from_static("x-hubspot-auth-failure"),
            HeaderValue::from_static("401 Unauthorized"),
        ));
        err
    }

    /// 429 body as HubSpot sends it (§3.3): no `category`, but `errorType`, `policyName` and
    /// `groupName`.
    pub fn rate_limited(message: &str, policy_name: &str, group_name: &str) -> Self {
        let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, "", message);
        err.category = None;
        err.extra
            .insert("errorType".into(), Value::from("RATE_LIMIT"));
        err.extra
            .insert("policyName".into(), Value::from(policy_name));
        err.extra
            .insert("groupName".into(), Value::from(group_name));
        err
    }

    /// Adds a `context` entry (values are string lists).
    pub fn with_context<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = values
            .into_iter()
            .map(|v| Value::String(v.into()))
            .collect();
        self.context.insert(key.to_owned(), Value::Array(list));
        self
    }

    /// Sets `subCategory`.
    pub fn with_sub_category(mut self, sub: &str) -> Self {
        self.sub_category = Some(sub.to_owned());
        self
    }

    /// Adds an `errors[]` entry.
    pub fn with_detail(mut self, detail: ErrorDetail) -> Self {
        self.errors.push(detail);
        self
    }

    /// Adds a top-level key.
    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The body as JSON; `correlation_id` is left out for batch `errors[]` items (`None`).
    pub fn body_json(&self, correlation_id: Option<&str>) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), Value::from("error"));
        body.insert("message".into(), Value::from(self.message.clone()));
        if let Some(id) = correlation_id {
            body.insert("correlationId".into(), Value::from(id));
        }
        if let Some(category) = &self.category {
            body.insert("category".into(), Value::from(category.clone()));
        }
        if let Some(sub) = &self.sub_category {
            body.insert("subCategory".into(), Value::from(sub.clone()));
        }
        if !self.errors.is_empty() {
            body.insert(
                "errors".into(),
                serde_json::to_value(&self.errors).unwrap_or_default(),
            );
        }
        if !self.context.is_empty() {
            body.insert("context".into(), Value::Object(self.context.clone()));
        }
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }

    /// The JSON of this error as an item of a batch response's `errors[]` (HubSpot's
    /// `StandardError`: no correlation id, `context`, `errors` and `links` always present).
    pub fn batch_item(&self) -> Value {
        let mut item = self.body_json(None);
        if let Value::Object(map) = &mut item {
            map.entry("context")
                .or_insert_with(|| Value::Object(Map::new()));
            map.entry("errors")
                .or_insert_with(|| Value::Array(Vec::new()));
            map.entry("links")
                .or_insert_with(|| Value::Object(Map::new()));
        }
        item
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// A fresh correlation id (a UUID, as HubSpot's are).
pub fn new_correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let correlation_id = new_correlation_id();
        let body = self.body_json(Some(&correlation_id)).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&correlation_id) {
            headers.insert(CORRELATION_HEADER, value);
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// Errors starting or running the emulator server.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("emulator server failed")]
    Serve(#[source] std::io::Error),
}
