//! Associations v4 against the emulator.

use hubsync_hubspot::{AssociationCreate, AssociationSpec, ObjectInput};

use crate::support::Portal;

#[tokio::test]
async fn create_read_and_archive_associations() {
    let portal = Portal::start().await;
    let c = &portal.client;
    let contacts = portal.contacts("assoc", 3).await;
    let company = c
        .create_object("companies", &ObjectInput::new([("name", "Acme")]))
        .await
        .expect("company");

    let written = c
        .create_default_associations("contacts", "companies", &[(contacts[0], company.id)])
        .await
        .expect("default association");
    assert!(written.errors.is_empty(), "{written:?}");
    let labelled = c
        .create_associations(
            "contacts",
            "companies",
            &[AssociationCreate {
                from: contacts[1],
                to: company.id,
                types: vec![AssociationSpec::hubspot_defined(1)],
            }],
        )
        .await
        .expect("primary association");
    assert!(labelled.errors.is_empty(), "{labelled:?}");

    let read = c
        .read_associations("contacts", "companies", &contacts)
        .await
        .expect("read");
    assert_eq!(read.results[&contacts[0]][0].to_object_id, company.id);
    let types: Vec<u32> = read.results[&contacts[1]][0]
        .association_types
        .iter()
        .map(|t| t.type_id)
        .collect();
    assert!(types.contains(&1), "{types:?}");
    assert_eq!(
        read.no_associations,
        vec![contacts[2]],
        "the 207 'no associations' item"
    );
    assert!(read.errors.is_empty(), "{:?}", read.errors);

    // Smaller read batches give the same answer in more calls.
    let mut config = crate::support::client_config(&portal.handle);
    config.association_read_batch = 2;
    let small = hubsync_hubspot::HubSpotClient::new(config).expect("client");
    let split = small
        .read_associations("contacts", "companies", &contacts)
        .await
        .expect("read");
    assert_eq!(split, read);
    assert_eq!(small.stats().by_endpoint["associations.batch_read"], 2);
    assert_eq!(c.stats().by_endpoint["associations.batch_read"], 1);

    let labels = c
        .association_labels("contacts", "companies")
        .await
        .expect("labels");
    assert!(labels.iter().any(|l| l.type_id == 279));

    c.archive_associations("contacts", "companies", &[(contacts[0], company.id)])
        .await
        .expect("archive");
    let after = c
        .read_associations("contacts", "companies", &contacts[..1])
        .await
        .expect("read again");
    assert_eq!(after.no_associations, vec![contacts[0]]);
}

#[tokio::test]
async fn record_reads_expand_v3_associations() {
    let portal = Portal::start().await;
    let c = &portal.client;
    let contact = portal.contacts("expand", 1).await[0];
    let company = c
        .create_object("companies", &ObjectInput::new([("name", "Globex")]))
        .await
        .expect("company");
    c.create_default_associations("contacts", "companies", &[(contact, company.id)])
        .await
        .expect("associate");
    let read = c
        .get_object(
            "contacts",
            &contact.to_string(),
            &hubsync_hubspot::GetOptions {
                associations: vec!["companies".into()],
                ..Default::default()
            },
        )
        .await
        .expect("read");
    assert!(
        read.associations["companies"]
            .results
            .iter()
            .any(|a| a.id == company.id)
    );
}
