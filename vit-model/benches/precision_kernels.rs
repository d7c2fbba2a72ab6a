//! Micro-benchmarks of mixed precision on the CPU backend: the rounding of matrix-product operands
//! (every path this CPU runs, in GB/s of float32 read) and a ViT-B/16 dense layer (batch 8: 1576
//! rows, 768 → 3072) forward and backward in float32, bf16 (on the float32 kernels and, where the
//! CPU has it, on AMX) and f16 (GFLOP/s); and ViT-Ti's
//! dense layers over a CIFAR batch (64 images of 65 tokens: 4160 rows) forward and backward in
//! float32, with the weight gradients' products sliced across threads by us or threaded by the
//! `gemm` crate.
//!
//! `cargo bench -p vit-model --bench precision_kernels [-- --seconds S]`

use std::time::{Duration, Instant};

use burn::nn::LinearConfig;
use burn::tensor::{Device, Distribution, Tensor};
use vit_model::FusedLinear;
use vit_model::kernels::bf16_tiles::{Bf16Kernel, amx_status, use_bf16_kernel};
use vit_model::kernels::low_precision::{RoundingPath, best_path, rounded_with};
use vit_model::kernels::set_sliced_gemm;
use vit_model::precision::{Precision, autocast};

/// Runs `f` repeatedly for about `seconds` after one warm-up call; the median seconds per call.
fn time(seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || start.elapsed() < Duration::from_secs_f64(seconds) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);

    match amx_status() {
        Ok(()) => println!("AMX: available (bf16 dense layers run on it)\n"),
        Err(why) => println!("AMX: not used: {why}\n"),
    }
    println!("| kernel | path | size | median ms | throughput |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let n = 1576 * 3072;
    let values: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.618).sin() * 100.0).collect();
    let mut paths = vec![RoundingPath::Scalar];
    if best_path() != RoundingPath::Scalar {
        paths.push(best_path());
    }
    for precision in [Precision::Bf16, Precision::F16] {
        for &path in &paths {
            if precision == Precision::Bf16 && path != RoundingPath::Scalar {
                continue; // bf16 has one (vectorised portable) path
            }
            let s = time(seconds, || {
                std::hint::black_box(rounded_with(&values, precision, path));
            });
            let gbs = (n * 4) as f64 / s / 1e9;
            println!("| round to {precision} | {path:?} | {n} | {:.2} | {gbs:.1} GB/s |", s * 1e3);
        }
    }

    let device = Device::flex().autodiff();
    let layer = FusedLinear::from(LinearConfig::new(768, 3072).init(&device));
    let x = Tensor::<3>::random([8, 197, 768], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let flops = 2.0 * 1576.0 * 768.0 * 3072.0;
    let mut cases = vec![
        (Precision::F32, Bf16Kernel::RoundedF32, "f32".to_string()),
        (Precision::Bf16, Bf16Kernel::RoundedF32, "bf16 (float32 kernels)".to_string()),
    ];
    if amx_status().is_ok() {
        cases.push((Precision::Bf16, Bf16Kernel::Amx, "bf16 (AMX)".to_string()));
    }
    cases.push((Precision::F16, Bf16Kernel::RoundedF32, "f16".to_string()));
    for (precision, kernel, name) in cases {
        let _kernel = use_bf16_kernel(kernel);
        let _autocast = autocast(precision);
        let forward = time(seconds, || {
            std::hint::black_box(layer.forward(x.clone().detach()).into_data());
        });
        let both = time(seconds, || {
            let y = layer.forward(x.clone());
            std::hint::black_box(y.sum().backward());
        });
        println!(
            "| dense 768→3072 forward | {name} | 1576 rows | {:.1} | {:.1} GFLOP/s |",
            forward * 1e3,
            flops / forward / 1e9
        );
        println!(
            "| dense 768→3072 forward + backward | {name} | 1576 rows | {:.1} | {:.1} GFLOP/s |",
            both * 1e3,
            3.0 * flops / both / 1e9
        );
    }

    for (d_in, d_out) in [(192, 192), (192, 768), (768, 192)] {
        let layer = FusedLinear::from(LinearConfig::new(d_in, d_out).init(&device));
        let x = Tensor::<3>::random([64, 65, d_in], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let flops = 3.0 * 2.0 * 4160.0 * d_in as f64 * d_out as f64;
        for (sliced, name) in [(false, "gemm crate threads"), (true, "sliced")] {
            set_sliced_gemm(sliced);
            let both = time(seconds, || {
                let y = layer.forward(x.clone());
                std::hint::black_box(y.sum().backward());
            });
            println!(
                "| dense {d_in}→{d_out} forward + backward | f32, {name} | 4160 rows | {:.1} | {:.1} GFLOP/s |",
                both * 1e3,
                flops / both / 1e9
            );
        }
    }
    set_sliced_gemm(true);
}
