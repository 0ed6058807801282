//! After the backfill: edits, new properties, type changes with bad values, archives and
//! merges reach PostgreSQL on the next pass.

use serde_json::json;

use super::kit::{kit, seed};

async fn first_ids(k: &super::kit::Kit, n: i64) -> Vec<i64> {
    let conn = k.store().client().await.expect("conn");
    conn.query(
        "SELECT hs_object_id FROM hubspot.contacts ORDER BY hs_object_id LIMIT $1",
        &[&n],
    )
    .await
    .expect("ids")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn text(k: &super::kit::Kit, sql: &str, id: i64) -> Option<String> {
    let conn = k.store().client().await.expect("conn");
    conn.query_one(sql, &[&id]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_archives_and_merges_arrive_on_the_next_pass() {
    let k = kit(seed(40, 6, 0)).await;
    let mut objects = Vec::new();
    for name in ["contacts", "companies"] {
        let mut o = hubsync_engine::settings::ObjectSettings::new(name);
        o.lookback = std::time::Duration::from_secs(5);
        o.clock_skew = std::time::Duration::ZERO;
        o.archived_sweep_every = std::time::Duration::ZERO;
        o.id_reconcile_every = std::time::Duration::ZERO;
        objects.push(o);
    }
    let pipelines = k.pipelines_with(objects);
    k.pass(&pipelines).await;
    let ids = first_ids(&k, 4).await;
    let (edited, archived, survivor, loser) = (ids[0], ids[1], ids[2], ids[3]);

    k.post(
        &format!("/_emulator/objects/contacts/{edited}"),
        json!({"properties": {"firstname": "Renamed"}}),
    )
    .await;
    let url = format!(
        "{}/crm/v3/objects/contacts/{archived}",
        k.emulator.base_url()
    );
    let gone = k
        .http
        .delete(url)
        .bearer_auth("pat-test")
        .send()
        .await
        .expect("archive");
    assert!(gone.status().is_success());
    k.post(
        "/crm/v3/objects/contacts/merge",
        json!({"primaryObjectId": survivor.to_string(), "objectIdToMerge": loser.to_string()}),
    )
    .await;

    let report = k.pass(&pipelines).await;
    let contacts = report
        .objects
        .iter()
        .find(|o| o.object == "contacts")
        .expect("contacts");
    assert!(contacts.written >= 2, "{contacts:?}");
    assert_eq!(
        text(
            &k,
            "SELECT firstname FROM hubspot.contacts WHERE hs_object_id = $1",
            edited
        )
        .await
        .as_deref(),
        Some("Renamed")
    );
    assert_eq!(
        k.count(&format!("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {archived} AND archived_at IS NOT NULL")).await,
        1,
        "archived in HubSpot → archived_at"
    );
    assert_eq!(
        k.count(&format!(
            "SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {loser}
               AND merged_into = {survivor} AND archived_at IS NOT NULL"
        ))
        .await,
        1,
        "merge loser tombstoned with the survivor's id"
    );
    assert_eq!(
        k.count(&format!(
            "SELECT count(*) FROM hubspot.contacts_companies WHERE contact_id = {loser}"
        ))
        .await,
        0,
        "no links left on the loser"
    );
    assert_eq!(
        k.count("SELECT count(*) FROM hubspot.contacts").await,
        40,
        "no duplicates"
    );
    let edits = format!(
        "SELECT count(*) FROM hubsync.audit WHERE object = 'contacts' AND hs_object_id = {edited} \
           AND action = 'update' AND fields ? 'firstname'"
    );
    assert_eq!(k.count(&edits).await, 1, "the edit is audited");

    // The next pass reads the edited record again (it is inside the lookback window): the
    // same version changes nothing, and the audit says nothing about it.
    k.pass(&pipelines).await;
    assert_eq!(k.count(&edits).await, 1);
    assert_eq!(
        k.count(&format!(
            "SELECT count(*) FROM hubsync.audit WHERE hs_object_id = {edited} AND action = 'update'"
        ))
        .await,
        1,
        "no entry for a copy that changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_property_becomes_a_column_and_bad_values_become_issues() {
    let k = kit(seed(20, 0, 0)).await;
    let pipelines = k.pipelines(&["contacts"]);
    k.post(
        "/crm/v3/properties/contacts",
        json!({"name": "legacy_score", "label": "Legacy score", "type": "number",
               "fieldType": "number", "groupName": "contactinformation"}),
    )
    .await;
    k.pass(&pipelines).await;
    let ids = first_ids(&k, 2).await;

    // A property added in HubSpot appears as a column on the next pass.
    k.post(
        "/crm/v3/properties/contacts",
        json!({"name": "favourite_colour", "label": "Favourite colour", "type": "string",
               "fieldType": "text", "groupName": "contactinformation"}),
    )
    .await;
    k.post(
        &format!("/_emulator/objects/contacts/{}", ids[0]),
        json!({"properties": {"favourite_colour": "teal"}}),
    )
    .await;
    // HubSpot's type changes to string and a value that is no number arrives.
    let url = format!(
        "{}/crm/v3/properties/contacts/legacy_score",
        k.emulator.base_url()
    );
    let patched = k
        .http
        .patch(url)
        .bearer_auth("pat-test")
        .json(&json!({"type": "string", "fieldType": "text"}))
        .send()
        .await
        .expect("patch");
    assert!(patched.status().is_success(), "{}", patched.status());
    k.post(
        &format!("/_emulator/objects/contacts/{}", ids[1]),
        json!({"properties": {"legacy_score": "abc", "firstname": "Still synced"}}),
    )
    .await;

    let report = k.pass(&pipelines).await;
    assert!(report.objects[0].issues >= 1, "{report:?}");
    assert_eq!(
        text(
            &k,
            "SELECT favourite_colour FROM hubspot.contacts WHERE hs_object_id = $1",
            ids[0]
        )
        .await
        .as_deref(),
        Some("teal")
    );
    assert_eq!(
        text(
            &k,
            "SELECT firstname FROM hubspot.contacts WHERE hs_object_id = $1",
            ids[1]
        )
        .await
        .as_deref(),
        Some("Still synced"),
        "the rest of the row syncs"
    );
    assert_eq!(
        text(
            &k,
            "SELECT raw_value FROM hubsync.issues WHERE object = 'contacts' AND hs_object_id = $1
               AND property = 'legacy_score'",
            ids[1]
        )
        .await
        .as_deref(),
        Some("abc")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_changes_and_vanished_records_are_caught() {
    let k = kit(seed(30, 5, 0)).await;
    let mut objects = Vec::new();
    for name in ["contacts", "companies"] {
        let mut o = hubsync_engine::settings::ObjectSettings::new(name);
        o.lookback = std::time::Duration::from_secs(5);
        o.clock_skew = std::time::Duration::ZERO;
        objects.push(o);
    }
    let pipelines = k.pipelines_with(objects.clone());
    k.pass(&pipelines).await;
    let ids = first_ids(&k, 3).await;
    let conn = k.store().client().await.expect("conn");
    let company: i64 = conn
        .query_one(
            "SELECT hs_object_id FROM hubspot.companies ORDER BY 1 DESC LIMIT 1",
            &[],
        )
        .await
        .expect("company")
        .get(0);
    let link = |contact: i64| {
        let url = format!(
            "{}/crm/v4/objects/contacts/{contact}/associations/default/companies/{company}",
            k.emulator.base_url()
        );
        k.http.put(url).bearer_auth("pat-test").send()
    };
    // An association added together with a property edit: re-read with the changed record.
    assert!(link(ids[0]).await.expect("associate").status().is_success());
    k.post(
        &format!("/_emulator/objects/contacts/{}", ids[0]),
        json!({"properties": {"jobtitle": "CTO"}}),
    )
    .await;
    // An association added alone (no modified date bump) and a contact erased for good.
    assert!(link(ids[1]).await.expect("associate").status().is_success());
    k.post(
        "/crm/v3/objects/contacts/gdpr-delete",
        json!({"objectId": ids[2].to_string()}),
    )
    .await;

    k.pass(&pipelines).await;
    let linked = |contact: i64| {
        format!(
            "SELECT count(*) FROM hubspot.contacts_companies WHERE contact_id = {contact} AND company_id = {company}"
        )
    };
    assert!(
        k.count(&linked(ids[0])).await >= 1,
        "re-read with the changed record"
    );
    assert_eq!(
        k.count(&linked(ids[1])).await,
        0,
        "invisible until the sweep"
    );

    // With the sweeps due, the association sweep and the id-set reconciliation catch up.
    for o in &mut objects {
        o.association_sweep_every = std::time::Duration::ZERO;
        o.id_reconcile_every = std::time::Duration::ZERO;
    }
    k.pass(&k.pipelines_with(objects)).await;
    assert!(
        k.count(&linked(ids[1])).await >= 1,
        "the sweep finds associations of unchanged records"
    );
    assert_eq!(
        k.count(&format!(
            "SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {} AND archived_at IS NOT NULL",
            ids[2]
        ))
        .await,
        1,
        "a record gone from HubSpot without an archive entry is marked deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reads_named_records_and_marks_the_gone() {
    let k = kit(seed(10, 2, 0)).await;
    let pipelines = k.pipelines(&["contacts", "companies"]);
    k.pass(&pipelines).await;
    let ids = first_ids(&k, 2).await;
    k.post(
        &format!("/_emulator/objects/contacts/{}", ids[0]),
        json!({"properties": {"firstname": "Hinted"}}),
    )
    .await;
    k.post(
        "/crm/v3/objects/contacts/gdpr-delete",
        json!({"objectId": ids[1].to_string()}),
    )
    .await;
    let prepared = pipelines.prepare().await.expect("prepare");
    let outcome = pipelines
        .refresh(&prepared, "contacts", &ids)
        .await
        .expect("refresh");
    assert_eq!((outcome.batch.written, outcome.gone), (1, 1), "{outcome:?}");
    assert_eq!(
        text(
            &k,
            "SELECT firstname FROM hubspot.contacts WHERE hs_object_id = $1",
            ids[0]
        )
        .await
        .as_deref(),
        Some("Hinted")
    );
    assert_eq!(
        k.count(&format!("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = {} AND archived_at IS NOT NULL", ids[1])).await,
        1
    );
}
