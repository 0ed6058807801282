//! `hubsync emulator`: serves the local HubSpot until Ctrl-C.

use std::process::ExitCode;

use anyhow::Context;
use hubsync_emulator::{EmulatorConfig, RateLimit, SeedConfig};

use crate::{cli::EmulatorArgs, config::parse_rate_limit};

/// Turns the command-line flags into the emulator's configuration.
pub(crate) fn config_from(args: EmulatorArgs) -> anyhow::Result<EmulatorConfig> {
    let rate_limit = parse_rate_limit(&args.rate_limit)
        .map_err(|reason| anyhow::anyhow!("--rate-limit: {reason}"))?
        .map(|(requests, per)| RateLimit { requests, per });
    let daily_limit = off_or("--daily-limit", &args.daily_limit)?;
    let search_per_second = off_or("--search-rate-limit", &args.search_rate_limit)?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(EmulatorConfig {
        listen: args.listen,
        tokens: args.tokens,
        seed: SeedConfig {
            contacts: args.seed_contacts,
            companies: args.seed_companies,
            deals: args.seed_deals,
            tickets: args.seed_tickets,
            value: args.seed_value,
        },
        rate_limit,
        daily_limit,
        search_per_second,
        webhook_url: args.webhook_url,
        webhook_secret: args.webhook_secret,
        ..EmulatorConfig::default()
    })
}

fn off_or(flag: &str, text: &str) -> anyhow::Result<Option<u64>> {
    if text.trim() == "off" {
        return Ok(None);
    }
    let n: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("{flag}: a number or `off`"))?;
    Ok(Some(n))
}

/// Starts the emulator with the flags given and serves until interrupted.
pub(crate) async fn run(args: EmulatorArgs) -> anyhow::Result<ExitCode> {
    let config = config_from(args)?;
    let handle = hubsync_emulator::spawn(config)
        .await
        .context("cannot start the emulator")?;
    println!("local HubSpot at {}", handle.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
