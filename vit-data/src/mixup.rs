//! Mixup and CutMix with the semantics and setting names of timm's `timm.data.mixup.Mixup`
//! (timm 1.0.x), on a host batch of normalised `f32` images `[batch, channels, height, width]`
//! (row-major) and integer labels, producing soft targets `[batch, num_classes]`.
//!
//! As in timm, sample `i` of a batch of `n` is mixed with its *partner* `n - 1 - i` (the batch
//! flipped along its first axis), always from the unmodified originals:
//!
//! - mixup: `x[i] = x[i] * lam + x[n-1-i] * (1 - lam)`;
//! - cutmix: the partner's box `[y_low, y_high) x [x_low, x_high)` (all channels) is pasted into
//!   `x[i]`, and `lam` becomes `1 - box area / image area` when `correct_lam` is set or
//!   `cutmix_minmax` is used;
//! - targets: `t[i] = y[i] * lam + y[n-1-i] * (1 - lam)` with `y` the one-hot labels smoothed to
//!   `off = label_smoothing / num_classes`, `on = 1 - label_smoothing + off` ([`mixup_target`]).
//!
//! Modes ([`MixupMode`]): `batch` draws one decision (lam, mixup or cutmix, box) for the whole
//! batch, `pair` one per pair `(i, n-1-i)` (both members share it), `elem` one per sample.
//! Decisions are drawn by [`Mixup::sample_decisions`] in timm's order of draws (from a
//! caller-supplied [`rand::Rng`], not numpy's generator) and applied by
//! [`Mixup::apply_decisions`], which tests can also call with explicit decisions.
//!
//! **Odd batch sizes.** timm asserts an even batch (its loader uses `drop_last` with mixup). Here
//! an odd batch is accepted: its middle sample (index `n / 2`) is its own partner and is left
//! unmixed, with `lam = 1` and its smoothed one-hot target, whatever its decision says.
//!
//! **Precision.** The arithmetic follows timm's dtypes: in `batch` mode `lam` is a float64 and the
//! image and target weights are `lam` and `1 - lam` rounded to float32; in `pair`/`elem` mode
//! timm keeps per-sample `lam` in float32 (`lam` is rounded to float32 first and `1 - lam` is
//! computed in float32). One difference remains: timm computes `pair`/`elem` cutmix box sizes
//! from the float32 `lam` and this module in float64, so a box side can differ by one pixel when
//! `size * sqrt(1 - lam)` lies within float32 rounding of an integer.

use rand::Rng;

use crate::error::{DataError, Result};
use crate::spelling::spelled_enum;

/// How mixing decisions are drawn: per `batch`, per `pair` of samples `(i, n-1-i)`, or per
/// sample (`elem`), as timm's `Mixup(mode=...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MixupMode {
    /// `batch`: one lam, one mixup-or-cutmix choice and one box for the whole batch.
    #[default]
    Batch,
    /// `pair`: one decision per pair `(i, n-1-i)`, shared by both members.
    Pair,
    /// `elem`: one decision per sample.
    Elem,
}

spelled_enum!(MixupMode, "mixup mode", [
    Batch => "batch",
    Pair => "pair",
    Elem => "elem",
]);

impl MixupMode {
    /// Parses one of [`VARIANTS`](Self::VARIANTS) (exactly), with [`DataError::InvalidSetting`]
    /// for `mode` naming the accepted spellings and the closest one.
    pub fn parse(text: &str) -> Result<Self> {
        text.parse().map_err(|e: crate::spelling::UnknownSpelling| DataError::setting("mode", e.to_string()))
    }
}

