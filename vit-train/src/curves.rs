//! Training curves: reads the `metrics.csv` written by [`crate::renderer::ProgressRenderer`] and
//! draws a PNG with three stacked panels sharing the step axis: loss (train and valid), accuracy
//! (train and valid, plus valid top-5 when logged) and learning rate.
//!
//! Rendering is pure Rust: plotters' bitmap backend rasterises text with `ab_glyph`, using the
//! DejaVu Sans font embedded from the `dejavu` crate, so no system fonts or fontconfig are needed.
//! The PNG is written to a temporary file next to the target and renamed over it.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::metrics_csv;

/// Size of the PNG written by [`write_curves`]: three panels of 1200×480 plus a title strip.
pub const DEFAULT_SIZE: (u32, u32) = (1200, 1500);

/// Smallest accepted image; below this the panels have no room for axes and labels.
const MIN_SIZE: (u32, u32) = (320, 360);

const FONT: &str = "sans-serif";

/// Reads the metrics file `csv` and writes the training-curve PNG to `out_png` at [`DEFAULT_SIZE`].
pub fn write_curves(csv: &Path, out_png: &Path) -> Result<()> {
    write_curves_sized(csv, out_png, DEFAULT_SIZE.0, DEFAULT_SIZE.1)
}

/// Like [`write_curves`], with an explicit image size in pixels.
///
/// A CSV holding only the header (no rows yet) gives a valid PNG whose panels say "no data";
/// a missing, empty or header-less file is an error.
pub fn write_curves_sized(
    csv: &Path,
    out_png: &Path,
    width: u32,
    height: u32,
) -> Result<()> {
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
        bail!(
            "curve image size {width}x{height} is too small (minimum {}x{})",
            MIN_SIZE.0,
            MIN_SIZE.1
        );
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
    write_png_atomic(&img, out_png)
}

/// The values of a metrics.csv row the curves draw; `None` where the cell is empty or not finite.
#[derive(Debug, Clone, PartialEq)]
struct Row {
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
        Row { step: r.step as f64, split: r.split, loss: finite(r.loss), accuracy: finite(r.accuracy), top5: finite(r.top5), lr: finite(r.lr) }
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

type Points = Vec<(f64, f64)>;

#[derive(Debug, Default)]
struct Curves {
    train_loss: Points,
    valid_loss: Points,
    train_acc: Points,
    valid_acc: Points,
    valid_top5: Points,
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
                _ => {}
            }
        }
        for pts in [
            &mut c.train_loss,
            &mut c.valid_loss,
            &mut c.train_acc,
            &mut c.valid_acc,
            &mut c.valid_top5,
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
            &self.lr,
        ];
        let steps = all.iter().flat_map(|pts| pts.iter().map(|p| p.0));
        let (lo, hi) = min_max(steps).unwrap_or((0.0, 1.0));
        let lo = lo.min(0.0);
        // At least ten steps wide, so an almost empty run still gets integer tick labels.
        if hi - lo < 10.0 {
            (lo, lo + 10.0)
        } else {
            (lo, hi)
        }
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Y range over the given series with 5% padding; never empty.
fn value_range(series: &[&Points], floor_at_zero: bool) -> (f64, f64) {
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
    let padded_lo = if floor_at_zero && lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    (padded_lo, hi + pad)
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // Both are valid TrueType files shipped inside the `dejavu` crate; a failure would only
            // mean plotters reports FontUnavailable when drawing text, which is returned as an error.
            let _ =
                plotters::style::register_font(family, FontStyle::Normal, dejavu::sans::regular());
            let _ = plotters::style::register_font(family, FontStyle::Bold, dejavu::sans::bold());
        }
    });
}

struct SeriesSpec<'a> {
    label: &'a str,
    points: &'a Points,
    color: RGBColor,
    markers: bool,
}

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALID_COLOR: RGBColor = RGBColor(214, 39, 40);
const TOP5_COLOR: RGBColor = RGBColor(255, 127, 14);
const LR_COLOR: RGBColor = RGBColor(44, 160, 44);

