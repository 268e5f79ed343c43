//! Plots for ventral: line plots with optional confidence bands, written as PNG and SVG.
//!
//! Text uses the embedded DejaVu Sans (`assets/`, Bitstream Vera licence), so plots do not
//! depend on the fonts installed on the machine.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use thiserror::Error;

mod bitmap;
pub use bitmap::draw_text_rgb;

use plotters_backend::text_anchor::{HPos, Pos, VPos};

/// A plotting error, naming the output file.
#[derive(Debug, Error)]
#[error("{path}: {msg}")]
pub struct PlotError {
    pub path: String,
    pub msg: String,
}

static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES);
    });
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Style {
    /// Line with a dot at each point.
    #[default]
    Line,
    /// Dashed line without dots (reference levels).
    Dashed,
    /// Dots only (scatter).
    Points,
    /// Open black rings around the points (where trajectories start: t = 0), drawn on top.
    Start,
}

/// One line. A series without a name is a companion of the one before it (a fit, a theory
/// curve): it is drawn in that series' colour and left out of the legend.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    /// (x, y) points; points with a non-finite coordinate are not drawn.
    pub points: Vec<(f64, f64)>,
    /// Optional (x, low, high) band.
    pub band: Option<Vec<(f64, f64, f64)>>,
    pub style: Style,
}

