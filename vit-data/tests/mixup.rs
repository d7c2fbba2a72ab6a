//! Mixup/CutMix against timm (`tests/fixtures/mixup_reference.safetensors`, written by
//! `scripts/make_mixup_fixtures.py` from timm's own `Mixup` with recorded decisions), plus the
//! properties that do not need a reference: targets, smoothing, lam correction, seeding,
//! validation, odd batches and the batcher integration.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::SafeTensors;
use vit_data::mixup::{
    CutBox, bbox_at, corrected_lam, cutmix_bbox_and_lam, dominant_labels, mixup_target, mixup_target_per_sample,
    rand_bbox, rand_bbox_minmax,
};
use vit_data::rng::{RngStream, sample_rng};
use vit_data::{
    Augmentation, DataError, ImageBatcher, ImageProcessor, ImageSample, ImageSize, MixDecision, MixDecisions, Mixup,
    MixupConfig, MixupMode, Resample, Transform,
};

mod common;

const TOL: f32 = 1e-6;

struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mixup_reference.safetensors");
        Fixture { bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) }
    }

    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }

    fn shape(&self, name: &str) -> Vec<usize> {
        self.st().tensor(name).unwrap_or_else(|e| panic!("{name}: {e}")).shape().to_vec()
    }

    fn f32(&self, name: &str) -> Vec<f32> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    fn f64(&self, name: &str) -> Vec<f64> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F64, "{name}");
        t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
    }

    fn i64(&self, name: &str) -> Vec<i64> {
        let st = self.st();
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), safetensors::Dtype::I64, "{name}");
        t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }

    fn cases(&self) -> serde_json::Map<String, serde_json::Value> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).unwrap();
        let meta = meta.metadata().as_ref().expect("fixture metadata");
        serde_json::from_str(&meta["cases"]).unwrap()
    }
}

fn config_of(case: &serde_json::Value) -> MixupConfig {
    let f = |k: &str| case[k].as_f64().unwrap_or_else(|| panic!("{k}"));
    MixupConfig {
        mixup_alpha: f("mixup_alpha"),
        cutmix_alpha: f("cutmix_alpha"),
        cutmix_minmax: case["cutmix_minmax"].as_array().map(|a| [a[0].as_f64().unwrap(), a[1].as_f64().unwrap()]),
        prob: f("prob"),
        switch_prob: f("switch_prob"),
        mode: MixupMode::parse(case["mode"].as_str().unwrap()).unwrap(),
        correct_lam: case["correct_lam"].as_bool().unwrap(),
        label_smoothing: f("label_smoothing"),
        num_classes: case["num_classes"].as_u64().unwrap() as usize,
    }
}

/// The recorded decisions of a fixture case, in our form.
fn decisions_of(fx: &Fixture, name: &str, mode: MixupMode) -> MixDecisions {
    let lams = fx.f64(&format!("{name}.drawn_lam"));
    let use_cutmix = fx.i64(&format!("{name}.use_cutmix"));
    let boxes = fx.i64(&format!("{name}.box"));
    let slots: Vec<MixDecision> = (0..lams.len())
        .map(|k| {
            let b = &boxes[4 * k..4 * k + 4];
            let cut = (b[0] >= 0).then(|| CutBox {
                y_low: b[0] as usize,
                y_high: b[1] as usize,
                x_low: b[2] as usize,
                x_high: b[3] as usize,
            });
            // timm draws a box exactly for the cutmix slots that mix (lam != 1 in float32).
            assert_eq!(cut.is_some(), use_cutmix[k] == 1 && (lams[k] as f32) != 1.0, "{name} slot {k}");
            MixDecision { lam: lams[k], cut }
        })
        .collect();
    match mode {
        MixupMode::Batch => MixDecisions::Batch(slots[0]),
        MixupMode::Pair => MixDecisions::Pairs(slots),
        MixupMode::Elem => MixDecisions::Elements(slots),
    }
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let (i, diff) = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    assert!(diff <= TOL, "{what}: max |diff| {diff} at {i} (ours {}, timm {})", ours[i], theirs[i]);
}

