//! `vit-train`: training, SimMIM pretraining, evaluation, prediction, export and forward passes
//! of Hugging Face-equal Vision Transformers.

mod bench;
mod checkpoint;
mod cli;
mod curves;
mod data_setup;
mod device;
mod export;
mod eval;
mod loader;
mod metrics_csv;
mod optim;
mod predict;
mod renderer;
mod run_config;
mod samples;
mod schedule;
mod segments;
mod steps;
mod train;

use std::process::ExitCode;

/// Makes glibc's malloc keep freed tensor buffers for reuse. By default every buffer over
/// 128 KiB-32 MiB (its adaptive threshold) is a fresh `mmap`, so each tensor op pays page faults
/// and the kernel zeroing pages — measured at a quarter of a ViT training step's CPU time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reuse_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command, TrainArgs};

fn run_train(args: TrainArgs) -> Result<()> {
    let path = args
        .config
        .context("no config given: run `vit-train --config configs/cifar10.toml` (see the README)")?;
    let config = run_config::RunConfig::load(&path, &args.overrides)?;
    let options = train::TrainOptions { resume: args.resume, overwrite: args.overwrite, skip_nonfinite: args.skip_nonfinite };
    let summary = train::train(config, options)?;
    println!("done: {} (model exported to {})", summary.output_dir.display(), summary.exported.display());
    Ok(())
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run_train(cli.train),
        Some(Command::Train(args)) => run_train(args),
        Some(Command::Forward { model, inputs, output, interpolate_pos_encoding, device }) => {
            let device = device::parse_device(&device)?;
            let (outputs, report) =
                vit_model::forward::forward_files(&model, &inputs, &output, interpolate_pos_encoding, &device)?;
            eprintln!("{report}");
            println!("wrote {} outputs to {}", outputs.len(), output.display());
            Ok(())
        }
        Some(Command::Predict { model, top_k, json, device, images }) => {
            predict::run(predict::PredictArgs { model, top_k, json, device, images })
        }
        Some(Command::Eval { model, config, overrides, json }) => {
            eval::run(eval::EvalArgs { model, config, overrides, json })
        }
        Some(Command::Export { run, epoch, output }) => {
            let epoch = export::export(&run, epoch, &output)?;
            println!("exported epoch {epoch} of {} to {}", run.display(), output.display());
            Ok(())
        }
        Some(Command::Bench { cases, device, warmup, iters, json, child }) => {
            bench::run(bench::BenchArgs { cases, device, warmup, iters, json, child })
        }
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    reuse_freed_memory();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
