//! `ventral_models::engine_ops` — the engine's kernels as burn backend-extension operations
//! with hand-written backward steps. `conv2d` against burn's own `conv2d` under float64
//! autodiff, on random shapes: outputs and the gradients of `Σ y·g` for the input, the weights
//! and the bias; batch 1, k = 1, 3, 5, 7, stride 1 and 2, padding 0 … k/2, maps whose width is
//! and is not a multiple of 8 (the direct kernels and the im2col path), channel counts beyond
//! the thin-layer limit, inputs that are strided views, untracked inputs (a frame) and the
//! plain (non-autodiff) Flex device, asymmetric padding (even kernels: explicit zeros, then the
//! engine), depthwise convolutions (the engine's depthwise kernels). Cases the engine does not
//! take (other groups, strided depthwise, dilation, float64) must fall back to burn and say so. The fused `elu`, `sigmoid`
//! and `tanh` against burn's in float64: values and gradients, strided views, values at and
//! around 0 and far below it.

#![allow(clippy::unwrap_used)]

use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use ventral_models::engine_ops::{
    conv2d, elu, frame_cache_hits, sigmoid, tanh, uses_depthwise, uses_engine,
};

mod common;
use common::{SplitMix, max_rel};

#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    ci: usize,
    co: usize,
    k: usize,
    stride: usize,
    pad: usize,
    /// Padding beyond `pad`, `(begin, end)` per axis (TensorFlow's `same` for even kernels).
    extra: [(usize, usize); 2],
    h: usize,
    w: usize,
    bias: bool,
    /// The input arrives as a transposed view (not contiguous).
    strided: bool,
}

impl Case {
    fn out_h(&self) -> usize {
        let [(t, b), _] = self.extra;
        (self.h + 2 * self.pad + t + b - self.k) / self.stride + 1
    }
    fn out_w(&self) -> usize {
        let [_, (l, r)] = self.extra;
        (self.w + 2 * self.pad + l + r - self.k) / self.stride + 1
    }
    fn opts(&self) -> ConvOptions<2> {
        let [(t, b), (l, r)] = self.extra;
        let p = self.pad;
        ConvOptions::new_with_padding(
            [self.stride; 2],
            [(p + t, p + b), (p + l, p + r)],
            [1, 1],
            1,
        )
    }
}

