//! The engine's convolution kernels (`ventral_engine::conv::Conv`: forward, input gradient,
//! weight gradient; and the transposed convolution built from them) against PyTorch (golden
//! values) and against burn's float64 autodiff on random shapes: odd and non-square sizes,
//! batch 1, k = 1, 3, 5, 7, stride 1 and 2, padding 0 … k−1, transposed with output padding,
//! channel counts that are not multiples of a SIMD width, and a case large enough to be cut
//! into several im2col chunks. The thin-layer kernels (direct stride-1 convolutions, the
//! small-M product) and the general im2col + GEMM path are both checked on their own cases.
//! The Winograd F(2 × 2) / F(4 × 4, 3 × 3) paths (`ventral_engine::winograd`: forward, input
//! gradient, weight gradient) are checked the same way, within their own float32 bounds.

#![allow(clippy::unwrap_used)]

use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use ventral_core::npy::NpzReader;
use ventral_engine::conv::Conv;

mod common;
use common::{SplitMix, max_rel};

/// A `Conv2d` / `ConvTranspose2d` case in PyTorch terms (`ci`/`co`: the module's channels,
/// `h × w`: its input).
#[derive(Debug, Clone, Copy)]
struct Case {
    transposed: bool,
    batch: usize,
    ci: usize,
    co: usize,
    k: usize,
    stride: usize,
    pad: usize,
    out_pad: usize,
    h: usize,
    w: usize,
}

impl Case {
    fn geometry(&self) -> Conv {
        if self.transposed {
            Conv::transposed(
                self.ci,
                self.co,
                self.k,
                self.stride,
                self.pad,
                self.out_pad,
                self.h,
                self.w,
            )
        } else {
            Conv::new(
                self.ci,
                self.co,
                self.k,
                self.stride,
                self.pad,
                self.h,
                self.w,
            )
        }
    }

    /// The module's output size.
    fn out_hw(&self) -> (usize, usize) {
        let g = self.geometry();
        if self.transposed {
            (g.hi, g.wi)
        } else {
            (g.ho, g.wo)
        }
    }

    fn weight_len(&self) -> usize {
        self.ci * self.co * self.k * self.k
    }
}

/// `[B][C][N]` → `[C][B][N]` (and back with the roles of `b` and `c` exchanged).
fn swap01(v: &[f32], b: usize, c: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for bi in 0..b {
        for ci in 0..c {
            out[(ci * b + bi) * n..(ci * b + bi + 1) * n]
                .copy_from_slice(&v[(bi * c + ci) * n..(bi * c + ci + 1) * n]);
        }
    }
    out
}

/// The engine's output `y` and the gradients `dx`, `dw` of `Σ y·g`, in PyTorch layout.
fn engine(c: &Case, x: &[f32], w: &[f32], g: &[f32]) -> [Vec<f32>; 3] {
    let geo = c.geometry();
    let (b, hw) = (c.batch, c.h * c.w);
    let (oh, ow) = c.out_hw();
    let ohw = oh * ow;
    let xe = swap01(x, b, c.ci, hw);
    let ge = swap01(g, b, c.co, ohw);
    let mut col = ventral_engine::conv::Scratch::default();
    let mut y = vec![0.0; c.co * b * ohw];
    let mut dx = vec![0.0; c.ci * b * hw];
    let mut dw = vec![0.0; c.weight_len()];
    if c.transposed {
        // The adjoint of the convolution big (co) → small (ci).
        geo.backward_data(w, &xe, b, &mut y, &mut col);
        geo.forward(w, &ge, b, &mut dx, false, &mut col);
        geo.backward_weight(&ge, &xe, b, &mut dw, &mut col);
    } else {
        geo.forward(w, &xe, b, &mut y, false, &mut col);
        geo.backward_data(w, &ge, b, &mut dx, &mut col);
        geo.backward_weight(&xe, &ge, b, &mut dw, &mut col);
    }
    [swap01(&y, c.co, b, ohw), swap01(&dx, c.ci, b, hw), dw]
}

