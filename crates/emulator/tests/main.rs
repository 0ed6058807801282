//! Integration tests for this crate (one binary): a real emulator over HTTP.

mod harness;

mod batch;
mod errors;
mod objects;
mod properties;
mod schemas;
mod search;
mod seed;
