//! Properties, groups, schemas, owners and pipelines.

use hubsync_hubspot::PropertyCreate;
use hubsync_hubspot::properties::PropertyGroup;

use crate::support::Portal;

#[tokio::test]
async fn properties_and_groups() {
    let portal = Portal::start().await;
    let c = &portal.client;
    let all = c
        .list_properties("contacts", false)
        .await
        .expect("properties");
    let email = all
        .iter()
        .find(|p| p.name == "email")
        .expect("email property");
    assert_eq!(email.kind, "string");
    assert!(
        all.iter()
            .any(|p| p.name == "lastmodifieddate" && p.is_read_only())
    );

    let group = c
        .create_property_group(
            "contacts",
            &PropertyGroup {
                name: "hubsync".into(),
                label: "hubsync".into(),
                display_order: 0,
                archived: false,
            },
        )
        .await
        .expect("group");
    assert_eq!(group.name, "hubsync");
    assert!(
        c.list_property_groups("contacts")
            .await
            .expect("groups")
            .iter()
            .any(|g| g.name == "hubsync")
    );

    c.create_property(
        "contacts",
        &PropertyCreate::text("favourite_colour", "Favourite colour", "hubsync"),
    )
    .await
    .expect("created");
    let err = c
        .create_property(
            "contacts",
            &PropertyCreate::text("favourite_colour", "Favourite colour", "hubsync"),
        )
        .await
        .expect_err("clash");
    assert_eq!(err.status(), Some(409));
    let err = c
        .ensure_unique_property(
            "contacts",
            &PropertyCreate::text("favourite_colour", "x", "hubsync"),
        )
        .await
        .expect_err("exists but is not unique");
    assert!(matches!(
        err,
        hubsync_hubspot::HubSpotError::InvalidInput(_)
    ));
}

#[tokio::test]
async fn owners_and_pipelines() {
    let portal = Portal::seeded(1).await;
    let c = &portal.client;
    let pipelines = c.list_pipelines("deals").await.expect("pipelines");
    let default = pipelines
        .iter()
        .find(|p| p.id == "default")
        .expect("default pipeline");
    assert!(!default.stages.is_empty());
    let _owners = c.list_owners(false).await.expect("owners");
}