/// The settings of timm's `Mixup`, under timm's names. Build a [`Mixup`] from it with
/// [`Mixup::new`], which validates it.
#[derive(Clone, Debug, PartialEq)]
pub struct MixupConfig {
    /// Mixup's Beta(alpha, alpha) parameter; mixup is active when `> 0` (timm `mixup_alpha`,
    /// train.py `--mixup`).
    pub mixup_alpha: f64,
    /// CutMix's Beta(alpha, alpha) parameter; cutmix is active when `> 0` (timm `cutmix_alpha`,
    /// train.py `--cutmix`). Forced to 1 when `cutmix_minmax` is set, as timm does.
    pub cutmix_alpha: f64,
    /// CutMix box side limits as fractions of the image side, `[min, max]`; when set, cutmix is
    /// active and draws its box from these instead of from lam (timm `cutmix_minmax`).
    pub cutmix_minmax: Option<[f64; 2]>,
    /// Probability of mixing a batch (`batch` mode) or a sample/pair (timm `prob`, train.py
    /// `--mixup-prob`).
    pub prob: f64,
    /// Probability of cutmix instead of mixup when both are active (timm `switch_prob`,
    /// train.py `--mixup-switch-prob`).
    pub switch_prob: f64,
    /// Per batch, pair or element (timm `mode`, train.py `--mixup-mode`).
    pub mode: MixupMode,
    /// Recompute lam from the area of the (clipped) cutmix box (timm `correct_lam`).
    pub correct_lam: bool,
    /// Label smoothing built into the soft targets (timm `label_smoothing`, train.py
    /// `--smoothing`).
    pub label_smoothing: f64,
    /// Number of classes, the width of the soft targets (timm `num_classes`).
    pub num_classes: usize,
}

impl MixupConfig {
    /// timm's defaults (`mixup_alpha = 1`, `cutmix_alpha = 0`, no `cutmix_minmax`, `prob = 1`,
    /// `switch_prob = 0.5`, `mode = batch`, `correct_lam = true`, `label_smoothing = 0.1`) for
    /// `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        MixupConfig {
            mixup_alpha: 1.0,
            cutmix_alpha: 0.0,
            cutmix_minmax: None,
            prob: 1.0,
            switch_prob: 0.5,
            mode: MixupMode::Batch,
            correct_lam: true,
            label_smoothing: 0.1,
            num_classes,
        }
    }
}

/// A cutmix box, rows `y_low..y_high` and columns `x_low..x_high` (timm's `(yl, yh, xl, xh)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CutBox {
    /// First row.
    pub y_low: usize,
    /// One past the last row.
    pub y_high: usize,
    /// First column.
    pub x_low: usize,
    /// One past the last column.
    pub x_high: usize,
}

impl CutBox {
    /// Number of pixels in the box (0 for an empty box).
    pub fn area(&self) -> usize {
        self.y_high.saturating_sub(self.y_low) * self.x_high.saturating_sub(self.x_low)
    }
}

/// The box timm's `rand_bbox` makes for `lam` once it has drawn the centre `(cy, cx)`: sides
/// `int(height * sqrt(1 - lam))` and `int(width * sqrt(1 - lam))` around the centre, clipped to
/// the image. `lam` must be in `[0, 1]`.
pub fn bbox_at(height: usize, width: usize, lam: f64, cy: usize, cx: usize) -> CutBox {
    let ratio = (1.0 - lam).sqrt();
    let cut_h = (height as f64 * ratio) as i64;
    let cut_w = (width as f64 * ratio) as i64;
    let (h, w, cy, cx) = (height as i64, width as i64, cy as i64, cx as i64);
    CutBox {
        y_low: (cy - cut_h / 2).clamp(0, h) as usize,
        y_high: (cy + (cut_h + 1) / 2).clamp(0, h) as usize,
        x_low: (cx - cut_w / 2).clamp(0, w) as usize,
        x_high: (cx + (cut_w + 1) / 2).clamp(0, w) as usize,
    }
}

/// timm's `rand_bbox` (without its `margin`, which timm's `Mixup` never sets): a box of sides
/// `sqrt(1 - lam)` times the image's, centred on a uniformly drawn pixel (row first, then
/// column), clipped to the image. Errors for an empty image or `lam` outside `[0, 1]`.
pub fn rand_bbox<R: Rng + ?Sized>(height: usize, width: usize, lam: f64, rng: &mut R) -> Result<CutBox> {
    check_image(height, width)?;
    if !(0.0..=1.0).contains(&lam) {
        return Err(DataError::setting("lam", format!("must be in [0, 1], got {lam}")));
    }
    let cy = rng.random_range(0..height);
    let cx = rng.random_range(0..width);
    Ok(bbox_at(height, width, lam, cy, cx))
}

