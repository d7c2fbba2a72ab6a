//! Augmentations: torchvision's algorithms, determinism per (seed, epoch, index).

mod common;

use image::RgbImage;
use vit_data::augment::{center_crop, pad_random_crop, random_hflip, resize_shortest_edge};
use vit_data::rng::{RngStream, sample_rng};
use vit_data::{Augmentation, EvalResize, ImageSize, Normalization, RandomResizedCrop, Resample, Transform};

const S224: ImageSize = ImageSize { height: 224, width: 224 };

fn rng(index: u64) -> rand_chacha::ChaCha8Rng {
    sample_rng(42, 0, index, RngStream::Augment)
}

#[test]
fn random_resized_crop_params_follow_torchvision() {
    let rrc = RandomResizedCrop::default();
    for i in 0..500 {
        let c = rrc.params(400, 300, &mut rng(i));
        assert!(c.width >= 1 && c.height >= 1 && c.left + c.width <= 400 && c.top + c.height <= 300);
        let area = (c.width * c.height) as f64 / (400.0 * 300.0);
        let ratio = c.width as f64 / c.height as f64;
        // rounding of w and h widens the bounds slightly
        assert!((0.07..=1.0).contains(&area), "area {area}");
        assert!((0.7..=1.45).contains(&ratio), "ratio {ratio}");
    }
    // A 1000x10 strip never fits a crop of ratio <= 4/3 with >= 8% area: centre fallback,
    // height 10, width round(10 * 4/3) = 13.
    let c = rrc.params(1000, 10, &mut rng(0));
    assert_eq!((c.left, c.top, c.width, c.height), (493, 0, 13, 10));
}

#[test]
fn same_key_same_output_different_index_different_output() {
    let img = common::pattern(300, 200, 1);
    for aug in [Augmentation::RandomResizedCropFlip, Augmentation::PadCropFlip] {
        let size = if matches!(aug, Augmentation::PadCropFlip) { ImageSize { height: 32, width: 32 } } else { S224 };
        let t = Transform::train(size, Resample::Bilinear, aug);
        assert!(t.is_random());
        let a = t.apply(&img, &mut rng(5)).unwrap();
        let b = t.apply(&img, &mut rng(5)).unwrap();
        assert_eq!(a, b, "{aug:?}");
        assert_eq!(a.dimensions(), (size.width, size.height));
        let others: Vec<RgbImage> = (6..12).map(|i| t.apply(&img, &mut rng(i)).unwrap()).collect();
        assert!(others.iter().all(|o| o != &a), "{aug:?}: another index gave the same output");
        let next_epoch = t.apply(&img, &mut sample_rng(42, 1, 5, RngStream::Augment)).unwrap();
        assert_ne!(next_epoch, a, "{aug:?}");
    }
}

#[test]
fn eval_and_none_are_deterministic_resizes() {
    let img = common::pattern(300, 200, 2);
    let exact = Transform::eval(S224, Resample::Bilinear, EvalResize::Exact).apply(&img, &mut rng(0)).unwrap();
    let processor_like = vit_data::resize_rgb(&img, None, 224, 224, Resample::Bilinear).unwrap();
    assert_eq!(exact, processor_like);
    let none = Transform::train(S224, Resample::Bilinear, Augmentation::None).apply(&img, &mut rng(3)).unwrap();
    assert_eq!(none, exact);
    // Resize(256) + CenterCrop(224): 300x200 -> 384x256 -> crop at (80, 16).
    let t = Transform::eval(S224, Resample::Bilinear, EvalResize::ShortestEdgeCenterCrop { shortest_edge: 256 });
    let out = t.apply(&img, &mut rng(0)).unwrap();
    let resized = resize_shortest_edge(&img, 256, Resample::Bilinear).unwrap();
    assert_eq!(resized.dimensions(), (384, 256));
    assert_eq!(out, image::imageops::crop_imm(&resized, 80, 16, 224, 224).to_image());
}

