//! [`RunClock`]: where a run is — segment (burn-train's epoch), micro-batch and optimizer step,
//! and the images of each batch delivered. The training loader advances it, in one place, as it
//! starts a segment and as it hands each batch to the learner; the steps, the progress display,
//! the metrics sink and the best-model export read it.
//!
//! The training step runs right after the loader hands its batch over, so the steps read the
//! position directly. burn-train reports each processed batch to the renderer from another thread,
//! later; so every hand-over also leaves a [`Tick`] (the position it made), which the renderer
//! takes in order, one per batch it is told of.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::segments::Segments;

#[derive(Debug, Default)]
struct Position {
    /// The segment being trained (0-based).
    segment: AtomicUsize,
    /// The segment the training loader serves next.
    next: AtomicUsize,
    /// Micro-batches handed to the learner since the run started (those before a resume too).
    micro: AtomicUsize,
    /// The positions made by hand-overs the renderer has not taken yet.
    ticks: Mutex<Ticks>,
}

/// Hand-overs not taken yet, and the shares of the latest micro-batch handed over so far.
#[derive(Debug, Default)]
struct Ticks {
    queue: VecDeque<Tick>,
    latest: usize,
    shares: usize,
}

/// The position after one training batch was handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// The segment it belongs to (0-based).
    pub segment: usize,
    /// The run's micro-batch number (1-based).
    pub micro_batch: usize,
    /// Optimizer steps complete once it is trained.
    pub step: usize,
    /// Images in the batch.
    pub images: usize,
    /// Whether it is the last share of its micro-batch to be handed over (always, on one device).
    pub last_share: bool,
}

/// The run's position, shared by everything that needs it. Clones share the position.
#[derive(Clone, Debug)]
pub struct RunClock {
    segments: Segments,
    /// Devices sharing each micro-batch.
    devices: usize,
    position: Arc<Position>,
}

impl RunClock {
    /// A clock at the start of segment `segment` (0, or the checkpoint a run resumes from),
    /// which is the one served next.
    pub fn new(segments: Segments, segment: usize) -> Self {
        let clock = Self { segments, devices: 1, position: Arc::new(Position::default()) };
        clock.begin_segment(segment);
        clock.position.next.store(segment, Ordering::SeqCst);
        clock
    }

    /// The clock of a run whose micro-batches are shared by `devices` devices.
    pub fn shared_by(mut self, devices: usize) -> Self {
        self.devices = devices.max(1);
        self
    }

    /// How the run's steps are cut into segments.
    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    /// The segment the training loader serves next.
    pub fn next_segment(&self) -> usize {
        self.position.next.load(Ordering::SeqCst)
    }

    /// Begins the next segment (called by the training loader as it serves it); returns it.
    pub fn begin_next_segment(&self) -> usize {
        let k = self.position.next.fetch_add(1, Ordering::SeqCst);
        self.begin_segment(k);
        k
    }

    /// Moves the clock to the start of segment `k`.
    pub fn begin_segment(&self, k: usize) {
        let step = self.segments.steps_after(k);
        self.position.segment.store(k, Ordering::SeqCst);
        self.position.micro.store(self.segments.micro_batches_before(step), Ordering::SeqCst);
    }

    /// Moves the clock forward to the start of segment `k`, unless it is already past it: what
    /// the shards of a multi-device run call as each begins a segment, in any order.
    pub fn enter_segment(&self, k: usize) {
        let step = self.segments.steps_after(k);
        self.position.segment.fetch_max(k, Ordering::SeqCst);
        self.position.micro.fetch_max(self.segments.micro_batches_before(step), Ordering::SeqCst);
    }

    /// The run's number (1-based) of the `i`-th micro-batch (0-based) of segment `k`.
    pub fn micro_batch_of(&self, k: usize, i: usize) -> usize {
        self.segments.micro_batches_before(self.segments.steps_after(k)) + i + 1
    }

    /// Counts a training micro-batch of `images` images handed to the learner.
    pub fn deliver(&self, images: usize) {
        let micro_batch = self.position.micro.fetch_add(1, Ordering::SeqCst) + 1;
        self.tick(micro_batch, images);
    }

    /// Counts one device's share (`images` images) of the run's micro-batch `micro_batch`: with
    /// several devices each hands its share over, in any order, and the clock stands at the
    /// highest micro-batch any has begun. One tick per share, as burn-train reports one item per
    /// device.
    pub fn deliver_share(&self, micro_batch: usize, images: usize) {
        self.position.micro.fetch_max(micro_batch, Ordering::SeqCst);
        self.tick(micro_batch, images);
    }

