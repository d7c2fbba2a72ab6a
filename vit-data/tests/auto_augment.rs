//! Automatic augmentation (timm RandAugment, torchvision TrivialAugmentWide / AutoAugment), the
//! Pillow ops behind them, random erasing and the training-transform options.
//!
//! The op references come from `scripts/make_augment_fixtures.py` (Pillow 13 through timm's op
//! functions and torchvision's `_apply_op`) on small real photographs. Every op is expected to
//! match Pillow byte for byte (maximum absolute difference 0): the geometric ops (rotate, shear,
//! translate with nearest, bilinear and bicubic), posterize, solarize, solarize_add, invert,
//! autocontrast, equalize, and the `ImageEnhance` blends (color, contrast, brightness, sharpness,
//! including extrapolation).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::SafeTensors;
use vit_data::auto_augment::{Filter, RandAugmentStep, TimmOp, TorchvisionOp, ops};
use vit_data::rng::{RngStream, sample_rng};
use vit_data::{
    AugmentInterpolation, Augmentation, AutoAugment, AutoAugmentPolicy, DataError, EraseMode, ImageBatcher,
    ImageProcessor, ImageSample, ImageSize, RandAugmentConfig, RandomErasing, RandomResizedCrop, Resample, TimmHparams,
    TrainAugmentation, Transform, TrivialAugmentWide,
};

const TIMM_FILL: [u8; 3] = [124, 116, 104];

fn fixture_bytes() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/augment_reference.safetensors");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn to_image(view: &safetensors::tensor::TensorView<'_>) -> RgbImage {
    assert_eq!(view.dtype(), safetensors::Dtype::U8);
    let shape = view.shape();
    assert_eq!(shape.len(), 3);
    assert_eq!(shape[2], 3);
    RgbImage::from_raw(shape[1] as u32, shape[0] as u32, view.data().to_vec()).unwrap()
}

fn f32s(view: &safetensors::tensor::TensorView<'_>) -> Vec<f32> {
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn f64s(view: &safetensors::tensor::TensorView<'_>) -> Vec<f64> {
    assert_eq!(view.dtype(), safetensors::Dtype::F64);
    view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
}

fn max_abs_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| x.abs_diff(y)).max().unwrap_or(0)
}

fn filter(name: &str) -> Filter {
    match name {
        "nearest" => Filter::Nearest,
        "bilinear" => Filter::Bilinear,
        "bicubic" => Filter::Bicubic,
        other => panic!("unknown interpolation {other}"),
    }
}

/// Runs every fixture image of `family` through `run(op, arg, interpolation, input)` and
/// returns the maximum absolute difference per op (and checks that each op was seen).
fn compare_family(
    family: &str,
    run: impl Fn(&str, &str, Option<&str>, &RgbImage) -> RgbImage,
) -> BTreeMap<String, (u8, usize)> {
    let bytes = fixture_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut per_op: BTreeMap<String, (u8, usize)> = BTreeMap::new();
    for (name, view) in st.tensors() {
        let parts: Vec<&str> = name.split('/').collect();
        if parts[0] != family {
            continue;
        }
        let (op, arg, interp, image) = match parts.len() {
            4 => (parts[1], parts[2], None, parts[3]),
            5 => (parts[1], parts[2], Some(parts[3]), parts[4]),
            _ => panic!("unexpected fixture name {name}"),
        };
        let input = to_image(&st.tensor(&format!("input/{image}")).unwrap());
        let expected = to_image(&view);
        let actual = run(op, arg, interp, &input);
        let diff = max_abs_diff(&actual, &expected);
        let entry = per_op.entry(op.to_string()).or_insert((0, 0));
        entry.0 = entry.0.max(diff);
        entry.1 += 1;
        if diff > 0 {
            let differing = actual.as_raw().iter().zip(expected.as_raw()).filter(|(a, b)| a != b).count();
            eprintln!("{name}: max abs diff {diff}, {differing} values differ");
        }
    }
    for (op, (diff, n)) in &per_op {
        eprintln!("{family}/{op}: {n} cases, max abs diff {diff}");
    }
    per_op
}

fn assert_exact(family: &str, per_op: &BTreeMap<String, (u8, usize)>, expected_ops: &[&str]) {
    for op in expected_ops {
        assert!(per_op.contains_key(*op), "{family}: no fixture for {op}");
    }
    let bad: Vec<_> = per_op.iter().filter(|(_, (d, _))| *d > 0).collect();
    assert!(bad.is_empty(), "{family}: ops differing from Pillow: {bad:?}");
}

