//! Seeded data: reproducible, associated, timestamps spread over years (§16.5).

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::Emu;

async fn first_page(emu: &Emu) -> Value {
    let r = emu
        .get("/crm/v3/objects/contacts?limit=20&properties=email,firstname,lifecyclestage")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.body["results"].clone()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data() {
    let a = Emu::seeded(200, 20).await;
    let b = Emu::seeded(200, 20).await;
    assert_eq!(first_page(&a).await, first_page(&b).await);
    let years: std::collections::BTreeSet<String> = first_page(&a)
        .await
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["createdAt"].as_str().map(|s| s[..4].to_owned()))
        .collect();
    assert!(
        years.len() >= 3,
        "created times spread over years: {years:?}"
    );
}

#[tokio::test]
async fn seeded_contacts_list_their_primary_company_twice() {
    let emu = Emu::seeded(50, 5).await;
    let r = emu.get("/crm/v3/objects/contacts?limit=50&associations=companies&properties=associatedcompanyid").await;
    let with = r.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|c| c.get("associations").is_some())
        .cloned()
        .expect("some contact has a company");
    let refs = with["associations"]["companies"]["results"]
        .as_array()
        .expect("refs")
        .clone();
    let types: Vec<&str> = refs.iter().filter_map(|x| x["type"].as_str()).collect();
    assert_eq!(refs.len(), 2, "§16.5 primary + unlabeled: {types:?}");
    assert_eq!(refs[0]["id"], refs[1]["id"]);
    assert_eq!(with["properties"]["associatedcompanyid"], refs[0]["id"]);
    let r = emu
        .get("/crm/v3/objects/deals?limit=5&associations=companies,contacts")
        .await;
    assert!(r.body["results"][0]["associations"]["companies"].is_object());
}