#[test]
fn crops_flips_and_padding() {
    let img = common::pattern(5, 4, 3);
    // torchvision rounds the centre-crop offset half to even: (5 - 2) / 2 = 1.5 -> 2.
    let c = center_crop(&img, ImageSize { height: 4, width: 2 });
    assert_eq!(c, image::imageops::crop_imm(&img, 2, 0, 2, 4).to_image());
    // Larger crop than image: zero padding around the centred image.
    let c = center_crop(&img, ImageSize { height: 6, width: 7 });
    assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
    assert_eq!(c.get_pixel(1, 1), img.get_pixel(0, 0));
    // Odd difference: torchvision pads (8 - 5) // 2 = 1 on the left.
    let c = center_crop(&img, ImageSize { height: 4, width: 8 });
    assert_eq!(c.get_pixel(1, 0), img.get_pixel(0, 0));
    // Flip with p = 1 and p = 0.
    let mut f = img.clone();
    random_hflip(&mut f, 1.0, &mut rng(0));
    assert_eq!(f, image::imageops::flip_horizontal(&img));
    let mut g = img.clone();
    random_hflip(&mut g, 0.0, &mut rng(0));
    assert_eq!(g, img);
    // Pad-crop: every output is a window of the zero-padded image.
    let small = common::pattern(8, 8, 4);
    let mut padded = RgbImage::new(16, 16);
    image::imageops::replace(&mut padded, &small, 4, 4);
    for i in 0..50 {
        let out = pad_random_crop(&small, ImageSize { height: 8, width: 8 }, 4, &mut rng(i));
        let found = (0..=8).any(|y| (0..=8).any(|x| image::imageops::crop_imm(&padded, x, y, 8, 8).to_image() == out));
        assert!(found, "crop {i} is not a window of the padded image");
    }
    assert_eq!(pad_random_crop(&small, ImageSize { height: 8, width: 8 }, 0, &mut rng(0)), small);
}

#[test]
fn parse_augmentation_names() {
    assert_eq!(Augmentation::parse("none").unwrap(), Augmentation::None);
    assert_eq!(Augmentation::parse("random-resized-crop").unwrap(), Augmentation::RandomResizedCropFlip);
    assert_eq!(Augmentation::parse("pad-crop-flip").unwrap(), Augmentation::PadCropFlip);
    let err = Augmentation::parse("mixup").unwrap_err().to_string();
    assert!(err.contains("mixup") && err.contains("random-resized-crop"), "{err}");
}

#[test]
fn one_spelling_per_augmentation_shared_by_serde_and_from_str() {
    assert_eq!(Augmentation::VARIANTS, ["none", "random-resized-crop", "pad-crop-flip"]);
    for (&aug, &name) in Augmentation::ALL.iter().zip(Augmentation::VARIANTS) {
        assert_eq!(aug.to_string(), name);
        assert_eq!(name.parse::<Augmentation>().unwrap(), aug);
        assert_eq!(serde_json::to_string(&aug).unwrap(), format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Augmentation>(&format!("\"{name}\"")).unwrap(), aug);
    }
    // The former aliases are refused, with the canonical spelling suggested.
    for (alias, suggested) in [
        ("random_resized_crop", "random-resized-crop"),
        ("random-resize-crop", "random-resized-crop"),
        ("pad-crop", "pad-crop-flip"),
        ("pad-crop:2", "pad-crop-flip"),
        ("Pad-Crop-Flip", "pad-crop-flip"),
    ] {
        let err = alias.parse::<Augmentation>().unwrap_err().to_string();
        assert!(err.contains(&format!("did you mean \"{suggested}\"?")), "{alias}: {err}");
        assert!(serde_json::from_str::<Augmentation>(&format!("\"{alias}\"")).is_err());
    }
    let err = serde_json::from_str::<Augmentation>("\"random-resize-crop\"").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "unknown augmentation \"random-resize-crop\"; did you mean \"random-resized-crop\"? \
             (expected none, random-resized-crop or pad-crop-flip)"
        ),
        "{err}"
    );
    let err = "rrc".parse::<Augmentation>().unwrap_err().to_string();
    assert_eq!(err, "unknown augmentation \"rrc\" (expected none, random-resized-crop or pad-crop-flip)");
}

#[test]
fn resample_and_normalization_spellings() {
    assert_eq!(Resample::VARIANTS, ["nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"]);
    for (&r, &name) in Resample::ALL.iter().zip(Resample::VARIANTS) {
        assert_eq!(r.to_string(), name);
        assert_eq!(name.parse::<Resample>().unwrap(), r);
        assert_eq!(serde_json::from_str::<Resample>(&format!("\"{name}\"")).unwrap(), r);
    }
    let err = serde_json::from_str::<Resample>("\"bicubc\"").unwrap_err().to_string();
    assert!(err.contains("did you mean \"bicubic\"?") && err.contains("nearest, lanczos"), "{err}");

    assert_eq!(Normalization::VARIANTS, ["half", "imagenet"]);
    assert_eq!(Normalization::default(), Normalization::Half);
    assert_eq!(Normalization::Half.mean(), [0.5; 3]);
    assert_eq!(Normalization::Half.std(), [0.5; 3]);
    assert_eq!(Normalization::Imagenet.mean(), vit_data::IMAGENET_DEFAULT_MEAN);
    assert_eq!(Normalization::Imagenet.std(), vit_data::IMAGENET_DEFAULT_STD);
    assert_eq!("imagenet".parse::<Normalization>().unwrap(), Normalization::Imagenet);
    let err = serde_json::from_str::<Normalization>("\"image-net\"").unwrap_err().to_string();
    assert!(err.contains("did you mean \"imagenet\"?") && err.contains("half or imagenet"), "{err}");
}
