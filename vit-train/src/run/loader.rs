//! A Burn `DataLoader` whose every pass is a pure function of the run's seed and position.
//!
//! For training, each `iter()` serves the next segment of the run (see [`super::segments`]):
//! the micro-batches of one or more real epochs, each real epoch's order a permutation seeded by
//! (seed, epoch) and each sample's augmentation and mask seeded by (seed, epoch, index). A resumed
//! run therefore sees exactly the batches the uninterrupted run would have seen. Dropout, the
//! one thing drawing from the backend's RNG during training, is made a function of the position
//! too: the training loader reseeds the device's RNG with [`segment_seed`] as each segment starts
//! (burn-train calls `iter()` right before training on it). For evaluation, each `iter()` serves
//! the whole dataset in order, as epoch 0.
//!
//! Batches are prepared on a background thread (decoding and augmentation in parallel with
//! rayon inside the batch) while the model works on earlier ones, up to `prefetch` batches ahead
//! (`data.prefetch`). The training loader moves
//! the run's [`RunClock`] as it starts a segment and as it hands each batch over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;
use rand::seq::SliceRandom;
use vit_data::rng::{RngStream, sample_rng, splitmix64};
use vit_data::{HostBatch, ImageBatch, ImageBatcher, ImageDataset};

use super::clock::RunClock;
use super::segments::Segments;

/// What one `iter()` serves.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// The run's segments, one per `iter()`, shuffled by (seed, real epoch).
    Training { segments: Segments, seed: u64 },
    /// The whole dataset in order, as epoch 0, every time.
    Evaluation,
}

/// Batches of a dataset, pass after pass.
pub struct EpochLoader {
    dataset: Arc<ImageDataset>,
    batcher: Arc<ImageBatcher>,
    batch_size: usize,
    plan: Plan,
    /// Training: the run's clock, which says which segment the next `iter()` serves; copies made
    /// by `to_device` share it. Shards count their own passes from where the loader was.
    clock: Option<RunClock>,
    /// The pass the next `iter()` serves, for shards (0-based).
    next_pass: AtomicUsize,
    /// Devices the run trains on (D): a micro-batch of the run is D shares of `batch_size`.
    devices: usize,
    /// A shard (burn-train's multi-device split, see [`Self::across_devices`]) serves share
    /// `.0` of `.1` of every micro-batch; `None` serves whole micro-batches.
    shard: Option<(usize, usize)>,
    /// Batches prepared ahead of the model (at least 1).
    prefetch: usize,
    device: Device,
}

/// Batches in flight when not set: one being trained on, two ready.
pub const DEFAULT_PREFETCH: usize = 2;

/// The micro-batches of one real epoch within a pass: the epoch and the dataset positions.
type Piece = (u64, Vec<usize>);

/// The backend RNG's seed for segment `k` of a run with `seed`.
pub fn segment_seed(seed: u64, k: usize) -> u64 {
    splitmix64(seed ^ splitmix64(k as u64 ^ 0x5E6D_E17A_D20F_0A7E))
}

impl EpochLoader {
    /// The training loader of a run: serves the segment after the clock's, and moves the clock.
    pub fn training(
        dataset: ImageDataset,
        batcher: ImageBatcher,
        batch_size: usize,
        seed: u64,
        clock: RunClock,
        device: Device,
    ) -> Self {
        let plan = Plan::Training { segments: *clock.segments(), seed };
        let next = clock.next_segment();
        Self::with_plan(dataset, batcher, batch_size, plan, Some(clock), next, device)
    }

    /// An evaluation loader: the whole dataset in order.
    pub fn evaluation(dataset: ImageDataset, batcher: ImageBatcher, batch_size: usize, device: Device) -> Self {
        Self::with_plan(dataset, batcher, batch_size, Plan::Evaluation, None, 0, device)
    }

    fn with_plan(
        dataset: ImageDataset,
        batcher: ImageBatcher,
        batch_size: usize,
        plan: Plan,
        clock: Option<RunClock>,
        next_pass: usize,
        device: Device,
    ) -> Self {
        Self {
            dataset: Arc::new(dataset),
            batcher: Arc::new(batcher),
            batch_size: batch_size.max(1),
            plan,
            clock,
            next_pass: AtomicUsize::new(next_pass),
            devices: 1,
            shard: None,
            prefetch: DEFAULT_PREFETCH,
            device,
        }
    }

