//! One module per command; [`run`] dispatches.

mod check;
mod conflicts;
mod demo;
mod emulator;
mod export;
mod gdpr;
mod import;
mod init;
pub(crate) mod status;
pub(crate) mod sync;

use std::process::ExitCode;

use crate::{
    cli::{Cli, Command},
    config::Config,
    daemon,
};

/// Runs the command the user asked for.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(&cli.config, &args),
        Command::Emulator(args) => emulator::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Sync(args) => sync::run(&cli.config, &args).await,
        Command::Check => check::run(&cli.config).await,
        Command::Status(args) => status::run(&cli.config, &args).await,
        Command::Conflicts(command) => conflicts::run(&cli.config, &command).await,
        Command::GdprDelete(args) => gdpr::run(&cli.config, &args).await,
        Command::Export(args) => export::run(&cli.config, &args).await,
        Command::Import(args) => import::run(&cli.config, &args).await,
        Command::Run => {
            let config = Config::load(&cli.config)?;
            daemon::run(config, daemon::signal_token()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