#[test]
fn every_mode_matches_timm_on_recorded_decisions() {
    let fx = Fixture::load();
    let x = fx.f32("x");
    let shape: [usize; 4] = fx.shape("x").try_into().unwrap();
    let labels = fx.i64("labels");
    let cases = fx.cases();
    assert!(cases.len() >= 10, "{} cases", cases.len());
    let mut modes_seen = std::collections::HashSet::new();
    let mut cut_and_blend = (0, 0);
    for (name, case) in &cases {
        let config = config_of(case);
        modes_seen.insert(config.mode);
        let mixup = Mixup::new(config.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let decisions = decisions_of(&fx, name, config.mode);
        let mut pixels = x.clone();
        let mixed = mixup.apply_decisions(&decisions, &mut pixels, shape, &labels).unwrap();
        assert_close(&pixels, &fx.f32(&format!("{name}.x")), &format!("{name}: images"));
        assert_close(&mixed.targets, &fx.f32(&format!("{name}.target")), &format!("{name}: targets"));
        assert_close(&mixed.lambdas, &fx.f32(&format!("{name}.lam")), &format!("{name}: lam"));
        assert_eq!(mixed.num_classes, config.num_classes);
        let slots = match &decisions {
            MixDecisions::Batch(d) => vec![*d],
            MixDecisions::Pairs(v) | MixDecisions::Elements(v) => v.clone(),
        };
        for d in slots.iter().filter(|d| d.lam != 1.0) {
            if d.cut.is_some() {
                cut_and_blend.0 += 1;
            } else {
                cut_and_blend.1 += 1;
            }
        }
        // The fixture's images really were mixed (or not, for prob 0).
        let changed = pixels.iter().zip(&x).filter(|(a, b)| a != b).count();
        assert_eq!(changed == 0, name == "batch_prob0", "{name}: {changed} values changed");
    }
    assert_eq!(modes_seen.len(), 3, "{modes_seen:?}");
    assert!(cut_and_blend.0 >= 5 && cut_and_blend.1 >= 3, "{cut_and_blend:?}");
}

#[test]
fn timm_mixup_target_and_rand_bbox_geometry() {
    let fx = Fixture::load();
    let labels = fx.i64("labels");
    // batch_mixup: lam 0.3, smoothing 0.1; batch_mixup_nosmooth: lam 0.7, smoothing 0.
    assert_close(&mixup_target(&labels, 5, 0.3, 0.1).unwrap(), &fx.f32("batch_mixup.target"), "mixup_target 0.3");
    assert_close(&mixup_target(&labels, 5, 0.7, 0.0).unwrap(), &fx.f32("batch_mixup_nosmooth.target"), "0.7");
    // elem: per-sample float32 lams.
    let elem = fx.cases()["elem"].clone();
    let lams = fx.f32("elem.lam");
    let smoothing = elem["label_smoothing"].as_f64().unwrap();
    assert_close(
        &mixup_target_per_sample(&labels, 5, &lams, smoothing).unwrap(),
        &fx.f32("elem.target"),
        "mixup_target per sample",
    );

    let inputs = fx.f64("bbox_in");
    let outputs = fx.i64("bbox_out");
    assert!(inputs.len() / 5 >= 100);
    for (row, want) in inputs.chunks(5).zip(outputs.chunks(4)) {
        let [h, w, lam, cy, cx] = row.try_into().unwrap();
        let b = bbox_at(h as usize, w as usize, lam, cy as usize, cx as usize);
        let got = [b.y_low, b.y_high, b.x_low, b.x_high].map(|v| v as i64);
        assert_eq!(got.as_slice(), want, "rand_bbox {h}x{w} lam {lam} centre ({cy}, {cx})");
    }
}

fn batch(n: usize, c: usize, h: usize, w: usize, salt: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(salt);
    (0..n * c * h * w).map(|_| rand::Rng::random_range(&mut rng, -2.0f32..2.0)).collect()
}

fn config(mode: MixupMode) -> MixupConfig {
    MixupConfig { mixup_alpha: 0.8, cutmix_alpha: 1.0, mode, num_classes: 7, ..MixupConfig::new(7) }
}

#[test]
fn targets_are_distributions_with_the_right_smoothing() {
    let labels = [0i64, 6, 3, 3, 1, 5, 2, 4];
    let shape = [8, 3, 6, 5];
    for mode in MixupMode::ALL.iter().copied() {
        for smoothing in [0.0, 0.1, 0.25] {
            let mixup = Mixup::new(MixupConfig { label_smoothing: smoothing, ..config(mode) }).unwrap();
            for seed in 0..20 {
                let mut pixels = batch(8, 3, 6, 5, seed);
                let mixed = mixup.apply(&mut ChaCha8Rng::seed_from_u64(seed), &mut pixels, shape, &labels).unwrap();
                let off = (smoothing / 7.0) as f32;
                for (i, row) in mixed.targets.chunks(7).enumerate() {
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-6, "{mode} row {i}: sum {sum}");
                    // Classes that are neither the sample's nor its partner's get exactly `off`.
                    let (own, partner) = (labels[i] as usize, labels[7 - i] as usize);
                    for (k, &t) in row.iter().enumerate() {
                        if k != own && k != partner {
                            assert!((t - off).abs() < 1e-7, "{mode} row {i} class {k}: {t} vs {off}");
                        }
                    }
                    let lam = mixed.lambdas[i];
                    let on = 1.0 - smoothing as f32 + off;
                    if own != partner {
                        assert!((row[own] - (on * lam + off * (1.0 - lam))).abs() < 1e-6, "{mode} row {i}");
                    }
                }
            }
        }
    }
}

