//! Integration tests for this crate (one binary): a real emulator over HTTP.

mod harness;

mod batch;
mod errors;
mod objects;
mod properties;
mod schemas;
mod search;
mod seed;

// Satellites: associations, webhooks, faults, rate limits.
mod associations;
mod emulator_kit;
mod faults;
mod owners;
mod pipelines;
mod rate_limit;
mod webhooks;

// Regressions found by the official clients (scripts/fidelity).
mod fidelity;