#[test]
fn pillow_colour_ops_are_byte_exact() {
    let bytes = fixture_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let per_op = compare_family("pil", |op, arg, _, input| {
        // `lowcontrast` inputs are Pillow's contrast(0.3) of the image (itself checked below).
        let low;
        let input = if arg == "lowcontrast" {
            low = ops::contrast(input, 0.3);
            &low
        } else {
            input
        };
        let x = || arg.parse::<f64>().unwrap();
        match op {
            "posterize" => ops::posterize(input, arg.parse().unwrap()),
            "solarize" => ops::solarize(input, x()),
            "solarize_add" => ops::solarize_add(input, arg.parse().unwrap(), 128),
            "color" => ops::color(input, x()),
            "brightness" => ops::brightness(input, x()),
            "contrast" => ops::contrast(input, x()),
            "sharpness" => ops::sharpness(input, x()),
            "autocontrast" => ops::autocontrast(input),
            "equalize" => ops::equalize(input),
            "invert" => ops::invert(input),
            other => panic!("unknown op {other}"),
        }
    });
    assert_exact(
        "pil",
        &per_op,
        &[
            "posterize",
            "solarize",
            "solarize_add",
            "color",
            "brightness",
            "contrast",
            "sharpness",
            "autocontrast",
            "equalize",
            "invert",
        ],
    );
    // The low-contrast inputs really exercise autocontrast and equalize (not identities).
    let input = to_image(&st.tensor("input/chelsea").unwrap());
    let low = ops::contrast(&input, 0.3);
    assert_ne!(ops::autocontrast(&low), low);
    assert_ne!(ops::equalize(&low), low);
}

#[test]
fn timm_geometric_ops_are_byte_exact() {
    let per_op = compare_family("timm", |op, arg, interp, input| {
        let (v, f) = (arg.parse::<f64>().unwrap(), filter(interp.unwrap()));
        match op {
            "rotate" => ops::rotate(input, v, f, TIMM_FILL),
            "shear_x" => ops::shear_x(input, v, f, TIMM_FILL),
            "shear_y" => ops::shear_y(input, v, f, TIMM_FILL),
            // timm's translate_*_rel: pixels = pct * size, through the RandAugment op.
            "translate_x_rel" => TimmOp::TranslateXRel.apply(input, v, f, TIMM_FILL),
            "translate_y_rel" => TimmOp::TranslateYRel.apply(input, v, f, TIMM_FILL),
            other => panic!("unknown op {other}"),
        }
    });
    assert_exact("timm", &per_op, &["rotate", "shear_x", "shear_y", "translate_x_rel", "translate_y_rel"]);
}

#[test]
fn torchvision_ops_are_byte_exact() {
    let per_op = compare_family("tv", |op, arg, interp, input| {
        let op = match op {
            "Rotate" => TorchvisionOp::Rotate,
            "ShearX" => TorchvisionOp::ShearX,
            "ShearY" => TorchvisionOp::ShearY,
            "TranslateX" => TorchvisionOp::TranslateX,
            "TranslateY" => TorchvisionOp::TranslateY,
            other => panic!("unknown op {other}"),
        };
        op.apply(input, arg.parse().unwrap(), filter(interp.unwrap()), [0; 3])
    });
    assert_exact("tv", &per_op, &["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"]);
}

#[test]
fn geometric_ops_fill_and_identity() {
    let img = common::pattern(20, 10, 1);
    for f in [Filter::Nearest, Filter::Bilinear, Filter::Bicubic] {
        // Rotating by 0 (or 360) is a copy; a translation by the full width leaves only the fill.
        assert_eq!(ops::rotate(&img, 0.0, f, [1, 2, 3]), img);
        assert_eq!(ops::rotate(&img, -360.0, f, [1, 2, 3]), img);
        let gone = ops::translate_x(&img, 20.0, f, [9, 8, 7]);
        assert!(gone.pixels().all(|p| p.0 == [9, 8, 7]), "{f:?}");
        assert_eq!(ops::translate_x(&img, 0.0, f, [9, 8, 7]), img, "{f:?}");
        assert_eq!(ops::shear_y(&img, 0.0, f, [9, 8, 7]), img, "{f:?}");
    }
    // An integer translation moves the content by that many pixels (timm: to the left).
    let moved = ops::translate_x(&img, 3.0, Filter::Nearest, [0; 3]);
    assert_eq!(moved.get_pixel(0, 4), img.get_pixel(3, 4));
    assert_eq!(moved.get_pixel(17, 4).0, [0; 3]);
    // torchvision translates the other way: to the right for a positive magnitude.
    let moved = TorchvisionOp::TranslateX.apply(&img, 3.9, Filter::Nearest, [0; 3]);
    assert_eq!(moved.get_pixel(3, 4), img.get_pixel(0, 4));
    assert_eq!(moved.get_pixel(2, 4).0, [0; 3]);
}

