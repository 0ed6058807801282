//! Integration tests for this crate (one binary): contract tests of the client against the
//! emulator over HTTP.