/// timm's `rand_bbox_minmax`: box height drawn uniformly in
/// `int(height * min)..int(height * max)`, width likewise, then the top-left corner uniformly so
/// that the box fits. Errors when a range is empty (the image is too small for `minmax`).
pub fn rand_bbox_minmax<R: Rng + ?Sized>(height: usize, width: usize, minmax: [f64; 2], rng: &mut R) -> Result<CutBox> {
    check_image(height, width)?;
    let (h_lo, h_hi) = minmax_range(height, minmax)?;
    let (w_lo, w_hi) = minmax_range(width, minmax)?;
    let cut_h = rng.random_range(h_lo..h_hi);
    let cut_w = rng.random_range(w_lo..w_hi);
    let y_low = rng.random_range(0..=height - cut_h);
    let x_low = rng.random_range(0..=width - cut_w);
    Ok(CutBox { y_low, y_high: y_low + cut_h, x_low, x_high: x_low + cut_w })
}

/// `1 - box area / image area`: the share of the image a cutmix box leaves to the sample itself
/// (timm's lam correction).
pub fn corrected_lam(bbox: &CutBox, height: usize, width: usize) -> f64 {
    1.0 - bbox.area() as f64 / (height * width) as f64
}

/// timm's `cutmix_bbox_and_lam`: a box from [`rand_bbox_minmax`] when `ratio_minmax` is set,
/// else from [`rand_bbox`] for `lam`; and lam, corrected to the box's area
/// ([`corrected_lam`]) when `correct_lam` is set or `ratio_minmax` is used, else `lam` unchanged.
pub fn cutmix_bbox_and_lam<R: Rng + ?Sized>(
    height: usize,
    width: usize,
    lam: f64,
    ratio_minmax: Option<[f64; 2]>,
    correct_lam: bool,
    rng: &mut R,
) -> Result<(CutBox, f64)> {
    let bbox = match ratio_minmax {
        Some(minmax) => rand_bbox_minmax(height, width, minmax, rng)?,
        None => rand_bbox(height, width, lam, rng)?,
    };
    let lam = if correct_lam || ratio_minmax.is_some() { corrected_lam(&bbox, height, width) } else { lam };
    Ok((bbox, lam))
}

/// timm's `mixup_target` for one batch-wide `lam` (float64, as timm's `batch` mode): smoothed
/// one-hot targets mixed with the flipped batch's, `[labels.len(), num_classes]` row-major.
/// Errors for a label outside `0..num_classes`.
pub fn mixup_target(labels: &[i64], num_classes: usize, lam: f64, smoothing: f64) -> Result<Vec<f32>> {
    let weights = vec![batch_weights(lam); labels.len()];
    mix_targets(labels, num_classes, &weights, smoothing)
}

/// timm's `mixup_target` with one float32 `lam` per sample (timm's `pair`/`elem` modes):
/// `t[i] = y[i] * lams[i] + y[n-1-i] * (1 - lams[i])`. Errors for a label outside
/// `0..num_classes` or when `lams` and `labels` differ in length.
pub fn mixup_target_per_sample(labels: &[i64], num_classes: usize, lams: &[f32], smoothing: f64) -> Result<Vec<f32>> {
    if lams.len() != labels.len() {
        return Err(DataError::setting(
            "lam",
            format!("{} per-sample lams for {} labels; give one per sample", lams.len(), labels.len()),
        ));
    }
    let weights: Vec<(f32, f32)> = lams.iter().map(|&l| (l, 1.0 - l)).collect();
    mix_targets(labels, num_classes, &weights, smoothing)
}

/// The label that dominates each mixed sample, for reporting training accuracy: the sample's own
/// label when its `lam >= 0.5`, else its partner's (`labels[n-1-i]`). `lambdas` are the
/// per-sample lams of a [`Mixed`] (1 for an unmixed sample).
///
/// # Panics
/// If `labels` and `lambdas` differ in length.
pub fn dominant_labels(labels: &[i64], lambdas: &[f32]) -> Vec<i64> {
    assert_eq!(labels.len(), lambdas.len(), "one lam per label");
    let n = labels.len();
    (0..n).map(|i| if lambdas[i] >= 0.5 { labels[i] } else { labels[n - 1 - i] }).collect()
}

