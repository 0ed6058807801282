//! `after`-cursor paging over the v3 list endpoint, as single pages and as a `Stream`.
//!
//! Long property lists are split across several requests so no URL exceeds the configured
//! limit (HubSpot answers 414 with an HTML page past ~8–16 KB, lessons.md #3); the chunks use
//! the same cursor and are merged per record id. A record whose `updatedAt` differs between
//! chunks changed mid-read and is reported so the caller can re-read it.

use std::collections::{BTreeMap, HashMap};

use futures_util::Stream;
use serde::Deserialize;

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::objects::SimpleObject;

/// HubSpot's page-size ceiling for the list endpoint.
pub const MAX_LIST_LIMIT: u32 = 100;
/// The ceiling when property history is requested.
pub const MAX_LIST_LIMIT_WITH_HISTORY: u32 = 50;

/// `paging` of a collection answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Paging {
    /// The next page, absent on the last one.
    #[serde(default)]
    pub next: Option<NextPage>,
}

/// `paging.next`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NextPage {
    /// Opaque cursor for the next request.
    pub after: String,
}

/// A collection answer: `results` plus optional `paging`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Collection<T> {
    #[serde(default = "Vec::new")]
    pub(crate) results: Vec<T>,
    #[serde(default)]
    pub(crate) paging: Option<Paging>,
}

impl<T> Collection<T> {
    pub(crate) fn next_after(&self) -> Option<String> {
        self.paging.as_ref()?.next.as_ref().map(|n| n.after.clone())
    }
}

/// One page of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The records.
    pub results: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub after: Option<String>,
    /// Ids whose `updatedAt` differed between property chunks: re-read them later.
    pub changed_mid_read: Vec<u64>,
}

/// A list request (`GET /crm/v3/objects/{type}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Page size (clamped to 100, or 50 with history).
    pub limit: u32,
    /// Cursor.
    pub after: Option<String>,
    /// Properties to return (any number; chunked by URL length).
    pub properties: Vec<String>,
    /// Properties to return with history.
    pub properties_with_history: Vec<String>,
    /// Object types whose association ids to return.
    pub associations: Vec<String>,
    /// `true` lists only archived records.
    pub archived: bool,
}

impl Default for ListRequest {
    fn default() -> Self {
        Self {
            limit: MAX_LIST_LIMIT,
            after: None,
            properties: Vec::new(),
            properties_with_history: Vec::new(),
            associations: Vec::new(),
            archived: false,
        }
    }
}

/// A property-name query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NameParam {
    Properties,
    PropertiesWithHistory,
}

impl NameParam {
    fn key(self) -> &'static str {
        match self {
            Self::Properties => "properties",
            Self::PropertiesWithHistory => "propertiesWithHistory",
        }
    }
}

fn encoded_len(text: &str) -> usize {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .map(str::len)
        .sum()
}