#[test]
fn level_to_arg_matches_timm() {
    let bytes = fixture_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let levels = f64s(&st.tensor("level/magnitudes").unwrap());
    let mut checked = 0;
    for op in TimmOp::RAND_TRANSFORMS.iter().chain(&TimmOp::RAND_INCREASING_TRANSFORMS) {
        let Ok(view) = st.tensor(&format!("level/{}", op.name())) else { continue };
        let expected = f64s(&view);
        for (&m, &e) in levels.iter().zip(&expected) {
            assert_eq!(op.level_to_arg(m, false), e, "{} at level {m}", op.name());
        }
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} level tables");
    // The random sign: negated shear, and the increasing enhancements mirror around 1 (>= 0.1).
    assert_eq!(TimmOp::ShearX.level_to_arg(10.0, true), -0.3);
    assert!((TimmOp::ColorIncreasing.level_to_arg(5.0, true) - 0.55).abs() < 1e-12);
    assert_eq!(TimmOp::ColorIncreasing.level_to_arg(10.0, true), 0.1);
    assert!(!TimmOp::Color.draws_sign() && TimmOp::Rotate.draws_sign());
}

#[test]
fn torchvision_magnitude_bins_match_torch() {
    let bytes = fixture_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for op in TrivialAugmentWide::OPS {
        match TrivialAugmentWide::bins(op) {
            Some(bins) => {
                let expected = f32s(&st.tensor(&format!("bins/trivialaugment/{}", op.name())).unwrap());
                assert_eq!(bins, expected, "TrivialAugmentWide {}", op.name());
                checked += 1;
            }
            None => assert!(st.tensor(&format!("bins/trivialaugment/{}", op.name())).is_err()),
        }
        if let Some(bins) = AutoAugmentPolicy::bins(op, 48, 64) {
            let expected = f32s(&st.tensor(&format!("bins/autoaugment/{}", op.name())).unwrap());
            assert_eq!(bins, expected, "AutoAugment {}", op.name());
            checked += 1;
        }
    }
    assert_eq!(checked, 22);
    // torch's fused multiply-add makes bin 15 of the translate space 15.999999 (int() -> 15).
    assert_eq!(TrivialAugmentWide::bins(TorchvisionOp::TranslateX).unwrap()[15], 15.999999);
}

#[test]
fn auto_augment_strings_parse_and_round_trip() {
    let cases: &[(&str, &str)] = &[
        ("none", "none"),
        ("trivialaugment", "trivialaugment"),
        ("autoaugment-imagenet", "autoaugment-imagenet"),
        ("autoaugment-cifar10", "autoaugment-cifar10"),
        ("autoaugment-svhn", "autoaugment-svhn"),
        ("rand-m9-mstd0.5-inc1", "rand-m9-mstd0.5-inc1"),
        ("rand-m9-mstd0.5", "rand-m9-mstd0.5"),
        ("rand-m7-n2", "rand-m7"),
        ("rand-n3-m9-mstd0.5-mmax10-p0.5", "rand-m9-n3-mstd0.5-mmax10"),
        ("rand-m15-mmax20-inc0-p1", "rand-m15-mmax20-p1"),
        ("rand-mstd101-m9", "rand-m9-mstd101"),
        ("rand", "rand-m10"),
    ];
    for &(text, canonical) in cases {
        let parsed = AutoAugment::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.to_string(), canonical, "{text}");
        assert_eq!(AutoAugment::parse(canonical).unwrap(), parsed, "{text}");
        assert_eq!(canonical.parse::<AutoAugment>().unwrap(), parsed);
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(json, format!("\"{canonical}\""));
        assert_eq!(serde_json::from_str::<AutoAugment>(&json).unwrap(), parsed);
    }
    let AutoAugment::RandAugment(c) = AutoAugment::parse("rand-m9-n3-mstd0.5-mmax10-p0.25-inc1").unwrap() else {
        panic!("not RandAugment")
    };
    assert_eq!(
        c,
        RandAugmentConfig {
            magnitude: 9,
            num_layers: 3,
            magnitude_std: 0.5,
            magnitude_max: Some(10),
            increasing: true,
            prob: 0.25
        }
    );
    assert_eq!(c.ops()[4], TimmOp::PosterizeIncreasing);
    assert_eq!(AutoAugment::parse("autoaugment-cifar10").unwrap(), AutoAugment::Policy(AutoAugmentPolicy::Cifar10));
    assert_eq!(AutoAugment::default(), AutoAugment::None);
}