fn to_vec(t: Tensor<4>) -> Vec<f32> {
    t.cast(FloatDType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn to_vec1(t: Tensor<1>) -> Vec<f32> {
    t.cast(FloatDType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// `v` (`shape`) on `dev` as the side under test computes: float32 for the engine, float64
/// for burn's reference.
fn on_side<const D: usize>(
    v: Vec<f32>,
    shape: [usize; D],
    dev: &Device,
    engine: bool,
) -> Tensor<D> {
    let t = Tensor::<D>::from_data(TensorData::new(v, shape), dev);
    if engine { t } else { t.cast(FloatDType::F64) }
}

/// `(y, dx, dw, db)` of `Σ conv(x, w, b)·g`, with the engine (float32) or burn (float64).
fn run(c: &Case, x: &[f32], w: &[f32], b: &[f32], g: &[f32], engine: bool) -> [Vec<f32>; 4] {
    let dev = Device::flex().autodiff();
    let leaf = |v: &[f32], shape: [usize; 4]| {
        on_side(v.to_vec(), shape, &dev, engine)
            .detach()
            .require_grad()
    };
    let xt = if c.strided {
        // Stored [B, C, W, H] and seen through swap_dims: a non-contiguous input.
        let mut xs = vec![0.0; x.len()];
        for i in 0..c.batch * c.ci {
            for r in 0..c.h {
                for q in 0..c.w {
                    xs[(i * c.w + q) * c.h + r] = x[(i * c.h + r) * c.w + q];
                }
            }
        }
        leaf(&xs, [c.batch, c.ci, c.w, c.h])
    } else {
        leaf(x, [c.batch, c.ci, c.h, c.w])
    };
    let xin = if c.strided {
        xt.clone().swap_dims(2, 3)
    } else {
        xt.clone()
    };
    let wt = leaf(w, [c.co, c.ci, c.k, c.k]);
    let bt = on_side(b.to_vec(), [c.co], &dev, engine)
        .detach()
        .require_grad();
    let (ho, wo) = (c.out_h(), c.out_w());
    let gt = on_side(g.to_vec(), [c.batch, c.co, ho, wo], &dev, engine);
    let bias = c.bias.then(|| bt.clone());
    if engine {
        assert!(
            uses_engine(&xin, &wt, &c.opts()),
            "{c:?}: not on the engine"
        );
    }
    let y = if engine {
        conv2d(xin, wt.clone(), bias, c.opts())
    } else {
        burn_conv2d(xin, wt.clone(), bias, c.opts())
    };
    assert_eq!(y.dims(), [c.batch, c.co, ho, wo], "{c:?}");
    let grads = (y.clone() * gt).sum().backward();
    let mut dx = to_vec(xt.grad(&grads).unwrap());
    if c.strided {
        let mut back = vec![0.0; dx.len()];
        for i in 0..c.batch * c.ci {
            for r in 0..c.h {
                for q in 0..c.w {
                    back[(i * c.h + r) * c.w + q] = dx[(i * c.w + q) * c.h + r];
                }
            }
        }
        dx = back;
    }
    let db = if c.bias {
        to_vec1(bt.grad(&grads).unwrap())
    } else {
        assert!(
            bt.grad(&grads).is_none(),
            "{c:?}: unused bias got a gradient"
        );
        vec![0.0; c.co]
    };
    [to_vec(y), dx, to_vec(wt.grad(&grads).unwrap()), db]
}

fn random_case(rng: &mut SplitMix) -> Case {
    let k = [1, 2, 3, 5, 7][rng.range(0, 4)];
    let stride = rng.range(1, 2);
    let pad = rng.range(0, k / 2);
    let side = |rng: &mut SplitMix| {
        // Half of the maps 8-aligned (the direct kernels take those at stride 1).
        if rng.range(0, 1) == 0 {
            8 * rng.range(1, 3)
        } else {
            rng.range(k.max(2), k + 13)
        }
    };
    let (h, w) = (side(rng).max(k), side(rng).max(k));
    Case {
        batch: rng.range(1, 4),
        ci: [1, 3, 7, 16, 33][rng.range(0, 4)],
        co: [1, 5, 8, 17, 40][rng.range(0, 4)],
        k,
        stride,
        pad,
        // A quarter of the cases (all with even kernels) padded asymmetrically: the extra
        // zeros go in explicitly, the rest runs on the engine.
        extra: if k % 2 == 0 || rng.range(0, 3) == 0 {
            [
                (rng.range(0, 1), rng.range(0, 2)),
                (rng.range(0, 1), rng.range(0, 2)),
            ]
        } else {
            [(0, 0); 2]
        },
        h,
        w,
        bias: rng.range(0, 2) > 0,
        strided: rng.range(0, 3) == 0,
    }
}

#[test]
fn engine_conv_matches_burn_with_gradients() {
    let mut rng = SplitMix::new(14);
    let mut cases: Vec<Case> = (0..40).map(|_| random_case(&mut rng)).collect();
    // The ConvRNN CPU presets' first layers: 7×7 stride 2 on 64 px, 3×3 on 16 px.
    cases.push(Case {
        batch: 2,
        ci: 3,
        co: 16,
        k: 7,
        stride: 2,
        pad: 3,
        extra: [(0, 0); 2],
        h: 64,
        w: 64,
        bias: true,
        strided: false,
    });
    cases.push(Case {
        batch: 3,
        ci: 16,
        co: 32,
        k: 3,
        stride: 1,
        pad: 1,
        extra: [(0, 0); 2],
        h: 16,
        w: 16,
        bias: true,
        strided: false,
    });
    // TensorFlow's `same` with one more zero after than before on both axes, which the
    // engine pads itself (`Conv::with_pad_end`): the reciprocal gated cells' 2 × 2 on 16 and
    // 8 px (direct), on 4 px (batch-interleaved), a 4 × 4 with (1, 2), the convrnns conv1's
    // 7 × 7 stride 2 on 64 px (2, 3) and a 3 × 3 stride 2 (0, 1); one input a strided view.
    for (ci, co, k, stride, pad, side, strided) in [
        (32, 32, 2, 1, 0, 16, false),
        (16, 32, 2, 1, 0, 8, true),
        (8, 8, 2, 1, 0, 4, false),
        (5, 6, 4, 1, 1, 16, false),
        (3, 16, 7, 2, 2, 64, false),
        (7, 9, 3, 2, 0, 32, false),
    ] {
        cases.push(Case {
            batch: 3,
            ci,
            co,
            k,
            stride,
            pad,
            extra: [(0, 1), (0, 1)],
            h: side,
            w: side,
            bias: true,
            strided,
        });
    }
    // 1 × 1 convolutions, every pass as per-image products on NCHW as it lies
    // (`Conv::pointwise`): wide layers on a rectangular map, batch 3 and 1 (a strided view);
    // the reciprocal gated cells' 32 → 32 on 16 px and concatenated 96 → 32 on 8 px, batch 4.
    for (batch, ci, co, (h, w), strided) in [
        (3, 72, 65, (9, 13), false),
        (1, 72, 65, (9, 13), true),
        (4, 32, 32, (16, 16), false),
        (4, 96, 32, (8, 8), true),
    ] {
        cases.push(Case {
            batch,
            ci,
            co,
            k: 1,
            stride: 1,
            pad: 0,
            extra: [(0, 0); 2],
            h,
            w,
            bias: true,
            strided,
        });
    }
    for c in &cases {
        let (ho, wo) = (c.out_h(), c.out_w());
        let x = rng.normals(c.batch * c.ci * c.h * c.w);
        let w = rng.normals(c.co * c.ci * c.k * c.k);
        let b = rng.normals(c.co);
        let g = rng.normals(c.batch * c.co * ho * wo);
        let ours = run(c, &x, &w, &b, &g, true);
        let reference = run(c, &x, &w, &b, &g, false);
        for (name, (a, e)) in ["y", "dx", "dw", "db"]
            .iter()
            .zip(ours.iter().zip(&reference))
        {
            let r = max_rel(a, e);
            assert!(r < 2e-5, "{c:?}: {name} differs from burn f64 by {r:e}");
        }
    }
}

#[test]
fn untracked_input_and_plain_device() {
    // A frame is not tracked: only the weights get gradients; on the plain Flex device the
    // forward alone runs (inference).
    let c = Case {
        batch: 2,
        ci: 3,
        co: 8,
        k: 3,
        stride: 1,
        pad: 1,
        extra: [(0, 0); 2],
        h: 16,
        w: 16,
        bias: true,
        strided: false,
    };
    let mut rng = SplitMix::new(5);
    let x = rng.normals(2 * 3 * 16 * 16);
    let w = rng.normals(8 * 3 * 9);
    let b = rng.normals(8);
    let reference = run(&c, &x, &w, &b, &vec![1.0; 2 * 8 * 16 * 16], false);
    let dev = Device::flex().autodiff();
    let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 3, 16, 16]), &dev);
    let wt = Tensor::<4>::from_data(TensorData::new(w.clone(), [8, 3, 3, 3]), &dev).require_grad();
    let bt = Tensor::<1>::from_data(TensorData::new(b.clone(), [8]), &dev).require_grad();
    let y = conv2d(xt.clone(), wt.clone(), Some(bt), c.opts());
    let grads = y.sum().backward();
    assert!(xt.grad(&grads).is_none());
    assert!(max_rel(&to_vec(wt.grad(&grads).unwrap()), &reference[2]) < 2e-5);

    let plain = Device::flex();
    let xt = Tensor::<4>::from_data(TensorData::new(x, [2, 3, 16, 16]), &plain);
    let wt = Tensor::<4>::from_data(TensorData::new(w, [8, 3, 3, 3]), &plain);
    let bt = Tensor::<1>::from_data(TensorData::new(b, [8]), &plain);
    assert!(uses_engine(&xt, &wt, &c.opts()));
    let y = conv2d(xt, wt, Some(bt), c.opts());
    assert!(max_rel(&to_vec(y), &reference[0]) < 2e-5);
}

/// Depthwise convolutions (one filter per channel, `groups = Ci = Co`) on the engine's
/// kernels against burn's grouped convolution in float64: outputs and the gradients of
/// `Σ y·g` for the input, the weights and the bias, on random shapes — maps narrower and wider
/// than a vector, k = 2 … 7, padding 0 … k − 1, TensorFlow's asymmetric `same` for even
/// kernels, batch 1 … 3, with and without bias, inputs that are slices of channels.
#[test]
fn depthwise_conv_matches_burn_with_gradients() {
    let mut rng = SplitMix::new(33);
    for case in 0..30 {
        let k = [2, 3, 5, 7][rng.range(0, 3)];
        let pad = rng.range(0, k - 1);
        let extra = if k % 2 == 0 {
            [(0, rng.range(0, 1)), (0, rng.range(0, 1))]
        } else {
            [(0, 0); 2]
        };
        let c = [2, 3, 16, 17][rng.range(0, 3)];
        let batch = rng.range(1, 3);
        let h = rng.range(k.saturating_sub(2 * pad).max(1), 20);
        let w = rng.range(k.saturating_sub(2 * pad).max(1), 40);
        let bias = rng.range(0, 1) == 1;
        let [(t, b), (l, r)] = extra;
        let opts = ConvOptions::new_with_padding(
            [1, 1],
            [(pad + t, pad + b), (pad + l, pad + r)],
            [1, 1],
            c,
        );
        let (ho, wo) = (h + 2 * pad + t + b + 1 - k, w + 2 * pad + l + r + 1 - k);
        // Every other case reads a slice of channels of a larger tensor in place.
        let view = case % 2 == 1;
        let cx = if view { c + 3 } else { c };
        let x = rng.normals(batch * cx * h * w);
        let wt = rng.normals(c * k * k);
        let bv = rng.normals(c);
        let g = rng.normals(batch * c * ho * wo);
        let run = |engine: bool| -> [Vec<f32>; 4] {
            let dev = Device::flex().autodiff();
            let leaf = |v: &[f32], shape: [usize; 4]| {
                on_side(v.to_vec(), shape, &dev, engine)
                    .detach()
                    .require_grad()
            };
            let xt = leaf(&x, [batch, cx, h, w]);
            let xin = if view {
                xt.clone().narrow(1, 2, c)
            } else {
                xt.clone()
            };
            let wt = leaf(&wt, [c, 1, k, k]);
            let bt = on_side(bv.clone(), [c], &dev, engine)
                .detach()
                .require_grad();
            let gt = on_side(g.clone(), [batch, c, ho, wo], &dev, engine);
            let y = if engine {
                assert!(
                    uses_depthwise(&xin, &wt, &opts),
                    "case {case}: not on the engine"
                );
                conv2d(
                    xin.clone(),
                    wt.clone(),
                    bias.then(|| bt.clone()),
                    opts.clone(),
                )
            } else {
                burn_conv2d(
                    xin.clone(),
                    wt.clone(),
                    bias.then(|| bt.clone()),
                    opts.clone(),
                )
            };
            assert_eq!(y.dims(), [batch, c, ho, wo]);
            let grads = (y.clone() * gt).sum().backward();
            let db = match bt.grad(&grads) {
                Some(d) => to_vec1(d),
                None => vec![0.0; c],
            };
            [
                to_vec(y),
                to_vec(xt.grad(&grads).unwrap()),
                to_vec(wt.grad(&grads).unwrap()),
                db,
            ]
        };
        let (ours, reference) = (run(true), run(false));
        for (name, (a, e)) in ["y", "dx", "dw", "db"]
            .iter()
            .zip(ours.iter().zip(&reference))
        {
            let r = max_rel(a, e);
            assert!(
                r < 2e-5,
                "case {case} (c {c}, view {view}, k {k}, pad {pad}, extra {extra:?}, {h}x{w}, batch {batch}): {name} differs from burn f64 by {r:e}"
            );
        }
    }
}

#[test]
fn other_convolutions_fall_back_to_burn() {
    let dev = Device::flex().autodiff();
    let x = Tensor::<4>::zeros([1, 4, 10, 10], &dev);
    let w = Tensor::<4>::zeros([4, 4, 3, 3], &dev);
    let plain = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    assert!(uses_engine(&x, &w, &plain));
    let dilated = ConvOptions::new([1, 1], [1, 1], [2, 2], 1);
    assert!(!uses_engine(&x, &w, &dilated));
    let grouped = ConvOptions::new([1, 1], [1, 1], [1, 1], 4);
    assert!(!uses_engine(
        &x,
        &Tensor::<4>::zeros([4, 1, 3, 3], &dev),
        &grouped
    ));
    // Depthwise (4 groups of 1) at stride 1 goes to the engine's depthwise kernels; grouped
    // convolutions of several channels per group and strided depthwise ones to burn.
    assert!(uses_depthwise(
        &x,
        &Tensor::<4>::zeros([4, 1, 3, 3], &dev),
        &grouped
    ));
    let pairs = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
    assert!(!uses_depthwise(
        &x,
        &Tensor::<4>::zeros([4, 2, 3, 3], &dev),
        &pairs
    ));
    let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 4);
    assert!(!uses_depthwise(
        &x,
        &Tensor::<4>::zeros([4, 1, 3, 3], &dev),
        &strided
    ));
    // TensorFlow's `same` for an even kernel: the extra row and column go in as zeros.
    let asymmetric = ConvOptions::new_with_padding([1, 1], [(0, 1), (0, 1)], [1, 1], 1);
    assert!(uses_engine(
        &x,
        &Tensor::<4>::zeros([4, 4, 2, 2], &dev),
        &asymmetric
    ));
    let rect = Tensor::<4>::zeros([4, 4, 3, 1], &dev);
    assert!(!uses_engine(&x, &rect, &plain));
    let x64 = x.clone().cast(FloatDType::F64);
    let w64 = w.clone().cast(FloatDType::F64);
    assert!(!uses_engine(&x64, &w64, &plain));
}

