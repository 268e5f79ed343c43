//! Signed-distance primitives and the object library of the synthetic stimulus set.
//!
//! Eight categories in the spirit of the HvM stimuli (Majaj et al. 2015): animals, boats, cars,
//! chairs, faces, fruits, planes, tables. Each object is a union of primitives whose proportions
//! and part layout are drawn once from a fixed library seed, so an object id means the same
//! 3-D shape for every run seed. Objects are scaled to fit the unit sphere.

use rand::RngExt;
use ventral_core::rng::stream;

/// Seed of the object library (fixed: objects do not change with the run seed).
const LIBRARY_SEED: u64 = 0x5645_4e54_5241_4c00;

/// Category names, in label order.
pub const CATEGORIES: [&str; 8] = [
    "animals", "boats", "cars", "chairs", "faces", "fruits", "planes", "tables",
];

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct V3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

pub const fn v3(x: f32, y: f32, z: f32) -> V3 {
    V3 { x, y, z }
}

impl V3 {
    pub fn dot(self, o: V3) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn len(self) -> f32 {
        self.dot(self).sqrt()
    }
    pub fn norm(self) -> V3 {
        let l = self.len().max(1e-12);
        self * (1.0 / l)
    }
    pub fn abs(self) -> V3 {
        v3(self.x.abs(), self.y.abs(), self.z.abs())
    }
    pub fn max0(self) -> V3 {
        v3(self.x.max(0.0), self.y.max(0.0), self.z.max(0.0))
    }
    pub fn hadamard(self, o: V3) -> V3 {
        v3(self.x * o.x, self.y * o.y, self.z * o.z)
    }
    pub fn elem_div(self, o: V3) -> V3 {
        v3(self.x / o.x, self.y / o.y, self.z / o.z)
    }
    pub fn max_elem(self) -> f32 {
        self.x.max(self.y).max(self.z)
    }
}

