//! The sync engine: per-object pipelines, planner, conflict policies and writeback.
//!
//! The pure-logic core (no I/O) decides what two-way sync must do:
//! - [`model`]: sides, values, versions, observations and the shadow copy;
//! - [`clock`]: version ordering and the clock-skew rule of `last-write-wins`;
//! - [`policy`]: directions and conflict policies per object and per field;
//! - [`merge`]: the three-way merge of one field against the shadow;
//! - [`coalesce`]: a record's pending PostgreSQL changes folded into one net change.
//!
//! The two-way pipelines built on top decide with it, each through one pure function the
//! property tests run too: the pull per field (`two_way::inbound_field`), the push per
//! record (`pg_to_hs::plan`); record life cycle (creates, deletes, restores) is theirs.
//! [`webhook_inbox`] applies the webhook events the daemon stores.

pub mod clock;
pub mod coalesce;
pub mod hs_to_pg;
pub mod merge;
pub mod model;
pub mod overrides;
pub mod pg_to_hs;
pub mod policy;
pub mod settings;
pub mod two_way;
pub mod webhook_inbox;