#[test]
fn fused_activations_match_burn_with_gradients() {
    let mut rng = SplitMix::new(21);
    // (name, engine, burn in float64); ELU at α = 1.3 where `alpha` says 1.3.
    type Act = fn(Tensor<2>, f64) -> Tensor<2>;
    let acts: [(&str, Act, Act); 3] = [
        (
            "ELU",
            |x, a| elu(x, a),
            |x, a| burn::tensor::activation::elu(x, a),
        ),
        (
            "sigmoid",
            |x, _| sigmoid(x),
            |x, _| burn::tensor::activation::sigmoid(x),
        ),
        ("tanh", |x, _| tanh(x), |x, _| x.tanh()),
    ];
    for (name, ours, theirs) in acts {
        for (n, alpha, strided) in [
            (1usize, 1.0, false),
            (37, 1.0, true),
            (5000, 0.5, false),
            (70_001, 1.3, true),
        ] {
            let mut x = rng.normals(n);
            // Exactly 0, tiny, large and very negative inputs, tanh's polynomial's edge.
            for (i, v) in [0.0f32, -0.0, 1e-30, -1e-30, -40.0, -100.0, 3.0, 0.625, 30.0]
                .iter()
                .enumerate()
            {
                if i < n {
                    x[i] = *v;
                }
            }
            let g = rng.normals(n);
            let run = |engine: bool| {
                let dev = Device::flex().autodiff();
                let leaf = on_side(x.clone(), [n], &dev, engine)
                    .detach()
                    .require_grad();
                // A strided view: [n, 1] seen through a transpose as [1, n].
                let input: Tensor<2> = if strided {
                    leaf.clone().reshape([n, 1]).swap_dims(0, 1)
                } else {
                    leaf.clone().reshape([1, n])
                };
                let y = if engine {
                    ours(input, alpha)
                } else {
                    theirs(input, alpha)
                };
                let gt = on_side(g.clone(), [1, n], &dev, engine);
                let grads = (y.clone() * gt).sum().backward();
                (to_vec1(y.reshape([n])), to_vec1(leaf.grad(&grads).unwrap()))
            };
            let (y, dx) = run(true);
            let (y_ref, dx_ref) = run(false);
            assert!(max_rel(&y, &y_ref) < 1e-6, "n {n}: {name} values");
            // At exactly 0 ELU's two definitions' derivatives differ (burn's mask_where takes
            // the exponential branch, slope α; PyTorch and the fused ELU take y + α = α as
            // well) — so compare everywhere.
            assert!(
                max_rel(&dx, &dx_ref) < 1e-6,
                "n {n}: {name} gradient {:e}",
                max_rel(&dx, &dx_ref)
            );
        }
    }
}