impl std::ops::Add for V3 {
    type Output = V3;
    fn add(self, o: V3) -> V3 {
        v3(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl std::ops::Sub for V3 {
    type Output = V3;
    fn sub(self, o: V3) -> V3 {
        v3(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl std::ops::Mul<f32> for V3 {
    type Output = V3;
    fn mul(self, k: f32) -> V3 {
        v3(self.x * k, self.y * k, self.z * k)
    }
}

/// A primitive in object space.
#[derive(Debug, Clone, Copy)]
pub enum Prim {
    Ellipsoid {
        c: V3,
        r: V3,
    },
    /// Axis-aligned box of half-extents `b` with rounding `r`.
    RoundBox {
        c: V3,
        b: V3,
        r: f32,
    },
    Capsule {
        a: V3,
        b: V3,
        r: f32,
    },
    /// Cylinder along z: radius `r`, half-depth `h`.
    CylZ {
        c: V3,
        r: f32,
        h: f32,
    },
}

impl Prim {
    /// Signed distance (exact for boxes, capsules and cylinders; a bound for ellipsoids).
    #[inline]
    pub fn dist(&self, p: V3) -> f32 {
        match *self {
            Prim::Ellipsoid { c, r } => {
                let q = p - c;
                let k0 = q.elem_div(r).len();
                let k1 = q.elem_div(r.hadamard(r)).len();
                if k1 < 1e-9 {
                    -r.x.min(r.y).min(r.z)
                } else {
                    k0 * (k0 - 1.0) / k1
                }
            }
            Prim::RoundBox { c, b, r } => {
                let q = (p - c).abs() - b + v3(r, r, r);
                q.max0().len() + q.max_elem().min(0.0) - r
            }
            Prim::Capsule { a, b, r } => {
                let pa = p - a;
                let ba = b - a;
                let h = (pa.dot(ba) / ba.dot(ba).max(1e-12)).clamp(0.0, 1.0);
                (pa - ba * h).len() - r
            }
            Prim::CylZ { c, r, h } => {
                let q = p - c;
                let dx = (q.x * q.x + q.y * q.y).sqrt() - r;
                let dz = q.z.abs() - h;
                dx.max(dz).min(0.0) + (dx.max(0.0).powi(2) + dz.max(0.0).powi(2)).sqrt()
            }
        }
    }

    /// Largest distance from the origin of any point of the primitive (conservative).
    fn bound(&self) -> f32 {
        match *self {
            Prim::Ellipsoid { c, r } => c.len() + r.max_elem(),
            Prim::RoundBox { c, b, .. } => c.len() + b.len(),
            Prim::Capsule { a, b, r } => a.len().max(b.len()) + r,
            Prim::CylZ { c, r, h } => c.len() + (r * r + h * h).sqrt(),
        }
    }

    fn scaled(self, k: f32) -> Prim {
        match self {
            Prim::Ellipsoid { c, r } => Prim::Ellipsoid { c: c * k, r: r * k },
            Prim::RoundBox { c, b, r } => Prim::RoundBox {
                c: c * k,
                b: b * k,
                r: r * k,
            },
            Prim::Capsule { a, b, r } => Prim::Capsule {
                a: a * k,
                b: b * k,
                r: r * k,
            },
            Prim::CylZ { c, r, h } => Prim::CylZ {
                c: c * k,
                r: r * k,
                h: h * k,
            },
        }
    }
}

/// A library object: primitives with a material index each (0 = body colour, 1 = detail).
#[derive(Debug, Clone)]
pub struct Object {
    pub category: usize,
    pub id: usize,
    pub name: String,
    /// The primitives, in union order (see [`Object::new`]).
    parts: Vec<(Prim, u8)>,
    /// A bounding sphere per part ([`Cull`]), for [`Object::sdf`] to skip parts that cannot
    /// change its result.
    cull: Vec<Cull>,
    /// Smooth-union radius (0 = hard union).
    smooth: f32,
    /// Linear RGB of materials 0 and 1.
    pub colors: [V3; 2],
}

/// A sphere around a primitive, and how far outside it the primitive's *computed* distance
/// ([`Prim::dist`]) is bounded below: `dist(p) ≥ (|p − c| − r) / inv_rho` wherever
/// `|p − c| ≥ r`.
///
/// For the exact distances (round box, capsule, cylinder) `inv_rho = 1`: the primitive lies in
/// the sphere, so its distance is at least the distance to the sphere. For the ellipsoid's bound
/// `k0 (k0 − 1) / k1` (`k0 = |q / r|`, `k1 = |q / r²|`), `r` is the largest semi-axis and
/// `inv_rho = (r_max / r_min)²`: outside that sphere `k0 ≥ |q| / r_max ≥ 1`, `k0 (k0 − 1)`
/// grows with `k0` and `1 / k1 ≥ r_min² / |q|`, so the bound is at least
/// `(r_min / r_max)² (|q| − r_max)`. (The bound is not at least `|q| − r_max`: far away it
/// grows more slowly than `|q|` for elongated ellipsoids.)
#[derive(Debug, Clone, Copy)]
struct Cull {
    c: V3,
    r: f32,
    inv_rho: f32,
}

/// Slack, in object units, between the bound a skipped part must clear and what
/// [`Object::sdf`] needs (float32 rounding of the distances is ~1e-6 here: objects fit the unit
/// sphere and the camera is within 10 units).
const CULL_SLACK: f32 = 1e-3;

impl Prim {
    fn cull(&self) -> Cull {
        match *self {
            Prim::Ellipsoid { c, r } => {
                let (lo, hi) = (r.x.min(r.y).min(r.z), r.max_elem());
                Cull {
                    c,
                    r: hi,
                    inv_rho: (hi / lo.max(1e-12)).powi(2),
                }
            }
            Prim::RoundBox { c, b, .. } => Cull {
                c,
                r: b.len(),
                inv_rho: 1.0,
            },
            Prim::Capsule { a, b, r } => Cull {
                c: (a + b) * 0.5,
                r: (b - a).len() * 0.5 + r,
                inv_rho: 1.0,
            },
            Prim::CylZ { c, r, h } => Cull {
                c,
                r: (r * r + h * h).sqrt(),
                inv_rho: 1.0,
            },
        }
    }
}

impl Cull {
    /// Whether the part's computed distance at `p` is certainly at least `need` (+ slack).
    #[inline(always)]
    fn clears(&self, p: V3, need: f32) -> bool {
        let q = p - self.c;
        let reach = self.r + (need + CULL_SLACK).max(0.0) * self.inv_rho;
        // `reach` is +inf while `need` is still f32::MAX: never skipped then.
        q.dot(q) >= reach * reach
    }
}

impl Object {
    /// An object from its parts (`smooth` = the smooth-union radius, 0 for a hard union).
    pub fn new(
        category: usize,
        id: usize,
        name: String,
        parts: Vec<(Prim, u8)>,
        smooth: f32,
        colors: [V3; 2],
    ) -> Self {
        let cull = parts.iter().map(|(p, _)| p.cull()).collect();
        Self {
            category,
            id,
            name,
            parts,
            cull,
            smooth,
            colors,
        }
    }

    /// The primitives with their materials, in union order.
    pub fn parts(&self) -> &[(Prim, u8)] {
        &self.parts
    }

    /// Distance and material at `p` (object space).
    ///
    /// The union runs over the parts in order: `d ← smin(d, dᵢ)` (or `min`), the material of
    /// the smallest `dᵢ`. A part whose distance is certainly at least the smallest so far and,
    /// for the smooth union, at least `d + k` (where the blend weight clamps to 1 and `smin`
    /// returns `d` exactly) changes neither, so it is skipped (a bounding sphere per part): the
    /// result is bit for bit that of evaluating every part ([`Object::sdf_every_part`]). Along
    /// traced rays about half of the part evaluations are skipped (the unit test counts them);
    /// `ventral stimuli` renders 1.13× faster for it (2026-12-05, Zen 1, byte-identical output).
    #[inline]
    pub fn sdf(&self, p: V3) -> (f32, u8) {
        self.union(p, true, || {})
    }

    /// [`Object::sdf`] evaluating every part (the definition its skipping must match).
    pub fn sdf_every_part(&self, p: V3) -> (f32, u8) {
        self.union(p, false, || {})
    }

    /// The union over the parts, skipping what cannot change it when `skip` (calling
    /// `skipped` for each part skipped).
    #[inline(always)]
    fn union(&self, p: V3, skip: bool, mut skipped: impl FnMut()) -> (f32, u8) {
        let mut d = f32::MAX;
        let mut best = f32::MAX;
        let mut mat = 0;
        // A radius of 0 (or below, or NaN) is a hard union.
        let k = self.smooth.max(0.0);
        for ((prim, m), cull) in self.parts.iter().zip(&self.cull) {
            // A hard union (k = 0) needs `d`, which `d + k` then is.
            if skip && cull.clears(p, best.max(d + k)) {
                skipped();
                continue;
            }
            let di = prim.dist(p);
            if di < best {
                best = di;
                mat = *m;
            }
            d = if k > 0.0 && d < f32::MAX {
                let h = (0.5 + 0.5 * (di - d) / k).clamp(0.0, 1.0);
                di * (1.0 - h) + d * h - k * h * (1.0 - h)
            } else {
                d.min(di)
            };
        }
        (d, mat)
    }
}

fn hsv(h: f32, s: f32, v: f32) -> V3 {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let i = h6.floor() as i32;
    let f = h6 - i as f32;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i {
        0 => v3(v, t, p),
        1 => v3(q, v, p),
        2 => v3(p, v, t),
        3 => v3(p, q, v),
        4 => v3(t, p, v),
        _ => v3(v, p, q),
    }
}

/// Build object `id` of `category` (deterministic, independent of the run seed).
pub fn object(category: usize, id: usize) -> Object {
    use Prim::*;
    let mut rng = stream(LIBRARY_SEED, "object", &[category as u64, id as u64]);
    let mut u = |a: f32, b: f32| a + (b - a) * rng.random::<f32>();
    let mut parts: Vec<(Prim, u8)> = Vec::new();
    let mut smooth = 0.0;
    match category {
        // animals: quadruped with head, neck, tail, ears
        0 => {
            let (l, h, w) = (u(0.42, 0.6), u(0.17, 0.26), u(0.15, 0.22));
            let ll = u(0.25, 0.45);
            let y0 = 0.1;
            parts.push((
                Ellipsoid {
                    c: v3(0.0, y0, 0.0),
                    r: v3(l, h, w),
                },
                0,
            ));
            let lr = u(0.045, 0.075);
            for sx in [-1.0, 1.0] {
                for sz in [-1.0, 1.0] {
                    let x = sx * (l - 0.13);
                    let z = sz * (w - 0.06);
                    parts.push((
                        Capsule {
                            a: v3(x, y0 - h * 0.4, z),
                            b: v3(x, y0 - h * 0.4 - ll, z),
                            r: lr,
                        },
                        0,
                    ));
                }
            }
            let hr = u(0.13, 0.21);
            let neck = u(0.05, 0.25);
            let head = v3(l + 0.1, y0 + h + neck, 0.0);
            parts.push((
                Capsule {
                    a: v3(l - 0.12, y0 + h * 0.3, 0.0),
                    b: head,
                    r: u(0.07, 0.11),
                },
                0,
            ));
            parts.push((
                Ellipsoid {
                    c: head + v3(0.06, 0.0, 0.0),
                    r: v3(hr * u(1.0, 1.5), hr, hr * 0.9),
                },
                0,
            ));
            for sz in [-1.0, 1.0] {
                parts.push((
                    Ellipsoid {
                        c: head + v3(-0.02, hr * 0.9, sz * hr * 0.5),
                        r: v3(0.04, u(0.06, 0.12), 0.03),
                    },
                    1,
                ));
            }
            parts.push((
                Capsule {
                    a: v3(-l + 0.05, y0 + h * 0.3, 0.0),
                    b: v3(-l - u(0.15, 0.3), y0 + h + u(-0.1, 0.25), 0.0),
                    r: 0.035,
                },
                1,
            ));
            smooth = 0.06;
        }
        // boats: hull, deck, cabin, optional mast and sail
        1 => {
            let (l, w) = (u(0.7, 0.95), u(0.2, 0.3));
            parts.push((
                Ellipsoid {
                    c: v3(0.0, -0.25, 0.0),
                    r: v3(l, u(0.13, 0.2), w),
                },
                0,
            ));
            parts.push((
                RoundBox {
                    c: v3(0.0, -0.17, 0.0),
                    b: v3(l * 0.85, 0.035, w * 0.8),
                    r: 0.02,
                },
                1,
            ));
            let cx = u(-0.35, 0.15);
            let ch = u(0.06, 0.16);
            parts.push((
                RoundBox {
                    c: v3(cx, -0.13 + ch, 0.0),
                    b: v3(u(0.12, 0.3), ch, w * 0.6),
                    r: 0.03,
                },
                0,
            ));
            if id.is_multiple_of(2) {
                let top = u(0.55, 0.85);
                parts.push((
                    Capsule {
                        a: v3(0.1, -0.15, 0.0),
                        b: v3(0.1, top, 0.0),
                        r: 0.025,
                    },
                    1,
                ));
                parts.push((
                    RoundBox {
                        c: v3(-0.12, (top - 0.05) * 0.55, 0.0),
                        b: v3(u(0.14, 0.26), top * 0.4, 0.012),
                        r: 0.005,
                    },
                    1,
                ));
            } else {
                parts.push((
                    CylZ {
                        c: v3(cx - 0.05, 0.12 + ch, 0.0),
                        r: 0.05,
                        h: 0.05,
                    },
                    1,
                ));
            }
        }
        // cars: body, cabin, four wheels
        2 => {
            let (l, h, w) = (u(0.6, 0.8), u(0.11, 0.17), u(0.28, 0.36));
            let y0 = -0.05;
            parts.push((
                RoundBox {
                    c: v3(0.0, y0, 0.0),
                    b: v3(l, h, w),
                    r: 0.06,
                },
                0,
            ));
            let chh = u(0.09, 0.16);
            parts.push((
                RoundBox {
                    c: v3(u(-0.2, 0.05), y0 + h + chh - 0.03, 0.0),
                    b: v3(l * u(0.35, 0.6), chh, w * 0.85),
                    r: 0.05,
                },
                1,
            ));
            let wr = u(0.11, 0.16);
            for sx in [-1.0, 1.0] {
                for sz in [-1.0, 1.0] {
                    parts.push((
                        CylZ {
                            c: v3(sx * l * 0.62, y0 - h, sz * w),
                            r: wr,
                            h: 0.055,
                        },
                        1,
                    ));
                }
            }
        }
        // chairs: seat, back, legs, optional armrests
        3 => {
            let s = u(0.28, 0.4);
            let ll = u(0.22, 0.36);
            let bh = u(0.28, 0.45);
            parts.push((
                RoundBox {
                    c: v3(0.0, 0.0, 0.0),
                    b: v3(s, 0.04, s),
                    r: 0.015,
                },
                0,
            ));
            parts.push((
                RoundBox {
                    c: v3(-s + 0.035, bh + 0.02, 0.0),
                    b: v3(0.035, bh, s),
                    r: 0.015,
                },
                0,
            ));
            for sx in [-1.0, 1.0] {
                for sz in [-1.0, 1.0] {
                    parts.push((
                        RoundBox {
                            c: v3(sx * (s - 0.04), -ll, sz * (s - 0.04)),
                            b: v3(0.03, ll, 0.03),
                            r: 0.01,
                        },
                        1,
                    ));
                }
            }
            if id % 2 == 1 {
                for sz in [-1.0, 1.0] {
                    parts.push((
                        RoundBox {
                            c: v3(0.0, 0.2, sz * (s - 0.02)),
                            b: v3(s * 0.9, 0.025, 0.03),
                            r: 0.01,
                        },
                        1,
                    ));
                }
            }
        }
        // faces: head facing the camera (-z), eyes, nose, ears, mouth, hair
        4 => {
            let r = v3(u(0.36, 0.46), u(0.5, 0.62), u(0.4, 0.5));
            parts.push((
                Ellipsoid {
                    c: v3(0.0, 0.0, 0.0),
                    r,
                },
                0,
            ));
            let ex = u(0.13, 0.2);
            let er = u(0.055, 0.085);
            for sx in [-1.0, 1.0] {
                parts.push((
                    Ellipsoid {
                        c: v3(sx * ex, 0.1, -r.z * 0.8),
                        r: v3(er, er * 0.8, er * 0.6),
                    },
                    1,
                ));
                parts.push((
                    Ellipsoid {
                        c: v3(sx * r.x, 0.02, 0.0),
                        r: v3(0.05, u(0.1, 0.15), 0.09),
                    },
                    0,
                ));
            }
            parts.push((
                Ellipsoid {
                    c: v3(0.0, -0.05, -r.z * 0.95),
                    r: v3(0.055, u(0.09, 0.14), u(0.08, 0.12)),
                },
                0,
            ));
            parts.push((
                RoundBox {
                    c: v3(0.0, -r.y * 0.5, -r.z * 0.8),
                    b: v3(u(0.09, 0.17), 0.025, 0.05),
                    r: 0.02,
                },
                1,
            ));
            parts.push((
                Ellipsoid {
                    c: v3(0.0, r.y * u(0.25, 0.4), r.z * 0.1),
                    r: v3(r.x * 1.04, r.y * 0.72, r.z * 1.0),
                },
                1,
            ));
            smooth = 0.04;
        }
        // fruits: apple, pear, banana, lemon (by object id), with stem and leaf
        5 => match id % 4 {
            0 => {
                let r = u(0.42, 0.55);
                parts.push((
                    Ellipsoid {
                        c: v3(0.0, 0.0, 0.0),
                        r: v3(r, r * u(0.85, 0.95), r),
                    },
                    0,
                ));
                parts.push((
                    Capsule {
                        a: v3(0.0, r * 0.8, 0.0),
                        b: v3(0.05, r + 0.18, 0.0),
                        r: 0.025,
                    },
                    1,
                ));
                parts.push((
                    Ellipsoid {
                        c: v3(0.13, r + 0.12, 0.0),
                        r: v3(0.12, 0.02, 0.06),
                    },
                    1,
                ));
            }
            1 => {
                parts.push((
                    Ellipsoid {
                        c: v3(0.0, -0.2, 0.0),
                        r: v3(0.4, 0.38, 0.4),
                    },
                    0,
                ));
                parts.push((
                    Ellipsoid {
                        c: v3(0.0, 0.25, 0.0),
                        r: v3(0.24, 0.3, 0.24),
                    },
                    0,
                ));
                parts.push((
                    Capsule {
                        a: v3(0.0, 0.5, 0.0),
                        b: v3(-0.04, 0.7, 0.0),
                        r: 0.025,
                    },
                    1,
                ));
                smooth = 0.15;
            }
            2 => {
                let bend = u(0.2, 0.4);
                let pts: Vec<V3> = (0..5)
                    .map(|i| {
                        let t = i as f32 / 4.0 * 2.0 - 1.0;
                        v3(t * 0.7, bend * (1.0 - t * t) - bend * 0.5, 0.0)
                    })
                    .collect();
                for k in 0..4 {
                    let r = 0.14 * (1.0 - 0.25 * ((k as f32 - 1.5).abs() / 1.5));
                    parts.push((
                        Capsule {
                            a: pts[k],
                            b: pts[k + 1],
                            r,
                        },
                        0,
                    ));
                }
                parts.push((
                    Capsule {
                        a: pts[4],
                        b: pts[4] + v3(0.08, 0.06, 0.0),
                        r: 0.04,
                    },
                    1,
                ));
                smooth = 0.05;
            }
            _ => {
                parts.push((
                    Ellipsoid {
                        c: v3(0.0, 0.0, 0.0),
                        r: v3(u(0.5, 0.6), 0.38, 0.38),
                    },
                    0,
                ));
                parts.push((
                    Ellipsoid {
                        c: v3(0.55, 0.0, 0.0),
                        r: v3(0.1, 0.08, 0.08),
                    },
                    0,
                ));
                parts.push((
                    Ellipsoid {
                        c: v3(-0.55, 0.0, 0.0),
                        r: v3(0.1, 0.08, 0.08),
                    },
                    1,
                ));
                smooth = 0.08;
            }
        },
        // planes: fuselage, wings, fin, stabiliser, optional engines
        6 => {
            let f = u(0.7, 0.85);
            let fr = u(0.08, 0.12);
            parts.push((
                Capsule {
                    a: v3(-f, 0.0, 0.0),
                    b: v3(f, 0.0, 0.0),
                    r: fr,
                },
                0,
            ));
            let span = u(0.6, 0.85);
            let wx = u(-0.05, 0.12);
            parts.push((
                RoundBox {
                    c: v3(wx, -0.02, 0.0),
                    b: v3(u(0.1, 0.2), 0.018, span),
                    r: 0.01,
                },
                0,
            ));
            parts.push((
                RoundBox {
                    c: v3(-f + 0.06, fr + u(0.1, 0.2) * 0.5, 0.0),
                    b: v3(0.09, u(0.12, 0.22), 0.015),
                    r: 0.01,
                },
                1,
            ));
            parts.push((
                RoundBox {
                    c: v3(-f + 0.06, 0.02, 0.0),
                    b: v3(0.07, 0.015, u(0.18, 0.3)),
                    r: 0.01,
                },
                1,
            ));
            if id.is_multiple_of(2) {
                for sz in [-1.0, 1.0] {
                    parts.push((
                        Capsule {
                            a: v3(wx - 0.05, -0.09, sz * span * 0.45),
                            b: v3(wx + 0.18, -0.09, sz * span * 0.45),
                            r: 0.055,
                        },
                        1,
                    ));
                }
            }
        }
        // tables: top and four legs, or a pedestal
        _ => {
            let (l, w) = (u(0.55, 0.8), u(0.3, 0.55));
            let top = 0.25;
            parts.push((
                RoundBox {
                    c: v3(0.0, top, 0.0),
                    b: v3(l, 0.035, w),
                    r: 0.015,
                },
                0,
            ));
            let lh = u(0.3, 0.45);
            if id.is_multiple_of(2) {
                for sx in [-1.0, 1.0] {
                    for sz in [-1.0, 1.0] {
                        parts.push((
                            RoundBox {
                                c: v3(sx * (l - 0.06), top - lh, sz * (w - 0.06)),
                                b: v3(0.03, lh, 0.03),
                                r: 0.01,
                            },
                            1,
                        ));
                    }
                }
            } else {
                parts.push((
                    Capsule {
                        a: v3(0.0, top, 0.0),
                        b: v3(0.0, top - 2.0 * lh, 0.0),
                        r: 0.05,
                    },
                    1,
                ));
                parts.push((
                    Ellipsoid {
                        c: v3(0.0, top - 2.0 * lh, 0.0),
                        r: v3(0.3, 0.03, 0.3),
                    },
                    1,
                ));
            }
        }
    }
    // Fit to the unit sphere.
    let bound = parts
        .iter()
        .map(|(p, _)| p.bound())
        .fold(0.0f32, f32::max)
        .max(1e-3);
    let k = 1.0 / bound;
    let parts = parts.into_iter().map(|(p, m)| (p.scaled(k), m)).collect();
    // Colours from one palette shared by all categories, so colour does not give the category.
    let c0 = hsv(u(0.0, 1.0), u(0.25, 0.75), u(0.55, 0.95));
    let c1 = hsv(u(0.0, 1.0), u(0.1, 0.6), u(0.15, 0.5));
    Object::new(
        category,
        id,
        format!("{}_{:02}", CATEGORIES[category.min(7)], id),
        parts,
        smooth * k,
        [c0, c1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skipping parts is exact: along sphere-traced rays from all around every library object
    /// (what the renderer evaluates, in object space: the camera is 6 units away and objects
    /// are scaled 0.625–1.6, so up to ~10 object units out) and at random points, `sdf` equals
    /// `sdf_every_part` in distance (to the bit, but for the sign of a zero) and material, while
    /// it skips a good share of the parts.
    #[test]
    fn skipping_parts_is_exact() {
        let mut rng = stream(7, "sdf-cull-test", &[]);
        let mut u = |a: f32, b: f32| a + (b - a) * rng.random::<f32>();
        let (mut evals, mut skipped, mut points) = (0usize, 0usize, 0usize);
        for category in 0..CATEGORIES.len() {
            for id in 0..6 {
                let obj = object(category, id);
                let n = obj.parts().len();
                let mut check = |p: V3| {
                    let (a, b) = (obj.sdf(p), obj.sdf_every_part(p));
                    assert!(
                        a.0 == b.0 && a.1 == b.1,
                        "{}: at {p:?} sdf {a:?}, every part {b:?}",
                        obj.name
                    );
                    obj.union(p, true, || skipped += 1);
                    evals += n;
                    points += 1;
                    b.0
                };
                for _ in 0..300 {
                    // A ray from a random point 3–10 units out towards a random point near the
                    // object, sphere-traced as the renderer does (64 steps at most).
                    let dir0 = v3(u(-1.0, 1.0), u(-1.0, 1.0), u(-1.0, 1.0)).norm();
                    let eye = dir0 * u(3.0, 10.0);
                    let aim = v3(u(-0.8, 0.8), u(-0.8, 0.8), u(-0.8, 0.8));
                    let dir = (aim - eye).norm();
                    let mut t = 0.0f32;
                    for _ in 0..64 {
                        let d = check(eye + dir * t);
                        if d < 2e-3 {
                            // The renderer's normal: four points 1e-3 around the hit.
                            let p = eye + dir * t;
                            for s in [
                                v3(1.0, -1.0, -1.0),
                                v3(-1.0, -1.0, 1.0),
                                v3(-1.0, 1.0, -1.0),
                            ] {
                                check(p + s * 1e-3);
                            }
                            break;
                        }
                        t += d;
                        if t > 20.0 {
                            break;
                        }
                    }
                    check(v3(u(-2.0, 2.0), u(-2.0, 2.0), u(-2.0, 2.0)));
                }
            }
        }
        let share = skipped as f64 / evals as f64;
        eprintln!("{points} points, {skipped} of {evals} part evaluations skipped ({share:.3})");
        assert!(share > 0.2, "only {share:.3} of the parts skipped");
    }
}
