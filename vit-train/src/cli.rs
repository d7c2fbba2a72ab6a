//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Vision Transformers equal to Hugging Face's, trained and run from one binary.
#[derive(Parser, Debug)]
#[command(name = "vit-train", version, about)]
pub struct Cli {
    /// What to do; without a subcommand, train with `--config`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Training arguments when no subcommand is given.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// `vit-train train` (also the default).
#[derive(Args, Debug, Clone, Default)]
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
    /// Replace a different run found in the output directory.
    #[arg(long)]
    pub overwrite: bool,
    /// Skip optimizer steps whose loss is NaN or infinite instead of stopping the run.
    #[arg(long)]
    pub skip_nonfinite: bool,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train or fine-tune from a config file.
    Train(TrainArgs),
    /// Accuracy, top-5, per-class accuracy and the confusion matrix of a model directory.
    Eval {
        /// An HF model directory.
        #[arg(long)]
        model: PathBuf,
        /// A run config whose [data] section names the dataset (its validation split is used).
        #[arg(long)]
        config: PathBuf,
        /// Config overrides, as for training.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        overrides: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Classify images with a model directory and its own preprocessing.
    Predict {
        /// An HF model directory (config.json, model.safetensors, preprocessor_config.json).
        #[arg(long)]
        model: PathBuf,
        /// How many labels to show per image.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// One JSON object per image: file, top-k labels with probabilities, all logits.
        #[arg(long)]
        json: bool,
        /// Device (cpu, cuda:0, wgpu, ...).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Turn a training checkpoint into an HF model directory.
    Export {
        /// The run's output directory.
        #[arg(long)]
        run: PathBuf,
        /// The checkpoint to export: an epoch, or with `run.eval_every` an evaluation (default: the
        /// latest complete one).
        #[arg(long)]
        epoch: Option<usize>,
        /// Where to write the HF model directory.
        #[arg(long)]
        output: PathBuf,
    },
    /// Run a model directory on named inputs and write every output (for porting and debugging).
    Forward {
        /// An HF model directory; the class comes from `architectures` in config.json.
        #[arg(long)]
        model: PathBuf,
        /// A safetensors file with `pixel_values` and optionally `bool_masked_pos`, `labels`, `head_mask`.
        #[arg(long)]
        inputs: PathBuf,
        /// Where to write the outputs (safetensors, HF's output names).
        #[arg(long)]
        output: PathBuf,
        /// Resize position embeddings to the input's size.
        #[arg(long)]
        interpolate_pos_encoding: bool,
        /// Device (cpu, cuda:0, wgpu, ...).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Images/s and peak memory of inference and training steps, each case in its own process.
    Bench {
        /// A case name or a prefix of names (`infer`, `train`, `simmim`; repeatable; default: all).
        #[arg(long = "case", value_name = "NAME")]
        cases: Vec<String>,
        /// Device (cpu, cuda:0, wgpu, ...).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Untimed iterations before measuring.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed iterations (the median is reported).
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// One JSON line per case instead of a table.
        #[arg(long)]
        json: bool,
        /// Run one case in this process and print its JSON line (used by the parent process).
        #[arg(long, hide = true)]
        child: bool,
    },
}
