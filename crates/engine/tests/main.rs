//! Integration tests for this crate (one binary).

mod hs_to_pg;
