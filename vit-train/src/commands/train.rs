//! `vit-train train` (also what `vit-train --config ...` runs): plan the run, then train it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::run::config::RunConfig;
use crate::run::plan::{RunPlan, TrainOptions};
use crate::run::trainer;

/// Arguments of `vit-train train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The run config (TOML). See configs/ and the README for every field.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config field: `--set optimizer.lr=1e-4` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue from the output directory's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Replace the run found in the output directory with a fresh one.
    #[arg(long)]
    pub overwrite: bool,
    /// Skip optimizer steps whose loss or gradient norm is NaN or infinite instead of stopping.
    #[arg(long)]
    pub skip_nonfinite: bool,
    /// With --skip-nonfinite: stop after this many skipped optimizer steps in a row.
    #[arg(long, default_value_t = 10)]
    pub max_skips: usize,
}

/// Runs `vit-train train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let path =
        args.config.context("no config given: run `vit-train --config configs/cifar10.toml` (see the README)")?;
    let config = RunConfig::load(&path, &args.overrides)?;
    let options = TrainOptions {
        resume: args.resume,
        overwrite: args.overwrite,
        skip_nonfinite: args.skip_nonfinite,
        max_skips: args.max_skips,
    };
    let plan = RunPlan::new(config, options)?;
    let summary = trainer::train(plan)?;
    println!("done: {} (model exported to {})", summary.output_dir.display(), summary.exported.display());
    Ok(())
}
