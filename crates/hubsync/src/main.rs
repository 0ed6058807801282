//! The `hubsync` binary: parses the command line and runs one command.
//!
//! `anyhow` lives here and in the command modules only; the library crates use typed errors.

mod alerts;
mod cli;
mod commands;
mod config;
mod daemon;
mod telemetry;
mod web;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_format);
    // Before any HTTP client is built, whichever command or task builds the first one.
    hubsync_hubspot::install_tls_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hubsync: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(commands::run(cli));
    // Work still running past the daemon's grace period is abandoned (it is redone on the
    // next start); never wait for it forever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hubsync: {err:#}");
            ExitCode::FAILURE
        }
    }
}
