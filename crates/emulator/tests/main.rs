//! Integration tests for this crate (one binary).
