//! Request-body parsing, lock access and timestamps shared by the satellite routes
//! (associations, owners, pipelines, webhooks settings, control routes).

// Helpers return `Result<_, ApiError>` like every handler; the error is the response.
#![allow(clippy::result_large_err)]

use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{ApiError, AppState, state::Crm};

/// Parses a JSON body, answering malformed input as HubSpot does
/// (`Invalid input JSON on line L, column C: …`, 400 `VALIDATION_ERROR`).
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    crate::routes::parse_body(body)
}

/// A JSON scalar as text: strings without quotes, anything else as JSON (ids and values
/// that clients send either as strings or as numbers).
pub(crate) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Now as HubSpot formats top-level timestamps: ISO-8601 UTC with milliseconds.
pub(crate) fn timestamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads the CRM (a poisoned lock still yields the data: a panic elsewhere must not take the
/// emulator down).
pub(crate) fn read_crm(state: &AppState) -> RwLockReadGuard<'_, Crm> {
    state
        .crm
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes the CRM (see [`read_crm`]).
pub(crate) fn write_crm(state: &AppState) -> RwLockWriteGuard<'_, Crm> {
    state
        .crm
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The batch envelope (§0) with optional per-item errors; 207 when there are errors.
pub(crate) fn batch_response(
    success: StatusCode,
    started: &str,
    results: Vec<Value>,
    errors: Vec<Value>,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": timestamp_now(),
    });
    let status = if errors.is_empty() {
        success
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        StatusCode::MULTI_STATUS
    };
    (status, axum::Json(body)).into_response()
}
