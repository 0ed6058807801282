//! The `hubsync` binary.
fn main() {}
