//! Search and the incremental window past the 10,000-result cap.

use std::collections::HashSet;

use chrono::{Duration as ChronoDuration, Utc};
use hubsync_hubspot::{Filter, FilterGroup, ObjectInput, SearchRequest, Sort};

use crate::support::Portal;

#[tokio::test]
async fn search_filters_sorts_and_pages() {
    let portal = Portal::start().await;
    portal.contacts("srch", 30).await;
    let c = &portal.client;
    c.create_object(
        "contacts",
        &ObjectInput::new([("email", "other@elsewhere.org")]),
    )
    .await
    .expect("created");
    let request = SearchRequest::new()
        .filter_group(FilterGroup::new().filter(Filter::new(
            "email",
            hubsync_hubspot::Operator::ContainsToken,
            "*@example.com",
        )))
        .sort(Sort::asc("hs_object_id"))
        .properties(["email"])
        .limit(20);
    let first = c.search("contacts", &request).await.expect("page 1");
    assert_eq!(first.total, 30);
    assert_eq!(first.results.len(), 20);
    let after = first.next_after().expect("more").to_owned();
    let second = c
        .search("contacts", &request.clone().after(after))
        .await
        .expect("page 2");
    assert_eq!(second.results.len(), 10);
    assert!(second.next_after().is_none());
    assert_eq!(c.stats().by_endpoint["search"], 2);
}

#[tokio::test]
async fn incremental_window_walks_past_ten_thousand_matches() {
    let portal = Portal::start().await;
    let from = Utc::now() - ChronoDuration::seconds(5);
    let created: HashSet<u64> = portal.contacts("bulk", 10_250).await.into_iter().collect();
    let to = Utc::now() + ChronoDuration::seconds(5);

    let mut pull = portal
        .client
        .modified_between("contacts", from, to, &["email".to_owned()]);
    let mut seen = Vec::new();
    while let Some(page) = pull.next_page().await.expect("search page") {
        seen.extend(page.into_iter().map(|r| r.id));
    }
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(unique, created, "every record exactly once");
    assert!(pull.max_modified().is_some_and(|m| m >= from && m <= to));
    let stats = portal.client.stats();
    assert_eq!(stats.failures, 0, "never ran into the 10,000 offset cap");
    assert!(
        stats.by_endpoint["search"] >= 52,
        "10,250 / 200 pages at least"
    );
}
