//! Webhook delivery over real HTTP to a receiver that verifies signatures independently
//! (hubspot-api.md §12, §16.14): arrays, fields, v1/v3 signatures, retries with increasing
//! `attemptNumber`, batching, faults, runtime configuration and the management API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use hubsync_emulator::{ChangeSource, CrmEvent, EmulatorConfig, EventKind, ObjectTypeId};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::emulator_kit::{Calls, eventually, start};
use crate::harness::Emu;

const SECRET: &str = "test-client-secret";
const WAIT: Duration = Duration::from_secs(10);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HeaderMap,
    events: Vec<Value>,
    v1_valid: bool,
    v2_valid: bool,
    v3_valid: bool,
}

/// A webhook target on 127.0.0.1:0 that records deliveries and can fail on demand.
#[derive(Clone, Default)]
struct Receiver {
    uri: Arc<Mutex<String>>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicUsize>,
    /// Answer this status to every request (0: 200).
    always: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (String, Self) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let uri = format!(
            "http://{}/hook",
            listener.local_addr().expect("receiver address")
        );
        *receiver.uri.lock().expect("lock") = uri.clone();
        let app = Router::new()
            .route("/hook", post(accept))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (uri, receiver)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().expect("lock").clone()
    }

    fn events(&self) -> Vec<Value> {
        self.deliveries()
            .into_iter()
            .flat_map(|d| d.events)
            .collect()
    }

    /// Waits until at least `n` events arrived.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        eventually(WAIT, || async {
            let events = self.events();
            (events.len() >= n).then_some(events)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} events, got {:?}", self.events()))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Verifies signatures the way a receiver following HubSpot's docs would (§12.5).
