//! `POST {server.webhook_path}`: HubSpot's webhook deliveries.
//!
//! The raw body is checked against the app's client secret (v3: HMAC over method, full URI,
//! body and timestamp, refused outside the timestamp window; v1/v2 only where configured),
//! parsed, and committed to `hubsync.inbox` (deduplicated by `eventId`) **before** the
//! answer: 204 means "stored", and when PostgreSQL cannot store it the answer is 503 so
//! HubSpot delivers again — an event is never accepted and lost. Events are hints only: the
//! inbox worker ([`crate::daemon`]) re-reads the records they name.
//!
//! Nothing is logged about the body beyond counts; `propertyValue` is dropped before
//! storing (the record is re-read, and only synced properties may leave HubSpot).

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
};
use chrono::Utc;
use hubsync_engine::webhook_inbox::inbox_event;
use hubsync_hubspot::webhook::{
    SIGNATURE_HEADER, SIGNATURE_V3_HEADER, SIGNATURE_VERSION_HEADER, SignatureError,
    SignatureVerifier, SignedRequest, TIMESTAMP_HEADER, parse_events,
};
use hubsync_store::{
    Store,
    state::inbox::{self, InboxEvent},
};
use url::Url;

use super::WebState;
use crate::telemetry::names;

/// How long storing a delivery may take before HubSpot is told to retry (HubSpot itself
/// waits 5 s).
const STORE_TIMEOUT: Duration = Duration::from_secs(4);

/// What the receiver needs.
#[derive(Debug, Clone)]
pub(crate) struct Receiver {
    /// Where events are stored.
    pub(crate) store: Store,
    /// Checks signatures with the app's client secret.
    pub(crate) verifier: SignatureVerifier,
    /// The public base URL HubSpot calls; `None`: from the request's headers.
    pub(crate) public_url: Option<Url>,
}

/// The handler.
pub(crate) async fn receive(
    State(state): State<WebState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(receiver) = state.webhooks.as_ref() else {
        return StatusCode::NOT_FOUND;
    };
    let (status, outcome) = receiver.handle(&method, &uri, &headers, &body).await;
    metrics::counter!(names::WEBHOOK_REQUESTS, "outcome" => outcome).increment(1);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // PostgreSQL could not store the events: not ready until the observer's next probe
        // reaches it again (instead of up to one probe period later).
        state.readiness.set_postgres(false);
    }
    status
}

