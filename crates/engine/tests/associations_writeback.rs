//! Junction rows written by an application reach HubSpot through associations v4, against
//! the real emulator and PostgreSQL: insert → association, delete → gone, a row naming
//! records not yet created waits for their ids, nothing bounces back on the next pass (zero
//! writes), a crash after HubSpot accepted makes no duplicate, a bad row fails visibly
//! without holding up the others.

use std::time::Duration;

use hubsync_emulator::{EmulatorConfig, EmulatorHandle};
use hubsync_engine::hs_to_pg::{HsToPg, NoProgress, PassOptions};
use hubsync_engine::pg_to_hs::{self, CrashPoint, DrainOptions, DrainReport};
use hubsync_engine::policy::{ConflictPolicy, Direction, FieldRule, FieldRules};
use hubsync_engine::settings::{ObjectSettings, PropertySelection, SyncSettings};
use hubsync_engine::two_way::TwoWayObject;
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig};
use hubsync_store::{TestDb, catalog::load_mapping};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::two_way_kit::is_write;

const OBJECTS: [(&str, &str); 2] = [("companies", "name"), ("contacts", "email")];
const JUNCTION: &str = "associations:contacts:companies";

struct Kit {
    emulator: EmulatorHandle,
    db: TestDb,
    client: HubSpotClient,
    http: reqwest::Client,
    pipelines: HsToPg,
}

fn rules() -> FieldRules {
    FieldRules::new(FieldRule {
        direction: Direction::TwoWay,
        policy: ConflictPolicy::LastWriteWins,
    })
}

