//! HubSpot CRM API: wire types and a rate-governed client.
//!
//! Knows nothing of PostgreSQL. Every call goes through one client with one rate governor per
//! portal, one retry policy and one error classification.
