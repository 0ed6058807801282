//! CRM search (`POST /crm/v3/objects/{type}/search`): the request builder and one page.
//!
//! Filters in a group are ANDed, groups are ORed; at most 200 results per page; the `after`
//! cursor is a row offset and HubSpot refuses offsets at or past 10,000 (hubspot-api.md §7).
//! Walking a modified-date window past that cap is [`crate::incremental`]'s job.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::HubSpotClient;
use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::objects::SimpleObject;
use crate::pagination::Paging;

/// HubSpot's page-size ceiling for search.
pub const MAX_SEARCH_LIMIT: u32 = 200;
/// The offset at which HubSpot refuses to page further.
pub const SEARCH_RESULT_CAP: u64 = 10_000;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operator {
    /// Equal.
    Eq,
    /// Not equal.
    Neq,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Between `value` and `highValue`, inclusive.
    Between,
    /// One of `values`.
    In,
    /// None of `values`.
    NotIn,
    /// Has any value.
    HasProperty,
    /// Has no value.
    NotHasProperty,
    /// Contains the token (`*` wildcard).
    ContainsToken,
    /// Does not contain the token.
    NotContainsToken,
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// The property.
    pub property_name: String,
    /// The operator.
    pub operator: Operator,
    /// The operand (absent for `HAS_PROPERTY`/`NOT_HAS_PROPERTY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Upper operand of `BETWEEN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_value: Option<String>,
    /// Operands of `IN`/`NOT_IN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

impl Filter {
    /// A filter with one operand (`EQ`, `GT`, `CONTAINS_TOKEN`, …).
    pub fn new(property: impl Into<String>, operator: Operator, value: impl Into<String>) -> Self {
        Self {
            property_name: property.into(),
            operator,
            value: Some(value.into()),
            high_value: None,
            values: None,
        }
    }
    /// `property = value`.
    pub fn eq(property: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(property, Operator::Eq, value)
    }
    /// `property > value`.
    pub fn gt(property: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(property, Operator::Gt, value)
    }
    /// `property >= value`.
    pub fn gte(property: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(property, Operator::Gte, value)
    }
    /// `property < value`.
    pub fn lt(property: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(property, Operator::Lt, value)
    }
    /// `property <= value`.
    pub fn lte(property: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(property, Operator::Lte, value)
    }
    /// `low <= property <= high`.
    pub fn between(
        property: impl Into<String>,
        low: impl Into<String>,
        high: impl Into<String>,
    ) -> Self {
        Self {
            high_value: Some(high.into()),
            ..Self::new(property, Operator::Between, low)
        }
    }
    /// `property IN values` (`NOT_IN` when `negated`).
    pub fn one_of(property: impl Into<String>, values: Vec<String>, negated: bool) -> Self {
        let operator = if negated {
            Operator::NotIn
        } else {
            Operator::In
        };
        Self {
            property_name: property.into(),
            operator,
            value: None,
            high_value: None,
            values: Some(values),
        }
    }
    /// `HAS_PROPERTY` (or `NOT_HAS_PROPERTY` when `negated`).
    pub fn has_property(property: impl Into<String>, negated: bool) -> Self {
        let operator = if negated {
            Operator::NotHasProperty
        } else {
            Operator::HasProperty
        };
        Self {
            property_name: property.into(),
            operator,
            value: None,
            high_value: None,
            values: None,
        }
    }
}

/// Filters that must all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterGroup {
    /// The filters.
    pub filters: Vec<Filter>,
}

impl FilterGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a filter.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

/// A sort rule (HubSpot honours one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sort {
    /// The property.
    pub property_name: String,
    /// The direction.
    pub direction: Direction,
}

impl Sort {
    /// Ascending on `property`.
    pub fn asc(property: impl Into<String>) -> Self {
        Self {
            property_name: property.into(),
            direction: Direction::Ascending,
        }
    }
    /// Descending on `property`.
    pub fn desc(property: impl Into<String>) -> Self {
        Self {
            property_name: property.into(),
            direction: Direction::Descending,
        }
    }
}

/// A search request; build with the chained methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    /// ORed groups of ANDed filters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_groups: Vec<FilterGroup>,
    /// Sort rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sorts: Vec<Sort>,
    /// Free-text query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Properties to return.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    /// Page size, ≤ 200.
    pub limit: u32,
    /// Row-offset cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Default for SearchRequest {
    fn default() -> Self {
        Self {
            filter_groups: Vec::new(),
            sorts: Vec::new(),
            query: None,
            properties: Vec::new(),
            limit: MAX_SEARCH_LIMIT,
            after: None,
        }
    }
}