    /// Prepares up to `batches` batches ahead of the model (`data.prefetch`; at least 1).
    pub fn with_prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches.max(1);
        self
    }

    /// Trains on `devices` devices (`run.devices`): a micro-batch of the run is `devices` shares
    /// of `batch_size` images, and burn-train's split of this loader gives device `d` share `d`
    /// of every micro-batch, so the devices together see exactly the micro-batches one device
    /// would see with `devices x batch_size`. Each real epoch uses the largest multiple of
    /// `devices` of its (shuffled) images, so that every device gets a share of the last,
    /// shorter micro-batch (as PyTorch's `DistributedSampler(drop_last=True)`: at most
    /// `devices - 1` images sit out an epoch, other ones each epoch).
    pub fn across_devices(mut self, devices: usize) -> Self {
        self.devices = devices.max(1);
        self
    }

    /// Images a real epoch uses with `devices` devices.
    pub fn epoch_images(images: usize, devices: usize) -> usize {
        images - images % devices.max(1)
    }

    /// The pass the next `iter()` serves.
    fn upcoming_pass(&self) -> usize {
        match (&self.clock, self.shard) {
            (Some(clock), None) => clock.next_segment(),
            _ => self.next_pass.load(Ordering::SeqCst),
        }
    }

    /// The positions of real epoch `epoch`, in order.
    fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        order.shuffle(&mut sample_rng(seed, epoch, 0, RngStream::Shuffle));
        order.truncate(Self::epoch_images(order.len(), self.devices));
        order
    }

    /// The items of pass `k`, as pieces of real epochs.
    fn pass(&self, k: usize) -> Vec<Piece> {
        let n = self.dataset.len();
        let global = self.batch_size * self.devices;
        let pieces: Vec<Piece> = match self.plan {
            Plan::Evaluation => vec![(0, (0..n).collect())],
            Plan::Training { segments, seed } => segments
                .pieces(k)
                .into_iter()
                .map(|p| {
                    let order = self.epoch_order(seed, p.epoch);
                    let m = order.len();
                    let (from, to) = ((p.batches.start * global).min(m), (p.batches.end * global).min(m));
                    (p.epoch, order[from..to].to_vec())
                })
                .collect(),
        };
        let Some((d, of)) = self.shard else { return pieces };
        // Share d of each micro-batch; a piece starts on a micro-batch boundary and only an
        // epoch's last micro-batch is shorter (its length a multiple of the device count).
        pieces
            .into_iter()
            .map(|(epoch, positions)| {
                let share = positions
                    .chunks(global)
                    .flat_map(|batch| {
                        let per = batch.len() / of;
                        batch[d * per..(d + 1) * per].to_vec()
                    })
                    .collect();
                (epoch, share)
            })
            .collect()
    }

    fn copy(&self, shard: Option<(usize, usize)>, device: Device) -> Self {
        Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            plan: self.plan,
            clock: self.clock.clone(),
            next_pass: AtomicUsize::new(self.upcoming_pass()),
            devices: self.devices,
            shard,
            prefetch: self.prefetch,
            device,
        }
    }
}

struct EpochIter {
    /// Batches with the index of the piece they belong to.
    receiver: Receiver<(usize, Result<HostBatch, DatasetError>)>,
    device: Device,
    /// The run's clock, told of every batch handed over (training only), and for a shard the
    /// segment it serves.
    clock: Option<(RunClock, Option<usize>)>,
    /// Batches handed over so far.
    served: usize,
    /// Items in each piece.
    totals: Vec<usize>,
    piece: usize,
    processed: usize,
}

impl Iterator for EpochIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (piece, batch) = self.receiver.recv().ok()?;
        if piece != self.piece {
            self.piece = piece;
            self.processed = 0;
        }
        Some(batch.map(|b| {
            self.processed += b.shape[0];
            match &self.clock {
                Some((clock, None)) => clock.deliver(b.shape[0]),
                Some((clock, Some(k))) => clock.deliver_share(clock.micro_batch_of(*k, self.served), b.shape[0]),
                None => {}
            }
            self.served += 1;
            b.to_device(&self.device)
        }))
    }
}

