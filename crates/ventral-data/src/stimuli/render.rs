//! Rendering one stimulus: procedural background with clutter, a ray-marched object, occluders.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::sdf::{Object, V3, v3};

/// Variation levels, as HvM's V0 / V3 / V6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Low, Level::Medium, Level::High];
    pub fn name(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// Everything that varies per image.
#[derive(Debug, Clone)]
pub struct Scene {
    pub level: Level,
    /// Rotations relative to the canonical view, degrees: about the camera axis (xy plane),
    /// about the vertical axis (xz plane) and about the horizontal axis (yz plane).
    pub rxy: f32,
    pub rxz: f32,
    pub ryz: f32,
    /// Object centre in units of the image half-width (x right, y up).
    pub pos_x: f32,
    pub pos_y: f32,
    /// Scale relative to the canonical size (object diameter = 60 % of the image width).
    pub scale: f32,
    pub light_azimuth: f32,
    pub light_elevation: f32,
    pub clutter_items: usize,
    pub occluders: usize,
}

impl Scene {
    /// Draw the per-image variation of `level`.
    pub fn draw(level: Level, rng: &mut ChaCha8Rng) -> Scene {
        let mut u = |a: f32, b: f32| a + (b - a) * rng.random::<f32>();
        // Ranges follow HvM: V0 none; V3 ±45°, ±0.3 position, scale 0.77–1.3; V6 ±90°, ±0.6,
        // 0.625–1.6.
        let (rot, pos, smin, smax): (f32, f32, f32, f32) = match level {
            Level::Low => (0.0, 0.0, 1.0, 1.0),
            Level::Medium => (45.0, 0.3, 0.77, 1.3),
            Level::High => (90.0, 0.6, 0.625, 1.6),
        };
        let (rxy, rxz, ryz) = (u(-rot, rot), u(-rot, rot), u(-rot, rot));
        let (pos_x, pos_y) = (u(-pos, pos), u(-pos, pos));
        // Log-uniform scale.
        let scale = (u(smin.ln(), smax.ln())).exp();
        let (light_azimuth, light_elevation) = match level {
            Level::Low => (30.0, 40.0),
            Level::Medium => (u(-60.0, 60.0), u(20.0, 60.0)),
            Level::High => (u(-90.0, 90.0), u(10.0, 75.0)),
        };
        let (clutter_items, occluders) = match level {
            Level::Low => (3 + (u(0.0, 2.999) as usize), 0),
            Level::Medium => (6 + (u(0.0, 4.999) as usize), (u(0.0, 1.999)) as usize),
            Level::High => (10 + (u(0.0, 6.999) as usize), 1 + (u(0.0, 1.999)) as usize),
        };
        Scene {
            level,
            rxy,
            rxz,
            ryz,
            pos_x,
            pos_y,
            scale,
            light_azimuth,
            light_elevation,
            clutter_items,
            occluders,
        }
    }
}

/// What the renderer measured about an image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measures {
    /// Fraction of the object's visible-without-occluders area hidden by occluders.
    pub occluded_fraction: f32,
    /// Fraction of the image covered by clutter items (behind the object).
    pub clutter_fraction: f32,
    /// Fraction of the image covered by the visible object.
    pub object_area_fraction: f32,
}

type M3 = [[f32; 3]; 3];

fn mat_mul(a: &M3, b: &M3) -> M3 {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}
fn rot_x(deg: f32) -> M3 {
    let (s, c) = deg.to_radians().sin_cos();
    [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
}
fn rot_y(deg: f32) -> M3 {
    let (s, c) = deg.to_radians().sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}
fn rot_z(deg: f32) -> M3 {
    let (s, c) = deg.to_radians().sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}
fn apply(m: &M3, p: V3) -> V3 {
    v3(
        m[0][0] * p.x + m[0][1] * p.y + m[0][2] * p.z,
        m[1][0] * p.x + m[1][1] * p.y + m[1][2] * p.z,
        m[2][0] * p.x + m[2][1] * p.y + m[2][2] * p.z,
    )
}
fn apply_t(m: &M3, p: V3) -> V3 {
    v3(
        m[0][0] * p.x + m[1][0] * p.y + m[2][0] * p.z,
        m[0][1] * p.x + m[1][1] * p.y + m[2][1] * p.z,
        m[0][2] * p.x + m[1][2] * p.y + m[2][2] * p.z,
    )
}

/// Hash-based value noise in [0, 1].
fn hash2(x: i32, y: i32, seed: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x27d4_eb2d)
        ^ (y as u32).wrapping_mul(0x1656_67b1)
        ^ seed.wrapping_mul(0x9e37_79b9);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    (h & 0xffff) as f32 / 65535.0
}

