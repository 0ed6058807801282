//! Webhook deliveries from the emulator verify with this crate's signature code: two
//! independent readings of HubSpot's signing rules agree, and tampering is caught.

use std::time::Duration;

use hubsync_emulator::EmulatorConfig;
use hubsync_hubspot::ObjectInput;
use hubsync_hubspot::webhook::{EventKind, SignatureVerifier, SignedRequest, parse_events};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Portal, client_config, unlimited};

const SECRET: &str = "client-secret-for-tests";

/// One HTTP request as received.
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Accepts one connection, reads one request, answers 204.
async fn receive_one(listener: &TcpListener) -> Received {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    socket
        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .expect("answer");
    Received {
        method,
        target,
        headers,
        body,
    }
}

#[tokio::test]
async fn emulator_deliveries_verify_and_tampering_does_not() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = format!(
        "http://{}/hooks/hubspot?portal=1",
        listener.local_addr().expect("addr")
    );
    let config = EmulatorConfig {
        webhook_url: Some(target.clone()),
        webhook_secret: Some(SECRET.to_owned()),
        ..unlimited()
    };
    let portal = Portal::with(config, client_config).await;
    let created = portal
        .client
        .create_object(
            "contacts",
            &ObjectInput::new([("email", "hook@example.com")]),
        )
        .await
        .expect("created");

    let request = tokio::time::timeout(Duration::from_secs(30), receive_one(&listener))
        .await
        .expect("a delivery within the deadline");
    assert_eq!(request.method, "POST");
    let uri = format!(
        "{}{}",
        target.split("/hooks").next().unwrap_or_default(),
        request.target
    );
    assert_eq!(uri, target);

    let signed = SignedRequest {
        method: &request.method,
        uri: &uri,
        body: &request.body,
        signature: request.header("X-HubSpot-Signature"),
        signature_version: request.header("X-HubSpot-Signature-Version"),
        signature_v3: request.header("X-HubSpot-Signature-v3"),
        timestamp: request.header("X-HubSpot-Request-Timestamp"),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let verifier = SignatureVerifier::new(SECRET.into()).accept_legacy(true, true);
    verifier
        .verify(&signed, now)
        .expect("the emulator's v3 signature verifies");
    if let Some(v1) = signed.signature {
        let legacy = SignedRequest {
            signature_v3: None,
            ..signed
        };
        verifier
            .verify(&legacy, now)
            .unwrap_or_else(|e| panic!("legacy signature {v1:?}: {e}"));
    }

    let mut tampered_body = request.body.clone();
    tampered_body.push(b' ');
    let tampered = SignedRequest {
        body: &tampered_body,
        ..signed
    };
    assert!(verifier.verify(&tampered, now).is_err());
    let wrong_secret = SignatureVerifier::new("not-the-secret".into());
    assert!(wrong_secret.verify(&signed, now).is_err());
    let late = now + 10 * 60 * 1000;
    assert!(
        verifier.verify(&signed, late).is_err(),
        "a replay ten minutes later is refused"
    );

    let events = parse_events(&request.body).expect("events parse");
    assert!(
        events
            .iter()
            .any(|e| e.kind() == EventKind::Creation && e.object_id == Some(created.id)),
        "{events:?}"
    );
}
