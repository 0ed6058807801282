//! Webhook configuration routes: the emulator's control route `/_emulator/webhooks` and
//! HubSpot's management API `/webhooks/v3/{appId}/settings|subscriptions` (§12.1). The
//! emulator has one app: any `appId` in the path addresses it.

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use super::{KINDS, OBJECT_PREFIXES, Subscription, WebhookSettings};
use crate::{
    ApiError, AppState,
    payload::{batch_response, parse_json, timestamp_now},
};

/// Control and management routes (neither needs a bearer token; HubSpot's management API
/// takes a developer key instead).
pub fn routes() -> Router<AppState> {
    let subs = "/webhooks/v3/{app_id}/subscriptions";
    Router::new()
        .route(
            "/_emulator/webhooks",
            get(show).post(configure).delete(disable),
        )
        .route(
            "/webhooks/v3/{app_id}/settings",
            get(read_settings).put(put_settings).delete(delete_settings),
        )
        .route(subs, get(list_subscriptions).post(create_subscription))
        .route(&format!("{subs}/batch/update"), post(batch_update))
        .route(
            &format!("{subs}/{{subscription_id}}"),
            get(read_subscription)
                .patch(patch_subscription)
                .delete(delete_subscription),
        )
}

fn control_json(state: &AppState) -> Value {
    let settings = state.webhooks.settings();
    let mut body = serde_json::to_value(&settings).unwrap_or_default();
    body["secret_set"] = json!(settings.secret.as_deref().is_some_and(|s| !s.is_empty()));
    body["subscriptions"] = json!(state.webhooks.subscriptions());
    body["delivery"] =
        serde_json::to_value(state.traffic.stats.snapshot().webhooks).unwrap_or_default();
    body
}

async fn show(State(state): State<AppState>) -> Response {
    axum::Json(control_json(&state)).into_response()
}

/// Merges the given fields into the current settings (`"url": null` stops delivery).
async fn configure(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let changes = parse_json(&body)?;
    let Value::Object(changes) = changes else {
        return Err(ApiError::validation("Expected a JSON object"));
    };
    let current = state.webhooks.settings();
    let mut merged = serde_json::to_value(&current).unwrap_or_default();
    for (key, value) in &changes {
        merged[key.as_str()] = value.clone();
    }
    let mut settings: WebhookSettings = serde_json::from_value(merged)
        .map_err(|e| ApiError::validation(format!("Invalid webhook settings: {e}")))?;
    settings.secret = match changes.get("secret") {
        None => current.secret,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) => None,
        Some(_) => return Err(ApiError::validation("secret must be a string")),
    };
    state
        .webhooks
        .set_settings(settings)
        .map_err(ApiError::validation)?;
    Ok(axum::Json(control_json(&state)).into_response())
}

/// Stops delivery (subscriptions are kept).
fn clear_target(state: &AppState) -> Result<(), ApiError> {
    let settings = WebhookSettings {
        url: None,
        ..state.webhooks.settings()
    };
    state
        .webhooks
        .set_settings(settings)
        .map_err(ApiError::validation)
}

async fn disable(State(state): State<AppState>) -> Result<Response, ApiError> {
    clear_target(&state)?;
    Ok(axum::Json(control_json(&state)).into_response())
}

fn settings_json(state: &AppState, settings: &WebhookSettings) -> Value {
    json!({
        "targetUrl": settings.url,
        "throttling": {"maxConcurrentRequests": settings.max_concurrent, "period": "SECONDLY"},
        "createdAt": state.webhooks.created_at,
        "updatedAt": timestamp_now(),
    })
}

async fn read_settings(State(state): State<AppState>) -> Result<Response, ApiError> {
    let settings = state.webhooks.settings();
    if settings.url.is_none() {
        return Err(ApiError::not_found(
            "No webhook settings exist for this app",
        ));
    }
    Ok(axum::Json(settings_json(&state, &settings)).into_response())
}

