//! End-to-end tests of the `hubsync` binary.

mod daemon;
mod daemon_kit;
mod dashboard;
mod sync;