#[test]
fn prob_zero_and_disabled_are_the_identity_with_smoothed_one_hot_targets() {
    let labels = [2i64, 0, 1, 6];
    let shape = [4, 3, 4, 4];
    let original = batch(4, 3, 4, 4, 9);
    let off = 0.1f32 / 7.0;
    let on = (1.0 - 0.1 + 0.1 / 7.0) as f32;
    let one_hot: Vec<f32> = labels.iter().flat_map(|&l| (0..7).map(move |k| if k == l { on } else { off })).collect();
    for mode in MixupMode::ALL.iter().copied() {
        let mut off_switch = Mixup::new(config(mode)).unwrap();
        off_switch.set_enabled(false);
        assert!(!off_switch.enabled());
        for mixup in [Mixup::new(MixupConfig { prob: 0.0, ..config(mode) }).unwrap(), off_switch] {
            for seed in 0..10 {
                let mut pixels = original.clone();
                let mixed = mixup.apply(&mut ChaCha8Rng::seed_from_u64(seed), &mut pixels, shape, &labels).unwrap();
                assert_eq!(pixels, original, "{mode}");
                assert_eq!(mixed.targets, one_hot, "{mode}");
                assert_eq!(mixed.lambdas, vec![1.0; 4]);
                assert_eq!(mixed.dominant_labels(&labels), labels.to_vec());
            }
        }
    }
}

#[test]
fn lam_correction() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut corrected_differs, mut tries) = (0, 0);
    for _ in 0..200 {
        let lam = rand::Rng::random_range(&mut rng, 0.0..1.0);
        let mut a = ChaCha8Rng::seed_from_u64(tries);
        let mut b = ChaCha8Rng::seed_from_u64(tries);
        tries += 1;
        let (box_c, lam_c) = cutmix_bbox_and_lam(10, 12, lam, None, true, &mut a).unwrap();
        let (box_n, lam_n) = cutmix_bbox_and_lam(10, 12, lam, None, false, &mut b).unwrap();
        assert_eq!(box_c, box_n, "same draws, same box");
        assert_eq!(lam_n, lam, "correct_lam = false keeps lam");
        assert_eq!(lam_c, 1.0 - box_c.area() as f64 / 120.0);
        assert_eq!(lam_c, corrected_lam(&box_c, 10, 12));
        if (lam_c - lam).abs() > 0.05 {
            corrected_differs += 1;
        }
        // The box of rand_bbox with the same draws.
        let mut c = ChaCha8Rng::seed_from_u64(tries - 1);
        assert_eq!(rand_bbox(10, 12, lam, &mut c).unwrap(), box_c);
    }
    assert!(corrected_differs > 10, "clipped boxes change lam: {corrected_differs}");
    // With minmax, lam always follows the box, whatever correct_lam says.
    for seed in 0..50 {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let (b, lam) = cutmix_bbox_and_lam(20, 16, 0.123, Some([0.25, 0.75]), false, &mut r).unwrap();
        assert_eq!(lam, corrected_lam(&b, 20, 16));
        let (bh, bw) = (b.y_high - b.y_low, b.x_high - b.x_low);
        assert!((5..15).contains(&bh) && (4..12).contains(&bw), "{b:?}");
        assert!(b.y_high <= 20 && b.x_high <= 16);
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        assert_eq!(rand_bbox_minmax(20, 16, [0.25, 0.75], &mut r).unwrap(), b);
    }
    // Through Mixup: one clipped box, batch mode, correct_lam on and off.
    let decision =
        MixDecisions::Batch(MixDecision { lam: 0.4, cut: Some(CutBox { y_low: 0, y_high: 3, x_low: 4, x_high: 8 }) });
    let labels = [0i64, 1];
    for (correct, want) in [(true, 1.0 - 12.0 / 64.0), (false, 0.4)] {
        let mixup = Mixup::new(MixupConfig { correct_lam: correct, ..config(MixupMode::Batch) }).unwrap();
        let mut pixels = batch(2, 1, 8, 8, 3);
        let mixed = mixup.apply_decisions(&decision, &mut pixels, [2, 1, 8, 8], &labels).unwrap();
        assert_eq!(mixed.lambdas, vec![want as f32; 2], "correct_lam {correct}");
    }
}

