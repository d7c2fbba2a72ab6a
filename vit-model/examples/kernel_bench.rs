//! Times the building blocks of a ViT training step on the CPU backend (forward and
//! forward + backward), at the shapes of the ViT-Ti CIFAR benchmark: `cargo run --release -p
//! vit-model --example kernel_bench`.

use std::time::Instant;

use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, activation};

fn time<F: FnMut()>(name: &str, iters: usize, mut f: F) {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / iters as f64;
    println!("{name:<40} {ms:8.2} ms");
}

fn main() {
    let device = Device::flex().autodiff();
    let rows = 64 * 65;
    let x192 =
        Tensor::<2>::random([rows, 192], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let x768 =
        Tensor::<2>::random([rows, 768], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let ln = LayerNormConfig::new(192).init(&device);
    let fc1 = LinearConfig::new(192, 768).init(&device);
    let iters = 10;

    time("layernorm fwd [4160,192]", iters, || {
        let _ = ln.forward(x192.clone().detach()).into_data();
    });
    time("layernorm fwd+bwd", iters, || {
        let y = ln.forward(x192.clone());
        let _ = y.sum().backward();
    });
    time("gelu fwd [4160,768]", iters, || {
        let _ = activation::gelu(x768.clone().detach()).into_data();
    });
    time("gelu fwd+bwd", iters, || {
        let _ = activation::gelu(x768.clone()).sum().backward();
    });
    time("fused gelu fwd [4160,768]", iters, || {
        let _ = vit_model::kernels::gelu(x768.clone().detach()).into_data();
    });
    time("fused gelu fwd+bwd", iters, || {
        let _ = vit_model::kernels::gelu(x768.clone()).sum().backward();
    });
    time("linear 192->768 fwd", iters, || {
        let _ = fc1.forward(x192.clone().detach()).into_data();
    });
    time("linear 192->768 fwd+bwd", iters, || {
        let _ = fc1.forward(x192.clone()).sum().backward();
    });
    let w = Tensor::<2>::random([192, 768], Distribution::Default, &device);
    time("matmul [4160,192]x[192,768]", iters, || {
        let _ = x192.clone().detach().matmul(w.clone()).into_data();
    });
    time("matmul only (no readback)", iters, || {
        let _ = x192.clone().detach().matmul(w.clone());
    });
    time("add [4160,768]", iters, || {
        let _ = (x768.clone().detach() + x768.clone().detach()).into_data();
    });
    time("sum fwd+bwd (baseline)", iters, || {
        let _ = x768.clone().sum().backward();
    });
}
