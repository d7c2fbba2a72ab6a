//! Learning-rate schedules as `transformers`' `get_scheduler`: linear warmup, then cosine,
//! linear decay to zero, or constant. Step `n` (0-based) uses the factor HF's `lr_lambda(n)` gives.
//! timm's `warmup_lr` (where the warmup starts) and `min_lr` (the floor the decay ends at) are
//! fractions of the peak here, so that layer-wise lr decay scales them with the peak as timm's
//! `lr_scale` does.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

/// What follows the warmup (`optimizer.schedule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Half a cosine from 1 to 0 (`get_cosine_schedule_with_warmup`).
    Cosine,
    /// Straight to 0 at the last step (`get_linear_schedule_with_warmup`).
    Linear,
    /// Stay at the peak (`get_constant_schedule_with_warmup`).
    Constant,
}

/// Warmup then decay, scaled by a per-group factor (layer-wise lr decay).
#[derive(Clone, Debug)]
pub struct WarmupSchedule {
    /// Peak learning rate times the group's factor.
    pub peak: f64,
    /// Steps of linear warmup from 0.
    pub warmup_steps: usize,
    /// Total optimizer steps of the run.
    pub total_steps: usize,
    /// The decay after warmup.
    pub decay: Decay,
    /// Where the warmup starts, as a fraction of the peak (`optimizer.warmup_lr / optimizer.lr`).
    pub warmup_start: f64,
    /// Where the decay ends, as a fraction of the peak (`optimizer.min_lr / optimizer.lr`).
    pub floor: f64,
    /// Steps taken so far.
    pub step: usize,
}

impl WarmupSchedule {
    /// The multiplier of the peak at 0-based step `n`.
    pub fn factor(&self, n: usize) -> f64 {
        if n < self.warmup_steps {
            let ramp = n as f64 / self.warmup_steps.max(1) as f64;
            return self.warmup_start + (1.0 - self.warmup_start) * ramp;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((n - self.warmup_steps) as f64 / span).min(1.0);
        let decayed = match self.decay {
            Decay::Constant => return 1.0,
            Decay::Linear => (1.0 - progress).max(0.0),
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        };
        self.floor + (1.0 - self.floor) * decayed
    }
}

impl LrScheduler for WarmupSchedule {
    fn step(&mut self) -> LearningRate {
        let lr = self.peak * self.factor(self.step);
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(decay: Decay) -> WarmupSchedule {
        WarmupSchedule { peak: 1.0, warmup_steps: 10, total_steps: 110, decay, warmup_start: 0.0, floor: 0.0, step: 0 }
    }

    #[test]
    fn warmup_start_and_floor_as_timm() {
        let s = WarmupSchedule { warmup_start: 0.01, floor: 0.1, ..schedule(Decay::Cosine) };
        assert_eq!(s.factor(0), 0.01);
        assert!((s.factor(5) - (0.01 + 0.99 * 0.5)).abs() < 1e-12);
        assert_eq!(s.factor(10), 1.0);
        assert!((s.factor(60) - 0.55).abs() < 1e-12, "half way: floor + (1 - floor) / 2");
        assert!((s.factor(110) - 0.1).abs() < 1e-12);
        assert!((s.factor(500) - 0.1).abs() < 1e-12, "stays at the floor");
        let l = WarmupSchedule { floor: 0.2, ..schedule(Decay::Linear) };
        assert!((l.factor(110) - 0.2).abs() < 1e-12);
        assert_eq!(WarmupSchedule { floor: 0.2, ..schedule(Decay::Constant) }.factor(100), 1.0);
    }

    #[test]
    fn warmup_then_decay_as_transformers() {
        let s = schedule(Decay::Linear);
        assert_eq!(s.factor(0), 0.0);
        assert_eq!(s.factor(5), 0.5);
        assert_eq!(s.factor(10), 1.0);
        assert!((s.factor(60) - 0.5).abs() < 1e-12);
        assert_eq!(s.factor(110), 0.0);
        let c = schedule(Decay::Cosine);
        assert!((c.factor(60) - 0.5).abs() < 1e-12);
        assert!(c.factor(110).abs() < 1e-12);
        assert_eq!(schedule(Decay::Constant).factor(100), 1.0);
    }

    #[test]
    fn record_round_trips() {
        let mut s = schedule(Decay::Cosine);
        for _ in 0..7 {
            s.step();
        }
        let mut t = schedule(Decay::Cosine);
        t.load_record(s.to_record());
        assert_eq!(t.step, 7);
        assert_eq!(t.step(), s.step());
    }
}