/// Two-way `companies` and `contacts` over an empty emulator, after a first pass.
async fn kit() -> Kit {
    let emulator = hubsync_emulator::spawn(EmulatorConfig {
        rate_limit: None,
        search_per_second: None,
        daily_limit: None,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let url = url::Url::parse(&emulator.base_url()).expect("url");
    let mut cfg = HubSpotClientConfig::new(url, "pat-test".to_owned().into());
    cfg.search_per_second = std::num::NonZeroU32::new(1000).expect("nonzero");
    let client = HubSpotClient::new(cfg).expect("client");
    let db = TestDb::new().await;
    let settings = OBJECTS
        .iter()
        .map(|(object, property)| {
            let mut s = ObjectSettings::new(object);
            s.direction = Direction::TwoWay;
            s.properties = PropertySelection::Only([(*property).to_owned()].into_iter().collect());
            s.lookback = Duration::from_secs(5);
            s.clock_skew = Duration::ZERO;
            s.archived_sweep_every = Duration::ZERO;
            s.rules = rules();
            s
        })
        .collect();
    let pipelines = HsToPg::new(
        client.clone(),
        db.store().clone(),
        SyncSettings::new("hubspot", settings),
    );
    let kit = Kit {
        emulator,
        db,
        client,
        http: reqwest::Client::new(),
        pipelines,
    };
    kit.pass().await;
    kit
}

impl Kit {
    async fn object(&self, name: &str) -> TwoWayObject {
        let conn = self.db.store().client().await.expect("conn");
        let mapping = load_mapping(&conn, "hubspot", name)
            .await
            .expect("mapping")
            .expect("table");
        TwoWayObject::new(mapping, rules())
    }

    async fn pull(&self) {
        let report = self
            .pipelines
            .run_once(&PassOptions::default(), &NoProgress)
            .await
            .expect("pull");
        assert!(report.is_success(), "{report:?}");
    }

    /// PostgreSQL → HubSpot for `objects`, in that order.
    async fn push_objects(&self, objects: &[&str], options: &DrainOptions) -> DrainReport {
        let mut total = DrainReport::default();
        for name in objects {
            let object = self.object(name).await;
            pg_to_hs::prepare(self.db.store(), &self.client, &object)
                .await
                .expect("prepare");
            let report = pg_to_hs::drain(self.db.store(), &self.client, &object, options)
                .await
                .expect("push");
            total.absorb(&report);
        }
        total
    }

    async fn push(&self) -> DrainReport {
        self.push_objects(&["companies", "contacts"], &DrainOptions::default())
            .await
    }

    /// One pass as `hubsync sync --once` runs it: pull, then push.
    async fn pass(&self) -> DrainReport {
        self.pull().await;
        self.push().await
    }

    async fn sql(&self, sql: &str) {
        let conn = self.db.store().client().await.expect("conn");
        conn.batch_execute(sql).await.expect(sql);
    }

    async fn scalar<T: for<'a> hubsync_store::tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
    ) -> T {
        let conn = self.db.store().client().await.expect("conn");
        conn.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// Creates a record in HubSpot; returns its id.
    async fn create_in_hubspot(&self, object: &str, properties: Value) -> i64 {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/crm/v3/objects/{object}"),
                Some(json!({ "properties": properties })),
            )
            .await;
        v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
    }

    /// The contact's companies in HubSpot: `(company id, sorted type ids)`.
    async fn companies_of(&self, contact: i64) -> Vec<(i64, Vec<u64>)> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/crm/v4/objects/contacts/{contact}/associations/companies"),
                None,
            )
            .await;
        let mut out: Vec<(i64, Vec<u64>)> = v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let mut types: Vec<u64> = r["associationTypes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["typeId"].as_u64())
                    .collect();
                types.sort_unstable();
                (r["toObjectId"].as_i64().unwrap_or_default(), types)
            })
            .collect();
        out.sort();
        out
    }

    async fn write_calls(&self) -> u64 {
        let stats = self
            .call(reqwest::Method::GET, "/_emulator/stats", None)
            .await;
        stats["by_route"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(route, _)| is_write(route))
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum()
    }

    async fn reset_stats(&self) {
        self.call(reqwest::Method::POST, "/_emulator/reset", Some(json!({})))
            .await;
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.emulator.base_url(), path);
        let mut request = self.http.request(method, url).bearer_auth("pat-test");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect(path);
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap_or(Value::Null)
    }

    /// The junction rows: `(contact_id, company_id, type_id, hubsync_row_id)`.
    async fn junction(&self) -> Vec<(Option<i64>, Option<i64>, i32, Uuid)> {
        let conn = self.db.store().client().await.expect("conn");
        conn.query(
            "SELECT contact_id, company_id, type_id, hubsync_row_id FROM hubspot.contacts_companies ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .expect("junction")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    }

    /// The junction row's `hubsync.record_state`: `(status, last_error)`.
    async fn state_of(&self, row: Uuid) -> (String, Option<String>) {
        let conn = self.db.store().client().await.expect("conn");
        let r = conn
            .query_one(
                "SELECT status, last_error FROM hubsync.record_state WHERE object = $1 AND row_key = $2",
                &[&JUNCTION, &row.to_string()],
            )
            .await
            .expect("record state");
        (r.get(0), r.get(1))
    }

    /// A pass after which nothing may be written or changed locally.
    async fn assert_quiet_pass(&self) {
        let before = self.junction().await;
        self.reset_stats().await;
        let report = self.pass().await;
        assert_eq!(report.associations, 0, "{report:?}");
        assert_eq!(self.write_calls().await, 0);
        assert_eq!(self.junction().await, before, "the pull bounced a change");
        let pending: i64 = self.scalar("SELECT count(*) FROM hubsync.outbox").await;
        assert_eq!(pending, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn junction_inserts_and_deletes_become_associations_and_nothing_bounces_back() {
    let kit = kit().await;
    let company = kit
        .create_in_hubspot("companies", json!({"name": "Acme"}))
        .await;
    let other = kit
        .create_in_hubspot("companies", json!({"name": "Other"}))
        .await;
    let contact = kit
        .create_in_hubspot("contacts", json!({"email": "ann@example.com"}))
        .await;
    kit.pull().await;
    assert!(kit.companies_of(contact).await.is_empty());

    // No type given: the pair's default (unlabeled) type. An explicit type is kept.
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id) VALUES ({contact}, {company});
         INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES ({contact}, {other}, 279);"
    ))
    .await;
    kit.reset_stats().await;
    let report = kit.push().await;
    assert_eq!((report.associations, report.failed), (2, 0), "{report:?}");
    assert_eq!(kit.write_calls().await, 1, "both rows in one batch create");
    assert_eq!(
        kit.companies_of(contact).await,
        [(company, vec![279]), (other, vec![279])]
    );
    let rows = kit.junction().await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.2 == 279),
        "default type filled in: {rows:?}"
    );
    assert_eq!(kit.state_of(rows[0].3).await.0, "synced");
    let audited: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubsync.audit WHERE object = 'contacts' \
             AND hs_object_id = {contact} AND action = 'associate'"
        ))
        .await;
    assert_eq!(audited, 2);
    kit.assert_quiet_pass().await;

    // A delete archives the association; it does not come back. HubSpot losing it first
    // (a user removed it there too) makes the archive a harmless no-op.
    kit.call(
        reqwest::Method::DELETE,
        &format!("/crm/v4/objects/contacts/{contact}/associations/companies/{other}"),
        None,
    )
    .await;
    kit.sql(&format!(
        "DELETE FROM hubspot.contacts_companies WHERE company_id = {other}"
    ))
    .await;
    let report = kit.pass().await;
    assert_eq!((report.associations, report.failed), (1, 0), "{report:?}");
    assert_eq!(kit.companies_of(contact).await, [(company, vec![279])]);
    assert_eq!(kit.junction().await.len(), 1);
    let audited: String = kit
        .scalar("SELECT fields::text FROM hubsync.audit WHERE action = 'dissociate'")
        .await;
    assert!(audited.contains(&format!("{other}:279")), "{audited}");
    kit.assert_quiet_pass().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_junction_row_naming_just_inserted_records_waits_for_their_ids() {
    let kit = kit().await;
    let conn = kit.db.store().client().await.expect("conn");
    let company: Uuid = conn
        .query_one(
            "INSERT INTO hubspot.companies (name) VALUES ('New Co') RETURNING hubsync_row_id",
            &[],
        )
        .await
        .expect("company")
        .get(0);
    let contact: Uuid = conn
        .query_one(
            "INSERT INTO hubspot.contacts (email) VALUES ('new@example.com') RETURNING hubsync_row_id",
            &[],
        )
        .await
        .expect("contact")
        .get(0);
    let link: Uuid = conn
        .query_one(
            "INSERT INTO hubspot.contacts_companies (contact_row_id, company_row_id) VALUES ($1, $2) \
             RETURNING hubsync_row_id",
            &[&contact, &company],
        )
        .await
        .expect("link")
        .get(0);

    // Contacts first: the contact is created, the company is not yet, so the row waits.
    let report = kit
        .push_objects(&["contacts"], &DrainOptions::default())
        .await;
    assert_eq!((report.created, report.associations), (1, 0), "{report:?}");
    assert_eq!(kit.state_of(link).await.0, "pending");
    let why: String = kit
        .scalar("SELECT last_error FROM hubsync.outbox WHERE object = 'associations:contacts:companies'")
        .await;
    assert!(why.contains("waiting for companies row"), "{why}");

    // The company's drain creates it and then sends the association.
    let report = kit
        .push_objects(&["companies"], &DrainOptions::default())
        .await;
    assert_eq!((report.created, report.associations), (1, 1), "{report:?}");
    let contact_id: i64 = kit
        .scalar("SELECT hs_object_id FROM hubspot.contacts")
        .await;
    let company_id: i64 = kit
        .scalar("SELECT hs_object_id FROM hubspot.companies")
        .await;
    assert_eq!(
        kit.companies_of(contact_id).await,
        [(company_id, vec![279])]
    );
    // The row now carries both ids, so the pull finds it instead of adding a second one.
    assert_eq!(
        kit.junction().await,
        [(Some(contact_id), Some(company_id), 279, link)]
    );
    assert_eq!(kit.state_of(link).await, ("synced".to_owned(), None));
    kit.assert_quiet_pass().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_hubspot_accepted_is_resent_without_duplicates() {
    let kit = kit().await;
    let company = kit
        .create_in_hubspot("companies", json!({"name": "Acme"}))
        .await;
    let contact = kit
        .create_in_hubspot("contacts", json!({"email": "c@example.com"}))
        .await;
    kit.pull().await;
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES ({contact}, {company}, 279)"
    ))
    .await;
    // The writer dies after HubSpot accepted the batch, before recording anything; its
    // claim lapses at once.
    let crash = DrainOptions {
        crash_at: Some(CrashPoint::AfterHubSpot),
        lease: Duration::ZERO,
        ..DrainOptions::default()
    };
    kit.push_objects(&["contacts"], &crash).await;
    assert_eq!(kit.companies_of(contact).await, [(company, vec![279])]);
    let in_flight: i64 = kit
        .scalar("SELECT count(*) FROM hubsync.outbox WHERE status = 'in_flight'")
        .await;
    assert_eq!(in_flight, 1);
    // A pull in between leaves the unrecorded row alone; the retry sends it again.
    kit.pull().await;
    let report = kit.push().await;
    assert_eq!((report.associations, report.failed), (1, 0), "{report:?}");
    assert_eq!(kit.companies_of(contact).await, [(company, vec![279])]);
    assert_eq!(kit.junction().await.len(), 1);
    kit.assert_quiet_pass().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_row_fails_visibly_without_holding_up_the_others() {
    let kit = kit().await;
    let company = kit
        .create_in_hubspot("companies", json!({"name": "Acme"}))
        .await;
    let contact = kit
        .create_in_hubspot("contacts", json!({"email": "r@example.com"}))
        .await;
    kit.pull().await;
    let missing = company + 1_000_000;
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES
           ({contact}, {missing}, 279), ({contact}, {company}, 279), ({contact}, {company}, 999)"
    ))
    .await;
    let report = kit.push().await;
    assert_eq!((report.associations, report.failed), (1, 2), "{report:?}");
    assert_eq!(kit.companies_of(contact).await, [(company, vec![279])]);
    let failed: Vec<(String, String)> = {
        let conn = kit.db.store().client().await.expect("conn");
        conn.query(
            "SELECT j.company_id::text || ':' || j.type_id, s.last_error
               FROM hubsync.record_state s
               JOIN hubspot.contacts_companies j ON j.hubsync_row_id::text = s.row_key
              WHERE s.object = $1 AND s.status = 'failed' ORDER BY 1",
            &[&JUNCTION],
        )
        .await
        .expect("failed")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|f| f.1.contains("999")), "{failed:?}");
    // The failed rows stay as the application wrote them and are not retried until edited.
    kit.reset_stats().await;
    kit.pass().await;
    assert_eq!(kit.write_calls().await, 0);
    assert_eq!(kit.junction().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_row_moves_the_association_and_a_label_picks_its_type() {
    let kit = kit().await;
    let first = kit
        .create_in_hubspot("companies", json!({"name": "First"}))
        .await;
    let second = kit
        .create_in_hubspot("companies", json!({"name": "Second"}))
        .await;
    let contact = kit
        .create_in_hubspot("contacts", json!({"email": "m@example.com"}))
        .await;
    kit.pull().await;
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES ({contact}, {first}, 279)"
    ))
    .await;
    kit.pass().await;

    // Pointing the row at another company archives the old pair and creates the new one.
    kit.sql(&format!(
        "UPDATE hubspot.contacts_companies SET company_id = {second} WHERE company_id = {first}"
    ))
    .await;
    let report = kit.pass().await;
    assert_eq!(report.associations, 2, "{report:?}");
    assert_eq!(kit.companies_of(contact).await, [(second, vec![279])]);
    kit.assert_quiet_pass().await;

    // A row with no type but HubSpot's label "Primary" makes `second` the primary company;
    // the pull then fills the primary column, as hubsync's own (uncaptured) write.
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id, label) VALUES ({contact}, {second}, 'Primary')"
    ))
    .await;
    kit.pass().await;
    assert_eq!(kit.companies_of(contact).await, [(second, vec![1, 279])]);
    let primary: Option<i64> = kit
        .scalar(&format!(
            "SELECT company_id FROM hubspot.contacts WHERE hs_object_id = {contact}"
        ))
        .await;
    assert_eq!(primary, Some(second));
    let types: Vec<i32> = kit.junction().await.iter().map(|r| r.2).collect();
    assert_eq!(types, [1, 279]);
    kit.assert_quiet_pass().await;

    // A new primary on a company with no association yet: HubSpot adds the unlabeled type
    // with it and demotes the old primary; the store takes both at once.
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id) VALUES ({contact}, {first}, 1)"
    ))
    .await;
    kit.push().await;
    assert_eq!(
        kit.companies_of(contact).await,
        [(first, vec![1, 279]), (second, vec![279])]
    );
    let rows: Vec<(Option<i64>, i32)> = kit.junction().await.iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(
        rows,
        [(Some(first), 1), (Some(first), 279), (Some(second), 279)]
    );
    let primary: Option<i64> = kit
        .scalar(&format!(
            "SELECT company_id FROM hubspot.contacts WHERE hs_object_id = {contact}"
        ))
        .await;
    assert_eq!(primary, Some(first));
    kit.assert_quiet_pass().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_rows_go_out_in_batches_of_one_hundred() {
    let kit = kit().await;
    let contact = kit
        .create_in_hubspot("contacts", json!({"email": "many@example.com"}))
        .await;
    for chunk in 0..2 {
        let inputs: Vec<Value> = (0..75)
            .map(|i| json!({"properties": {"name": format!("Co {chunk}-{i}")}}))
            .collect();
        kit.call(
            reqwest::Method::POST,
            "/crm/v3/objects/companies/batch/create",
            Some(json!({ "inputs": inputs })),
        )
        .await;
    }
    kit.pull().await;
    kit.sql(&format!(
        "INSERT INTO hubspot.contacts_companies (contact_id, company_id, type_id)
         SELECT {contact}, hs_object_id, 279 FROM hubspot.companies"
    ))
    .await;
    kit.reset_stats().await;
    let report = kit.push().await;
    assert_eq!(report.associations, 150, "{report:?}");
    assert_eq!(kit.write_calls().await, 2);
    assert_eq!(kit.companies_of(contact).await.len(), 150);
    kit.assert_quiet_pass().await;
}