/// A draw from Beta(`a`, `b`) (`a`, `b` > 0), as `X / (X + Y)` with `X ~ Gamma(a)` and
/// `Y ~ Gamma(b)` (Marsaglia–Tsang, with the `U^(1/a)` boost below 1), computed from the
/// logarithms so that small shapes (where both gammas underflow) still give a value in `[0, 1]`.
/// numpy's `random.beta` uses other algorithms, so the values differ from timm's, not the law.
pub fn sample_beta<R: Rng + ?Sized>(rng: &mut R, a: f64, b: f64) -> f64 {
    let ln_x = ln_gamma_sample(rng, a);
    let ln_y = ln_gamma_sample(rng, b);
    1.0 / (1.0 + (ln_y - ln_x).exp())
}

/// One mixing decision: the drawn `lam` and, for cutmix, the box pasted from the partner.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixDecision {
    /// The drawn lam in `[0, 1]`; 1 means "not mixed". For cutmix it is replaced by the box's
    /// [`corrected_lam`] when `correct_lam` is set or `cutmix_minmax` is used.
    pub lam: f64,
    /// `Some(box)` for cutmix with that box, `None` for mixup (a blend).
    pub cut: Option<CutBox>,
}

impl MixDecision {
    /// No mixing (`lam = 1`).
    pub const NONE: MixDecision = MixDecision { lam: 1.0, cut: None };
}

/// The decisions for one batch; the variant, not the [`Mixup`]'s mode, decides how they apply.
#[derive(Clone, Debug, PartialEq)]
pub enum MixDecisions {
    /// `batch` mode: one decision for every sample; `lam` is used in float64.
    Batch(MixDecision),
    /// `pair` mode: one decision per pair `(i, n-1-i)`, `i < n / 2` (`n / 2` of them); `lam` is
    /// rounded to float32 as in timm.
    Pairs(Vec<MixDecision>),
    /// `elem` mode: one decision per sample (`n` of them; an odd batch's middle one is ignored);
    /// `lam` is rounded to float32 as in timm.
    Elements(Vec<MixDecision>),
}

/// What mixing a batch produced besides the mixed images.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixed {
    /// Soft targets, `[batch, num_classes]` row-major; each row sums to 1 (up to rounding).
    pub targets: Vec<f32>,
    /// The final lam of each sample (its own share, after cutmix correction; 1 when unmixed), as
    /// used for its target.
    pub lambdas: Vec<f32>,
    /// Width of a target row.
    pub num_classes: usize,
    /// The decisions that were applied.
    pub decisions: MixDecisions,
}

impl Mixed {
    /// [`dominant_labels`] of `labels` (the batch's original labels) under these lambdas.
    pub fn dominant_labels(&self, labels: &[i64]) -> Vec<i64> {
        dominant_labels(labels, &self.lambdas)
    }
}

/// timm's `Mixup`: validated settings, plus timm's `mixup_enabled` switch.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixup {
    config: MixupConfig,
    enabled: bool,
}

/// What happens to one sample: weights for its own and its partner's target (and blend), and
/// what is done to its pixels.
#[derive(Clone, Copy, Debug)]
struct SampleMix {
    own: f32,
    partner: f32,
    op: Op,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Keep,
    Blend,
    Paste(CutBox),
}

const UNMIXED: SampleMix = SampleMix { own: 1.0, partner: 0.0, op: Op::Keep };

