//! Integration tests for this crate (one binary), against a real PostgreSQL: the shared
//! private cluster started by the test kit, one fresh database per test.

mod cluster;
mod migrations;
mod pool;
