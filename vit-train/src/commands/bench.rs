//! `vit-train bench`: images per second and peak memory of inference and training steps.
//!
//! Each case runs in a fresh child process (this binary re-executed with `--case X --child`), so
//! that the child's peak resident set size (`VmHWM` of `/proc/self/status`) belongs to that case
//! alone. The child prints one JSON line; the parent collects them and prints a table, or the
//! JSON lines themselves with `--json` (what `scripts/bench_vs_pytorch.sh` reads).

use std::process::Command;
use std::time::{Duration, Instant};
use vit_model::kernels::on_kernel_threads;
use vit_model::{Precision, autocast};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use clap::Args;
use serde::{Deserialize, Serialize};
use vit_model::{Labels, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling, ViTForwardOptions};

use crate::device::parse_device;

/// What one case measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `model.forward` on a plain device (fused attention, no loss).
    Inference,
    /// Forward with labels, cross-entropy, backward, AdamW step on the autodiff device.
    Train,
    /// SimMIM forward with `bool_masked_pos`, masked L1, backward, AdamW step.
    SimMim,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Inference => "inference",
            Kind::Train => "train",
            Kind::SimMim => "simmim",
        }
    }
}

/// One benchmark case.
#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    kind: Kind,
    /// `b16`, `s16`, `ti16` (224 px, 1000 labels), `ti4` (32 px, patch 4, 10 labels) or `w64`
    /// (as `ti4`, 64 wide: 4 heads, MLP 256).
    model: &'static str,
    batch: usize,
    layers: usize,
}

const CASES: [Case; 10] = [
    Case { name: "infer-vit-b16-224-b1", kind: Kind::Inference, model: "b16", batch: 1, layers: 12 },
    Case { name: "infer-vit-b16-224-b8", kind: Kind::Inference, model: "b16", batch: 8, layers: 12 },
    Case { name: "infer-vit-s16-224-b1", kind: Kind::Inference, model: "s16", batch: 1, layers: 12 },
    Case { name: "infer-vit-s16-224-b8", kind: Kind::Inference, model: "s16", batch: 8, layers: 12 },
    Case { name: "infer-vit-ti16-224-b1", kind: Kind::Inference, model: "ti16", batch: 1, layers: 12 },
    Case { name: "infer-vit-ti16-224-b8", kind: Kind::Inference, model: "ti16", batch: 8, layers: 12 },
    Case { name: "train-vit-ti4-32-6l-b64", kind: Kind::Train, model: "ti4", batch: 64, layers: 6 },
    Case { name: "train-vit-ti4-32-12l-b64", kind: Kind::Train, model: "ti4", batch: 64, layers: 12 },
    Case { name: "simmim-vit-ti4-32-6l-b64", kind: Kind::SimMim, model: "ti4", batch: 64, layers: 6 },
    Case { name: "train-vit-w64-32-4l-b64", kind: Kind::Train, model: "w64", batch: 64, layers: 4 },
];

/// Fraction of patches masked in the SimMIM case (exactly `round_down(0.6 · patches)` per image).
const MASK_RATIO: f64 = 0.6;
/// Learning rate of the AdamW steps (the value does not change the cost).
const LR: f64 = 1e-4;

impl Case {
    fn config(&self) -> ViTConfig {
        let config = match self.model {
            "b16" => ViTConfig::base(),
            "s16" => ViTConfig::small(),
            "ti16" => ViTConfig::tiny(),
            "w64" => ViTConfig {
                hidden_size: 64,
                num_attention_heads: 4,
                intermediate_size: 256,
                image_size: 32,
                patch_size: 4,
                encoder_stride: 4,
                ..ViTConfig::tiny()
            },
            _ => ViTConfig { image_size: 32, patch_size: 4, encoder_stride: 4, ..ViTConfig::tiny() },
        };
        let labels = if matches!(self.model, "ti4" | "w64") { 10 } else { 1000 };
        ViTConfig { num_hidden_layers: self.layers, ..config }.with_num_labels(labels)
    }
}

