//! The sync engine: per-object pipelines, planner, conflict policies and writeback.
//!
//! The pure-logic core (no I/O) decides what two-way sync must do:
//! - [`model`]: sides, values, versions, observations and the shadow copy;
//! - [`clock`]: version ordering and the clock-skew rule of `last-write-wins`;
//! - [`policy`]: directions and conflict policies per object and per field;
//! - [`merge`]: the three-way merge of one field against the shadow;
//! - [`record`]: one record's life cycle (create, delete, restore) and its fields;
//! - [`plan`]: many records' merges batched into what each writer does;
//! - [`coalesce`]: a record's pending PostgreSQL changes folded into one net change.
//!
//! The I/O pipelines built on top feed it observations from HubSpot and PostgreSQL and carry
//! out the plans it returns; [`webhook_inbox`] applies the webhook events the daemon stores.

pub mod clock;
pub mod coalesce;
pub mod hs_to_pg;
pub mod merge;
pub mod model;
pub mod overrides;
pub mod pg_to_hs;
pub mod plan;
pub mod policy;
pub mod record;
pub mod settings;
pub mod two_way;
pub mod webhook_inbox;