/// A line plot.
#[derive(Debug, Clone)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Fixed y range (otherwise from the data).
    pub y_range: Option<(f64, f64)>,
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// plotters' tick label for an f64 axis, without the sign of a rounded-off zero ("-0.0").
fn tick(v: &f64) -> String {
    use plotters::coord::ranged1d::ValueFormatter;
    use plotters::coord::types::RangedCoordf64;
    let s = RangedCoordf64::format(v);
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// The colour of each series: named series take the palette in order, an unnamed one the
/// colour of the series before it.
fn colours(series: &[Series]) -> Vec<RGBColor> {
    let mut out: Vec<RGBColor> = Vec::with_capacity(series.len());
    let mut next = 0;
    for s in series {
        let c = match out.last() {
            Some(&prev) if s.name.is_empty() => prev,
            _ => {
                let c = PALETTE[next % PALETTE.len()];
                next += 1;
                c
            }
        };
        out.push(c);
    }
    out
}

/// Pixels of the legend column: none without named series, else enough for the longest name.
fn legend_width(p: &LinePlot) -> u32 {
    let longest = p
        .series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    if longest == 0 {
        0
    } else {
        (longest as u32 * 8 + 50).clamp(110, 400)
    }
}

/// The y range a line plot gives `series` by default: their finite points and bands, padded by
/// 5 % (at least 1e-9); (0, 1) when there is nothing. Panels that must share a y axis pass the
/// union of their series and set it as `y_range`.
pub fn y_extent<'a>(series: impl IntoIterator<Item = &'a Series>) -> (f64, f64) {
    let (a, b) = series
        .into_iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|q| q.1)
                .chain(s.band.iter().flatten().flat_map(|b| [b.1, b.2]))
        })
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if a > b {
        (0.0, 1.0)
    } else {
        let pad = ((b - a) * 0.05).max(1e-9);
        (a - pad, b + pad)
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    p: &LinePlot,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(&p.title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    // The legend sits in its own column right of the axes, never over the data.
    let (w, _) = root.dim_in_pixel();
    let (root, legend_area) = root.split_horizontally(w.saturating_sub(legend_width(p)));
    let xs: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.0))
        .filter(|x| x.is_finite())
        .collect();
    let (mut x0, mut x1) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    // Whole-number x values (time steps, epochs), or values halfway between them (changes
    // from t to t + 1): whole-number ticks, at most 12, and the axis spans whole numbers.
    // Every float beyond 2⁵² is whole, so data that large (a norm, a distance) is not a step
    // axis: a step axis spans at most `STEP_AXIS_MAX` steps.
    const STEP_AXIS_MAX: f64 = 1e9;
    let step_x = x1 - x0 <= STEP_AXIS_MAX
        && xs
            .iter()
            .all(|x| x.fract().abs() == 0.0 || x.fract().abs() == 0.5);
    if step_x {
        (x0, x1) = (x0.floor(), x1.ceil());
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let (y0, y1) = p.y_range.unwrap_or_else(|| y_extent(&p.series));
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    let int_fmt = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick);
    if step_x {
        mesh.x_labels(((x1 - x0) as usize).saturating_add(1).min(12))
            .x_label_formatter(&int_fmt);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    let cols = colours(&p.series);
    for (i, s) in p.series.iter().enumerate() {
        let c = cols[i];
        if let Some(band) = &s.band {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
            poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled())))
                .map_err(|e| e.to_string())?;
        }
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|q| q.0.is_finite() && q.1.is_finite())
            .collect();
        match s.style {
            Style::Line => {
                // One element per segment: plotters' bitmap backend draws spikes at sharp
                // joins of thick polylines.
                chart
                    .draw_series(
                        pts.windows(2)
                            .map(|w| PathElement::new(vec![w[0], w[1]], c.stroke_width(2))),
                    )
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(pts.iter().map(|q| Circle::new(*q, 3, c.filled())))
                    .map_err(|e| e.to_string())?;
            }
            Style::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
            }
            Style::Points => {
                chart
                    .draw_series(pts.iter().map(|q| Circle::new(*q, 3, c.mix(0.6).filled())))
                    .map_err(|e| e.to_string())?;
            }
            Style::Start => {
                chart
                    .draw_series(
                        pts.iter()
                            .map(|q| Circle::new(*q, 7, BLACK.stroke_width(2))),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let font = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let named = p
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.name.is_empty());
    let cols = colours(&p.series);
    for (row, (i, s)) in named.enumerate() {
        let c = cols[i];
        let y = 30 + 22 * row as i32;
        let line = |a: i32, b: i32| PathElement::new(vec![(a, y), (b, y)], c.stroke_width(2));
        let r = match s.style {
            Style::Line => legend_area
                .draw(&line(6, 30))
                .and_then(|_| legend_area.draw(&Circle::new((18, y), 3, c.filled()))),
            Style::Dashed => legend_area
                .draw(&line(6, 14))
                .and_then(|_| legend_area.draw(&line(20, 30))),
            Style::Points => legend_area.draw(&Circle::new((18, y), 4, c.filled())),
            Style::Start => legend_area.draw(&Circle::new((18, y), 6, BLACK.stroke_width(2))),
        };
        r.and_then(|_| legend_area.draw(&Text::new(s.name.clone(), (38, y), font.clone())))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// A figure that can draw itself on any plotters backend.
trait Figure {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

impl Figure for LinePlot {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self)
    }
}

impl Figure for HeatMap {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw_heat(root, self)
    }
}

/// Writes `stem.png` and `stem.svg` of `fig` at `w`×`h`, each atomically.
fn render(stem: &Path, fig: &impl Figure, (w, h): (u32, u32)) -> Result<(), PlotError> {
    register_font();
    let err = |path: &Path, msg: String| PlotError {
        path: path.display().to_string(),
        msg,
    };
    let png = stem.with_extension("png");
    let mut buf = vec![0u8; (w * h * 3) as usize];
    let font =
        ab_glyph::FontRef::try_from_slice(FONT_BYTES).map_err(|e| err(&png, e.to_string()))?;
    fig.draw_on(
        bitmap::Bitmap::new(BitMapBackend::with_buffer(&mut buf, (w, h)), font).into_drawing_area(),
    )
    .map_err(|m| err(&png, m))?;
    let bytes = encode_png(w, h, &buf).map_err(|m| err(&png, m))?;
    ventral_core::write_bytes_atomic(&png, &bytes).map_err(|e| err(&png, e.to_string()))?;
    let svg = stem.with_extension("svg");
    let mut text = String::new();
    fig.draw_on(SVGBackend::with_string(&mut text, (w, h)).into_drawing_area())
        .map_err(|m| err(&svg, m))?;
    ventral_core::write_bytes_atomic(&svg, text.as_bytes())
        .map_err(|e| err(&svg, e.to_string()))?;
    Ok(())
}