/// Arguments of `vit-train bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// A case name or a prefix of names (`infer`, `train`, `simmim`; repeatable; default: all).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Device (cpu, cuda:0, wgpu, ...).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Untimed iterations before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Precision of the matrix products: f32, bf16 or f16 (mixed precision, as `run.precision`).
    #[arg(long, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// One JSON line per case instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run one case in this process and print its JSON line (used by the parent process).
    #[arg(long, hide = true)]
    pub child: bool,
}

/// One case's measurement, as the child prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    pub case: String,
    pub kind: String,
    pub model: String,
    pub batch: usize,
    pub image_size: usize,
    pub layers: usize,
    pub device: String,
    /// The precision of the matrix products.
    #[serde(default)]
    pub precision: Precision,
    pub warmup: usize,
    pub iters: usize,
    /// Seconds from process start to the first timed iteration's start (model init, warmup).
    pub setup_s: f64,
    pub ms_per_iter_median: f64,
    pub ms_per_iter_min: f64,
    pub ms_per_iter_mean: f64,
    /// `batch / median seconds per iteration`.
    pub images_per_s: f64,
    /// Peak resident set size of the process (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Resident set size after building the model and inputs, before the first iteration, MiB.
    pub setup_rss_mib: Option<f64>,
    /// The last loss (training cases).
    pub loss: Option<f64>,
}

