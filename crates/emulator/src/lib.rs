//! A local HubSpot: an in-memory CRM behind HubSpot's HTTP API, for tests, demos and trials.
//!
//! Shares no code with `hubsync-hubspot`: the two are independent readings of HubSpot's docs
//! that check each other.
