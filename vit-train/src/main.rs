//! `vit-train`: training, SimMIM pretraining, evaluation, prediction, export and forward passes
//! of Hugging Face-equal Vision Transformers. The work is in the library; this parses and reports.

use std::process::ExitCode;

use clap::Parser;
use vit_train::commands::Cli;

fn main() -> ExitCode {
    vit_train::memory::reuse_freed_memory();
    match Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