fn render(curves: &Curves, title: &str, buf: &mut [u8], width: u32, height: u32) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let title_height = (height / 30).clamp(24, 48);
    let (title_area, body) = root.split_vertically(title_height);
    let title_size = (title_height as f64 * 0.6).max(12.0);
    let title_style =
        TextStyle::from((FONT, title_size).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    title_area
        .draw_text(
            title,
            &title_style,
            (width as i32 / 2, title_height as i32 / 2),
        )
        .map_err(plot_err)?;
    let panels = body.split_evenly((3, 1));
    let x_range = curves.step_range();

    let mut acc_series = vec![
        SeriesSpec {
            label: "train",
            points: &curves.train_acc,
            color: TRAIN_COLOR,
            markers: false,
        },
        SeriesSpec {
            label: "valid",
            points: &curves.valid_acc,
            color: VALID_COLOR,
            markers: true,
        },
    ];
    if !curves.valid_top5.is_empty() {
        acc_series.push(SeriesSpec {
            label: "valid top-5",
            points: &curves.valid_top5,
            color: TOP5_COLOR,
            markers: true,
        });
    }

    draw_panel(
        &panels[0],
        "Loss",
        "loss",
        x_range,
        &[
            SeriesSpec {
                label: "train",
                points: &curves.train_loss,
                color: TRAIN_COLOR,
                markers: false,
            },
            SeriesSpec {
                label: "valid",
                points: &curves.valid_loss,
                color: VALID_COLOR,
                markers: true,
            },
        ],
        &|v: &f64| format_tick(*v),
        SeriesLabelPosition::UpperRight,
        true,
    )?;
    draw_panel(
        &panels[1],
        "Accuracy",
        "accuracy (%)",
        x_range,
        &acc_series,
        &|v: &f64| format_tick(*v),
        SeriesLabelPosition::LowerRight,
        true,
    )?;
    draw_panel(
        &panels[2],
        "Learning rate",
        "lr",
        x_range,
        &[SeriesSpec {
            label: "lr",
            points: &curves.lr,
            color: LR_COLOR,
            markers: false,
        }],
        &|v: &f64| {
            if *v == 0.0 {
                "0".to_string()
            } else {
                format!("{v:.1e}")
            }
        },
        SeriesLabelPosition::UpperRight,
        true,
    )?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(0.01..1000.0).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the curves failed: {e}")
}

#[allow(clippy::too_many_arguments)]
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_desc: &str,
    x_range: (f64, f64),
    series: &[SeriesSpec<'_>],
    y_fmt: &dyn Fn(&f64) -> String,
    legend_pos: SeriesLabelPosition,
    floor_at_zero: bool,
) -> Result<()> {
    let (_, h) = area.dim_in_pixel();
    let caption_size = (h as f64 * 0.05).clamp(12.0, 26.0);
    let label_size = (h as f64 * 0.035).clamp(10.0, 18.0);
    let points: Vec<&Points> = series.iter().map(|s| s.points).collect();
    let y_range = value_range(&points, floor_at_zero);

    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, caption_size))
        .margin(12)
        .x_label_area_size((label_size * 2.8) as u32)
        .y_label_area_size((label_size * 5.5) as u32)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_desc)
        .label_style((FONT, label_size))
        .axis_desc_style((FONT, label_size))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(y_fmt)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;

    let mut drawn = 0;
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        drawn += 1;
        let color = s.color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if s.markers || s.points.len() == 1 {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
        }
    }
    if drawn > 0 {
        chart
            .configure_series_labels()
            .position(legend_pos)
            .label_font((FONT, label_size))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
    } else {
        let style = (FONT, label_size * 1.4)
            .into_font()
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        let centre = ((x_range.0 + x_range.1) / 2.0, (y_range.0 + y_range.1) / 2.0);
        chart
            .plotting_area()
            .draw(&Text::new("no data yet", centre, style))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Encodes `img` as PNG into a temporary file beside `out` and renames it over `out`, so a reader
/// never sees a half-written image.
fn write_png_atomic(img: &image::RgbImage, out: &Path) -> Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("output path {} has no file name", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let file = File::create(&tmp)
            .with_context(|| format!("cannot create temporary file {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        img.write_to(&mut w, image::ImageFormat::Png)
            .context("PNG encoding failed")?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, out)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write curves to {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            dark_pixels(&img, 0, 0, 900, 30) > 50,
            "title text was not rendered"
        );
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
        assert!(
            msg.contains("cannot read metrics file") && msg.contains("nope.csv"),
            "{msg}"
        );
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
        fs::write(
            &csv,
            format!("{HEADER}7,1,train,1.5,20,,1e-3,100\n12,1,valid,1.4,22,60,,\n3,1,tr"),
        )
        .unwrap();
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
        let train: Vec<(f64, Option<f64>)> = rows
            .iter()
            .filter(|r| r.split == "train")
            .map(|r| (r.step, r.loss))
            .collect();
        assert_eq!(
            train,
            vec![(10.0, Some(2.0)), (30.0, Some(1.5)), (40.0, Some(1.4))]
        );
        assert_eq!(rows.iter().filter(|r| r.split == "valid").count(), 2);
    }
}
