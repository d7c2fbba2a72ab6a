//! Drawing the curves with plotters: a title strip and three panels sharing the step axis.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Curves, Points, value_range};
use crate::report::png::{FONT, register_fonts};

struct SeriesSpec<'a> {
    label: &'a str,
    points: &'a Points,
    color: RGBColor,
    markers: bool,
}

pub(super) const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
pub(super) const VALID_COLOR: RGBColor = RGBColor(214, 39, 40);
pub(super) const TOP5_COLOR: RGBColor = RGBColor(255, 127, 14);
pub(super) const EMA_COLOR: RGBColor = RGBColor(44, 160, 44);
pub(super) const LR_COLOR: RGBColor = RGBColor(44, 160, 44);

pub(super) fn render(curves: &Curves, title: &str, buf: &mut [u8], width: u32, height: u32) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let title_height = (height / 30).clamp(24, 48);
    let (title_area, body) = root.split_vertically(title_height);
    let title_size = (title_height as f64 * 0.6).max(12.0);
    let title_style = TextStyle::from((FONT, title_size).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    title_area.draw_text(title, &title_style, (width as i32 / 2, title_height as i32 / 2)).map_err(plot_err)?;
    let panels = body.split_evenly((3, 1));
    let x_range = curves.step_range();

    let mut acc_series = vec![
        SeriesSpec { label: "train", points: &curves.train_acc, color: TRAIN_COLOR, markers: false },
        SeriesSpec { label: "valid", points: &curves.valid_acc, color: VALID_COLOR, markers: true },
    ];
    if !curves.ema_acc.is_empty() {
        acc_series.push(SeriesSpec { label: "valid (EMA)", points: &curves.ema_acc, color: EMA_COLOR, markers: true });
    }
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
            SeriesSpec { label: "train", points: &curves.train_loss, color: TRAIN_COLOR, markers: false },
            SeriesSpec { label: "valid", points: &curves.valid_loss, color: VALID_COLOR, markers: true },
            SeriesSpec { label: "valid (EMA)", points: &curves.ema_loss, color: EMA_COLOR, markers: true },
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
        &[SeriesSpec { label: "lr", points: &curves.lr, color: LR_COLOR, markers: false }],
        &|v: &f64| {
            if *v == 0.0 { "0".to_string() } else { format!("{v:.1e}") }
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
    anyhow::anyhow!("drawing the curves failed: {e}")
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
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
            .map_err(plot_err)?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        if s.markers || s.points.len() == 1 {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
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
        chart.plotting_area().draw(&Text::new("no data yet", centre, style)).map_err(plot_err)?;
    }
    Ok(())
}