impl Mixup {
    /// Validates `config` (every error names the field): alphas finite and `>= 0`; `prob`,
    /// `switch_prob` and `label_smoothing` in `[0, 1]`; `cutmix_minmax` with
    /// `0 <= min < max <= 1`; `num_classes > 0`; and mixing switched on by `mixup_alpha > 0`,
    /// `cutmix_alpha > 0` or `cutmix_minmax`. As timm does, `cutmix_minmax` forces
    /// `cutmix_alpha` to 1 (see [`config`](Self::config)).
    pub fn new(config: MixupConfig) -> Result<Self> {
        let mut config = config;
        for (name, alpha) in [("mixup_alpha", config.mixup_alpha), ("cutmix_alpha", config.cutmix_alpha)] {
            if !(alpha.is_finite() && alpha >= 0.0) {
                return Err(DataError::setting(name, format!("must be a finite number >= 0 (0 = off), got {alpha}")));
            }
        }
        for (name, p) in
            [("prob", config.prob), ("switch_prob", config.switch_prob), ("label_smoothing", config.label_smoothing)]
        {
            if !(0.0..=1.0).contains(&p) {
                return Err(DataError::setting(name, format!("must be in [0, 1], got {p}")));
            }
        }
        if let Some([lo, hi]) = config.cutmix_minmax
            && !(0.0 <= lo && lo < hi && hi <= 1.0)
        {
            return Err(DataError::setting(
                "cutmix_minmax",
                format!(
                    "must be [min, max] with 0 <= min < max <= 1 (fractions of the image side), got \
                     [{lo}, {hi}]"
                ),
            ));
        }
        if config.num_classes == 0 {
            return Err(DataError::setting("num_classes", "must be positive"));
        }
        if config.mixup_alpha == 0.0 && config.cutmix_alpha == 0.0 && config.cutmix_minmax.is_none() {
            return Err(DataError::setting(
                "mixup_alpha",
                "mixup_alpha and cutmix_alpha are 0 and cutmix_minmax is unset, so nothing would be \
                 mixed: set mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax (or build no Mixup)",
            ));
        }
        if config.cutmix_minmax.is_some() {
            config.cutmix_alpha = 1.0;
        }
        Ok(Mixup { config, enabled: true })
    }

    /// The settings in effect (with `cutmix_alpha = 1` when `cutmix_minmax` is set).
    pub fn config(&self) -> &MixupConfig {
        &self.config
    }

    /// Whether mixing is on (timm's `mixup_enabled`; on after [`new`](Self::new)).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Switches mixing on or off (timm's `mixup_enabled`, which its train loop turns off from
    /// `--mixup-off-epoch`). Off: no draws, every sample unmixed, targets smoothed one-hot.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Checks that `cutmix_minmax` (if set) gives non-empty box-size ranges on a
    /// `height` x `width` image: `int(side * min) < int(side * max)` for both sides.
    pub fn check_image_size(&self, height: usize, width: usize) -> Result<()> {
        check_image(height, width)?;
        if let Some(minmax) = self.config.cutmix_minmax {
            minmax_range(height, minmax)?;
            minmax_range(width, minmax)?;
        }
        Ok(())
    }