impl DataLoaderIterator<ImageBatch> for EpochIter {
    /// Progress through the current piece: burn-train steps the optimizer when a pass's progress
    /// is complete, so counting per real epoch makes an epoch's last, shorter group of
    /// accumulated micro-batches a step of its own, also inside a segment.
    fn progress(&self) -> Progress {
        let total = self.totals.get(self.piece).copied().unwrap_or(0);
        Progress::new(self.processed, total, Some("images".into()))
    }
}

impl DataLoader<ImageBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let (k, clock) = match (&self.clock, self.shard) {
            (Some(clock), None) => (clock.begin_next_segment(), Some((clock.clone(), None))),
            (clock, _) => {
                let k = self.next_pass.fetch_add(1, Ordering::SeqCst);
                if let Some(clock) = clock {
                    clock.enter_segment(k);
                }
                (k, clock.clone().map(|c| (c, Some(k))))
            }
        };
        if let Plan::Training { seed, .. } = self.plan {
            self.device.seed(segment_seed(seed, k));
        }
        let pieces = self.pass(k);
        let totals = pieces.iter().map(|(_, ps)| ps.len()).collect();
        let (sender, receiver) = sync_channel(self.prefetch);
        let dataset = self.dataset.clone();
        let batcher = self.batcher.clone();
        let batch_size = match self.shard {
            None => self.batch_size * self.devices,
            Some(_) => self.batch_size,
        };
        // A share's place in its micro-batch: every share of a micro-batch has the same size.
        let share = self.shard.map_or(0, |(d, _)| d);
        std::thread::spawn(move || {
            for (index, (epoch, positions)) in pieces.into_iter().enumerate() {
                for chunk in positions.chunks(batch_size) {
                    let samples: Result<Vec<_>, _> =
                        chunk.iter().map(|&p| dataset.sample(p, epoch).map_err(DatasetError::new)).collect();
                    let failed = samples.is_err();
                    let batch = samples.map(|s| HostBatch { first_sample: share * chunk.len(), ..batcher.prepare(&s) });
                    if sender.send((index, batch)).is_err() || failed {
                        return;
                    }
                }
            }
        });
        Box::new(EpochIter { receiver, device: self.device.clone(), clock, served: 0, totals, piece: 0, processed: 0 })
    }

    /// Items of the next pass.
    fn num_items(&self) -> usize {
        self.pass(self.upcoming_pass()).iter().map(|(_, ps)| ps.len()).sum()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(self.copy(self.shard, device.clone()))
    }

    /// burn-train's split for its device `d` of D (`start = d · ⌊items / D⌋`): the loader's
    /// shard `d` (see [`EpochLoader::across_devices`]). A shard is not split again.
    fn slice(&self, start: usize, _end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        if self.shard.is_some() {
            return Arc::new(self.copy(self.shard, self.device.clone()));
        }
        let per = self.num_items() / self.devices;
        let d = start.checked_div(per).unwrap_or(0).min(self.devices - 1);
        Arc::new(self.copy(Some((d, self.devices)), self.device.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit_data::{EvalResize, ImageFolder, ImageFolderOptions, ImageProcessor, ImageSize, Resample, Transform};

    /// An ImageFolder of `n` tiny images of one class.
    fn dataset(dir: &std::path::Path, n: usize) -> ImageDataset {
        let class = dir.join("a");
        std::fs::create_dir_all(&class).unwrap();
        for i in 0..n {
            image::RgbImage::from_pixel(4, 4, image::Rgb([i as u8, 0, 0]))
                .save(class.join(format!("{i:03}.png")))
                .unwrap();
        }
        ImageFolder::open(dir, &ImageFolderOptions::default()).unwrap().into_dataset()
    }

    fn loader(dir: &std::path::Path, segments: Segments, start: usize) -> EpochLoader {
        loader_of(dir, 10, 3, segments, start)
    }

    /// A training loader of `n` images in batches of `batch_size`.
    fn loader_of(dir: &std::path::Path, n: usize, batch_size: usize, segments: Segments, start: usize) -> EpochLoader {
        let clock = RunClock::new(segments, start);
        let processor = ImageProcessor::new(4, 4);
        let size = ImageSize { height: 4, width: 4 };
        let batcher =
            ImageBatcher::new(Transform::eval(size, Resample::Bilinear, EvalResize::Exact), &processor, 1).unwrap();
        EpochLoader::training(dataset(dir, n), batcher, batch_size, 9, clock, Device::flex())
    }

    /// (epoch, first pixel value = image index) of every sample a pass serves, with progress.
    fn serve(loader: &dyn DataLoader<ImageBatch>) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut it = loader.iter();
        let (mut seen, mut progress) = (Vec::new(), Vec::new());
        while let Some(batch) = it.next() {
            let batch = batch.unwrap();
            let p = it.progress();
            progress.push((p.items_processed, p.items_total));
            let n = batch.pixel_values.dims()[0];
            let pixels: Vec<f32> = batch.pixel_values.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
            let per = pixels.len() / n;
            seen.extend((0..n).map(|i| ((pixels[i * per] * 0.5 + 0.5) * 255.0).round() as u8));
        }
        (seen, progress)
    }

    #[test]
    fn segments_concatenate_to_the_real_epochs_and_resume_where_they_left_off() {
        let tmp = tempfile::tempdir().unwrap();
        // 10 images in batches of 3: 4 micro-batches per epoch; 2 epochs, evaluated every 3 steps.
        let segments = Segments::new(4, 1, 2, None, Some(3));
        let whole = loader(tmp.path(), Segments::new(4, 1, 2, None, None), 0);
        let (epoch0, _) = serve(&whole);
        let (epoch1, _) = serve(&whole);
        assert_ne!(epoch0, epoch1, "each epoch has its own order");

        let split = loader(&tmp.path().join("b"), segments, 0);
        let (first, progress) = serve(&split);
        assert_eq!(first, epoch0[..9]);
        assert_eq!(progress, vec![(3, 9), (6, 9), (9, 9)]);
        // The second segment ends epoch 0 (one image) and starts epoch 1 (two batches): the
        // progress restarts with the epoch, so the epoch's end completes a pass.
        let (second, progress) = serve(&split);
        assert_eq!(second, [&epoch0[9..], &epoch1[..6]].concat());
        assert_eq!(progress, vec![(1, 1), (3, 6), (6, 6)]);

        // A loader resumed at segment 2 serves what the uninterrupted one serves third.
        let resumed = loader(&tmp.path().join("c"), segments, 2);
        let (third, _) = serve(&*resumed.to_device(&Device::flex()));
        assert_eq!(third, epoch1[6..]);
        assert_eq!(serve(&split).0, third);
    }

    #[test]
    fn device_shards_split_every_micro_batch_and_together_serve_the_single_device_run() {
        let tmp = tempfile::tempdir().unwrap();
        // 10 images, 2 devices x 3: micro-batches of 6 and 4 per epoch, as one device with 6.
        let segments = Segments::new(2, 1, 2, None, None);
        let single = loader_of(tmp.path(), 10, 6, segments, 0);
        let dual = loader(&tmp.path().join("b"), segments, 0).across_devices(2);
        assert_eq!(dual.num_items(), 10);
        let n = dual.num_items();
        let shards = [dual.slice(0, n / 2), dual.slice(n / 2, n)];
        for epoch in 0..2 {
            let (whole, _) = serve(&single);
            let served: Vec<_> = shards.iter().map(|s| serve(&**s)).collect();
            assert_eq!(served[0].0, [&whole[0..3], &whole[6..8]].concat(), "epoch {epoch}, device 0");
            assert_eq!(served[1].0, [&whole[3..6], &whole[8..10]].concat(), "epoch {epoch}, device 1");
            assert_eq!(served[0].1, vec![(3, 5), (5, 5)], "each shard's progress through its share");
        }

        // 11 images on 2 devices: each epoch leaves one (shuffled) image out.
        let eleven = loader_of(&tmp.path().join("c"), 11, 3, segments, 0).across_devices(2);
        assert_eq!(eleven.num_items(), 10);
        assert_eq!(EpochLoader::epoch_images(11, 2), 10);
    }
}
