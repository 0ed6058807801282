//! Backfill correctness: every seeded record and association arrives, typed; a second pass
//! is incremental and writes nothing new.

use super::kit::{kit, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_copies_every_record_and_association_with_types() {
    let k = kit(seed(250, 40, 60)).await;
    let pipelines = k.pipelines(&["deals", "contacts", "companies"]);
    let report = k.pass(&pipelines).await;
    let order: Vec<&str> = report.objects.iter().map(|o| o.object.as_str()).collect();
    assert_eq!(order, ["companies", "contacts", "deals"], "parents first");
    assert!(report.objects.iter().all(|o| o.backfilled));

    assert_eq!(k.count("SELECT count(*) FROM hubspot.contacts").await, 250);
    assert_eq!(k.count("SELECT count(*) FROM hubspot.companies").await, 40);
    assert_eq!(k.count("SELECT count(*) FROM hubspot.deals").await, 60);
    assert_eq!(
        k.count("SELECT count(DISTINCT hs_object_id) FROM hubspot.contacts")
            .await,
        250
    );

    // Types follow HubSpot's definitions.
    let conn = k.store().client().await.expect("conn");
    let types: Vec<(String, String)> = conn
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
              WHERE table_schema = 'hubspot' AND table_name = 'deals'
                AND column_name IN ('amount', 'closedate', 'dealname', 'company_id')
              ORDER BY 1",
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        types,
        [
            ("amount".to_owned(), "numeric".to_owned()),
            (
                "closedate".to_owned(),
                "timestamp with time zone".to_owned()
            ),
            ("company_id".to_owned(), "bigint".to_owned()),
            ("dealname".to_owned(), "text".to_owned()),
        ]
    );

    // Every association HubSpot has for a sample of contacts is in the junction table.
    let ids: Vec<i64> = conn
        .query(
            "SELECT hs_object_id FROM hubspot.contacts ORDER BY hs_object_id LIMIT 25",
            &[],
        )
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut checked = 0;
    for id in ids {
        let answer = k
            .get(&format!(
                "/crm/v4/objects/contacts/{id}/associations/companies"
            ))
            .await;
        let mut want: Vec<(i64, i64)> = Vec::new();
        for result in answer["results"].as_array().into_iter().flatten() {
            let to = result["toObjectId"].as_i64().expect("toObjectId");
            for t in result["associationTypes"].as_array().into_iter().flatten() {
                want.push((to, t["typeId"].as_i64().expect("typeId")));
            }
        }
        want.sort_unstable();
        let got: Vec<(i64, i64)> = conn
            .query(
                "SELECT company_id, type_id::int8 FROM hubspot.contacts_companies
                  WHERE contact_id = $1 ORDER BY 1, 2",
                &[&id],
            )
            .await
            .expect("junction")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(got, want, "contact {id}");
        checked += want.len();
        let primary: Option<i64> = conn
            .query_one(
                "SELECT company_id FROM hubspot.contacts WHERE hs_object_id = $1",
                &[&id],
            )
            .await
            .expect("row")
            .get(0);
        let want_primary = want.iter().find(|(_, t)| *t == 1).map(|(c, _)| *c);
        assert_eq!(primary, want_primary, "primary company of {id}");
    }
    assert!(checked > 0, "the seed associates contacts with companies");
    assert!(
        k.count("SELECT count(*) FROM hubspot.deals_companies")
            .await
            > 0
    );
    assert!(k.count("SELECT count(*) FROM hubspot.deals_contacts").await > 0);

    // The second pass is incremental: nothing older than the backfill is written again.
    let again = k.pass(&pipelines).await;
    assert!(
        again
            .objects
            .iter()
            .all(|o| !o.backfilled && o.written == 0),
        "{again:?}"
    );
    assert_eq!(k.count("SELECT count(*) FROM hubspot.contacts").await, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_limits_columns_and_requests() {
    let k = kit(seed(30, 5, 0)).await;
    let mut contacts = hubsync_engine::settings::ObjectSettings::new("contacts");
    contacts.properties = hubsync_engine::settings::PropertySelection::Only(
        ["email".to_owned(), "firstname".to_owned()].into(),
    );
    let pipelines = k.pipelines_with(vec![contacts]);
    k.pass(&pipelines).await;
    let cols = k
        .count(
            "SELECT count(*) FROM information_schema.columns
              WHERE table_schema = 'hubspot' AND table_name = 'contacts'
                AND column_name IN ('email', 'firstname', 'lastname', 'phone')",
        )
        .await;
    assert_eq!(cols, 2);
    assert_eq!(
        k.count("SELECT count(*) FROM hubspot.contacts WHERE custom_properties <> '{}'::jsonb")
            .await,
        0,
        "nothing outside the allowlist is stored"
    );
    assert_eq!(
        k.count("SELECT count(*) FROM hubspot.contacts WHERE email IS NOT NULL")
            .await,
        30
    );
}

/// Backfill batches are written two at a time but commit in order: when a batch fails
/// while the batch after it has already written its rows, that later batch is rolled back
/// too, the checkpoint stays before the failed batch, and a rerun stores every record
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_rolls_back_the_batches_after_it_and_a_rerun_loses_nothing() {
    let k = kit(seed(3_000, 0, 0)).await;
    let mut contacts = hubsync_engine::settings::ObjectSettings::new("contacts");
    contacts.backfill_writers = 2;
    let pipelines = k.pipelines_with(vec![contacts]);
    pipelines.prepare().await.expect("tables");
    let first = k.get("/crm/v3/objects/contacts?limit=1").await;
    let first: i64 = first["results"][0]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("first id");

    // The first record fails its batch, but only once another writer has stored rows of a
    // later batch and waits, uncommitted, for the failed batch (idle in its transaction for
    // a second; a writer that did not wait would commit at once; up to 30 s).
    let conn = k.store().client().await.expect("conn");
    conn.batch_execute(&format!(
        "CREATE SEQUENCE public.later_batch_seen;
         CREATE FUNCTION public.fail_first() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.hs_object_id = {first} THEN
             FOR i IN 1..600 LOOP
               PERFORM pg_stat_clear_snapshot();
               IF EXISTS (SELECT 1 FROM pg_stat_activity
                           WHERE datname = current_database() AND pid <> pg_backend_pid()
                             AND state = 'idle in transaction' AND backend_xid IS NOT NULL
                             AND clock_timestamp() - state_change > interval '1 second') THEN
                 PERFORM nextval('public.later_batch_seen');
                 EXIT;
               END IF;
               PERFORM pg_sleep(0.05);
             END LOOP;
             RAISE EXCEPTION 'injected failure of the first batch';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER fail_first BEFORE INSERT ON hubspot.contacts
           FOR EACH ROW EXECUTE FUNCTION public.fail_first();"
    ))
    .await
    .expect("trigger");

    let failed = pipelines
        .run_once(
            &hubsync_engine::hs_to_pg::PassOptions::default(),
            &hubsync_engine::hs_to_pg::NoProgress,
        )
        .await
        .expect("pass");
    assert!(!failed.is_success(), "{failed:?}");
    let seen: bool = conn
        .query_one("SELECT is_called FROM public.later_batch_seen", &[])
        .await
        .expect("probe")
        .get(0);
    assert!(seen, "no later batch was written while the first one ran");
    // Nothing after the failed batch committed, and the checkpoint covers exactly the rows.
    assert_eq!(k.count("SELECT count(*) FROM hubspot.contacts").await, 0);
    assert_eq!(k.count("SELECT count(*) FROM hubsync.audit").await, 0);
    assert_eq!(
        k.count(
            "SELECT coalesce(max((position->>'records')::int8), 0) FROM hubsync.cursors
              WHERE object = 'contacts' AND stream = 'backfill'"
        )
        .await,
        0
    );

    conn.batch_execute("DROP TRIGGER fail_first ON hubspot.contacts")
        .await
        .expect("drop trigger");
    let rerun = k.pass(&pipelines).await;
    assert_eq!(rerun.objects[0].written, 3_000, "{rerun:?}");
    assert_eq!(
        k.count("SELECT count(DISTINCT hs_object_id) FROM hubspot.contacts")
            .await,
        3_000
    );
    assert_eq!(
        k.count("SELECT count(*) FROM hubsync.audit WHERE action = 'create'")
            .await,
        3_000
    );
    assert_eq!(
        k.count(
            "SELECT count(*) FROM hubsync.cursors WHERE object = 'contacts'
                AND stream = 'backfill' AND (position->>'done')::bool
                AND (position->>'records')::int8 = 3000"
        )
        .await,
        3_000 / 3_000
    );
}