// Golden slopes from PyTorch 2.15:
//   x = torch.tensor([0.0, -0.0, 1e-30, -1e-30, -40., 3.0], requires_grad=True)
//   torch.nn.functional.elu(x, alpha=1.3).sum().backward(); x.grad
//   -> [1.3, 1.3, 1.0, 1.3, 5.5e-18, 1.0]
// At exactly 0 the slope is α (not 1 + α, which max(x, 0) + α(e^min(x, 0) − 1) gives).
#[test]
fn fused_elu_slopes_equal_pytorch() {
    let dev = Device::flex().autodiff();
    let x = Tensor::<1>::from_data(
        TensorData::new(vec![0.0f32, -0.0, 1e-30, -1e-30, -40.0, 3.0], [6]),
        &dev,
    )
    .require_grad();
    let grads = elu(x.clone(), 1.3).sum().backward();
    let g = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let expected = [1.3f32, 1.3, 1.0, 1.3, 5.5e-18, 1.0];
    for (a, e) in g.iter().zip(expected) {
        assert!((a - e).abs() <= 1e-6, "{g:?} vs PyTorch {expected:?}");
    }
}

/// A frame (untracked input) convolved at several steps with the same weights: the forward
/// is answered from the frame cache (bit-identical outputs), every step keeps its backward —
/// the weight gradient is the sum over the steps, as burn's.
#[test]
fn repeated_frame_is_convolved_once_with_every_steps_gradient() {
    let mut rng = SplitMix::new(8);
    let (b, ci, co, h) = (2, 3, 6, 16);
    let x = rng.normals(b * ci * h * h);
    let w = rng.normals(co * ci * 9);
    let gs: Vec<Vec<f32>> = (0..3).map(|_| rng.normals(b * co * h * h)).collect();
    let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let run = |engine: bool| {
        let dev = Device::flex().autodiff();
        let xt = on_side(x.clone(), [b, ci, h, h], &dev, engine);
        let wt = on_side(w.clone(), [co, ci, 3, 3], &dev, engine)
            .detach()
            .require_grad();
        let hits = frame_cache_hits();
        let mut loss: Option<Tensor<1>> = None;
        let mut ys = Vec::new();
        for g in &gs {
            let y = if engine {
                conv2d(xt.clone(), wt.clone(), None, opts.clone())
            } else {
                burn_conv2d(xt.clone(), wt.clone(), None, opts.clone())
            };
            ys.push(to_vec(y.clone()));
            let gt = on_side(g.clone(), [b, co, h, h], &dev, engine);
            let l = (y * gt).sum();
            loss = Some(match loss {
                None => l,
                Some(a) => a + l,
            });
        }
        let grads = loss.unwrap().backward();
        (
            ys,
            to_vec(wt.grad(&grads).unwrap()),
            frame_cache_hits() - hits,
        )
    };
    let (ys, dw, hits) = run(true);
    let (ys_ref, dw_ref, _) = run(false);
    assert_eq!(hits, 2, "steps 2 and 3 should come from the frame cache");
    assert_eq!(ys[0], ys[1]);
    assert_eq!(ys[0], ys[2]);
    assert!(max_rel(&ys[0], &ys_ref[0]) < 2e-5);
    assert!(max_rel(&dw, &dw_ref) < 2e-5, "{:e}", max_rel(&dw, &dw_ref));
}

