//! `hubsync run` writes an application's junction rows to HubSpot: woken by the outbox
//! notification, it creates the new company first, then the association naming it by row
//! id, fills the ids in, and the webhooks HubSpot sends back change nothing.

use serde_json::Value;

use crate::daemon_kit::{Kit, Knobs};

const COMPANIES: &str =
    "\n[[object]]\nname = \"companies\"\ndirection = \"two-way\"\nproperties = [\"name\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sends_junction_rows_and_their_echo_changes_nothing() {
    let kit = Kit::start_with(
        Knobs {
            reconcile_every: "1h",
            contacts: 1,
        },
        COMPANIES,
    )
    .await;
    let contact = kit.ids(1).await[0];
    kit.sql(&format!(
        "WITH c AS (INSERT INTO hubspot.companies (name) VALUES ('Daemon Co') RETURNING hubsync_row_id)
         INSERT INTO hubspot.contacts_companies (contact_id, company_row_id)
         SELECT {contact}, hubsync_row_id FROM c"
    ))
    .await;
    let k = &kit;
    k.wait_for("the association to be sent and recorded", || async move {
        k.scalar::<i64>(
            "SELECT count(*) FROM hubspot.contacts_companies j
               JOIN hubsync.record_state s ON s.row_key = j.hubsync_row_id::text
              WHERE j.company_id IS NOT NULL AND j.type_id = 279 AND s.status = 'synced'",
        )
        .await
        .ok()
            == Some(1)
    })
    .await;
    let company: i64 = kit
        .scalar("SELECT hs_object_id FROM hubspot.companies")
        .await
        .expect("company id");
    let url = format!(
        "{}/crm/v4/objects/contacts/{contact}/associations/companies",
        kit.emulator.base_url()
    );
    let answer: Value = kit
        .http
        .get(url)
        .bearer_auth("pat-kit")
        .send()
        .await
        .expect("associations")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["results"][0]["toObjectId"].as_i64(), Some(company));
    let row: String = kit
        .scalar("SELECT hubsync_row_id::text FROM hubspot.contacts_companies")
        .await
        .expect("row");

    // HubSpot's webhooks for the new company and association come back and are processed;
    // nothing is written again and the row stays as it is.
    k.wait_for("the webhooks to be processed", || async move {
        k.scalar::<i64>(
            "SELECT (SELECT count(*) FROM hubsync.inbox WHERE processed_at IS NULL)
                  + (SELECT count(*) FROM hubsync.outbox)",
        )
        .await
        .ok()
            == Some(0)
            && k.scalar::<i64>("SELECT count(*) FROM hubsync.inbox")
                .await
                .is_ok_and(|n| n > 0)
    })
    .await;
    let stats = kit.emulator_stats().await;
    assert_eq!(
        stats["by_route"]["POST /crm/v4/associations/contacts/companies/batch/create"], 1,
        "{stats}"
    );
    let rows: Vec<String> = {
        let conn = kit.db.store().client().await.expect("conn");
        conn.query(
            "SELECT hubsync_row_id::text FROM hubspot.contacts_companies",
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert_eq!(rows, [row]);
}