async fn put_settings(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let url = body
        .get("targetUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("targetUrl is required"))?;
    let mut settings = state.webhooks.settings();
    settings.url = Some(url.to_owned());
    settings.paused = false;
    if let Some(max) = body
        .pointer("/throttling/maxConcurrentRequests")
        .and_then(Value::as_u64)
    {
        settings.max_concurrent = usize::try_from(max).unwrap_or(usize::MAX);
    }
    state
        .webhooks
        .set_settings(settings.clone())
        .map_err(ApiError::validation)?;
    Ok(axum::Json(settings_json(&state, &settings)).into_response())
}

async fn delete_settings(State(state): State<AppState>) -> Result<Response, ApiError> {
    clear_target(&state)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_subscriptions(State(state): State<AppState>) -> Response {
    axum::Json(json!({"results": state.webhooks.subscriptions()})).into_response()
}

/// Whether `event_type` is one HubSpot accepts (§12.2).
fn valid_event_type(event_type: &str) -> bool {
    let Some((object, kind)) = event_type.split_once('.') else {
        return false;
    };
    (OBJECT_PREFIXES.contains(&object) && KINDS.contains(&kind))
        || event_type == "contact.privacyDeletion"
}

async fn create_subscription(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let event_type = body
        .get("eventType")
        .and_then(Value::as_str)
        .filter(|t| valid_event_type(t))
        .ok_or_else(|| ApiError::validation("eventType is missing or not a known event type"))?;
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    let now = timestamp_now();
    let subscription = Subscription {
        id: state.webhooks.allocate_subscription_id(),
        event_type: event_type.to_owned(),
        property_name: text("propertyName"),
        object_type_id: text("objectTypeId"),
        active: body.get("active").and_then(Value::as_bool).unwrap_or(false),
        created_at: now.clone(),
        updated_at: now,
    };
    let out = json!(subscription);
    state
        .webhooks
        .update_subscriptions(|subs| subs.push(subscription));
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

fn parse_subscription_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| subscription_not_found(text))
}

fn subscription_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Subscription {id} not found")).with_context("id", [id])
}

async fn read_subscription(
    State(state): State<AppState>,
    Path((_app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let wanted = parse_subscription_id(&id)?;
    let found = state
        .webhooks
        .subscriptions()
        .into_iter()
        .find(|s| s.id == wanted);
    let subscription = found.ok_or_else(|| subscription_not_found(&id))?;
    Ok(axum::Json(json!(subscription)).into_response())
}

/// Sets `active` on one subscription; the updated subscription, if it exists.
fn set_active(state: &AppState, id: u64, active: bool) -> Option<Subscription> {
    state.webhooks.update_subscriptions(|subs| {
        let sub = subs.iter_mut().find(|s| s.id == id)?;
        sub.active = active;
        sub.updated_at = timestamp_now();
        Some(sub.clone())
    })
}

async fn patch_subscription(
    State(state): State<AppState>,
    Path((_app, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_json(&body)?;
    let active = body
        .get("active")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::validation("active is required"))?;
    let wanted = parse_subscription_id(&id)?;
    let updated = set_active(&state, wanted, active).ok_or_else(|| subscription_not_found(&id))?;
    Ok(axum::Json(json!(updated)).into_response())
}

async fn delete_subscription(
    State(state): State<AppState>,
    Path((_app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let wanted = parse_subscription_id(&id)?;
    let removed = state.webhooks.update_subscriptions(|subs| {
        let before = subs.len();
        subs.retain(|s| s.id != wanted);
        subs.len() != before
    });
    if !removed {
        return Err(subscription_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn batch_update(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let started = timestamp_now();
    let body = parse_json(&body)?;
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::validation("inputs is required"))?;
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let id = input.get("id").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        let active = input.get("active").and_then(Value::as_bool);
        match (id, active) {
            (Some(id), Some(active)) => match set_active(&state, id, active) {
                Some(sub) => results.push(json!(sub)),
                None => errors.push(subscription_not_found(&id.to_string()).batch_item()),
            },
            _ => errors.push(ApiError::validation("id and active are required").batch_item()),
        }
    }
    Ok(batch_response(StatusCode::OK, &started, results, errors))
}
