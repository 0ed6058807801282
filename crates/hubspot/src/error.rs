//! HubSpot errors: the typed [`HubSpotError`] every call returns, and [`ApiError`], the parsed
//! body HubSpot sends with a non-2xx answer (`category`, `message`, `correlationId`, …).
//!
//! Whether an error is worth retrying is decided in one place, [`crate::retry::classify`]; the
//! error only remembers the verdict, so callers ask [`HubSpotError::is_retryable`] instead of
//! matching status codes themselves.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::retry::{RetryAction, classify, classify_transport};

/// Everything that can go wrong talking to HubSpot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubSpotError {
    /// HubSpot answered with a non-success status. The display names the status, category
    /// and correlation id but not HubSpot's message, which can quote property values; read it
    /// from [`ApiError::message`] where it is safe to show.
    #[error(
        "HubSpot answered {} ({}) on {} [correlation id {}]",
        .0.status,
        .0.category.as_deref().unwrap_or("no category"),
        .0.endpoint,
        .0.correlation_id.as_deref().unwrap_or("none")
    )]
    Api(Box<ApiError>),
    /// A record with the same unique value already exists (HTTP 409, e.g. a contact's email).
    /// `existing_id` is the record that holds the value: link to it instead of retrying
    /// (lessons.md #12, #13).
    #[error("record already exists in HubSpot (existing id {existing_id})")]
    AlreadyExists {
        /// The id of the record that already holds the unique value.
        existing_id: u64,
        /// The full answer.
        api: Box<ApiError>,
    },
    /// The request never got an HTTP answer (connect, timeout, reset, …).
    #[error("transport error calling HubSpot {endpoint}")]
    Transport {
        /// The endpoint label (see [`crate::Endpoint`]).
        endpoint: &'static str,
        /// Whether the failure is worth retrying (timeouts, connects and resets are).
        retryable: bool,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// HubSpot answered 2xx but the body did not match the expected shape.
    #[error("could not decode HubSpot's answer from {endpoint}")]
    Decode {
        /// The endpoint label.
        endpoint: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The daily API budget (configured, or reported by HubSpot) is used up; no call was made.
    #[error("HubSpot daily API budget exhausted")]
    DailyLimitExhausted,
    /// The client configuration is unusable.
    #[error("invalid HubSpot client configuration: {0}")]
    Config(String),
    /// The caller passed something HubSpot would reject before any call was made.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl HubSpotError {
    /// True when the same call may succeed later (429, most 5xx, timeouts, resets).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(api) => api.retryable,
            Self::Transport { retryable, .. } => *retryable,
            Self::AlreadyExists { .. }
            | Self::Decode { .. }
            | Self::DailyLimitExhausted
            | Self::Config(_)
            | Self::InvalidInput(_) => false,
        }
    }

    /// The HTTP status, when HubSpot answered.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|api| api.status)
    }

    /// The parsed error answer, when HubSpot answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(api) | Self::AlreadyExists { api, .. } => Some(api),
            _ => None,
        }
    }

    /// True when the object type in the path does not exist: HubSpot answers 400 "Unable to
    /// infer object type from: …" (hubspot-api.md §0), some endpoints 404.
    pub fn is_unknown_object_type(&self) -> bool {
        self.is_not_found()
            || self.api().is_some_and(|api| {
                api.status == 400 && api.message.starts_with("Unable to infer object type")
            })
    }

    /// True for HTTP 404 (`OBJECT_NOT_FOUND`).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True for HTTP 429.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// The delay HubSpot asked for (`Retry-After`), if any.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|api| api.retry_after)
    }

    pub(crate) fn transport(endpoint: &'static str, source: reqwest::Error) -> Self {
        let retryable = matches!(classify_transport(&source), RetryAction::Retry(_));
        Self::Transport {
            endpoint,
            retryable,
            source,
        }
    }

    /// Builds the error for a non-success answer: parses the JSON body (HubSpot's 414 page is
    /// HTML, so anything unparsable becomes the message's fallback) and promotes 409s that name
    /// an existing record to [`HubSpotError::AlreadyExists`].
    pub(crate) fn from_response(
        endpoint: &'static str,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        correlation_header: Option<String>,
    ) -> Self {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let message = parsed
            .message
            .unwrap_or_else(|| fallback_message(status, body));
        let retryable = reqwest::StatusCode::from_u16(status)
            .map(|s| matches!(classify(s), RetryAction::Retry(_)))
            .unwrap_or(false);
        let api = Box::new(ApiError {
            endpoint,
            status,
            category: parsed.category.or(parsed.error_type),
            sub_category: parsed.sub_category.and_then(json_to_string),
            message,
            correlation_id: parsed.correlation_id.or(correlation_header),
            policy_name: parsed.policy_name,
            context: parsed.context,
            details: parsed.errors,
            retry_after,
            retryable,
        });
        if status == 409
            && let Some(existing_id) = api.existing_id()
        {
            return Self::AlreadyExists { existing_id, api };
        }
        Self::Api(api)
    }
}

