//! Incremental pulls: every record whose modified-date property lies in `[from, to]`, through
//! search, past HubSpot's 10,000-results-per-query cap (lessons.md #1, hubspot-api.md §8).
//!
//! [`WindowCursor`] is the pure plan. It searches `from ≤ modified ≤ to` sorted ascending and
//! pages by offset; before the offset would reach the cap it restarts the query from the
//! highest timestamp seen (records at that millisecond are re-read and de-duplicated). When a
//! whole capped chunk shares one millisecond (bulk imports), it switches to
//! `modified = ts AND hs_object_id > last id` sorted by id until that millisecond is
//! exhausted, then continues from `ts + 1`. Records outside the window (index lag, lessons.md
//! #10) are dropped. The highest timestamp delivered is reported so the caller can set its
//! high-water mark (never past in-flight updates: lessons.md #11 is the caller's `to`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::client::HubSpotClient;
use crate::error::HubSpotError;
use crate::objects::{SimpleObject, modified_property};
use crate::search::{
    Filter, FilterGroup, MAX_SEARCH_LIMIT, SEARCH_RESULT_CAP, SearchPage, SearchRequest, Sort,
};

/// The id property searchable and sortable on every object.
const ID_PROPERTY: &str = "hs_object_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `lower ≤ modified ≤ to`, sorted by modified.
    Range { lower: i64 },
    /// `modified = ts AND id > after_id`, sorted by id.
    SameMs { ts: i64, after_id: Option<u64> },
}

/// The pure window-walking plan (see module docs). Feed each answer to [`Self::on_page`] and
/// send [`Self::next_request`] until it returns `None`.
#[derive(Debug, Clone)]
pub struct WindowCursor {
    property: String,
    from_ms: i64,
    to_ms: i64,
    properties: Vec<String>,
    limit: u32,
    cap: u64,
    mode: Option<Mode>,
    offset: u64,
    chunk_max: Option<i64>,
    last_id: Option<u64>,
    boundary: (i64, HashSet<u64>),
    max_seen: Option<i64>,
}

impl WindowCursor {
    /// Records with `from_ms ≤ property ≤ to_ms`; `properties` are returned with each record
    /// (the modified property and `hs_object_id` are added).
    pub fn new(
        property: impl Into<String>,
        from_ms: i64,
        to_ms: i64,
        properties: &[String],
    ) -> Self {
        let property = property.into();
        let mut props: Vec<String> = properties.to_vec();
        for needed in [property.as_str(), ID_PROPERTY] {
            if !props.iter().any(|p| p == needed) {
                props.push(needed.to_owned());
            }
        }
        Self {
            property,
            from_ms,
            to_ms,
            properties: props,
            limit: MAX_SEARCH_LIMIT,
            cap: SEARCH_RESULT_CAP,
            mode: (from_ms <= to_ms).then_some(Mode::Range { lower: from_ms }),
            offset: 0,
            chunk_max: None,
            last_id: None,
            boundary: (i64::MIN, HashSet::new()),
            max_seen: None,
        }
    }

    /// Overrides the page size and the result cap (tests use small ones).
    #[must_use]
    pub fn with_paging(mut self, limit: u32, cap: u64) -> Self {
        self.limit = limit.clamp(1, MAX_SEARCH_LIMIT);
        self.cap = cap.max(u64::from(self.limit));
        self
    }

    /// The highest modified timestamp (ms) of the records delivered so far.
    pub fn max_seen_ms(&self) -> Option<i64> {
        self.max_seen
    }

    /// True once the window is exhausted.
    pub fn is_done(&self) -> bool {
        self.mode.is_none()
    }

    /// The next search to run, or `None` when the window is exhausted.
    pub fn next_request(&self) -> Option<SearchRequest> {
        let group = match self.mode? {
            Mode::Range { lower } => FilterGroup::new()
                .filter(Filter::gte(&self.property, lower.to_string()))
                .filter(Filter::lte(&self.property, self.to_ms.to_string())),
            Mode::SameMs { ts, after_id } => {
                let g = FilterGroup::new().filter(Filter::eq(&self.property, ts.to_string()));
                match after_id {
                    Some(id) => g.filter(Filter::gt(ID_PROPERTY, id.to_string())),
                    None => g,
                }
            }
        };
        let sort = match self.mode? {
            Mode::Range { .. } => Sort::asc(&self.property),
            Mode::SameMs { .. } => Sort::asc(ID_PROPERTY),
        };
        let mut request = SearchRequest::new()
            .filter_group(group)
            .sort(sort)
            .properties(self.properties.iter().cloned())
            .limit(self.limit);
        if self.offset > 0 {
            request = request.after(self.offset.to_string());
        }
        Some(request)
    }