    fn tick(&self, micro_batch: usize, images: usize) {
        let mut ticks = self.position.ticks.lock().unwrap_or_else(|p| p.into_inner());
        if ticks.latest != micro_batch {
            (ticks.latest, ticks.shares) = (micro_batch, 0);
        }
        ticks.shares += 1;
        let last_share = ticks.shares >= self.devices;
        let tick = Tick { segment: self.segment(), micro_batch, step: self.step_at(micro_batch), images, last_share };
        ticks.queue.push_back(tick);
    }

    /// The oldest hand-over not yet taken (for the renderer, one per batch it is told of).
    pub fn next_tick(&self) -> Option<Tick> {
        self.position.ticks.lock().unwrap_or_else(|p| p.into_inner()).queue.pop_front()
    }

    /// The segment being trained (0-based); the checkpoint it ends with is this plus one.
    pub fn segment(&self) -> usize {
        self.position.segment.load(Ordering::SeqCst)
    }

    /// Micro-batches of the run so far (1-based number of the one being trained).
    pub fn micro_batch(&self) -> usize {
        self.position.micro.load(Ordering::SeqCst)
    }

    /// Optimizer steps completed once the current micro-batch is (its own step included when it
    /// completes one).
    pub fn step(&self) -> usize {
        self.step_at(self.micro_batch())
    }

    /// Optimizer steps complete after micro-batch `micro` (1-based) of the run.
    pub fn step_at(&self, micro: usize) -> usize {
        let (b, a) = (self.segments.batches_per_epoch, self.segments.accumulation);
        (micro / b) * self.segments.steps_per_epoch() + (micro % b) / a
    }

    /// The checkpoint (1-based segment) whose validation ran after optimizer step `step`.
    pub fn checkpoint_at_step(&self, step: usize) -> usize {
        self.segments.segment_ending_at(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_micro_batches_with_accumulation_and_short_epoch_ends() {
        // 5 micro-batches per epoch in groups of 2: steps end after micro-batches 2, 4, 5, 7, 9, 10.
        let clock = RunClock::new(Segments::new(5, 2, 2, None, Some(2)), 0);
        let steps: Vec<usize> = (0..10)
            .map(|_| {
                clock.deliver(3);
                clock.step()
            })
            .collect();
        assert_eq!(steps, vec![0, 1, 1, 2, 3, 3, 4, 4, 5, 6]);
        let ticks: Vec<Tick> = std::iter::from_fn(|| clock.next_tick()).collect();
        assert_eq!(ticks.iter().map(|t| t.images).sum::<usize>(), 30);
        assert_eq!(ticks.iter().map(|t| t.step).collect::<Vec<_>>(), steps, "one tick per hand-over, in order");
        assert_eq!(ticks[9], Tick { segment: 0, micro_batch: 10, step: 6, images: 3, last_share: true });
    }

    #[test]
    fn a_segment_start_sets_the_position_as_a_resume_would() {
        let segments = Segments::new(5, 2, 2, None, Some(2));
        let clock = RunClock::new(segments, 2);
        assert_eq!((clock.segment(), clock.micro_batch(), clock.step()), (2, 7, 4));
        assert_eq!(clock.begin_next_segment(), 2);
        assert_eq!(clock.next_segment(), 3);
        let copy = clock.clone();
        copy.begin_segment(1);
        assert_eq!((clock.segment(), clock.micro_batch(), clock.step()), (1, 4, 2));
        assert_eq!(clock.checkpoint_at_step(4), 2);
    }

    #[test]
    fn device_shares_move_the_clock_once_per_micro_batch_in_any_order() {
        // Two devices, 5 micro-batches per epoch in groups of 2.
        let clock = RunClock::new(Segments::new(5, 2, 2, None, Some(2)), 0).shared_by(2);
        clock.enter_segment(1);
        assert_eq!((clock.segment(), clock.micro_batch()), (1, 4));
        clock.enter_segment(0);
        assert_eq!((clock.segment(), clock.micro_batch()), (1, 4), "a late shard does not move the clock back");
        let (a, b) = (clock.micro_batch_of(1, 0), clock.micro_batch_of(1, 1));
        assert_eq!((a, b), (5, 6));
        clock.deliver_share(a, 4);
        assert_eq!(clock.micro_batch(), 5);
        clock.deliver_share(a, 4);
        clock.deliver_share(b, 4);
        assert_eq!((clock.micro_batch(), clock.step()), (6, 3));
        let ticks: Vec<Tick> = std::iter::from_fn(|| clock.next_tick()).collect();
        assert_eq!(
            ticks.iter().map(|t| (t.micro_batch, t.step, t.last_share)).collect::<Vec<_>>(),
            [(5, 3, false), (5, 3, true), (6, 3, false)]
        );
    }
}