#[test]
fn invalid_auto_augment_strings_explain_themselves() {
    let err = |text: &str| {
        let e = AutoAugment::parse(text).unwrap_err();
        assert!(matches!(&e, DataError::InvalidSetting { name, .. } if name == "auto_augment"), "{text}: {e:?}");
        e.to_string()
    };
    let cases: &[(&str, &[&str])] = &[
        ("trivialaugmnt", &["did you mean \"trivialaugment\"?"]),
        ("autoaugment-imagnet", &["did you mean \"autoaugment-imagenet\"?"]),
        ("autoaugment", &["did you mean \"autoaugment-imagenet\"?"]),
        ("randaugment", &["rand-m<int>", "rand-m9-mstd0.5-inc1"]),
        ("rand-m9-x3", &["unknown section key `x`"]),
        ("rand-m9-mst0.5", &["unknown section key `mst`", "did you mean `mstd`?"]),
        ("rand-m9-m8", &["`m` is given twice"]),
        ("rand-m9--n2", &["empty section"]),
        ("rand-m9-", &["empty section"]),
        ("rand-m", &["section `m` has no number"]),
        ("rand-m9.5", &["`9.5` is not a whole number"]),
        ("rand-m9-p1.5", &["probability must be in [0, 1]"]),
        ("rand-m9-p0.5x", &["`0.5x` is not a number"]),
        ("rand-m12", &["above the magnitude ceiling 10", "mmax12"]),
        ("rand-m9-n0", &["1..=15"]),
        ("rand-m9-mmax0", &["1..=100"]),
        ("rand-m9-inc2", &["inc must be 0 or 1"]),
        ("rand-m9-tweights", &["transform-set sections"]),
        ("augmix-m5-w4-d2", &["AugMix is not implemented"]),
        ("original-mstd0.5", &["not implemented", "autoaugment-imagenet"]),
        ("mixup", &["unknown auto-augmentation \"mixup\"", "expected none"]),
    ];
    for &(text, needles) in cases {
        let message = err(text);
        for needle in needles {
            assert!(message.contains(needle), "{text}: {message:?} lacks {needle:?}");
        }
    }
    assert!(serde_json::from_str::<AutoAugment>("\"rand-m9-n0\"").is_err());
}

fn photo(name: &str) -> RgbImage {
    let bytes = fixture_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    to_image(&st.tensor(&format!("input/{name}")).unwrap())
}

#[test]
fn auto_augment_is_seeded_and_deterministic() {
    let img = photo("astronaut");
    for text in
        ["rand-m9-mstd0.5-inc1", "rand-m7-n3-p1", "trivialaugment", "autoaugment-imagenet", "autoaugment-cifar10"]
    {
        let aa = AutoAugment::parse(text).unwrap();
        let rng = |i| sample_rng(7, 0, i, RngStream::Augment);
        let a = aa.apply(&img, &mut rng(3));
        assert_eq!(a, aa.apply(&img, &mut rng(3)), "{text}");
        assert_eq!(a.dimensions(), img.dimensions());
        let outputs: Vec<RgbImage> = (0..40).map(|i| aa.apply(&img, &mut rng(i))).collect();
        let distinct = outputs.iter().filter(|o| *o != &outputs[0]).count();
        assert!(distinct >= 20, "{text}: only {distinct} of 40 indices changed the output");
        assert!(outputs.iter().any(|o| o != &img), "{text}: never changed the image");
    }
    assert_eq!(AutoAugment::None.apply(&img, &mut sample_rng(7, 0, 0, RngStream::Augment)), img);
}

