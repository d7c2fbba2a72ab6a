//! A Burn `DataLoader` whose every epoch is a pure function of (seed, epoch): the order is a
//! permutation seeded by both, and each sample's augmentation and mask by (seed, epoch, index).
//! A resumed run therefore sees exactly the batches the uninterrupted run would have seen.
//!
//! Batches are prepared on a background thread (decoding and augmentation in parallel with
//! rayon inside the batch) while the model works on the previous one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use vit_data::{HostBatch, ImageBatch, ImageBatcher, ImageDataset};

/// Batches of a dataset, epoch after epoch.
pub struct EpochLoader {
    dataset: Arc<ImageDataset>,
    batcher: Arc<ImageBatcher>,
    batch_size: usize,
    /// `Some(seed)`: shuffle every epoch with a permutation of (seed, epoch).
    shuffle_seed: Option<u64>,
    /// The epoch the next `iter()` call serves (0-based).
    next_epoch: Arc<AtomicU64>,
    /// Positions in the dataset this loader serves (for `slice`).
    range: (usize, usize),
    device: Device,
}

impl EpochLoader {
    /// A loader over the whole dataset, starting at epoch `start_epoch`.
    pub fn new(
        dataset: ImageDataset,
        batcher: ImageBatcher,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        start_epoch: u64,
        device: Device,
    ) -> Self {
        let n = dataset.len_positions();
        Self {
            dataset: Arc::new(dataset),
            batcher: Arc::new(batcher),
            batch_size,
            shuffle_seed,
            next_epoch: Arc::new(AtomicU64::new(start_epoch)),
            range: (0, n),
            device,
        }
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        (self.range.1 - self.range.0).div_ceil(self.batch_size)
    }

    /// The positions of one epoch, in order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (self.range.0..self.range.1).collect();
        if let Some(seed) = self.shuffle_seed {
            let key = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(key));
        }
        order
    }

    fn clone_with(&self, range: (usize, usize), device: Device) -> Self {
        Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            shuffle_seed: self.shuffle_seed,
            next_epoch: self.next_epoch.clone(),
            range,
            device,
        }
    }
}

/// Length of an [`ImageDataset`] in positions (its `Dataset::len`).
trait Positions {
    fn len_positions(&self) -> usize;
}

impl Positions for ImageDataset {
    fn len_positions(&self) -> usize {
        burn::data::dataset::Dataset::len(self)
    }
}

struct EpochIter {
    receiver: Receiver<Result<HostBatch, DatasetError>>,
    device: Device,
    processed: usize,
    total: usize,
}

impl Iterator for EpochIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.receiver.recv().ok()?;
        Some(batch.map(|b| {
            self.processed += b.shape[0];
            b.to_device(&self.device)
        }))
    }
}

impl DataLoaderIterator<ImageBatch> for EpochIter {
    fn progress(&self) -> Progress {
        Progress::new(self.processed, self.total, Some("images".into()))
    }
}

impl DataLoader<ImageBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let order = self.epoch_order(epoch);
        let total = order.len();
        let (sender, receiver) = sync_channel(2);
        let dataset = self.dataset.clone();
        let batcher = self.batcher.clone();
        let batch_size = self.batch_size;
        std::thread::spawn(move || {
            for chunk in order.chunks(batch_size) {
                let samples: Result<Vec<_>, _> = chunk
                    .iter()
                    .map(|&p| dataset.sample(p, epoch).map_err(DatasetError::new))
                    .collect();
                let failed = samples.is_err();
                let batch = samples.map(|s| batcher.prepare(&s));
                if sender.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        Box::new(EpochIter { receiver, device: self.device.clone(), processed: 0, total })
    }

    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(self.clone_with(self.range, device.clone()))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let (a, b) = self.range;
        let start = (a + start).min(b);
        let end = (a + end).clamp(start, b);
        Arc::new(self.clone_with((start, end), self.device.clone()))
    }
}
