//! More than 10,000 records modified in one millisecond (a bulk import) all arrive through
//! incremental search, past HubSpot's 10,000-results-per-query cap (lessons.md 1).

use std::time::Duration;

use hubsync_emulator::{AppState, EmulatorConfig, ObjectTypeId, records::now_millis};
use hubsync_engine::hs_to_pg::{HsToPg, NoProgress, PassOptions};
use hubsync_engine::settings::{ObjectSettings, SyncSettings};
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig, RateQuota};
use hubsync_store::TestDb;

use super::kit::{SCHEMA, seed};

const RECORDS: usize = 10_250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_ten_thousand_changes_in_one_millisecond_all_arrive() {
    let config = EmulatorConfig {
        seed: seed(RECORDS, 0, 0),
        rate_limit: None,
        search_per_second: None,
        daily_limit: None,
        ..EmulatorConfig::default()
    };
    let state = AppState::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = hubsync_emulator::router(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = HubSpotClientConfig::new(
        url::Url::parse(&base).expect("url"),
        "pat-bulk".to_owned().into(),
    );
    cfg.burst = RateQuota {
        requests: std::num::NonZeroU32::new(100_000).expect("n"),
        per: Duration::from_secs(1),
    };
    cfg.search_per_second = std::num::NonZeroU32::new(100_000).expect("n");
    let client = HubSpotClient::new(cfg).expect("client");
    let db = TestDb::new().await;
    let mut contacts = ObjectSettings::new("contacts");
    contacts.properties =
        hubsync_engine::settings::PropertySelection::Only(["firstname".to_owned()].into());
    contacts.lookback = Duration::from_secs(5);
    contacts.clock_skew = Duration::ZERO;
    let pipelines = HsToPg::new(
        client.clone(),
        db.store().clone(),
        SyncSettings::new(SCHEMA, vec![contacts]),
    );
    let first = pipelines
        .run_once(&PassOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    assert!(first.is_success(), "{first:?}");

    // A bulk import touches every contact in the same millisecond.
    let stamp = now_millis();
    {
        let mut crm = state.crm.write().expect("lock");
        let table = crm.table_mut(ObjectTypeId::CONTACT).expect("contacts");
        let firstname = table.props.id("firstname").expect("firstname");
        let records: Vec<_> = table.store.live_records().cloned().collect();
        for mut record in records {
            record.values = record
                .values
                .with_changes(&[(firstname, "Bulk".to_owned())]);
            record.modified = stamp;
            table.store.put(record);
        }
    }
    while now_millis() <= stamp {
        tokio::task::yield_now().await;
    }
    let before = client.stats();
    let second = pipelines
        .run_once(&PassOptions::default(), &NoProgress)
        .await
        .expect("incremental");
    assert!(second.is_success(), "{second:?}");
    let searches = client
        .stats()
        .by_endpoint
        .get("search")
        .copied()
        .unwrap_or(0)
        - before.by_endpoint.get("search").copied().unwrap_or(0);

    let conn = db.store().client().await.expect("conn");
    let bulk: i64 = conn
        .query_one(
            "SELECT count(*) FROM hubspot.contacts WHERE firstname = 'Bulk'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        bulk, RECORDS as i64,
        "every record of the bulk millisecond arrived"
    );
    assert!(
        searches > 50,
        "the 10,000 cap was crossed by more than one query ({searches} searches)"
    );
    server.abort();
}