/// Write `stem.png` and `stem.svg` (800×500). Each file is written atomically.
pub fn line_plot(stem: &Path, p: &LinePlot) -> Result<(), PlotError> {
    render(stem, p, (800 + legend_width(p), 500))
}

/// Encode RGB8 as PNG.
fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// A heat map: `values[row][col]`, rows drawn bottom to top.
#[derive(Debug, Clone)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Tick labels per column and per row.
    pub x_ticks: Vec<String>,
    pub y_ticks: Vec<String>,
    pub values: Vec<Vec<f64>>,
    /// Colour scale label.
    pub scale_label: String,
}

/// Viridis-like colour ramp (5 anchors of matplotlib's viridis, linear between).
fn ramp(t: f64) -> RGBColor {
    const A: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (A[i], A[i + 1]);
    RGBColor(
        (a.0 + (b.0 - a.0) * f) as u8,
        (a.1 + (b.1 - a.1) * f) as u8,
        (a.2 + (b.2 - a.2) * f) as u8,
    )
}

fn draw_heat<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    p: &HeatMap,
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (main, bar) = root.split_horizontally(root.dim_in_pixel().0 as i32 - 110);
    let nr = p.values.len();
    let nc = p.values.first().map_or(0, Vec::len);
    let finite = p.values.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&main)
        .caption(&p.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..nc as f64, 0.0..nr as f64)
        .map_err(|x| e(&x))?;
    let xt = p.x_ticks.clone();
    let yt = p.y_ticks.clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_labels(nc.min(12))
        .y_labels(nr.min(12))
        .x_label_formatter(&|v| xt.get(v.floor() as usize).cloned().unwrap_or_default())
        .y_label_formatter(&|v| yt.get(v.floor() as usize).cloned().unwrap_or_default())
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series((0..nr).flat_map(|r| {
            (0..nc).map(move |c| {
                let v = p.values[r][c];
                Rectangle::new(
                    [(c as f64, r as f64), (c as f64 + 1.0, r as f64 + 1.0)],
                    ramp((v - lo) / (hi - lo)).filled(),
                )
            })
        }))
        .map_err(|x| e(&x))?;
    // Colour bar.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(40)
        .margin_bottom(55)
        .margin_right(10)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|x| e(&x))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .y_desc(&p.scale_label)
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(|x| e(&x))?;
    let steps = 100;
    cb.draw_series((0..steps).map(|i| {
        let a = lo + (hi - lo) * i as f64 / steps as f64;
        let b = lo + (hi - lo) * (i + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            ramp(i as f64 / (steps - 1) as f64).filled(),
        )
    }))
    .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Writes `stem.png` and `stem.svg` of a heat map (800×560), each atomically.
pub fn heat_map(stem: &Path, p: &HeatMap) -> Result<(), PlotError> {
    render(stem, p, (800, 560))
}

/// A dendrogram from a SciPy-style linkage matrix (rows `[a, b, height, size]`, leaves
/// 0..n, the cluster formed in row i numbered n + i).
#[derive(Debug, Clone)]
pub struct Dendrogram {
    pub title: String,
    /// Leaf labels, one per observation.
    pub labels: Vec<String>,
    pub linkage: Vec<[f64; 4]>,
    pub y_label: String,
}

