//! The subcommands of `vit-train`, one file each; each parses its own arguments and runs. They
//! share what they need through [`crate::run`] and [`crate::report`], never through each other.

pub mod bench;
pub mod eval;
pub mod export;
pub mod forward;
pub mod predict;
pub mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Vision Transformers equal to Hugging Face's, trained and run from one binary.
#[derive(Parser, Debug)]
#[command(name = "vit-train", version, about)]
pub struct Cli {
    /// What to do; without a subcommand, train with `--config`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Training arguments when no subcommand is given.
    #[command(flatten)]
    pub train: train::TrainArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train or fine-tune from a config file.
    Train(train::TrainArgs),
    /// Accuracy, top-5, per-class accuracy and the confusion matrix of a model directory.
    Eval(eval::EvalArgs),
    /// Classify images with a model directory and its own preprocessing.
    Predict(predict::PredictArgs),
    /// Turn a training checkpoint into an HF model directory.
    Export(export::ExportArgs),
    /// Run a model directory on named inputs and write every output (for porting and debugging).
    Forward(forward::ForwardArgs),
    /// Images/s and peak memory of inference and training steps, each case in its own process.
    Bench(bench::BenchArgs),
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        match self.command {
            None => train::run(self.train),
            Some(Command::Train(args)) => train::run(args),
            Some(Command::Eval(args)) => eval::run(args),
            Some(Command::Predict(args)) => predict::run(args),
            Some(Command::Export(args)) => export::run(args),
            Some(Command::Forward(args)) => forward::run(args),
            Some(Command::Bench(args)) => bench::run(args),
        }
    }
}