    /// Takes in the answer to [`Self::next_request`] and returns the records to deliver:
    /// inside the window and not delivered before.
    pub fn on_page(&mut self, page: SearchPage) -> Vec<SimpleObject> {
        let Some(mode) = self.mode else {
            return Vec::new();
        };
        let fetched = page.results.len() as u64;
        let next_offset = page
            .next_after()
            .and_then(|a| a.parse::<u64>().ok())
            .or_else(|| page.next_after().map(|_| self.offset + fetched));
        let mut out = Vec::with_capacity(page.results.len());
        for record in page.results {
            let ts = record.modified_ms(&self.property);
            self.chunk_max = Some(self.chunk_max.map_or(ts, |m| m.max(ts)));
            self.last_id = Some(self.last_id.map_or(record.id, |m| m.max(record.id)));
            if ts < self.from_ms || ts > self.to_ms {
                continue;
            }
            if ts == self.boundary.0 {
                if !self.boundary.1.insert(record.id) {
                    continue;
                }
            } else if ts > self.boundary.0 {
                self.boundary = (ts, HashSet::from([record.id]));
            }
            self.max_seen = Some(self.max_seen.map_or(ts, |m| m.max(ts)));
            out.push(record);
        }
        match next_offset {
            Some(next) if fetched > 0 && next + u64::from(self.limit) <= self.cap => {
                self.offset = next
            }
            Some(_) if fetched > 0 => self.restart(mode),
            _ => self.finish_chunk(mode),
        }
        out
    }

    /// The chunk hit the cap: start a new query where this one got to.
    fn restart(&mut self, mode: Mode) {
        self.offset = 0;
        self.mode = Some(match mode {
            Mode::Range { lower } => match self.chunk_max {
                Some(max) if max > lower => Mode::Range { lower: max },
                _ => Mode::SameMs {
                    ts: lower,
                    after_id: None,
                },
            },
            Mode::SameMs { ts, .. } => Mode::SameMs {
                ts,
                after_id: self.last_id,
            },
        });
        self.chunk_max = None;
        self.last_id = None;
    }

    /// The query ran out of results.
    fn finish_chunk(&mut self, mode: Mode) {
        self.offset = 0;
        self.chunk_max = None;
        self.last_id = None;
        self.mode = match mode {
            Mode::Range { .. } => None,
            Mode::SameMs { ts, .. } => (ts < self.to_ms).then(|| Mode::Range { lower: ts + 1 }),
        };
    }
}

/// An incremental pull in progress: [`HubSpotClient::modified_between`].
#[derive(Debug)]
pub struct IncrementalSearch<'a> {
    client: &'a HubSpotClient,
    object_type: String,
    cursor: WindowCursor,
}

impl IncrementalSearch<'_> {
    /// The next batch of records (possibly empty when a page held only duplicates), or `None`
    /// when the window is exhausted.
    ///
    /// # Errors
    /// As for [`HubSpotClient::search`]; the cursor is unchanged, so calling again retries.
    pub async fn next_page(&mut self) -> Result<Option<Vec<SimpleObject>>, HubSpotError> {
        let Some(request) = self.cursor.next_request() else {
            return Ok(None);
        };
        let page = self.client.search(&self.object_type, &request).await?;
        Ok(Some(self.cursor.on_page(page)))
    }

    /// The highest modified time delivered so far.
    pub fn max_modified(&self) -> Option<DateTime<Utc>> {
        self.cursor
            .max_seen_ms()
            .and_then(DateTime::from_timestamp_millis)
    }

    /// The underlying plan.
    pub fn cursor(&self) -> &WindowCursor {
        &self.cursor
    }
}

impl HubSpotClient {
    /// Every `object_type` record modified in `[from, to]` (on `lastmodifieddate` for
    /// contacts, `hs_lastmodifieddate` otherwise), ascending, past the 10,000 cap.
    pub fn modified_between(
        &self,
        object_type: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        properties: &[String],
    ) -> IncrementalSearch<'_> {
        let property = modified_property(object_type);
        IncrementalSearch {
            client: self,
            object_type: object_type.to_owned(),
            cursor: WindowCursor::new(
                property,
                from.timestamp_millis(),
                to.timestamp_millis(),
                properties,
            ),
        }
    }
}

#[cfg(test)]
#[path = "incremental_tests.rs"]
mod tests;