/// The engine's 2 × 2 max-pool against burn's `max_pool2d` in float64: values and input
/// gradients of `Σ y·g`, odd channel counts, a strided input view, batch 1; other geometries
/// (3 × 3 windows, padding, odd maps) go to burn's pooling with the same results.
#[test]
fn max_pool_matches_burn_with_gradients() {
    use burn::tensor::ops::MaxPoolOptions;
    let mut rng = SplitMix::new(33);
    for (b, c, h, w, opts, strided) in [
        (
            2usize,
            3usize,
            8usize,
            6usize,
            MaxPoolOptions::new([2, 2]),
            false,
        ),
        (
            1,
            5,
            4,
            4,
            MaxPoolOptions::new([2, 2]).with_ceil_mode(true),
            true,
        ),
        (3, 16, 2, 2, MaxPoolOptions::new([2, 2]), false),
        (
            2,
            4,
            7,
            7,
            MaxPoolOptions::new([2, 2]).with_ceil_mode(true),
            false,
        ),
        (
            2,
            4,
            9,
            8,
            MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
            true,
        ),
    ] {
        let n = b * c * h * w;
        let x = rng.normals(n);
        let run = |engine: bool| {
            let dev = Device::flex().autodiff();
            let leaf = on_side(x.clone(), [n], &dev, engine)
                .detach()
                .require_grad();
            let input: Tensor<4> = if strided {
                // [B, C, W, H] in memory seen as [B, C, H, W].
                leaf.clone().reshape([b, c, w, h]).swap_dims(2, 3)
            } else {
                leaf.clone().reshape([b, c, h, w])
            };
            let y = if engine {
                ventral_models::engine_ops::max_pool2d(input, opts.clone())
            } else {
                burn::tensor::module::max_pool2d(input, opts.clone())
            };
            let m = y.dims().iter().product::<usize>();
            let g = SplitMix::new(m as u64).normals(m);
            let gt = on_side(g, y.dims(), &dev, engine);
            let grads = (y.clone() * gt).sum().backward();
            let dx = leaf.grad(&grads).unwrap();
            let f = |t: Tensor<1>| {
                t.cast(FloatDType::F32)
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            };
            (y.dims(), f(y.reshape([m])), f(dx))
        };
        let (d, y, dx) = run(true);
        let (d_ref, y_ref, dx_ref) = run(false);
        assert_eq!(d, d_ref, "{b}×{c}×{h}×{w}: output shape");
        assert_eq!(y, y_ref, "{b}×{c}×{h}×{w}: values");
        // Overlapping windows (the 3 × 3 fallback) add gradients: float32 vs float64 sums.
        let e = max_rel(&dx, &dx_ref);
        assert!(e < 1e-6, "{b}×{c}×{h}×{w}: input gradient {e:e}");
    }
}

