//! Dynamic loss scaling for float16 training, as PyTorch's `torch.amp.GradScaler`: the loss is
//! multiplied by a scale S before the backward pass so that small gradients survive float16, the
//! gradients are divided by S before clipping and the optimizer step, and a step whose gradients
//! overflowed is skipped while S halves; after `growth_interval` finite steps in a row S doubles.

use serde::{Deserialize, Serialize};

/// The scaler's settings and state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The current scale S.
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub finite_steps: usize,
    /// Overflowing steps in a row.
    pub overflows_in_a_row: usize,
    /// Steps skipped for an overflow so far.
    pub skipped: usize,
    /// Finite steps in a row before the scale doubles (GradScaler: 2000).
    pub growth_interval: usize,
}

/// GradScaler's initial scale, 2^16.
pub const INITIAL_SCALE: f64 = 65536.0;

/// Overflows in a row after which the run is taken to be diverging rather than overflowing: the
/// scale has then halved from 2^16 down to 2^-24, below which no float16 gradient is
/// representable.
pub const MAX_OVERFLOWS_IN_A_ROW: usize = 40;

impl Default for LossScaler {
    fn default() -> Self {
        Self { scale: INITIAL_SCALE, finite_steps: 0, overflows_in_a_row: 0, skipped: 0, growth_interval: 2000 }
    }
}

/// What the scaler decided about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaledStep {
    /// The gradients were finite: apply the step.
    Apply,
    /// They overflowed: skip it (the scale was halved).
    Skip,
    /// They overflowed too many times in a row: the run diverged.
    Diverged,
}

impl LossScaler {
    /// Updates the scale after a step whose unscaled gradient norm was `norm`.
    pub fn update(&mut self, norm: f64) -> ScaledStep {
        if norm.is_finite() {
            self.overflows_in_a_row = 0;
            self.finite_steps += 1;
            if self.finite_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.finite_steps = 0;
            }
            return ScaledStep::Apply;
        }
        self.scale *= 0.5;
        self.finite_steps = 0;
        self.overflows_in_a_row += 1;
        self.skipped += 1;
        if self.overflows_in_a_row > MAX_OVERFLOWS_IN_A_ROW { ScaledStep::Diverged } else { ScaledStep::Skip }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_and_skips_on_overflow_and_doubles_after_the_growth_interval() {
        let mut s = LossScaler { growth_interval: 3, ..LossScaler::default() };
        assert_eq!(s.update(f64::INFINITY), ScaledStep::Skip);
        assert_eq!(s.scale, 32768.0);
        assert_eq!((s.update(1.0), s.update(2.0)), (ScaledStep::Apply, ScaledStep::Apply));
        assert_eq!(s.scale, 32768.0);
        assert_eq!(s.update(0.5), ScaledStep::Apply);
        assert_eq!(s.scale, 65536.0, "3 finite steps in a row");
        assert_eq!(s.update(f64::NAN), ScaledStep::Skip);
        assert_eq!((s.scale, s.skipped, s.finite_steps), (32768.0, 2, 0));
        let outcomes: Vec<ScaledStep> = (0..MAX_OVERFLOWS_IN_A_ROW).map(|_| s.update(f64::NAN)).collect();
        assert_eq!(outcomes.last(), Some(&ScaledStep::Diverged));
        assert!(outcomes[..MAX_OVERFLOWS_IN_A_ROW - 1].iter().all(|o| *o == ScaledStep::Skip));
    }
}
