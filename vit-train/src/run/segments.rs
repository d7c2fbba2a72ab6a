//! How a run's optimizer steps are cut into the "epochs" of burn-train.
//!
//! burn-train validates, checkpoints, keeps the last K and the best, and stops early at the end
//! of each of its epochs. To do that every `run.eval_every` optimizer steps, a burn-train epoch
//! is a *segment*: segment k (0-based) is the optimizer steps `[k·L, min((k+1)·L, total))` of the
//! stream of real passes over the data, where L is `eval_every`, or the steps of one real epoch
//! when evaluating per epoch. Step g of that stream belongs to real epoch `g / S` (S steps per
//! real epoch) and covers micro-batches `[j·a, min((j+1)·a, B))` of it (j = g mod S, a the
//! gradient accumulation, B the micro-batches of a real epoch), so a segment may end inside a
//! real epoch or span the end of one. The data order and augmentation stay functions of
//! (seed, real epoch, index), and a run resumed at a segment boundary continues exactly.

use std::ops::Range;

/// The optimizer steps of a run and their segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    /// Micro-batches in one real epoch (B).
    pub batches_per_epoch: usize,
    /// Micro-batches per optimizer step (a).
    pub accumulation: usize,
    /// Optimizer steps of the run.
    pub total_steps: usize,
    /// Optimizer steps per segment (L).
    pub segment_steps: usize,
}

/// Consecutive micro-batches of one real epoch within a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The real epoch (0-based).
    pub epoch: u64,
    /// Its micro-batches, by index within the epoch.
    pub batches: Range<usize>,
}

impl Segments {
    /// The segments of a run: `epochs` real epochs of `batches_per_epoch` micro-batches, or
    /// exactly `max_steps` optimizer steps when given; evaluated every `eval_every` steps, else
    /// at the end of each real epoch.
    pub fn new(
        batches_per_epoch: usize,
        accumulation: usize,
        epochs: usize,
        max_steps: Option<usize>,
        eval_every: Option<usize>,
    ) -> Self {
        let batches_per_epoch = batches_per_epoch.max(1);
        let accumulation = accumulation.max(1);
        let per_epoch = batches_per_epoch.div_ceil(accumulation);
        Self {
            batches_per_epoch,
            accumulation,
            total_steps: max_steps.unwrap_or(per_epoch * epochs),
            segment_steps: eval_every.unwrap_or(per_epoch).max(1),
        }
    }

    /// Optimizer steps in one real epoch (S).
    pub fn steps_per_epoch(&self) -> usize {
        self.batches_per_epoch.div_ceil(self.accumulation)
    }

    /// Number of segments (burn-train's number of epochs).
    pub fn count(&self) -> usize {
        self.total_steps.div_ceil(self.segment_steps)
    }

    /// The optimizer steps of segment `k` (0-based).
    pub fn steps(&self, k: usize) -> Range<usize> {
        let start = (k * self.segment_steps).min(self.total_steps);
        start..((k + 1) * self.segment_steps).min(self.total_steps)
    }

    /// Optimizer steps done when `segments` segments are complete (where a resumed run starts).
    pub fn steps_after(&self, segments: usize) -> usize {
        self.steps(segments).start
    }

    /// The checkpoint (1-based segment) that ends at optimizer step `step`, the step of its
    /// validation row.
    pub fn segment_ending_at(&self, step: usize) -> usize {
        if step >= self.total_steps { self.count() } else { step.div_ceil(self.segment_steps) }
    }

    /// The micro-batches segment `k` trains on, as pieces of real epochs in order.
    pub fn pieces(&self, k: usize) -> Vec<Piece> {
        let Range { start, end } = self.steps(k);
        let per_epoch = self.steps_per_epoch();
        let mut pieces = Vec::new();
        let mut step = start;
        while step < end {
            let epoch = step / per_epoch;
            let last = end.min((epoch + 1) * per_epoch);
            let first_batch = (step % per_epoch) * self.accumulation;
            let end_batch = ((last - epoch * per_epoch) * self.accumulation).min(self.batches_per_epoch);
            pieces.push(Piece { epoch: epoch as u64, batches: first_batch..end_batch });
            step = last;
        }
        pieces
    }

    /// Micro-batches trained before optimizer step `step`.
    pub fn micro_batches_before(&self, step: usize) -> usize {
        let per_epoch = self.steps_per_epoch();
        (step / per_epoch) * self.batches_per_epoch
            + ((step % per_epoch) * self.accumulation).min(self.batches_per_epoch)
    }

