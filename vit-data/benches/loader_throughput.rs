//! Throughput of the training batcher alone — augmentation, normalisation, random erasing and
//! Mixup/CutMix of whole batches, on every core as in training — for the plain pipeline and the
//! full DeiT/timm one, at 224 px (from the 300–600 px reference photographs) and at 32 px (from
//! 32x32 crops, as CIFAR). Images are decoded once beforehand, as the datasets cache them.
//!
//! `cargo bench -p vit-data --bench loader_throughput [-- --seconds S]`; compare the figures with
//! `vit-train bench` (the training step's images per second) to see whether the loader keeps up.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::data::dataset::Dataset;
use image::RgbImage;
use vit_data::dataset::ImageSource;
use vit_data::{
    AugmentInterpolation, Augmentation, AutoAugment, DecodeLimits, EraseMode, ImageBatcher, ImageDataset,
    ImageProcessor, ImageSize, Mixup, MixupConfig, RandomErasing, Resample, Result, TimmHparams, TrainAugmentation,
    Transform,
};

/// Decoded images in memory, labelled round-robin over ten classes.
struct InMemory {
    images: Vec<Arc<RgbImage>>,
    classes: Vec<String>,
}

impl ImageSource for InMemory {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn label(&self, index: usize) -> usize {
        index % self.classes.len()
    }
    fn load(&self, index: usize) -> Result<Arc<RgbImage>> {
        Ok(self.images[index].clone())
    }
    fn class_names(&self) -> &[String] {
        &self.classes
    }
}

fn photos() -> Vec<RgbImage> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    ["astronaut.png", "chelsea.png", "coffee.png"]
        .iter()
        .map(|name| DecodeLimits::default().decode_rgb(&dir.join(name)).expect("reference photograph"))
        .collect()
}

/// `count` source images: the photographs as they are (for 224 px), or 32x32 crops of them.
fn sources(small: bool, count: usize) -> InMemory {
    let photos = photos();
    let images = (0..count)
        .map(|i| {
            let photo = &photos[i % photos.len()];
            let image = if small {
                let (x, y) = ((i * 37) as u32 % (photo.width() - 32), (i * 53) as u32 % (photo.height() - 32));
                image::imageops::crop_imm(photo, x, y, 32, 32).to_image()
            } else {
                photo.clone()
            };
            Arc::new(image)
        })
        .collect();
    InMemory { images, classes: (0..10).map(|c| format!("c{c}")).collect() }
}

fn batcher(size: u32, full: bool) -> ImageBatcher {
    let processor = ImageProcessor::new(size, size);
    let base = if size <= 64 { Augmentation::PadCropFlip } else { Augmentation::RandomResizedCropFlip };
    let options = if full {
        TrainAugmentation {
            augmentation: base,
            auto_augment: "rand-m9-mstd0.5-inc1".parse::<AutoAugment>().expect("a timm string"),
            timm_hparams: TimmHparams::from_mean(&processor.image_mean, AugmentInterpolation::Random),
            random_erasing: RandomErasing::new(0.25, EraseMode::Pixel),
            ..TrainAugmentation::from(base)
        }
    } else {
        TrainAugmentation::from(base)
    };
    let size = ImageSize { height: size, width: size };
    let transform = Transform::train_with(size, Resample::Bicubic, options).expect("valid options");
    let batcher = ImageBatcher::new(transform, &processor, 0).expect("valid batcher");
    if !full {
        return batcher;
    }
    let mixup =
        Mixup::new(MixupConfig { mixup_alpha: 0.8, cutmix_alpha: 1.0, label_smoothing: 0.1, ..MixupConfig::new(10) })
            .expect("DeiT's mixup");
    batcher.with_mixup(mixup).expect("mixup fits")
}

/// Images per second of `prepare` over batches of `batch` for about `seconds`.
fn measure(dataset: &ImageDataset, batcher: &ImageBatcher, batch: usize, seconds: f64) -> f64 {
    let budget = Duration::from_secs_f64(seconds);
    let (mut images, mut position, mut epoch) = (0usize, 0usize, 0u64);
    let start = Instant::now();
    while start.elapsed() < budget || images == 0 {
        let items: Vec<_> = (0..batch)
            .map(|k| {
                let p = (position + k) % dataset.len();
                dataset.sample(p, epoch).expect("in-memory sample")
            })
            .collect();
        std::hint::black_box(batcher.prepare(&items));
        images += batch;
        position += batch;
        if position >= dataset.len() {
            position = 0;
            epoch += 1;
        }
    }
    images as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let threads = rayon::current_num_threads();
    println!("| size | pipeline | batch | images/s ({threads} threads) |");
    println!("| --- | --- | --- | --- |");
    for (size, batch) in [(224u32, 64usize), (32, 128)] {
        let dataset = ImageDataset::new(Arc::new(sources(size == 32, 512)));
        for (name, full) in [
            ("plain (crop + flip)", false),
            ("DeiT: + rand-m9-mstd0.5-inc1, erasing 0.25, mixup 0.8 / cutmix 1.0", true),
        ] {
            let rate = measure(&dataset, &batcher(size, full), batch, seconds);
            println!("| {size} | {name} | {batch} | {rate:.0} |");
        }
    }
}