fn draw_dendrogram<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    p: &Dendrogram,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let n = p.labels.len();
    // Leaf order: depth-first, left child first.
    let mut order = Vec::with_capacity(n);
    if p.linkage.is_empty() {
        order.extend(0..n);
    } else {
        let mut stack = vec![n + p.linkage.len() - 1];
        while let Some(node) = stack.pop() {
            if node < n {
                order.push(node);
            } else if let Some(r) = p.linkage.get(node - n) {
                stack.push(r[1] as usize);
                stack.push(r[0] as usize);
            }
        }
    }
    let mut x = vec![0.0; n + p.linkage.len()];
    let mut h = vec![0.0; n + p.linkage.len()];
    for (pos, &leaf) in order.iter().enumerate() {
        if leaf < n {
            x[leaf] = pos as f64 + 0.5;
        }
    }
    for (i, r) in p.linkage.iter().enumerate() {
        let (a, b) = (r[0] as usize, r[1] as usize);
        if a < x.len() && b < x.len() {
            x[n + i] = 0.5 * (x[a] + x[b]);
            h[n + i] = r[2];
        }
    }
    let top = p.linkage.iter().map(|r| r[2]).fold(0.0, f64::max).max(1e-9) * 1.05;
    // Leaf labels are drawn one per leaf (mesh labels would land at "nice" tick positions,
    // not at the leaves); the label area grows with the longest label.
    let font = if n > 60 {
        9
    } else if n > 30 {
        11
    } else {
        13
    };
    let longest = p
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let label_area = (longest as u32 * font * 6 / 10 + 14).clamp(30, 200);
    let mut chart = ChartBuilder::on(&root)
        .caption(&p.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(label_area)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n.max(1) as f64, 0.0..top)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(&p.y_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    let style = ("sans-serif", font)
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK);
    for (pos, &leaf) in order.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(pos as f64 + 0.5, 0.0));
        let text = p.labels.get(leaf).cloned().unwrap_or_default();
        root.draw(&Text::new(
            text,
            (px + font as i32 / 2, py + 6),
            style.clone(),
        ))
        .map_err(|x| e(&x))?;
    }
    for (i, r) in p.linkage.iter().enumerate() {
        let (a, b) = (r[0] as usize, r[1] as usize);
        if a >= x.len() || b >= x.len() {
            continue;
        }
        let hh = h[n + i];
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x[a], h[a]), (x[a], hh), (x[b], hh), (x[b], h[b])],
                PALETTE[0].stroke_width(2),
            )))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

impl Figure for Dendrogram {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw_dendrogram(root, self)
    }
}

/// Writes `stem.png` and `stem.svg` of a dendrogram.
pub fn dendrogram(stem: &Path, p: &Dendrogram) -> Result<(), PlotError> {
    let w = (300 + 14 * p.labels.len() as u32).clamp(700, 1800);
    render(stem, p, (w, 520))
}

