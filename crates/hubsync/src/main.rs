//! The `hubsync` binary: parses the command line and runs one command.
//!
//! `anyhow` lives here and in the command modules only; the library crates use typed errors.

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hubsync: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hubsync: {err:#}");
            ExitCode::FAILURE
        }
    }
}