#[test]
fn rand_augment_selection_and_magnitude_statistics() {
    let hp = TimmHparams::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // p = 1: exactly n ops per image, uniform over the 15 ops, with replacement.
    let config = RandAugmentConfig { magnitude: 9, num_layers: 3, prob: 1.0, ..Default::default() };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut repeats = 0;
    let draws = 3000;
    for _ in 0..draws {
        let steps = config.sample(&hp, &mut rng);
        assert_eq!(steps.len(), 3);
        if steps[0].op == steps[1].op || steps[1].op == steps[2].op || steps[0].op == steps[2].op {
            repeats += 1;
        }
        for s in &steps {
            assert_eq!(s.magnitude, 9.0);
            *counts.entry(s.op.name()).or_default() += 1;
            assert!(TimmOp::RAND_TRANSFORMS.contains(&s.op));
            if s.op.is_geometric() {
                assert!(matches!(s.filter, Filter::Bilinear | Filter::Bicubic));
            }
        }
    }
    assert_eq!(counts.len(), 15, "{counts:?}");
    let expected = (draws * 3) as f64 / 15.0;
    for (op, &n) in &counts {
        assert!((n as f64 - expected).abs() < 0.2 * expected, "{op}: {n} vs {expected}");
    }
    // With replacement: P(some repeat among 3 of 15) = 1 - (14/15)(13/15) = 0.191.
    let rate = repeats as f64 / draws as f64;
    assert!((rate - 0.191).abs() < 0.03, "repeat rate {rate}");

    // p = 0.5: each op kept with probability one half.
    let half = RandAugmentConfig { num_layers: 2, ..Default::default() };
    let kept: usize = (0..2000).map(|_| half.sample(&hp, &mut rng).len()).sum();
    assert!((kept as f64 / 4000.0 - 0.5).abs() < 0.04, "kept {kept} of 4000");

    // Gaussian magnitude noise, clipped to [0, 10]; signs of signed ops about half negative.
    let noisy = RandAugmentConfig { magnitude: 9, magnitude_std: 0.5, prob: 1.0, num_layers: 4, ..Default::default() };
    let steps: Vec<RandAugmentStep> = (0..3000).flat_map(|_| noisy.sample(&hp, &mut rng)).collect();
    let mags: Vec<f64> = steps.iter().map(|s| s.magnitude).collect();
    assert!(mags.iter().all(|&m| (0.0..=10.0).contains(&m)));
    let at_ceiling = mags.iter().filter(|&&m| m == 10.0).count() as f64 / mags.len() as f64;
    assert!((at_ceiling - 0.0228).abs() < 0.01, "P(m >= 10) for N(9, 0.5) is 2.3%, got {at_ceiling}");
    let mean = mags.iter().sum::<f64>() / mags.len() as f64;
    assert!((mean - 8.99).abs() < 0.05, "mean {mean}");
    let signed: Vec<&RandAugmentStep> = steps.iter().filter(|s| s.op.draws_sign()).collect();
    let neg = signed.iter().filter(|s| s.negated).count() as f64 / signed.len() as f64;
    assert!((neg - 0.5).abs() < 0.05, "negated share {neg}");
    for s in &signed {
        let unsigned = s.op.level_to_arg(s.magnitude, false);
        assert_eq!(s.arg, s.op.level_to_arg(s.magnitude, s.negated));
        if matches!(s.op, TimmOp::Rotate | TimmOp::ShearX | TimmOp::ShearY) {
            assert_eq!(s.arg.abs(), unsigned.abs());
        }
    }

    // mstd > 100: uniform in [0, m]; mmax raises the ceiling.
    let uniform = RandAugmentConfig { magnitude: 8, magnitude_std: 101.0, ..Default::default() };
    let u: Vec<f64> = (0..4000).map(|_| uniform.sample_magnitude(&mut rng)).collect();
    assert!(u.iter().all(|&m| (0.0..=8.0).contains(&m)));
    let below_2 = u.iter().filter(|&&m| m < 2.0).count() as f64 / u.len() as f64;
    assert!((below_2 - 0.25).abs() < 0.03, "{below_2}");
    let high = RandAugmentConfig { magnitude: 20, magnitude_max: Some(30), magnitude_std: 3.0, ..Default::default() };
    let h: Vec<f64> = (0..2000).map(|_| high.sample_magnitude(&mut rng)).collect();
    assert!(h.iter().all(|&m| (0.0..=30.0).contains(&m)) && h.iter().any(|&m| m > 22.0));

    // Fixed interpolation: no random filter.
    let fixed = TimmHparams { fill: [0; 3], interpolation: AugmentInterpolation::Nearest };
    let steps: Vec<RandAugmentStep> = (0..200).flat_map(|_| config.sample(&fixed, &mut rng)).collect();
    assert!(steps.iter().filter(|s| s.op.is_geometric()).all(|s| s.filter == Filter::Nearest));
}

#[test]
fn rand_augment_applies_its_steps_with_the_fill() {
    // Replaying the sampled steps on the image reproduces apply (same generator state).
    let img = photo("coffee");
    let config = AutoAugment::parse("rand-m9-n3-mstd0.5-inc1-p1").unwrap();
    let AutoAugment::RandAugment(ra) = config else { unreachable!() };
    let hp = TimmHparams::from_mean(&vit_data::IMAGENET_DEFAULT_MEAN, AugmentInterpolation::Random);
    assert_eq!(hp.fill, TIMM_FILL);
    for i in 0..20 {
        let steps = ra.sample(&hp, &mut sample_rng(1, 0, i, RngStream::Augment));
        let mut expected = img.clone();
        for s in &steps {
            expected = s.op.apply(&expected, s.arg, s.filter, hp.fill);
        }
        assert_eq!(config.apply_with(&img, &hp, &mut sample_rng(1, 0, i, RngStream::Augment)), expected);
    }
    // A rotation by 30 degrees uncovers corners that take the fill colour.
    let rotated = TimmOp::Rotate.apply(&img, 30.0, Filter::Bilinear, TIMM_FILL);
    assert_eq!(rotated.get_pixel(0, 0).0, TIMM_FILL);
}