// Golden from PyTorch 2.15 (ties: the first maximum of a window wins; NaN wins):
//   x = torch.tensor([[[[1.,1.,0.,2.],[1.,0.,2.,2.],[float('nan'),3.,-1.,-1.],[3.,3.,-1.,-1.]]]],
//                    requires_grad=True)
//   y = torch.nn.functional.max_pool2d(x, 2)
//   (y * torch.tensor([[[[1.,2.],[3.,4.]]]])).sum().backward()
//   y      -> [[1, 2], [nan, -1]]
//   x.grad -> [[1,0,0,2],[0,0,0,0],[3,0,4,0],[0,0,0,0]]
#[test]
fn max_pool_ties_and_nan_equal_pytorch() {
    let dev = Device::flex().autodiff();
    let x = Tensor::<1>::from_data(
        TensorData::new(
            vec![
                1.0f32,
                1.0,
                0.0,
                2.0,
                1.0,
                0.0,
                2.0,
                2.0,
                f32::NAN,
                3.0,
                -1.0,
                -1.0,
                3.0,
                3.0,
                -1.0,
                -1.0,
            ],
            [16],
        ),
        &dev,
    )
    .require_grad();
    let y = ventral_models::engine_ops::max_pool2d(
        x.clone().reshape([1, 1, 4, 4]),
        burn::tensor::ops::MaxPoolOptions::new([2, 2]),
    );
    let g = Tensor::<4>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
        &dev,
    );
    let grads = (y.clone() * g).sum().backward();
    let yv = y.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(yv[0], 1.0);
    assert_eq!(yv[1], 2.0);
    assert!(yv[2].is_nan());
    assert_eq!(yv[3], -1.0);
    let dx = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let expected = [
        1.0f32, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(dx, expected, "gradient routed as PyTorch's");
}