fn value_noise(x: f32, y: f32, seed: u32) -> f32 {
    let (xi, yi) = (x.floor() as i32, y.floor() as i32);
    let (fx, fy) = (x - xi as f32, y - yi as f32);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let a = hash2(xi, yi, seed);
    let b = hash2(xi + 1, yi, seed);
    let c = hash2(xi, yi + 1, seed);
    let d = hash2(xi + 1, yi + 1, seed);
    let top = a + (b - a) * sx;
    let bot = c + (d - c) * sx;
    top + (bot - top) * sy
}

/// A flat 2-D shape for clutter and occluders, in normalised image coordinates ([-1, 1]).
#[derive(Debug, Clone, Copy)]
struct Flat {
    kind: u8,
    cx: f32,
    cy: f32,
    a: f32,
    b: f32,
    angle: f32,
    color: V3,
    texture: f32,
    seed: u32,
}

impl Flat {
    fn random(rng: &mut ChaCha8Rng, cx: f32, cy: f32, size: f32) -> Flat {
        let mut u = |a: f32, b: f32| a + (b - a) * rng.random::<f32>();
        let kind = (u(0.0, 3.999)) as u8;
        let (a, b) = match kind {
            // bar: long and thin
            2 => (size * u(0.8, 1.6), size * u(0.06, 0.16)),
            _ => (size * u(0.3, 0.8), size * u(0.3, 0.8)),
        };
        Flat {
            kind,
            cx,
            cy,
            a,
            b,
            angle: u(0.0, std::f32::consts::PI),
            color: v3(u(0.05, 0.95), u(0.05, 0.95), u(0.05, 0.95)),
            texture: u(0.0, 0.5),
            seed: (u(0.0, 1.0) * 1e6) as u32,
        }
    }