impl SearchRequest {
    /// An empty request with the maximum page size.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an ORed filter group.
    #[must_use]
    pub fn filter_group(mut self, group: FilterGroup) -> Self {
        self.filter_groups.push(group);
        self
    }
    /// Adds a sort rule.
    #[must_use]
    pub fn sort(mut self, sort: Sort) -> Self {
        self.sorts.push(sort);
        self
    }
    /// Sets the free-text query.
    #[must_use]
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }
    /// Sets the properties to return.
    #[must_use]
    pub fn properties<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.properties = names.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the page size (clamped to 1..=200).
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_SEARCH_LIMIT);
        self
    }
    /// Sets the cursor.
    #[must_use]
    pub fn after(mut self, after: impl Into<String>) -> Self {
        self.after = Some(after.into());
        self
    }
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchPage {
    /// Total matches (may exceed what can be paged).
    #[serde(default)]
    pub total: u64,
    /// The records.
    #[serde(default)]
    pub results: Vec<SimpleObject>,
    #[serde(default)]
    paging: Option<Paging>,
}

impl SearchPage {
    /// The cursor of the next page, if any.
    pub fn next_after(&self) -> Option<&str> {
        self.paging
            .as_ref()?
            .next
            .as_ref()
            .map(|n| n.after.as_str())
    }

    /// A page (for tests and fakes of the search endpoint).
    pub fn new(total: u64, results: Vec<SimpleObject>, next_after: Option<String>) -> Self {
        let paging = next_after.map(|after| Paging {
            next: Some(crate::pagination::NextPage { after }),
        });
        Self {
            total,
            results,
            paging,
        }
    }
}

impl HubSpotClient {
    /// Runs one search page. Spends the search budget (4/s by default), not the burst one.
    ///
    /// # Errors
    /// As for every call; an offset past 10,000 is a 400.
    pub async fn search(
        &self,
        object_type: &str,
        request: &SearchRequest,
    ) -> Result<SearchPage, HubSpotError> {
        let url = self.url(&["crm", "v3", "objects", object_type, "search"], &[]);
        self.send_json(Endpoint::SEARCH, Method::POST, url, request)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_serializes_like_the_docs() {
        let req = SearchRequest::new()
            .filter_group(
                FilterGroup::new()
                    .filter(Filter::gte("lastmodifieddate", "1727000000000"))
                    .filter(Filter::lt("lastmodifieddate", "1727003600000")),
            )
            .filter_group(FilterGroup::new().filter(Filter::has_property("email", false)))
            .filter_group(FilterGroup::new().filter(Filter::one_of("a", vec!["x".into()], true)))
            .filter_group(FilterGroup::new().filter(Filter::between("n", "1", "9")))
            .sort(Sort::asc("lastmodifieddate"))
            .properties(["email"])
            .limit(500)
            .after("0");
        let json = serde_json::to_value(&req).expect("serializes");
        assert_eq!(json["limit"], 200);
        assert_eq!(json["filterGroups"][0]["filters"][0]["operator"], "GTE");
        assert_eq!(
            json["filterGroups"][1]["filters"][0],
            serde_json::json!({"propertyName":"email","operator":"HAS_PROPERTY"})
        );
        assert_eq!(json["filterGroups"][2]["filters"][0]["operator"], "NOT_IN");
        assert_eq!(json["filterGroups"][3]["filters"][0]["highValue"], "9");
        assert_eq!(
            json["sorts"][0],
            serde_json::json!({"propertyName":"lastmodifieddate","direction":"ASCENDING"})
        );
        assert_eq!(json["after"], "0");
        assert!(json.get("query").is_none());
    }

    #[test]
    fn page_parses() {
        let page: SearchPage = serde_json::from_str(
            r#"{"total":57,"results":[{"id":"501","properties":{"company":null},
             "createdAt":"2023-12-14T23:31:55.758Z","updatedAt":"2025-01-27T19:53:15.581Z","archived":false}],
             "paging":{"next":{"after":"54"}}}"#,
        )
        .expect("parses");
        assert_eq!(page.total, 57);
        assert_eq!(page.next_after(), Some("54"));
        assert_eq!(page.results[0].id, 501);
    }
}