/// The fused gated sum `(a·m₁ + o₁)·p + (b·m₂ + o₂)·q` against burn's elementwise
/// composition in float64: values and all four gradients, with distinct gates and with one
/// gate used twice (`u·h + (1 − u)·c̃`, whose two gradient contributions autodiff must add),
/// a strided input view, sizes below and above one parallel chunk.
#[test]
fn gated_sum_matches_burn_with_gradients() {
    use ventral_models::engine_ops::gated_sum;
    let mut rng = SplitMix::new(44);
    for (n, k, shared, strided) in [
        (7usize, [1.0, 0.0, -1.0, 1.0], true, false),
        (40_000, [-0.92193, 0.92193, -0.70066, 0.70066], false, true),
        (16_384, [0.5, 0.25, 2.0, -1.0], false, false),
    ] {
        let xs: Vec<Vec<f32>> = (0..5).map(|_| rng.normals(n)).collect();
        let run = |engine: bool| {
            let dev = Device::flex().autodiff();
            let leaf = |v: &Vec<f32>| {
                on_side(v.clone(), [n], &dev, engine)
                    .detach()
                    .require_grad()
            };
            let leaves: Vec<Tensor<1>> = xs[..4].iter().map(leaf).collect();
            let view = |t: &Tensor<1>| -> Tensor<2> {
                if strided {
                    t.clone().reshape([n, 1]).swap_dims(0, 1)
                } else {
                    t.clone().reshape([1, n])
                }
            };
            let (a, p, q) = (view(&leaves[0]), view(&leaves[1]), view(&leaves[3]));
            let b = if shared { a.clone() } else { view(&leaves[2]) };
            let y = if engine {
                gated_sum((a, p), (b, q), k)
            } else {
                (a * k[0] + k[1]) * p + (b * k[2] + k[3]) * q
            };
            let g = on_side(xs[4].clone(), [1, n], &dev, engine);
            let grads = (y.clone() * g).sum().backward();
            let f = |t: Tensor<1>| {
                t.cast(FloatDType::F32)
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            };
            let gs: Vec<Option<Vec<f32>>> = leaves.iter().map(|l| l.grad(&grads).map(f)).collect();
            (f(y.reshape([n])), gs)
        };
        let (y, gs) = run(true);
        let (y_ref, gs_ref) = run(false);
        assert!(max_rel(&y, &y_ref) < 1e-6, "n {n}: values");
        for (i, (g, r)) in gs.iter().zip(&gs_ref).enumerate() {
            match (g, r) {
                (Some(g), Some(r)) => {
                    let e = max_rel(g, r);
                    assert!(e < 1e-6, "n {n}: gradient {i} {e:e}");
                }
                (None, None) => assert!(shared && i == 2, "n {n}: gradient {i} missing"),
                _ => panic!("n {n}: gradient {i} present on one side only"),
            }
        }
    }
}
