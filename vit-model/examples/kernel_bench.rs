//! Times each fused CPU kernel against the Burn ops it replaces, forward and forward + backward,
//! at the shapes of the ViT-Ti CIFAR training benchmark (batch 64, 65 tokens, width 192, MLP 768,
//! 3 heads): `cargo run --release -p vit-model --example kernel_bench`.

use std::time::Instant;

use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::activation;
use burn::tensor::{Device, Distribution, Tensor};
use vit_model::{FusedLayerNorm, FusedLinear, kernels};

/// Median milliseconds of `iters` calls after one warm-up call.
fn time<F: FnMut()>(iters: usize, mut f: F) -> f64 {
    f();
    let mut times: Vec<f64> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[iters / 2]
}

fn row(name: &str, burn: f64, fused: f64) {
    println!("{name:<34} {burn:9.2} {fused:9.2} {:8.1}x", burn / fused);
}

fn main() {
    let device = Device::flex().autodiff();
    let (batch, seq, width, mlp, heads) = (64, 65, 192, 768, 3);
    let rows = batch * seq;
    let random = |dims: [usize; 2]| Tensor::<2>::random(dims, Distribution::Normal(0.0, 1.0), &device);
    let x = random([rows, width]).require_grad();
    let h = random([rows, mlp]).require_grad();
    let w_width = random([rows, width]);
    let w_mlp = random([rows, mlp]);
    let ln_config = LayerNormConfig::new(width);
    let ln = ln_config.init(&device);
    let fused_ln = FusedLayerNorm { gamma: ln.gamma.clone(), beta: ln.beta.clone(), epsilon: ln_config.epsilon };
    let fc1 = LinearConfig::new(width, mlp).init(&device);
    let fused_fc1 = FusedLinear::from(fc1.clone());
    let iters = 11;

    println!("{:<34} {:>9} {:>9} {:>9}", "op (ms, median)", "burn", "fused", "speed-up");
    let pair =
        |name: &str, burn: &mut dyn FnMut(), fused: &mut dyn FnMut()| row(name, time(iters, burn), time(iters, fused));

    pair("gelu forward [4160, 768]", &mut || drop(activation::gelu(h.clone().detach()).into_data()), &mut || {
        drop(kernels::gelu(h.clone().detach()).into_data())
    });
    pair(
        "gelu forward + backward",
        &mut || drop((activation::gelu(h.clone()) * w_mlp.clone()).sum().backward()),
        &mut || drop((kernels::gelu(h.clone()) * w_mlp.clone()).sum().backward()),
    );
    pair("linear 192→768 forward", &mut || drop(fc1.forward(x.clone().detach()).into_data()), &mut || {
        drop(fused_fc1.forward(x.clone().detach()).into_data())
    });
    pair(
        "linear 192→768 forward + backward",
        &mut || drop((fc1.forward(x.clone()) * w_mlp.clone()).sum().backward()),
        &mut || drop((fused_fc1.forward(x.clone()) * w_mlp.clone()).sum().backward()),
    );
    pair("layer norm forward [4160, 192]", &mut || drop(ln.forward(x.clone().detach()).into_data()), &mut || {
        drop(fused_ln.forward(x.clone().detach()).into_data())
    });
    pair(
        "layer norm forward + backward",
        &mut || drop((ln.forward(x.clone()) * w_width.clone()).sum().backward()),
        &mut || drop((fused_ln.forward(x.clone()) * w_width.clone()).sum().backward()),
    );

    let split = |t: Tensor<2>| t.reshape([batch, seq, heads, width / heads]).swap_dims(1, 2);
    let (q, k, v) = (
        random([rows, width]).require_grad(),
        random([rows, width]).require_grad(),
        random([rows, width]).require_grad(),
    );
    let w_heads = Tensor::<4>::random([batch, heads, seq, width / heads], Distribution::Default, &device);
    let scale = ((width / heads) as f64).powf(-0.5);
    let reference = |q: Tensor<4>, k: Tensor<4>, v: Tensor<4>| {
        let options = burn::tensor::ops::AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
        burn::tensor::module::attention(q, k, v, None, None, options)
    };
    pair(
        "attention forward [64, 3, 65, 64]",
        &mut || {
            drop(reference(split(q.clone().detach()), split(k.clone().detach()), split(v.clone().detach())).into_data())
        },
        &mut || {
            drop(
                kernels::attention(
                    split(q.clone().detach()),
                    split(k.clone().detach()),
                    split(v.clone().detach()),
                    scale,
                )
                .into_data(),
            )
        },
    );
    pair(
        "attention forward + backward",
        &mut || {
            drop((reference(split(q.clone()), split(k.clone()), split(v.clone())) * w_heads.clone()).sum().backward())
        },
        &mut || {
            drop(
                (kernels::attention(split(q.clone()), split(k.clone()), split(v.clone()), scale) * w_heads.clone())
                    .sum()
                    .backward(),
            )
        },
    );
}
