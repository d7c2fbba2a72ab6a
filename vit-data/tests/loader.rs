//! The Burn batcher and data loader: shapes, normalisation, masks, and per-sample randomness
//! that does not depend on the number of workers.

use std::collections::HashMap;
use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::tensor::Device;
use image::RgbImage;
use vit_data::dataset::ImageSource;
use vit_data::{
    Augmentation, ImageBatcher, ImageDataset, ImageProcessor, ImageSize, MaskGenerator, Resample, Result, Transform,
};

mod common;

/// `n` distinct 32x32 images whose label is their index (so a batch's labels identify them).
struct Synthetic {
    images: Vec<Arc<RgbImage>>,
    names: Vec<String>,
}

impl Synthetic {
    fn new(n: usize) -> Self {
        Synthetic {
            images: (0..n).map(|i| Arc::new(common::pattern(32, 32, i as u32))).collect(),
            names: (0..n).map(|i| format!("c{i}")).collect(),
        }
    }
}

impl ImageSource for Synthetic {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn label(&self, index: usize) -> usize {
        index
    }
    fn load(&self, index: usize) -> Result<Arc<RgbImage>> {
        Ok(self.images[index].clone())
    }
    fn class_names(&self) -> &[String] {
        &self.names
    }
}

const S32: ImageSize = ImageSize { height: 32, width: 32 };

fn batcher() -> ImageBatcher {
    let processor = ImageProcessor::new(32, 32);
    let t = Transform::train(S32, Resample::Bilinear, Augmentation::PadCropFlip);
    ImageBatcher::new(t, &processor, 1234).unwrap().with_masks(MaskGenerator::new(32, 8, 4, 0.5).unwrap()).unwrap()
}

/// Per epoch: label -> (pixels, mask).
type Epochs = Vec<HashMap<i64, (Vec<f32>, Vec<bool>)>>;

/// Runs `epochs` epochs with `workers` workers.
fn run(workers: usize, epochs: usize) -> Epochs {
    let dataset = ImageDataset::new(Arc::new(Synthetic::new(24)));
    let loader = DataLoaderBuilder::new(batcher())
        .batch_size(5)
        .shuffle(99)
        .num_workers(workers)
        .set_device(Device::flex())
        .build(dataset);
    (0..epochs)
        .map(|_| {
            let mut seen = HashMap::new();
            for batch in loader.iter() {
                let batch = batch.unwrap();
                let [b, c, h, w] = batch.pixel_values.dims();
                assert_eq!((c, h, w), (3, 32, 32));
                let pixels: Vec<f32> = batch.pixel_values.into_data().try_to_vec().unwrap();
                let labels: Vec<i64> = batch.labels.into_data().convert::<i64>().try_to_vec().unwrap();
                let mask = batch.bool_masked_pos.unwrap();
                assert_eq!(mask.dims(), [b, 64]);
                let masks: Vec<bool> = mask.into_data().try_to_vec().unwrap();
                for (i, label) in labels.into_iter().enumerate() {
                    let px = pixels[i * 3072..(i + 1) * 3072].to_vec();
                    let m = masks[i * 64..(i + 1) * 64].to_vec();
                    assert!(seen.insert(label, (px, m)).is_none(), "sample {label} twice in an epoch");
                }
            }
            assert_eq!(seen.len(), 24);
            seen
        })
        .collect()
}

#[test]
fn randomness_depends_on_seed_epoch_index_only() {
    let single = run(0, 2);
    let two = run(2, 2);
    let three = run(3, 2);
    assert_eq!(single, two);
    assert_eq!(single, three);
    // Epochs differ (augmentation and mask re-drawn).
    let changed = (0..24).filter(|l| single[0][l] != single[1][l]).count();
    assert!(changed > 20, "only {changed} samples changed between epochs");
}

#[test]
fn batch_values_are_normalised_augmented_images() {
    let ds = ImageDataset::new(Arc::new(Synthetic::new(3)));
    let b = batcher();
    let samples: Vec<_> = (0..3).map(|i| ds.sample(i, 4).unwrap()).collect();
    let host = b.prepare(&samples);
    assert_eq!(host.shape, [3, 3, 32, 32]);
    assert_eq!(host.labels, vec![0, 1, 2]);
    let img = b.augment(&samples[1]).unwrap();
    let expected = ImageProcessor { do_resize: false, ..ImageProcessor::new(32, 32) }.process_rgb(&img).unwrap();
    assert_eq!(&host.pixel_values[3072..6144], &expected[..]);
    assert_eq!(host.masks.as_ref().unwrap().iter().filter(|&&m| m).count(), 3 * 32);
    // On a device.
    let batch = b.batch(samples, &Device::flex());
    assert_eq!(batch.pixel_values.dims(), [3, 3, 32, 32]);
    // Mask input size must match the transform.
    let t = Transform::train(ImageSize { height: 64, width: 64 }, Resample::Bilinear, Augmentation::None);
    let err = ImageBatcher::new(t, &ImageProcessor::new(64, 64), 0)
        .unwrap()
        .with_masks(MaskGenerator::new(32, 8, 4, 0.5).unwrap());
    assert!(err.unwrap_err().to_string().contains("image_size"));
}

#[test]
fn grayscale_models_get_one_channel() {
    let ds = ImageDataset::new(Arc::new(Synthetic::new(2)));
    let processor = ImageProcessor::new(16, 16).with_num_channels(1);
    let t = Transform::eval(ImageSize { height: 16, width: 16 }, Resample::Bicubic, vit_data::EvalResize::Exact);
    let b = ImageBatcher::new(t, &processor, 0).unwrap();
    let host = b.prepare(&[ds.sample(0, 0).unwrap(), ds.sample(1, 0).unwrap()]);
    assert_eq!(host.shape, [2, 1, 16, 16]);
    assert!(host.masks.is_none());
    // A training batch converts each colour image to L before the random crop: the same as
    // giving it the converted image.
    let t =
        Transform::train(ImageSize { height: 16, width: 16 }, Resample::Bicubic, Augmentation::RandomResizedCropFlip);
    let b = ImageBatcher::new(t, &processor, 7).unwrap();
    let sample = ds.sample(1, 3).unwrap();
    let mut gray = sample.clone();
    gray.image = Arc::new(vit_data::convert::to_gray_rgb(&sample.image));
    assert_ne!(*gray.image, *sample.image, "the synthetic sample is coloured");
    assert_eq!(b.prepare(std::slice::from_ref(&sample)), b.prepare(&[gray]));
}