#[test]
fn seeded_draws_are_deterministic_and_follow_the_settings() {
    let labels: Vec<i64> = (0..16).map(|i| i % 7).collect();
    let shape = [16, 3, 8, 8];
    for mode in MixupMode::ALL.iter().copied() {
        let mixup = Mixup::new(config(mode)).unwrap();
        let run = |seed: u64| {
            let mut pixels = batch(16, 3, 8, 8, 5);
            let mixed = mixup.apply(&mut ChaCha8Rng::seed_from_u64(seed), &mut pixels, shape, &labels).unwrap();
            (pixels, mixed)
        };
        assert_eq!(run(11), run(11), "{mode}: same seed, same batch");
        assert_ne!(run(11).0, run(12).0, "{mode}: another seed, another batch");
        assert!(matches!(
            (mode, &run(3).1.decisions),
            (MixupMode::Batch, MixDecisions::Batch(_))
                | (MixupMode::Pair, MixDecisions::Pairs(_))
                | (MixupMode::Elem, MixDecisions::Elements(_))
        ));
    }
    // Frequencies: prob, switch_prob, and the Beta mean of lam.
    let mixup = Mixup::new(MixupConfig { prob: 0.6, switch_prob: 0.3, ..config(MixupMode::Batch) }).unwrap();
    let (mut mixed, mut cut, mut lam_sum) = (0, 0, 0.0);
    let trials = 4000;
    for seed in 0..trials {
        let MixDecisions::Batch(d) = mixup.sample_decisions(&mut ChaCha8Rng::seed_from_u64(seed), 8, 16, 16).unwrap()
        else {
            unreachable!()
        };
        if d.lam != 1.0 {
            mixed += 1;
            lam_sum += d.lam;
            cut += d.cut.is_some() as usize;
        }
    }
    let share = mixed as f64 / trials as f64;
    assert!((share - 0.6).abs() < 0.03, "prob: {share}");
    let switch = cut as f64 / mixed as f64;
    assert!((switch - 0.3).abs() < 0.03, "switch_prob: {switch}");
    assert!((lam_sum / mixed as f64 - 0.5).abs() < 0.02, "lam mean");
    // elem mode: per-sample decisions, independent.
    let mixup = Mixup::new(MixupConfig { prob: 0.5, ..config(MixupMode::Elem) }).unwrap();
    let MixDecisions::Elements(ds) = mixup.sample_decisions(&mut ChaCha8Rng::seed_from_u64(1), 2000, 8, 8).unwrap()
    else {
        unreachable!()
    };
    let share = ds.iter().filter(|d| d.lam != 1.0).count() as f64 / 2000.0;
    assert!((share - 0.5).abs() < 0.05, "elem prob: {share}");
    let MixDecisions::Pairs(ps) = Mixup::new(config(MixupMode::Pair))
        .unwrap()
        .sample_decisions(&mut ChaCha8Rng::seed_from_u64(1), 10, 8, 8)
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(ps.len(), 5);
}