    /// Draws the decisions for a batch of `batch` samples of `height` x `width`, in timm's order
    /// of draws: `batch` mode: `U < prob`, then (both active) `U < switch_prob`, then lam ~ Beta,
    /// then the box if cutmix and `lam != 1`; `pair`/`elem` mode (over `batch / 2` or `batch`
    /// slots): all switch draws, all cutmix lams, all mixup lams, all `U < prob` draws, then the
    /// boxes slot by slot.
    pub fn sample_decisions<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        batch: usize,
        height: usize,
        width: usize,
    ) -> Result<MixDecisions> {
        self.check_image_size(height, width)?;
        let c = &self.config;
        let (mix_on, cut_on) = (c.mixup_alpha > 0.0, c.cutmix_alpha > 0.0);
        match c.mode {
            MixupMode::Batch => {
                let mut lam = 1.0;
                let mut use_cut = false;
                if self.enabled && rng.random::<f64>() < c.prob {
                    use_cut = if mix_on && cut_on { rng.random::<f64>() < c.switch_prob } else { cut_on };
                    let alpha = if use_cut { c.cutmix_alpha } else { c.mixup_alpha };
                    lam = sample_beta(rng, alpha, alpha);
                }
                let cut = if use_cut && lam != 1.0 { Some(self.draw_box(rng, height, width, lam)?) } else { None };
                Ok(MixDecisions::Batch(MixDecision { lam, cut }))
            }
            MixupMode::Pair | MixupMode::Elem => {
                let slots = if c.mode == MixupMode::Pair { batch / 2 } else { batch };
                let mut lams = vec![1f32; slots];
                let mut use_cut = vec![false; slots];
                if self.enabled {
                    let drawn: Vec<f64> = if mix_on && cut_on {
                        use_cut = (0..slots).map(|_| rng.random::<f64>() < c.switch_prob).collect();
                        let cut_lams: Vec<f64> =
                            (0..slots).map(|_| sample_beta(rng, c.cutmix_alpha, c.cutmix_alpha)).collect();
                        let mix_lams: Vec<f64> =
                            (0..slots).map(|_| sample_beta(rng, c.mixup_alpha, c.mixup_alpha)).collect();
                        (0..slots).map(|i| if use_cut[i] { cut_lams[i] } else { mix_lams[i] }).collect()
                    } else {
                        use_cut = vec![cut_on; slots];
                        let alpha = if cut_on { c.cutmix_alpha } else { c.mixup_alpha };
                        (0..slots).map(|_| sample_beta(rng, alpha, alpha)).collect()
                    };
                    for (lam, drawn) in lams.iter_mut().zip(drawn) {
                        if rng.random::<f64>() < c.prob {
                            *lam = drawn as f32;
                        }
                    }
                }
                let mut decisions = Vec::with_capacity(slots);
                for (&lam, &cut) in lams.iter().zip(&use_cut) {
                    let lam = f64::from(lam);
                    let cut = if cut && lam != 1.0 { Some(self.draw_box(rng, height, width, lam)?) } else { None };
                    decisions.push(MixDecision { lam, cut });
                }
                Ok(if c.mode == MixupMode::Pair {
                    MixDecisions::Pairs(decisions)
                } else {
                    MixDecisions::Elements(decisions)
                })
            }
        }
    }

    /// Mixes `pixels` (`shape` = `[batch, channels, height, width]`, row-major) in place with
    /// explicit `decisions` and returns the soft targets of `labels` (class ids in
    /// `0..num_classes`). Deterministic: this is what [`apply`](Self::apply) does after drawing.
    /// Errors on mismatched lengths, a label out of range, a lam outside `[0, 1]`, a box outside
    /// the image, or the wrong number of pair/element decisions.
    pub fn apply_decisions(
        &self,
        decisions: &MixDecisions,
        pixels: &mut [f32],
        shape: [usize; 4],
        labels: &[i64],
    ) -> Result<Mixed> {
        let [n, channels, height, width] = shape;
        let per_image = channels * height * width;
        if pixels.len() != n * per_image {
            return Err(DataError::setting(
                "pixel_values",
                format!("{} values do not make a {n}x{channels}x{height}x{width} batch", pixels.len()),
            ));
        }
        if labels.len() != n {
            return Err(DataError::setting("labels", format!("{} labels for a batch of {n}", labels.len())));
        }
        let plan = self.plan(decisions, n, height, width)?;
        let weights: Vec<(f32, f32)> = plan.iter().map(|s| (s.own, s.partner)).collect();
        let targets = mix_targets(labels, self.config.num_classes, &weights, self.config.label_smoothing)?;
        if per_image > 0 {
            for i in 0..n / 2 {
                let j = n - 1 - i;
                let (low, high) = pixels.split_at_mut(j * per_image);
                let xi = &mut low[i * per_image..(i + 1) * per_image];
                let xj = &mut high[..per_image];
                if matches!(plan[i].op, Op::Keep) && matches!(plan[j].op, Op::Keep) {
                    continue;
                }
                let (orig_i, orig_j) = (xi.to_vec(), xj.to_vec());
                mix_one(xi, &orig_j, plan[i], [channels, height, width]);
                mix_one(xj, &orig_i, plan[j], [channels, height, width]);
            }
        }
        Ok(Mixed {
            targets,
            lambdas: plan.iter().map(|s| s.own).collect(),
            num_classes: self.config.num_classes,
            decisions: decisions.clone(),
        })
    }

    /// Draws decisions with `rng` ([`sample_decisions`](Self::sample_decisions)) and applies them
    /// ([`apply_decisions`](Self::apply_decisions)): timm's `Mixup.__call__` on a host batch.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        pixels: &mut [f32],
        shape: [usize; 4],
        labels: &[i64],
    ) -> Result<Mixed> {
        let [n, _, height, width] = shape;
        let decisions = self.sample_decisions(rng, n, height, width)?;
        self.apply_decisions(&decisions, pixels, shape, labels)
    }

    fn draw_box<R: Rng + ?Sized>(&self, rng: &mut R, height: usize, width: usize, lam: f64) -> Result<CutBox> {
        match self.config.cutmix_minmax {
            Some(minmax) => rand_bbox_minmax(height, width, minmax, rng),
            None => rand_bbox(height, width, lam, rng),
        }
    }

    /// The lam of a cutmix decision after timm's correction.
    fn cut_lam(&self, lam: f64, bbox: &CutBox, height: usize, width: usize) -> f64 {
        if self.config.correct_lam || self.config.cutmix_minmax.is_some() {
            corrected_lam(bbox, height, width)
        } else {
            lam
        }
    }

    /// Per-sample weights and pixel operations for `decisions` on a batch of `n`.
    fn plan(&self, decisions: &MixDecisions, n: usize, height: usize, width: usize) -> Result<Vec<SampleMix>> {
        let check = |d: &MixDecision| -> Result<()> {
            if !(0.0..=1.0).contains(&d.lam) {
                return Err(DataError::setting("lam", format!("must be in [0, 1], got {}", d.lam)));
            }
            if let Some(b) = d.cut
                && !(b.y_low <= b.y_high && b.y_high <= height && b.x_low <= b.x_high && b.x_high <= width)
            {
                return Err(DataError::setting(
                    "cutmix box",
                    format!("{b:?} is not inside the {height}x{width} image"),
                ));
            }
            Ok(())
        };
        // pair/elem: float32 lam as timm's `lam_batch`.
        let per_slot = |d: &MixDecision| -> SampleMix {
            let lam = d.lam as f32;
            if lam == 1.0 {
                return UNMIXED;
            }
            match d.cut {
                Some(b) => {
                    let lam = self.cut_lam(f64::from(lam), &b, height, width) as f32;
                    SampleMix { own: lam, partner: 1.0 - lam, op: Op::Paste(b) }
                }
                None => SampleMix { own: lam, partner: 1.0 - lam, op: Op::Blend },
            }
        };
        let mut plan = vec![UNMIXED; n];
        match decisions {
            MixDecisions::Batch(d) => {
                check(d)?;
                if d.lam != 1.0 {
                    let s = match d.cut {
                        Some(b) => {
                            let (own, partner) = batch_weights(self.cut_lam(d.lam, &b, height, width));
                            SampleMix { own, partner, op: Op::Paste(b) }
                        }
                        None => {
                            let (own, partner) = batch_weights(d.lam);
                            SampleMix { own, partner, op: Op::Blend }
                        }
                    };
                    plan.fill(s);
                }
            }
            MixDecisions::Pairs(ds) => {
                if ds.len() != n / 2 {
                    return Err(DataError::setting(
                        "mode",
                        format!("{} pair decisions for a batch of {n}; pair mode needs {}", ds.len(), n / 2),
                    ));
                }
                for (i, d) in ds.iter().enumerate() {
                    check(d)?;
                    let s = per_slot(d);
                    plan[i] = s;
                    plan[n - 1 - i] = s;
                }
            }
            MixDecisions::Elements(ds) => {
                if ds.len() != n {
                    return Err(DataError::setting(
                        "mode",
                        format!("{} element decisions for a batch of {n}; elem mode needs {n}", ds.len()),
                    ));
                }
                for (i, d) in ds.iter().enumerate() {
                    check(d)?;
                    plan[i] = per_slot(d);
                }
            }
        }
        if n % 2 == 1 {
            plan[n / 2] = UNMIXED;
        }
        Ok(plan)
    }
}

