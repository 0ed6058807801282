//! `hubsync emulator`: serves the local HubSpot until Ctrl-C.

use std::process::ExitCode;

use crate::cli::EmulatorArgs;

/// Starts the emulator with the flags given and serves until interrupted.
pub(crate) async fn run(_args: EmulatorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the emulator is not wired yet")
}
