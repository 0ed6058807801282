//! Integration tests for this crate (one binary): contract tests of the client against the
//! real emulator over HTTP.

mod associations;
mod batch;
mod metadata;
mod objects;
mod rate;
mod search;
mod support;
mod webhooks;
