//! Integration tests for this crate (one binary).

mod associations_writeback;
mod hs_to_pg;
mod sim;
mod two_way;
mod two_way_kit;
mod writeback;
mod writeback_bench;
