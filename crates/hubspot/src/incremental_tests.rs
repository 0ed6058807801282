//! Tests of the window plan against an in-memory model of HubSpot search (filters, one sort,
//! offset paging, the hard cap).

use std::collections::{BTreeMap, HashMap};

use chrono::DateTime;
use proptest::prelude::*;

use super::*;
use crate::search::{Direction, Operator};

const PROP: &str = "hs_lastmodifieddate";

fn record(id: u64, ts: i64) -> SimpleObject {
    let at = DateTime::from_timestamp_millis(ts).unwrap_or_default();
    SimpleObject {
        id,
        properties: BTreeMap::from([
            (PROP.to_owned(), Some(ts.to_string())),
            (ID_PROPERTY.to_owned(), Some(id.to_string())),
        ]),
        properties_with_history: BTreeMap::new(),
        created_at: at,
        updated_at: at,
        archived: false,
        archived_at: None,
        associations: BTreeMap::new(),
        created: None,
        object_write_trace_id: None,
    }
}

/// HubSpot search over `(id, ts)` rows. Ties in the sort come back in *descending* id order
/// to make sure the plan does not rely on a tie-break. Errors like HubSpot at the cap.
fn fake_search(rows: &[(u64, i64)], req: &SearchRequest, cap: u64) -> Result<SearchPage, String> {
    let offset: u64 = req
        .after
        .as_deref()
        .map_or(Ok(0), str::parse)
        .map_err(|_| "bad after")?;
    if offset >= cap {
        return Err(format!("offset {offset} past the cap"));
    }
    let value = |row: &(u64, i64), prop: &str| {
        if prop == ID_PROPERTY {
            row.0 as i64
        } else {
            row.1
        }
    };
    let matches = |row: &(u64, i64)| {
        req.filter_groups.iter().any(|g| {
            g.filters.iter().all(|f| {
                let v = value(row, &f.property_name);
                let x: i64 = f
                    .value
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default();
                match f.operator {
                    Operator::Eq => v == x,
                    Operator::Gt => v > x,
                    Operator::Gte => v >= x,
                    Operator::Lt => v < x,
                    Operator::Lte => v <= x,
                    _ => false,
                }
            })
        })
    };
    let mut hits: Vec<(u64, i64)> = rows.iter().copied().filter(matches).collect();
    let sort = req.sorts.first().ok_or("no sort")?;
    assert_eq!(sort.direction, Direction::Ascending);
    hits.sort_by(|a, b| {
        value(a, &sort.property_name)
            .cmp(&value(b, &sort.property_name))
            .then(b.0.cmp(&a.0))
    });
    let total = hits.len() as u64;
    let start = offset.min(total) as usize;
    let end = (offset + u64::from(req.limit)).min(total) as usize;
    let results = hits[start..end]
        .iter()
        .map(|&(id, ts)| record(id, ts))
        .collect();
    let next = (end as u64) < total;
    Ok(SearchPage::new(
        total,
        results,
        next.then(|| end.to_string()),
    ))
}

/// Runs the plan to completion; returns delivered ids and the number of requests.
fn drive(
    rows: &[(u64, i64)],
    from: i64,
    to: i64,
    limit: u32,
    cap: u64,
) -> (Vec<u64>, usize, WindowCursor) {
    let mut cursor = WindowCursor::new(PROP, from, to, &[]).with_paging(limit, cap);
    let mut delivered = Vec::new();
    let mut requests = 0;
    while let Some(req) = cursor.next_request() {
        requests += 1;
        assert!(requests < 100_000, "runaway");
        let page = fake_search(rows, &req, cap).expect("the plan never exceeds the cap");
        delivered.extend(cursor.on_page(page).into_iter().map(|r| r.id));
    }
    (delivered, requests, cursor)
}

#[test]
fn walks_past_the_cap_without_duplicates() {
    let rows: Vec<(u64, i64)> = (1..=2_500u64)
        .map(|id| (id, 1_000 + (id as i64) / 3))
        .collect();
    let (ids, requests, cursor) = drive(&rows, 0, i64::MAX, 100, 1_000);
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "no duplicates");
    assert_eq!(ids.len(), 2_500);
    assert!(requests <= 30, "{requests} requests");
    assert_eq!(cursor.max_seen_ms(), Some(1_000 + 2_500 / 3));
}

#[test]
fn more_than_the_cap_in_one_millisecond_falls_back_to_ids() {
    let mut rows: Vec<(u64, i64)> = (1..=2_345u64).map(|id| (id, 5_000)).collect();
    rows.extend((3_000..3_010u64).map(|id| (id, 4_000)));
    rows.extend((4_000..4_010u64).map(|id| (id, 6_000)));
    let (ids, _, cursor) = drive(&rows, 0, 10_000, 100, 1_000);
    assert_eq!(ids.len(), rows.len());
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), rows.len());
    assert_eq!(cursor.max_seen_ms(), Some(6_000));
}

#[test]
fn records_outside_the_window_are_dropped() {
    let rows = [(1, 10), (2, 20), (3, 30)];
    let mut cursor = WindowCursor::new(PROP, 15, 25, &[]);
    let req = cursor.next_request().expect("a request");
    // A lagging index returns everything regardless of filters.
    let page = SearchPage::new(
        3,
        rows.iter().map(|&(id, ts)| record(id, ts)).collect(),
        None,
    );
    let out = cursor.on_page(page);
    assert_eq!(out.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
    assert!(cursor.is_done());
    let json = serde_json::to_value(&req).expect("json");
    assert_eq!(json["filterGroups"][0]["filters"][0]["value"], "15");
    assert_eq!(json["sorts"][0]["propertyName"], PROP);
    assert!(
        json["properties"]
            .as_array()
            .is_some_and(|p| p.iter().any(|v| v == ID_PROPERTY))
    );
}

#[test]
fn empty_or_inverted_window_makes_no_request() {
    assert!(WindowCursor::new(PROP, 10, 5, &[]).next_request().is_none());
    let (ids, requests, cursor) = drive(&[], 0, 100, 10, 100);
    assert!(ids.is_empty());
    assert_eq!(requests, 1);
    assert_eq!(cursor.max_seen_ms(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn delivers_every_record_in_the_window_exactly_once(
        stamps in proptest::collection::vec(0i64..40, 0..400),
        from in 0i64..20,
        span in 0i64..40,
        limit in 1u32..12,
        cap_pages in 1u64..6,
    ) {
        let rows: Vec<(u64, i64)> = stamps.iter().enumerate().map(|(i, ts)| (i as u64 * 7 + 1, *ts)).collect();
        let to = from + span;
        let cap = u64::from(limit) * cap_pages;
        let (ids, _, cursor) = drive(&rows, from, to, limit, cap);
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for id in &ids {
            *counts.entry(*id).or_default() += 1;
        }
        let expected: Vec<&(u64, i64)> = rows.iter().filter(|(_, ts)| *ts >= from && *ts <= to).collect();
        prop_assert_eq!(counts.len(), expected.len());
        for (id, _) in &expected {
            prop_assert_eq!(counts.get(id).copied(), Some(1), "id {}", id);
        }
        let max = expected.iter().map(|(_, ts)| *ts).max();
        prop_assert_eq!(cursor.max_seen_ms(), max);
    }
}
