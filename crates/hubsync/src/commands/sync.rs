//! `hubsync sync --once`: one complete HubSpot → PostgreSQL pass (backfill on the first run,
//! incremental after), with progress bars on a terminal and quiet logs otherwise.

use std::{
    collections::HashMap, io::IsTerminal, path::Path, process::ExitCode, sync::Mutex,
    time::Duration,
};

use anyhow::Context;
use hubsync_engine::{
    hs_to_pg::{HsToPg, PassOptions, PassReport, Phase, Progress},
    model::Side,
    pg_to_hs::{self, DrainOptions},
    policy::Direction,
    two_way::{self, TwoWayObject},
};
use hubsync_store::Store;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::{cli::SyncArgs, config::Config};

/// Runs the command.
pub(crate) async fn run(config_path: &Path, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = connect(&config).await?;
    let client = config.hubspot_client()?;
    let pipelines = HsToPg::new(client, store.clone(), config.sync_settings());
    if !args.once {
        tracing::info!("running one pass (use `hubsync run` for continuous sync)");
    }
    let options = PassOptions {
        only: args.objects.clone(),
        force_sweeps: false,
    };
    let report = if !args.no_progress && std::io::stderr().is_terminal() {
        let bars = Bars::default();
        let report = pipelines.run_once(&options, &bars).await;
        bars.clear();
        report
    } else {
        pipelines.run_once(&options, &Logged).await
    }
    .context("sync pass failed")?;
    print_report(&report);
    // PostgreSQL → HubSpot after the pull: the pull merged HubSpot's changes against the
    // pending local ones first, so conflicts are decided before anything is overwritten.
    let written = write_back(&pipelines, &store, &args.objects).await;
    store.close();
    let written = written.context("writeback to HubSpot failed")?;
    Ok(if report.is_success() && written {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes the pending PostgreSQL changes of every object that writes to HubSpot (two-way
/// objects apply resolved conflicts first). Returns false if HubSpot rejected records.
async fn write_back(pipelines: &HsToPg, store: &Store, only: &[String]) -> anyhow::Result<bool> {
    let client = pipelines.client();
    let prepared = pipelines.prepare().await?;
    let mut clean = true;
    for ctx in &prepared.objects {
        let name = ctx.name();
        if !ctx.settings.direction.allows_from(Side::Postgres)
            || (!only.is_empty() && !only.iter().any(|o| o == name))
        {
            continue;
        }
        let object = TwoWayObject::from_context(ctx);
        pg_to_hs::prepare(store, client, &object).await?;
        if ctx.settings.direction == Direction::TwoWay {
            two_way::apply_resolutions(store, client, &object).await?;
        }
        let options = DrainOptions {
            consumer: pipelines.settings().holder.clone(),
            ..DrainOptions::default()
        };
        let r = pg_to_hs::drain(store, client, &object, &options).await?;
        println!(
            "{name}: writeback: {} created, {} updated, {} archived, {} unchanged, {} failed, {} held by open conflicts",
            r.created, r.updated, r.archived, r.unchanged, r.failed, r.held_conflicts
        );
        clean &= r.failed == 0;
    }
    Ok(clean)
}

/// Connects to PostgreSQL and migrates the `hubsync` schema.
pub(crate) async fn connect(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url()?;
    let store = Store::connect(url)
        .await
        .context("cannot reach PostgreSQL")?;
    hubsync_store::migrate(&store)
        .await
        .context("cannot migrate the hubsync schema")?;
    Ok(store)
}

fn print_report(report: &PassReport) {
    for o in &report.objects {
        let mode = if o.backfilled {
            "backfill"
        } else {
            "incremental"
        };
        match (&o.error, o.leased_elsewhere) {
            (Some(err), _) => println!("{}: FAILED: {err}", o.object),
            (None, true) => println!("{}: skipped (another hubsync instance holds it)", o.object),
            (None, false) => println!(
                "{}: {mode}: {} written, {} unchanged, {} associations re-read, {} deleted, {} merged, {} value issues",
                o.object, o.written, o.unchanged, o.associations, o.deleted, o.merged, o.issues
            ),
        }
    }
    println!(
        "HubSpot API calls: {} ({} rate-limited)",
        report.api_calls, report.rate_limited
    );
}

/// Progress as log lines (no terminal).
struct Logged;

impl Progress for Logged {
    fn finish(&self, object: &str, phase: Phase) {
        tracing::debug!(object, phase = phase.as_str(), "phase done");
    }
}

/// One indicatif bar per object and phase.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, Phase), ProgressBar>>,
}

impl Bars {
    fn bar(&self, object: &str, phase: Phase) -> Option<ProgressBar> {
        self.bars
            .lock()
            .ok()?
            .get(&(object.to_owned(), phase))
            .cloned()
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl Progress for Bars {
    fn wants_totals(&self) -> bool {
        true
    }

    fn start(&self, object: &str, phase: Phase, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix:>24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:>24} {spinner} {pos} records {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let bar = self.multi.add(bar);
        bar.set_prefix(format!("{object} {phase}"));
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert((object.to_owned(), phase), bar);
        }
    }

    fn advance(&self, object: &str, phase: Phase, records: u64) {
        if let Some(bar) = self.bar(object, phase) {
            bar.inc(records);
        }
    }

    fn finish(&self, object: &str, phase: Phase) {
        if let Some(bar) = self.bar(object, phase) {
            bar.finish();
        }
    }
}