#[test]
fn pairs_are_mirror_images_and_partners_are_the_flipped_batch() {
    // Two images, constant 0 and 1: mixup with lam gives lam*0 + (1-lam)*1 and its mirror.
    let mixup = Mixup::new(MixupConfig { label_smoothing: 0.0, ..config(MixupMode::Pair) }).unwrap();
    let mut pixels = vec![0.0f32; 4].into_iter().chain(vec![1.0; 4]).collect::<Vec<_>>();
    let d = MixDecisions::Pairs(vec![MixDecision { lam: 0.25, cut: None }]);
    let mixed = mixup.apply_decisions(&d, &mut pixels, [2, 1, 2, 2], &[3, 5]).unwrap();
    assert_eq!(pixels, vec![0.75, 0.75, 0.75, 0.75, 0.25, 0.25, 0.25, 0.25]);
    assert_eq!(mixed.lambdas, vec![0.25, 0.25]);
    // Sample 0 (label 3): 0.25 of its own, 0.75 of its partner's (label 5); sample 1 the mirror.
    assert_eq!(mixed.targets, vec![0.0, 0.0, 0.0, 0.25, 0.0, 0.75, 0.0, 0.0, 0.0, 0.0, 0.75, 0.0, 0.25, 0.0]);
    assert_eq!(mixed.dominant_labels(&[3, 5]), vec![5, 3]);
    // CutMix pastes the partner's box into each member.
    let mut pixels = vec![0.0f32; 4].into_iter().chain(vec![1.0; 4]).collect::<Vec<_>>();
    let b = CutBox { y_low: 0, y_high: 1, x_low: 1, x_high: 2 };
    let d = MixDecisions::Pairs(vec![MixDecision { lam: 0.5, cut: Some(b) }]);
    let mixed = mixup.apply_decisions(&d, &mut pixels, [2, 1, 2, 2], &[3, 5]).unwrap();
    assert_eq!(pixels, vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
    assert_eq!(mixed.lambdas, vec![0.75, 0.75]);
}

#[test]
fn odd_batches_leave_the_middle_sample_unmixed() {
    let labels = [0i64, 1, 2, 3, 4];
    let shape = [5, 2, 4, 4];
    let original = batch(5, 2, 4, 4, 21);
    let per = 2 * 16;
    for mode in MixupMode::ALL.iter().copied() {
        let mixup = Mixup::new(MixupConfig { prob: 1.0, label_smoothing: 0.0, ..config(mode) }).unwrap();
        let mut pixels = original.clone();
        let mixed = mixup.apply(&mut ChaCha8Rng::seed_from_u64(2), &mut pixels, shape, &labels).unwrap();
        assert_eq!(&pixels[2 * per..3 * per], &original[2 * per..3 * per], "{mode}");
        assert_eq!(mixed.lambdas[2], 1.0);
        assert_eq!(&mixed.targets[2 * 7..3 * 7], &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_ne!(&pixels[..per], &original[..per], "{mode}: the others are mixed");
        if mode == MixupMode::Pair {
            let MixDecisions::Pairs(p) = &mixed.decisions else { unreachable!() };
            assert_eq!(p.len(), 2);
        }
    }
    // An explicit decision for the middle element is ignored.
    let mixup = Mixup::new(config(MixupMode::Elem)).unwrap();
    let d = MixDecisions::Elements(vec![MixDecision { lam: 0.5, cut: None }; 3]);
    let mut pixels = batch(3, 1, 2, 2, 1);
    let original = pixels.clone();
    let mixed = mixup.apply_decisions(&d, &mut pixels, [3, 1, 2, 2], &[0, 1, 2]).unwrap();
    assert_eq!(mixed.lambdas, vec![0.5, 1.0, 0.5]);
    assert_eq!(&pixels[4..8], &original[4..8]);
    // One sample: nothing to mix with.
    let mut one = batch(1, 1, 2, 2, 1);
    let mixed = Mixup::new(config(MixupMode::Batch))
        .unwrap()
        .apply(&mut ChaCha8Rng::seed_from_u64(0), &mut one, [1, 1, 2, 2], &[4])
        .unwrap();
    assert_eq!(mixed.lambdas, vec![1.0]);
}

#[test]
fn dominant_label_rule() {
    assert_eq!(dominant_labels(&[1, 2, 3, 4], &[0.5, 0.49, 0.51, 1.0]), vec![1, 3, 3, 4]);
    assert_eq!(dominant_labels(&[], &[]), Vec::<i64>::new());
}

fn setting_error(result: vit_data::Result<Mixup>) -> (String, String) {
    match result {
        Err(DataError::InvalidSetting { name, message }) => (name, message),
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

#[test]
fn invalid_settings_name_the_field() {
    let base = config(MixupMode::Batch);
    let cases: Vec<(MixupConfig, &str)> = vec![
        (MixupConfig { mixup_alpha: -0.1, ..base.clone() }, "mixup_alpha"),
        (MixupConfig { mixup_alpha: f64::NAN, ..base.clone() }, "mixup_alpha"),
        (MixupConfig { cutmix_alpha: -1.0, ..base.clone() }, "cutmix_alpha"),
        (MixupConfig { cutmix_alpha: f64::INFINITY, ..base.clone() }, "cutmix_alpha"),
        (MixupConfig { prob: 1.5, ..base.clone() }, "prob"),
        (MixupConfig { prob: -0.1, ..base.clone() }, "prob"),
        (MixupConfig { switch_prob: 2.0, ..base.clone() }, "switch_prob"),
        (MixupConfig { label_smoothing: -0.1, ..base.clone() }, "label_smoothing"),
        (MixupConfig { cutmix_minmax: Some([0.5, 0.4]), ..base.clone() }, "cutmix_minmax"),
        (MixupConfig { cutmix_minmax: Some([0.2, 1.2]), ..base.clone() }, "cutmix_minmax"),
        (MixupConfig { cutmix_minmax: Some([-0.1, 0.5]), ..base.clone() }, "cutmix_minmax"),
        (MixupConfig { num_classes: 0, ..base.clone() }, "num_classes"),
        (MixupConfig { mixup_alpha: 0.0, cutmix_alpha: 0.0, ..base.clone() }, "mixup_alpha"),
    ];
    for (config, field) in cases {
        let (name, message) = setting_error(Mixup::new(config.clone()));
        assert_eq!(name, field, "{config:?}: {message}");
        let text = DataError::setting(name, message).to_string();
        assert!(text.contains(field), "{text}");
    }
    // minmax alone switches cutmix on and forces its alpha to 1, as timm.
    let m = Mixup::new(MixupConfig { mixup_alpha: 0.0, cutmix_alpha: 0.0, cutmix_minmax: Some([0.3, 0.35]), ..base })
        .unwrap();
    assert_eq!(m.config().cutmix_alpha, 1.0);
    // int(4 * 0.3) = int(4 * 0.35) = 1: no box size to draw from on a 4x4 image.
    assert!(
        matches!(m.check_image_size(4, 4), Err(DataError::InvalidSetting { ref name, .. }) if name == "cutmix_minmax")
    );
    assert!(m.check_image_size(32, 32).is_ok());

    // Mode spellings, with a suggestion.
    for (text, mode) in [("batch", MixupMode::Batch), ("pair", MixupMode::Pair), ("elem", MixupMode::Elem)] {
        assert_eq!(MixupMode::parse(text).unwrap(), mode);
        assert_eq!(mode.to_string(), text);
    }
    let err = MixupMode::parse("elements").unwrap_err().to_string();
    assert!(
        err.contains("`mode`") && err.contains("did you mean \"elem\"") && err.contains("batch, pair or elem"),
        "{err}"
    );
    let err = MixupMode::parse("Pair").unwrap_err().to_string();
    assert!(err.contains("did you mean \"pair\""), "{err}");
    assert!(MixupMode::parse("half").is_err());
    let from_json: MixupMode = serde_json::from_str("\"pair\"").unwrap();
    assert_eq!(from_json, MixupMode::Pair);
}

#[test]
fn invalid_batches_are_errors() {
    let mixup = Mixup::new(config(MixupMode::Batch)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut pixels = batch(2, 1, 2, 2, 0);
    let err = |r: vit_data::Result<_>| match r {
        Err(DataError::InvalidSetting { name, message }) => format!("{name}: {message}"),
        Ok(_) => panic!("accepted"),
        Err(e) => panic!("{e}"),
    };
    assert!(err(mixup.apply(&mut rng, &mut pixels, [2, 1, 2, 3], &[0, 1])).starts_with("pixel_values"));
    assert!(err(mixup.apply(&mut rng, &mut pixels, [2, 1, 2, 2], &[0])).starts_with("labels"));
    assert!(err(mixup.apply(&mut rng, &mut pixels, [2, 1, 2, 2], &[0, 7])).starts_with("num_classes"));
    assert!(err(mixup.apply(&mut rng, &mut pixels, [2, 1, 2, 2], &[-1, 0])).starts_with("num_classes"));
    let bad_box =
        MixDecisions::Batch(MixDecision { lam: 0.5, cut: Some(CutBox { y_low: 0, y_high: 3, x_low: 0, x_high: 1 }) });
    assert!(err(mixup.apply_decisions(&bad_box, &mut pixels, [2, 1, 2, 2], &[0, 1])).starts_with("cutmix box"));
    let bad_lam = MixDecisions::Elements(vec![MixDecision { lam: 1.5, cut: None }; 2]);
    assert!(err(mixup.apply_decisions(&bad_lam, &mut pixels, [2, 1, 2, 2], &[0, 1])).starts_with("lam"));
    let wrong_count = MixDecisions::Pairs(vec![MixDecision::NONE; 2]);
    assert!(err(mixup.apply_decisions(&wrong_count, &mut pixels, [2, 1, 2, 2], &[0, 1])).starts_with("mode"));
    assert!(mixup_target(&[0, 5], 5, 0.5, 0.0).is_err());
    assert!(mixup_target_per_sample(&[0, 1], 5, &[0.5], 0.0).is_err());
    assert!(rand_bbox(0, 4, 0.5, &mut rng).is_err());
    assert!(rand_bbox(4, 4, 1.5, &mut rng).is_err());
    assert!(rand_bbox_minmax(3, 3, [0.4, 0.6], &mut rng).is_err());
}

// ---- batcher integration ----

fn samples(n: usize, epoch: u64, first: u64) -> Vec<ImageSample> {
    (0..n)
        .map(|i| ImageSample {
            image: Arc::new(common::pattern(16, 16, i as u32)),
            label: i % 3,
            index: first + i as u64,
            epoch,
        })
        .collect()
}

fn batcher(seed: u64) -> ImageBatcher {
    let t = Transform::train(ImageSize { height: 16, width: 16 }, Resample::Bilinear, Augmentation::None);
    ImageBatcher::new(t, &ImageProcessor::new(16, 16), seed).unwrap()
}

#[test]
fn the_batcher_mixes_after_assembling_and_seeds_by_the_first_sample() {
    let config = MixupConfig { num_classes: 3, ..config(MixupMode::Elem) };
    let mixup = Mixup::new(config).unwrap();
    let plain = batcher(77);
    let mixing = batcher(77).with_mixup(mixup.clone()).unwrap();
    assert_eq!(mixing.mixup(), Some(&mixup));
    let items = samples(6, 2, 40);

    let host = plain.prepare(&items);
    assert_eq!((host.targets.as_ref(), host.dominant_labels.as_ref(), host.num_classes), (None, None, 0));
    let mixed = mixing.prepare(&items);
    assert_eq!(mixed.labels, host.labels, "labels stay the original ones");
    assert_eq!(mixed.shape, host.shape);
    // Same as mixing the plain batch with the (seed, epoch, first index) Mixup stream.
    let mut pixels = host.pixel_values.clone();
    let mut rng = sample_rng(77, 2, 40, RngStream::Mixup);
    let want = mixup.apply(&mut rng, &mut pixels, host.shape, &host.labels).unwrap();
    assert_eq!(mixed.pixel_values, pixels);
    assert_eq!(mixed.targets.as_ref(), Some(&want.targets));
    assert_eq!(mixed.num_classes, 3);
    assert_eq!(mixed.dominant_labels, Some(want.dominant_labels(&host.labels)));
    assert_ne!(mixed.pixel_values, host.pixel_values);
    // Deterministic, and keyed by epoch and first index.
    assert_eq!(mixing.prepare(&items), mixed);
    assert_ne!(mixing.prepare(&samples(6, 3, 40)).targets, mixed.targets);
    // Odd batches are served (last batch of an epoch without drop_last).
    let odd = mixing.prepare(&samples(5, 0, 0));
    assert_eq!(odd.targets.as_ref().unwrap().len(), 15);

    let device = Device::flex();
    let on_device = mixed.to_device(&device);
    let targets = on_device.targets.expect("targets");
    assert_eq!(targets.dims(), [6, 3]);
    let sums = targets.sum_dim(1).into_data().try_to_vec::<f32>().unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
    assert_eq!(on_device.dominant_labels.expect("dominant").dims(), [6]);
    let plain_batch = host.to_device(&device);
    assert!(plain_batch.targets.is_none() && plain_batch.dominant_labels.is_none());

    // cutmix_minmax that leaves no box size at this image size is refused up front.
    let tiny = Mixup::new(MixupConfig { cutmix_minmax: Some([0.5, 0.53]), ..MixupConfig::new(3) }).unwrap();
    let err = batcher(0).with_mixup(tiny).unwrap_err().to_string();
    assert!(err.contains("cutmix_minmax"), "{err}");
}
