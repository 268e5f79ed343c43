//! 2-D convolution as blocked GEMM over images, in the engine's channel-major layout.
//!
//! Activations are `[C][B][H][W]` (channel rows, every image of the batch inside a row), so a
//! convolution of the whole batch is one matrix product `Y[Co, B·Ho·Wo] = W[Co, Ci·k²] ·
//! col[Ci·k², B·Ho·Wo]`, cut into chunks of images so that the unfolded `col` stays in a small
//! buffer. The three primitives of a convolution with geometry `G` (input `Hi×Wi`, output
//! `Ho×Wo`, stride, padding):
//!
//! - [`Conv::forward`]: `Y = W · im2col(X)`;
//! - [`Conv::backward_data`]: `dX += col2im(Wᵀ · dY)` (the adjoint of the forward);
//! - [`Conv::backward_weight`]: `dW += dY · im2col(X)ᵀ` (accumulating: calling it once per
//!   time step sums the steps into one gradient, the same as one GEMM over time × batch).
//!
//! A transposed convolution (PyTorch `ConvTranspose2d(Ci, Co, k, stride, padding,
//! output_padding)`, weight `[Ci, Co, k, k]`) is the adjoint of the convolution from its output
//! to its input; [`Conv::transposed`] builds that geometry, and its forward is
//! `backward_data`, its input gradient `forward`, its weight gradient `backward_weight` with the
//! roles of input and output gradient exchanged.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::amx_conv::Geo;
use crate::bf16::{
    PackedA, Unfolded, gemm_bf16, gemm_bf16_packed, gemm_bf16_unfolded, tiles_available,
};
use crate::kernel::{
    Planes, Small, conv_direct, conv_direct_step, conv_direct_taps, deinterleave_batch,
    direct_fits, interleave_batch, phases_of, phases_or_input, small_m, wgrad_direct,
    wgrad_direct_step,
};
use crate::mat::{MatMut, MatRef, gemm};
use crate::profile::{Op, scope};

/// Set by [`set_general_only`].
static GENERAL_ONLY: AtomicBool = AtomicBool::new(false);

/// Route every convolution through the general path (im2col + the `gemm` crate) instead of
/// the thin-layer kernels of [`crate::kernel`], process-wide: for benchmarks and tests that
/// compare the two. Off by default.
pub fn set_general_only(on: bool) {
    GENERAL_ONLY.store(on, Ordering::Relaxed);
}

/// Set by [`set_phase_data`].
static PHASE_DATA: AtomicBool = AtomicBool::new(true);

/// Run stride-2 input gradients by the phases of the output where they apply
/// ([`Conv::uses_phase_data`], default) or always by im2col's product + col2im, process-wide:
/// for benchmarks (`examples/conv_time nophase`) and tests that compare the two.
pub fn set_phase_data(on: bool) {
    PHASE_DATA.store(on, Ordering::Relaxed);
}

/// Map width from which wide stride-1 layers also run forward and input gradient as direct
/// convolutions (and wide stride-2 ones their forward). First measured with both paths on
/// 8-lane tiles (`examples/conv_time`, batch 16, 2 cores): BLT_net_64's 64 × 64 lateral 2.4×
/// faster forward than im2col + GEMM, 32 × 32: 1.2×, 16 × 16: 1.3×, 8 × 8 with 512 channels:
/// 0.5× (the weight rows no longer stay in cache). Remeasured with AVX-512 on both
/// (2026-12-03, `conv_time` against `conv_time general`, alternated): 64 × 64 still 2.6×
/// (23–26 vs 67–79 ms), 32 × 32 128 channels 1.3× (20–29 vs 28–37), but 16 × 16 now loses —
/// 256 channels forward 23–25 ms by GEMM vs 34–35 direct (batch 64: 121–130 vs 163–175),
/// 128 → 256 12–16 vs 17–20, the stride-2 128 → 256 (top-down input gradient) 17–19 vs 22–28
/// — so from 32. Remeasured after the AVX-512 tiles' later changes (2026-12-04, Zen 4, batch
/// 16, `conv_time` with the constants at 32 and at 8, fastest of 20, two runs): 16 × 16 now
/// wins — 256 → 256 forward 24.4–24.7 → 21.2–21.9 ms, input gradient 24.5–25.0 → 21.8–23.1,
/// 128 → 256 12.2–12.4 → 10.6–11.4 and 12.1–12.3 → 10.9–11.7; 8 × 8 with 512 channels wins its
/// forward (25.3 → 21.6–22.9) but not its input gradient (24.4–24.7 → 23.4–24.7), on 8-lane
/// row groups that a CPU with two 512-bit FMA units would run at half its peak — so from 16.
const DIRECT_MIN_SIDE: usize = 16;

/// Map width from which wide layers take the direct weight gradient (64 × 64: 2.3×, 32 × 32:
/// 1.6×, 16 × 16: 0.8× of the general path's speed … so from 32). Remeasured as
/// `DIRECT_MIN_SIDE` (2026-12-04): 16 × 16 now wins — 128 → 256 20.7 → 13.1–14.0 ms,
/// 256 → 256 30.0–30.4 → 26.8–27.9, the top-down 256 → 128 (16 → 32) 21.7–22.3 → 15.1 — and
/// 8 × 8 still loses (512 → 512 27.2 → 44–45 ms): from 16. With four images per partial sum
/// on 8 × 8 maps (`kernel::wgrad_group`, 2026-12-05, Zen 4, `conv_time` with this at 16 and at
/// 8, alternated twice) it is close but still behind: 512 → 512 27.2–27.9 → 29.2–30.0 ms at
/// batch 16, 105.6–107.1 → 104.8–107.4 at 64; 256 → 512 13.6–13.7 → 14.7–15.0 at 16.
const DIRECT_WGRAD_MIN_SIDE: usize = 16;

/// Output channels up to which forward and input-gradient products use the thin kernel.
const THIN_CO: usize = 32;

/// Channels (in and out) up to which a layer runs direct at any map width that fits, weight
/// gradient included: the ConvRNN cells on 8 × 8 maps. Measured with the row-group tiles
/// (2026-12-04, `examples/conv_time`, batch 32, 2-core Zen 4, general path vs direct,
/// fastest of 20): the GRU's gates 64 → 64 forward 1.51 → 1.01 ms, input gradient 1.38 →
/// 1.05, weight gradient 2.51 → 1.65; 64 → 128 2.16 → 1.85, 2.05 → 1.98, 3.41 → 3.10. Wider
/// layers on 8 × 8 (BLT_net_64's IT, 512 channels) lose their weight gradient by direct
/// (30 → 48 ms) and stay on `DIRECT_MIN_SIDE`.
const MEDIUM_CHANNELS: usize = 128;

/// Output rows narrower than this unfold through a table of tap offsets ([`Conv::im2col`]).
/// Measured on the ConvRNN presets' maps, one thread, batch 16 (`im2col` alone): 2 × 2
/// 266 → 107–135 µs (128 channels), 4 × 4 172–345 → 96–190 µs; 8 × 8 no faster (360 → 380–500
/// µs: there the unfolded rows are whole 8-float moves already), so it stays row by row.
/// Stride-1 layers of at most `MEDIUM_CHANNELS` channels on such maps now run direct on
/// batch-interleaved copies instead ([`Conv::interleaved`]; 2026-12-05, Zen 4, batch 32,
/// `examples/conv_time` against `conv_time general`, fastest of 20, two runs): 64 → 64 on
/// 4 × 4 forward 0.23 vs 0.24 ms, input gradient 0.26 vs 0.37, weight gradient 0.30 vs
/// 0.29–0.30; 32 → 32 on 4 × 4 0.10 vs 0.08–0.11, 0.11 vs 0.17–0.19, 0.11 vs 0.11–0.12;
/// 32 → 64 on 2 × 2 0.05 vs 0.06, 0.08 vs 0.11, 0.07 vs 0.07; 128 → 128 on 2 × 2 0.26 vs 0.24,
/// 0.32 vs 0.34–0.35, 0.31–0.32 vs 0.32–0.33. Inside burn's autodiff they also save the
/// channel-major copies of `x`, `y`, `dy` and `dx` (the entry points read burn's layout).
const SMALL_MAP_BELOW: usize = 8;

/// Channels (in and out) from which a bf16 convolution runs on AMX tiles ([`Conv::amx_worth`]);
/// narrower layers run the float32 kernels on bf16-rounded operands. Measured with `ventral
/// bench --precision bf16 --profile` (Intel Xeon with AMX, batch 16, ms per training step of
/// each convolution, AMX against float32): BLT_net_64's V1 bottom-up (32 → 64, 64 px) 35.3
/// against 32.1, V2 bottom-up (64 → 128) 20.0 against 27.2, V2 lateral (128) 125 against 158;
/// the tiny BLT (8–32 channels) trained at 146 images/s in bf16 on AMX, slower than in float32.
const AMX_MIN_CHANNELS: usize = 64;

/// Channels (in and out) from which a bf16 convolution that the direct AMX kernels
/// ([`crate::amx_conv`]) compute runs on them. `examples/conv_time` (`BF16=1`, batch 16, ms
/// forward / input gradient / weight gradient, direct AMX against the float32 kernels on
/// rounded operands): BLT_net_64's V1 bottom-up (32 → 64, 64 px) 1.9–2.4 / 2.4 / 3.8–4.0
/// against 10.4–10.6 / 14.0–14.1 / 16.0–16.2, the tiny BLT's IT lateral (32, 8 px) 0.08 /
/// 0.09 / 0.07 against 0.18 / 0.18 / 0.19 — but its 8- and 16-channel layers slower (V1
/// bottom-up 8 → 8 at 64 px 0.89–1.01 / 0.87–0.93 / 1.74–1.95 against 0.46 / 0.49 / 0.83:
/// channels are padded to 32).
const AMX_DIRECT_MIN_CHANNELS: usize = 32;

/// Channels (in and out) from which stride-1 layers on small maps run on [`crate::lanes`]
/// ([`Conv::uses_lanes`]).
const LANES_MIN_CHANNELS: usize = 64;

/// Bytes the unfolded input of one chunk may use.
const COL_BUDGET: usize = 8 << 20;

/// The weight gradient is a reduction over the batch (K = B·Ho·Wo, large) into a small
/// `Co × Ci·k²` matrix, which the GEMM cannot spread over threads when `Co` and `Ci·k²` are
/// small; so the batch is cut into at least this many chunks whose partial gradients are
/// computed in parallel and then summed in chunk order. The cut depends on the shapes only,
/// never on the thread count, so results are the same with any number of threads.
const WGRAD_SPLIT: usize = 4;

/// One axis of the output phases of a stride-`s` input gradient (kernel `k`, padding `pad`):
/// for phase `r`, its first kernel tap `t0`, its tap count `n` (0: no term reaches the phase)
/// and `pb`, where output `i` of the phase reads `dy` at `i − pb + u` for its taps
/// `u = 0..n` (tap `u` is kernel row `t0 + s·(n − 1 − u)`) — the padding before of the
/// stride-1 convolution over `dy` the phase is. Shared by [`Conv::data_phases`] and the AMX
/// input gradient's phases.
pub(crate) fn phase_axis(r: usize, k: usize, s: usize, pad: usize) -> (usize, usize, isize) {
    let t0 = (r + pad) % s;
    let n = k.saturating_sub(t0).div_ceil(s);
    let c0 = (r + pad - t0) / s;
    (t0, n, n as isize - 1 - c0 as isize)
}

/// How [`Conv::data_phases`] computes a stride-2 input gradient: `dy` zero-padded by `pad`
/// on every side (`padded` = its rows × columns), and per output phase `(ry, rx)` (in the
/// order 00, 01, 10, 11) its taps: (offset in the padded plane from an output pixel's
/// position, kernel tap `kh·k + kw`). A phase no tap reaches has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataPhases {
    pad: usize,
    padded: (usize, usize),
    phases: Vec<Vec<(usize, usize)>>,
}

/// Weights packed for [`crate::lanes::conv_channels`] by (address, length, exchanged) of the
/// float32 slice, or `None` (not kept): the packed floats and the offset of their 64-byte
/// aligned start.
type LanesWeights = std::collections::BTreeMap<Option<(usize, usize, bool)>, (Vec<f32>, usize)>;

/// Scratch buffers of the convolution passes, reused across layers and steps (they grow,
/// never shrink: no allocation churn in the time loop).
#[derive(Debug, Default)]
pub struct Scratch {
    /// Unfolded inputs, one per chunk processed at once.
    pub(crate) cols: Vec<Vec<f32>>,
    /// Partial weight gradients, one per chunk processed at once.
    pub(crate) parts: Vec<Vec<f32>>,
    /// Zero-padded input of a direct convolution.
    pub(crate) pad: Vec<f32>,
    /// Flipped, transposed weights of a direct input gradient.
    pub(crate) wt: Vec<f32>,
    /// The passes run in bf16 with float32 sums ([`crate::bf16::gemm_bf16`]: operands
    /// rounded to bf16, on AMX where the CPU has it) on the im2col + GEMM path, instead of
    /// exact float32. Set by the network for a whole pass (`BltNet::set_bf16`).
    pub bf16: bool,
    /// The weights of a bf16 pass, packed once per call for all its chunks of images.
    packed: PackedA,
    /// bf16-rounded copies of a pass's two operands where it runs on the float32 kernels
    /// ([`Conv::amx_worth`]).
    round_a: Vec<f32>,
    round_b: Vec<f32>,
    /// bf16 passes: the caller promises that the activations and gradients it passes (`x` of
    /// the forward and the weight gradient, `dy` of the input and the weight gradient) are
    /// bf16 values already (as [`crate::bf16::round_bf16`] leaves them), rounded once where
    /// they were produced, so that the passes on the float32 kernels round only the weights.
    /// The AMX passes convert their operands themselves (rounding a bf16 value again changes
    /// nothing), so the promise only matters for the others. Checked in debug builds.
    pub operands_rounded: bool,
    /// Stride-2 input gradients stay on im2col's product + col2im even where the phases
    /// apply ([`Conv::uses_phase_data`]): BLT training passes, whose top-downs keep the
    /// summation order the tiny BLT's trajectories were measured with (by phases the
    /// quickstart's seed 0 ended 0.4 points below its third step; `docs/performance.md`,
    /// session 59).
    pub keep_col2im: bool,
    /// The direct AMX kernels' packed weights by weight slice (address, length) and
    /// orientation, kept for the scratch's lifetime ([`Scratch::keep_packed_weights`]);
    /// `None`: packed again on every call.
    pub(crate) amx_weights: Option<crate::amx_conv::PackedWeights>,
    /// Weights packed for [`crate::lanes::conv_channels`]: by (address, length, orientation)
    /// of the float32 slice where the caller promised them constant
    /// ([`Scratch::keep_packed_weights`]), under key `None` otherwise (packed again at every
    /// call); each with the offset of its 64-byte aligned start.
    lanes: LanesWeights,
}

impl Scratch {
    /// Packs each weight slice for the direct bf16 AMX kernels and the float32 kernels with
    /// the output channels in the lanes ([`crate::lanes`]) once and reuses it on later calls
    /// (PyTorch's autocast caches its bf16 weights the same way). The caller promises
    /// that the weights it passes keep their values, address and length while this scratch
    /// lives — as the BLT passes' parameters do (borrowed for the net's lifetime).
    pub fn keep_packed_weights(mut self) -> Self {
        self.amx_weights = Some(Default::default());
        self
    }

