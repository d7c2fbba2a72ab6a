//! `vit-train forward`: a model directory run on named inputs, every output written (for porting
//! and debugging).

use std::path::PathBuf;
use vit_model::{Precision, autocast};

use anyhow::Result;
use clap::Args;

use vit_model::forward::{ForwardFileOptions, forward_files_with};
use vit_model::kernels::on_kernel_threads;

use crate::device::parse_device;
use crate::run::model::resolve_reference;

/// Arguments of `vit-train forward`.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// An HF model directory or a Hub id `owner/name[@revision]`; the class comes from
    /// `architectures` in config.json.
    #[arg(long)]
    pub model: PathBuf,
    /// A safetensors file with `pixel_values` and optionally `bool_masked_pos`, `labels`, `head_mask`.
    #[arg(long)]
    pub inputs: PathBuf,
    /// Where to write the outputs (safetensors, HF's output names).
    #[arg(long)]
    pub output: PathBuf,
    /// Resize position embeddings to the input's size.
    #[arg(long)]
    pub interpolate_pos_encoding: bool,
    /// Device (cpu, cuda:0, wgpu, ...).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Precision of the matrix products: f32, bf16 or f16 (mixed precision, as `run.precision`).
    #[arg(long, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Replace `--output` even when it is not a previous forward output.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `vit-train forward`.
pub fn run(args: ForwardArgs) -> Result<()> {
    let _autocast = autocast(args.precision);
    let device = parse_device(&args.device)?;
    vit_model::precision::check_supported(args.precision, &device).map_err(|e| anyhow::anyhow!("--precision: {e}"))?;
    let options = ForwardFileOptions {
        interpolate_pos_encoding: args.interpolate_pos_encoding,
        overwrite: args.overwrite,
        ..Default::default()
    };
    let model_dir = resolve_reference(&args.model, "--model")?;
    let (outputs, report) =
        on_kernel_threads(&device, || forward_files_with(&model_dir, &args.inputs, &args.output, &options, &device))?;
    eprintln!("{report}");
    println!("wrote {} outputs to {}", outputs.len(), args.output.display());
    Ok(())
}