    /// Signed distance-like value (< 0 inside) at (x, y), in normalised units.
    fn dist(&self, x: f32, y: f32) -> f32 {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (px, py) = (c * dx + s * dy, -s * dx + c * dy);
        match self.kind {
            // ellipse (approximate distance)
            0 | 3 => {
                let k = ((px / self.a).powi(2) + (py / self.b).powi(2)).sqrt();
                (k - 1.0) * self.a.min(self.b)
            }
            // rectangle and bar
            _ => {
                let qx = px.abs() - self.a;
                let qy = py.abs() - self.b;
                qx.max(qy).min(0.0) + (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt()
            }
        }
    }

    fn color_at(&self, x: f32, y: f32) -> V3 {
        let n = value_noise(x * 12.0, y * 12.0, self.seed);
        let k = 1.0 - self.texture + self.texture * 2.0 * n;
        let stripes = if self.kind == 3 {
            0.75 + 0.25 * ((x * 30.0 + y * 17.0).sin() > 0.0) as u8 as f32
        } else {
            1.0
        };
        self.color * (k * stripes)
    }
}

/// Render `obj` in `scene` at `size`×`size`; returns RGB8 HWC pixels and measures.
pub fn render(
    obj: &Object,
    scene: &Scene,
    size: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, Measures) {
    let n = size * size;
    let pix = 2.0 / size as f32; // pixel size in normalised units
    let coord = |i: usize| (i as f32 + 0.5) * pix - 1.0;

    // --- background: gradient, texture, clutter ---
    let u = |rng: &mut ChaCha8Rng, a: f32, b: f32| a + (b - a) * rng.random::<f32>();
    let bg_a = v3(u(rng, 0.1, 0.7), u(rng, 0.1, 0.7), u(rng, 0.1, 0.7));
    let bg_b = v3(u(rng, 0.1, 0.7), u(rng, 0.1, 0.7), u(rng, 0.1, 0.7));
    let angle = u(rng, 0.0, std::f32::consts::TAU);
    let (gs, gc) = angle.sin_cos();
    let noise_seed = (u(rng, 0.0, 1.0) * 1e7) as u32;
    let noise_freq = u(rng, 2.0, 6.0);
    let mut img = vec![v3(0.0, 0.0, 0.0); n];
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (coord(x), -coord(y));
            let t = ((fx * gc + fy * gs) * 0.5 + 0.5).clamp(0.0, 1.0);
            let base = bg_a * (1.0 - t) + bg_b * t;
            let nz = 0.5 * value_noise(fx * noise_freq, fy * noise_freq, noise_seed)
                + 0.5
                    * value_noise(
                        fx * noise_freq * 3.0,
                        fy * noise_freq * 3.0,
                        noise_seed ^ 0xabcd,
                    );
            img[y * size + x] = base * (0.7 + 0.6 * nz);
        }
    }
    let mut clutter_mask = vec![false; n];
    for _ in 0..scene.clutter_items {
        let (cx, cy, sz) = (u(rng, -1.0, 1.0), u(rng, -1.0, 1.0), u(rng, 0.15, 0.5));
        let f = Flat::random(rng, cx, cy, sz);
        draw_flat(&f, size, &mut img, Some(&mut clutter_mask));
    }

    // --- object: ray-marched SDF, perspective camera at z = -6 looking along +z ---
    let r0 = mat_mul(&rot_x(20.0), &rot_y(35.0)); // canonical 3/4 view from slightly above
    let rvar = mat_mul(
        &rot_z(scene.rxy),
        &mat_mul(&rot_y(scene.rxz), &rot_x(scene.ryz)),
    );
    let rot = mat_mul(&rvar, &r0); // object → world
    let s = scene.scale;
    let t = v3(scene.pos_x * 2.0, scene.pos_y * 2.0, 0.0);
    let eye = v3(0.0, 0.0, -6.0);
    let focal = 3.6; // half-width of 1.67 world units at z = 0: a unit-radius object spans 60 %
    let light = {
        let (az, el) = (
            scene.light_azimuth.to_radians(),
            scene.light_elevation.to_radians(),
        );
        v3(el.cos() * az.sin(), el.sin(), -el.cos() * az.cos()).norm()
    };
    let bound_r = 1.02 * s;
    let world_sdf = |p: V3| -> (f32, u8) {
        let q = apply_t(&rot, p - t) * (1.0 / s);
        let (d, m) = obj.sdf(q);
        (d * s, m)
    };
    let normal = |p: V3| -> V3 {
        let e = 1e-3 * s;
        let k1 = v3(1.0, -1.0, -1.0);
        let k2 = v3(-1.0, -1.0, 1.0);
        let k3 = v3(-1.0, 1.0, -1.0);
        let k4 = v3(1.0, 1.0, 1.0);
        (k1 * world_sdf(p + k1 * e).0
            + k2 * world_sdf(p + k2 * e).0
            + k3 * world_sdf(p + k3 * e).0
            + k4 * world_sdf(p + k4 * e).0)
            .norm()
    };
    let _ = apply; // (object → world for points is not needed; normals come from the world SDF)
    let mut alpha = vec![0.0f32; n];
    let mut obj_col = vec![v3(0.0, 0.0, 0.0); n];
    let pix_angle = pix / focal; // angular size of a pixel (small-angle)
    for y in 0..size {
        for x in 0..size {
            let dir = v3(coord(x), -coord(y), focal).norm();
            // Ray–bounding-sphere intersection.
            let oc = eye - t;
            let b = oc.dot(dir);
            let c = oc.dot(oc) - bound_r * bound_r;
            let disc = b * b - c;
            if disc <= 0.0 {
                continue;
            }
            let sq = disc.sqrt();
            let (t0, t1) = ((-b - sq).max(0.0), -b + sq);
            let mut tt = t0;
            let mut hit = false;
            let mut best = (f32::MAX, t0); // min of d / t along the ray, and where
            for _ in 0..64 {
                let p = eye + dir * tt;
                let (d, _) = world_sdf(p);
                let ratio = d / tt;
                if ratio < best.0 {
                    best = (ratio, tt);
                }
                if d < 2e-3 * s {
                    hit = true;
                    break;
                }
                tt += d;
                if tt > t1 {
                    break;
                }
            }
            let (cover, tp) = if hit {
                (1.0, tt)
            } else {
                let cov = 1.0 - best.0 / (0.7 * pix_angle);
                if cov <= 0.0 {
                    continue;
                }
                (cov.min(1.0), best.1)
            };
            let p = eye + dir * tp;
            let nrm = normal(p);
            let (_, m) = world_sdf(p);
            let base = obj.colors[m as usize];
            let diff = nrm.dot(light).max(0.0);
            let h = (light - dir).norm();
            let spec = nrm.dot(h).max(0.0).powi(24);
            let col = base * (0.28 + 0.72 * diff) + v3(1.0, 1.0, 1.0) * (0.25 * spec);
            alpha[y * size + x] = cover;
            obj_col[y * size + x] = col;
        }
    }
    let obj_area: f32 = alpha.iter().sum();
    for i in 0..n {
        let a = alpha[i];
        if a > 0.0 {
            img[i] = img[i] * (1.0 - a) + obj_col[i] * a;
        }
    }

    // --- occluders in front of the object ---
    let mut occ_mask = vec![false; n];
    for _ in 0..scene.occluders {
        let (cx, cy) = (
            scene.pos_x + u(rng, -0.35, 0.35) * s,
            scene.pos_y + u(rng, -0.35, 0.35) * s,
        );
        let f = Flat::random(rng, cx, cy, 0.35 * s);
        draw_flat(&f, size, &mut img, Some(&mut occ_mask));
    }
    let hidden: f32 = alpha
        .iter()
        .zip(&occ_mask)
        .map(|(&a, &o)| if o { a } else { 0.0 })
        .sum();
    let measures = Measures {
        occluded_fraction: if obj_area > 0.0 {
            hidden / obj_area
        } else {
            0.0
        },
        clutter_fraction: clutter_mask.iter().filter(|&&m| m).count() as f32 / n as f32,
        object_area_fraction: (obj_area - hidden) / n as f32,
    };

    // --- to sRGB-ish u8 ---
    let mut out = Vec::with_capacity(n * 3);
    for c in img {
        for v in [c.x, c.y, c.z] {
            out.push((v.clamp(0.0, 1.0).powf(1.0 / 1.6) * 255.0 + 0.5) as u8);
        }
    }
    (out, measures)
}

