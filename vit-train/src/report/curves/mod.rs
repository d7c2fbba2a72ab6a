//! Training curves: reads the `metrics.csv` written by [`crate::report::renderer::ProgressRenderer`] and
//! draws a PNG with three stacked panels sharing the step axis: loss (train and valid), accuracy
//! (train and valid, plus valid top-5 when logged) and learning rate.
//!
//! Rendering is pure Rust: plotters' bitmap backend rasterises text with `ab_glyph`, using the
//! DejaVu Sans font embedded from the `dejavu` crate, so no system fonts or fontconfig are needed.
//! The PNG is written to a temporary file next to the target and renamed over it.

mod render;

use std::path::Path;

use anyhow::{Result, anyhow, bail};

use super::metrics_csv;
use super::png::write_png;
use render::render;

/// Size of the PNG written by [`write_curves`]: three panels of 1200×480 plus a title strip.
pub const DEFAULT_SIZE: (u32, u32) = (1200, 1500);

/// Smallest accepted image; below this the panels have no room for axes and labels.
const MIN_SIZE: (u32, u32) = (320, 360);

/// Reads the metrics file `csv` and writes the training-curve PNG to `out_png` at [`DEFAULT_SIZE`].
pub fn write_curves(csv: &Path, out_png: &Path) -> Result<()> {
    write_curves_sized(csv, out_png, DEFAULT_SIZE.0, DEFAULT_SIZE.1)
}

/// Like [`write_curves`], with an explicit image size in pixels.
///
/// A CSV holding only the header (no rows yet) gives a valid PNG whose panels say "no data";
/// a missing, empty or header-less file is an error.
pub fn write_curves_sized(csv: &Path, out_png: &Path, width: u32, height: u32) -> Result<()> {
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
        bail!("curve image size {width}x{height} is too small (minimum {}x{})", MIN_SIZE.0, MIN_SIZE.1);
    }
    let rows = metrics_csv::read(csv)?.into_iter().map(Row::from).collect();
    let curves = Curves::from_rows(dedupe_restarts(rows));

    let title = match csv.parent().and_then(|p| p.file_name()) {
        Some(run) => format!("{}: training curves", run.to_string_lossy()),
        None => "training curves".to_string(),
    };
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    render(&curves, &title, &mut buf, width, height)?;
    let img = image::RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| anyhow!("internal error: image buffer has the wrong size"))?;
    write_png(&img, out_png).map_err(|e| anyhow!("cannot write curves to {}: {e:#}", out_png.display()))
}

/// The values of a metrics.csv row the curves draw; `None` where the cell is empty or not finite.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    step: f64,
    split: String,
    loss: Option<f64>,
    accuracy: Option<f64>,
    top5: Option<f64>,
    lr: Option<f64>,
}

impl From<metrics_csv::Row> for Row {
    fn from(r: metrics_csv::Row) -> Self {
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
        Row {
            step: r.step as f64,
            split: r.split,
            loss: finite(r.loss),
            accuracy: finite(r.accuracy),
            top5: finite(r.top5),
            lr: finite(r.lr),
        }
    }
}

/// A resumed run appends rows whose steps go back to the checkpoint it resumed from; within
/// each split, a row supersedes the earlier rows whose step is not below its own, so the curves
/// show the run that continued instead of a zig-zag through both.
fn dedupe_restarts(rows: Vec<Row>) -> Vec<Row> {
    let mut by_split: Vec<(String, Vec<Row>)> = Vec::new();
    for row in rows {
        let idx = match by_split.iter().position(|(s, _)| *s == row.split) {
            Some(i) => i,
            None => {
                by_split.push((row.split.clone(), Vec::new()));
                by_split.len() - 1
            }
        };
        let kept = &mut by_split[idx].1;
        while kept.last().is_some_and(|last| last.step >= row.step) {
            kept.pop();
        }
        kept.push(row);
    }
    by_split.into_iter().flat_map(|(_, rows)| rows).collect()
}

pub(super) type Points = Vec<(f64, f64)>;

#[derive(Debug, Default)]
pub(super) struct Curves {
    train_loss: Points,
    valid_loss: Points,
    train_acc: Points,
    valid_acc: Points,
    valid_top5: Points,
    ema_loss: Points,
    ema_acc: Points,
    lr: Points,
}

