//! Integration tests for this crate (one binary), against a real PostgreSQL: the shared
//! private cluster started by the test kit, one fresh database per test.

mod associations;
mod capture;
mod cluster;
mod junctions;
mod mapping;
mod mapping_overrides;
mod migrations;
mod pool;
mod state;
mod tls;
mod upserts;
mod writeback;
