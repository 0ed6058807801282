//! `hubsync init`: writes the commented example configuration.

use std::{path::Path, process::ExitCode};

use anyhow::{Context, bail};

use crate::{cli::InitArgs, config::EXAMPLE};

/// Writes [`EXAMPLE`] to `path`, refusing to overwrite unless `--force`.
pub(crate) fn run(path: &Path, args: &InitArgs) -> anyhow::Result<ExitCode> {
    if path.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite)",
            path.display()
        );
    }
    std::fs::write(path, EXAMPLE).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    println!("next: export HUBSPOT_TOKEN=… DATABASE_URL=… and run `hubsync check`");
    Ok(ExitCode::SUCCESS)
}
