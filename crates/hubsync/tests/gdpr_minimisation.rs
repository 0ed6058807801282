//! Data minimisation: with an allowlist, a property outside it never leaves HubSpot — no
//! column, nothing in `custom_properties`, the audit log, the shadow copy, the inbox (the
//! webhook carried the value: it is dropped), or the daemon's log — while an allowlisted
//! property edited in the same change does arrive.

use serde_json::json;

use crate::daemon_kit::{Kit, Knobs};

const SECRET: &str = "Chief-Secret-Officer-4711";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_outside_the_allowlist_is_stored_nowhere() {
    let kit = Kit::start(Knobs {
        reconcile_every: "1s",
        contacts: 3,
    })
    .await;
    let id = kit.ids(1).await[0];
    // `jobtitle` is not in the kit's allowlist (email, firstname, lastname, phone).
    kit.edit(id, json!({"jobtitle": SECRET, "lastname": "Minimised"}))
        .await;
    let k = &kit;
    k.wait_for("the allowlisted change", || async move {
        k.scalar::<Option<String>>(&format!(
            "SELECT lastname FROM hubspot.contacts WHERE hs_object_id = {id}"
        ))
        .await
        .ok()
        .flatten()
        .as_deref()
            == Some("Minimised")
    })
    .await;
    k.wait_for("the webhook in the inbox", || async move {
        k.scalar::<i64>("SELECT count(*) FROM hubsync.inbox WHERE payload::text ILIKE '%jobtitle%'")
            .await
            .ok()
            .is_some_and(|n| n > 0)
    })
    .await;
    // Every table hubsync writes (synced tables and its own state), every column, as text.
    let tables: Vec<String> = {
        let conn = kit.db.store().client().await.expect("conn");
        conn.query(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables \
             WHERE table_schema IN ('hubspot', 'hubsync') AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert!(tables.len() > 10, "{tables:?}");
    for table in &tables {
        let n: i64 = kit
            .scalar(&format!(
                "SELECT count(*) FROM {table} t WHERE t::text ILIKE '%{SECRET}%'"
            ))
            .await
            .expect(table);
        assert_eq!(n, 0, "{SECRET} found in {table}");
    }
    let column: i64 = kit
        .scalar(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = 'hubspot' AND column_name = 'jobtitle'",
        )
        .await
        .expect("columns");
    assert_eq!(column, 0, "no column for a property outside the allowlist");
    let custom: i64 = kit
        .scalar("SELECT count(*) FROM hubspot.contacts WHERE custom_properties ? 'jobtitle'")
        .await
        .expect("custom");
    assert_eq!(custom, 0, "not in custom_properties either");
    assert!(!kit.daemon_log().contains(SECRET), "not in the logs");
}
