//! A bitmap backend whose text honours each glyph's left side bearing.
//!
//! plotters 0.3.7 rasterises ab_glyph outlines at the pen position without adding the glyph's
//! pixel-bounds offset (`px_bounds().min.x`), so glyphs with a visible left bearing sit too far
//! left: "cl" renders as "d". This wrapper draws text itself with the same layout and anchor
//! rules as plotters' default `draw_text` and delegates every other primitive to
//! [`BitMapBackend`]. SVG output is unaffected (browsers lay the text out).

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// [`BitMapBackend`] with corrected text.
pub struct Bitmap<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

impl<'a> Bitmap<'a> {
    pub fn new(inner: BitMapBackend<'a>, font: FontRef<'static>) -> Self {
        Self { inner, font }
    }
}

/// Calls `put(x, y, coverage)` for every pixel of `text` at `size` px, origin at the pen's start
/// with plotters' vertical convention (y shifted by size / 2 from the glyph's top).
fn glyph_pixels(font: &FontRef<'_>, size: f64, text: &str, mut put: impl FnMut(i32, i32, f32)) {
    let f = font.as_scaled(size as f32);
    let mut x = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            x += f.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(size as f32, point(x, 0.0));
        if let Some(q) = f.outline_glyph(glyph) {
            let r = q.px_bounds();
            let (gx, gy) = (r.min.x as i32, (size as f32 / 2.0 + r.min.y) as i32);
            q.draw(|px, py, cov| put(px as i32 + gx, py as i32 + gy, cov));
        }
        x += f.h_advance(id);
    }
}

impl DrawingBackend for Bitmap<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        // Layout and anchoring exactly as plotters' default draw_text.
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut pixels = Vec::new();
        glyph_pixels(&self.font, style.size(), text, |x, y, cov| {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 && cov > 0.0 {
                pixels.push((x, y, cov));
            }
        });
        for (x, y, cov) in pixels {
            let c = BackendColor {
                alpha: color.alpha * f64::from(cov.min(1.0)),
                rgb: color.rgb,
            };
            self.inner.draw_pixel((x, y), c)?;
        }
        Ok(())
    }
}

/// Draw `text` (DejaVu Sans, `size` px) into an RGB buffer of `width` × `height` with its top
/// left at (`x`, `y`), blending `color` by glyph coverage; pixels outside are skipped. For
/// labelling pixel images (contact sheets) without a plotting backend.
pub fn draw_text_rgb(
    px: &mut [u8],
    width: usize,
    height: usize,
    (x, y): (i32, i32),
    size: f64,
    text: &str,
    color: [u8; 3],
) -> Result<(), String> {
    let font = FontRef::try_from_slice(crate::FONT_BYTES).map_err(|e| e.to_string())?;
    // glyph_pixels puts the pen's vertical origin size/2 above the glyph top; shift it back.
    let y0 = y - (size / 2.0) as i32 + (size * 0.8) as i32;
    glyph_pixels(&font, size, text, |gx, gy, cov| {
        let (px_x, px_y) = (x + gx, y0 + gy);
        if px_x < 0 || px_y < 0 || px_x as usize >= width || px_y as usize >= height {
            return;
        }
        let i = (px_y as usize * width + px_x as usize) * 3;
        if let Some(p) = px.get_mut(i..i + 3) {
            let a = cov.clamp(0.0, 1.0);
            for (c, &target) in p.iter_mut().zip(&color) {
                *c = (f32::from(*c) * (1.0 - a) + f32::from(target) * a).round() as u8;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    /// Columns of a `w`×`h` RGB buffer with ink (any channel below 160), as runs of columns.
    fn ink_runs(buf: &[u8], w: usize, h: usize) -> usize {
        let inked: Vec<bool> = (0..w)
            .map(|x| (0..h).any(|y| buf[(y * w + x) * 3] < 160))
            .collect();
        inked.windows(2).filter(|p| p[1] && !p[0]).count() + usize::from(inked[0])
    }

    #[test]
    fn c_and_l_do_not_merge() {
        crate::register_font();
        let (w, h) = (60usize, 30usize);
        let mut buf = vec![255u8; w * h * 3];
        {
            let font = FontRef::try_from_slice(crate::FONT_BYTES).unwrap();
            let root = Bitmap::new(
                BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)),
                font,
            )
            .into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new(
                "cl",
                (5, 5),
                ("sans-serif", 14).into_font().color(&BLACK),
            ))
            .unwrap();
            root.present().unwrap();
        }
        // Two glyphs, two separate inked column runs (plotters 0.3.7's own text draws one).
        assert_eq!(ink_runs(&buf, w, h), 2);
    }
}