/// burn's float64 autodiff of the same case.
fn burn_f64(c: &Case, x: &[f32], w: &[f32], g: &[f32]) -> [Vec<f32>; 3] {
    let dev = Device::flex().autodiff();
    let leaf = |v: &[f32], shape: [usize; 4]| {
        Tensor::<4>::from_data(TensorData::new(v.to_vec(), shape), &dev)
            .cast(FloatDType::F64)
            .detach()
            .require_grad()
    };
    let (oh, ow) = c.out_hw();
    let xt = leaf(x, [c.batch, c.ci, c.h, c.w]);
    let gt = leaf(g, [c.batch, c.co, oh, ow]).detach();
    let (wt, y) = if c.transposed {
        let wt = leaf(w, [c.ci, c.co, c.k, c.k]);
        let opts = ConvTransposeOptions::new([c.stride; 2], [c.pad; 2], [c.out_pad; 2], [1, 1], 1);
        (wt.clone(), conv_transpose2d(xt.clone(), wt, None, opts))
    } else {
        let wt = leaf(w, [c.co, c.ci, c.k, c.k]);
        let opts = ConvOptions::new([c.stride; 2], [c.pad; 2], [1, 1], 1);
        (wt.clone(), conv2d(xt.clone(), wt, None, opts))
    };
    assert_eq!(y.dims(), [c.batch, c.co, oh, ow], "{c:?}: output shape");
    let grads = (y.clone() * gt).sum().backward();
    let f = |t: Tensor<4>| {
        t.cast(FloatDType::F32)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    [
        f(y),
        f(xt.grad(&grads).unwrap()),
        f(wt.grad(&grads).unwrap()),
    ]
}

fn assert_close(c: &Case, ours: &[Vec<f32>; 3], reference: &[Vec<f32>; 3], against: &str) {
    assert_within(c, ours, reference, against, 2e-5);
}

fn assert_within(
    c: &Case,
    ours: &[Vec<f32>; 3],
    reference: &[Vec<f32>; 3],
    against: &str,
    bound: f32,
) -> f32 {
    let mut worst = 0.0f32;
    for (name, (a, e)) in ["y", "dx", "dw"].iter().zip(ours.iter().zip(reference)) {
        let r = max_rel(a, e);
        assert!(r < bound, "{c:?}: {name} differs from {against} by {r:e}");
        worst = worst.max(r);
    }
    worst
}

/// The Winograd paths' output `y` and gradients `dx`, `dw` of `Σ y·g` (PyTorch layout), as
/// `BltNet` runs them: `winograd::forward` with `Tiles::weights`, `winograd::backward_data`
/// with `Tiles::input_gradient_weights`, `winograd::backward_weight`. `None` where the tiles
/// do not apply to the case.
fn winograd(
    f: &ventral_engine::winograd::Tiles,
    c: &Case,
    x: &[f32],
    w: &[f32],
    g: &[f32],
) -> Option<[Vec<f32>; 3]> {
    use ventral_engine::winograd as wg;
    let geo = c.geometry();
    if c.transposed || !f.applies(&geo) {
        return None;
    }
    let (b, hw) = (c.batch, c.h * c.w);
    let xe = swap01(x, b, c.ci, hw);
    let ge = swap01(g, b, c.co, hw);
    let mut s = ventral_engine::conv::Scratch::default();
    let (mut u, mut ut) = (Vec::new(), Vec::new());
    f.weights(w, c.co, c.ci, &mut u);
    f.input_gradient_weights(w, c.co, c.ci, &mut ut);
    let mut y = vec![f32::NAN; c.co * b * hw];
    wg::forward(f, &geo, &u, &xe, b, &mut y, false, &mut s);
    let mut dx = vec![0.0; c.ci * b * hw];
    wg::backward_data(f, &geo, &ut, &ge, b, &mut dx, &mut s);
    let mut dw = vec![0.0; c.weight_len()];
    wg::backward_weight(f, &geo, &xe, &ge, b, &mut dw, &mut s);
    Some([swap01(&y, c.co, b, hw), swap01(&dx, c.ci, b, hw), dw])
}

/// The top-down forward by Winograd F(4 × 4, 2 × 2) on its output phases
/// (`upsample::forward` with `upsample::weights`, as `BltNet`'s inference passes run it), in
/// PyTorch layout; `None` where it does not apply to the case.
fn upsample(c: &Case, x: &[f32], w: &[f32]) -> Option<Vec<f32>> {
    use ventral_engine::upsample as up;
    let geo = c.geometry();
    if !c.transposed || !up::applies(&geo) {
        return None;
    }
    let (b, hw) = (c.batch, c.h * c.w);
    let (oh, ow) = c.out_hw();
    let xe = swap01(x, b, c.ci, hw);
    let mut u = Vec::new();
    up::weights(w, &geo, &mut u);
    let mut y = vec![0.0; c.co * b * oh * ow];
    up::forward(
        &geo,
        &u,
        &xe,
        b,
        &mut y,
        &mut ventral_engine::conv::Scratch::default(),
    );
    Some(swap01(&y, c.co, b, oh * ow))
}

/// Largest error of [`upsample`] measured against float64 (`max_rel`): burn's random cases
/// 3.1e-6, PyTorch's golden cases 1.4e-6.
const UPSAMPLE_BOUND: f32 = 2e-5;

/// The top-down forward by phases against burn's float64 `conv_transpose2d` on random shapes:
/// odd channel counts up to 70, batch 1–3, non-square maps.
#[test]
fn upsample_matches_burn_on_random_shapes() {
    let mut rng = SplitMix::new(777);
    let mut worst = 0.0f32;
    for _ in 0..12 {
        let c = Case {
            transposed: true,
            batch: rng.range(1, 3),
            ci: rng.range(1, 70),
            co: rng.range(1, 70),
            k: 3,
            stride: 2,
            pad: 1,
            out_pad: 1,
            h: 4 * rng.range(1, 4),
            w: 4 * rng.range(1, 4),
        };
        let [x, w, g] = data(&c, &mut rng);
        let reference = burn_f64(&c, &x, &w, &g);
        let y = upsample(&c, &x, &w).expect("phases apply");
        let r = max_rel(&y, &reference[0]);
        assert!(
            r < UPSAMPLE_BOUND,
            "{c:?}: top-down by phases differs from burn by {r:e}"
        );
        worst = worst.max(r);
    }
    println!("top-down by F(4x4, 2x2) phases against burn float64: largest error {worst:.2e}");
}

/// Largest error (`max_rel`) measured against float64: burn's random cases F(2 × 2) 1.1e-6,
/// F(4 × 4) 8.8e-6; PyTorch's golden cases 2.4e-7 and 3.0e-6. The bounds leave room for
/// other shapes.
const WINOGRAD_BOUNDS: [(ventral_engine::winograd::Tiles, f32); 2] = [
    (ventral_engine::winograd::F2, 2e-5),
    (ventral_engine::winograd::F4, 1e-4),
];

#[test]
fn winograd_matches_burn_on_random_shapes() {
    let mut rng = SplitMix::new(4242);
    let mut cases: Vec<Case> = (0..24)
        .map(|i| {
            let m = if i % 2 == 0 { 2 } else { 4 };
            Case {
                transposed: false,
                batch: rng.range(1, 3),
                ci: rng.range(1, 70),
                co: rng.range(1, 70),
                k: 3,
                stride: 1,
                pad: 1,
                out_pad: 0,
                h: m * rng.range(1, 6),
                w: m * rng.range(1, 6),
            }
        })
        .collect();
    // Several chunks of images (each chunk's transformed tiles within the 8 MiB budget).
    cases.push(Case {
        transposed: false,
        batch: 3,
        ci: 64,
        co: 64,
        k: 3,
        stride: 1,
        pad: 1,
        out_pad: 0,
        h: 64,
        w: 64,
    });
    let (mut checked, mut worst) = ([0usize; 2], [0.0f32; 2]);
    for c in &cases {
        let [x, w, g] = data(c, &mut rng);
        let reference = burn_f64(c, &x, &w, &g);
        for (i, (f, bound)) in WINOGRAD_BOUNDS.iter().enumerate() {
            if let Some(ours) = winograd(f, c, &x, &w, &g) {
                let r = assert_within(c, &ours, &reference, &format!("burn (F({}))", f.m), *bound);
                worst[i] = worst[i].max(r);
                checked[i] += 1;
            }
        }
    }
    println!(
        "Winograd F(2), F(4) against burn float64: largest error {:.2e}, {:.2e} over {checked:?} cases",
        worst[0], worst[1]
    );
    assert!(checked[0] >= 20 && checked[1] >= 10, "{checked:?}");
    assert!(cases.iter().any(|c| c.batch == 1 && c.h != c.w));
}

fn random_case(rng: &mut SplitMix) -> Case {
    let transposed = rng.range(0, 2) == 0;
    let k = [1, 3, 5, 7][rng.range(0, 3)];
    let stride = rng.range(1, 2);
    let pad = rng.range(0, k - 1);
    let out_pad = if transposed {
        rng.range(0, stride - 1)
    } else {
        0
    };
    let (h, w) = if transposed {
        // The output (h − 1)·s − 2p + k + out_pad must be at least 1.
        let min = (2 * pad + stride).saturating_sub(k) / stride + 1;
        (rng.range(min, min + 9), rng.range(min, min + 9))
    } else {
        // The padded input must hold one kernel.
        let min = (k.saturating_sub(2 * pad)).max(1);
        (rng.range(min, min + 12), rng.range(min, min + 12))
    };
    Case {
        transposed,
        batch: rng.range(1, 3),
        ci: rng.range(1, 11),
        co: rng.range(1, 11),
        k,
        stride,
        pad,
        out_pad,
        h,
        w,
    }
}

fn data(c: &Case, rng: &mut SplitMix) -> [Vec<f32>; 3] {
    let (oh, ow) = c.out_hw();
    [
        rng.normals(c.batch * c.ci * c.h * c.w),
        rng.normals(c.weight_len()),
        rng.normals(c.batch * c.co * oh * ow),
    ]
}

#[test]
fn kernels_match_burn_on_random_shapes() {
    let mut rng = SplitMix::new(2026);
    let mut cases: Vec<Case> = (0..48).map(|_| random_case(&mut rng)).collect();
    // Large enough that the unfolded input is cut into chunks of images (8 MiB budget).
    cases.push(Case {
        transposed: false,
        batch: 3,
        ci: 16,
        co: 5,
        k: 7,
        stride: 1,
        pad: 3,
        out_pad: 0,
        h: 64,
        w: 61,
    });
    cases.push(Case {
        transposed: true,
        batch: 3,
        ci: 5,
        co: 16,
        k: 7,
        stride: 2,
        pad: 3,
        out_pad: 1,
        h: 32,
        w: 31,
    });
    // Stride 2 with 32 channels and more on both sides (the weight gradient with channels in
    // the vector lanes, on phases), plain and transposed.
    for transposed in [false, true] {
        cases.push(Case {
            transposed,
            batch: 2,
            ci: 36,
            co: 40,
            k: 3,
            stride: 2,
            pad: 1,
            out_pad: transposed as usize,
            h: 16,
            w: 16,
        });
    }
    // More than 128 channels on 8 × 8 (as BLT_net_64's IT): forward and input gradient by
    // im2col + GEMM, the weight gradient direct with channels in the vector lanes where they
    // are 16-lane vectors.
    let wide_small = Case {
        transposed: false,
        batch: 2,
        ci: 130,
        co: 136,
        k: 3,
        stride: 1,
        pad: 1,
        out_pad: 0,
        h: 8,
        w: 8,
    };
    if ventral_engine::kernel::available() {
        // On 16-lane vectors only (AVX-512VL); the GEMM elsewhere.
        let _paths = PATHS.lock().unwrap_or_else(|p| p.into_inner());
        let g = wide_small.geometry();
        let wide = ventral_engine::kernel::avx512vl();
        assert!(
            !g.uses_direct() && g.uses_direct_wgrad() == wide,
            "{wide_small:?}"
        );
    }
    cases.push(wide_small);
    let (mut n_tr, mut ks) = (0, [0usize; 8]);
    for c in &cases {
        let [x, w, g] = data(c, &mut rng);
        assert_close(c, &engine(c, &x, &w, &g), &burn_f64(c, &x, &w, &g), "burn");
        n_tr += c.transposed as usize;
        ks[c.k] += 1;
    }
    // The random draw covers what it claims to.
    assert!(n_tr >= 10 && cases.len() - n_tr >= 10, "{n_tr} transposed");
    assert!(ks[1] > 0 && ks[3] > 0 && ks[5] > 0 && ks[7] > 0, "{ks:?}");
    assert!(cases.iter().any(|c| c.batch == 1));
    assert!(cases.iter().any(|c| c.transposed && c.out_pad == 1));
}

/// Stride-1 convolutions whose rows are whole 8-column tiles: on AVX2 machines they run on
/// the direct kernels (forward, input gradient, weight gradient), checked here against burn
/// float64 and against the engine's own general path.
#[test]
fn direct_kernels_match_burn_and_the_general_path() {
    let mut rng = SplitMix::new(77);
    let mut cases = Vec::new();
    for (i, &k) in [1usize, 3, 5, 7, 3, 3, 5, 3].iter().enumerate() {
        let side = [8usize, 16, 24, 8, 32, 16, 16, 64][i];
        cases.push(Case {
            transposed: false,
            batch: 1 + i % 3,
            ci: rng.range(1, 13),
            co: rng.range(1, 13),
            k,
            stride: 1,
            pad: (k - 1) / 2,
            out_pad: 0,
            h: side,
            w: if i == 5 { 8 } else { side },
        });
    }
    // 32 channels (the thin limit) and 8-wide rows; 3 input channels as the retina.
    // Wide layers on large maps also run direct (from 32 px).
    for (ci, co, side) in [
        (32, 32, 8),
        (3, 32, 16),
        (8, 8, 64),
        (40, 36, 32),
        (33, 34, 32),
    ] {
        cases.push(Case {
            transposed: false,
            batch: 2,
            ci,
            co,
            k: 3,
            stride: 1,
            pad: 1,
            out_pad: 0,
            h: side,
            w: side,
        });
    }
    let avx2 = ventral_engine::kernel::available();
    against_burn_and_the_general_path(&cases, &mut rng, ("direct", avx2), Conv::uses_direct);
}

/// Forward and input gradient with the output channels in the vector lanes
/// (`ventral_engine::lanes`, AVX-512F): stride-1 layers of 64+ channels on maps from 8 px —
/// BLT_net_64's IT (512 and 256 → 512 on 8 × 8, at reduced channel counts here), ConvRNN cells
/// on 8 × 8, maps of 9–15 px and wider ones whose rows are not whole 8-column tiles, the
/// convrnns zoo's 7 × 7 and maps of 4 and 2 px beyond 128 channels; k = 1, 3,
/// 5, 7, no padding, channel counts that are not whole vectors (a last block of 1–3 vectors),
/// batch 1 — against burn in float64 and against the engine's general path.
#[test]
fn channels_in_lanes_match_burn_and_the_general_path() {
    let mut rng = SplitMix::new(91);
    let mut cases = Vec::new();
    // (in, out, k, pad, h, w, batch)
    for (ci, co, k, pad, h, w, batch) in [
        (160, 144, 3, 1, 8, 8, 2),
        (64, 160, 3, 1, 8, 8, 1),
        (64, 128, 3, 1, 8, 8, 3),
        (72, 65, 1, 0, 9, 9, 2),
        (65, 100, 5, 2, 12, 10, 1),
        (80, 70, 7, 3, 8, 11, 1),
        (64, 96, 3, 0, 14, 14, 2),
        (96, 64, 3, 1, 20, 20, 1),
        // Maps narrower than 8 with more than 128 channels (the interleaved path's limit).
        (136, 130, 3, 1, 7, 7, 2),
        (130, 144, 3, 1, 4, 4, 1),
        (129, 132, 1, 0, 2, 2, 3),
    ] {
        cases.push(Case {
            transposed: false,
            batch,
            ci,
            co,
            k,
            stride: 1,
            pad,
            out_pad: 0,
            h,
            w,
        });
    }
    let avx512 = ventral_engine::lanes::available();
    against_burn_and_the_general_path(&cases, &mut rng, ("lanes", avx512), Conv::uses_lanes);
}

/// `conv::set_general_only` is process-wide: the tests that flip it, or check which path a
/// case takes, hold this lock (the others get correct results on either path).
static PATHS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Each case against burn float64 and against the engine's general path (im2col's product,
/// col2im), after checking — where the CPU has the direct kernels — that every case runs on
/// the path under test (`takes`, named `path`).
fn against_burn_and_the_general_path(
    cases: &[Case],
    rng: &mut SplitMix,
    (path, available): (&str, bool),
    takes: impl Fn(&Conv) -> bool,
) {
    let _paths = PATHS.lock().unwrap_or_else(|p| p.into_inner());
    if available {
        for c in cases {
            assert!(takes(&c.geometry()), "{c:?} should take the {path} path");
        }
    } else {
        eprintln!("the {path} path does not run on this CPU: checked against burn on the others");
    }
    for c in cases {
        let [x, w, g] = data(c, rng);
        let ours = engine(c, &x, &w, &g);
        assert_close(c, &ours, &burn_f64(c, &x, &w, &g), "burn");
        ventral_engine::conv::set_general_only(true);
        assert!(!takes(&c.geometry()));
        let general = engine(c, &x, &w, &g);
        ventral_engine::conv::set_general_only(false);
        assert_close(c, &ours, &general, "the general path");
    }
}

/// Stride-2 input gradients (the top-down transposed convolutions' forward) by the phases of
/// the output on the direct kernels: every kernel size and padding the phases meet (1, 2, 3
/// or 4 taps per phase; k = 1 leaves three phases without any), 16-, 24- and 32-px phase
/// rows, up to 32 channels in the gradient (more than 128 on the other side), plain and
/// transposed — against burn in float64 and against the engine's general path (im2col's
/// product + col2im); wider gradients stay on the general path.
#[test]
fn stride2_input_gradients_by_phases_match_burn_and_the_general_path() {
    let mut rng = SplitMix::new(59);
    let mut cases = Vec::new();
    for (i, (k, pad)) in [
        (3, 1),
        (3, 0),
        (1, 0),
        (5, 2),
        (5, 0),
        (7, 3),
        (3, 2),
        (4, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let side = [32usize, 64][i % 2];
        let (ci, co) = (rng.range(1, 33), rng.range(1, 20));
        cases.push(Case {
            transposed: false,
            batch: 1 + i % 3,
            ci,
            co,
            k,
            stride: 2,
            pad,
            out_pad: 0,
            h: side,
            w: if i == 2 { 48 } else { side },
        });
    }
    // Transposed (the input side is `h`: output 2h with output padding 1), and wide.
    for (ci, co, side, batch) in [(16, 16, 16, 2), (32, 16, 16, 3), (136, 24, 16, 1)] {
        cases.push(Case {
            transposed: true,
            batch,
            ci,
            co,
            k: 3,
            stride: 2,
            pad: 1,
            out_pad: 1,
            h: side,
            w: side,
        });
    }
    cases.push(Case {
        transposed: false,
        batch: 2,
        ci: 30,
        co: 140,
        k: 3,
        stride: 2,
        pad: 1,
        out_pad: 0,
        h: 32,
        w: 32,
    });
    // A gradient of 33 channels stays on the general path.
    let mut wide = cases[cases.len() - 1];
    wide.ci = 33;
    assert!(!wide.geometry().uses_phase_data(), "{wide:?}");
    let avx2 = ventral_engine::kernel::available();
    against_burn_and_the_general_path(&cases, &mut rng, ("phases", avx2), Conv::uses_phase_data);
}

// Generated with PyTorch 2.15 in float64 by `scripts/make_conv_fixtures.py`:
//   for each case: x, w, g ~ randn (torch.Generator().manual_seed(0));
//   y = F.conv2d(x, w, stride=s, padding=p)  or
//   y = F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op);
//   (y * g).sum().backward(); save x, w, g, y, x.grad, w.grad as float32.
#[test]
fn kernels_match_pytorch_golden_values() {
    let path = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conv_kernels.npz");
    let mut npz = NpzReader::open(&path).unwrap();
    let n = npz.names().iter().filter(|n| n.ends_with("_geom")).count();
    assert!(n >= 10, "{n} cases in {}", path.display());
    let (mut winograd_cases, mut upsample_cases, mut lanes_cases) = (0, 0, 0);
    for i in 0..n {
        let mut get = |k: &str| npz.read(&format!("c{i}_{k}")).unwrap();
        let geom = get("geom").to_i64().unwrap();
        let u = |j: usize| geom[j] as usize;
        let c = Case {
            transposed: geom[0] == 1,
            batch: u(1),
            ci: u(2),
            co: u(3),
            k: u(4),
            stride: u(5),
            pad: u(6),
            out_pad: u(7),
            h: u(8),
            w: u(9),
        };
        let f = |a: ventral_core::NpyArray| a.into_f32().unwrap();
        let (x, w, g) = (f(get("x")), f(get("w")), f(get("g")));
        let expect = [f(get("y")), f(get("dx")), f(get("dw"))];
        assert_close(&c, &engine(&c, &x, &w, &g), &expect, "PyTorch");
        lanes_cases += usize::from(!c.transposed && c.geometry().uses_lanes());
        for (f, bound) in &WINOGRAD_BOUNDS {
            if let Some(ours) = winograd(f, &c, &x, &w, &g) {
                let r = assert_within(&c, &ours, &expect, &format!("PyTorch (F({}))", f.m), *bound);
                println!("{c:?}: F({}) within {r:.2e} of PyTorch", f.m);
                winograd_cases += 1;
            }
        }
        if let Some(y) = upsample(&c, &x, &w) {
            let r = max_rel(&y, &expect[0]);
            println!("{c:?}: top-down by phases within {r:.2e} of PyTorch");
            assert!(r < UPSAMPLE_BOUND, "{c:?}: top-down by phases: {r:e}");
            upsample_cases += 1;
        }
    }
    assert!(winograd_cases >= 5, "{winograd_cases} Winograd checks");
    if ventral_engine::lanes::available() {
        assert!(
            lanes_cases >= 2,
            "{lanes_cases} checks of the lanes kernels"
        );
    }
    assert!(
        upsample_cases >= 2,
        "{upsample_cases} top-down phase checks"
    );
}
