//! Training augmentations on `u8` HWC images, deterministic per (seed, epoch, image index):
//! random resized crop, horizontal flip and TrivialAugment-Wide (Müller & Hutter 2021), which
//! the BLT reference trains with (torchvision `TrivialAugmentWide`: one op, uniformly chosen,
//! with a magnitude drawn uniformly from 31 bins; geometric ops use nearest-neighbour sampling
//! and fill with 0).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which augmentations to apply, in this order: crop, flip, TrivialAugment-Wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// torchvision `RandomResizedCrop` to the input size.
    pub random_resized_crop: bool,
    /// Range of the crop's area as a fraction of the image.
    pub crop_scale: [f32; 2],
    /// Range of the crop's aspect ratio (width / height).
    pub crop_ratio: [f32; 2],
    /// Horizontal flip with probability 0.5.
    pub hflip: bool,
    /// One TrivialAugment-Wide op per image.
    pub trivial_augment: bool,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            random_resized_crop: false,
            crop_scale: [0.08, 1.0],
            crop_ratio: [3.0 / 4.0, 4.0 / 3.0],
            hflip: false,
            trivial_augment: true,
        }
    }
}

/// The TrivialAugment-Wide operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
}

pub const OPS: [Op; 14] = [
    Op::Identity,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Brightness,
    Op::Color,
    Op::Contrast,
    Op::Sharpness,
    Op::Posterize,
    Op::Solarize,
    Op::AutoContrast,
    Op::Equalize,
];

const BINS: usize = 31;

/// Apply the configured augmentations to one image.
pub fn augment(
    img: &[u8],
    h: usize,
    w: usize,
    c: usize,
    cfg: &AugmentConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<u8> {
    let mut out = img.to_vec();
    if cfg.random_resized_crop {
        out = random_resized_crop(&out, h, w, c, cfg, rng);
    }
    if cfg.hflip && rng.random::<bool>() {
        out = hflip(&out, h, w, c);
    }
    if cfg.trivial_augment {
        let op = OPS[rng.random_range(0..OPS.len())];
        let bin = rng.random_range(0..BINS);
        let sign = if rng.random::<bool>() { -1.0 } else { 1.0 };
        out = apply_op(&out, h, w, c, op, bin, sign);
    }
    out
}

/// Mirror left-right.
pub fn hflip(img: &[u8], h: usize, w: usize, c: usize) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    for y in 0..h {
        for x in 0..w {
            let (s, d) = ((y * w + x) * c, (y * w + (w - 1 - x)) * c);
            out[d..d + c].copy_from_slice(&img[s..s + c]);
        }
    }
    out
}

