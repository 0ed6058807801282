//! End-to-end tests of the `hubsync` binary.

mod csv;
mod daemon;
mod daemon_associations;
mod daemon_kit;
mod dashboard;
mod gdpr;
mod gdpr_minimisation;
mod sync;