    /// Empty buffers for passes in bf16 (`bf16 = true`) or exact float32.
    pub fn with_bf16(bf16: bool) -> Self {
        Self {
            bf16,
            ..Self::default()
        }
    }

    pub(crate) fn grow(&mut self, n: usize) {
        while self.cols.len() < n {
            self.cols.push(Vec::new());
        }
        while self.parts.len() < n {
            self.parts.push(Vec::new());
        }
    }

    /// The first unfolding buffer, at least `n` long.
    fn col(&mut self, n: usize) -> &mut [f32] {
        self.grow(1);
        ensure(&mut self.cols[0], n);
        &mut self.cols[0][..n]
    }
}

/// An input's planes with their layout, their size `(h, w)` and the zeros around them
/// `(before, after)` on both axes ([`Conv::interleaved_pass`]).
type PaddedInput<'a> = ((&'a [f32], Planes), (usize, usize), (usize, usize));

/// Geometry of a convolution over a batch. `ci`/`co` are the convolution's input and output
/// channels (for a transposed convolution: of the convolution it is the adjoint of).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv {
    pub ci: usize,
    pub co: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    /// Zeros after the last row and column beyond `pad` (padding `pad` before, `pad +
    /// pad_end` after, on both axes: TensorFlow's `same` for even kernels, `k/2 − 1` and one
    /// more; [`Self::with_pad_end`]); 0 from [`Self::new`] and [`Self::transposed`].
    pub pad_end: usize,
    pub hi: usize,
    pub wi: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Conv {
    /// `Conv2d(ci, co, k, stride, padding)` on `hi × wi` inputs.
    pub fn new(
        ci: usize,
        co: usize,
        k: usize,
        stride: usize,
        pad: usize,
        hi: usize,
        wi: usize,
    ) -> Self {
        let out = |n: usize| (n + 2 * pad).saturating_sub(k) / stride + 1;
        Self {
            ci,
            co,
            k,
            stride,
            pad,
            pad_end: 0,
            hi,
            wi,
            ho: out(hi),
            wo: out(wi),
        }
    }

    /// This convolution with `pad_end` more zeros after the last row and column than before
    /// the first (`Conv2d` with padding `(pad, pad + pad_end)` on both axes): TensorFlow's
    /// `same` for even kernels without an explicitly padded copy of the input. The direct,
    /// batch-interleaved and lanes kernels pad into their own buffers and the unfolding reads
    /// only inside the input, so every float32 path takes it; the bf16 AMX kernels and the
    /// stride-2 input gradient by phases do not run such layers (the rounded-operand and
    /// GEMM paths do). Only for convolutions from [`Self::new`].
    pub fn with_pad_end(self, pad_end: usize) -> Self {
        let out = |n: usize| (n + 2 * self.pad + pad_end).saturating_sub(self.k) / self.stride + 1;
        Self {
            pad_end,
            ho: out(self.hi),
            wo: out(self.wi),
            ..self
        }
    }

    /// `ConvTranspose2d(cin, cout, k, stride, padding, output_padding)` on `h × w` inputs: the
    /// geometry of the convolution `cout → cin` from the transposed convolution's output size
    /// `((h − 1)·stride − 2·padding + k + output_padding)` to `h × w`.
    pub fn transposed(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        out_pad: usize,
        h: usize,
        w: usize,
    ) -> Self {
        let big = |n: usize| (n - 1) * stride + k + out_pad - 2 * pad;
        Self {
            ci: cout,
            co: cin,
            k,
            stride,
            pad,
            pad_end: 0,
            hi: big(h),
            wi: big(w),
            ho: h,
            wo: w,
        }
    }

    /// 1 × 1, stride 1, no padding: each float32 pass is a matrix product per image on the
    /// arrays as they lie, in either layout (`pointwise_forward` and the two
    /// gradients) — `y_b = W·x_b`, `dx_b += Wᵀ·dy_b`, `dW += Σ_b dy_b·x_bᵀ` on the `gemm`
    /// crate's kernels, images in parallel — with no padded or unfolded copy. Measured
    /// against the direct and lanes kernels that ran them before, in place on batch-major
    /// arrays (`NCHW=1 PASSES=fdw conv_time`, batch 32, Zen 4, alternated three times;
    /// forward / input gradient / weight gradient, ms): 32 → 32 on 16 × 16 0.15–0.16 /
    /// 0.13–0.15 / 0.17–0.19 → 0.09–0.10 / 0.09–0.11 / 0.12–0.16; 96 → 32 on 8 × 8 (the
    /// reciprocal gated cells' concatenated input) 0.18–0.20 / 0.10–0.12 / 0.15–0.21 →
    /// 0.06–0.07 / 0.07–0.08 / 0.10–0.12; 128 → 128 on 8 × 8 0.68–0.75 / 0.71–0.76 /
    /// 0.58–0.65 → 0.31–0.34 / 0.32–0.36 / 0.35–0.40; on 28 × 28 7.4–8.7 / 8.0–9.3 / 6.7–7.5 →
    /// 4.5–5.0 / 4.8–5.2 / 4.8–5.3; 256 → 256 on 4 × 4 0.58–0.64 / 0.58–0.62 / 0.54–0.69 →
    /// 0.30–0.32 / 0.31–0.34 / 0.41–0.42. bf16 passes keep their paths.
    pub fn pointwise(&self) -> bool {
        self.k == 1
            && self.stride == 1
            && self.pad == 0
            && self.pad_end == 0
            && (self.ho, self.wo) == (self.hi, self.wi)
            && !GENERAL_ONLY.load(Ordering::Relaxed)
    }

    /// The forward of a [`Self::pointwise`] layer: per image `y_b (+)= W·x_b`, `x` and `y`
    /// laid out as their [`Planes`] say; images in parallel (each product on one thread)
    /// where there are at least as many as threads, else one after another with each product
    /// parallel inside — the same sums either way (the `gemm` crate's per-element order does
    /// not depend on its parallelism), so the same bits in either layout and with any number
    /// of threads.
    fn pointwise_forward(
        &self,
        w: &[f32],
        (x, xl): (&[f32], Planes),
        batch: usize,
        (y, yl): (&mut [f32], Planes),
        accumulate: bool,
    ) {
        let _p = scope(Op::Gemm);
        let hw = self.hi * self.wi;
        let a = MatRef::rm(w, 0, self.co, self.ci);
        let input = Self::image_planes(x, xl, self.ci, batch, hw);
        self.per_image(y, yl, self.co, batch, |b, out, serial| {
            pointwise_product(out, accumulate, a, input(b), serial);
        });
    }

    /// The input gradient of a [`Self::pointwise`] layer: per image `dx_b += Wᵀ·dy_b` (as
    /// [`Self::pointwise_forward`]).
    fn pointwise_data(
        &self,
        w: &[f32],
        (dy, dyl): (&[f32], Planes),
        batch: usize,
        (dx, dxl): (&mut [f32], Planes),
    ) {
        let _p = scope(Op::Gemm);
        let hw = self.hi * self.wi;
        let at = MatRef::rm(w, 0, self.co, self.ci).t();
        let grad = Self::image_planes(dy, dyl, self.co, batch, hw);
        self.per_image(dx, dxl, self.ci, batch, |b, out, serial| {
            pointwise_product(out, true, at, grad(b), serial);
        });
    }

    /// The weight gradient of a [`Self::pointwise`] layer: `dW += Σ_b dy_b·x_bᵀ`, the batch cut
    /// into at most `WGRAD_SPLIT` chunks of images (by the batch alone, never by the thread
    /// count) whose partial sums run in parallel, each image's product added in image order,
    /// and are added to `dw` in chunk order.
    fn pointwise_weight(
        &self,
        (x, xl): (&[f32], Planes),
        (dy, dyl): (&[f32], Planes),
        batch: usize,
        dw: &mut [f32],
        scratch: &mut Scratch,
    ) {
        if batch == 0 {
            return;
        }
        let hw = self.hi * self.wi;
        let input = Self::image_planes(x, xl, self.ci, batch, hw);
        let grad = Self::image_planes(dy, dyl, self.co, batch, hw);
        // `nb` images a chunk; the last chunk may hold fewer, and none is empty.
        let wl = self.co * self.ci;
        let nb = batch.div_ceil(WGRAD_SPLIT.min(batch));
        let chunks = batch.div_ceil(nb);
        assert!(dw.len() >= wl, "pointwise: weight gradient size");
        scratch.grow(chunks);
        scratch.parts[..chunks]
            .par_iter_mut()
            .enumerate()
            .for_each(|(c, part)| {
                ensure(part, wl);
                let images = c * nb..((c + 1) * nb).min(batch);
                for (i, b) in images.enumerate() {
                    let out = MatMut::rm(part, 0, self.co, self.ci);
                    let serial = chunks > 1;
                    pointwise_product(out, i > 0, grad(b), input(b).t(), serial);
                }
            });
        for part in &scratch.parts[..chunks] {
            dw.par_iter_mut()
                .zip(&part[..wl])
                .with_min_len(crate::min_items(1))
                .for_each(|(d, p)| *d += p);
        }
    }

    /// Image `b`'s `channels × hw` matrix of `channels × batch` planes laid out as `layout`.
    fn image_planes<'a>(
        v: &'a [f32],
        layout: Planes,
        channels: usize,
        batch: usize,
        hw: usize,
    ) -> impl Fn(usize) -> MatRef<'a> + Sync + 'a {
        let (cs, is) = layout.strides(channels, batch, hw);
        move |b| MatRef {
            data: v,
            off: b * is,
            rows: channels,
            cols: hw,
            rs: cs,
            cs: 1,
        }
    }

    /// `f(b, out_b, serial)` for each image `b` of `out` (`channels × batch` planes of this
    /// layer's output map, laid out as `layout` says): in parallel, each product on one thread
    /// (`serial`), where there are at least as many images as threads; else one after
    /// another, each product parallel inside.
    fn per_image(
        &self,
        out: &mut [f32],
        layout: Planes,
        channels: usize,
        batch: usize,
        f: impl Fn(usize, MatMut<'_>, bool) + Sync,
    ) {
        let hw = self.ho * self.wo;
        let n = channels * batch * hw;
        assert!(out.len() >= n, "pointwise: output size");
        if n == 0 {
            return;
        }
        let out = &mut out[..n];
        match layout {
            Planes::BatchMajor if batch > 1 && batch >= rayon::current_num_threads() => out
                .par_chunks_mut(channels * hw)
                .enumerate()
                .for_each(|(b, ob)| f(b, MatMut::rm(ob, 0, channels, hw), true)),
            Planes::BatchMajor => {
                for (b, ob) in out.chunks_mut(channels * hw).enumerate() {
                    f(b, MatMut::rm(ob, 0, channels, hw), false);
                }
            }
            // Channel-major: image `b`'s rows interleave with the others', so the images go
            // one after another (each product parallel inside) — as every image of a
            // batch-major array would on one thread.
            Planes::ChannelMajor => {
                for b in 0..batch {
                    let rows = MatMut {
                        data: &mut *out,
                        off: b * hw,
                        rows: channels,
                        cols: hw,
                        rs: batch * hw,
                        cs: 1,
                    };
                    f(b, rows, false);
                }
            }
        }
    }

    /// Rows of the unfolded input (`Ci·k²`).
    pub fn kdim(&self) -> usize {
        self.ci * self.k * self.k
    }

    /// Few output channels: the forward and input-gradient products run on
    /// [`crate::kernel::small_m`] (no packing, full register tiles) where the CPU allows.
    fn thin(&self) -> bool {
        self.co <= THIN_CO && crate::kernel::available() && !GENERAL_ONLY.load(Ordering::Relaxed)
    }

    /// Stride 1 or 2 with whole 8-column output tiles, between at most `MEDIUM_CHANNELS`
    /// channels or on maps at least `DIRECT_MIN_SIDE` wide: the forward runs as a direct
    /// convolution ([`conv_direct`]) without an unfolded input, and so does the input gradient
    /// of stride 1 (whole 8-column input rows too) — of stride 2 it stays on GEMM + col2im.
    ///
    /// Stride-1 layers of at most `MEDIUM_CHANNELS` channels on maps narrower than 8 (the
    /// ConvRNNs' 4 × 4 and 2 × 2) run direct too, on batch-interleaved copies
    /// ([`Self::interleaved`]).
    pub fn uses_direct(&self) -> bool {
        let plain = (self.stride == 1 || self.stride == 2)
            && (self.medium() || self.wo.min(self.wi) >= DIRECT_MIN_SIDE)
            && direct_fits(self.wo)
            && (self.stride == 2 || direct_fits(self.wi));
        (plain || self.interleaved()) && !GENERAL_ONLY.load(Ordering::Relaxed)
    }

    /// Maps narrower than 8 (stride 1, at most `MEDIUM_CHANNELS` channels, padding below `k`):
    /// the three passes run on the direct kernels over batch-interleaved copies
    /// (`kernel::interleave_batch`: a row of the map holds each column's images side by side,
    /// so a 4 × 4 map of 32 images has rows of 128 floats), instead of im2col + GEMM — whose
    /// unfolded input is 9× the map and whose products have only `B·Ho·Wo` columns.
    /// Measured (2026-12-05, `examples/conv_time`, batch 32, Zen 4): see `SMALL_MAP_BELOW`.
    pub fn interleaved(&self) -> bool {
        self.stride == 1
            && self.wo > 0
            && self.wo < SMALL_MAP_BELOW
            && self.wi < SMALL_MAP_BELOW
            && self.pad < self.k
            && self.medium()
            && crate::kernel::available()
            && !GENERAL_ONLY.load(Ordering::Relaxed)
    }

    /// The input gradient runs as a direct convolution (stride 1, see [`Self::uses_direct`]).
    pub fn uses_direct_data(&self) -> bool {
        self.stride == 1 && self.uses_direct()
    }

    /// Forward and input gradient run on [`crate::lanes`] (output channels in the vector
    /// lanes, AVX-512F): stride-1 layers with at least `LANES_MIN_CHANNELS` channels on both
    /// sides, where the other kernels of their own do not take them — on maps narrower than
    /// `SMALL_MAP_BELOW` beyond the interleaved path's channels, from there on wherever the
    /// row kernels do not apply (rows not whole 8-column tiles, more than `MEDIUM_CHANNELS`
    /// channels below `DIRECT_MIN_SIDE`): these ran on im2col + GEMM before. And on the row
    /// kernels' 8-px maps (below `DIRECT_MIN_SIDE`), where an 8-column row fills half a
    /// 16-lane vector, with twice `LANES_MIN_CHANNELS` on one side. BLT_net_64's IT, the
    /// convrnns zoo's 28-, 14- and 7-px layers, ConvRNN cells such as 64 → 128 on 8 × 8.
    ///
    /// Measured (`examples/conv_time` against the previous paths, Intel Xeon AVX-512, fastest
    /// of 20, ms; packing the weights at every call): IT lateral 512 → 512 at batch 16
    /// forward 15.0–15.8 → 13.4–14.0, input gradient 16.7–17.0 → 13.6–14.1; IT bottom-up
    /// 256 → 512 7.4–7.6 → 6.7, 7.5–7.7 → 7.0; the zoo's 128 → 128 on 28 × 28 13.8–13.9 →
    /// 10.0–10.1, 12.1–12.4 → 10.2–10.3, 256 → 256 on 14 × 14 12.3–12.4 → 9.8, 11.5–11.6 →
    /// 9.7–9.8, 512 → 512 on 7 × 7 11.9–12.0 → 10.3–10.6, 11.6–11.9 → 10.4–10.6; 256 → 256 on
    /// 4 × 4 (weights kept) 0.96–1.12 → 0.88–0.91, 1.09–1.13 → 0.89–0.90, 512 → 512 on 2 × 2
    /// forward 0.90–0.91 → 1.02–1.10 but input gradient 1.99–2.03 → 1.04–1.05; cell 64 → 128
    /// batch 16 0.63–0.68 → 0.55–0.57, 0.78–0.80 → 0.62–0.64, batch 32 1.30–1.38 →
    /// 1.17–1.25, 1.43–1.54 → 1.21–1.25. Left where they were: the GRU gates 64 → 64 on 8 × 8
    /// (forward 0.33–0.36 → 0.38 by lanes, input gradient 0.40–0.44 → 0.35–0.37, and
    /// `gru_shallow_cpu`'s training within noise), 128 → 128 on 4 × 4 interleaved (even at
    /// batch 16, 0.49–0.50 → 0.56–0.58 at 32), 16-px maps on the row kernels (BLT_net_64's V4
    /// lateral 12.1–12.3 against 12.9–13.0 by lanes), 32 → 32 on 8 × 8 (even).
    pub fn uses_lanes(&self) -> bool {
        let side = self.wo.min(self.wi);
        let free = if side < SMALL_MAP_BELOW {
            !self.interleaved()
        } else if side < DIRECT_MIN_SIDE {
            self.ci.max(self.co) >= 2 * LANES_MIN_CHANNELS || !self.uses_direct()
        } else {
            !self.uses_direct()
        };
        self.stride == 1
            && self.pad < self.k
            && side > 0
            && free
            && self.ci.min(self.co) >= LANES_MIN_CHANNELS
            && crate::lanes::available()
            && !GENERAL_ONLY.load(Ordering::Relaxed)
    }

    /// The forward reads and writes batch-major (NCHW) arrays in place
    /// ([`Self::forward_nchw`]): as products ([`Self::pointwise`]), on the direct or on the
    /// lanes kernels.
    pub fn forward_in_place(&self) -> bool {
        self.pointwise() || self.uses_direct() || self.uses_lanes()
    }

    /// The input gradient reads and writes batch-major (NCHW) arrays in place
    /// ([`Self::backward_data_nchw`]): as products ([`Self::pointwise`]), on the direct or on
    /// the lanes kernels.
    pub fn data_in_place(&self) -> bool {
        self.pointwise() || self.uses_direct_data() || self.uses_lanes()
    }

    /// The weight gradient reads batch-major (NCHW) arrays in place
    /// ([`Self::backward_weight_nchw`]): as products ([`Self::pointwise`]) or on the direct
    /// kernels ([`Self::uses_direct_wgrad`]).
    pub fn weight_in_place(&self) -> bool {
        self.pointwise() || self.uses_direct_wgrad()
    }

    /// The weight gradient runs on [`wgrad_direct`]: as [`Self::uses_direct`], with layers of
    /// more than `MEDIUM_CHANNELS` only from `DIRECT_WGRAD_MIN_SIDE` (on smaller maps the
    /// general GEMM, which blocks the long pixel reduction, was faster); and, where the
    /// weight gradient runs on 16-lane vectors (AVX-512VL), stride-1 layers whose weight
    /// gradient puts the output channels in the vector lanes (`kernel::wgrad_by_channels`),
    /// which beats the GEMM there, on maps of any width (the kernel walks pixels one by one):
    /// BLT_net_64's IT lateral (512 → 512 on 8 × 8, batch 16, Intel Xeon AVX-512, `conv_time`,
    /// two runs) 20.2 → 16.7–17.0 ms, its bottom-up 256 → 512 9.9 → 9.4; the convrnns zoo's
    /// 128 → 128 on 28 × 28 14.6 → 10.3, 256 → 256 on 14 × 14 11.4–11.6 → 9.6, 512 → 512 on
    /// 7 × 7 11.7–12.0 → 10.6, 256 → 256 on 4 × 4 1.39–1.42 → 1.19–1.20, 512 → 512 on 2 × 2
    /// 2.74–3.02 → 2.41 (maps narrower than 8 with at most 128 channels run interleaved). On
    /// 8-lane vectors (`conv_time narrow`, the same
    /// CPU) they lose (20.2 → 26.4, 9.8 → 13.0) and stay on the GEMM, so these layers' bits
    /// differ between CPUs with and without AVX-512, as the GEMM's micro-kernels' do. The
    /// stride-2 top-down into IT's maps stays on the GEMM (10.2 → 11.9 by channels).
    pub fn uses_direct_wgrad(&self) -> bool {
        let by_channels = self.stride == 1
            && crate::kernel::avx512vl()
            && self.wo.min(self.wi) > 0
            && self.pad < self.k
            && crate::kernel::wgrad_by_channels(self.co, 1)
            && !GENERAL_ONLY.load(Ordering::Relaxed);
        by_channels
            || (self.uses_direct()
                && (self.medium() || self.wo.min(self.wi) >= DIRECT_WGRAD_MIN_SIDE))
    }

    /// In bf16 mode ([`Scratch::bf16`]), whether the passes on `batch` images run on AMX
    /// tiles: where the CPU has them and both sides have at least `AMX_MIN_CHANNELS`
    /// channels, or `AMX_DIRECT_MIN_CHANNELS` where the direct kernels (`amx_conv`)
    /// compute the layer. Otherwise they run the exact float32 kernels on bf16-rounded
    /// operands — the same products (a product of two bf16 values is exact in float32) and
    /// float32 sums.
    ///
    /// On CPUs with AVX512-BF16 but no AMX (`amx_conv::Unit::Dot`: AMD Zen 4 and later) the
    /// same layers run the same tiles through `VDPBF16PS` dot products.
    pub fn amx_worth(&self, batch: usize) -> bool {
        let narrowest = self.ci.min(self.co);
        let direct = narrowest >= AMX_DIRECT_MIN_CHANNELS && Geo::of(self, batch).is_some();
        tiles_available() && (narrowest >= AMX_MIN_CHANNELS || direct)
    }

    /// A bf16 pass on the float32 kernels ([`Self::amx_worth`] false): `f` runs with `a` and
    /// `b` rounded to bf16 (into the scratch's copies) and `scratch.bf16` off. With
    /// [`Scratch::operands_rounded`], only `a` is rounded, and only when it holds the
    /// weights (`a_weights`; the weight gradient's `a` is `x`).
    fn on_rounded(
        scratch: &mut Scratch,
        (a, a_weights): (&[f32], bool),
        b: &[f32],
        f: impl FnOnce(&mut Scratch, &[f32], &[f32]),
    ) {
        let given = scratch.operands_rounded;
        debug_assert!(
            !given
                || [(!a_weights).then_some(a), Some(b)]
                    .iter()
                    .flatten()
                    .all(|v| {
                        v.iter().all(|&x| {
                            x.is_nan() || crate::bf16::round_bf16(x).to_bits() == x.to_bits()
                        })
                    }),
            "Scratch::operands_rounded set, but an operand is not bf16-rounded"
        );
        let mut ra = std::mem::take(&mut scratch.round_a);
        let mut rb = std::mem::take(&mut scratch.round_b);
        let (round_a, round_b) = (!given || a_weights, !given);
        {
            let _p = scope(Op::Elementwise);
            if round_a {
                crate::bf16::round_into(a, &mut ra);
            }
            if round_b {
                crate::bf16::round_into(b, &mut rb);
            }
        }
        scratch.bf16 = false;
        let a = if round_a { &ra[..] } else { a };
        let b = if round_b { &rb[..] } else { b };
        f(scratch, a, b);
        scratch.bf16 = true;
        scratch.round_a = ra;
        scratch.round_b = rb;
    }

    /// The unfolded input of images `b0..` (`n` columns) as the bf16 product reads it
    /// directly ([`crate::bf16::Unfolded`]): in bf16 mode, stride 1, output rows a multiple of
    /// 16 wide (BLT_net_64's 64-, 32- and 16-px bottom-ups and laterals), AMX present.
    fn unfolded<'x>(
        &self,
        bf16: bool,
        x: &'x [f32],
        batch: usize,
        b0: usize,
        n: usize,
    ) -> Option<Unfolded<'x>> {
        let u = Unfolded {
            x,
            ci: self.ci,
            k: self.k,
            pad: self.pad,
            hw_in: (self.hi, self.wi),
            hw_out: (self.ho, self.wo),
            batch,
            b0,
            n,
        };
        (bf16 && self.stride == 1 && u.supported()).then_some(u)
    }

    /// At most [`MEDIUM_CHANNELS`] channels on both sides.
    fn medium(&self) -> bool {
        self.ci <= MEDIUM_CHANNELS && self.co <= MEDIUM_CHANNELS
    }

    /// The input zero-padded by `pad` into `pad` (the scratch's), as its `stride × stride`
    /// phases ([`phases`], the layout of the direct kernels), or the input itself where that
    /// is the same array ([`phases_or_input`]): the padded input and the size of a phase.
    fn pad_input<'a>(
        &self,
        x: (&'a [f32], Planes),
        batch: usize,
        pad: &'a mut Vec<f32>,
    ) -> (&'a [f32], (usize, usize)) {
        let (hw, p, s) = ((self.hi, self.wi), self.pad, self.stride);
        phases_or_input(x, (self.ci, batch), hw, (p, p + self.pad_end), s, pad)
    }

    /// Multiply-adds of one forward pass per image.
    pub fn macs_per_image(&self) -> usize {
        self.co * self.kdim() * self.ho * self.wo
    }

    fn chunk_images(&self, batch: usize) -> usize {
        let per = self.kdim() * self.ho * self.wo * 4;
        (COL_BUDGET / per.max(1)).clamp(1, batch.max(1))
    }

    /// Chunks of whole images: `(b0, b1, columns)` with `columns = (b1 − b0)·Ho·Wo`.
    fn chunks(&self, batch: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let (nb, howo) = (self.chunk_images(batch), self.ho * self.wo);
        (0..batch).step_by(nb).map(move |b0| {
            let b1 = (b0 + nb).min(batch);
            (b0, b1, (b1 - b0) * howo)
        })
    }

    /// Columns of images `b0..` (`n` of them) of an output-shaped `[Co][B][Ho·Wo]` array.
    fn out_cols<'a>(&self, y: &'a [f32], batch: usize, b0: usize, n: usize) -> MatRef<'a> {
        let howo = self.ho * self.wo;
        MatRef {
            data: y,
            off: b0 * howo,
            rows: self.co,
            cols: n,
            rs: batch * howo,
            cs: 1,
        }
    }

    /// [`Self::out_cols`], writable.
    fn out_cols_mut<'a>(&self, y: &'a mut [f32], batch: usize, b0: usize, n: usize) -> MatMut<'a> {
        let howo = self.ho * self.wo;
        MatMut {
            data: y,
            off: b0 * howo,
            rows: self.co,
            cols: n,
            rs: batch * howo,
            cs: 1,
        }
    }

    /// Unfold images `b0..b1` of `x` (`[Ci][B][Hi·Wi]`) into `col` (`[Ci·k²][(b1−b0)·Ho·Wo]`).
    fn im2col(&self, x: &[f32], batch: usize, b0: usize, b1: usize, col: &mut [f32]) {
        let (hiwi, howo, k) = (self.hi * self.wi, self.ho * self.wo, self.k);
        let n = (b1 - b0) * howo;
        if self.small_maps() {
            // Per channel: its planes copied with one zero after each (`Hi·Wi + 1` apart), so
            // that every tap of every output pixel is one load through a table of offsets
            // (a padding tap reads the zero): no per-row work at all.
            let taps = self.tap_table();
            let stride = hiwi + 1;
            col[..self.kdim() * n]
                .par_chunks_mut(k * k * n)
                .with_min_len(crate::min_items(k * k * n))
                .enumerate()
                .for_each_init(
                    || vec![0.0f32; (b1 - b0) * stride],
                    |buf, (c, dst)| {
                        let src_c = &x[(c * batch + b0) * hiwi..(c * batch + b1) * hiwi];
                        for (plane, s) in buf.chunks_exact_mut(stride).zip(src_c.chunks(hiwi)) {
                            plane[..hiwi].copy_from_slice(s);
                            plane[hiwi] = 0.0;
                        }
                        for (tap, d) in dst.chunks_exact_mut(n).enumerate() {
                            let t = &taps[tap * howo..(tap + 1) * howo];
                            crate::kernel::gather_planes(d, buf, stride, t);
                        }
                    },
                );
            return;
        }
        col[..self.kdim() * n]
            .par_chunks_mut(n)
            .with_min_len(crate::min_items(n))
            .enumerate()
            .for_each(|(row, dst)| {
                let (c, kh, kw) = (row / (k * k), (row / k) % k, row % k);
                let src_c = &x[c * batch * hiwi..(c + 1) * batch * hiwi];
                for (bi, b) in (b0..b1).enumerate() {
                    let src = &src_c[b * hiwi..(b + 1) * hiwi];
                    let d = &mut dst[bi * howo..(bi + 1) * howo];
                    self.gather_plane(src, d, kh, kw);
                }
            });
    }

    /// Output rows narrower than [`SMALL_MAP_BELOW`]: unfolded through a table of tap offsets
    /// ([`Self::tap_table`]) instead of row by row, where [`Self::gather_plane`]'s per-row work
    /// (ranges, fills, a `memcpy` call per few floats) costs more than the copying itself (the
    /// ConvRNNs' 4 × 4 and 2 × 2 maps). Only the unfolding: folding back ([`Self::col2im`])
    /// through a padded copy measured slower than row by row.
    fn small_maps(&self) -> bool {
        self.ho > 0 && self.wo > 0 && self.wo < SMALL_MAP_BELOW
    }

    /// Per tap `(kh, kw)`, the input offset of every output pixel, or `Hi·Wi` where the tap
    /// falls in the padding (the zero [`Self::im2col`] puts after each plane): `[k²][Ho·Wo]`.
    fn tap_table(&self) -> Vec<u32> {
        let (k, s, p) = (self.k, self.stride, self.pad);
        let zero = (self.hi * self.wi) as u32;
        let mut t = Vec::with_capacity(k * k * self.ho * self.wo);
        for kh in 0..k {
            for kw in 0..k {
                for oh in 0..self.ho {
                    for ow in 0..self.wo {
                        let (ih, iw) =
                            ((oh * s + kh).wrapping_sub(p), (ow * s + kw).wrapping_sub(p));
                        t.push(if ih < self.hi && iw < self.wi {
                            (ih * self.wi + iw) as u32
                        } else {
                            zero
                        });
                    }
                }
            }
        }
        t
    }

    /// One (kh, kw) tap of one image plane: `d[oh, ow] = src[oh·s + kh − p, ow·s + kw − p]`.
    fn gather_plane(&self, src: &[f32], d: &mut [f32], kh: usize, kw: usize) {
        let (s, p) = (self.stride, self.pad);
        let (lo, hi_) = self.valid_range(kw, self.wi, self.wo);
        for oh in 0..self.ho {
            let row = &mut d[oh * self.wo..(oh + 1) * self.wo];
            let ih = (oh * s + kh) as isize - p as isize;
            if ih < 0 || ih >= self.hi as isize || lo >= hi_ {
                row.fill(0.0);
                continue;
            }
            let srow = &src[ih as usize * self.wi..(ih as usize + 1) * self.wi];
            row[..lo].fill(0.0);
            row[hi_..].fill(0.0);
            if s == 1 {
                let start = lo + kw - p;
                row[lo..hi_].copy_from_slice(&srow[start..start + (hi_ - lo)]);
            } else {
                for ow in lo..hi_ {
                    row[ow] = srow[ow * s + kw - p];
                }
            }
        }
    }

    /// Output columns `ow` whose tap `kw` lands inside the input: `[lo, hi)`.
    fn valid_range(&self, kw: usize, wi: usize, wo: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        // ow·s + kw − p ≥ 0  and  ow·s + kw − p < wi
        let lo = if kw >= p { 0 } else { (p - kw).div_ceil(s) };
        let hi = if wi + p > kw {
            ((wi + p - kw - 1) / s + 1).min(wo)
        } else {
            0
        };
        (lo.min(wo), hi.max(lo.min(wo)))
    }

    /// The adjoint of [`Self::im2col`]: add `col` into images `b0..b1` of `dx`.
    fn col2im(&self, col: &[f32], batch: usize, b0: usize, b1: usize, dx: &mut [f32]) {
        let (k3s2, even) = (
            self.k == 3 && self.stride == 2 && self.pad == 1,
            self.hi == 2 * self.ho && self.wi == 2 * self.wo && self.wo > 0,
        );
        if k3s2 && even {
            return self.col2im_3x3_s2(col, batch, b0, b1, dx);
        }
        self.col2im_general(col, batch, b0, b1, dx)
    }

    /// [`Self::col2im`] for any geometry: tap by tap.
    fn col2im_general(&self, col: &[f32], batch: usize, b0: usize, b1: usize, dx: &mut [f32]) {
        let (hiwi, howo, k) = (self.hi * self.wi, self.ho * self.wo, self.k);
        let n = (b1 - b0) * howo;
        let (s, p) = (self.stride, self.pad);
        dx.par_chunks_mut(batch * hiwi)
            .with_min_len(crate::min_items(k * k * n))
            .enumerate()
            .for_each(|(c, dxc)| {
                crate::simd::run(
                    #[inline(always)]
                    || {
                        for kh in 0..k {
                            for kw in 0..k {
                                let row = (c * k + kh) * k + kw;
                                let src_r = &col[row * n..(row + 1) * n];
                                let (lo, hi_) = self.valid_range(kw, self.wi, self.wo);
                                if lo >= hi_ {
                                    continue;
                                }
                                for (bi, b) in (b0..b1).enumerate() {
                                    let d = &mut dxc[b * hiwi..(b + 1) * hiwi];
                                    let src = &src_r[bi * howo..(bi + 1) * howo];
                                    for oh in 0..self.ho {
                                        let ih = (oh * s + kh) as isize - p as isize;
                                        if ih < 0 || ih >= self.hi as isize {
                                            continue;
                                        }
                                        let drow = &mut d
                                            [ih as usize * self.wi..(ih as usize + 1) * self.wi];
                                        let srow = &src[oh * self.wo + lo..oh * self.wo + hi_];
                                        if s == 1 {
                                            // Contiguous: one vectorised row add.
                                            let start = lo + kw - p;
                                            drow[start..start + srow.len()]
                                                .iter_mut()
                                                .zip(srow)
                                                .for_each(|(d, v)| *d += v);
                                        } else {
                                            for (j, v) in srow.iter().enumerate() {
                                                drow[(lo + j) * s + kw - p] += v;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    },
                )
            });
    }

    /// [`Self::col2im`] of a 3 × 3, stride-2, padding-1 convolution whose input is twice its
    /// output (BLT's top-downs, the transposed convolutions' forward): per input row and tap
    /// row, the three taps' rows added at once — even columns take tap 1, odd ones tap 0 (of
    /// the next output column) then tap 2 — as whole column pairs with no bounds checks, so
    /// the loop vectorises. Each element gets its additions in the general loop's order (tap
    /// rows, then taps, ascending): the same bits.
    fn col2im_3x3_s2(&self, col: &[f32], batch: usize, b0: usize, b1: usize, dx: &mut [f32]) {
        let (hiwi, howo) = (self.hi * self.wi, self.ho * self.wo);
        let (ho, wo, wi) = (self.ho, self.wo, self.wi);
        let n = (b1 - b0) * howo;
        dx.par_chunks_mut(batch * hiwi)
            .with_min_len(crate::min_items(9 * n))
            .enumerate()
            .for_each(|(c, dxc)| {
                crate::simd::run_wide(
                    #[inline(always)]
                    || {
                        for kh in 0..3 {
                            let tap = |kw: usize| {
                                let row = (c * 3 + kh) * 3 + kw;
                                &col[row * n..(row + 1) * n]
                            };
                            let (t0, t1, t2) = (tap(0), tap(1), tap(2));
                            for (bi, b) in (b0..b1).enumerate() {
                                let d = &mut dxc[b * hiwi..(b + 1) * hiwi];
                                for oh in 0..ho {
                                    // Input row 2·oh + kh − 1.
                                    let Some(ih) = (2 * oh + kh).checked_sub(1) else {
                                        continue;
                                    };
                                    let o = bi * howo + oh * wo;
                                    let (s0, s1, s2) =
                                        (&t0[o..o + wo], &t1[o..o + wo], &t2[o..o + wo]);
                                    let drow = &mut d[ih * wi..(ih + 1) * wi];
                                    let (pairs, _) = drow.as_chunks_mut::<2>();
                                    let (pairs, last) = pairs.split_at_mut(wo - 1);
                                    // Columns 2j (tap 1 of output column j) and 2j + 1 (tap 0
                                    // of column j + 1, then tap 2 of column j).
                                    let taps = s1.iter().zip(&s0[1..]).zip(s2);
                                    for (pr, ((&a1, &a0), &a2)) in pairs.iter_mut().zip(taps) {
                                        pr[0] += a1;
                                        pr[1] = (pr[1] + a0) + a2;
                                    }
                                    // The last pair: no output column to its right.
                                    if let Some(pr) = last.first_mut() {
                                        pr[0] += s1[wo - 1];
                                        pr[1] += s2[wo - 1];
                                    }
                                }
                            }
                        }
                    },
                )
            });
    }

    /// `y = W · im2col(x)` (`accumulate`: `y +=`).
    ///
    /// # Shapes
    /// - `w`: `[Co, Ci, k, k]`; `x`: `[Ci][B][Hi][Wi]`; `y`: `[Co][B][Ho][Wo]`.
    pub fn forward(
        &self,
        w: &[f32],
        x: &[f32],
        batch: usize,
        y: &mut [f32],
        accumulate: bool,
        scratch: &mut Scratch,
    ) {
        let (kd, howo) = (self.kdim(), self.ho * self.wo);
        let bf16 = scratch.bf16;
        if bf16 && !self.amx_worth(batch) {
            return Self::on_rounded(scratch, (w, true), x, |sc, w, x| {
                self.forward(w, x, batch, y, accumulate, sc)
            });
        }
        if self.pointwise() && !bf16 {
            let layout = Planes::ChannelMajor;
            return self.pointwise_forward(w, (x, layout), batch, (y, layout), accumulate);
        }
        if (self.uses_direct() || self.uses_lanes()) && !bf16 {
            let layout = Planes::ChannelMajor;
            self.forward_direct(w, (x, layout), batch, (y, layout), accumulate, scratch);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(g) = bf16.then(|| Geo::of(self, batch)).flatten() {
            // On AMX tiles from compact bf16 copies of the input (no unfolded input).
            let _p = scope(Op::Gemm);
            let taps = crate::amx_conv::all_taps(self.k * self.k);
            let kern = crate::amx_conv::Kernel {
                w,
                taps: &taps,
                k2: self.k * self.k,
                exchanged: false,
                kind: 0,
            };
            let cache = scratch.amx_weights.as_mut();
            crate::amx_conv::forward(&g, &kern, x, y, accumulate, cache);
            return;
        }
        let mut packed = std::mem::take(&mut scratch.packed);
        if bf16 {
            let _p = scope(Op::Gemm);
            packed.pack(MatRef::rm(w, 0, self.co, kd), tiles_available());
        }
        for (b0, b1, n) in self.chunks(batch) {
            if let Some(u) = self.unfolded(bf16, x, batch, b0, n) {
                // bf16 on AMX from the input itself: no unfolded float32 copy.
                let _p = scope(Op::Gemm);
                let out = self.out_cols_mut(y, batch, b0, n);
                gemm_bf16_unfolded(out, accumulate, &packed, u, false);
                continue;
            }
            let col = scratch.col(kd * n);
            {
                let _p = scope(Op::Im2col);
                self.im2col(x, batch, b0, b1, col);
            }
            let _p = scope(Op::Gemm);
            if bf16 {
                let out = self.out_cols_mut(y, batch, b0, n);
                gemm_bf16_packed(out, accumulate, &packed, MatRef::rm(col, 0, kd, n));
                continue;
            }
            if self.thin() {
                let a = Small::row_major(w, kd);
                let (off, rs) = (b0 * howo, batch * howo);
                small_m(self.co, n, kd, a, col, 0, n, y, off, rs, accumulate);
                continue;
            }
            let out = self.out_cols_mut(y, batch, b0, n);
            gemm(
                out,
                accumulate,
                MatRef::rm(w, 0, self.co, kd),
                MatRef::rm(col, 0, kd, n),
            );
        }
        scratch.packed = packed;
    }

    /// [`Self::forward`] on batch-major (NCHW) arrays, the layout of burn's tensors, which the
    /// direct and the lanes kernels read and write in place: no transposed copies. Only for
    /// convolutions that run on them ([`Self::forward_in_place`]); same bits as
    /// [`Self::forward`] on the transposed arrays in float32. The batch-major entry points run
    /// float32 whatever [`Scratch::bf16`] says (their callers, burn's operations, are float32);
    /// so a [`Self::pointwise`] layer always takes its products here, never the direct kernels
    /// its geometry may not fit.
    ///
    /// # Shapes
    /// - `w`: `[Co, Ci, k, k]`; `x`: `[B][Ci][Hi][Wi]`; `y`: `[B][Co][Ho][Wo]`.
    ///
    /// # Panics
    /// When the convolution does not run in place (a caller bug: check
    /// [`Self::forward_in_place`]).
    pub fn forward_nchw(
        &self,
        w: &[f32],
        x: &[f32],
        batch: usize,
        y: &mut [f32],
        accumulate: bool,
        scratch: &mut Scratch,
    ) {
        let layout = Planes::BatchMajor;
        if self.pointwise() {
            return self.pointwise_forward(w, (x, layout), batch, (y, layout), accumulate);
        }
        assert!(
            self.forward_in_place(),
            "forward_nchw: not a direct convolution"
        );
        self.forward_direct(w, (x, layout), batch, (y, layout), accumulate, scratch);
    }

    fn forward_direct(
        &self,
        w: &[f32],
        x: (&[f32], Planes),
        batch: usize,
        y: (&mut [f32], Planes),
        accumulate: bool,
        scratch: &mut Scratch,
    ) {
        if self.interleaved() {
            self.forward_interleaved(w, x, batch, y, accumulate, scratch);
            return;
        }
        let keep = scratch.amx_weights.is_some();
        let Scratch { pad, lanes, .. } = scratch;
        let (xp, sh) = {
            let _p = scope(Op::Im2col);
            self.pad_input(x, batch, pad)
        };
        if self.uses_lanes() {
            let _p = scope(Op::Gemm);
            let w = (crate::lanes::Weights::Rows { w, co: self.co }, self.k);
            let out = ((self.ho, self.wo), y, accumulate);
            Self::lanes_pass(w, (xp, self.ci, sh), batch, out, (lanes, keep));
            return;
        }
        let _p = scope(Op::Gemm);
        let a = Small::row_major(w, self.kdim());
        let so = (self.ho, self.wo);
        let ks = (self.k, self.stride);
        let (co, ci) = (self.co, self.ci);
        conv_direct(a, co, ci, ks, batch, xp, sh, so, y, accumulate);
    }

    /// [`Self::forward_direct`] on batch-interleaved copies ([`Self::interleaved`]).
    fn forward_interleaved(
        &self,
        w: &[f32],
        x: (&[f32], Planes),
        batch: usize,
        y: (&mut [f32], Planes),
        accumulate: bool,
        scratch: &mut Scratch,
    ) {
        let a = Small::row_major(w, self.kdim());
        let input = (x, (self.hi, self.wi), (self.pad, self.pad + self.pad_end));
        let out = ((self.ho, self.wo), y, accumulate);
        Self::interleaved_pass(a, (self.ci, self.co, self.k), input, batch, out, scratch);
    }

    /// One direct convolution of stride 1 through batch-interleaved copies: `input`'s
    /// `cin × batch` planes of `hw_in`, padded by `p` (before, after), interleaved
    /// ([`interleave_batch`]) into `scratch.pad`; the convolution with weights `a` (`cout ×
    /// cin·k²`) into `scratch.cols[0]`; its `cout × batch` planes of `hw_out` written (or added)
    /// into `y`.
    fn interleaved_pass(
        a: Small<'_>,
        (cin, cout, k): (usize, usize, usize),
        (input, hw_in, p): PaddedInput<'_>,
        batch: usize,
        (hw_out, y, accumulate): ((usize, usize), (&mut [f32], Planes), bool),
        scratch: &mut Scratch,
    ) {
        if batch == 0 {
            return;
        }
        let lanes = interleave_lanes(batch, hw_in.1, hw_out.1);
        scratch.grow(1);
        let Scratch { cols, pad, .. } = scratch;
        let (hp, wp) = {
            let _p = scope(Op::Im2col);
            interleave_batch(input, (cin, batch), hw_in, p, lanes, pad)
        };
        let n = cout * hw_out.0 * hw_out.1 * lanes;
        ensure(&mut cols[0], n);
        let out = &mut cols[0][..n];
        {
            let _p = scope(Op::Gemm);
            let so = (hw_out.0, hw_out.1 * lanes);
            let yl = (&mut *out, Planes::ChannelMajor);
            conv_direct_step(a, cout, cin, (k, 1, lanes), 1, pad, (hp, wp), so, yl, false);
        }
        let _p = scope(Op::Col2im);
        deinterleave_batch(out, (cout, batch), hw_out, lanes, y, accumulate);
    }

    /// A stride-1 convolution on [`crate::lanes`] of the padded input `xp` (`cin` channels
    /// of `hp × wp` per image, [`phases_of`]'s layout) with the kernel `k` wide into the
    /// output channels of `w`, `hw_out` each, laid out as `y` says; `w` packed into the
    /// scratch's `lanes`, kept by its slice where `keep` ([`Scratch::keep_packed_weights`]).
    fn lanes_pass(
        (w, k): (crate::lanes::Weights<'_>, usize),
        (xp, cin, (hp, wp)): (&[f32], usize, (usize, usize)),
        batch: usize,
        (hw_out, y, accumulate): ((usize, usize), (&mut [f32], Planes), bool),
        (lanes, keep): (&mut LanesWeights, bool),
    ) {
        let offs = crate::kernel::tap_offsets(cin, (k, 1, 1), hp * wp, wp);
        let (slice, exchanged) = match w {
            crate::lanes::Weights::Rows { w, .. } => (w, false),
            crate::lanes::Weights::Exchanged { w, .. } => (w, true),
        };
        let key = keep.then_some((slice.as_ptr() as usize, slice.len(), exchanged));
        let n = w.packed_len();
        let (packed, off) = lanes.entry(key).or_default();
        if key.is_none() || packed.len() < n + 15 {
            ensure(packed, n + 15);
            *off = packed.as_ptr().align_offset(64).min(15);
            crate::lanes::pack(w, &mut packed[*off..]);
        }
        let input = (xp, cin * hp * wp, wp);
        let (cout, _) = w.shape();
        let packed = &packed[*off..*off + n];
        crate::lanes::conv_channels(packed, cout, &offs, batch, input, hw_out, y, accumulate);
    }

    /// `dx += col2im(Wᵀ · dy)`.
    ///
    /// # Shapes
    /// - `w`: `[Co, Ci, k, k]`; `dy`: `[Co][B][Ho][Wo]`; `dx`: `[Ci][B][Hi][Wi]`.
    pub fn backward_data(
        &self,
        w: &[f32],
        dy: &[f32],
        batch: usize,
        dx: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let kd = self.kdim();
        let bf16 = scratch.bf16;
        if bf16 && !self.amx_worth(batch) {
            return Self::on_rounded(scratch, (w, true), dy, |sc, w, dy| {
                self.backward_data(w, dy, batch, dx, sc)
            });
        }
        if self.pointwise() && !bf16 {
            let layout = Planes::ChannelMajor;
            return self.pointwise_data(w, (dy, layout), batch, (dx, layout));
        }
        if (self.uses_direct_data() || self.uses_lanes()) && !bf16 {
            let layout = Planes::ChannelMajor;
            self.backward_data_direct(w, (dy, layout), batch, (dx, layout), scratch);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some((g, phases)) = bf16
            .then(|| Geo::of(self, batch).and_then(|g| Some((g, g.phases()?))))
            .flatten()
        {
            // By phases of the output, each a stride-1 forward of `dy` with its taps flipped
            // (stride 1: the forward of `dy` with the kernel flipped, as below), on AMX tiles
            // from compact bf16 copies of `dy`.
            let _p = scope(Op::Gemm);
            let cache = scratch.amx_weights.as_mut();
            crate::amx_conv::backward_data(&g, &phases, w, dy, dx, cache);
            return;
        }
        if bf16
            && self.stride == 1
            && self.pad < self.k
            && self.pad_end == 0
            && self.wi.is_multiple_of(16)
        {
            // As the direct path: the input gradient of a stride-1 convolution is the forward
            // of `dy` padded by k − 1 − p with the kernel flipped and its channels exchanged —
            // on AMX from `dy` itself, without the unfolded float32 gradient and its col2im.
            // Where the rows are narrower than 16 (IT's 8 px) the forward would unfold `dy`
            // in float32 first, and the product + col2im stays faster (ventral bench
            // --profile, BLT_net_64 batch 16: IT lateral input gradient 557 → 418 GFLOP/s).
            let adjoint = Conv::new(
                self.co,
                self.ci,
                self.k,
                1,
                self.k - 1 - self.pad,
                self.ho,
                self.wo,
            );
            let mut wt = std::mem::take(&mut scratch.wt);
            flip_transposed(w, self.co, self.ci, self.k, &mut wt);
            adjoint.forward(&wt[..w.len()], dy, batch, dx, true, scratch);
            scratch.wt = wt;
            return;
        }
        if !bf16
            && !scratch.keep_col2im
            && let Some(ph) = self.data_phases()
        {
            self.backward_data_phases(w, dy, batch, dx, &ph, scratch);
            return;
        }
        let mut packed = std::mem::take(&mut scratch.packed);
        if bf16 {
            let _p = scope(Op::Gemm);
            packed.pack(MatRef::rm(w, 0, self.co, kd).t(), tiles_available());
        }
        for (b0, b1, n) in self.chunks(batch) {
            let col = scratch.col(kd * n);
            {
                let _p = scope(Op::Gemm);
                if bf16 {
                    let dyc = self.out_cols(dy, batch, b0, n);
                    gemm_bf16_packed(MatMut::rm(col, 0, kd, n), false, &packed, dyc);
                } else if self.thin() {
                    let a = Small {
                        data: w,
                        off: 0,
                        rs: 1,
                        cs: kd,
                    };
                    let (off, rs) = (b0 * self.ho * self.wo, batch * self.ho * self.wo);
                    small_m(kd, n, self.co, a, dy, off, rs, col, 0, n, false);
                } else {
                    gemm(
                        MatMut::rm(col, 0, kd, n),
                        false,
                        MatRef::rm(w, 0, self.co, kd).t(),
                        self.out_cols(dy, batch, b0, n),
                    );
                }
            }
            let _p = scope(Op::Col2im);
            self.col2im(col, batch, b0, b1, dx);
        }
        scratch.packed = packed;
    }

    /// [`Self::backward_data`] on batch-major (NCHW) arrays, in place (see
    /// [`Self::forward_nchw`]). Only for stride-1 convolutions on the direct or the lanes
    /// kernels ([`Self::data_in_place`]).
    ///
    /// # Shapes
    /// - `w`: `[Co, Ci, k, k]`; `dy`: `[B][Co][Ho][Wo]`; `dx`: `[B][Ci][Hi][Wi]`.
    ///
    /// # Panics
    /// When the input gradient does not run direct (a caller bug).
    pub fn backward_data_nchw(
        &self,
        w: &[f32],
        dy: &[f32],
        batch: usize,
        dx: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let layout = Planes::BatchMajor;
        if self.pointwise() {
            return self.pointwise_data(w, (dy, layout), batch, (dx, layout));
        }
        assert!(self.data_in_place(), "backward_data_nchw: not direct");
        self.backward_data_direct(w, (dy, layout), batch, (dx, layout), scratch);
    }

    /// The input gradient of a stride-1 convolution is a direct convolution of `dy` padded by
    /// k − 1 − p, with the kernel flipped and its channels exchanged.
    fn backward_data_direct(
        &self,
        w: &[f32],
        dy: (&[f32], Planes),
        batch: usize,
        dx: (&mut [f32], Planes),
        scratch: &mut Scratch,
    ) {
        let (k, q) = (self.k, self.k - 1 - self.pad);
        if self.interleaved() {
            {
                let _p = scope(Op::Im2col);
                flip_transposed(w, self.co, self.ci, k, &mut scratch.wt);
            }
            let wt = std::mem::take(&mut scratch.wt);
            let a = Small::row_major(&wt, self.co * k * k);
            let input = (dy, (self.ho, self.wo), (q, q));
            let out = ((self.hi, self.wi), dx, true);
            Self::interleaved_pass(a, (self.co, self.ci, k), input, batch, out, scratch);
            scratch.wt = wt;
            return;
        }
        let keep = scratch.amx_weights.is_some();
        let Scratch { pad, lanes, wt, .. } = scratch;
        let (dyp, sh) = {
            let _p = scope(Op::Im2col);
            let hw = (self.ho, self.wo);
            phases_or_input(dy, (self.co, batch), hw, (q, q), 1, pad)
        };
        let (co, ci) = (self.co, self.ci);
        if self.uses_lanes() {
            // The weights packed flipped and exchanged from `w` itself.
            let _p = scope(Op::Gemm);
            let w = crate::lanes::Weights::Exchanged { w, co, ci, k };
            let out = ((self.hi, self.wi), dx, true);
            Self::lanes_pass((w, k), (dyp, co, sh), batch, out, (lanes, keep));
            return;
        }
        {
            let _p = scope(Op::Im2col);
            flip_transposed(w, co, ci, k, wt);
        }
        let _p = scope(Op::Gemm);
        let a = Small::row_major(wt, co * k * k);
        let so = (self.hi, self.wi);
        conv_direct(a, ci, co, (k, 1), batch, dyp, sh, so, dx, true);
    }

    /// The input gradient runs by the phases of the output on the direct kernels (stride 2,
    /// `Conv::data_phases`, which says where and why).
    pub fn uses_phase_data(&self) -> bool {
        self.data_phases().is_some()
    }

    /// The input gradient of a stride-2 convolution (a top-down transposed convolution's
    /// forward) by the phases of its output, when they run direct: pixel `(2i + ry, 2j + rx)`
    /// of `dx` sums only the taps `kh ≡ ry + p`, `kw ≡ rx + p` (mod 2) — 1, 2 or 4 of a 3 × 3
    /// kernel — each reading `dy` at `(i + c_y − a, j + c_x − b)`: per phase a stride-1
    /// convolution of `dy` with that sub-kernel ([`conv_direct_taps`]), `k²` taps per pixel of
    /// `dy` in all instead of the `k²` rows of the unfolded gradient that col2im folds back.
    /// `None` where it does not apply: other strides, odd input sides, phases narrower than
    /// `DIRECT_MIN_SIDE` or whose rows the direct kernels do not tile, more than `THIN_CO`
    /// channels in `dx`, or no direct kernels. Measured (2026-12-06, Intel Xeon AVX-512,
    /// `examples/conv_time` against `conv_time nophase`, alternated twice, fastest of 20, ms
    /// batch 16 / 64) on transposed convolutions `in → out` channels, `side → 2·side`: the tiny
    /// BLT's top-down into V2, 16 → 16 at 16 px, 0.33–0.34 → 0.20–0.21 / 1.05–1.19 → 0.65–0.76;
    /// 8 → 16 at 32 px 0.56 → 0.39–0.59 / 2.33–2.86 → 1.49–1.70; 32 → 32 at 16 px 0.65–0.71 →
    /// 0.53–0.63 / 2.69–3.21 → 1.79–1.91. With 64 channels out and more the product +
    /// col2im was as fast or faster (64 → 64 at 16 px 1.55–1.70 vs 1.56–1.62 / 7.1–8.2 vs
    /// 6.8–7.7; 32 → 64 at 32 px 3.2–3.6 vs 3.7–3.9 / 14.6–15.0 vs 17.1–18.6; BLT_net_64's
    /// 256 → 128 at 16 px 9.1–9.3 vs 11.3–11.6 / 35.7–37.2 vs 43.7–46.5), and so with 8-px
    /// phases (the tiny BLT's 32 → 16 at 8 px 0.14–0.25 vs 0.21–0.25).
    pub(crate) fn data_phases(&self) -> Option<DataPhases> {
        let (k, s, p) = (self.k, self.stride, self.pad);
        let (hq, wq) = (self.hi / 2, self.wi / 2);
        let applies = s == 2
            && k > 0
            && self.pad_end == 0
            && self.hi.is_multiple_of(2)
            && self.wi.is_multiple_of(2)
            && hq > 0
            && self.ho > 0
            && self.wo > 0
            && direct_fits(wq)
            && wq >= DIRECT_MIN_SIDE
            && self.ci <= THIN_CO
            && PHASE_DATA.load(Ordering::Relaxed)
            && !GENERAL_ONLY.load(Ordering::Relaxed);
        if !applies {
            return None;
        }
        let axis = |r: usize| phase_axis(r, k, 2, p);
        // Padding of dy that every phase's reads fit in, on both axes.
        let mut pad = 0isize;
        for r in 0..2 {
            let (_, n, pb) = axis(r);
            if n == 0 {
                continue;
            }
            for (q, len) in [(hq, self.ho), (wq, self.wo)] {
                let last = q as isize - 1 - pb + n as isize - 1;
                pad = pad.max(pb).max(last - (len as isize - 1));
            }
        }
        let pad = pad as usize;
        let (hp, wp) = (self.ho + 2 * pad, self.wo + 2 * pad);
        let mut phases = Vec::with_capacity(4);
        for ry in 0..2 {
            for rx in 0..2 {
                let ((ty, ny, py), (tx, nx, px)) = (axis(ry), axis(rx));
                let mut taps = Vec::with_capacity(ny * nx);
                for uy in 0..ny {
                    for ux in 0..nx {
                        let (oy, ox) = (
                            pad as isize - py + uy as isize,
                            pad as isize - px + ux as isize,
                        );
                        let (kh, kw) = (ty + 2 * (ny - 1 - uy), tx + 2 * (nx - 1 - ux));
                        taps.push((oy as usize * wp + ox as usize, kh * k + kw));
                    }
                }
                phases.push(taps);
            }
        }
        Some(DataPhases {
            pad,
            padded: (hp, wp),
            phases,
        })
    }

    /// [`Self::backward_data`] by [`Self::data_phases`]: `dy` padded once, each phase's
    /// sub-kernel gathered (`[Ci][Co·taps]`) and run direct into its own quarter-size maps,
    /// then the four added into `dx`, interleaved.
    fn backward_data_phases(
        &self,
        w: &[f32],
        dy: &[f32],
        batch: usize,
        dx: &mut [f32],
        ph: &DataPhases,
        scratch: &mut Scratch,
    ) {
        let (ci, co, k2) = (self.ci, self.co, self.k * self.k);
        let (hq, wq) = (self.hi / 2, self.wi / 2);
        let per = ci * batch * hq * wq;
        if per == 0 {
            return;
        }
        scratch.grow(1);
        let Scratch { cols, pad, wt, .. } = scratch;
        {
            let _p = scope(Op::Im2col);
            let hw = (self.ho, self.wo);
            phases_of(
                (dy, Planes::ChannelMajor),
                (co, batch),
                hw,
                (ph.pad, ph.pad),
                1,
                pad,
            );
        }
        ensure(&mut cols[0], 4 * per);
        let out = &mut cols[0][..4 * per];
        for (taps, o) in ph.phases.iter().zip(out.chunks_exact_mut(per)) {
            if taps.is_empty() {
                // No tap reaches this phase (k = 1): it adds −0, which leaves every value,
                // a −0 included, as it was.
                o.fill(-0.0);
                continue;
            }
            let nt = taps.len();
            {
                let _p = scope(Op::Im2col);
                ensure(wt, ci * co * nt);
                for (c, row) in wt[..ci * co * nt].chunks_exact_mut(co * nt).enumerate() {
                    for (o, dst) in row.chunks_exact_mut(nt).enumerate() {
                        let src = &w[(o * ci + c) * k2..(o * ci + c + 1) * k2];
                        for (d, &(_, t)) in dst.iter_mut().zip(taps) {
                            *d = src[t];
                        }
                    }
                }
            }
            let _p = scope(Op::Gemm);
            let offs: Vec<usize> = taps.iter().map(|&(off, _)| off).collect();
            let a = Small::row_major(&wt[..ci * co * nt], co * nt);
            let y = (&mut *o, Planes::ChannelMajor);
            conv_direct_taps(a, ci, co, &offs, batch, pad, ph.padded, (hq, wq), y, false);
        }
        let _p = scope(Op::Col2im);
        let (hi, wi) = (self.hi, self.wi);
        let out = &cols[0][..4 * per];
        dx[..ci * batch * hi * wi]
            .par_chunks_mut(hi * wi)
            .with_min_len(crate::min_items(hi * wi))
            .enumerate()
            .for_each(|(plane, d)| {
                let q = plane * hq * wq;
                for (y, row) in d.chunks_exact_mut(wi).enumerate() {
                    let (ry, i) = (y % 2, y / 2);
                    let at = q + i * wq;
                    let p0 = &out[(2 * ry) * per + at..(2 * ry) * per + at + wq];
                    let p1 = &out[(2 * ry + 1) * per + at..(2 * ry + 1) * per + at + wq];
                    for ((pair, &a), &b) in row.chunks_exact_mut(2).zip(p0).zip(p1) {
                        pair[0] += a;
                        pair[1] += b;
                    }
                }
            });
    }

    /// [`Self::backward_weight`] on batch-major (NCHW) `x` and `dy`, read in place (see
    /// [`Self::forward_nchw`]). Only where it runs in place ([`Self::weight_in_place`]).
    ///
    /// # Shapes
    /// - `x`: `[B][Ci][Hi][Wi]`; `dy`: `[B][Co][Ho][Wo]`; `dw`: `[Co, Ci, k, k]`.
    ///
    /// # Panics
    /// When the weight gradient does not run direct (a caller bug).
    pub fn backward_weight_nchw(
        &self,
        x: &[f32],
        dy: &[f32],
        batch: usize,
        dw: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let _p = scope(Op::WeightGrad);
        let layout = Planes::BatchMajor;
        if self.pointwise() {
            return self.pointwise_weight((x, layout), (dy, layout), batch, dw, scratch);
        }
        assert!(self.weight_in_place(), "backward_weight_nchw: not in place");
        self.backward_weight_direct((x, layout), (dy, layout), batch, dw, scratch);
    }

    fn backward_weight_direct(
        &self,
        x: (&[f32], Planes),
        dy: (&[f32], Planes),
        batch: usize,
        dw: &mut [f32],
        scratch: &mut Scratch,
    ) {
        if self.interleaved() {
            if batch == 0 {
                return;
            }
            let lanes = interleave_lanes(batch, self.wi, self.wo);
            scratch.grow(1);
            let Scratch {
                cols, parts, pad, ..
            } = scratch;
            let hw = (self.hi, self.wi);
            let p = (self.pad, self.pad + self.pad_end);
            let sh = interleave_batch(x, (self.ci, batch), hw, p, lanes, pad);
            let hwo = (self.ho, self.wo);
            let so = interleave_batch(dy, (self.co, batch), hwo, (0, 0), lanes, &mut cols[0]);
            let g = (&cols[0][..], Planes::ChannelMajor);
            let ks = (self.k, 1, lanes);
            wgrad_direct_step(self.co, self.ci, ks, 1, pad, sh, g, so, dw, &mut parts[0]);
            return;
        }
        scratch.grow(1);
        let Scratch { pad, parts, .. } = scratch;
        let (xp, sh) = self.pad_input(x, batch, pad);
        let so = (self.ho, self.wo);
        let parts = &mut parts[0];
        let ks = (self.k, self.stride);
        wgrad_direct(self.co, self.ci, ks, batch, xp, sh, dy, so, dw, parts);
    }

    /// `dw += dy · im2col(x)ᵀ`: partial products of at least `WGRAD_SPLIT` chunks of images
    /// in parallel, added to `dw` in chunk order.
    ///
    /// # Shapes
    /// - `x`: `[Ci][B][Hi][Wi]`; `dy`: `[Co][B][Ho][Wo]`; `dw`: `[Co, Ci, k, k]`.
    pub fn backward_weight(
        &self,
        x: &[f32],
        dy: &[f32],
        batch: usize,
        dw: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let bf16 = scratch.bf16;
        if bf16 && !self.amx_worth(batch) {
            return Self::on_rounded(scratch, (x, false), dy, |sc, x, dy| {
                self.backward_weight(x, dy, batch, dw, sc)
            });
        }
        let _p = scope(Op::WeightGrad);
        if self.pointwise() && !bf16 {
            let layout = Planes::ChannelMajor;
            return self.pointwise_weight((x, layout), (dy, layout), batch, dw, scratch);
        }
        if self.uses_direct_wgrad() && !bf16 {
            let layout = Planes::ChannelMajor;
            self.backward_weight_direct((x, layout), (dy, layout), batch, dw, scratch);
            return;
        }
        let (kd, howo) = (self.kdim(), self.ho * self.wo);
        #[cfg(target_arch = "x86_64")]
        if let Some(g) = bf16.then(|| Geo::of(self, batch)).flatten() {
            // On AMX tiles from compact bf16 copies of `x` and `dy`.
            crate::amx_conv::weight_grad(&g, x, dy, dw);
            return;
        }
        if bf16 {
            // One product per chunk of images, each accumulated into `dw` in chunk order: the
            // AMX product spreads its 32 × 32 blocks over the threads itself, and a longer
            // reduction per call amortises its accumulator tiles' loads and stores.
            for (b0, b1, n) in self.chunks(batch) {
                let dwm = MatMut::rm(dw, 0, self.co, kd);
                let dyc = self.out_cols(dy, batch, b0, n);
                if let Some(u) = self.unfolded(bf16, x, batch, b0, n) {
                    // From the input itself: no unfolded float32 copy.
                    scratch.packed.pack(dyc, true);
                    gemm_bf16_unfolded(dwm, true, &scratch.packed, u, true);
                    continue;
                }
                let col = scratch.col(kd * n);
                self.im2col(x, batch, b0, b1, col);
                gemm_bf16(dwm, true, dyc, MatRef::rm(col, 0, kd, n).t());
            }
            return;
        }
        let wl = self.co * kd;
        let chunks = batch
            .div_ceil(self.chunk_images(batch))
            .max(WGRAD_SPLIT.min(batch));
        let nb = batch.div_ceil(chunks.max(1)).max(1);
        let bounds: Vec<(usize, usize)> = (0..batch)
            .step_by(nb)
            .map(|b0| (b0, (b0 + nb).min(batch)))
            .collect();
        for group in bounds.chunks(WGRAD_SPLIT) {
            scratch.grow(group.len());
            group
                .par_iter()
                .zip(scratch.cols.par_iter_mut())
                .zip(scratch.parts.par_iter_mut())
                .for_each(|((&(b0, b1), col), part)| {
                    let n = (b1 - b0) * howo;
                    ensure(col, kd * n);
                    self.im2col(x, batch, b0, b1, col);
                    ensure(part, wl);
                    gemm(
                        MatMut::rm(part, 0, self.co, kd),
                        false,
                        self.out_cols(dy, batch, b0, n),
                        MatRef::rm(col, 0, kd, n).t(),
                    );
                });
            for part in &scratch.parts[..group.len()] {
                dw.par_iter_mut()
                    .zip(&part[..wl])
                    .with_min_len(crate::min_items(1))
                    .for_each(|(d, p)| *d += p);
            }
        }
    }
}

/// `dst (+)= a·b`, on the calling thread (`serial`) or parallel: the same sums either way.
fn pointwise_product(
    dst: MatMut<'_>,
    accumulate: bool,
    a: MatRef<'_>,
    b: MatRef<'_>,
    serial: bool,
) {
    if serial {
        crate::mat::gemm_serial(dst, accumulate, a, b);
    } else {
        gemm(dst, accumulate, a, b);
    }
}

/// Images per row of batch-interleaved maps `w_a` and `w_b` wide: the batch rounded up so that
/// both sides' rows are whole 8-float tiles (the extra images are zeros).
fn interleave_lanes(batch: usize, w_a: usize, w_b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    batch.next_multiple_of(8 / gcd(gcd(w_a, w_b), 8))
}

/// The kernel of a stride-1 convolution's input gradient: `w` (`[Co, Ci, k, k]`) with its
/// channels exchanged and flipped in both spatial axes, `out[c][o][kh][kw] =
/// w[o][c][k−1−kh][k−1−kw]` (`[Ci, Co, k, k]`; `out` grown to fit).
pub(crate) fn flip_transposed(w: &[f32], co: usize, ci: usize, k: usize, out: &mut Vec<f32>) {
    let kk = k * k;
    ensure(out, ci * co * kk);
    for c in 0..ci {
        for o in 0..co {
            for t in 0..kk {
                // Tap t = kh·k + kw; its flip (k−1−kh)·k + (k−1−kw) = k² − 1 − t.
                out[(c * co + o) * kk + t] = w[(o * ci + c) * kk + kk - 1 - t];
            }
        }
    }
}

/// Grow a scratch buffer (never shrinks: no allocation churn over steps).
pub(crate) fn ensure(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// `y[c, ·] += bias[c]` over `[C][N]` rows.
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    let _p = scope(Op::Elementwise);
    let n = y.len() / bias.len().max(1);
    y.par_chunks_mut(n)
        .zip(bias)
        .with_min_len(crate::min_items(n))
        .for_each(|(r, &b)| r.iter_mut().for_each(|v| *v += b));
}

/// `db[c] += Σ dy[c, ·]` over `[C][N]` rows (sums in f64).
pub fn bias_grad(dy: &[f32], db: &mut [f32]) {
    let _p = scope(Op::Elementwise);
    let n = dy.len() / db.len().max(1);
    db.par_iter_mut()
        .zip(dy.par_chunks(n))
        .with_min_len(crate::min_items(n))
        .for_each(|(d, r)| *d += r.iter().map(|&v| v as f64).sum::<f64>() as f32);
}

/// [`add_bias`] on batch-major `[B][C][N]` `y`: `y[b][c][·] += bias[c]`.
/// No bias (empty), like [`add_bias`]'s: nothing to add.
pub fn add_bias_nchw(y: &mut [f32], bias: &[f32], batch: usize) {
    let _p = scope(Op::Elementwise);
    let c = bias.len();
    if c == 0 {
        return;
    }
    let n = y.len() / (c * batch).max(1);
    y.par_chunks_mut(n.max(1))
        .enumerate()
        .with_min_len(crate::min_items(n))
        .for_each(|(i, r)| {
            let b = bias[i % c];
            r.iter_mut().for_each(|v| *v += b)
        });
}

/// [`bias_grad`] on batch-major `[B][C][N]` `dy`: `db[c] += Σ_{b, n} dy[b][c][n]`, summed in
/// f64 in the same order as [`bias_grad`] on the channel-major array (so the same bits).
pub fn bias_grad_nchw(dy: &[f32], db: &mut [f32], batch: usize) {
    let _p = scope(Op::Elementwise);
    let c = db.len();
    let n = dy.len() / (c * batch).max(1);
    db.par_iter_mut()
        .enumerate()
        .with_min_len(crate::min_items(n * batch))
        .for_each(|(o, d)| {
            let s: f64 = (0..batch)
                .flat_map(|b| &dy[(b * c + o) * n..(b * c + o + 1) * n])
                .map(|&v| v as f64)
                .sum();
            *d += s as f32;
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of a convolution on `[C][B][H][W]`.
    fn naive(g: &Conv, w: &[f32], x: &[f32], b: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; g.co * b * g.ho * g.wo];
        for o in 0..g.co {
            for n in 0..b {
                for oh in 0..g.ho {
                    for ow in 0..g.wo {
                        let mut s = 0.0f64;
                        for c in 0..g.ci {
                            for kh in 0..g.k {
                                for kw in 0..g.k {
                                    let ih = (oh * g.stride + kh) as isize - g.pad as isize;
                                    let iw = (ow * g.stride + kw) as isize - g.pad as isize;
                                    if ih < 0
                                        || iw < 0
                                        || ih >= g.hi as isize
                                        || iw >= g.wi as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((c * b + n) * g.hi + ih as usize) * g.wi + iw as usize];
                                    s += (w[((o * g.ci + c) * g.k + kh) * g.k + kw] * xv) as f64;
                                }
                            }
                        }
                        y[((o * b + n) * g.ho + oh) * g.wo + ow] = s as f32;
                    }
                }
            }
        }
        y
    }

    /// A test's layers `(ci, co, k, stride, pad, side, batch)`, padded alike at both ends, then
    /// those with `pad_end` more zeros after (`(ci, co, k, stride, pad, pad_end, side, batch)`).
    type Case = (usize, usize, usize, usize, usize, usize, usize);
    type CaseEnd = (usize, usize, usize, usize, usize, usize, usize, usize);
    fn all_cases(symmetric: &[Case], one_more_after: &[CaseEnd]) -> Vec<CaseEnd> {
        let alike = symmetric
            .iter()
            .map(|&(ci, co, k, s, p, h, b)| (ci, co, k, s, p, 0, h, b));
        alike.chain(one_more_after.iter().copied()).collect()
    }

    fn data(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.618).sin()).collect()
    }

    /// `[A][B][N]` → `[B][A][N]`.
    fn swap(x: &[f32], a: usize, b: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for i in 0..a {
            for j in 0..b {
                out[(j * a + i) * n..(j * a + i + 1) * n]
                    .copy_from_slice(&x[(i * b + j) * n..(i * b + j + 1) * n]);
            }
        }
        out
    }

    /// bf16 mode (`Scratch::bf16`): the three passes are the definition on operands rounded to
    /// bf16 (nearest even), with float32 sums — each element within float32 round-off of a
    /// float64 sum of the rounded products (bound: (terms + 2) · Σ|products| · 2⁻²³), on
    /// shapes with partial tiles everywhere, stride 2, k = 1 and 5, and full 16 × 32 tiles;
    /// on each unit the CPU has (AMX from 64 channels, or 32 on the direct kernels;
    /// AVX512-BF16 dot products on the direct kernels' layers), and on the float32 kernels
    /// with rounded operands.
    #[test]
    fn bf16_passes_are_the_definition_on_rounded_operands() {
        use crate::bf16::round_bf16;
        for &(ci, co, k, s, p, (h, wd), b) in &[
            (3, 5, 3, 1, 1, (8, 8), 2),
            (17, 33, 3, 1, 1, (16, 16), 3),
            (8, 16, 3, 2, 1, (16, 16), 2),
            (4, 6, 5, 1, 2, (12, 12), 2),
            (3, 7, 1, 1, 0, (5, 5), 2),
            // Where the CPU has AMX (`amx_worth`): stride 1 with output maps of a multiple
            // of 32 pixels and ≥ 32 channels on the direct kernels (`amx_conv`: one copy of
            // the input with its padding on rows a multiple of 16 wide, k copies on 8-px
            // rows; channels not a multiple of 32; a partial block of output channels; k 5).
            (40, 36, 3, 1, 1, (32, 32), 2),
            (64, 64, 3, 1, 1, (16, 16), 2),
            (64, 72, 5, 1, 2, (16, 16), 1),
            (48, 96, 3, 1, 1, (8, 8), 3),
            (32, 40, 1, 1, 0, (8, 12), 2),
            // Unpadded: the forward and weight gradient direct, the input gradient (its output
            // 12 × 18 = 216 pixels) by im2col + the AMX product.
            (64, 64, 3, 1, 0, (12, 18), 2),
            // 16 × 3 maps: the unfolded input read into tiles (rows 16 wide).
            (64, 80, 3, 1, 1, (3, 16), 2),
            // Stride 2 on the direct kernels: the input gradient by its four phases (8-px
            // phase maps; 16-px ones, a variant per phase; k 1: two phases without taps).
            (70, 66, 3, 2, 1, (16, 16), 2),
            (48, 64, 3, 2, 1, (32, 32), 1),
            (32, 40, 1, 2, 0, (16, 16), 2),
            // Odd input sides: the forward and weight gradient direct, the input gradient by
            // im2col + the AMX product.
            (64, 64, 3, 2, 1, (15, 15), 2),
        ] {
            let g = Conv::new(ci, co, k, s, p, h, wd);
            let (hw_in, hw_out) = (g.hi * g.wi, g.ho * g.wo);
            let w = data(co * ci * k * k, 1.0);
            let x = data(ci * b * hw_in, 2.0);
            let dy = data(co * b * hw_out, 3.0);
            let r = |v: f32| f64::from(round_bf16(v));
            // Float64 sums of the rounded products and of their magnitudes, and term counts.
            let mut y = vec![(0.0f64, 0.0f64, 0usize); co * b * hw_out];
            let mut dx = vec![(0.0f64, 0.0f64, 0usize); ci * b * hw_in];
            let mut dw = vec![(0.0f64, 0.0f64, 0usize); w.len()];
            let add = |acc: &mut (f64, f64, usize), v: f64| {
                acc.0 += v;
                acc.1 += v.abs();
                acc.2 += 1;
            };
            for o in 0..co {
                for c in 0..ci {
                    for n in 0..b {
                        for oh in 0..g.ho {
                            for ow in 0..g.wo {
                                for kh in 0..k {
                                    for kw in 0..k {
                                        let ih = (oh * s + kh) as isize - p as isize;
                                        let iw = (ow * s + kw) as isize - p as isize;
                                        if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize
                                        {
                                            continue;
                                        }
                                        let xi = ((c * b + n) * h + ih as usize) * wd + iw as usize;
                                        let yi = ((o * b + n) * g.ho + oh) * g.wo + ow;
                                        let wi = ((o * ci + c) * k + kh) * k + kw;
                                        add(&mut y[yi], r(w[wi]) * r(x[xi]));
                                        add(&mut dx[xi], r(w[wi]) * r(dy[yi]));
                                        add(&mut dw[wi], r(dy[yi]) * r(x[xi]));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let check = |what: &str, got: &[f32], want: &[(f64, f64, usize)], extra: usize| {
                for (i, (&v, &(e, mag, terms))) in got.iter().zip(want).enumerate() {
                    let bound = (terms + extra + 2) as f64 * mag * 1.2e-7 + 1e-30;
                    assert!(
                        (f64::from(v) - e).abs() <= bound,
                        "{what} {ci}->{co} k{k} s{s} {h}x{wd} [{i}]: {v} vs {e} (bound {bound:e})"
                    );
                }
            };
            // Every unit this CPU has (AMX tiles, AVX512-BF16 dot products), and none (the
            // float32 kernels on rounded operands).
            for unit in crate::amx_conv::unit_paths() {
                crate::amx_conv::with_unit(unit, || {
                    let what = |pass: &str| format!("{pass} on {unit:?}");
                    let mut sc = Scratch::with_bf16(true);
                    let mut got = vec![0.0f32; co * b * hw_out];
                    g.forward(&w, &x, b, &mut got, false, &mut sc);
                    check(&what("forward"), &got, &y, 0);
                    let mut got = vec![0.0f32; ci * b * hw_in];
                    g.backward_data(&w, &dy, b, &mut got, &mut sc);
                    check(&what("input gradient"), &got, &dx, k * k);
                    let mut got = vec![0.0f32; w.len()];
                    g.backward_weight(&x, &dy, b, &mut got, &mut sc);
                    check(&what("weight gradient"), &got, &dw, 0);
                });
            }
        }
    }

    /// The 3 × 3 stride-2 col2im (top-downs) gives the bits of the general one: maps 2·ho ×
    /// 2·wo for several (ho, wo) (one column, odd widths, 8 and 9), 3 channels, images 1..3 of
    /// a batch of 4 (a chunk), accumulating onto a nonzero `dx`.
    #[test]
    fn col2im_3x3_s2_gives_the_general_bits() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for &(ho, wo) in &[(1, 1), (3, 5), (4, 8), (2, 9), (5, 16)] {
            let g = Conv::new(3, 2, 3, 2, 1, 2 * ho, 2 * wo);
            assert_eq!((g.ho, g.wo), (ho, wo));
            let (batch, b0, b1) = (4, 1, 3);
            let col = data(g.kdim() * (b1 - b0) * ho * wo, 0.3);
            let start = data(g.ci * batch * g.hi * g.wi, 1.7);
            let (mut fast, mut general) = (start.clone(), start);
            g.col2im(&col, batch, b0, b1, &mut fast);
            g.col2im_general(&col, batch, b0, b1, &mut general);
            assert_eq!(bits(&fast), bits(&general), "{ho} x {wo}");
        }
    }

    /// The batch-major (NCHW) entry points give the same bits as the channel-major ones on
    /// transposed arrays: forward, input gradient (stride 1), weight gradient, bias and its
    /// gradient; 8-wide maps (row groups, and a remainder row), 16 and 32 wide, stride 2,
    /// accumulating onto nonzero arrays; and with one more zero after the last row and column
    /// ([`Conv::with_pad_end`]).
    #[test]
    fn batch_major_entry_points_give_the_same_bits() {
        if !crate::kernel::available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let symmetric = [
            (5, 13, 3, 1, 1, 8, 3),
            (32, 32, 3, 1, 1, 8, 2),
            (4, 6, 5, 1, 2, 16, 2),
            (3, 16, 7, 2, 3, 64, 2),
            (6, 5, 3, 2, 1, 16, 3),
            (7, 9, 3, 1, 1, 32, 1),
            // Batch-interleaved small maps.
            (5, 7, 3, 1, 1, 4, 3),
            (6, 4, 3, 1, 1, 2, 32),
            (3, 5, 1, 1, 0, 5, 2),
            // Output channels in the lanes where the CPU has AVX-512F: a ConvRNN cell, and
            // where only they run in place (the convrnns zoo's 7 × 7, 4 × 4 beyond the
            // interleaved path's channels).
            (64, 128, 3, 1, 1, 8, 2),
            (140, 130, 3, 1, 1, 7, 1),
            (130, 140, 3, 1, 1, 4, 2),
            // 1 × 1 as products (`Conv::pointwise`, in either layout); a valid (unpadded)
            // 3 × 3 on the lanes kernels, reading the input itself (no padded copy).
            (32, 32, 1, 1, 0, 16, 2),
            (96, 32, 1, 1, 0, 8, 3),
            (128, 72, 1, 1, 0, 8, 2),
            (72, 66, 3, 1, 0, 10, 2),
        ];
        // (ci, co, k, stride, pad, pad_end, side, batch): direct 16 and 8 px, stride 2,
        // interleaved, lanes.
        let one_more_after = [
            (32, 32, 2, 1, 0, 1, 16, 2),
            (5, 7, 2, 1, 0, 1, 8, 3),
            (3, 16, 7, 2, 2, 1, 64, 2),
            (6, 4, 2, 1, 0, 1, 4, 3),
            (64, 140, 2, 1, 0, 1, 8, 2),
        ];
        let cases = all_cases(&symmetric, &one_more_after);
        for (ci, co, k, s, p, e, h, b) in cases {
            let g = Conv::new(ci, co, k, s, p, h, h).with_pad_end(e);
            if !g.forward_in_place() {
                // Only the layers that run in place on the lanes kernels alone (AVX-512F):
                // maps narrower than 8, rows not whole 8-column tiles, and more than 128
                // channels on 8-px maps.
                assert!(
                    (h < 8 || h % 8 != 0 || ci.max(co) > 128) && !crate::lanes::available(),
                    "{ci} {co} {k} {s} {p} {h}"
                );
                continue;
            }
            let (hw_in, hw_out) = (g.hi * g.wi, g.ho * g.wo);
            let w = data(co * ci * k * k, 1.0);
            let x = data(ci * b * hw_in, 2.0);
            let dy = data(co * b * hw_out, 3.0);
            let bias = data(co, 4.0);
            let mut sc = Scratch::default();
            // Forward, accumulating, then the bias.
            let mut y = data(co * b * hw_out, 5.0);
            g.forward(&w, &x, b, &mut y, true, &mut sc);
            add_bias(&mut y, &bias);
            let mut yn = swap(&data(co * b * hw_out, 5.0), co, b, hw_out);
            g.forward_nchw(&w, &swap(&x, ci, b, hw_in), b, &mut yn, true, &mut sc);
            add_bias_nchw(&mut yn, &bias, b);
            assert_eq!(bits(&swap(&y, co, b, hw_out)), bits(&yn), "forward {h} {s}");
            // Weight and bias gradients.
            let (mut dw, mut dwn) = (data(w.len(), 6.0), data(w.len(), 6.0));
            let (xn, dyn_) = (swap(&x, ci, b, hw_in), swap(&dy, co, b, hw_out));
            if g.weight_in_place() {
                g.backward_weight(&x, &dy, b, &mut dw, &mut sc);
                g.backward_weight_nchw(&xn, &dyn_, b, &mut dwn, &mut sc);
                assert_eq!(bits(&dw), bits(&dwn), "weight gradient {h} {s}");
            }
            let (mut db, mut dbn) = (data(co, 7.0), data(co, 7.0));
            bias_grad(&dy, &mut db);
            bias_grad_nchw(&dyn_, &mut dbn, b);
            assert_eq!(bits(&db), bits(&dbn), "bias gradient {h} {s}");
            // Input gradient (stride 1), accumulating.
            if g.data_in_place() {
                let mut dx = data(ci * b * hw_in, 8.0);
                g.backward_data(&w, &dy, b, &mut dx, &mut sc);
                let mut dxn = swap(&data(ci * b * hw_in, 8.0), ci, b, hw_in);
                g.backward_data_nchw(&w, &dyn_, b, &mut dxn, &mut sc);
                assert_eq!(
                    bits(&swap(&dx, ci, b, hw_in)),
                    bits(&dxn),
                    "input gradient {h}"
                );
            }
        }
        // No bias: nothing added, in either layout (and no division by zero channels).
        let (mut y, mut yn) = (data(12, 9.0), data(12, 9.0));
        add_bias(&mut y, &[]);
        add_bias_nchw(&mut yn, &[], 2);
        assert_eq!(bits(&y), bits(&data(12, 9.0)), "no bias, channel-major");
        assert_eq!(bits(&yn), bits(&data(12, 9.0)), "no bias, batch-major");
    }

    /// A copy of `v` in its own mapping with an unmapped page on either side, ending where
    /// the one after begins (`at_end`) or beginning where the one before ends: any access past
    /// the end or before the start faults.
    #[cfg(unix)]
    #[allow(unsafe_code)]
    struct Guarded {
        base: *mut libc::c_void,
        size: usize,
        data: *mut f32,
        n: usize,
    }

    #[cfg(unix)]
    #[allow(unsafe_code)]
    impl Guarded {
        fn new(v: &[f32], at_end: bool) -> Self {
            // SAFETY: a fresh private anonymous mapping of `size` bytes; the guard pages and
            // the copy lie inside it.
            unsafe {
                let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
                let body = (v.len() * 4).div_ceil(page).max(1) * page;
                let size = body + 2 * page;
                let rw = libc::PROT_READ | libc::PROT_WRITE;
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                let base = libc::mmap(std::ptr::null_mut(), size, rw, flags, -1, 0);
                assert_ne!(base, libc::MAP_FAILED, "mmap");
                let bytes = base.cast::<u8>();
                assert_eq!(libc::mprotect(base, page, libc::PROT_NONE), 0);
                let after = bytes.add(page + body).cast();
                assert_eq!(libc::mprotect(after, page, libc::PROT_NONE), 0);
                let start = if at_end {
                    page + body - v.len() * 4
                } else {
                    page
                };
                let data = bytes.add(start).cast::<f32>();
                std::ptr::copy_nonoverlapping(v.as_ptr(), data, v.len());
                Self {
                    base,
                    size,
                    data,
                    n: v.len(),
                }
            }
        }

        fn get(&self) -> &[f32] {
            // SAFETY: `n` floats written in `new`, mapped while `self` lives.
            unsafe { std::slice::from_raw_parts(self.data, self.n) }
        }

        fn get_mut(&mut self) -> &mut [f32] {
            // SAFETY: as `get`, borrowed mutably through `self`.
            unsafe { std::slice::from_raw_parts_mut(self.data, self.n) }
        }
    }

    #[cfg(unix)]
    #[allow(unsafe_code)]
    impl Drop for Guarded {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe { libc::munmap(self.base, self.size) };
        }
    }

    /// The passes that read and write the caller's batch-major arrays in place (the input of
    /// unpadded stride-1 layers read as it is, `phases_or_input`) stay inside them: run on
    /// arrays that end at an unmapped page, and on arrays that begin just after one, they give
    /// the bits they give on ordinary vectors — 1 × 1 layers as products
    /// ([`Conv::pointwise`]), valid 3 × 3 layers on the lanes kernels, padded direct layers.
    #[cfg(unix)]
    #[test]
    fn in_place_passes_stay_inside_the_callers_arrays() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let cases = [
            (32, 32, 1, 0, 16, 2),
            (96, 32, 1, 0, 8, 3),
            (128, 72, 1, 0, 8, 2),
            (130, 64, 1, 0, 9, 1),
            (72, 66, 3, 0, 10, 2),
            (5, 7, 1, 0, 8, 1),
            (13, 11, 3, 1, 16, 2),
        ];
        let mut ran = 0;
        for (ci, co, k, p, h, b) in cases {
            let g = Conv::new(ci, co, k, 1, p, h, h);
            let (xn, wn) = (ci * b * h * h, co * ci * k * k);
            let yn = co * b * g.ho * g.wo;
            let (x, w, dy) = (data(xn, 1.0), data(wn, 2.0), data(yn, 3.0));
            let mut sc = Scratch::default();
            for at_end in [true, false] {
                let guard = |v: &[f32]| Guarded::new(v, at_end);
                let (gx, gw, gdy) = (guard(&x), guard(&w), guard(&dy));
                // One pass `(a, b) → out` on ordinary vectors and on guarded ones.
                type Pass<'p> = &'p dyn Fn(&[f32], &[f32], &mut [f32], &mut Scratch);
                let mut same_bits = |what: &str,
                                     a: (&[f32], &Guarded),
                                     b: (&[f32], &Guarded),
                                     n,
                                     pass: Pass<'_>| {
                    let mut out = data(n, 4.0);
                    pass(a.0, b.0, &mut out, &mut sc);
                    let mut guarded = guard(&data(n, 4.0));
                    pass(a.1.get(), b.1.get(), guarded.get_mut(), &mut sc);
                    assert_eq!(bits(&out), bits(guarded.get()), "{what} {ci} {co} {k} {h}");
                };
                if g.forward_in_place() {
                    same_bits("forward", (&w, &gw), (&x, &gx), yn, &|w, x, y, sc| {
                        g.forward_nchw(w, x, b, y, true, sc)
                    });
                    ran += 1;
                }
                if g.data_in_place() {
                    same_bits(
                        "input gradient",
                        (&w, &gw),
                        (&dy, &gdy),
                        xn,
                        &|w, dy, dx, sc| g.backward_data_nchw(w, dy, b, dx, sc),
                    );
                }
                if g.weight_in_place() {
                    same_bits(
                        "weight gradient",
                        (&x, &gx),
                        (&dy, &gdy),
                        wn,
                        &|x, dy, dw, sc| g.backward_weight_nchw(x, dy, b, dw, sc),
                    );
                }
            }
        }
        // The 1 × 1 layers run in place on every CPU (the `gemm` crate's kernels).
        assert!(ran >= 4, "{ran} forwards ran in place");
    }

    /// The batch-major entry points run float32 under a bf16 scratch: a 1 × 1 layer on a map
    /// the direct kernels do not fit (9 × 9) gives the bits of a float32 scratch in all three
    /// passes (before, a bf16 scratch sent it to the direct kernels, which refuse that width).
    #[test]
    fn pointwise_batch_major_passes_are_float32_under_a_bf16_scratch() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (g, b) = (Conv::new(5, 7, 1, 1, 0, 9, 9), 3);
        let (w, x, dy) = (data(35, 1.0), data(5 * b * 81, 2.0), data(7 * b * 81, 3.0));
        let run = |sc: &mut Scratch| {
            let (mut y, mut dx, mut dw) = (vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; 35]);
            g.forward_nchw(&w, &x, b, &mut y, false, sc);
            g.backward_data_nchw(&w, &dy, b, &mut dx, sc);
            g.backward_weight_nchw(&x, &dy, b, &mut dw, sc);
            [y, dx, dw].map(|v| bits(&v))
        };
        assert_eq!(
            run(&mut Scratch::with_bf16(true)),
            run(&mut Scratch::default())
        );
    }

    /// A 1 × 1 layer's weight gradient on a scratch whose partial sums hold an earlier call's
    /// (a larger batch filled every chunk) gives the bits of a fresh scratch: batches that do
    /// not divide into whole chunks (5 and 9 images in at most four chunks) leave no chunk
    /// empty, so no stale partial sum is added.
    #[test]
    fn pointwise_weight_gradient_ignores_earlier_partial_sums() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let g = Conv::new(6, 5, 1, 1, 0, 4, 4);
        assert!(g.pointwise());
        for batch in [5, 9, 2, 1] {
            let (x, dy) = (data(6 * batch * 16, 1.0), data(5 * batch * 16, 2.0));
            let mut used = Scratch::default();
            let mut dw = vec![0.0; 30];
            let big = 12;
            let (xb, dyb) = (data(6 * big * 16, 3.0), data(5 * big * 16, 4.0));
            g.backward_weight(&xb, &dyb, big, &mut dw, &mut used);
            let (mut a, mut b) = (vec![0.0; 30], vec![0.0; 30]);
            g.backward_weight(&x, &dy, batch, &mut a, &mut used);
            g.backward_weight(&x, &dy, batch, &mut b, &mut Scratch::default());
            assert_eq!(bits(&a), bits(&b), "batch {batch}");
        }
    }

    /// With [`Scratch::keep_packed_weights`], the lanes kernels pack each weight slice once per
    /// orientation and reuse it: a scratch that ran forward, input gradient and forward again
    /// (two layers' weights, one slice each) gives the bits of fresh scratches — the forward
    /// and the input gradient of one slice are packed apart, and two slices do not share.
    #[test]
    fn lanes_weights_are_packed_once_per_slice_and_orientation() {
        if !crate::lanes::available() {
            eprintln!("skipped: no AVX-512F on this CPU (the lanes kernels do not run here)");
            return;
        }
        let (b, g) = (2, Conv::new(64, 130, 3, 1, 1, 8, 8));
        assert!(g.uses_lanes());
        let (w1, w2) = (data(130 * 64 * 9, 1.0), data(130 * 64 * 9, 5.0));
        let (x, dy) = (data(64 * b * 64, 2.0), data(130 * b * 64, 3.0));
        let fresh = |w: &[f32]| {
            let mut y = vec![0.0; dy.len()];
            g.forward(w, &x, b, &mut y, false, &mut Scratch::default());
            let mut dx = vec![0.0; x.len()];
            g.backward_data(w, &dy, b, &mut dx, &mut Scratch::default());
            (y, dx)
        };
        let mut kept = Scratch::default().keep_packed_weights();
        for w in [&w1, &w2, &w1] {
            let mut y = vec![0.0; dy.len()];
            g.forward(w, &x, b, &mut y, false, &mut kept);
            let mut dx = vec![0.0; x.len()];
            g.backward_data(w, &dy, b, &mut dx, &mut kept);
            let mut y2 = vec![0.0; dy.len()];
            g.forward(w, &x, b, &mut y2, false, &mut kept);
            let (ye, dxe) = fresh(w);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&ye));
            assert_eq!(bits(&y2), bits(&ye));
            assert_eq!(bits(&dx), bits(&dxe));
        }
        assert_eq!(kept.lanes.len(), 4, "two slices × two orientations");
    }

    /// An empty batch leaves every output as it was, on each path (the interleaved one
    /// included: it would otherwise ask the kernels for rows of width 0), in both layouts.
    #[test]
    fn an_empty_batch_changes_nothing() {
        for g in [
            Conv::new(3, 5, 3, 1, 1, 4, 4),
            Conv::new(3, 5, 3, 1, 1, 16, 16),
            Conv::new(3, 5, 3, 2, 1, 16, 16),
            Conv::new(3, 5, 1, 1, 0, 8, 8),
        ] {
            let w = data(g.co * g.ci * g.k * g.k, 1.0);
            let mut sc = Scratch::default();
            let (mut y, mut dx, mut dw) = (vec![1.0f32; 4], vec![2.0f32; 4], vec![3.0f32; w.len()]);
            g.forward(&w, &[], 0, &mut y, true, &mut sc);
            g.backward_data(&w, &[], 0, &mut dx, &mut sc);
            g.backward_weight(&[], &[], 0, &mut dw, &mut sc);
            // The batch-major entry points where they run in place.
            if g.forward_in_place() {
                g.forward_nchw(&w, &[], 0, &mut y, true, &mut sc);
            }
            if g.data_in_place() {
                g.backward_data_nchw(&w, &[], 0, &mut dx, &mut sc);
            }
            if g.weight_in_place() {
                g.backward_weight_nchw(&[], &[], 0, &mut dw, &mut sc);
            }
            assert!(y.iter().all(|&v| v == 1.0) && dx.iter().all(|&v| v == 2.0));
            assert!(dw.iter().all(|&v| v == 3.0));
        }
    }

    /// Every path against the definition (forward, input and weight gradient), with padding
    /// equal on both ends and — the second list — one or two more zeros after the last row
    /// and column ([`Conv::with_pad_end`]: TensorFlow's `same` for even kernels and for
    /// stride 2), on the direct, interleaved, lanes and GEMM paths.
    #[test]
    fn forward_and_adjoints_match_the_definition() {
        let symmetric = [
            (3, 5, 3, 1, 1, 7, 2),
            (4, 3, 5, 2, 2, 9, 3),
            (2, 2, 1, 1, 0, 4, 1),
            (3, 4, 3, 2, 1, 8, 2),
            // Direct (stride 1, whole 8-column rows): k 1/3/5/7, odd channel counts.
            (3, 5, 3, 1, 1, 16, 2),
            (8, 8, 3, 1, 1, 8, 3),
            (5, 7, 5, 1, 2, 16, 1),
            (4, 6, 1, 1, 0, 8, 2),
            (3, 4, 7, 1, 3, 24, 1),
            (13, 11, 3, 1, 1, 32, 2),
            // Direct stride 2 (forward and weight gradient on the phases): the ConvRNN conv1
            // (7×7, pad 3), odd and even kernels and input sizes.
            (3, 16, 7, 2, 3, 64, 2),
            (5, 6, 3, 2, 1, 32, 2),
            (2, 3, 4, 2, 1, 16, 2),
            (3, 5, 3, 2, 1, 15, 2),
            (4, 40, 3, 2, 1, 32, 1),
            // The BLT top-downs' geometry (stride 2, input twice the output) with more than 32
            // output channels (GEMM + col2im), maps of 16 and 8.
            (5, 40, 3, 2, 1, 16, 2),
            (7, 33, 3, 2, 1, 8, 1),
            // Maps narrower than 8 on batch-interleaved copies: 4 × 4 and 2 × 2 (the ConvRNNs'),
            // 1 × 1, odd sides, k 1/3/5, no padding, batch 1 (padded to 2, 4 or 8 lanes) to 32.
            (3, 5, 3, 1, 1, 4, 32),
            (6, 4, 3, 1, 1, 2, 3),
            (5, 3, 5, 1, 2, 4, 1),
            (4, 4, 3, 1, 0, 6, 3),
            (7, 9, 3, 1, 1, 5, 2),
            (2, 3, 3, 1, 1, 1, 4),
            (4, 6, 1, 1, 0, 3, 5),
            // Output channels in the vector lanes (AVX-512F): stride 1, at least 64 channels,
            // maps of 8 px and more that the row kernels do not take — IT's 8 × 8, and sides
            // that are not whole 8-column rows; k 1/3/5, no padding.
            (64, 130, 3, 1, 1, 8, 2),
            (130, 64, 1, 1, 0, 9, 1),
            (64, 80, 5, 1, 2, 12, 2),
            (72, 66, 3, 1, 0, 10, 1),
            // … and on maps narrower than 8 beyond the interleaved path's 128 channels.
            (140, 130, 3, 1, 1, 7, 1),
            (130, 136, 3, 1, 1, 4, 2),
            (129, 140, 1, 1, 0, 2, 3),
            // 1 × 1, stride 1, unpadded, as products (`Conv::pointwise`; so are the 1 × 1
            // cases above): the reciprocal gated cells' 32 → 32 on 16 px and concatenated
            // 96 → 32 on 8 px, wide channels, a 4 × 4 map beyond the interleaved path's.
            (32, 32, 1, 1, 0, 16, 2),
            (96, 32, 1, 1, 0, 8, 3),
            (128, 72, 1, 1, 0, 8, 2),
            (136, 130, 1, 1, 0, 4, 2),
        ];
        // (ci, co, k, stride, pad, pad_end, side, batch).
        let one_more_after = [
            // Direct stride 1: the reciprocal gated cells' 2 × 2 `same` (0, 1) on 16 and 8 px,
            // k 4 (1, 2), k 2 with two more after.
            (32, 32, 2, 1, 0, 1, 16, 2),
            (5, 7, 2, 1, 0, 1, 8, 3),
            (4, 6, 4, 1, 1, 1, 16, 2),
            (3, 5, 2, 1, 0, 2, 8, 1),
            // Direct stride 2: the convrnns conv1's `same` 7 × 7 on 64 px (2, 3), 3 × 3 (0, 1).
            (3, 16, 7, 2, 2, 1, 64, 2),
            (5, 6, 3, 2, 0, 1, 32, 2),
            // GEMM: stride 2 into more than 32 channels, rows not whole 8-column tiles.
            (5, 40, 3, 2, 0, 1, 16, 2),
            (3, 4, 2, 1, 0, 1, 9, 2),
            // Batch-interleaved maps narrower than 8.
            (6, 4, 2, 1, 0, 1, 4, 3),
            (5, 3, 4, 1, 1, 1, 4, 1),
            (3, 5, 2, 1, 0, 1, 2, 8),
            // Output channels in the lanes (AVX-512F).
            (64, 140, 2, 1, 0, 1, 8, 2),
            (130, 136, 2, 1, 0, 1, 4, 2),
        ];
        let cases = all_cases(&symmetric, &one_more_after);
        for (ci, co, k, s, p, e, h, b) in cases {
            let g = Conv::new(ci, co, k, s, p, h, h).with_pad_end(e);
            assert_eq!(g.ho, (h + 2 * p + e - k) / s + 1);
            if h < 8 && s == 1 && ci.max(co) <= 128 && crate::kernel::available() {
                assert!(g.interleaved(), "{ci} {co} {k} {p} {h}: not interleaved");
            }
            assert_eq!(
                g.pointwise(),
                k == 1 && s == 1 && p + e == 0,
                "{ci} {co} {k} {h}"
            );
            if ci.min(co) >= 64 && s == 1 && h >= 8 && crate::lanes::available() {
                assert!(g.uses_lanes(), "{ci} {co} {k} {p} {h}: not on lanes");
            }
            if ci.min(co) > 128 && s == 1 && h < 8 && crate::lanes::available() {
                assert!(g.uses_lanes(), "{ci} {co} {k} {p} {h}: not on lanes");
            }
            let w = data(co * ci * k * k, 1.0);
            let x = data(ci * b * h * h, 2.0);
            let mut y = vec![0.0; co * b * g.ho * g.wo];
            let mut col = Scratch::default();
            g.forward(&w, &x, b, &mut y, false, &mut col);
            let yn = naive(&g, &w, &x, b);
            for (a, e) in y.iter().zip(&yn) {
                assert!((a - e).abs() < 1e-4, "{a} vs {e}");
            }
            // <dy, conv(x)> = <col2im(Wᵀ dy), x> and = <dw, w>.
            let dy = data(y.len(), 3.0);
            // Accumulating onto ones.
            let mut dx = vec![1.0; x.len()];
            g.backward_data(&w, &dy, b, &mut dx, &mut col);
            dx.iter_mut().for_each(|v| *v -= 1.0);
            let mut dw = vec![0.0; w.len()];
            g.backward_weight(&x, &dy, b, &mut dw, &mut col);
            let lhs: f64 = dy.iter().zip(&yn).map(|(a, b)| (a * b) as f64).sum();
            let r1: f64 = dx.iter().zip(&x).map(|(a, b)| (a * b) as f64).sum();
            let r2: f64 = dw.iter().zip(&w).map(|(a, b)| (a * b) as f64).sum();
            let (hw, owo) = (g.hi * g.wi, g.ho * g.wo);
            // Every input-gradient element against the definition.
            let mut dxr = vec![0.0f64; x.len()];
            for o in 0..co {
                for c in 0..ci {
                    for bi in 0..b {
                        for oh in 0..g.ho {
                            for ow in 0..g.wo {
                                let d = dy[(o * b + bi) * owo + oh * g.wo + ow] as f64;
                                for kh in 0..k {
                                    for kw in 0..k {
                                        let ih = (oh * s + kh) as isize - p as isize;
                                        let iw = (ow * s + kw) as isize - p as isize;
                                        if ih < 0 || iw < 0 || ih >= h as isize || iw >= h as isize
                                        {
                                            continue;
                                        }
                                        let wv = w[((o * ci + c) * k + kh) * k + kw] as f64;
                                        dxr[(c * b + bi) * hw
                                            + ih as usize * g.wi
                                            + iw as usize] += wv * d;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (a, e) in dx.iter().zip(&dxr) {
                assert!(
                    (*a as f64 - e).abs() < 1e-3 * e.abs().max(1.0),
                    "dx {a} vs {e} ({ci} {co} {k} {s} {p} {h})"
                );
            }
            // Every weight-gradient element against the definition.
            for o in 0..co {
                for c in 0..ci {
                    for kh in 0..k {
                        for kw in 0..k {
                            let mut e = 0.0f64;
                            for bi in 0..b {
                                for oh in 0..g.ho {
                                    for ow in 0..g.wo {
                                        let ih = (oh * s + kh) as isize - p as isize;
                                        let iw = (ow * s + kw) as isize - p as isize;
                                        if ih < 0 || iw < 0 || ih >= h as isize || iw >= h as isize
                                        {
                                            continue;
                                        }
                                        let xv =
                                            x[(c * b + bi) * hw + ih as usize * g.wi + iw as usize];
                                        e += dy[(o * b + bi) * owo + oh * g.wo + ow] as f64
                                            * xv as f64;
                                    }
                                }
                            }
                            let a = dw[((o * ci + c) * k + kh) * k + kw] as f64;
                            assert!(
                                (a - e).abs() < 1e-3 * e.abs().max(1.0),
                                "dw {a} vs {e} ({ci} {co} {k} {s} {p} {h})"
                            );
                        }
                    }
                }
            }
            assert!((lhs - r1).abs() < 1e-3 * lhs.abs().max(1.0), "{lhs} {r1}");
            assert!((lhs - r2).abs() < 1e-3 * lhs.abs().max(1.0), "{lhs} {r2}");
        }
    }
}
