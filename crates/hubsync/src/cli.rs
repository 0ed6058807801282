//! The command line: every command, flag and its help text (clap derive).
//!
//! Names here are promises to users (interface.md): add freely, never rename or remove.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Two-way sync between HubSpot CRM and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "hubsync", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Path of the configuration file.
    #[arg(
        long,
        global = true,
        default_value = "hubsync.toml",
        env = "HUBSYNC_CONFIG"
    )]
    pub(crate) config: PathBuf,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub(crate) log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The whole product on one machine with no set-up: a seeded local HubSpot, a private
    /// PostgreSQL (when DATABASE_URL is unset) and the daemon wired to both.
    Demo(DemoArgs),
    /// Write a commented hubsync.toml to start from.
    Init(InitArgs),
    /// Validate the config, reach HubSpot and PostgreSQL, report missing scopes/privileges.
    Check,
    /// One complete pass in every configured direction, then exit.
    Sync(SyncArgs),
    /// The daemon: webhooks in, change capture out, schedules, reconciliation, metrics.
    Run,
    /// Per-object summary: rows, last sync, lag, pending outbound changes, conflicts, errors.
    Status(StatusArgs),
    /// The manual conflict queue.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Export a synced table as CSV (HubSpot's export column names) to stdout or a file.
    Export(ExportArgs),
    /// Load a HubSpot export CSV into a synced table.
    Import(ImportArgs),
    /// Erase a contact in HubSpot (GDPR delete) and in PostgreSQL.
    GdprDelete(GdprDeleteArgs),
    /// Serve a local HubSpot (the emulator) for tests, demos and trials.
    Emulator(EmulatorArgs),
}

/// Flags of `hubsync demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where the demo keeps its PostgreSQL data (default: the user's state directory,
    /// `/var/lib/hubsync/demo` for root).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Contacts to seed in the local HubSpot.
    #[arg(long, default_value_t = 200)]
    pub(crate) seed_contacts: usize,
    /// Port of the local HubSpot.
    #[arg(long, default_value_t = 8090)]
    pub(crate) emulator_port: u16,
    /// Port of the daemon (webhooks, dashboard, metrics).
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
}

/// Flags of `hubsync init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Overwrite an existing file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Flags of `hubsync sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// One complete pass, then exit (the only mode today; `hubsync run` is the daemon).
    #[arg(long)]
    pub(crate) once: bool,
    /// Only these objects (repeatable); default all configured objects.
    #[arg(long = "object")]
    pub(crate) objects: Vec<String>,
    /// Disable progress bars even on a terminal.
    #[arg(long)]
    pub(crate) no_progress: bool,
}

/// Flags of `hubsync status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `hubsync conflicts …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConflictsCommand {
    /// List open conflicts.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Resolve one conflict by taking one side's value.
    Resolve {
        /// The conflict's id (from `hubsync conflicts list`).
        id: i64,
        /// Which side's value wins.
        #[arg(long, value_enum)]
        take: TakeSide,
    },
}

/// Which side a manual resolution takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TakeSide {
    /// HubSpot's value is written to PostgreSQL.
    Hubspot,
    /// PostgreSQL's value is written to HubSpot.
    Postgres,
}

/// Flags of `hubsync export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The object (table) to export.
    #[arg(long)]
    pub(crate) object: String,
    /// Output file (default stdout).
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

/// Flags of `hubsync import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The object (table) to load into.
    #[arg(long)]
    pub(crate) object: String,
    /// The CSV file (HubSpot export format).
    pub(crate) file: PathBuf,
    /// Also push the rows to HubSpot through batch upsert.
    #[arg(long)]
    pub(crate) to_hubspot: bool,
    /// With --to-hubspot: the unique property that identifies rows without a Record ID
    /// (default `email` for contacts).
    #[arg(long, requires = "to_hubspot")]
    pub(crate) id_property: Option<String>,
}

/// Flags of `hubsync gdpr-delete`.
#[derive(Debug, Args)]
pub(crate) struct GdprDeleteArgs {
    /// The contact's email address.
    #[arg(long)]
    pub(crate) email: String,
}

/// Flags of `hubsync emulator`.
#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub(crate) listen: SocketAddr,
    /// Accepted private-app token (repeatable); none: any non-empty bearer token is accepted.
    #[arg(long = "token")]
    pub(crate) tokens: Vec<String>,
    /// Contacts to generate.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed_contacts: usize,
    /// Companies to generate.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed_companies: usize,
    /// Deals to generate.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed_deals: usize,
    /// Tickets to generate.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed_tickets: usize,
    /// Makes the generated data reproducible.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed_value: u64,
    /// Burst limit like `100/10s`, or `off`.
    #[arg(long, default_value = "100/10s")]
    pub(crate) rate_limit: String,
    /// Daily request limit, or `off`.
    #[arg(long, default_value = "250000")]
    pub(crate) daily_limit: String,
    /// Search requests per second, or `off`.
    #[arg(long, default_value = "5")]
    pub(crate) search_rate_limit: String,
    /// Deliver webhooks to this URL.
    #[arg(long)]
    pub(crate) webhook_url: Option<String>,
    /// Sign webhooks with this client secret.
    #[arg(long, env = "HUBSPOT_WEBHOOK_SECRET", hide_env_values = true)]
    pub(crate) webhook_secret: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