/// Mixes one image `x` (`[channels, height, width]`) with its partner's original.
fn mix_one(x: &mut [f32], partner: &[f32], s: SampleMix, [channels, height, width]: [usize; 3]) {
    match s.op {
        Op::Keep => {}
        Op::Blend => {
            for (v, &p) in x.iter_mut().zip(partner) {
                *v = *v * s.own + p * s.partner;
            }
        }
        Op::Paste(b) => {
            for c in 0..channels {
                for y in b.y_low..b.y_high {
                    let row = (c * height + y) * width;
                    x[row + b.x_low..row + b.x_high].copy_from_slice(&partner[row + b.x_low..row + b.x_high]);
                }
            }
        }
    }
}

/// timm's `batch`-mode weights: float64 `lam` and `1 - lam`, each rounded to float32.
fn batch_weights(lam: f64) -> (f32, f32) {
    (lam as f32, (1.0 - lam) as f32)
}

/// `t[i] = y[i] * own_i + y[n-1-i] * partner_i` over smoothed one-hot `y`, in float32.
fn mix_targets(labels: &[i64], num_classes: usize, weights: &[(f32, f32)], smoothing: f64) -> Result<Vec<f32>> {
    if num_classes == 0 {
        return Err(DataError::setting("num_classes", "must be positive"));
    }
    for (i, &l) in labels.iter().enumerate() {
        if l < 0 || l as u64 >= num_classes as u64 {
            return Err(DataError::setting(
                "num_classes",
                format!("label {l} of sample {i} is outside 0..{num_classes}; num_classes must match the dataset"),
            ));
        }
    }
    let off64 = smoothing / num_classes as f64;
    let (off, on) = (off64 as f32, (1.0 - smoothing + off64) as f32);
    let n = labels.len();
    let mut targets = vec![0f32; n * num_classes];
    for (i, row) in targets.chunks_mut(num_classes).enumerate() {
        let (own, partner) = weights[i];
        let (a, b) = (labels[i] as usize, labels[n - 1 - i] as usize);
        for (k, t) in row.iter_mut().enumerate() {
            let ya = if k == a { on } else { off };
            let yb = if k == b { on } else { off };
            *t = ya * own + yb * partner;
        }
    }
    Ok(targets)
}