/// torchvision's `RandomResizedCrop.get_params`, then bilinear resize back to h×w.
fn random_resized_crop(
    img: &[u8],
    h: usize,
    w: usize,
    c: usize,
    cfg: &AugmentConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<u8> {
    let area = (h * w) as f32;
    let (lr0, lr1) = (cfg.crop_ratio[0].ln(), cfg.crop_ratio[1].ln());
    let mut crop = None;
    for _ in 0..10 {
        let target = area
            * (cfg.crop_scale[0] + (cfg.crop_scale[1] - cfg.crop_scale[0]) * rng.random::<f32>());
        let ratio = (lr0 + (lr1 - lr0) * rng.random::<f32>()).exp();
        let cw = (target * ratio).sqrt().round() as usize;
        let ch = (target / ratio).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let i = rng.random_range(0..=h - ch);
            let j = rng.random_range(0..=w - cw);
            crop = Some((i, j, ch, cw));
            break;
        }
    }
    let (i, j, ch, cw) = crop.unwrap_or_else(|| {
        // Fallback: central crop with the ratio clamped to the range.
        let in_ratio = w as f32 / h as f32;
        let (cw, ch) = if in_ratio < cfg.crop_ratio[0] {
            (w, ((w as f32 / cfg.crop_ratio[0]).round() as usize).min(h))
        } else if in_ratio > cfg.crop_ratio[1] {
            (((h as f32 * cfg.crop_ratio[1]).round() as usize).min(w), h)
        } else {
            (w, h)
        };
        ((h - ch) / 2, (w - cw) / 2, ch, cw)
    });
    let mut out = vec![0u8; h * w * c];
    let sy = ch as f32 / h as f32;
    let sx = cw as f32 / w as f32;
    for y in 0..h {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (ch - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(ch - 1);
        let ty = fy - y0 as f32;
        for x in 0..w {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (cw - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(cw - 1);
            let tx = fx - x0 as f32;
            for k in 0..c {
                let p = |yy: usize, xx: usize| img[((i + yy) * w + j + xx) * c + k] as f32;
                let v = (p(y0, x0) * (1.0 - tx) + p(y0, x1) * tx) * (1.0 - ty)
                    + (p(y1, x0) * (1.0 - tx) + p(y1, x1) * tx) * ty;
                out[(y * w + x) * c + k] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

fn linspace(a: f32, b: f32, i: usize) -> f32 {
    a + (b - a) * i as f32 / (BINS - 1) as f32
}

fn blend(img: &[u8], other: &[f32], factor: f32) -> Vec<u8> {
    img.iter()
        .zip(other)
        .map(|(&a, &b)| (b + factor * (a as f32 - b)).round().clamp(0.0, 255.0) as u8)
        .collect()
}

fn grey(img: &[u8], c: usize) -> Vec<f32> {
    if c < 3 {
        return img.iter().map(|&v| v as f32).collect();
    }
    img.chunks_exact(c)
        .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).round())
        .collect()
}

/// Inverse-mapped affine warp with nearest-neighbour sampling and 0 fill.
/// `inv` maps output (x, y) relative to the centre to input coordinates.
fn warp(img: &[u8], h: usize, w: usize, c: usize, inv: [f32; 6]) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let sx = inv[0] * dx + inv[1] * dy + inv[2] + cx;
            let sy = inv[3] * dx + inv[4] * dy + inv[5] + cy;
            let (ix, iy) = (sx.floor() as isize, sy.floor() as isize);
            if ix >= 0 && iy >= 0 && (ix as usize) < w && (iy as usize) < h {
                let s = (iy as usize * w + ix as usize) * c;
                let d = (y * w + x) * c;
                out[d..d + c].copy_from_slice(&img[s..s + c]);
            }
        }
    }
    out
}

/// Apply TrivialAugment-Wide op `op` at magnitude bin `bin` (0..31) with `sign` (±1).
pub fn apply_op(
    img: &[u8],
    h: usize,
    w: usize,
    c: usize,
    op: Op,
    bin: usize,
    sign: f32,
) -> Vec<u8> {
    match op {
        Op::Identity => img.to_vec(),
        Op::ShearX => {
            let m = sign * linspace(0.0, 0.99, bin);
            warp(img, h, w, c, [1.0, m, 0.0, 0.0, 1.0, 0.0])
        }
        Op::ShearY => {
            let m = sign * linspace(0.0, 0.99, bin);
            warp(img, h, w, c, [1.0, 0.0, 0.0, m, 1.0, 0.0])
        }
        Op::TranslateX => {
            // torchvision's Wide space translates up to 32 pixels.
            let t = sign * linspace(0.0, 32.0, bin);
            warp(img, h, w, c, [1.0, 0.0, -t, 0.0, 1.0, 0.0])
        }
        Op::TranslateY => {
            let t = sign * linspace(0.0, 32.0, bin);
            warp(img, h, w, c, [1.0, 0.0, 0.0, 0.0, 1.0, -t])
        }
        Op::Rotate => {
            let (s, co) = (sign * linspace(0.0, 135.0, bin)).to_radians().sin_cos();
            warp(img, h, w, c, [co, s, 0.0, -s, co, 0.0])
        }
        Op::Brightness => {
            let f = 1.0 + sign * linspace(0.0, 0.99, bin);
            blend(img, &vec![0.0; img.len()], f)
        }
        Op::Color => {
            let f = 1.0 + sign * linspace(0.0, 0.99, bin);
            let g = grey(img, c);
            let other: Vec<f32> = (0..img.len()).map(|i| g[i / c]).collect();
            blend(img, &other, f)
        }
        Op::Contrast => {
            let f = 1.0 + sign * linspace(0.0, 0.99, bin);
            let g = grey(img, c);
            let mean = g.iter().sum::<f32>() / g.len().max(1) as f32;
            blend(img, &vec![mean; img.len()], f)
        }
        Op::Sharpness => {
            let f = 1.0 + sign * linspace(0.0, 0.99, bin);
            // PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, borders unchanged.
            let mut smooth: Vec<f32> = img.iter().map(|&v| v as f32).collect();
            for y in 1..h.saturating_sub(1) {
                for x in 1..w.saturating_sub(1) {
                    for k in 0..c {
                        let mut s = 0.0;
                        for dy in 0..3 {
                            for dx in 0..3 {
                                let wgt = if dy == 1 && dx == 1 { 5.0 } else { 1.0 };
                                s += wgt * img[((y + dy - 1) * w + x + dx - 1) * c + k] as f32;
                            }
                        }
                        smooth[(y * w + x) * c + k] = (s / 13.0).round();
                    }
                }
            }
            blend(img, &smooth, f)
        }
        Op::Posterize => {
            let bits = 8 - (bin as f32 / ((BINS - 1) as f32 / 6.0)).round() as u32;
            let mask = !((1u32 << (8 - bits)) - 1) as u8;
            img.iter().map(|&v| v & mask).collect()
        }
        Op::Solarize => {
            let thr = linspace(255.0, 0.0, bin);
            img.iter()
                .map(|&v| if v as f32 >= thr { 255 - v } else { v })
                .collect()
        }
        Op::AutoContrast => {
            let mut out = img.to_vec();
            for k in 0..c {
                let (mut lo, mut hi) = (255u8, 0u8);
                for p in img.chunks_exact(c) {
                    lo = lo.min(p[k]);
                    hi = hi.max(p[k]);
                }
                if hi > lo {
                    let scale = 255.0 / (hi - lo) as f32;
                    for (o, p) in out.chunks_exact_mut(c).zip(img.chunks_exact(c)) {
                        o[k] = ((p[k] - lo) as f32 * scale).round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            out
        }
        Op::Equalize => {
            // PIL ImageOps.equalize per channel.
            let mut out = img.to_vec();
            let n = h * w;
            for k in 0..c {
                let mut hist = [0usize; 256];
                for p in img.chunks_exact(c) {
                    hist[p[k] as usize] += 1;
                }
                let last = hist
                    .iter()
                    .rposition(|&v| v > 0)
                    .map(|i| hist[i])
                    .unwrap_or(0);
                let step = (n - last) / 255;
                if step == 0 {
                    continue;
                }
                let mut lut = [0u8; 256];
                let mut acc = step / 2;
                for i in 0..256 {
                    lut[i] = (acc / step).min(255) as u8;
                    acc += hist[i];
                }
                for o in out.chunks_exact_mut(c) {
                    o[k] = lut[o[k] as usize];
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ventral_core::rng::stream;

    fn test_image() -> Vec<u8> {
        (0..8 * 8 * 3).map(|i| (i * 37 % 251) as u8).collect()
    }

    #[test]
    fn every_op_keeps_the_shape_and_identity_is_identity() {
        let img = test_image();
        for op in OPS {
            for bin in [0, 15, 30] {
                let out = apply_op(&img, 8, 8, 3, op, bin, 1.0);
                assert_eq!(out.len(), img.len(), "{op:?}");
            }
        }
        assert_eq!(apply_op(&img, 8, 8, 3, Op::Identity, 20, 1.0), img);
        // Magnitude 0 of the signed ops is the identity too.
        for op in [
            Op::ShearX,
            Op::Rotate,
            Op::Brightness,
            Op::Contrast,
            Op::TranslateY,
        ] {
            assert_eq!(apply_op(&img, 8, 8, 3, op, 0, -1.0), img, "{op:?}");
        }
    }

    #[test]
    fn known_values() {
        let img = vec![10u8, 200, 255, 0];
        // Solarize at the last bin (threshold 0) inverts every value.
        assert_eq!(
            apply_op(&img, 2, 2, 1, Op::Solarize, 30, 1.0),
            vec![245, 55, 0, 255]
        );
        // Posterize at bin 30 keeps 2 bits.
        assert_eq!(
            apply_op(&img, 2, 2, 1, Op::Posterize, 30, 1.0),
            vec![0, 192, 192, 0]
        );
        // Autocontrast of an already full-range image is the identity.
        assert_eq!(apply_op(&img, 2, 2, 1, Op::AutoContrast, 0, 1.0), img);
        // Horizontal flip.
        assert_eq!(hflip(&[1, 2, 3, 4], 2, 2, 1), vec![2, 1, 4, 3]);
    }

    #[test]
    fn deterministic_per_stream() {
        let img = test_image();
        let cfg = AugmentConfig {
            random_resized_crop: true,
            hflip: true,
            ..Default::default()
        };
        let a = augment(&img, 8, 8, 3, &cfg, &mut stream(1, "augment", &[0, 5]));
        let b = augment(&img, 8, 8, 3, &cfg, &mut stream(1, "augment", &[0, 5]));
        assert_eq!(a, b);
        let differ =
            (0..20).any(|i| augment(&img, 8, 8, 3, &cfg, &mut stream(1, "augment", &[1, i])) != a);
        assert!(differ);
    }
}
