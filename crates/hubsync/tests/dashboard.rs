//! The dashboard served by `hubsync run` (real binary, emulator, PostgreSQL): every page
//! loads, forms need the CSRF token and the same origin, a mapping change applies to the
//! running daemon without a restart, and a conflict is resolved from the page.

use serde_json::json;

use crate::daemon_kit::{Kit, Knobs, WEBHOOK_PATH};

/// The per-process form token, read from a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf field");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

async fn get(kit: &Kit, path: &str) -> (u16, String) {
    let r = kit
        .http
        .get(format!("http://127.0.0.1:{}{path}", kit.port))
        .send()
        .await
        .expect("GET");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn post(kit: &Kit, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = client
        .post(format!("http://127.0.0.1:{}{path}", kit.port))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.expect("POST").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_forms_mapping_and_conflicts() {
    let mut kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 3,
    })
    .await;
    for path in [
        "/",
        "/budget",
        "/conflicts",
        "/issues",
        "/mapping",
        "/audit",
        "/budget/chart.svg",
    ] {
        let (status, body) = get(&kit, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, overview) = get(&kit, "/").await;
    assert!(overview.contains("data-object=\"contacts\""), "{overview}");
    assert!(overview.contains("<svg"), "the budget chart");
    let (_, mapping) = get(&kit, "/mapping?object=contacts").await;
    assert!(mapping.contains("data-property=\"phone\""), "{mapping}");
    let token = csrf(&mapping);
    let origin = format!("http://127.0.0.1:{}", kit.port);

    // Forms without the token, or from another origin, are refused.
    let form = [
        ("object", "contacts"),
        ("property", "phone"),
        ("synced", "no"),
    ];
    assert_eq!(post(&kit, "/mapping", &form, None).await, 403);
    let with_token = [
        ("csrf", token.as_str()),
        ("object", "contacts"),
        ("property", "phone"),
        ("synced", "no"),
    ];
    assert_eq!(
        post(&kit, "/mapping", &with_token, Some("http://evil.example")).await,
        403
    );
    assert_eq!(
        kit.scalar::<i64>("SELECT count(*) FROM hubsync.mapping_overrides")
            .await
            .ok(),
        Some(0)
    );

    // Exclude `phone` while the daemon runs: HubSpot's next phone edit stays out of
    // PostgreSQL while the lastname edited with it arrives.
    assert_eq!(
        post(&kit, "/mapping", &with_token, Some(&origin)).await,
        303
    );
    let id = kit.ids(1).await[0];
    let phone_before: Option<String> = kit
        .scalar(&format!(
            "SELECT phone FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await
        .expect("phone");
    kit.edit(
        id,
        json!({"phone": "+1 555 0100", "lastname": "Excluded-Test"}),
    )
    .await;
    let k = &kit;
    k.wait_for("lastname from HubSpot", || async move {
        k.scalar::<Option<String>>(&format!(
            "SELECT lastname FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await
        .ok()
        .flatten()
        .as_deref()
            == Some("Excluded-Test")
    })
    .await;
    let phone_after: Option<String> = kit
        .scalar(&format!(
            "SELECT phone FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await
        .expect("phone");
    assert_eq!(
        phone_after, phone_before,
        "an excluded property is not written"
    );
    let (_, mapping) = get(&kit, "/mapping?object=contacts").await;
    assert!(mapping.contains("(override)"), "{mapping}");

    // Make `firstname` manual, then edit it on both sides while the daemon is down: the
    // conflict waits on the page, and taking PostgreSQL's value writes it to HubSpot.
    let manual = [
        ("csrf", token.as_str()),
        ("object", "contacts"),
        ("property", "firstname"),
        ("conflict", "manual"),
    ];
    assert_eq!(post(&kit, "/mapping", &manual, Some(&origin)).await, 303);
    kit.kill_daemon();
    kit.sql(&format!(
        "UPDATE hubspot.contacts SET firstname = 'FromPostgres' WHERE hs_object_id = {id}"
    ))
    .await;
    kit.edit(id, json!({"firstname": "FromHubSpot"})).await;
    kit.spawn_daemon().await;
    let k = &kit;
    k.wait_for("a manual conflict", || async move {
        k.scalar::<i64>("SELECT count(*) FROM hubsync.conflicts WHERE status = 'open'")
            .await
            .ok()
            == Some(1)
    })
    .await;
    let conflict: i64 = kit
        .scalar("SELECT id FROM hubsync.conflicts WHERE status = 'open'")
        .await
        .expect("conflict id");
    let (_, page) = get(&kit, "/conflicts").await;
    assert!(
        page.contains(&format!("data-conflict=\"{conflict}\"")),
        "{page}"
    );
    let token = csrf(&page);
    let take = [("csrf", token.as_str()), ("take", "postgres")];
    let path = format!("/conflicts/{conflict}/resolve");
    assert_eq!(post(&kit, &path, &take, Some(&origin)).await, 303);
    let k = &kit;
    k.wait_for("PostgreSQL's value in HubSpot", || async move {
        k.hubspot_value(id, "firstname").await.as_deref() == Some("FromPostgres")
    })
    .await;
    let (_, page) = get(&kit, "/conflicts").await;
    assert!(page.contains("No open conflicts"), "{page}");

    // A data issue is dismissed; a rejected write is discarded.
    kit.sql(&format!(
        "INSERT INTO hubsync.issues (object, hs_object_id, property, raw_value, reason) \
         VALUES ('contacts', {id}, 'phone', 'x', 'not a phone'); \
         INSERT INTO hubsync.record_state (object, row_key, status, last_error) \
         VALUES ('contacts', 'gone-row', 'failed', 'INVALID_OPTION'); \
         INSERT INTO hubsync.outbox (object, source_table, op, row_key, changed_columns, status) \
         VALUES ('contacts', 'contacts', 'UPDATE', 'gone-row', '{{phone}}', 'failed')"
    ))
    .await;
    let (_, page) = get(&kit, "/issues").await;
    assert!(
        page.contains("INVALID_OPTION") && page.contains("not a phone"),
        "{page}"
    );
    let issue: i64 = kit
        .scalar("SELECT id FROM hubsync.issues")
        .await
        .expect("issue");
    let token = csrf(&page);
    let dismiss = format!("/issues/{issue}/dismiss");
    assert_eq!(
        post(&kit, &dismiss, &[("csrf", token.as_str())], Some(&origin)).await,
        303
    );
    let discard = [
        ("csrf", token.as_str()),
        ("object", "contacts"),
        ("row_key", "gone-row"),
    ];
    assert_eq!(
        post(&kit, "/rejected/discard", &discard, Some(&origin)).await,
        303
    );
    let left: i64 = kit
        .scalar(
            "SELECT (SELECT count(*) FROM hubsync.issues) \
                  + (SELECT count(*) FROM hubsync.record_state WHERE row_key = 'gone-row') \
                  + (SELECT count(*) FROM hubsync.outbox WHERE row_key = 'gone-row')",
        )
        .await
        .expect("left");
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_per_incident_and_recover() {
    let out = tempfile::tempdir().expect("tempdir");
    let log = out.path().join("alerts.jsonl");
    // A webhook target that keeps what it receives.
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&received);
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |body: String| {
            let sink = std::sync::Arc::clone(&sink);
            async move {
                sink.lock().expect("lock").push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/alerts", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let extra = format!(
        "\n[alerts]\ncommand = \"cat >> {}\"\nwebhook_url = \"{hook}\"\n\
         check_every = \"100ms\"\nopen_conflicts = 1\n",
        log.display()
    );
    let kit = Kit::start_with(
        Knobs {
            reconcile_every: "1h",
            contacts: 1,
        },
        &extra,
    )
    .await;
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let id = kit.ids(1).await[0];
    kit.sql(&format!(
        "INSERT INTO hubsync.conflicts (object, hs_object_id, field, hubspot_value, postgres_value) \
         VALUES ('contacts', {id}, 'firstname', 'a', 'b')"
    ))
    .await;
    let k = &kit;
    k.wait_for("the firing notice", || async move {
        read().contains("\"firing\"")
    })
    .await;
    kit.sql("DELETE FROM hubsync.conflicts").await;
    k.wait_for("the recovery notice", || async move {
        read().contains("\"resolved\"")
    })
    .await;
    let text = read();
    let notices: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON notice per line"))
        .collect();
    assert_eq!(
        notices.len(),
        2,
        "once per incident, not once per check: {text}"
    );
    assert_eq!(notices[0]["alert"], "open_conflicts");
    assert_eq!(notices[1]["status"], "resolved");
    let posted = received.lock().expect("lock").clone();
    assert_eq!(
        posted.len(),
        2,
        "the webhook got the same two notices: {posted:?}"
    );
    assert!(posted[0].contains("\"firing\"") && posted[1].contains("\"resolved\""));
}

/// A mapping change saved on one instance's dashboard applies to another running instance
/// without a restart (not at its next reconciliation round, an hour away): once the first
/// instance is gone, the peer alone brings in the newly included property's next edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_change_applies_to_every_running_instance() {
    let mut kit = Kit::start(Knobs {
        reconcile_every: "1h",
        contacts: 3,
    })
    .await;
    let peer = kit.spawn_peer().await;
    let (_, page) = get(&kit, "/mapping?object=contacts").await;
    let token = csrf(&page);
    let origin = format!("http://127.0.0.1:{}", kit.port);
    let include = [
        ("csrf", token.as_str()),
        ("object", "contacts"),
        ("property", "jobtitle"),
        ("synced", "yes"),
    ];
    assert_eq!(post(&kit, "/mapping", &include, Some(&origin)).await, 303);
    let k = &kit;
    k.wait_for("the peer to refresh its mapping", || async move {
        k.peer_log()
            .contains("field mapping changed; catalog refreshed")
    })
    .await;
    kit.kill_daemon();
    // From now on only the peer works, and HubSpot's webhooks go to it.
    kit.webhook_settings(json!({
        "url": format!("http://127.0.0.1:{}{WEBHOOK_PATH}", peer.port)
    }))
    .await;
    let id = kit.ids(1).await[0];
    kit.edit(id, json!({"jobtitle": "Peer title"})).await;
    let sql = format!("SELECT jobtitle FROM hubspot.contacts WHERE hs_object_id = {id}");
    kit.wait_for_text(
        "the included property's value through the peer",
        &sql,
        "Peer title",
    )
    .await;
}
