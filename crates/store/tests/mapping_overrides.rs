//! `hubsync.mapping_overrides`: stored, replaced, deleted when empty, notified.

use hubsync_store::{
    OutboxListener, TestDb, Wakeup,
    state::mapping_overrides::{self, MAPPING_CHANNEL, MappingOverride},
};

#[tokio::test(flavor = "multi_thread")]
async fn overrides_round_trip_and_notify() {
    let db = TestDb::new().await;
    let mut listener = OutboxListener::start_on(db.store().clone(), vec![MAPPING_CHANNEL.into()]);
    assert!(matches!(listener.recv().await, Some(Wakeup::Connected)));
    let client = db.store().client().await.unwrap();
    let mut o = MappingOverride {
        object: "contacts".into(),
        property: "phone".into(),
        included: Some(false),
        updated_by: Some("test".into()),
        ..MappingOverride::default()
    };
    mapping_overrides::set(&client, &o).await.unwrap();
    o.conflict = Some("manual".into());
    mapping_overrides::set(&client, &o).await.unwrap();
    let all = mapping_overrides::list(&client, Some("contacts"))
        .await
        .unwrap();
    assert_eq!(all, vec![o.clone()]);
    assert!(matches!(
        listener.recv().await,
        Some(Wakeup::Notified { channel, .. }) if channel == MAPPING_CHANNEL
    ));

    o.direction = Some("sideways".into());
    assert!(
        mapping_overrides::set(&client, &o).await.is_err(),
        "CHECK refuses"
    );
    let empty = MappingOverride {
        object: "contacts".into(),
        property: "phone".into(),
        ..MappingOverride::default()
    };
    mapping_overrides::set(&client, &empty).await.unwrap();
    assert!(
        mapping_overrides::list(&client, None)
            .await
            .unwrap()
            .is_empty()
    );
}