#[test]
fn trivial_augment_and_policies_draw_like_torchvision() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
    let mut negative = 0;
    let mut signed = 0;
    for _ in 0..4200 {
        let (op, m) = TrivialAugmentWide.draw(&mut rng);
        *ops.entry(op.name()).or_default() += 1;
        match TrivialAugmentWide::bins(op) {
            None => assert_eq!(m, 0.0),
            Some(bins) => assert!(bins.contains(&(m.abs() as f32)), "{} {m}", op.name()),
        }
        if op.signed() {
            signed += 1;
            negative += (m < 0.0) as usize;
        } else {
            assert!(m >= 0.0);
        }
    }
    assert_eq!(ops.len(), 14);
    assert!(ops.values().all(|&n| (200..=400).contains(&n)), "{ops:?}");
    let share = negative as f64 / signed as f64;
    assert!((0.44..0.56).contains(&share), "{share}");
    // Every policy has 25 two-op sub-policies whose bins exist for the ops that take one.
    for policy in AutoAugmentPolicy::ALL {
        for sub in policy.sub_policies() {
            for &(op, p, bin) in sub {
                assert!((0.0..=1.0).contains(&p));
                assert_eq!(bin.is_some(), AutoAugmentPolicy::bins(op, 32, 32).is_some(), "{policy} {}", op.name());
            }
        }
    }
    assert_eq!(AutoAugmentPolicy::Imagenet.sub_policies()[0][0], (TorchvisionOp::Posterize, 0.4, Some(8)));
    assert_eq!(AutoAugmentPolicy::Cifar10.sub_policies()[24][1], (TorchvisionOp::AutoContrast, 0.9, None));
}

#[test]
fn random_erasing_follows_timm() {
    let (c, h, w) = (3usize, 64usize, 48usize);
    let base = vec![7.0f32; c * h * w];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Probability 0: identity, and nothing drawn.
    let off = RandomErasing::new(0.0, EraseMode::Const);
    let mut px = base.clone();
    let before = rng.clone();
    assert!(off.apply(&mut px, c, h, w, &mut rng).is_empty());
    assert_eq!(px, base);
    assert_eq!(rng, before);

    for mode in EraseMode::ALL.iter().copied() {
        let re = RandomErasing::new(1.0, mode);
        re.validate().unwrap();
        let mut areas = Vec::new();
        for i in 0..400 {
            let mut px = base.clone();
            let boxes = re.apply(&mut px, c, h, w, &mut sample_rng(1, 0, i, RngStream::Erase));
            assert!(boxes.len() <= 1);
            let Some(b) = boxes.first() else { continue };
            let (bw, bh) = (b.width as usize, b.height as usize);
            assert!(bw < w && bh < h && b.left as usize + bw <= w && b.top as usize + bh <= h);
            let area = (bw * bh) as f64 / (h * w) as f64;
            areas.push(area);
            // Rounding of h and w widens the [0.02, 1/3] area and [0.3, 3.33] aspect bounds a little.
            assert!((0.012..=0.37).contains(&area), "{mode}: area {area}");
            let aspect = bh as f64 / bw as f64;
            assert!((0.22..=4.5).contains(&aspect), "{mode}: aspect {aspect}");
            // Inside the box every channel changed; outside nothing did.
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let v = px[ch * h * w + y * w + x];
                        let inside = (b.top as usize..b.top as usize + bh).contains(&y)
                            && (b.left as usize..b.left as usize + bw).contains(&x);
                        match (inside, mode) {
                            (false, _) => assert_eq!(v, 7.0),
                            (true, EraseMode::Const) => assert_eq!(v, 0.0),
                            (true, _) => assert!(v != 7.0 && v.abs() < 7.0, "{v}"),
                        }
                    }
                }
                if mode == EraseMode::Rand && bw * bh > 0 {
                    let first = px[ch * h * w + b.top as usize * w + b.left as usize];
                    let last = px[ch * h * w + (b.top as usize + bh - 1) * w + b.left as usize + bw - 1];
                    assert_eq!(first, last, "rand mode: one colour per channel");
                }
            }
            if mode == EraseMode::Pixel && bw * bh > 4 {
                let start = b.top as usize * w + b.left as usize;
                assert_ne!(px[start], px[start + 1], "pixel mode: per-pixel values");
            }
        }
        assert!(areas.len() > 390, "{mode}: most images fit a box within 10 tries ({})", areas.len());
        let mean = areas.iter().sum::<f64>() / areas.len() as f64;
        assert!((mean - (0.02 + 1.0 / 3.0) / 2.0).abs() < 0.03, "{mode}: mean area {mean}");
    }

    // Probability 0.5: about half the images; same generator, same result.
    let re = RandomErasing::new(0.5, EraseMode::Pixel);
    let erased = (0..1000)
        .filter(|&i| !re.apply(&mut base.clone(), c, h, w, &mut sample_rng(2, 0, i, RngStream::Erase)).is_empty())
        .count();
    assert!((430..=570).contains(&erased), "{erased}");
    let run = |i| {
        let mut px = base.clone();
        re.apply(&mut px, c, h, w, &mut sample_rng(2, 0, i, RngStream::Erase));
        px
    };
    assert_eq!(run(4), run(4));
    // Several boxes, each with area divided by the count.
    let many = RandomErasing::new(1.0, EraseMode::Const).with_max_count(3);
    let counts: Vec<usize> = (0..300)
        .map(|i| many.apply(&mut base.clone(), c, h, w, &mut sample_rng(3, 0, i, RngStream::Erase)).len())
        .collect();
    for k in 1..=3 {
        assert!(counts.iter().filter(|&&n| n == k).count() > 60, "count {k}: {counts:?}");
    }
}

