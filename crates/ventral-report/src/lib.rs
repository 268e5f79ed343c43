//! Plots for ventral: line plots with optional confidence bands, written as PNG and SVG.
//!
//! Text uses the embedded DejaVu Sans (`assets/`, Bitstream Vera licence), so plots do not
//! depend on the fonts installed on the machine.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use thiserror::Error;

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

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Optional (x, low, high) band.
    pub band: Option<Vec<(f64, f64, f64)>>,
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

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    p: &LinePlot,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let xs = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let (mut x0, mut x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let (y0, y1) = p.y_range.unwrap_or_else(|| {
        let ys = p.series.iter().flat_map(|s| {
            s.points
                .iter()
                .map(|q| q.1)
                .chain(s.band.iter().flatten().flat_map(|b| [b.1, b.2]))
        });
        let (a, b) = ys
            .filter(|v| v.is_finite())
            .fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
        if a > b {
            (0.0, 1.0)
        } else {
            let pad = ((b - a) * 0.05).max(1e-9);
            (a - pad, b + pad)
        }
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(&p.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in p.series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        if let Some(band) = &s.band {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
            poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(LineSeries::new(s.points.clone(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(s.points.iter().map(|q| Circle::new(*q, 3, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// Write `stem.png` and `stem.svg` (800×500). Each file is written atomically.
pub fn line_plot(stem: &Path, p: &LinePlot) -> Result<(), PlotError> {
    register_font();
    let err = |path: &Path, msg: String| PlotError {
        path: path.display().to_string(),
        msg,
    };
    let (w, h) = (800u32, 500u32);
    let png = stem.with_extension("png");
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
        p,
    )
    .map_err(|m| err(&png, m))?;
    let bytes = encode_png(w, h, &buf).map_err(|m| err(&png, m))?;
    ventral_core::write_bytes_atomic(&png, &bytes).map_err(|e| err(&png, e.to_string()))?;
    let svg = stem.with_extension("svg");
    let mut text = String::new();
    draw(
        SVGBackend::with_string(&mut text, (w, h)).into_drawing_area(),
        p,
    )
    .map_err(|m| err(&svg, m))?;
    ventral_core::write_bytes_atomic(&svg, text.as_bytes())
        .map_err(|e| err(&svg, e.to_string()))?;
    Ok(())
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
            series: vec![Series {
                name: "val".into(),
                points: vec![(0.0, 0.2), (1.0, 0.4), (2.0, 0.5)],
                band: Some(vec![(0.0, 0.1, 0.3), (1.0, 0.3, 0.5), (2.0, 0.45, 0.55)]),
            }],
            y_range: Some((0.0, 1.0)),
        };
        line_plot(&stem, &p).unwrap();
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("time step"));
    }
}
