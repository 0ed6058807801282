//! End-to-end tests of the `hubsync` binary.

mod sync;
