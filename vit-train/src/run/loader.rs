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
    /// by `to_device` share it. Slices (burn-train's multi-device split) count their own passes
    /// from where the loader was, and only the first slice moves the clock.
    clock: Option<RunClock>,
    /// The pass the next `iter()` serves, for loaders that do not move the clock (0-based).
    next_pass: AtomicUsize,
    /// A slice (burn-train's multi-device split) serves the share `start / of .. end / of` of
    /// every pass's items; `None` serves them all.
    part: Option<(usize, usize, usize)>,
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
            part: None,
            prefetch: DEFAULT_PREFETCH,
            device,
        }
    }

    /// Prepares up to `batches` batches ahead of the model (`data.prefetch`; at least 1).
    pub fn with_prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches.max(1);
        self
    }

    /// The clock this loader moves: the training loader and its first slice.
    fn driving_clock(&self) -> Option<&RunClock> {
        self.clock.as_ref().filter(|_| self.part.is_none_or(|(start, _, _)| start == 0))
    }

    /// The pass the next `iter()` serves.
    fn upcoming_pass(&self) -> usize {
        match (&self.clock, self.part) {
            (Some(clock), None) => clock.next_segment(),
            _ => self.next_pass.load(Ordering::SeqCst),
        }
    }

    /// The positions of real epoch `epoch`, in order.
    fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        order.shuffle(&mut sample_rng(seed, epoch, 0, RngStream::Shuffle));
        order
    }

    /// The items of pass `k`, as pieces of real epochs.
    fn pass(&self, k: usize) -> Vec<Piece> {
        let n = self.dataset.len();
        let pieces: Vec<Piece> = match self.plan {
            Plan::Evaluation => vec![(0, (0..n).collect())],
            Plan::Training { segments, seed } => segments
                .pieces(k)
                .into_iter()
                .map(|p| {
                    let (from, to) =
                        ((p.batches.start * self.batch_size).min(n), (p.batches.end * self.batch_size).min(n));
                    (p.epoch, self.epoch_order(seed, p.epoch)[from..to].to_vec())
                })
                .collect(),
        };
        let Some((start, end, of)) = self.part else { return pieces };
        let items: Vec<(u64, usize)> =
            pieces.into_iter().flat_map(|(e, ps)| ps.into_iter().map(move |p| (e, p))).collect();
        let share = |x: usize| (x * items.len()).checked_div(of).unwrap_or(0).min(items.len());
        let mut sliced: Vec<Piece> = Vec::new();
        for &(epoch, position) in &items[share(start)..share(end).max(share(start))] {
            match sliced.last_mut() {
                Some((e, ps)) if *e == epoch => ps.push(position),
                _ => sliced.push((epoch, vec![position])),
            }
        }
        sliced
    }

    fn copy(&self, part: Option<(usize, usize, usize)>, device: Device) -> Self {
        Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            plan: self.plan,
            clock: self.clock.clone(),
            next_pass: AtomicUsize::new(self.upcoming_pass()),
            part,
            prefetch: self.prefetch,
            device,
        }
    }
}

struct EpochIter {
    /// Batches with the index of the piece they belong to.
    receiver: Receiver<(usize, Result<HostBatch, DatasetError>)>,
    device: Device,
    /// The run's clock, told of every batch handed over (training only).
    clock: Option<RunClock>,
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
            if let Some(clock) = &self.clock {
                clock.deliver(b.shape[0]);
            }
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
        let clock = self.driving_clock().cloned();
        let k = match (&clock, self.part) {
            (Some(clock), None) => clock.begin_next_segment(),
            (clock, _) => {
                let k = self.next_pass.fetch_add(1, Ordering::SeqCst);
                if let Some(clock) = clock {
                    clock.begin_segment(k);
                }
                k
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
        let batch_size = self.batch_size;
        std::thread::spawn(move || {
            for (index, (epoch, positions)) in pieces.into_iter().enumerate() {
                for chunk in positions.chunks(batch_size) {
                    let samples: Result<Vec<_>, _> =
                        chunk.iter().map(|&p| dataset.sample(p, epoch).map_err(DatasetError::new)).collect();
                    let failed = samples.is_err();
                    let batch = samples.map(|s| batcher.prepare(&s));
                    if sender.send((index, batch)).is_err() || failed {
                        return;
                    }
                }
            }
        });
        Box::new(EpochIter { receiver, device: self.device.clone(), clock, totals, piece: 0, processed: 0 })
    }

    /// Items of the next pass.
    fn num_items(&self) -> usize {
        self.pass(self.upcoming_pass()).iter().map(|(_, ps)| ps.len()).sum()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(self.copy(self.part, device.clone()))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let of = self.num_items();
        let part = match self.part {
            None => (start, end, of),
            // A slice of a slice: the share of the share.
            Some((s0, e0, of0)) => (s0 * of + start * (e0 - s0), s0 * of + end * (e0 - s0), of0 * of),
        };
        Arc::new(self.copy(Some(part), self.device.clone()))
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
        let clock = RunClock::new(segments, start);
        let processor = ImageProcessor::new(4, 4);
        let size = ImageSize { height: 4, width: 4 };
        let batcher =
            ImageBatcher::new(Transform::eval(size, Resample::Bilinear, EvalResize::Exact), &processor, 1).unwrap();
        EpochLoader::training(dataset(dir, 10), batcher, 3, 9, clock, Device::flex())
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
    fn slices_share_each_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let all = loader(tmp.path(), Segments::new(4, 1, 2, None, None), 0);
        let total = all.num_items();
        assert_eq!(total, 10);
        let halves = [all.slice(0, 5), all.slice(5, 10)];
        let (expected, _) = serve(&all);
        let served: Vec<u8> = halves.iter().flat_map(|h| serve(&**h).0).collect();
        assert_eq!(served, expected, "two halves of epoch 0");
        let quarter = halves[1].slice(0, 3);
        assert_eq!(serve(&*quarter).0, serve(&all).0[5..8], "the first 3 of the second half of the next epoch");
    }
}