/// One section of an HTML report.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub heading: String,
    /// Paragraphs (plain text, escaped).
    pub text: Vec<String>,
    /// SVG files drawn inline, side by side where they fit.
    pub figures: Vec<std::path::PathBuf>,
    /// Tables: (caption, header, rows).
    pub tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
}

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML report (figures inlined as SVG, no external resources), written
/// atomically to `path`.
pub fn html_report(
    path: &Path,
    title: &str,
    intro: &[String],
    sections: &[Section],
) -> Result<(), PlotError> {
    let err = |msg: String| PlotError {
        path: path.display().to_string(),
        msg,
    };
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>{}</title>", escape(title)));
    h.push_str("<style>body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;max-width:1700px;margin:24px auto;padding:0 16px;color:#222}h1{font-size:26px}h2{font-size:20px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:36px}.figs{display:flex;flex-wrap:wrap;gap:12px}.figs figure{margin:0;flex:1 1 720px;max-width:820px}.figs svg{width:100%;height:auto}table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}th{background:#f3f3f3}caption{text-align:left;font-weight:bold;padding:4px 0}p{line-height:1.45}</style></head><body>\n");
    h.push_str(&format!("<h1>{}</h1>\n", escape(title)));
    for p in intro {
        h.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    for s in sections {
        h.push_str(&format!("<h2>{}</h2>\n", escape(&s.heading)));
        for p in &s.text {
            h.push_str(&format!("<p>{}</p>\n", escape(p)));
        }
        for (caption, header, rows) in &s.tables {
            h.push_str(&format!(
                "<table><caption>{}</caption><tr>",
                escape(caption)
            ));
            for c in header {
                h.push_str(&format!("<th>{}</th>", escape(c)));
            }
            h.push_str("</tr>");
            for r in rows {
                h.push_str("<tr>");
                for c in r {
                    h.push_str(&format!("<td>{}</td>", escape(c)));
                }
                h.push_str("</tr>");
            }
            h.push_str("</table>\n");
        }
        if !s.figures.is_empty() {
            h.push_str("<div class=\"figs\">");
            for f in &s.figures {
                let svg =
                    std::fs::read_to_string(f).map_err(|e| err(format!("{}: {e}", f.display())))?;
                let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
                h.push_str(&format!("<figure>{body}</figure>"));
            }
            h.push_str("</div>\n");
        }
    }
    h.push_str("</body></html>\n");
    ventral_core::write_bytes_atomic(path, h.as_bytes()).map_err(|e| err(e.to_string()))
}

/// A file-name-safe version of a label: ASCII letters, digits, `-` and `_` kept, anything
/// else `_` (plot and table file names).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg() {
        let d = tempfile::tempdir().unwrap();
        let stem = d.path().join("acc");
        let p = LinePlot {
            title: "Accuracy".into(),
            x_label: "time step".into(),
            y_label: "accuracy".into(),
            series: vec![
                Series {
                    name: "val".into(),
                    points: vec![(0.0, 0.2), (1.0, 0.4), (2.0, 0.5)],
                    band: Some(vec![(0.0, 0.1, 0.3), (1.0, 0.3, 0.5), (2.0, 0.45, 0.55)]),
                    style: Style::Line,
                },
                Series {
                    name: "chance".into(),
                    points: vec![(0.0, 0.125), (2.0, 0.125)],
                    style: Style::Dashed,
                    ..Series::default()
                },
                Series {
                    name: "images".into(),
                    points: vec![(0.5, 0.6), (f64::NAN, 0.7), (1.5, f64::INFINITY)],
                    style: Style::Points,
                    ..Series::default()
                },
            ],
            y_range: Some((0.0, 1.0)),
        };
        line_plot(&stem, &p).unwrap();
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("time step"));
        let hm = HeatMap {
            title: "RSA".into(),
            x_label: "neural time bin (ms)".into(),
            y_label: "model time step".into(),
            x_ticks: vec!["70".into(), "80".into(), "90".into()],
            y_ticks: vec!["0".into(), "1".into()],
            values: vec![vec![0.1, 0.2, f64::NAN], vec![0.3, 0.5, 0.4]],
            scale_label: "Spearman ρ".into(),
        };
        let stem = d.path().join("rsa");
        heat_map(&stem, &hm).unwrap();
        assert_eq!(
            &std::fs::read(stem.with_extension("png")).unwrap()[1..4],
            b"PNG"
        );
        assert!(
            std::fs::read_to_string(stem.with_extension("svg"))
                .unwrap()
                .contains("model time step")
        );
    }

    /// Found by the `dynamics` fuzz target in a dev build: x values that are whole numbers
    /// only because they are huge (every float beyond 2⁵² is) were taken for time steps, and
    /// the tick count `span as usize + 1` overflowed (silently wrapping to no ticks in a
    /// release build). Such an axis is a data axis; plots of ±f32::MAX-sized x values draw.
    #[test]
    fn huge_whole_x_values_are_a_data_axis_not_time_steps() {
        let d = tempfile::tempdir().unwrap();
        for (k, xs) in [
            [0.0, 3e20],
            [-3.4e38, 3.4e38],
            [f64::from(f32::MAX), f64::from(f32::MAX)],
            [0.0, 1.9e19],
        ]
        .iter()
        .enumerate()
        {
            let p = LinePlot {
                title: "norms".into(),
                x_label: "L2 norm".into(),
                y_label: "count".into(),
                series: vec![Series {
                    name: "images".into(),
                    points: xs.iter().map(|&x| (x, 1.0)).collect(),
                    style: Style::Points,
                    ..Series::default()
                }],
                y_range: None,
            };
            let stem = d.path().join(format!("huge{k}"));
            line_plot(&stem, &p).unwrap();
            assert!(stem.with_extension("png").is_file(), "{xs:?}");
        }
    }
}
