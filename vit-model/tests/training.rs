//! Every class trains: 20 AdamW steps on a fixed small batch lower the loss clearly
//! (on the autodiff device), including through `interpolate_pos_encoding`.

use std::sync::{Mutex, MutexGuard, PoisonError};

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use vit_model::{Labels, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling, ViTForwardOptions, ViTModel};

const STEPS: usize = 20;
const LR: f64 = 1e-3;

fn tiny_config() -> ViTConfig {
    ViTConfig {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        image_size: 16,
        patch_size: 4,
        encoder_stride: 4,
        ..ViTConfig::default()
    }
}

/// Burn's flex RNG is one global generator: tests running in parallel threads would take turns
/// drawing from it in whatever order the scheduler picks. Each test holds this lock for its whole
/// run (so no other test draws meanwhile) and reseeds at its start, which makes every run draw the
/// same numbers.
static RNG: Mutex<()> = Mutex::new(());

/// The autodiff device, seeded, and the guard that keeps other tests from drawing random numbers
/// until it is dropped at the end of the test.
fn device() -> (MutexGuard<'static, ()>, Device) {
    let guard = RNG.lock().unwrap_or_else(PoisonError::into_inner);
    let device = Device::flex().autodiff();
    device.seed(7);
    (guard, device)
}

/// Runs `STEPS` AdamW steps of `loss_of` and returns (first loss, last loss).
fn train<M, F>(model: M, loss_of: F) -> (f32, f32)
where
    M: Module + Clone,
    F: Fn(&M) -> Tensor<1>,
{
    train_with_lr(model, LR, loss_of)
}

fn train_with_lr<M, F>(mut model: M, lr: f64, loss_of: F) -> (f32, f32)
where
    M: Module + Clone,
    F: Fn(&M) -> Tensor<1>,
{
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        let loss = loss_of(&model);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    losses.push(loss_of(&model).into_scalar::<f32>());
    (losses[0], *losses.last().unwrap())
}

fn assert_clearly_lower(name: &str, (first, last): (f32, f32)) {
    assert!(first.is_finite() && last.is_finite(), "{name}: {first} → {last}");
    assert!(last < 0.5 * first, "{name}: loss {first} → {last} did not fall clearly");
}

fn batch(device: &Device, h: usize, w: usize) -> Tensor<4> {
    Tensor::random([8, 3, h, w], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn classifier_single_label_trains() {
    let (_rng, device) = device();
    let config = tiny_config().with_num_labels(4);
    let model = ViTForImageClassification::new(&config, &device);
    let x = batch(&device, 16, 16);
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3, 0, 1, 2, 3], [8]), &device);
    let losses = train(model, |m| {
        m.forward_with(x.clone(), Some(Labels::Classes(y.clone())), ViTForwardOptions::default()).unwrap().loss.unwrap()
    });
    assert_clearly_lower("single-label", losses);
}

#[test]
fn classifier_trains_through_interpolated_positions() {
    let (_rng, device) = device();
    let config = tiny_config().with_num_labels(4);
    let model = ViTForImageClassification::new(&config, &device);
    let x = batch(&device, 24, 20);
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 1, 2, 0, 0, 1, 2, 3], [8]), &device);
    let options = ViTForwardOptions { interpolate_pos_encoding: true, ..Default::default() };
    // The position embeddings must receive a gradient through the bicubic resize.
    let loss = model.forward_with(x.clone(), Some(Labels::Classes(y.clone())), options.clone()).unwrap().loss.unwrap();
    let grads = loss.backward();
    let g = model.vit.embeddings.position_embeddings.val().grad(&grads).expect("position gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    let losses = train(model, |m| {
        m.forward_with(x.clone(), Some(Labels::Classes(y.clone())), options.clone()).unwrap().loss.unwrap()
    });
    assert_clearly_lower("interpolated", losses);
}

#[test]
fn classifier_multi_label_and_regression_train() {
    let (_rng, device) = device();
    let x = batch(&device, 16, 16);
    let model = ViTForImageClassification::new(&tiny_config().with_num_labels(3), &device);
    let targets = Tensor::<2>::random([8, 3], Distribution::Bernoulli(0.5), &device);
    let losses = train_with_lr(model, 3e-3, |m| {
        m.forward_with(x.clone(), Some(Labels::Targets(targets.clone())), ViTForwardOptions::default())
            .unwrap()
            .loss
            .unwrap()
    });
    assert_clearly_lower("multi-label", losses);

    let model = ViTForImageClassification::new(&tiny_config().with_num_labels(1), &device);
    let targets = Tensor::<2>::random([8, 1], Distribution::Normal(0.0, 1.0), &device);
    let losses = train(model, |m| {
        m.forward_with(x.clone(), Some(Labels::Targets(targets.clone())), ViTForwardOptions::default())
            .unwrap()
            .loss
            .unwrap()
    });
    assert_clearly_lower("regression", losses);
}

#[test]
fn masked_image_modeling_trains() {
    let (_rng, device) = device();
    let model = ViTForMaskedImageModeling::new(&tiny_config(), &device).unwrap();
    // Images whose masked pixels can be inferred from the visible ones: one colour per image and
    // channel plus a shared vertical ramp.
    let colours = Tensor::<4>::random([8, 3, 1, 1], Distribution::Normal(0.0, 1.0), &device);
    let ramp = Tensor::<1, Int>::arange(0..16, &device).float().div_scalar(16.0).reshape([1, 1, 16, 1]);
    let x = colours.expand([8, 3, 16, 16]) + ramp.expand([8, 3, 16, 16]);
    let mask = Tensor::<2>::random([8, 16], Distribution::Bernoulli(0.6), &device).greater_elem(0.5);
    let losses = train_with_lr(model, 3e-3, |m| {
        let options = ViTForwardOptions { bool_masked_pos: Some(mask.clone()), ..Default::default() };
        m.forward_with(x.clone(), options).unwrap().loss.unwrap()
    });
    assert_clearly_lower("simmim", losses);
}

#[test]
fn base_model_trains_with_its_pooler() {
    let (_rng, device) = device();
    let model = ViTModel::new(&tiny_config(), true, false, &device);
    let x = batch(&device, 16, 16);
    let target = Tensor::<2>::random([8, 32], Distribution::Uniform(-0.5, 0.5), &device);
    let losses = train(model, |m| {
        let pooled = m.forward_with(x.clone(), ViTForwardOptions::default()).unwrap().pooler_output.unwrap();
        (pooled - target.clone()).square().mean()
    });
    assert_clearly_lower("pooler", losses);
}
