//! Is a bfloat16 matrix product on AVX512-BF16 (`vdpbf16ps`) worth having on this CPU? Checks
//! [`kernel::bf16_gemm`] against a float64 reference, then prints its micro-kernel's
//! single-thread GFLOP/s next to the float32 `gemm` crate's (the kernels the model uses), and
//! both on the dense-layer products of ViT-B/16 at batch 8 and ViT-Ti over a CIFAR batch (two
//! threads; the bf16 time includes rounding and packing the float32 operands). Exits early on a
//! CPU without AVX512-BF16.
//!
//! `cargo bench -p vit-model --bench avx512_bf16_gemm [-- --seconds S]`

#[path = "avx512_bf16_gemm/kernel.rs"]
mod kernel;

use std::time::{Duration, Instant};

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

/// `c = a·b` for row-major `a` (m×k), `b` (k×n) with the float32 `gemm` crate.
fn f32_gemm((m, n, k): (usize, usize, usize), a: &[f32], b: &[f32], c: &mut [f32], parallelism: gemm::Parallelism) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserted lengths cover each row-major matrix.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    if !kernel::cpu_has_avx512_bf16() {
        println!("this CPU has no AVX512-BF16: nothing to measure");
        return;
    }
    kernel::check_against_reference();
    println!("bf16_gemm equals the float64 product of the rounded operands on every edge shape");

    let (m, n, k) = (96, 96, 256);
    let (a, b) = (vec![1.0f32; m * k], vec![1.0f32; k * n]);
    let mut c = vec![0f32; m * n];
    let f32_s = time(seconds, || f32_gemm((m, n, k), &a, &b, &mut c, gemm::Parallelism::None));
    println!("| one thread, operands in cache | GFLOP/s |");
    println!("| --- | ---: |");
    println!("| bf16 micro-kernel (8x32 tile, vdpbf16ps) | {:.1} |", kernel::micro_kernel_gflops(seconds));
    println!("| f32 gemm crate, {m}x{n}x{k} | {:.1} |", 2.0 * (m * n * k) as f64 / f32_s / 1e9);

    println!();
    println!("| product (m x n x k) | f32 gemm GFLOP/s | bf16_gemm GFLOP/s | bf16 / f32 |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, (m, n, k)) in [
        ("ViT-B/16 b8 fc1", (1576, 3072, 768)),
        ("ViT-B/16 b8 fc2", (1576, 768, 3072)),
        ("ViT-B/16 b8 attention out", (1576, 768, 768)),
        ("ViT-Ti CIFAR b64 fc1", (4160, 768, 192)),
        ("ViT-Ti CIFAR b64 fc2", (4160, 192, 768)),
        ("ViT-B/16 b1 attention out", (197, 768, 768)),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
        let mut c = vec![0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let f32_s = time(seconds, || f32_gemm((m, n, k), &a, &b, &mut c, gemm::Parallelism::Rayon(0)));
        let bf16_s = time(seconds, || {
            // SAFETY: the buffers are row-major m×k, k×n and m×n; AVX512-BF16 was checked.
            unsafe {
                kernel::bf16_gemm(
                    (m, n, k),
                    c.as_mut_ptr(),
                    (n, 1),
                    false,
                    a.as_ptr(),
                    (k, 1),
                    b.as_ptr(),
                    (n, 1),
                    1.0,
                    true,
                )
            }
        });
        println!(
            "| {name} ({m} x {n} x {k}) | {:.1} | {:.1} | {:.2} |",
            flops / f32_s / 1e9,
            flops / bf16_s / 1e9,
            f32_s / bf16_s
        );
    }
}
