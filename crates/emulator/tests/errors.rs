//! Error model: 401, correlation ids, malformed input, 414, never a dropped connection (§1.3,
//! §2, §15, §16.8, §16.13).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Emu, reply};

#[tokio::test]
async fn missing_or_wrong_token_is_hubspots_401() {
    let emu = Emu::start().await;
    for auth in [None, Some("Bearer wrong"), Some("Basic abc")] {
        let mut req = emu
            .http
            .get(format!("{}/crm/v3/objects/contacts", emu.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = reply(req.send().await.expect("sent")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["category"], "INVALID_AUTHENTICATION");
        assert_eq!(r.headers["x-hubspot-auth-failure"], "401 Unauthorized");
        assert!(
            r.body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Authentication credentials not found."))
        );
    }
}

#[tokio::test]
async fn every_response_carries_a_correlation_id() {
    let emu = Emu::start().await;
    let ok = emu.get("/crm/v3/objects/contacts").await;
    assert!(ok.headers.contains_key("x-hubspot-correlation-id"));
    let err = emu.get("/crm/v3/objects/contacts/1").await;
    let header = err.headers["x-hubspot-correlation-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        err.body["correlationId"],
        header.as_str(),
        "§16.8 body repeats the header"
    );
    assert_eq!(err.body["status"], "error");
    let none = emu.get("/no/such/route").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.body["correlationId"].is_string());
}

#[tokio::test]
async fn bad_input_gets_400_bodies_not_dropped_connections() {
    let emu = Emu::start().await;
    let url = format!("{}/crm/v3/objects/contacts", emu.base);
    let send = |body: Vec<u8>| {
        emu.http
            .post(url.clone())
            .bearer_auth("pat-na1-test")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = reply(
        send(b"{\"properties\": {".to_vec())
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid input JSON on line 1, column"))
    );
    let r = reply(
        send(b"{\"properties\": [1,2]}".to_vec())
            .await
            .expect("answered"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "wrong type");
    let r = reply(
        send(vec![b' '; 9 * 1024 * 1024])
            .await
            .expect("answered, not dropped"),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["status"], "error");
    for q in [
        "limit=0",
        "limit=-5",
        "limit=99999999999999999999",
        "limit=abc",
        "after=xyz",
        "archived=maybe",
    ] {
        let r = emu.get(&format!("/crm/v3/objects/contacts?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.body["category"], "VALIDATION_ERROR");
    }
    let r = emu
        .call(Method::PUT, "/crm/v3/objects/contacts", Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn over_long_urls_get_the_html_414() {
    let emu = Emu::start().await;
    let names: Vec<String> = (0..2000).map(|i| format!("property_{i}")).collect();
    let r = emu
        .get(&format!(
            "/crm/v3/objects/contacts?properties={}",
            names.join(",")
        ))
        .await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert!(
        r.body
            .as_str()
            .is_some_and(|b| b.contains("<title>414 Request-URI Too Large</title>")),
        "§16.13 HTML body"
    );
    assert!(r.headers.contains_key("x-hubspot-correlation-id"));
}

#[tokio::test]
async fn framework_rejections_still_get_hubspot_bodies() {
    let emu = Emu::start().await;
    let r = emu.get("/crm/v3/objects/contacts/%FF%FE").await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(r.body["status"], "error", "{}", r.body);
    assert!(r.body["correlationId"].is_string());
}