fn select(patterns: &[String]) -> Result<Vec<Case>> {
    if patterns.is_empty() || patterns.iter().any(|p| p == "all") {
        return Ok(CASES.to_vec());
    }
    let mut out: Vec<Case> = Vec::new();
    for p in patterns {
        let hits: Vec<Case> = match CASES.iter().find(|c| c.name == p) {
            Some(c) => vec![*c],
            None => CASES.iter().filter(|c| c.name.starts_with(p.as_str())).copied().collect(),
        };
        if hits.is_empty() {
            let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
            bail!("bench: unknown case `{p}`; cases (or prefixes of them): {}", names.join(", "));
        }
        for c in hits {
            if !out.iter().any(|o| o.name == c.name) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// `VmHWM` / `VmRSS` of `/proc/self/status`, in MiB (Linux only).
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 =
        line[field.len()..].trim().trim_start_matches(':').trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    if args.iters == 0 {
        bail!("bench: --iters must be at least 1");
    }
    let cases = select(&args.cases)?;
    if args.child {
        let [case] = cases.as_slice() else {
            bail!("bench --child runs exactly one case, got {}", cases.len());
        };
        let result = run_case(case, &args)?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    let device = parse_device(&args.device)?; // fail early on a bad spec
    vit_model::precision::check_supported(args.precision, &device).map_err(|e| anyhow::anyhow!("--precision: {e}"))?;
    let exe = std::env::current_exe().context("bench: cannot find this executable to re-run it")?;
    let mut results = Vec::new();
    let mut failed = Vec::new();
    if !args.json {
        eprintln!(
            "bench: {} case(s) on {} in {}, {} warmup + {} timed iterations, each in its own process",
            cases.len(),
            args.device,
            args.precision,
            args.warmup,
            args.iters
        );
        if args.precision == Precision::Bf16 && vit_model::kernels::is_cpu_backend(&device) {
            eprintln!("bench: {}", vit_model::kernels::bf16_tiles::bf16_kernel_report());
        }
    }
    for case in &cases {
        let out = Command::new(&exe)
            .args(["bench", "--child", "--case", case.name, "--device", &args.device])
            .args(["--warmup", &args.warmup.to_string(), "--iters", &args.iters.to_string()])
            .args(["--precision", args.precision.name()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("bench: running case {}", case.name))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{'));
        match (out.status.success(), line.map(serde_json::from_str::<BenchResult>)) {
            (true, Some(Ok(r))) => {
                if args.json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    eprintln!(
                        "  {:<26} {:>9.1} img/s  {:>8.1} MiB",
                        r.case,
                        r.images_per_s,
                        r.peak_rss_mib.unwrap_or(f64::NAN)
                    );
                }
                results.push(r);
            }
            _ => {
                eprintln!("bench: case {} failed ({}): {}", case.name, out.status, stdout.trim());
                failed.push(case.name);
            }
        }
    }
    if !args.json {
        print_table(&results);
    }
    if !failed.is_empty() {
        bail!("bench: {} case(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn print_table(results: &[BenchResult]) {
    println!(
        "| {:<26} | {:>5} | {:>9} | {:>9} | {:>9} | {:>8} | {:>9} |",
        "case", "batch", "ms/iter", "min ms", "images/s", "peak MiB", "setup MiB"
    );
    println!("|{:-<28}|{:->7}|{:->11}|{:->11}|{:->11}|{:->10}|{:->11}|", "", ":", ":", ":", ":", ":", ":");
    let mib = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}"));
    for r in results {
        println!(
            "| {:<26} | {:>5} | {:>9.1} | {:>9.1} | {:>9.1} | {:>8} | {:>9} |",
            r.case,
            r.batch,
            r.ms_per_iter_median,
            r.ms_per_iter_min,
            r.images_per_s,
            mib(r.peak_rss_mib),
            mib(r.setup_rss_mib)
        );
    }
}

/// A deterministic mask of exactly `count` true entries per row (Fisher–Yates with a fixed seed).
fn mask(batch: usize, patches: usize, count: usize, device: &Device) -> Tensor<2, Bool> {
    let mut rng = vit_data::rng::SplitMix64::new(0);
    let mut next = || rng.next_u64() as usize;
    let mut values = Vec::with_capacity(batch * patches);
    for _ in 0..batch {
        let mut row: Vec<usize> = (0..patches).collect();
        for i in (1..patches).rev() {
            row.swap(i, next() % (i + 1));
        }
        let mut m = vec![false; patches];
        for &j in &row[..count] {
            m[j] = true;
        }
        values.extend(m);
    }
    Tensor::from_data(TensorData::new(values, [batch, patches]), device)
}

/// Times `step` `warmup + iters` times; `step` must synchronise the device before returning.
fn time<F: FnMut() -> Result<Option<f64>>>(args: &BenchArgs, mut step: F) -> Result<(Vec<Duration>, Option<f64>, f64)> {
    let mut loss = None;
    for _ in 0..args.warmup {
        loss = step()?;
    }
    let setup_s = since_start();
    let mut times = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t = Instant::now();
        loss = step()?;
        times.push(t.elapsed());
    }
    Ok((times, loss, setup_s))
}

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn since_start() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn sync(device: &Device) -> Result<()> {
    device.sync().map_err(|e| anyhow::anyhow!("bench: device sync failed: {e:?}"))
}

/// Times training steps of `model`: the loss `loss_of` gives, backward, an optimizer step, and a
/// read of the loss (which waits for the step on asynchronous backends).
fn time_training<M: Module>(
    args: &BenchArgs,
    device: &Device,
    model: M,
    optim: &mut ModuleOptimizer,
    loss_of: impl Fn(&M) -> Result<Tensor<1>>,
) -> Result<(Vec<Duration>, Option<f64>, f64)> {
    let mut model = Some(model);
    time(args, || {
        let m = model.take().expect("the model is put back after every step");
        let loss = loss_of(&m)?;
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = optim.step(LR, m, grads);
        let value = loss.into_scalar::<f32>() as f64;
        sync(device)?;
        model = Some(m);
        Ok(Some(value))
    })
}

fn run_case(case: &Case, args: &BenchArgs) -> Result<BenchResult> {
    since_start();
    let _autocast = autocast(args.precision);
    let config = case.config();
    let base = parse_device(&args.device)?;
    base.seed(0);
    let (b, s) = (case.batch, config.image_size);
    let setup_rss;
    let (times, loss, setup_s) = match case.kind {
        Kind::Inference => {
            let device = base;
            let model = ViTForImageClassification::new(&config, &device);
            let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
            sync(&device)?;
            setup_rss = proc_status_mib("VmRSS");
            time(args, || {
                // As `predict` and `eval` run it.
                on_kernel_threads(&device, || {
                    let logits = model.forward(x.clone())?;
                    // Reading one value waits for the whole forward on lazy/asynchronous backends.
                    let _ = logits.slice([0..1, 0..1]).into_scalar::<f32>();
                    sync(&device)?;
                    Ok(None)
                })
            })?
        }
        Kind::Train | Kind::SimMim => {
            let device = base.autodiff();
            let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
            let mut optim = AdamWConfig::new().with_weight_decay(0.01).init();
            if case.kind == Kind::Train {
                let labels: Vec<i64> = (0..b as i64).map(|i| i % config.num_labels() as i64).collect();
                let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &device);
                let model = ViTForImageClassification::new(&config, &device);
                sync(&device)?;
                setup_rss = proc_status_mib("VmRSS");
                time_training(args, &device, model, &mut optim, |m| {
                    let out =
                        m.forward_with(x.clone(), Some(Labels::Classes(y.clone())), ViTForwardOptions::default())?;
                    Ok(out.loss.expect("labels give a loss"))
                })?
            } else {
                let patches = config.num_patches();
                let masked = (MASK_RATIO * patches as f64).floor() as usize;
                let bool_masked_pos = mask(b, patches, masked, &device);
                let model = ViTForMaskedImageModeling::new(&config, &device)?;
                sync(&device)?;
                setup_rss = proc_status_mib("VmRSS");
                time_training(args, &device, model, &mut optim, |m| {
                    let options =
                        ViTForwardOptions { bool_masked_pos: Some(bool_masked_pos.clone()), ..Default::default() };
                    Ok(m.forward_with(x.clone(), options)?.loss.expect("a mask gives a loss"))
                })?
            }
        }
    };
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = if ms.len() % 2 == 1 { ms[ms.len() / 2] } else { 0.5 * (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) };
    Ok(BenchResult {
        case: case.name.to_string(),
        kind: case.kind.name().to_string(),
        model: case.model.to_string(),
        batch: b,
        image_size: s,
        layers: case.layers,
        device: args.device.clone(),
        precision: args.precision,
        warmup: args.warmup,
        iters: args.iters,
        setup_s,
        ms_per_iter_median: median,
        ms_per_iter_min: ms[0],
        ms_per_iter_mean: ms.iter().sum::<f64>() / ms.len() as f64,
        images_per_s: b as f64 / (median / 1e3),
        peak_rss_mib: proc_status_mib("VmHWM"),
        setup_rss_mib: setup_rss,
        loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_select_by_name_and_prefix() {
        assert_eq!(select(&[]).unwrap().len(), CASES.len());
        assert_eq!(select(&["train".into()]).unwrap().len(), 3);
        assert_eq!(select(&["infer-vit-b16-224-b8".into()]).unwrap().len(), 1);
        assert!(select(&["nope".into()]).unwrap_err().to_string().contains("infer-vit-b16-224-b1"));
    }

    #[test]
    fn mask_has_exact_count_per_row() {
        let device = Device::flex();
        let m = mask(4, 64, 38, &device).int().sum_dim(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(m, vec![38; 4]);
    }

    #[test]
    fn tiny_train_case_runs() {
        let case = Case { name: "t", kind: Kind::Train, model: "ti4", batch: 2, layers: 1 };
        let args = BenchArgs {
            cases: vec![],
            device: "cpu".into(),
            warmup: 0,
            iters: 1,
            precision: Precision::Bf16,
            json: true,
            child: true,
        };
        let r = run_case(&case, &args).unwrap();
        assert!(r.images_per_s > 0.0 && r.loss.unwrap().is_finite());
    }
}
