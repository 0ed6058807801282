//! What every request passes through before reaching a route: the 414 check on over-long
//! request lines (HubSpot's HTML page, §15), bearer-token authentication (§1.3), the body size
//! limit, JSON 404/405 answers for unknown routes, HubSpot error bodies for framework
//! rejections, and `X-HubSpot-Correlation-Id` on every response (§0) — the last one per
//! public route is kept in the stats (`last_correlation_ids`).

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};

use crate::{
    AppState,
    error::{ApiError, CORRELATION_HEADER, new_correlation_id},
    stats::route_label,
};

/// HubSpot's front end answers an over-long URL with this HTML page (airbyte #33976).
const URI_TOO_LONG_HTML: &str = "<html> <head><title>414 Request-URI Too Large</title></head> \
     <body> <center><h1>414 Request-URI Too Large</h1></center> </body> </html>";

/// Puts bearer-token authentication in front of `router`'s routes (public API routes).
pub(crate) fn authenticated(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_bearer,
    ))
}

/// Wraps the assembled application in the layers every request passes: 414 check, body
/// limit, fallbacks and the correlation-id header.
pub(crate) fn outer_layers(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    app.fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::map_response(hubspot_client_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_request_line,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            add_correlation_id,
        ))
}

async fn require_bearer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let accepted = match token {
        None => false,
        Some(token) => {
            state.config.tokens.is_empty() || state.config.tokens.iter().any(|t| t == token)
        }
    };
    if accepted {
        next.run(request).await
    } else {
        ApiError::unauthenticated().into_response()
    }
}

async fn limit_request_line(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let line = request.method().as_str().len() + 1 + request.uri().to_string().len();
    if line > state.config.max_request_line {
        let mut response = (StatusCode::URI_TOO_LONG, URI_TOO_LONG_HTML).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return response;
    }
    next.run(request).await
}

/// Answers framework rejections (bad path encoding, bad query, missing content…) that are not
/// already HubSpot JSON with HubSpot's error body, keeping their status. 414 keeps its HTML.
async fn hubspot_client_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || status == StatusCode::URI_TOO_LONG || is_json {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("Bad request")
            .to_owned()
    } else {
        text
    };
    let category = match status {
        StatusCode::NOT_FOUND => "OBJECT_NOT_FOUND",
        StatusCode::UNAUTHORIZED => "INVALID_AUTHENTICATION",
        _ => "VALIDATION_ERROR",
    };
    ApiError::new(status, category, message).into_response()
}

/// Gives every answer a correlation id (error bodies already carry theirs in the header
/// too) and records it per public route.
async fn add_correlation_id(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let route = (!path.starts_with("/_emulator")).then(|| route_label(request.method(), path));
    let mut response = next.run(request).await;
    let id = match response
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(id) => Some(id.to_owned()),
        None => {
            let id = new_correlation_id();
            HeaderValue::from_str(&id).ok().map(|value| {
                response.headers_mut().insert(CORRELATION_HEADER, value);
                id
            })
        }
    };
    if let (Some(route), Some(id)) = (route, id) {
        state.traffic.stats.correlation(route, id);
    }
    response
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!(
            "No route matches {} {}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!(
            "Method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