/// Splits names into chunks whose query text (`&key=a%2Cb…` per parameter) fits `budget`
/// bytes. A name too long to fit anywhere gets a chunk of its own.
pub(crate) fn chunk_names(
    names: &[(NameParam, String)],
    budget: usize,
) -> Vec<Vec<(NameParam, String)>> {
    let mut chunks: Vec<Vec<(NameParam, String)>> = Vec::new();
    let mut current: Vec<(NameParam, String)> = Vec::new();
    let mut used = 0usize;
    let mut params_in_current: Vec<NameParam> = Vec::new();
    for (param, name) in names {
        let opens_param = !params_in_current.contains(param);
        // "&key=" for the first name of a parameter, "%2C" before every further one.
        let cost = encoded_len(name)
            + if opens_param {
                param.key().len() + 2
            } else {
                3
            };
        if !current.is_empty() && used + cost > budget {
            chunks.push(std::mem::take(&mut current));
            params_in_current.clear();
            used = 0;
            let cost = encoded_len(name) + param.key().len() + 2;
            used += cost;
        } else {
            used += cost;
        }
        if !params_in_current.contains(param) {
            params_in_current.push(*param);
        }
        current.push((*param, name.clone()));
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn merge_chunk(base: &mut [SimpleObject], extra: Vec<SimpleObject>, changed: &mut Vec<u64>) {
    let mut by_id: HashMap<u64, SimpleObject> = extra.into_iter().map(|r| (r.id, r)).collect();
    for record in base {
        let Some(more) = by_id.remove(&record.id) else {
            continue;
        };
        if more.updated_at != record.updated_at && !changed.contains(&record.id) {
            changed.push(record.id);
        }
        record.properties.extend(more.properties);
        record
            .properties_with_history
            .extend(more.properties_with_history);
    }
}

impl HubSpotClient {
    /// Reads one page of records, splitting long property lists across requests.
    ///
    /// # Errors
    /// As for every call; any chunk failing fails the page.
    pub async fn list_page(
        &self,
        object_type: &str,
        request: &ListRequest,
    ) -> Result<Page<SimpleObject>, HubSpotError> {
        let cap = if request.properties_with_history.is_empty() {
            MAX_LIST_LIMIT
        } else {
            MAX_LIST_LIMIT_WITH_HISTORY
        };
        let limit = request.limit.clamp(1, cap).to_string();
        let associations = request.associations.join(",");
        let mut query: Vec<(&str, &str)> = vec![("limit", &limit)];
        if let Some(after) = &request.after {
            query.push(("after", after));
        }
        if !associations.is_empty() {
            query.push(("associations", &associations));
        }
        if request.archived {
            query.push(("archived", "true"));
        }
        let base = self.url(&["crm", "v3", "objects", object_type], &query);
        let names: Vec<(NameParam, String)> = request
            .properties
            .iter()
            .map(|n| (NameParam::Properties, n.clone()))
            .chain(
                request
                    .properties_with_history
                    .iter()
                    .map(|n| (NameParam::PropertiesWithHistory, n.clone())),
            )
            .collect();
        let budget = self.max_url_bytes().saturating_sub(base.as_str().len());
        let chunks = if names.is_empty() {
            vec![Vec::new()]
        } else {
            chunk_names(&names, budget)
        };

        let mut page: Option<(Vec<SimpleObject>, Option<String>)> = None;
        let mut changed = Vec::new();
        for chunk in chunks {
            let mut url = base.clone();
            let mut grouped: BTreeMap<NameParam, Vec<String>> = BTreeMap::new();
            for (param, name) in chunk {
                grouped.entry(param).or_default().push(name);
            }
            for (param, list) in grouped {
                url.query_pairs_mut()
                    .append_pair(param.key(), &list.join(","));
            }
            let answer: Collection<SimpleObject> =
                self.get_json(Endpoint::OBJECTS_LIST, url).await?;
            match &mut page {
                None => {
                    let after = answer.next_after();
                    page = Some((answer.results, after));
                }
                Some((records, _)) => merge_chunk(records, answer.results, &mut changed),
            }
        }
        let (results, after) = page.unwrap_or_default();
        Ok(Page {
            results,
            after,
            changed_mid_read: changed,
        })
    }

    /// Every page of `object_type`, starting at `request.after`, as a stream; it ends after
    /// the last page or the first error.
    pub fn list_pages<'a>(
        &'a self,
        object_type: &'a str,
        request: ListRequest,
    ) -> impl Stream<Item = Result<Page<SimpleObject>, HubSpotError>> + Send + 'a {
        futures_util::stream::try_unfold(Some(request), move |state| async move {
            let Some(request) = state else {
                return Ok(None);
            };
            let page = self.list_page(object_type, &request).await?;
            let next = page.after.clone().map(|after| ListRequest {
                after: Some(after),
                ..request
            });
            Ok(Some((page, next)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query_len(chunk: &[(NameParam, String)]) -> usize {
        let mut url = url::Url::parse("http://h/").expect("url");
        let mut grouped: BTreeMap<NameParam, Vec<String>> = BTreeMap::new();
        for (p, n) in chunk {
            grouped.entry(*p).or_default().push(n.clone());
        }
        for (p, list) in grouped {
            url.query_pairs_mut().append_pair(p.key(), &list.join(","));
        }
        // "http://h/?" is 10 bytes; the first pair's "&" becomes "?", same length.
        url.as_str().len() - 9
    }

    proptest! {
        #[test]
        fn chunks_fit_the_budget_and_keep_every_name(
            names in proptest::collection::vec(("[a-z_0-9]{1,60}|[ä +/]{1,8}", any::<bool>()), 0..300),
            budget in 200usize..4000,
        ) {
            let names: Vec<(NameParam, String)> = names.into_iter().map(|(n, h)| {
                (if h { NameParam::PropertiesWithHistory } else { NameParam::Properties }, n)
            }).collect();
            let chunks = chunk_names(&names, budget);
            let flat: Vec<_> = chunks.iter().flatten().cloned().collect();
            prop_assert_eq!(flat, names);
            for chunk in &chunks {
                prop_assert!(!chunk.is_empty());
                if chunk.len() > 1 {
                    prop_assert!(query_len(chunk) <= budget, "{} > {}", query_len(chunk), budget);
                }
            }
        }
    }

    #[test]
    fn five_hundred_long_names_split_into_several_requests() {
        let names: Vec<_> = (0..500)
            .map(|i| {
                (
                    NameParam::Properties,
                    format!("custom_property_number_{i:04}"),
                )
            })
            .collect();
        let chunks = chunk_names(&names, 7_900);
        assert!(chunks.len() >= 2, "{}", chunks.len());
        assert!(chunks.iter().all(|c| query_len(c) <= 7_900));
    }
}