fn check_image(height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 {
        return Err(DataError::setting("image_size", format!("cutmix needs a non-empty image, got {height}x{width}")));
    }
    Ok(())
}

/// `int(side * min)..int(side * max)`, which must not be empty.
fn minmax_range(side: usize, [lo, hi]: [f64; 2]) -> Result<(usize, usize)> {
    let (a, b) = ((side as f64 * lo) as usize, (side as f64 * hi) as usize);
    if a >= b {
        return Err(DataError::setting(
            "cutmix_minmax",
            format!(
                "[{lo}, {hi}] leaves no box size for a side of {side} pixels (int({side}*{lo}) = {a} is not below \
                 int({side}*{hi}) = {b}); widen the range"
            ),
        ));
    }
    Ok((a, b))
}

/// `ln X` for `X ~ Gamma(shape, 1)`, `shape > 0`.
fn ln_gamma_sample<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        // Gamma(a) = Gamma(a + 1) * U^(1/a).
        let u = 1.0 - rng.random::<f64>();
        return ln_gamma_sample(rng, shape + 1.0) + u.ln() / shape;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = 1.0 - rng.random::<f64>();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d.ln() + v.ln();
        }
    }
}

/// A standard normal draw (Box–Muller).
fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn moments(a: f64, n: usize) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(a.to_bits());
        let xs: Vec<f64> = (0..n).map(|_| sample_beta(&mut rng, a, a)).collect();
        assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var)
    }

    #[test]
    fn beta_has_the_right_moments() {
        // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
        for a in [0.1, 0.2, 0.8, 1.0, 2.0, 5.0] {
            let (mean, var) = moments(a, 40_000);
            let want = 1.0 / (4.0 * (2.0 * a + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "alpha {a}: mean {mean}");
            assert!((var - want).abs() < 0.03 * want + 0.002, "alpha {a}: var {var}, want {want}");
        }
        // Beta(1, 1) is uniform: a quarter of the draws below 0.25.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let low = (0..40_000).filter(|_| sample_beta(&mut rng, 1.0, 1.0) < 0.25).count();
        assert!((low as f64 / 40_000.0 - 0.25).abs() < 0.01, "{low}");
        // Tiny shapes: both gammas underflow in linear space, the log form still works.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..1000 {
            let x = sample_beta(&mut rng, 1e-3, 1e-3);
            assert!((0.0..=1.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn box_geometry_is_timms() {
        // 8x8, lam 0.75: ratio 0.5, cut 4x4 centred at (4, 4) -> rows 2..6.
        assert_eq!(bbox_at(8, 8, 0.75, 4, 4), CutBox { y_low: 2, y_high: 6, x_low: 2, x_high: 6 });
        // clipped at the corner; odd cut 3 (int(7 * sqrt(0.2)) = 3): low = c - 1, high = c + 2
        assert_eq!(bbox_at(7, 7, 0.8, 0, 6), CutBox { y_low: 0, y_high: 2, x_low: 5, x_high: 7 });
        assert_eq!(bbox_at(8, 8, 1.0, 3, 3).area(), 0);
        assert_eq!(bbox_at(8, 8, 0.0, 4, 4), CutBox { y_low: 0, y_high: 8, x_low: 0, x_high: 8 });
    }
}