impl Receiver {
    async fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, &'static str) {
        let full_uri = self.full_uri(uri, headers);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let request = SignedRequest {
            method: method.as_str(),
            uri: &full_uri,
            body,
            signature: header(SIGNATURE_HEADER),
            signature_version: header(SIGNATURE_VERSION_HEADER),
            signature_v3: header(SIGNATURE_V3_HEADER),
            timestamp: header(TIMESTAMP_HEADER),
        };
        if let Err(err) = self
            .verifier
            .verify(&request, Utc::now().timestamp_millis())
        {
            tracing::warn!(error = %err, "webhook refused");
            return match err {
                SignatureError::Expired | SignatureError::BadTimestamp => {
                    (StatusCode::UNAUTHORIZED, "stale")
                }
                _ => (StatusCode::UNAUTHORIZED, "bad_signature"),
            };
        }
        let events = match parse_events(body) {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(error = %err, bytes = body.len(), "webhook body is not an event array");
                return (StatusCode::BAD_REQUEST, "malformed");
            }
        };
        let rows: Vec<InboxEvent> = events.into_iter().map(inbox_event).collect();
        match tokio::time::timeout(STORE_TIMEOUT, self.store_events(&rows)).await {
            Ok(Ok((new, duplicate))) => {
                metrics::counter!(names::WEBHOOK_EVENTS, "outcome" => "new").increment(new);
                metrics::counter!(names::WEBHOOK_EVENTS, "outcome" => "duplicate")
                    .increment(duplicate);
                tracing::debug!(new, duplicate, "webhook events stored");
                (StatusCode::NO_CONTENT, "accepted")
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot store webhook events; HubSpot will retry");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            Err(_) => {
                tracing::error!("storing webhook events timed out; HubSpot will retry");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        }
    }

    async fn store_events(
        &self,
        rows: &[InboxEvent],
    ) -> Result<(u64, u64), hubsync_store::StoreError> {
        let client = self.store.client().await?;
        let fresh = inbox::insert(&client, rows).await?;
        let new = fresh.iter().filter(|n| **n).count() as u64;
        Ok((new, fresh.len() as u64 - new))
    }

    /// The URI HubSpot signed: the configured public URL with the request's path and query,
    /// else `X-Forwarded-Proto` (default `http`) `://` `Host` path and query.
    fn full_uri(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        if let Some(base) = &self.public_url {
            let base = base.as_str().trim_end_matches('/');
            return format!("{base}{path}");
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map_or("http", str::trim);
        format!("{scheme}://{host}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a v3-signed delivery of `body` for `http://hubsync.test/hook`.
    fn signed(body: &str, secret: &str) -> (Uri, HeaderMap) {
        use hubsync_hubspot::webhook::{SignatureVersion, sign};
        let ts = Utc::now().timestamp_millis().to_string();
        let uri = "http://hubsync.test/hook";
        let sig = sign(
            SignatureVersion::V3,
            secret,
            "POST",
            uri,
            body.as_bytes(),
            &ts,
        );
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_V3_HEADER, sig.parse().expect("header"));
        headers.insert(TIMESTAMP_HEADER, ts.parse().expect("header"));
        (Uri::from_static("/hook"), headers)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stored_then_answered_and_503_when_postgres_cannot_store() {
        let db = hubsync_store::TestDb::new().await;
        let store = Store::connect(db.url()).await.expect("store");
        let receiver = Receiver {
            store: store.clone(),
            verifier: SignatureVerifier::new("s3cret".to_owned().into()),
            public_url: Some(Url::parse("http://hubsync.test").expect("url")),
        };
        let body =
            r#"[{"eventId":1,"occurredAt":1,"subscriptionType":"contact.creation","objectId":5}]"#;
        let (uri, headers) = signed(body, "s3cret");
        let answer = receiver
            .handle(&Method::POST, &uri, &headers, body.as_bytes())
            .await;
        assert_eq!(answer, (StatusCode::NO_CONTENT, "accepted"));
        let conn = db.store().client().await.expect("conn");
        let stored: i64 = conn
            .query_one("SELECT count(*) FROM hubsync.inbox", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(stored, 1, "answered only after storing");

        let (uri, headers) = signed(body, "wrong");
        let answer = receiver
            .handle(&Method::POST, &uri, &headers, body.as_bytes())
            .await;
        assert_eq!(answer, (StatusCode::UNAUTHORIZED, "bad_signature"));

        store.close();
        let body = body.replace("\"eventId\":1", "\"eventId\":2");
        let (uri, headers) = signed(&body, "s3cret");
        let answer = receiver
            .handle(&Method::POST, &uri, &headers, body.as_bytes())
            .await;
        assert_eq!(
            answer,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            "HubSpot must retry"
        );
    }

    #[test]
    fn stored_events_carry_no_property_value() {
        let body = br#"[{"eventId":7,"occurredAt":1711234567890,"subscriptionType":"contact.propertyChange",
            "objectId":123,"propertyName":"email","propertyValue":"secret@example.com"}]"#;
        let events = parse_events(body).expect("parses");
        let row = inbox_event(events.into_iter().next().expect("one"));
        assert_eq!(row.event_id, "7");
        assert_eq!(row.object, "contacts");
        assert_eq!(row.hs_object_id, Some(123));
        assert!(!row.payload.to_string().contains("secret@example.com"));
    }
}