async fn accept(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let uri = r.uri.lock().expect("lock").clone();
    let timestamp = header(&headers, "x-hubspot-request-timestamp");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
    mac.update(format!("POST{uri}").as_bytes());
    mac.update(&body);
    mac.update(timestamp.as_bytes());
    let expected_v3 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut hash = Sha256::new();
    hash.update(SECRET.as_bytes());
    hash.update(&body);
    let expected_v1 = hex::encode(hash.finalize());
    let mut hash = Sha256::new();
    hash.update(format!("{SECRET}POST{uri}").as_bytes());
    hash.update(&body);
    let expected_v2 = hex::encode(hash.finalize());
    let events = serde_json::from_slice::<Vec<Value>>(&body).unwrap_or_default();
    r.deliveries.lock().expect("lock").push(Delivery {
        v1_valid: header(&headers, "x-hubspot-signature") == expected_v1,
        v2_valid: header(&headers, "x-hubspot-signature") == expected_v2,
        v3_valid: header(&headers, "x-hubspot-signature-v3") == expected_v3,
        headers,
        events,
    });
    let always = r.always.load(Ordering::SeqCst);
    if always != 0 {
        return StatusCode::from_u16(u16::try_from(always).unwrap_or(500))
            .unwrap_or(StatusCode::OK);
    }
    let failing = r.fail_first.load(Ordering::SeqCst);
    if failing > 0 {
        r.fail_first.store(failing - 1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

/// An emulator delivering to a fresh receiver, flushing every 20 ms, retrying after 10 ms.
async fn setup() -> (Emu, Receiver) {
    let (uri, receiver) = Receiver::start().await;
    let live = start(EmulatorConfig {
        webhook_url: Some(uri),
        webhook_secret: Some(SECRET.to_owned()),
        rate_limit: None,
        ..EmulatorConfig::default()
    })
    .await;
    let fast = json!({"flush_ms": 20, "retry_base_ms": 10, "retry_max_ms": 50});
    let (status, body) = live.json("POST", "/_emulator/webhooks", Some(fast)).await;
    assert_eq!(status, 200, "{body}");
    (live, receiver)
}

fn property_change(id: u64, name: &str, value: &str) -> CrmEvent {
    CrmEvent {
        kind: EventKind::PropertyChange {
            property_name: name.into(),
            property_value: value.into(),
        },
        object_type_id: ObjectTypeId::CONTACT,
        object_id: id,
        occurred_at: 1_711_234_567_890,
        change_source: ChangeSource::Integration,
        source_id: None,
    }
}

async fn faults(live: &Emu, body: Value) {
    let (status, answer) = live.json("POST", "/_emulator/faults", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
}

async fn webhook_stats(live: &Emu) -> Value {
    live.json("GET", "/_emulator/stats", None).await.1["webhooks"].clone()
}

#[tokio::test]
async fn deliveries_are_signed_arrays_with_hubspot_fields() {
    let (live, receiver) = setup().await;
    for id in 1..=3 {
        live.handle
            .events()
            .publish(property_change(id, "lifecyclestage", "lead"));
    }
    let events = receiver.wait_for(3).await;
    for delivery in receiver.deliveries() {
        assert!(delivery.v3_valid, "v3 signature verifies");
        assert!(delivery.v1_valid, "v1 signature verifies");
        assert_eq!(
            header(&delivery.headers, "x-hubspot-signature-version"),
            "v1"
        );
        assert_eq!(
            header(&delivery.headers, "content-type"),
            "application/json"
        );
        let ts: i64 = header(&delivery.headers, "x-hubspot-request-timestamp")
            .parse()
            .unwrap_or(0);
        assert!((chrono::Utc::now().timestamp_millis() - ts).abs() < 300_000);
    }
    let event = &events[0];
    assert_eq!(event["subscriptionType"], "contact.propertyChange");
    assert_eq!(event["propertyName"], "lifecyclestage");
    assert_eq!(event["propertyValue"], "lead");
    assert_eq!(event["attemptNumber"], 0);
    assert_eq!(event["changeSource"], "INTEGRATION");
    assert_eq!(event["occurredAt"], json!(1_711_234_567_890_i64));
    assert_eq!(
        event["portalId"],
        json!(EmulatorConfig::default().portal_id)
    );
    for field in ["eventId", "subscriptionId", "appId", "objectId"] {
        assert!(event[field].is_u64(), "{field} is a number: {event}");
    }
    let mut ids: Vec<u64> = events
        .iter()
        .filter_map(|e| e["eventId"].as_u64())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "eventIds are unique");
}

#[tokio::test]
async fn api_writes_are_integration_changes_and_control_edits_are_ui_changes() {
    let (live, receiver) = setup().await;
    let id = live
        .create("contacts", json!({"email": "hook@example.com"}))
        .await;
    let events = receiver.wait_for(1).await;
    let creation = events
        .iter()
        .find(|e| e["subscriptionType"] == "contact.creation");
    let creation = creation.unwrap_or_else(|| panic!("no creation in {events:?}"));
    assert_eq!(creation["objectId"], json!(id));
    assert_eq!(creation["changeSource"], "INTEGRATION");

    let edit = json!({"properties": {"firstname": "Ada"}});
    let (status, body) = live
        .json(
            "POST",
            &format!("/_emulator/objects/contacts/{id}"),
            Some(edit),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let change = eventually(WAIT, || async {
        receiver
            .events()
            .into_iter()
            .find(|e| e["propertyName"] == "firstname")
    })
    .await
    .unwrap_or_else(|| panic!("no firstname change in {:?}", receiver.events()));
    assert_eq!(change["propertyValue"], "Ada");
    assert_eq!(change["changeSource"], "CRM_UI");
}

#[tokio::test]
async fn association_changes_are_delivered_for_both_sides() {
    let (live, receiver) = setup().await;
    let contact = live.create("contacts", json!({})).await;
    let company = live.create("companies", json!({"name": "Acme"})).await;
    assert_eq!(
        live.associate_default(("contacts", contact), ("companies", company))
            .await
            .0,
        200
    );
    let found = eventually(WAIT, || async {
        let events = receiver.events();
        let contact_side = events.iter().any(|e| {
            e["subscriptionType"] == "contact.associationChange"
                && e["fromObjectId"] == json!(contact)
                && e["toObjectId"] == json!(company)
                && e["associationType"] == "CONTACT_TO_COMPANY"
                && e["associationRemoved"] == false
        });
        let primary = events.iter().any(|e| e["isPrimaryAssociation"] == true);
        let company_side = events.iter().any(|e| {
            e["subscriptionType"] == "company.associationChange"
                && e["fromObjectId"] == json!(company)
        });
        (contact_side && primary && company_side).then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "association events: {:?}",
        receiver.events()
    );
}

#[tokio::test]
async fn failures_are_retried_with_increasing_attempt_numbers() {
    let (live, receiver) = setup().await;
    receiver.fail_first.store(2, Ordering::SeqCst);
    live.handle
        .events()
        .publish(property_change(7, "email", "x@example.com"));
    let events = receiver.wait_for(3).await;
    let attempts: Vec<u64> = events
        .iter()
        .filter_map(|e| e["attemptNumber"].as_u64())
        .collect();
    assert_eq!(attempts, vec![0, 1, 2]);
    let ids: Vec<&Value> = events.iter().map(|e| &e["eventId"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "same eventId on every attempt"
    );
    assert!(
        receiver.deliveries().iter().all(|d| d.v3_valid),
        "each attempt is re-signed"
    );
    let stats = webhook_stats(&live).await;
    assert_eq!(stats["attempts_failed"], 2);
    assert_eq!(stats["retries"], 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (live, receiver) = setup().await;
    receiver.always.store(400, Ordering::SeqCst);
    live.handle
        .events()
        .publish(property_change(8, "email", "y@example.com"));
    let given_up = eventually(WAIT, || async {
        (webhook_stats(&live).await["events_given_up"] == 1).then_some(())
    })
    .await;
    assert!(given_up.is_some());
    assert_eq!(receiver.deliveries().len(), 1);
}

#[tokio::test]
async fn bursts_are_split_into_batches_of_at_most_100() {
    let (live, receiver) = setup().await;
    for id in 1..=250 {
        live.handle
            .events()
            .publish(property_change(id, "phone", "1"));
    }
    let events = receiver.wait_for(250).await;
    assert_eq!(events.len(), 250);
    let deliveries = receiver.deliveries();
    assert!(deliveries.iter().all(|d| d.events.len() <= 100));
    assert!(deliveries.len() >= 3);
}

#[tokio::test]
async fn duplicate_fault_redelivers_with_the_next_attempt_number() {
    let (live, receiver) = setup().await;
    faults(&live, json!({"webhook_duplicate": 1.0})).await;
    live.handle
        .events()
        .publish(property_change(9, "email", "d@example.com"));
    let events = receiver.wait_for(2).await;
    assert_eq!(events[0]["eventId"], events[1]["eventId"]);
    let mut attempts: Vec<u64> = events
        .iter()
        .filter_map(|e| e["attemptNumber"].as_u64())
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, vec![0, 1]);
}

#[tokio::test]
async fn drop_fault_loses_events_and_delay_fault_holds_them() {
    let (live, receiver) = setup().await;
    faults(&live, json!({"webhook_drop": 1.0})).await;
    for id in 1..=4 {
        live.handle
            .events()
            .publish(property_change(id, "email", "z@example.com"));
    }
    let dropped = eventually(WAIT, || async {
        (webhook_stats(&live).await["events_dropped"] == 4).then_some(())
    })
    .await;
    assert!(dropped.is_some());

    faults(
        &live,
        json!({"webhook_delay": 1.0, "webhook_delay_ms": 50, "webhook_reorder": 1.0}),
    )
    .await;
    for id in 10..=12 {
        live.handle
            .events()
            .publish(property_change(id, "email", "late@example.com"));
    }
    let events = receiver.wait_for(3).await;
    assert_eq!(events.len(), 3, "dropped events never arrive");
    let stats = webhook_stats(&live).await;
    assert_eq!(stats["events_delayed"], 3);
    assert!(stats["batches_reordered"].as_u64().unwrap_or(0) >= 1);
}

#[tokio::test]
async fn settings_and_subscriptions_can_be_changed_at_runtime() {
    let live = start(EmulatorConfig {
        rate_limit: None,
        ..EmulatorConfig::default()
    })
    .await;
    live.handle
        .events()
        .publish(property_change(1, "email", "nobody@example.com"));
    let counted = eventually(WAIT, || async {
        (webhook_stats(&live).await["events_without_target"] == 1).then_some(())
    })
    .await;
    assert!(counted.is_some(), "no target: nothing is queued");

    let (uri, receiver) = Receiver::start().await;
    let control = json!({"secret": SECRET, "flush_ms": 20});
    let (status, body) = live
        .json("POST", "/_emulator/webhooks", Some(control))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["secret_set"], true);
    assert!(body.get("secret").is_none(), "the secret is never shown");
    let (status, body) = live
        .json(
            "PUT",
            "/webhooks/v3/1234567/settings",
            Some(json!({"targetUrl": uri})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["targetUrl"], json!(uri));

    let sub =
        json!({"eventType": "contact.propertyChange", "propertyName": "email", "active": true});
    let (status, created) = live
        .json("POST", "/webhooks/v3/1234567/subscriptions", Some(sub))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["propertyName"], "email");
    let sub_id: u64 = created["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("subscription id");

    live.handle
        .events()
        .publish(property_change(2, "email", "two@example.com"));
    let events = receiver.wait_for(2).await;
    let mut subs: Vec<u64> = events
        .iter()
        .filter_map(|e| e["subscriptionId"].as_u64())
        .collect();
    subs.sort_unstable();
    assert!(subs.contains(&sub_id) && subs.len() == 2, "{events:?}");
    assert!(
        receiver
            .deliveries()
            .iter()
            .all(|d| d.v3_valid && d.v1_valid)
    );

    // v2 instead of v1 in X-HubSpot-Signature (v3 is always sent).
    let v2 = json!({"signature_version": "v2"});
    assert_eq!(
        live.json("POST", "/_emulator/webhooks", Some(v2)).await.0,
        200
    );
    live.handle
        .events()
        .publish(property_change(3, "phone", "3"));
    let delivered = eventually(WAIT, || async {
        receiver
            .deliveries()
            .into_iter()
            .find(|d| d.events.iter().any(|e| e["objectId"] == 3))
    })
    .await
    .expect("the v2-signed delivery arrives");
    assert_eq!(
        header(&delivered.headers, "x-hubspot-signature-version"),
        "v2"
    );
    assert!(delivered.v2_valid && delivered.v3_valid);

    let (status, _) = live
        .json(
            "PATCH",
            &format!("/webhooks/v3/1234567/subscriptions/{sub_id}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = live
        .json(
            "DELETE",
            &format!("/webhooks/v3/1234567/subscriptions/{sub_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = live
        .json(
            "GET",
            &format!("/webhooks/v3/1234567/subscriptions/{sub_id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}