fn draw_flat(f: &Flat, size: usize, img: &mut [V3], mut mask: Option<&mut Vec<bool>>) {
    let pix = 2.0 / size as f32;
    let reach = f.a.max(f.b) + pix;
    let to_px = |v: f32| ((v + 1.0) / pix) as isize;
    let (x0, x1) = (
        to_px(f.cx - reach).max(0),
        to_px(f.cx + reach).min(size as isize - 1),
    );
    // y grows downwards: image row for normalised y is (1 - y) / pix.
    let to_row = |v: f32| ((1.0 - v) / pix) as isize;
    let (y0, y1) = (
        to_row(f.cy + reach).max(0),
        to_row(f.cy - reach).min(size as isize - 1),
    );
    for yy in y0..=y1 {
        for xx in x0..=x1 {
            let (x, y) = ((xx as f32 + 0.5) * pix - 1.0, 1.0 - (yy as f32 + 0.5) * pix);
            let d = f.dist(x, y);
            let a = (0.5 - d / pix).clamp(0.0, 1.0);
            if a > 0.0 {
                let i = yy as usize * size + xx as usize;
                img[i] = img[i] * (1.0 - a) + f.color_at(x, y) * a;
                if a >= 0.5
                    && let Some(m) = mask.as_deref_mut()
                {
                    m[i] = true;
                }
            }
        }
    }
}
