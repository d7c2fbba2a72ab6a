//! `vit-train forward`: a model directory run on named inputs, every output written (for porting
//! and debugging).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::device::parse_device;

/// Arguments of `vit-train forward`.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// An HF model directory; the class comes from `architectures` in config.json.
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
}

/// Runs `vit-train forward`.
pub fn run(args: ForwardArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let (outputs, report) = vit_model::forward::forward_files(
        &args.model,
        &args.inputs,
        &args.output,
        args.interpolate_pos_encoding,
        &device,
    )?;
    eprintln!("{report}");
    println!("wrote {} outputs to {}", outputs.len(), args.output.display());
    Ok(())
}