impl Curves {
    fn from_rows(rows: Vec<Row>) -> Self {
        let mut c = Curves::default();
        for r in rows {
            let push = |pts: &mut Points, v: Option<f64>| {
                if let Some(v) = v {
                    pts.push((r.step, v));
                }
            };
            match r.split.as_str() {
                "train" => {
                    push(&mut c.train_loss, r.loss);
                    push(&mut c.train_acc, r.accuracy);
                    push(&mut c.lr, r.lr);
                }
                "valid" | "validation" | "val" => {
                    push(&mut c.valid_loss, r.loss);
                    push(&mut c.valid_acc, r.accuracy);
                    push(&mut c.valid_top5, r.top5);
                    // The lr of a valid row (if any) is the one the epoch ended with; the train
                    // rows already carry it, so it is not drawn twice.
                }
                "valid_ema" => {
                    push(&mut c.ema_loss, r.loss);
                    push(&mut c.ema_acc, r.accuracy);
                }
                _ => {}
            }
        }
        for pts in [
            &mut c.train_loss,
            &mut c.valid_loss,
            &mut c.train_acc,
            &mut c.valid_acc,
            &mut c.valid_top5,
            &mut c.ema_loss,
            &mut c.ema_acc,
            &mut c.lr,
        ] {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        c
    }

    fn step_range(&self) -> (f64, f64) {
        let all = [
            &self.train_loss,
            &self.valid_loss,
            &self.train_acc,
            &self.valid_acc,
            &self.valid_top5,
            &self.ema_loss,
            &self.ema_acc,
            &self.lr,
        ];
        let steps = all.iter().flat_map(|pts| pts.iter().map(|p| p.0));
        let (lo, hi) = min_max(steps).unwrap_or((0.0, 1.0));
        let lo = lo.min(0.0);
        // At least ten steps wide, so an almost empty run still gets integer tick labels.
        if hi - lo < 10.0 { (lo, lo + 10.0) } else { (lo, hi) }
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Y range over the given series with 5% padding; never empty.
pub(super) fn value_range(series: &[&Points], floor_at_zero: bool) -> (f64, f64) {
    let Some((lo, hi)) = min_max(series.iter().flat_map(|pts| pts.iter().map(|p| p.1))) else {
        return (0.0, 1.0);
    };
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.05
    } else if hi != 0.0 {
        hi.abs() * 0.1
    } else {
        1.0
    };
    // Non-negative quantities (loss, accuracy, lr) keep a floor at zero instead of padding below it.
    let padded_lo = if floor_at_zero && lo >= 0.0 { (lo - pad).max(0.0) } else { lo - pad };
    (padded_lo, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::render::{LR_COLOR, TOP5_COLOR, TRAIN_COLOR, VALID_COLOR};
    use super::*;
    use plotters::style::RGBColor;
    use std::fs;

    const HEADER: &str = "step,epoch,split,loss,accuracy,top5,lr,images_per_sec\n";

    fn synthetic_csv() -> String {
        let mut s = String::from(HEADER);
        for epoch in 1..=3u32 {
            for i in 1..=5u32 {
                let step = (epoch - 1) * 50 + i * 10;
                let t = step as f64;
                let loss = 2.3 * (-t / 80.0).exp() + 0.2;
                let acc = 100.0 - 90.0 * (-t / 60.0).exp();
                let lr = 1e-3 * (t / 150.0 * std::f64::consts::PI).cos().max(0.0) + 1e-5;
                s += &format!("{step},{epoch},train,{loss:.4},{acc:.2},,{lr:.3e},812.5\n");
            }
            let step = epoch * 50;
            s += &format!(
                "{step},{epoch},valid,{:.4},{:.2},{:.2},,2400\n",
                1.5 / epoch as f64,
                50.0 + 10.0 * epoch as f64,
                80.0 + 5.0 * epoch as f64
            );
        }
        s
    }

    fn decode(path: &Path) -> image::RgbImage {
        image::open(path).expect("decodable PNG").to_rgb8()
    }

    /// Counts pixels that are neither white nor a light grid grey: text, axes and curves.
    fn dark_pixels(img: &image::RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        let mut n = 0;
        for y in y0..y1.min(img.height()) {
            for x in x0..x1.min(img.width()) {
                let p = img.get_pixel(x, y).0;
                if p.iter().all(|&c| c < 100) {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn writes_decodable_png_of_requested_size() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("metrics.csv");
        fs::write(&csv, synthetic_csv()).unwrap();
        let png = dir.path().join("curves.png");
        write_curves_sized(&csv, &png, 900, 1000).unwrap();
        let img = decode(&png);
        assert_eq!(img.dimensions(), (900, 1000));
        // Text is rasterised: the title strip (no axes or curves in it) has dark glyph pixels.
        assert!(dark_pixels(&img, 0, 0, 900, 30) > 50, "title text was not rendered");
        // The curve colours are present.
        let has = |c: RGBColor| img.pixels().any(|p| p.0 == [c.0, c.1, c.2]);
        assert!(has(TRAIN_COLOR) && has(VALID_COLOR) && has(LR_COLOR) && has(TOP5_COLOR));
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        write_curves(&csv, &png).unwrap();
        assert_eq!(decode(&png).dimensions(), DEFAULT_SIZE);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("nope.csv");
        let err = write_curves(&csv, &dir.path().join("c.png")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("cannot read metrics file") && msg.contains("nope.csv"), "{msg}");
        assert!(!dir.path().join("c.png").exists());
    }

    #[test]
    fn empty_and_header_only_files() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("metrics.csv");
        let png = dir.path().join("c.png");

        fs::write(&csv, "").unwrap();
        let msg = format!("{:#}", write_curves(&csv, &png).unwrap_err());
        assert!(msg.contains("empty"), "{msg}");

        fs::write(&csv, "a,b,c\n1,2,3\n").unwrap();
        let msg = format!("{:#}", write_curves(&csv, &png).unwrap_err());
        assert!(msg.contains("no `step` column"), "{msg}");

        fs::write(&csv, HEADER).unwrap();
        write_curves_sized(&csv, &png, 640, 720).unwrap();
        assert_eq!(decode(&png).dimensions(), (640, 720));
    }

    #[test]
    fn one_row_odd_values_and_tiny_size() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("metrics.csv");
        let png = dir.path().join("c.png");
        fs::write(&csv, format!("{HEADER}7,1,train,NaN,inf,,0,\n")).unwrap();
        write_curves_sized(&csv, &png, 400, 400).unwrap();
        fs::write(&csv, format!("{HEADER}7,1,train,1.5,20,,1e-3,100\n12,1,valid,1.4,22,60,,\n3,1,tr")).unwrap();
        write_curves_sized(&csv, &png, 400, 400).unwrap();
        assert_eq!(decode(&png).dimensions(), (400, 400));
        assert!(write_curves_sized(&csv, &png, 10, 10).is_err());
    }

    #[test]
    fn resumed_rows_supersede_the_abandoned_ones() {
        let text = format!(
            "{HEADER}10,1,train,2.0,,,,\n20,1,valid,1.9,,,,\n30,2,train,1.8,,,,\n40,2,train,1.7,,,,\n\
             30,2,train,1.5,,,,\n40,2,train,1.4,,,,\n50,2,valid,1.3,,,,\n"
        );
        let rows = dedupe_restarts(metrics_csv::parse(&text).unwrap().into_iter().map(Row::from).collect());
        let train: Vec<(f64, Option<f64>)> =
            rows.iter().filter(|r| r.split == "train").map(|r| (r.step, r.loss)).collect();
        assert_eq!(train, vec![(10.0, Some(2.0)), (30.0, Some(1.5)), (40.0, Some(1.4))]);
        assert_eq!(rows.iter().filter(|r| r.split == "valid").count(), 2);
    }

    #[test]
    fn weight_average_rows_become_their_own_series() {
        let text = format!(
            "{HEADER}10,1,train,2.0,30,,1e-3,\n10,1,valid,1.9,35,,,\n10,1,valid_ema,1.7,41,,,\n\
             20,2,valid,1.5,50,,,\n20,2,valid_ema,1.4,55,,,\n20,2,test,1.3,57,,,\n"
        );
        let curves = Curves::from_rows(metrics_csv::parse(&text).unwrap().into_iter().map(Row::from).collect());
        assert_eq!(curves.ema_loss, vec![(10.0, 1.7), (20.0, 1.4)]);
        assert_eq!(curves.ema_acc, vec![(10.0, 41.0), (20.0, 55.0)]);
        assert_eq!(curves.valid_acc, vec![(10.0, 35.0), (20.0, 50.0)], "test rows are not validation points");
    }
}