#[test]
fn settings_are_validated_with_the_field_named() {
    let size = ImageSize { height: 32, width: 32 };
    let check = |t: TrainAugmentation, field: &str, needle: &str| {
        let e = Transform::train_with(size, Resample::Bilinear, t).unwrap_err();
        match &e {
            DataError::InvalidSetting { name, message } => {
                assert_eq!(name, field, "{e}");
                assert!(message.contains(needle), "{e}");
            }
            other => panic!("{other:?}"),
        }
    };
    let base = TrainAugmentation::default();
    check(TrainAugmentation { crop_scale: (0.0, 1.0), ..base }, "crop_scale", "0 < lo <= hi <= 1");
    check(TrainAugmentation { crop_scale: (0.5, 0.4), ..base }, "crop_scale", "(0.5, 0.4)");
    check(TrainAugmentation { crop_scale: (0.5, 1.5), ..base }, "crop_scale", "0 < lo");
    check(TrainAugmentation { crop_ratio: (0.0, 1.0), ..base }, "crop_ratio", "0 < lo <= hi");
    check(TrainAugmentation { crop_ratio: (2.0, 1.0), ..base }, "crop_ratio", "0 < lo <= hi");
    check(TrainAugmentation { crop_ratio: (1.0, f64::INFINITY), ..base }, "crop_ratio", "finite");
    check(TrainAugmentation { hflip: 1.5, ..base }, "hflip", "[0, 1]");
    check(TrainAugmentation { hflip: f64::NAN, ..base }, "hflip", "[0, 1]");
    check(
        TrainAugmentation { random_erasing: RandomErasing::new(-0.1, EraseMode::Pixel), ..base },
        "random_erasing.probability",
        "[0, 1]",
    );
    check(
        TrainAugmentation { random_erasing: RandomErasing::new(0.25, EraseMode::Pixel).with_max_count(0), ..base },
        "random_erasing.max_count",
        "1 <= min_count <= max_count",
    );
    let bad_ra = RandAugmentConfig { prob: 2.0, ..Default::default() };
    check(TrainAugmentation { auto_augment: AutoAugment::RandAugment(bad_ra), ..base }, "auto_augment", "[0, 1]");
    assert!(Transform::train_with(size, Resample::Bilinear, base).is_ok());
}

#[test]
fn default_options_reproduce_the_previous_transform() {
    let img = common::pattern(300, 200, 4);
    let s224 = ImageSize { height: 224, width: 224 };
    let s32 = ImageSize { height: 32, width: 32 };
    for (aug, size) in
        [(Augmentation::RandomResizedCropFlip, s224), (Augmentation::PadCropFlip, s32), (Augmentation::None, s32)]
    {
        let old_style = Transform::train(size, Resample::Bilinear, aug);
        let new_style = Transform::train_with(size, Resample::Bilinear, aug.into()).unwrap();
        assert_eq!(old_style, new_style);
        for i in 0..20 {
            let rng = || sample_rng(9, 1, i, RngStream::Augment);
            let out = new_style.apply(&img, &mut rng()).unwrap();
            // The previous implementation, spelled out: default RandomResizedCrop + flip(0.5).
            let reference = match aug {
                Augmentation::RandomResizedCropFlip => {
                    let mut r = rng();
                    let mut o = RandomResizedCrop::default().apply(&img, size, Resample::Bilinear, &mut r).unwrap();
                    vit_data::augment::random_hflip(&mut o, 0.5, &mut r);
                    o
                }
                Augmentation::PadCropFlip => {
                    let mut r = rng();
                    let resized = vit_data::resize_rgb(&img, None, 32, 32, Resample::Bilinear).unwrap();
                    let mut o = vit_data::augment::pad_random_crop(&resized, size, 4, &mut r);
                    vit_data::augment::random_hflip(&mut o, 0.5, &mut r);
                    o
                }
                Augmentation::None => vit_data::resize_rgb(&img, None, 32, 32, Resample::Bilinear).unwrap(),
            };
            assert_eq!(out, reference, "{aug:?} sample {i}");
        }
    }
}