/// HubSpot's error answer, parsed (hubspot-api.md §2.1). Every field but `status` and
/// `message` may be missing.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The endpoint label of the failed call.
    pub endpoint: &'static str,
    /// HTTP status.
    pub status: u16,
    /// `category` (`VALIDATION_ERROR`, `OBJECT_NOT_FOUND`, `CONFLICT`, …); for 429s HubSpot's
    /// `errorType` (`RATE_LIMIT`).
    pub category: Option<String>,
    /// `subCategory`, e.g. `Properties.PROPERTY_WITH_NAME_EXISTS`.
    pub sub_category: Option<String>,
    /// Human-readable message (may embed values; never log it at info level).
    pub message: String,
    /// `correlationId` (or the `X-HubSpot-Correlation-Id` header), for HubSpot support.
    pub correlation_id: Option<String>,
    /// 429 only: `TEN_SECONDLY_ROLLING`, `SECONDLY` or `DAILY`.
    pub policy_name: Option<String>,
    /// `context`: name → values.
    pub context: BTreeMap<String, Vec<String>>,
    /// `errors[]`: per-field details.
    pub details: Vec<ErrorDetail>,
    /// `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
    /// The retry verdict of [`crate::retry::classify`] for this status.
    pub retryable: bool,
}

impl ApiError {
    /// The id of the record that already holds a unique value: `context.existingId`, or
    /// parsed from `"… Existing ID: 123"` in the message.
    pub fn existing_id(&self) -> Option<u64> {
        existing_id_in(&self.context, &self.message)
    }
}

/// One entry of `errors[]` in an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorDetail {
    /// What went wrong.
    pub message: String,
    /// A token such as `PROPERTY_DOESNT_EXIST` or `INVALID_OPTION`.
    pub code: Option<String>,
    /// Context: name → values (e.g. `propertyName`).
    pub context: BTreeMap<String, Vec<String>>,
}

/// The JSON error body, every field optional as HubSpot's docs advise.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ErrorBody {
    message: Option<String>,
    category: Option<String>,
    sub_category: Option<serde_json::Value>,
    error_type: Option<String>,
    correlation_id: Option<String>,
    policy_name: Option<String>,
    #[serde(deserialize_with = "crate::wire::lenient_context")]
    context: BTreeMap<String, Vec<String>>,
    errors: Vec<ErrorDetail>,
}

fn json_to_string(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn fallback_message(status: u16, body: &[u8]) -> String {
    match status {
        414 => "request URI too long".to_owned(),
        _ if body.is_empty() => format!("HTTP {status} with an empty body"),
        _ => format!("HTTP {status} with a non-JSON body"),
    }
}

/// `context.existingId[0]`, else the number after `Existing ID:` in the message.
pub(crate) fn existing_id_in(
    context: &BTreeMap<String, Vec<String>>,
    message: &str,
) -> Option<u64> {
    if let Some(id) = context.get("existingId").and_then(|v| v.first())
        && let Ok(id) = id.trim().parse()
    {
        return Some(id);
    }
    let (_, rest) = message.split_once("Existing ID:")?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_email_409_becomes_already_exists_with_the_id() {
        let body = br#"{"status":"error","message":"Contact already exists. Existing ID: 171591000198","correlationId":"c-1","category":"CONFLICT"}"#;
        let err = HubSpotError::from_response("objects.create", 409, body, None, None);
        match &err {
            HubSpotError::AlreadyExists { existing_id, api } => {
                assert_eq!(*existing_id, 171_591_000_198);
                assert_eq!(api.category.as_deref(), Some("CONFLICT"));
                assert_eq!(api.correlation_id.as_deref(), Some("c-1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.is_retryable());
    }

    #[test]
    fn existing_id_prefers_context() {
        let mut ctx = BTreeMap::new();
        ctx.insert("existingId".to_owned(), vec!["42".to_owned()]);
        assert_eq!(existing_id_in(&ctx, "Contact already exists"), Some(42));
        assert_eq!(
            existing_id_in(&BTreeMap::new(), "Contact already exists"),
            None
        );
    }

    #[test]
    fn rate_limit_body_is_parsed_and_retryable() {
        let body = br#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"TEN_SECONDLY_ROLLING","groupName":"g"}"#;
        let err = HubSpotError::from_response(
            "objects.list",
            429,
            body,
            Some(Duration::from_secs(1)),
            None,
        );
        let api = err.api().expect("api error");
        assert_eq!(api.category.as_deref(), Some("RATE_LIMIT"));
        assert_eq!(api.policy_name.as_deref(), Some("TEN_SECONDLY_ROLLING"));
        assert!(err.is_retryable());
        assert!(err.is_rate_limited());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn html_414_is_permanent_and_readable() {
        let body = b"<html><head><title>414 Request-URI Too Large</title></head></html>";
        let err = HubSpotError::from_response("objects.list", 414, body, None, Some("h".into()));
        assert!(!err.is_retryable());
        let api = err.api().expect("api error");
        assert_eq!(api.message, "request URI too long");
        assert_eq!(api.correlation_id.as_deref(), Some("h"));
    }

    #[test]
    fn validation_details_and_string_subcategory() {
        let body = br#"{"status":"error","message":"Property values were not valid","correlationId":"a","errors":[{"message":"Property \"x\" does not exist","code":"PROPERTY_DOESNT_EXIST","context":{"propertyName":["x"]}}],"category":"VALIDATION_ERROR","subCategory":"crm.X"}"#;
        let err = HubSpotError::from_response("objects.update", 400, body, None, None);
        let api = err.api().expect("api error");
        assert_eq!(
            api.details[0].code.as_deref(),
            Some("PROPERTY_DOESNT_EXIST")
        );
        assert_eq!(api.sub_category.as_deref(), Some("crm.X"));
        assert!(!err.is_retryable());
        let shown = err.to_string();
        assert!(
            shown.contains("400") && shown.contains("VALIDATION_ERROR"),
            "{shown}"
        );
        assert!(
            !shown.contains("does not exist"),
            "messages may quote values: {shown}"
        );
    }
}
