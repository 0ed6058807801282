//! HubSpot CRM API: wire types and a rate-governed client.
//!
//! Knows nothing of PostgreSQL. Every call goes through one [`HubSpotClient`] with one rate
//! governor per portal ([`rate_limit`]), one retry classification ([`retry::classify`]) and one
//! typed error ([`HubSpotError`]). Per-call accounting is in [`HubSpotClient::stats`] and the
//! `hubsync_hubspot_*` metrics ([`metric_names`]).
//!
//! What is where:
//! * records: [`objects`] (get/create/update/archive/merge/GDPR), [`pagination`] (list pages
//!   with property chunking, as a stream), [`batch`] (read/create/update/upsert/archive with
//!   per-item errors);
//! * change detection: [`search`] (requests and pages) and [`incremental`] (modified-date
//!   windows past the 10,000 cap); [`history`] (per-property timestamps for ordering
//!   conflicts); [`webhook`] (events and v1/v2/v3 signatures);
//! * metadata: [`properties`], [`schemas`], [`owners`], [`pipelines`], [`associations`] (v4).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hubsync_hubspot::HubSpotError> {
//! use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig};
//! let url = url::Url::parse("https://api.hubapi.com").expect("static URL");
//! let client = HubSpotClient::new(HubSpotClientConfig::new(url, "pat-…".into()))?;
//! let _stats = client.stats();
//! # Ok(()) }
//! ```

pub mod associations;
pub mod batch;
mod client;
mod endpoint;
mod error;
pub mod history;
pub mod incremental;
pub mod objects;
pub mod owners;
pub mod pagination;
pub mod pipelines;
pub mod properties;
pub mod rate_limit;
pub mod retry;
pub mod schemas;
pub mod search;
mod stats;
pub mod webhook;
mod wire;

pub use client::{DEFAULT_BASE_URL, HubSpotClient, HubSpotClientConfig, install_tls_provider};
pub use endpoint::Endpoint;
pub use error::{ApiError, ErrorDetail, HubSpotError};
pub use history::PropertyHistory;
pub use rate_limit::{EndpointClass, RateHeaders, RateQuota};
pub use stats::CallStats;

pub use associations::{
    AssociatedRecord, AssociationCreate, AssociationRead, AssociationType, AssociationWriteOutcome,
};
pub use batch::{BatchOutcome, BatchRead, ItemError, UpdateInput, UpsertInput};
pub use incremental::{IncrementalSearch, WindowCursor};
pub use objects::{
    AssociationInput, AssociationSpec, GetOptions, ObjectInput, RecordRef, SimpleObject,
    modified_property,
};
pub use owners::Owner;
pub use pagination::{ListRequest, Page};
pub use pipelines::{Pipeline, PipelineStage};
pub use properties::{Property, PropertyCreate, PropertyGroup, PropertyOption};
pub use schemas::{ObjectSchema, ObjectSchemaCreate};
pub use search::{Direction, Filter, FilterGroup, Operator, SearchPage, SearchRequest, Sort};
/// Metric names this crate records.
pub mod metric_names {
    pub use crate::stats::{
        DAILY_REMAINING, RATE_LIMITED_TOTAL, RATE_REMAINING, REQUESTS_TOTAL, RETRIES_TOTAL,
    };
}