#[test]
fn crop_and_flip_options_take_effect() {
    let img = common::pattern(60, 40, 2);
    let size = ImageSize { height: 20, width: 30 };
    let resized = vit_data::resize_rgb(&img, None, 30, 20, Resample::Bilinear).unwrap();
    let flipped = image::imageops::flip_horizontal(&resized);
    let with = |t: TrainAugmentation| Transform::train_with(size, Resample::Bilinear, t).unwrap();
    // Scale 1 and the image's own ratio: the crop is the whole image, so the output is the resize,
    // flipped exactly when hflip says so.
    let whole = TrainAugmentation { crop_scale: (1.0, 1.0), crop_ratio: (1.5, 1.5), ..Default::default() };
    let never = with(TrainAugmentation { hflip: 0.0, ..whole });
    let always = with(TrainAugmentation { hflip: 1.0, ..whole });
    let half = with(whole);
    let mut flips = 0;
    for i in 0..200 {
        let rng = || sample_rng(4, 0, i, RngStream::Augment);
        assert_eq!(never.apply(&img, &mut rng()).unwrap(), resized);
        assert_eq!(always.apply(&img, &mut rng()).unwrap(), flipped);
        let out = half.apply(&img, &mut rng()).unwrap();
        assert!(out == resized || out == flipped);
        flips += (out == flipped) as usize;
    }
    assert!((70..=130).contains(&flips), "{flips}");
    // A small scale range gives small crops.
    let small = TrainAugmentation { crop_scale: (0.1, 0.1), ..Default::default() };
    for i in 0..50 {
        let c = small.random_resized_crop().params(600, 400, &mut sample_rng(4, 0, i, RngStream::Augment));
        let area = (c.width * c.height) as f64 / (600.0 * 400.0);
        assert!((0.095..0.105).contains(&area), "{area}");
    }
    // pad-crop-flip honours hflip too.
    let pcf = TrainAugmentation { augmentation: Augmentation::PadCropFlip, hflip: 1.0, ..Default::default() };
    let t = with(pcf);
    let out = t.apply(&img, &mut sample_rng(4, 0, 0, RngStream::Augment)).unwrap();
    let mut rng = sample_rng(4, 0, 0, RngStream::Augment);
    let mut expected = vit_data::augment::pad_random_crop(&resized, size, 4, &mut rng);
    image::imageops::flip_horizontal_in_place(&mut expected);
    assert_eq!(out, expected);
    // The auto-augmentation runs after the crop and flip, on the same generator.
    let aa = AutoAugment::parse("trivialaugment").unwrap();
    let t = with(TrainAugmentation { auto_augment: aa, ..whole });
    assert!(t.is_random());
    for i in 0..10 {
        let mut rng = sample_rng(4, 0, i, RngStream::Augment);
        let mut base = vit_data::resize_rgb(&img, None, 30, 20, Resample::Bilinear).unwrap();
        let _ = whole.random_resized_crop().params(60, 40, &mut rng);
        vit_data::augment::random_hflip(&mut base, 0.5, &mut rng);
        let expected = aa.apply(&base, &mut rng);
        assert_eq!(t.apply(&img, &mut sample_rng(4, 0, i, RngStream::Augment)).unwrap(), expected);
    }
    assert!(!Transform::train(size, Resample::Bilinear, Augmentation::None).is_random());
    let none_aa = TrainAugmentation { augmentation: Augmentation::None, auto_augment: aa, ..Default::default() };
    assert!(with(none_aa).is_random());
}

#[test]
fn batcher_erases_after_normalisation_with_its_own_stream() {
    let items: Vec<ImageSample> = (0..8u64)
        .map(|i| ImageSample {
            image: std::sync::Arc::new(common::pattern(24, 24, i as u32)),
            label: (i % 2) as usize,
            index: i,
            epoch: 1,
        })
        .collect();
    let processor = ImageProcessor::new(16, 16);
    let size = ImageSize { height: 16, width: 16 };
    let plain = Transform::train(size, Resample::Bilinear, Augmentation::PadCropFlip);
    let erasing = TrainAugmentation {
        augmentation: Augmentation::PadCropFlip,
        random_erasing: RandomErasing::new(1.0, EraseMode::Const),
        ..Default::default()
    };
    let erased = Transform::train_with(size, Resample::Bilinear, erasing).unwrap();
    assert!(plain.random_erasing().is_none());
    assert!(erased.random_erasing().is_some());
    let a = ImageBatcher::new(plain, &processor, 5).unwrap().prepare(&items);
    let b = ImageBatcher::new(erased, &processor, 5).unwrap().prepare(&items);
    assert_eq!(b, ImageBatcher::new(erased, &processor, 5).unwrap().prepare(&items), "deterministic");
    let per = 3 * 16 * 16;
    for (k, sample) in items.iter().enumerate() {
        let (pa, pb) = (&a.pixel_values[k * per..(k + 1) * per], &b.pixel_values[k * per..(k + 1) * per]);
        // Same augmentation (the erasing has its own stream), then the erased box is zero.
        let mut expected = pa.to_vec();
        let boxes = RandomErasing::new(1.0, EraseMode::Const).apply(
            &mut expected,
            3,
            16,
            16,
            &mut sample_rng(5, sample.epoch, sample.index, RngStream::Erase),
        );
        assert_eq!(boxes.len(), 1);
        assert_eq!(pb, &expected[..], "sample {k}");
        assert_ne!(pa, pb, "sample {k} was not erased");
    }
}
