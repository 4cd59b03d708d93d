//! Plots of training runs (plotters; SVG and PNG): validation Recall@5 and validation loss
//! against micro-batch and against wall time, one line per run.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use artifacts::model::{LogKind, read_log};

use crate::error::{Error, Result};
use crate::runs::RunResult;

/// Font files tried for the plots' text (DejaVu Sans is in `fonts-dejavu-core`, which
/// `cargo xtask setup` installs).
const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the plots' font once; the error says what was tried.
fn register_font() -> std::result::Result<(), String> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = FONT_FILES
            .iter()
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| format!("no font found for the plots (tried {}); `cargo xtask setup` installs fonts-dejavu-core", FONT_FILES.join(", ")))?;
        let bytes: &'static [u8] = Box::leak(std::fs::read(path).map_err(|e| e.to_string())?.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{path} is not a usable font"))
    })
    .clone()
}

/// One validation point: (micro-batch, wall seconds, Recall@5, loss).
type Point = (f64, f64, f64, f64);

/// The validation rows of a `train_log.csv`.
pub fn validation_points(csv: &Path) -> Result<Vec<Point>> {
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    Ok(read_log(csv)?
        .into_iter()
        .filter(|r| r.kind == LogKind::Val)
        .map(|r| (r.batch as f64, r.wall_s, nan(r.recall5), nan(r.val_loss)))
        .collect())
}

/// Writes `val_{recall,loss}_by_{batch,time}.{svg,png}` into `dir`. Without a usable font it
/// warns and writes nothing (the report says where the plots would be).
pub fn validation_plots(runs: &[RunResult], dir: &Path) -> Result<()> {
    if let Err(e) = register_font() {
        eprintln!("warning: plots skipped: {e}");
        return Ok(());
    }
    let mut series = Vec::new();
    for r in runs {
        let label = format!("{} seed {}", r.train.variant, r.train.seed);
        series.push((label, validation_points(&r.log_csv)?));
    }
    for (name, x_of, y_of, x_label, y_label) in [
        (
            "val_recall_by_batch",
            0usize,
            2usize,
            "micro-batch",
            "validation Recall@5",
        ),
        (
            "val_recall_by_time",
            1,
            2,
            "wall time (s)",
            "validation Recall@5",
        ),
        ("val_loss_by_batch", 0, 3, "micro-batch", "validation loss"),
        ("val_loss_by_time", 1, 3, "wall time (s)", "validation loss"),
    ] {
        let pick = |p: &Point, i: usize| match i {
            0 => p.0,
            1 => p.1,
            2 => p.2,
            _ => p.3,
        };
        let lines: Vec<(String, Vec<(f64, f64)>)> = series
            .iter()
            .map(|(l, pts)| {
                (
                    l.clone(),
                    pts.iter()
                        .map(|p| (pick(p, x_of), pick(p, y_of)))
                        .filter(|(x, y)| x.is_finite() && y.is_finite())
                        .collect(),
                )
            })
            .collect();
        xy_plot(dir, name, &lines, (x_label, y_label), Marks::Lines, false)?;
    }
    Ok(())
}

/// How a chart draws its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// A line through the points.
    Lines,
    /// A dot per point.
    Points,
    /// Both.
    LinesAndPoints,
}

/// One named series of (x, y) points.
pub type Series = (String, Vec<(f64, f64)>);

/// Writes `<name>.svg` and `<name>.png` into `dir`: one colour per series, with a legend; the
/// y axis starts at 0 when `y_from_zero`. Without a usable font it warns and writes nothing.
pub fn xy_plot(
    dir: &Path,
    name: &str,
    series: &[Series],
    (x_label, y_label): (&str, &str),
    marks: Marks,
    y_from_zero: bool,
) -> Result<()> {
    if let Err(e) = register_font() {
        eprintln!("warning: plot {name} skipped: {e}");
        return Ok(());
    }
    let svg = dir.join(format!("{name}.svg"));
    draw(
        SVGBackend::new(&svg, (800, 500)).into_drawing_area(),
        series,
        x_label,
        y_label,
        (marks, y_from_zero),
    )?;
    let png = dir.join(format!("{name}.png"));
    draw(
        BitMapBackend::new(&png, (800, 500)).into_drawing_area(),
        series,
        x_label,
        y_label,
        (marks, y_from_zero),
    )
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    lines: &[Series],
    x_label: &str,
    y_label: &str,
    (marks, y_from_zero): (Marks, bool),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| Error::Plot(format!("{e:?}"));
    area.fill(&WHITE).map_err(err)?;
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let (x0, x1) = bounds(all.iter().map(|p| p.0));
    let (mut y0, y1) = bounds(all.iter().map(|p| p.1));
    if y_from_zero {
        y0 = 0.0;
    }
    let mut chart = ChartBuilder::on(&area)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if marks != Marks::Points {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if marks != Marks::Lines {
            let dots = chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))
                .map_err(err)?;
            if marks == Marks::Points {
                dots.label(label.clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}