    /// Whether the `n`-th micro-batch of the run (1-based) completes an optimizer step.
    pub fn ends_step(&self, n: usize) -> bool {
        let within = n % self.batches_per_epoch;
        within == 0 || within.is_multiple_of(self.accumulation)
    }

    /// Real epochs done after `step` optimizer steps, fractional (the `epoch` column of
    /// metrics.csv).
    pub fn epochs_at(&self, step: usize) -> f64 {
        step as f64 / self.steps_per_epoch() as f64
    }

    /// Whether segments are the real epochs.
    pub fn per_epoch(&self) -> bool {
        self.segment_steps == self.steps_per_epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(epoch: u64, batches: Range<usize>) -> Piece {
        Piece { epoch, batches }
    }

    #[test]
    fn per_epoch_segments_are_the_epochs() {
        let s = Segments::new(9, 1, 3, None, None);
        assert_eq!((s.total_steps, s.count(), s.steps_per_epoch()), (27, 3, 9));
        assert!(s.per_epoch());
        assert_eq!(s.pieces(1), vec![piece(1, 0..9)]);
        assert_eq!(s.segment_ending_at(18), 2);
        assert_eq!(s.steps_after(2), 18);
    }

    #[test]
    fn step_segments_span_epoch_ends() {
        // 9 steps per epoch, evaluated every 4: segments end at 4, 8, 12, ..., 24, 27.
        let s = Segments::new(9, 1, 3, None, Some(4));
        assert_eq!(s.count(), 7);
        assert!(!s.per_epoch());
        assert_eq!(s.pieces(0), vec![piece(0, 0..4)]);
        assert_eq!(s.pieces(2), vec![piece(0, 8..9), piece(1, 0..3)]);
        assert_eq!(s.pieces(6), vec![piece(2, 6..9)]);
        assert_eq!(s.steps(6), 24..27);
        let ends: Vec<usize> = (0..s.count()).map(|k| s.steps(k).end).collect();
        assert_eq!(ends, vec![4, 8, 12, 16, 20, 24, 27]);
        for (k, end) in ends.iter().enumerate() {
            assert_eq!(s.segment_ending_at(*end), k + 1);
        }
        // Every micro-batch of every epoch, once, in order.
        let all: Vec<(u64, usize)> =
            (0..s.count()).flat_map(|k| s.pieces(k)).flat_map(|p| p.batches.map(move |b| (p.epoch, b))).collect();
        let expected: Vec<(u64, usize)> = (0..3).flat_map(|e| (0..9).map(move |b| (e, b))).collect();
        assert_eq!(all, expected);
        assert!((s.epochs_at(12) - 12.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn accumulation_groups_micro_batches_within_an_epoch() {
        // 5 micro-batches per epoch in groups of 2: steps of 2, 2 and 1 micro-batches.
        let s = Segments::new(5, 2, 2, None, Some(2));
        assert_eq!((s.steps_per_epoch(), s.total_steps, s.count()), (3, 6, 3));
        assert_eq!(s.pieces(0), vec![piece(0, 0..4)]);
        assert_eq!(s.pieces(1), vec![piece(0, 4..5), piece(1, 0..2)]);
        assert_eq!(s.pieces(2), vec![piece(1, 2..5)]);
        assert_eq!(s.micro_batches_before(2), 4);
        assert_eq!(s.micro_batches_before(3), 5);
        assert_eq!(s.micro_batches_before(4), 7);
        let ends: Vec<usize> = (1..=10).filter(|&n| s.ends_step(n)).collect();
        assert_eq!(ends, vec![2, 4, 5, 7, 9, 10]);
    }

    #[test]
    fn max_steps_ends_the_run_inside_an_epoch() {
        let s = Segments::new(9, 1, 100, Some(13), None);
        assert_eq!((s.total_steps, s.count()), (13, 2));
        assert_eq!(s.pieces(1), vec![piece(1, 0..4)]);
        assert_eq!(s.segment_ending_at(13), 2);
        let s = Segments::new(9, 1, 100, Some(13), Some(5));
        let ends: Vec<usize> = (0..s.count()).map(|k| s.steps(k).end).collect();
        assert_eq!(ends, vec![5, 10, 13]);
    }
}
