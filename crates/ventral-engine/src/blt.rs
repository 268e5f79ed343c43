//! The BLT network (Thorat, Doerig & Kietzmann 2023; reference `BLT_net_64/128`) forward and
//! backward over the explicit time loop, on the engine's kernels.
//!
//! Same mathematics as `ventral_models::Blt` (and the reference), with exact savings the
//! reference does not take:
//! - a drive whose input does not change over steps is computed once: V1's bottom-up drive of
//!   the retina always; with `faithful_v1` (or no lateral/top-down input into a layer) the whole
//!   layer's output, and then the next layer's bottom-up drive of it. Their gradients are summed
//!   over steps first and propagated once (linearity);
//! - weight gradients of a convolution applied at every step accumulate into one buffer (one
//!   GEMM over time × batch, cut into chunks);
//! - scratch buffers are reused over steps and layers (no allocation churn in the time loop).
//!
//! Parameters and gradients are named and shaped as PyTorch's state dict
//! (`v2.top_down.weight` `[C_above, C, k, k]`, `readout.weight` `[classes, D]`, …).

use std::collections::BTreeMap;

use crate::conv::{Conv, Scratch, add_bias, bias_grad, ensure};
use crate::mat::{MatMut, MatRef, gemm};
use crate::ops::{self, relu};
use crate::profile::{Op, scope};
use crate::winograd::{F4, Tiles};
use crate::{EngineError, Result};

const LN_EPS: f64 = 1e-5;

/// The most images one pass of the engine runs at once ([`BltNet::forward`],
/// [`BltNet::loss_and_grad`]); more run in consecutive passes. Measured with `ventral bench`
/// (2-core Zen 3, warm buffers), images/s by batch: `tiny` infers at the same rate from 16 to
/// 128 images per pass (1 460–1 560), 1 180 at 256 and 1 040 at 1 000, and trains at 440–490
/// from 16 to 128, 450 at 256, 270–300 at 1 000; BLT_net_64 infers at 27–28 from 16 to 64,
/// 24.4 at 256, and trains at 8.3–8.9 from 16 to 64, 6.8 at 256. A single inference pass over
/// 2 000 images (`record --batch-size 2000`) touched 3 GB of fresh memory.
pub const CHUNK: usize = 64;
const AREAS: [&str; 4] = ["v1", "v2", "v4", "it"];

/// What the engine needs of a BLT configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BltSpec {
    pub image_size: usize,
    pub num_classes: usize,
    pub timesteps: usize,
    /// Retina, V1, V2, V4, IT widths.
    pub channels: [usize; 5],
    pub kernel: usize,
    /// Lateral convolutions exist (V1..IT).
    pub lateral: bool,
    /// Top-down transposed convolutions exist (V1..V4).
    pub topdown: bool,
    /// The GAP layer's lateral Linear exists.
    pub lateral_gap: bool,
    /// `b ⊙ (1 + l + t)` instead of `b + l + t`.
    pub multiplicative: bool,
    /// LayerNorm after every layer (else biases on the convolutions).
    pub layer_norm: bool,
    pub classifier_bias: bool,
    /// V1 never receives its lateral/top-down input (the reference's quirk).
    pub faithful_v1: bool,
}

impl BltSpec {
    fn layer_bias(&self) -> bool {
        !self.layer_norm
    }

    /// Side length of area `i` (0 = V1).
    pub fn side(&self, i: usize) -> usize {
        self.image_size >> i
    }

    /// Channels and side length of area `i` (0 = V1, …, 3 = IT), as in [`Outputs::areas`].
    pub fn area_shape(&self, i: usize) -> (usize, usize) {
        (self.channels[i + 1], self.side(i))
    }

    /// Every parameter the network has, PyTorch names and shapes, in a fixed order.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let (ch, k) = (&self.channels, self.kernel);
        let mut v: Vec<(String, Vec<usize>)> = vec![
            ("retina.weight".into(), vec![ch[0], 3, k, k]),
            ("retina.bias".into(), vec![ch[0]]),
        ];
        let bias = self.layer_bias();
        for (i, name) in AREAS.iter().enumerate() {
            let (cin, c) = (ch[i], ch[i + 1]);
            v.push((format!("{name}.bottom_up.weight"), vec![c, cin, k, k]));
            if bias {
                v.push((format!("{name}.bottom_up.bias"), vec![c]));
            }
            if self.lateral {
                v.push((format!("{name}.lateral.weight"), vec![c, c, k, k]));
                if bias {
                    v.push((format!("{name}.lateral.bias"), vec![c]));
                }
            }
            if self.topdown && i < 3 {
                v.push((format!("{name}.top_down.weight"), vec![ch[i + 2], c, k, k]));
                if bias {
                    v.push((format!("{name}.top_down.bias"), vec![c]));
                }
            }
            if self.layer_norm {
                let s = self.side(i);
                v.push((format!("{name}_ln.weight"), vec![c, s, s]));
                v.push((format!("{name}_ln.bias"), vec![c, s, s]));
            }
        }
        let d = ch[4];
        if self.lateral_gap {
            v.push(("gap.lateral.weight".into(), vec![d, d]));
            if bias {
                v.push(("gap.lateral.bias".into(), vec![d]));
            }
        }
        if self.layer_norm {
            v.push(("gap_ln.weight".into(), vec![d]));
            v.push(("gap_ln.bias".into(), vec![d]));
        }
        v.push(("readout.weight".into(), vec![self.num_classes, d]));
        if self.classifier_bias {
            v.push(("readout.bias".into(), vec![self.num_classes]));
        }
        v
    }

    /// Every convolution of V1..IT and how many times one forward pass runs it, in area
    /// order (bottom-up, lateral, top-down): what the engine computes, with its exact savings.
    pub fn convs(&self) -> Vec<ConvUse> {
        self.convs_of(&Layout::new(self))
    }

    /// [`Self::convs`] of the network's layout `net`.
    fn convs_of(&self, net: &Layout) -> Vec<ConvUse> {
        let t = self.timesteps;
        let rec = t.saturating_sub(1);
        let mut out = Vec::new();
        for (i, l) in net.layers.iter().enumerate() {
            let area = AREAS[i];
            let calls = if l.const_in { 1 } else { t };
            let bu = (l.bu, false);
            out.push(ConvUse::new(area, "bottom_up", bu, calls));
            if self.lateral {
                let lat = (l.bu_lat(), false);
                out.push(ConvUse::new(
                    area,
                    "lateral",
                    lat,
                    if l.lat_used { rec } else { 0 },
                ));
            }
            if let Some(g) = l.td {
                let td = (g, true);
                out.push(ConvUse::new(
                    area,
                    "top_down",
                    td,
                    if l.td_used { rec } else { 0 },
                ));
            }
        }
        out
    }

    /// Multiply-adds of one image's forward pass, per area (retina, V1, V2, V4, IT, readout),
    /// counting only what the engine computes (constant drives once, see [`Self::convs`]).
    pub fn forward_macs(&self) -> Vec<(&'static str, usize)> {
        let net = Layout::new(self);
        let t = self.timesteps;
        let convs = self.convs_of(&net);
        let mut out = vec![("retina", net.retina.macs_per_image())];
        for area in AREAS {
            let m = convs
                .iter()
                .filter(|c| c.area == area)
                .map(|c| c.calls * c.conv.macs_per_image())
                .sum();
            out.push((area, m));
        }
        let d = self.channels[4];
        let gap = if self.lateral_gap {
            t.saturating_sub(1) * d * d
        } else {
            0
        };
        out.push(("readout", t * d * self.num_classes + gap));
        out
    }
}

/// One convolution of a BLT network ([`BltSpec::convs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvUse {
    /// `v1`, `v2`, `v4` or `it`.
    pub area: &'static str,
    /// `bottom_up`, `lateral` or `top_down`.
    pub kind: &'static str,
    /// Its geometry; a top-down transposed convolution as the convolution it is the adjoint
    /// of (`transposed`), whose input gradient is the top-down's forward.
    pub conv: Conv,
    pub transposed: bool,
    /// Calls per forward pass of all steps: a constant drive once, a lateral or top-down
    /// input at every step after the first, 0 for one the network has but never runs (V1's
    /// lateral and top-down with `faithful_v1`, the reference's quirk).
    pub calls: usize,
}

impl ConvUse {
    fn new(
        area: &'static str,
        kind: &'static str,
        (conv, transposed): (Conv, bool),
        calls: usize,
    ) -> Self {
        Self {
            area,
            kind,
            conv,
            transposed,
            calls,
        }
    }
}

/// Per-area geometry and what is constant over steps.
#[derive(Debug, Clone)]
struct LayerGeo {
    c: usize,
    cin: usize,
    side: usize,
    bu: Conv,
    /// Geometry of the top-down transposed convolution (as the adjoint conv), if it exists.
    td: Option<Conv>,
    lat_used: bool,
    td_used: bool,
    const_in: bool,
    const_out: bool,
}

impl LayerGeo {
    fn bu_lat(&self) -> Conv {
        Conv::new(
            self.c,
            self.c,
            self.bu.k,
            1,
            self.bu.pad,
            self.side,
            self.side,
        )
    }
}

#[derive(Debug, Clone)]
struct Layout {
    retina: Conv,
    layers: Vec<LayerGeo>,
}

impl Layout {
    fn new(s: &BltSpec) -> Self {
        let (k, ch) = (s.kernel, &s.channels);
        let p = (k - 1) / 2;
        let retina = Conv::new(3, ch[0], k, 1, p, s.image_size, s.image_size);
        let mut layers = Vec::new();
        let mut const_in = true;
        for i in 0..4 {
            let side = s.side(i);
            let v1_quiet = i == 0 && s.faithful_v1;
            let lat_used = s.lateral && !v1_quiet && s.timesteps > 1;
            let td = (s.topdown && i < 3)
                .then(|| Conv::transposed(ch[i + 2], ch[i + 1], k, 2, p, 1, side / 2, side / 2));
            let td_used = td.is_some() && !v1_quiet && s.timesteps > 1;
            let const_out = const_in && !lat_used && !td_used;
            layers.push(LayerGeo {
                c: ch[i + 1],
                cin: ch[i],
                side,
                bu: Conv::new(ch[i], ch[i + 1], k, 1, p, side, side),
                td,
                lat_used,
                td_used,
                const_in,
                const_out,
            });
            const_in = const_out;
        }
        Self { retina, layers }
    }
}

/// Named float32 tensors (flattened, PyTorch layout).
pub type Tensors = BTreeMap<String, Vec<f32>>;

/// Per-step results of a forward pass.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `[T][B·classes]` log-probabilities.
    pub log_probs: Vec<Vec<f32>>,
    /// `[T][B·D]` post-ReLU GAP activations.
    pub representations: Vec<Vec<f32>>,
    /// `[T][area][B·C·H·W]` (NCHW) when requested: V1, V2, V4, IT.
    pub areas: Vec<Vec<Vec<f32>>>,
}

impl Outputs {
    /// Appends the outputs of the next images (the same network and steps) along the batch.
    fn append(&mut self, next: Outputs) {
        let join = |a: &mut Vec<Vec<f32>>, b: Vec<Vec<f32>>| {
            a.iter_mut().zip(b).for_each(|(a, b)| a.extend(b));
        };
        join(&mut self.log_probs, next.log_probs);
        join(&mut self.representations, next.representations);
        for (a, b) in self.areas.iter_mut().zip(next.areas) {
            join(a, b);
        }
    }
}

/// One area's stored activations.
#[derive(Debug, Default)]
struct AreaStore {
    /// Bottom-up input (retina output for V1; pooled area below otherwise), per input slot.
    inp: Vec<Vec<f32>>,
    /// Argmax of the pooling that made `inp` (V2..IT).
    idx: Vec<Vec<u8>>,
    /// Bottom-up drive per input slot (kept for the multiplicative backward).
    b: Vec<Vec<f32>>,
    /// Lateral + top-down drive per output slot (multiplicative backward).
    e: Vec<Option<Vec<f32>>>,
    z: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    /// bf16 passes: `a` rounded to bf16 per output slot, where a convolution on the float32
    /// kernels reads it ([`Rounding::out`]; untouched otherwise).
    a16: Vec<Vec<f32>>,
    mean: Vec<Vec<f32>>,
    rstd: Vec<Vec<f32>>,
}

/// bf16 passes: which operands of the convolutions are rounded to bf16 once, where they are
/// produced, because a convolution on the float32 kernels reads them ([`Conv::amx_worth`]
/// false) — which would otherwise round its operands on every pass (the same values: rounding
/// is idempotent; [`Scratch::operands_rounded`]). AMX passes convert their operands
/// themselves and take the float32 values. All false in float32 passes.
#[derive(Debug, Default, Clone, Copy)]
struct Rounding {
    /// The image and the retina's output gradient (its forward and weight gradient).
    retina: bool,
    /// Area i's bottom-up input (the retina's output for V1, the pooled map below otherwise)
    /// and the gradient of its drive.
    bottom_up: [bool; 4],
    /// Area i's output: read by its lateral and by the top-down into area i − 1.
    out: [bool; 4],
    /// Area i's lateral + top-down gradient.
    drive: [bool; 4],
}

#[derive(Debug, Default)]
struct GapStore {
    gb: Vec<f32>,
    gl: Option<Vec<f32>>,
    gz: Vec<f32>,
    g: Vec<f32>,
    stats: Vec<(f32, f32)>,
    p: Vec<f32>,
}

/// The network bound to its parameters.
#[derive(Debug)]
pub struct BltNet<'p> {
    spec: BltSpec,
    geo: Layout,
    p: BTreeMap<String, &'p [f32]>,
    /// Forward passes without a tape (inference) run their 3 × 3 stride-1 convolutions by
    /// Winograd F(4 × 4, 3 × 3), their top-downs by F(4 × 4, 2 × 2) phases
    /// ([`BltNet::set_winograd`]).
    winograd: Option<Tiles>,
    /// Training passes too, forward and input gradients ([`BltNet::set_winograd_training`]).
    winograd_train: Option<Tiles>,
    /// Winograd-transformed weights by name (`name`, and `name.T` for an input gradient's
    /// flipped, transposed kernel): the parameters are fixed for the net's lifetime, so each
    /// is transformed once, not once per pass (`record` runs every batch on one net).
    wino_cache: std::sync::Mutex<BTreeMap<String, Vec<f32>>>,
    /// bf16 mixed precision ([`BltNet::set_bf16`]).
    bf16: bool,
    /// bf16 passes round the operands of their float32-kernel convolutions once, where they
    /// are produced ([`Rounding`]), not at every pass; see [`Self::set_round_once`].
    round_once: bool,
}

/// Channels (input and output) from which a convolution takes the Winograd path when it is on.
/// Measured per layer (`examples/conv_time`, batch 16): 128–512 channels 1.3–1.7× faster than
/// the direct/GEMM path, 64 channels at 64 px level with it; the tiny network's 8–32-channel
/// layers ran training 0.73× as fast on Winograd as on the direct kernels.
const WINOGRAD_MIN_CHANNELS: usize = 64;

/// Widest map on which training's weight gradients take Winograd too. Measured per layer
/// (`examples/conv_time`, batch 16): 32 px 128 channels 21–26 ms vs 27–32 direct, 16 px
/// 256 channels 19–22 vs 33–36, 8 px 512 channels 21–23 vs 30–33 (GEMM path); 64 px
/// 64 channels 33–38 vs 28–31 when its products read rows n²·p apart, then (operand rows
/// copied together first) at batch 64 — a T = 4 step's steps × batch — 91 ms vs 105–122.
const WINOGRAD_WGRAD_MAX_SIDE: usize = 64;

/// The tiles of a pass and the net's Winograd-transformed weights, by parameter name (taken
/// from [`BltNet::wino_cache`] for the pass, and put back after it).
type WinoWeights = Option<(Tiles, BTreeMap<String, Vec<f32>>)>;

/// The tiles and transformed-weight cache of `wino` when it computes convolution `g`: its
/// tiles apply and both sides have at least [`WINOGRAD_MIN_CHANNELS`].
fn winograd_for<'a>(
    wino: &'a mut WinoWeights,
    g: &Conv,
) -> Option<(&'a Tiles, &'a mut BTreeMap<String, Vec<f32>>)> {
    match wino {
        Some((f, cache)) if f.applies(g) && g.ci.min(g.co) >= WINOGRAD_MIN_CHANNELS => {
            Some((f, cache))
        }
        _ => None,
    }
}

/// The transformed weights under `key` in `cache`, made by `make` (into an empty vector) on
/// first use.
fn cached(
    cache: &mut BTreeMap<String, Vec<f32>>,
    key: String,
    make: impl FnOnce(&mut Vec<f32>),
) -> &[f32] {
    cache.entry(key).or_insert_with(|| {
        let mut u = Vec::new();
        make(&mut u);
        u
    })
}

/// The transformed-weight cache of `wino` when it computes the transposed convolution adjoint
/// to `g` ([`crate::upsample::applies`], both sides at least [`WINOGRAD_MIN_CHANNELS`]).
fn upsample_for<'a>(
    wino: &'a mut WinoWeights,
    g: &Conv,
) -> Option<&'a mut BTreeMap<String, Vec<f32>>> {
    match wino {
        Some((_, cache))
            if crate::upsample::applies(g) && g.ci.min(g.co) >= WINOGRAD_MIN_CHANNELS =>
        {
            Some(cache)
        }
        _ => None,
    }
}

/// Everything the backward pass needs.
#[derive(Debug)]
struct Tape {
    batch: usize,
    r: Vec<f32>,
    /// `r` rounded to bf16 where [`Rounding::bottom_up`] says so for V1 (else empty).
    r16: Vec<f32>,
    x: Vec<f32>,
    areas: Vec<AreaStore>,
    gap: Vec<GapStore>,
}

impl<'p> BltNet<'p> {
    /// Bind parameters, checking every name and size against the spec.
    /// The network's specification.
    pub fn spec(&self) -> &BltSpec {
        &self.spec
    }

    pub fn new(spec: &BltSpec, params: &'p Tensors) -> Result<Self> {
        if !matches!(spec.kernel, 1 | 3 | 5 | 7)
            || !spec.image_size.is_multiple_of(16)
            || spec.timesteps == 0
        {
            return Err(EngineError::Spec(format!(
                "unsupported BLT geometry: kernel {}, image size {}, {} steps",
                spec.kernel, spec.image_size, spec.timesteps
            )));
        }
        let mut p = BTreeMap::new();
        for (name, shape) in spec.parameters() {
            let n: usize = shape.iter().product();
            let v = params
                .get(&name)
                .ok_or_else(|| EngineError::Param(format!("missing parameter {name} {shape:?}")))?;
            if v.len() != n {
                return Err(EngineError::Param(format!(
                    "parameter {name}: expected {shape:?} ({n} values), got {}",
                    v.len()
                )));
            }
            p.insert(name, v.as_slice());
        }
        Ok(Self {
            spec: spec.clone(),
            geo: Layout::new(spec),
            p,
            winograd: None,
            winograd_train: None,
            bf16: false,
            round_once: true,
            wino_cache: Default::default(),
        })
    }

    /// Run the 3 × 3 stride-1 convolutions of inference passes ([`Self::forward`]) with at
    /// least 64 channels on both sides by Winograd F(4 × 4, 3 × 3) (`crate::winograd`): 4×
    /// fewer multiply-adds in their products, another float32 rounding (relative error
    /// measured at a few 1e-6 against a float64 convolution, the direct path's at a few
    /// 1e-7); and their top-down transposed convolutions by F(4 × 4, 2 × 2) on their output
    /// phases (`crate::upsample`: 1.78× fewer, within 1e-6). Training passes
    /// ([`Self::loss_and_grad`]) follow [`Self::set_winograd_training`]. Off by default.
    pub fn set_winograd(&mut self, on: bool) {
        self.winograd = on.then_some(F4);
    }

    /// Also run training passes' ([`Self::loss_and_grad`]) 3 × 3 stride-1 convolutions by
    /// Winograd F(4 × 4, 3 × 3): their forwards and their input gradients (a 3 × 3 stride-1
    /// convolution of the output gradient with the flipped, transposed kernel), and their
    /// weight gradients on maps up to `WINOGRAD_WGRAD_MAX_SIDE` wide. Off by default.
    pub fn set_winograd_training(&mut self, on: bool) {
        self.winograd_train = on.then_some(F4);
    }

    /// Run every convolution (forward, input and weight gradients, the top-downs included)
    /// and linear layer of inference and training passes in bf16 mixed precision: operands
    /// rounded to bf16 (to nearest even), float32 sums ([`crate::bf16::gemm_bf16`]: on AMX
    /// tiles where the CPU has them), on the im2col + GEMM path; LayerNorm, activations,
    /// pooling, the loss, the parameters and their gradients stay float32 — PyTorch's
    /// `torch.autocast(dtype=torch.bfloat16)` semantics, as `ventral_models::precision`.
    /// Turns the Winograd paths off (their transformed tiles would be rounded). Off by
    /// default.
    pub fn set_bf16(&mut self, on: bool) {
        self.bf16 = on;
        if on {
            self.winograd = None;
            self.winograd_train = None;
        }
    }

    /// In bf16 passes, round the activations and gradients that convolutions on the float32
    /// kernels read once, where they are produced (default), or let every pass round its
    /// operands itself — the same values (rounding is idempotent), for the test that says so
    /// bit for bit and for benchmarks.
    pub fn set_round_once(&mut self, on: bool) {
        self.round_once = on;
    }

    /// `dx += ∂(conv)/∂x · dy` of the convolution with the weights named `name`: by Winograd
    /// (the flipped, transposed kernel, transformed on first use) when `wino` holds tiles that
    /// apply to `g`, else [`Conv::backward_data`].
    #[allow(clippy::too_many_arguments)]
    fn conv_backward_data(
        &self,
        wino: &mut WinoWeights,
        name: &str,
        g: &Conv,
        dy: &[f32],
        batch: usize,
        dx: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let w = self.w(name);
        let Some((f, cache)) = winograd_for(wino, g) else {
            return g.backward_data(w, dy, batch, dx, scratch);
        };
        let ut = cached(cache, format!("{name}.T"), |ut| {
            f.input_gradient_weights(w, g.co, g.ci, ut)
        });
        crate::winograd::backward_data(f, g, ut, dy, batch, dx, scratch);
    }

    /// `y = conv(x)` with the weights named `name`: by Winograd when `wino` holds tiles that
    /// apply to `g` (transforming the weights on first use), else [`Conv::forward`].
    #[allow(clippy::too_many_arguments)]
    fn conv_forward(
        &self,
        wino: &mut WinoWeights,
        name: &str,
        g: &Conv,
        x: &[f32],
        batch: usize,
        y: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let w = self.w(name);
        let Some((f, cache)) = winograd_for(wino, g) else {
            return g.forward(w, x, batch, y, false, scratch);
        };
        let u = cached(cache, name.to_string(), |u| f.weights(w, g.co, g.ci, u));
        crate::winograd::forward(f, g, u, x, batch, y, false, scratch);
    }

    /// The pass's [`WinoWeights`] for `tiles` (`None`: exact path), holding the cached
    /// transformed weights until [`Self::put_wino`].
    fn take_wino(&self, tiles: Option<Tiles>) -> WinoWeights {
        let f = tiles?;
        let cache = self
            .wino_cache
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        Some((f, cache))
    }

    /// Return a pass's transformed weights to the net's cache.
    fn put_wino(&self, wino: WinoWeights) {
        if let (Some((_, cache)), Ok(mut c)) = (wino, self.wino_cache.lock()) {
            c.extend(cache);
        }
    }

    /// `dw += ∂L/∂w` of the convolution `g`: by Winograd when `wino` holds tiles that apply
    /// to `g` and its maps are at most [`WINOGRAD_WGRAD_MAX_SIDE`] wide, else
    /// [`Conv::backward_weight`].
    #[allow(clippy::too_many_arguments)]
    fn conv_backward_weight(
        wino: &mut WinoWeights,
        g: &Conv,
        x: &[f32],
        dy: &[f32],
        batch: usize,
        dw: &mut [f32],
        scratch: &mut Scratch,
    ) {
        match winograd_for(wino, g) {
            Some((f, _)) if g.hi.max(g.wi) <= WINOGRAD_WGRAD_MAX_SIDE => {
                crate::winograd::backward_weight(f, g, x, dy, batch, dw, scratch)
            }
            _ => g.backward_weight(x, dy, batch, dw, scratch),
        }
    }

    /// `z += ConvTranspose2d(x)`, the top-down convolution adjoint to `g` with the weights
    /// named `name`: by Winograd F(4 × 4, 2 × 2) on its output phases ([`crate::upsample`])
    /// when `wino` is on, the phases apply and both sides have at least
    /// [`WINOGRAD_MIN_CHANNELS`], else [`Conv::backward_data`]. Inference passes only: on
    /// training passes the top-downs stay exact (see `docs/performance.md`, Exactness).
    #[allow(clippy::too_many_arguments)]
    fn td_forward(
        &self,
        (training, wino): (bool, &mut WinoWeights),
        name: &str,
        g: &Conv,
        x: &[f32],
        batch: usize,
        z: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let w = self.w(name);
        let Some(cache) = upsample_for(wino, g).filter(|_| !training) else {
            return g.backward_data(w, x, batch, z, scratch);
        };
        let u = cached(cache, format!("{name}.up"), |u| {
            crate::upsample::weights(w, g, u)
        });
        crate::upsample::forward(g, u, x, batch, z, scratch);
    }

    /// The convolutions' scratch of a pass: bf16 as the net is, the parameters packed once
    /// for the pass, and the operands promised rounded where [`Self::rounding`] rounds them.
    fn scratch(&self) -> Scratch {
        let mut col = Scratch::with_bf16(self.bf16).keep_packed_weights();
        col.operands_rounded = self.bf16 && self.round_once;
        col
    }

    /// Which operands this pass on `batch` images rounds once ([`Rounding`]).
    fn rounding(&self, batch: usize) -> Rounding {
        let f32k = |c: &Conv| self.bf16 && self.round_once && !c.amx_worth(batch);
        let mut r = Rounding {
            retina: f32k(&self.geo.retina),
            ..Rounding::default()
        };
        for (i, l) in self.geo.layers.iter().enumerate().take(4) {
            let lat = l.lat_used && f32k(&l.bu_lat());
            let td = l.td_used && l.td.is_some_and(|t| f32k(&t));
            r.bottom_up[i] = f32k(&l.bu);
            r.drive[i] = lat || td;
            r.out[i] |= lat;
            if td && i + 1 < 4 {
                r.out[i + 1] = true;
            }
        }
        r
    }

    /// `dst (+)= a · b` of a linear layer: in bf16 with float32 sums when [`Self::set_bf16`]
    /// is on (PyTorch's autocast runs linear layers in bf16 too), else exact float32.
    fn mm(&self, dst: MatMut<'_>, accumulate: bool, a: MatRef<'_>, b: MatRef<'_>) {
        if self.bf16 {
            crate::bf16::gemm_bf16(dst, accumulate, a, b);
        } else {
            gemm(dst, accumulate, a, b);
        }
    }

    fn w(&self, name: &str) -> &'p [f32] {
        self.p.get(name).copied().unwrap_or(&[])
    }
    fn opt(&self, name: &str) -> Option<&'p [f32]> {
        self.p.get(name).copied()
    }

    /// Forward pass over all steps.
    ///
    /// More than [`CHUNK`] images run as consecutive passes of that many (and one of the
    /// rest), whose outputs are joined along the batch: every output is per image, and a
    /// pass's buffers grow with its batch, so one pass over thousands of images spent most of
    /// its time faulting in gigabytes of fresh memory (and ran out of cache) for nothing. Any
    /// batch of more than `CHUNK` images therefore gives the same bits as passes of
    /// `CHUNK` images.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, S, S]` (NCHW, normalised).
    pub fn forward(&self, x: &[f32], batch: usize, areas: bool) -> Result<Outputs> {
        if batch <= CHUNK || !x.len().is_multiple_of(batch) {
            let (out, _) = self.run(x, batch, false, areas)?;
            return Ok(out);
        }
        let per_image = x.len() / batch;
        let mut out = Outputs::default();
        for (k, part) in x.chunks(CHUNK * per_image).enumerate() {
            let (o, _) = self.run(part, part.len() / per_image, false, areas)?;
            if k == 0 {
                out = o;
            } else {
                out.append(o);
            }
        }
        Ok(out)
    }

    /// Forward, summed weighted NLL `Σ_t w_t · NLL(log_probs_t, y)` (batch means) and the
    /// gradient of every parameter. Returns (outputs, per-step NLL, gradients).
    ///
    /// A batch of more than [`CHUNK`] images runs as passes of that many (and one of the rest)
    /// whose gradients and losses, each already divided by the whole batch's size, are summed:
    /// every image's loss and gradient depend on that image alone (LayerNorm normalises each
    /// image by itself; nothing mixes images), so the result is the whole batch's to float32
    /// round-off, in a fraction of the memory and, beyond a few hundred images, faster.
    pub fn loss_and_grad(
        &self,
        x: &[f32],
        labels: &[usize],
        weights: &[f64],
    ) -> Result<(Outputs, Vec<f64>, Tensors)> {
        let batch = labels.len();
        if batch <= CHUNK || !x.len().is_multiple_of(batch) {
            return self.chunk_loss_and_grad(x, labels, weights, batch);
        }
        let per_image = x.len() / batch;
        let mut total: Option<(Outputs, Vec<f64>, Tensors)> = None;
        for (xs, ys) in x.chunks(CHUNK * per_image).zip(labels.chunks(CHUNK)) {
            let (o, nll, g) = self.chunk_loss_and_grad(xs, ys, weights, batch)?;
            match &mut total {
                None => total = Some((o, nll, g)),
                Some((to, tn, tg)) => {
                    to.append(o);
                    tn.iter_mut().zip(nll).for_each(|(a, b)| *a += b);
                    for (name, v) in g {
                        if let Some(a) = tg.get_mut(&name) {
                            a.iter_mut().zip(v).for_each(|(a, b)| *a += b);
                        }
                    }
                }
            }
        }
        total.ok_or_else(|| EngineError::Input("empty batch".into()))
    }

    /// [`Self::loss_and_grad`] of the images `x` (labels `labels`), with losses and gradients
    /// divided by `denom` images (the whole batch's size) instead of their own number.
    fn chunk_loss_and_grad(
        &self,
        x: &[f32],
        labels: &[usize],
        weights: &[f64],
        denom: usize,
    ) -> Result<(Outputs, Vec<f64>, Tensors)> {
        let batch = labels.len();
        let k = self.spec.num_classes;
        if let Some(&bad) = labels.iter().find(|&&y| y >= k) {
            return Err(EngineError::Input(format!(
                "label {bad} out of range for {k} classes"
            )));
        }
        if weights.len() != self.spec.timesteps {
            return Err(EngineError::Input(format!(
                "{} loss weights for {} steps",
                weights.len(),
                self.spec.timesteps
            )));
        }
        let (out, tape) = self.run(x, batch, true, false)?;
        let tape = tape.ok_or_else(|| EngineError::Input("no tape".into()))?;
        let nll: Vec<f64> = out
            .log_probs
            .iter()
            .map(|lp| {
                -labels
                    .iter()
                    .enumerate()
                    .map(|(b, &y)| lp[b * k + y] as f64)
                    .sum::<f64>()
                    / denom as f64
            })
            .collect();
        let grads = self.backward(&tape, labels, weights, denom);
        recycle((self.spec.clone(), batch, true), tape.areas);
        Ok((out, nll, grads))
    }

    fn run(
        &self,
        x: &[f32],
        batch: usize,
        keep: bool,
        want_areas: bool,
    ) -> Result<(Outputs, Option<Tape>)> {
        let s = &self.spec;
        let (sz, t_n, d, kc) = (s.image_size, s.timesteps, s.channels[4], s.num_classes);
        if batch == 0 || x.len() != batch * 3 * sz * sz {
            return Err(EngineError::Input(format!(
                "input has {} values, expected batch {batch} × 3 × {sz} × {sz}",
                x.len()
            )));
        }
        // NCHW → [C][B][HW].
        let setup = scope(Op::Setup);
        let hw0 = sz * sz;
        let mut xc = vec![0.0f32; x.len()];
        for b in 0..batch {
            for c in 0..3 {
                xc[(c * batch + b) * hw0..(c * batch + b + 1) * hw0]
                    .copy_from_slice(&x[(b * 3 + c) * hw0..(b * 3 + c + 1) * hw0]);
            }
        }
        let mut col = self.scratch();
        // Training forwards keep the top-downs on the product + col2im (see the field).
        col.keep_col2im = keep;
        let rd = self.rounding(batch);
        if rd.retina {
            crate::bf16::round_in_place(&mut xc);
        }
        let g = &self.geo;
        let mut r = vec![0.0f32; s.channels[0] * batch * hw0];
        drop(setup);
        // Training passes (`keep`) take `winograd_train`, inference passes `winograd`.
        let mut wino = self.take_wino(if keep {
            self.winograd_train
        } else {
            self.winograd
        });
        self.conv_forward(
            &mut wino,
            "retina.weight",
            &g.retina,
            &xc,
            batch,
            &mut r,
            &mut col,
        );
        add_bias(&mut r, self.w("retina.bias"));
        let mut r16 = Vec::new();
        {
            let _p = scope(Op::Elementwise);
            ops::map1(&mut r, relu);
            if rd.bottom_up[0] {
                crate::bf16::round_into(&r, &mut r16);
            }
        }
        let setup = scope(Op::Setup);

        // Slots: a constant quantity has one; otherwise one per step when keeping the tape,
        // else two (t and t − 1).
        let slots = |constant: bool| {
            if constant {
                1
            } else if keep {
                t_n
            } else {
                t_n.min(2)
            }
        };
        let slot = |constant: bool, t: usize| {
            if constant {
                0
            } else if keep {
                t
            } else {
                t % 2
            }
        };
        let key = (s.clone(), batch, keep);
        let cached = take_stores(&key);
        let mut st: Vec<AreaStore> = cached.unwrap_or_else(|| {
            g.layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let n = l.c * batch * l.side * l.side;
                    let nin = l.cin * batch * l.side * l.side;
                    let (si, so) = (slots(l.const_in), slots(l.const_out));
                    AreaStore {
                        inp: vec![Vec::new(); si],
                        idx: vec![Vec::new(); si],
                        b: vec![vec![0.0; n]; si],
                        e: vec![None; so],
                        z: vec![vec![0.0; n]; so],
                        a: vec![vec![0.0; n]; so],
                        a16: vec![Vec::new(); so],
                        mean: vec![vec![0.0; batch]; so],
                        rstd: vec![vec![0.0; batch]; so],
                    }
                    .with_inp(if i == 0 { 0 } else { nin })
                })
                .collect()
        });
        drop(setup);
        let mut gaps: Vec<GapStore> = Vec::new();
        let mut out = Outputs::default();
        let mut scratch: Vec<f32> = Vec::new();
        let mut prev_g: Option<Vec<f32>> = None;
        for t in 0..t_n {
            for i in 0..4 {
                let l = &g.layers[i];
                let name = AREAS[i];
                if l.const_out && t > 0 {
                    continue;
                }
                let (hw, n) = (l.side * l.side, l.c * batch * l.side * l.side);
                let si = slot(l.const_in, t);
                if !(l.const_in && t > 0) {
                    // Bottom-up input and drive.
                    if i > 0 {
                        let below = &g.layers[i - 1];
                        let sb = slot(below.const_out, t);
                        let (lo, hi) = st.split_at_mut(i);
                        let src = &lo[i - 1].a[sb];
                        let dst = &mut hi[0];
                        ensure_u8(&mut dst.idx[si], l.cin * batch * hw);
                        ensure(&mut dst.inp[si], l.cin * batch * hw);
                        ops::maxpool_forward(
                            src,
                            below.side,
                            below.side,
                            &mut dst.inp[si],
                            &mut dst.idx[si],
                        );
                        // Read by the bottom-up convolution only (its pooling's backward
                        // takes the argmax): rounded in place.
                        if rd.bottom_up[i] {
                            let _p = scope(Op::Elementwise);
                            crate::bf16::round_in_place(&mut dst.inp[si]);
                        }
                    }
                    let mut b = std::mem::take(&mut st[i].b[si]);
                    let input: &[f32] = match i {
                        0 if rd.bottom_up[0] => &r16,
                        0 => &r,
                        _ => &st[i].inp[si],
                    };
                    self.conv_forward(
                        &mut wino,
                        &format!("{name}.bottom_up.weight"),
                        &l.bu,
                        input,
                        batch,
                        &mut b,
                        &mut col,
                    );
                    if let Some(bias) = self.opt(&format!("{name}.bottom_up.bias")) {
                        add_bias(&mut b, bias);
                    }
                    st[i].b[si] = b;
                }
                let so = slot(l.const_out, t);
                // Lateral + top-down drive from t − 1.
                let mut e: Option<Vec<f32>> = None;
                if t > 0 && (l.lat_used || l.td_used) {
                    let mut ev = st[i].e[so].take().unwrap_or_default();
                    ensure(&mut ev, n);
                    let mut first = true;
                    if l.lat_used {
                        let sp = slot(l.const_out, t - 1);
                        self.conv_forward(
                            &mut wino,
                            &format!("{name}.lateral.weight"),
                            &l.bu_lat(),
                            st[i].conv_input(rd.out[i], sp),
                            batch,
                            &mut ev[..n],
                            &mut col,
                        );
                        if let Some(bias) = self.opt(&format!("{name}.lateral.bias")) {
                            add_bias(&mut ev[..n], bias);
                        }
                        first = false;
                    }
                    if let Some(tg) = l.td.filter(|_| l.td_used) {
                        let above = &g.layers[i + 1];
                        let sp = slot(above.const_out, t - 1);
                        if first {
                            ev[..n].fill(0.0);
                        }
                        self.td_forward(
                            (keep, &mut wino),
                            &format!("{name}.top_down.weight"),
                            &tg,
                            st[i + 1].conv_input(rd.out[i + 1], sp),
                            batch,
                            &mut ev[..n],
                            &mut col,
                        );
                        if let Some(bias) = self.opt(&format!("{name}.top_down.bias")) {
                            add_bias(&mut ev[..n], bias);
                        }
                    }
                    e = Some(ev);
                }
                let a = &mut st[i];
                let mut z = std::mem::take(&mut a.z[so]);
                // z = b + e or b ⊙ (1 + e) (b alone at the first step), with LayerNorm's
                // statistics taken in the same pass.
                ops::combine_ln_stats(
                    &mut z,
                    &a.b[si],
                    e.as_ref().map(|e| &e[..n]),
                    s.multiplicative,
                    (l.c, batch, hw),
                    s.layer_norm
                        .then(|| (LN_EPS, &mut a.mean[so][..], &mut a.rstd[so][..])),
                );
                a.e[so] = e;
                let mut av = std::mem::take(&mut a.a[so]);
                if s.layer_norm {
                    let (gw, gb) = (
                        self.w(&format!("{name}_ln.weight")),
                        self.w(&format!("{name}_ln.bias")),
                    );
                    ops::ln_relu_forward(
                        &z,
                        &mut av,
                        batch,
                        hw,
                        Some((gw, gb, &a.mean[so], &a.rstd[so])),
                    );
                } else {
                    ops::ln_relu_forward(&z, &mut av, batch, hw, None);
                }
                if rd.out[i] {
                    let _p = scope(Op::Elementwise);
                    crate::bf16::round_into(&av, &mut a.a16[so]);
                }
                a.z[so] = z;
                a.a[so] = av;
            }
            // GAP, its lateral Linear, LayerNorm, ReLU, readout.
            let it = &g.layers[3];
            let ait = &st[3].a[slot(it.const_out, t)];
            let mut gb = vec![0.0f32; batch * d];
            ops::gap_forward(ait, d, batch, it.side * it.side, &mut gb);
            let gl = match (&prev_g, self.opt("gap.lateral.weight")) {
                (Some(pg), Some(w)) => {
                    let mut o = vec![0.0f32; batch * d];
                    self.mm(
                        MatMut::rm(&mut o, 0, batch, d),
                        false,
                        MatRef::rm(pg, 0, batch, d),
                        MatRef::rm(w, 0, d, d).t(),
                    );
                    if let Some(bias) = self.opt("gap.lateral.bias") {
                        o.chunks_mut(d)
                            .for_each(|r| r.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
                    }
                    Some(o)
                }
                _ => None,
            };
            let gz: Vec<f32> = match (&gl, s.multiplicative) {
                (None, _) => gb.clone(),
                (Some(l), false) => gb.iter().zip(l).map(|(a, b)| a + b).collect(),
                (Some(l), true) => gb.iter().zip(l).map(|(a, b)| a * (b + 1.0)).collect(),
            };
            let mut gv = vec![0.0f32; batch * d];
            let stats = if s.layer_norm {
                ops::ln1d_relu_forward(
                    &gz,
                    d,
                    self.w("gap_ln.weight"),
                    self.w("gap_ln.bias"),
                    LN_EPS,
                    &mut gv,
                )
            } else {
                gv.iter_mut().zip(&gz).for_each(|(o, &v)| *o = relu(v));
                Vec::new()
            };
            let mut logits = vec![0.0f32; batch * kc];
            self.mm(
                MatMut::rm(&mut logits, 0, batch, kc),
                false,
                MatRef::rm(&gv, 0, batch, d),
                MatRef::rm(self.w("readout.weight"), 0, kc, d).t(),
            );
            if let Some(bias) = self.opt("readout.bias") {
                logits
                    .chunks_mut(kc)
                    .for_each(|r| r.iter_mut().zip(bias).for_each(|(v, b)| *v += b));
            }
            let (lp, p) = ops::clamped_log_softmax(&logits, kc);
            out.log_probs.push(lp);
            out.representations.push(gv.clone());
            if want_areas {
                out.areas.push(
                    (0..4)
                        .map(|i| {
                            let l = &g.layers[i];
                            to_nchw(
                                &st[i].a[slot(l.const_out, t)],
                                l.c,
                                batch,
                                l.side * l.side,
                                &mut scratch,
                            )
                        })
                        .collect(),
                );
            }
            prev_g = Some(gv.clone());
            if keep {
                gaps.push(GapStore {
                    gb,
                    gl,
                    gz,
                    g: gv,
                    stats,
                    p,
                });
            }
        }
        self.put_wino(wino);
        let tape = if keep {
            Some(Tape {
                batch,
                r,
                r16,
                x: xc,
                areas: st,
                gap: gaps,
            })
        } else {
            recycle(key, st);
            None
        };
        Ok((out, tape))
    }

    /// Gradients of `Σ_t w_t · Σ_b NLL_{t,b} / denom` over the tape's images.
    fn backward(&self, tape: &Tape, labels: &[usize], weights: &[f64], denom: usize) -> Tensors {
        let s = &self.spec;
        let g = &self.geo;
        let (t_n, d, kc, batch) = (s.timesteps, s.channels[4], s.num_classes, tape.batch);
        let mut gw: Tensors = s
            .parameters()
            .into_iter()
            .map(|(n, sh)| (n, vec![0.0f32; sh.iter().product()]))
            .collect();
        let slot = |constant: bool, t: usize| if constant { 0 } else { t };
        let mut wino = self.take_wino(self.winograd_train);
        let setup = scope(Op::Setup);
        // da per area per output slot.
        let mut da: Vec<Vec<Vec<f32>>> = g
            .layers
            .iter()
            .map(|l| {
                vec![vec![0.0f32; l.c * batch * l.side * l.side]; if l.const_out { 1 } else { t_n }]
            })
            .collect();
        // Summed gradient of constant bottom-up drives (const_in areas).
        let mut db_sum: Vec<Option<Vec<f32>>> = g
            .layers
            .iter()
            .map(|l| {
                l.const_in
                    .then(|| vec![0.0f32; l.c * batch * l.side * l.side])
            })
            .collect();
        let mut dr = vec![0.0f32; tape.r.len()];
        let mut col = self.scratch();
        let rd = self.rounding(batch);
        let mut dg_next: Option<Vec<f32>> = None; // dL/dg_t from the GAP lateral at t + 1
        let mut dz = Vec::new();
        let mut de = Vec::new();
        // bf16 copies of the drive gradients the float32-kernel convolutions read.
        let (mut de16, mut db16) = (Vec::new(), Vec::new());
        let mut dinp = Vec::new();
        drop(setup);
        for t in (0..t_n).rev() {
            let gs = &tape.gap[t];
            // Readout.
            let mut dlp = vec![0.0f32; batch * kc];
            let wt = (weights[t] / denom as f64) as f32;
            for (b, &y) in labels.iter().enumerate() {
                dlp[b * kc + y] = -wt;
            }
            let mut dlogits = vec![0.0f32; batch * kc];
            ops::clamped_log_softmax_backward(&dlp, &gs.p, kc, &mut dlogits);
            if let Some(gr) = gw.get_mut("readout.weight") {
                self.mm(
                    MatMut::rm(gr, 0, kc, d),
                    true,
                    MatRef::rm(&dlogits, 0, batch, kc).t(),
                    MatRef::rm(&gs.g, 0, batch, d),
                );
            }
            if let Some(gr) = gw.get_mut("readout.bias") {
                for row in dlogits.chunks(kc) {
                    gr.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
            }
            let mut dgv = dg_next.take().unwrap_or_else(|| vec![0.0f32; batch * d]);
            self.mm(
                MatMut::rm(&mut dgv, 0, batch, d),
                true,
                MatRef::rm(&dlogits, 0, batch, kc),
                MatRef::rm(self.w("readout.weight"), 0, kc, d),
            );
            // GAP LayerNorm + ReLU.
            let mut dgz = vec![0.0f32; batch * d];
            if s.layer_norm {
                let (mut dgw, mut dgb) = (
                    gw.remove("gap_ln.weight").unwrap_or_default(),
                    gw.remove("gap_ln.bias").unwrap_or_default(),
                );
                ops::ln1d_relu_backward(
                    &gs.gz,
                    &gs.g,
                    &dgv,
                    d,
                    self.w("gap_ln.weight"),
                    &gs.stats,
                    &mut dgz,
                    &mut dgw,
                    &mut dgb,
                );
                gw.insert("gap_ln.weight".into(), dgw);
                gw.insert("gap_ln.bias".into(), dgb);
            } else {
                dgz.iter_mut()
                    .zip(dgv.iter().zip(&gs.g))
                    .for_each(|(o, (g, a))| *o = if *a > 0.0 { *g } else { 0.0 });
            }
            let (dgb, dgl): (Vec<f32>, Option<Vec<f32>>) = match (&gs.gl, s.multiplicative) {
                (None, _) => (dgz, None),
                (Some(_), false) => (dgz.clone(), Some(dgz)),
                (Some(l), true) => (
                    dgz.iter().zip(l).map(|(g, l)| g * (l + 1.0)).collect(),
                    Some(dgz.iter().zip(&gs.gb).map(|(g, b)| g * b).collect()),
                ),
            };
            if let (Some(dgl), true) = (dgl, t > 0) {
                let gprev = &tape.gap[t - 1].g;
                if let Some(gr) = gw.get_mut("gap.lateral.weight") {
                    self.mm(
                        MatMut::rm(gr, 0, d, d),
                        true,
                        MatRef::rm(&dgl, 0, batch, d).t(),
                        MatRef::rm(gprev, 0, batch, d),
                    );
                }
                if let Some(gr) = gw.get_mut("gap.lateral.bias") {
                    for row in dgl.chunks(d) {
                        gr.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                }
                let mut dprev = vec![0.0f32; batch * d];
                self.mm(
                    MatMut::rm(&mut dprev, 0, batch, d),
                    false,
                    MatRef::rm(&dgl, 0, batch, d),
                    MatRef::rm(self.w("gap.lateral.weight"), 0, d, d),
                );
                dg_next = Some(dprev);
            }
            let it = &g.layers[3];
            ops::gap_backward(
                &dgb,
                d,
                batch,
                it.side * it.side,
                &mut da[3][slot(it.const_out, t)],
            );

            // Areas, top to bottom.
            for i in (0..4).rev() {
                let l = &g.layers[i];
                if l.const_out && t > 0 {
                    continue; // its gradient accumulates in slot 0, propagated at t = 0
                }
                let name = AREAS[i];
                let (hw, n) = (l.side * l.side, l.c * batch * l.side * l.side);
                let so = slot(l.const_out, t);
                let si = slot(l.const_in, t);
                let a = &tape.areas[i];
                ensure(&mut dz, n);
                // LayerNorm gradients are taken out of the map while they are written.
                let (lw, lb) = (format!("{name}_ln.weight"), format!("{name}_ln.bias"));
                let mut dln = s.layer_norm.then(|| {
                    (
                        gw.remove(&lw).unwrap_or_default(),
                        gw.remove(&lb).unwrap_or_default(),
                    )
                });
                ops::ln_relu_backward(
                    &a.z[so],
                    &a.a[so],
                    &da[i][so],
                    &mut dz[..n],
                    l.c,
                    batch,
                    hw,
                    dln.as_mut().map(|(dgw, dgb)| {
                        (
                            self.w(&lw),
                            self.w(&lb),
                            &a.mean[so][..],
                            &a.rstd[so][..],
                            &mut dgw[..],
                            &mut dgb[..],
                        )
                    }),
                );
                if let Some((dgw, dgb)) = dln {
                    gw.insert(lw, dgw);
                    gw.insert(lb, dgb);
                }
                // Combine: z = b + e or b ⊙ (1 + e).
                // Whether `de16` will hold dz rounded (the additive combine's de is dz).
                let dz16 = rd.drive[i] && !s.multiplicative && a.e[so].is_some();
                if let Some(e) = &a.e[so] {
                    let de = if s.multiplicative {
                        let _p = scope(Op::Elementwise);
                        ensure(&mut de, n);
                        let b = &a.b[si];
                        ops::map3(&mut de[..n], &dz[..n], b, |_, g, b| g * b);
                        ops::map2(&mut dz[..n], e, |g, e| g * (e + 1.0));
                        &de[..n]
                    } else {
                        // The additive combine passes dz on unchanged.
                        &dz[..n]
                    };
                    // What the convolutions read: rounded once (the biases take `de`).
                    let dc: &[f32] = if rd.drive[i] {
                        let _p = scope(Op::Elementwise);
                        crate::bf16::round_into(de, &mut de16);
                        &de16
                    } else {
                        de
                    };
                    if l.lat_used {
                        let sp = slot(l.const_out, t - 1);
                        let lat = l.bu_lat();
                        let ap = a.conv_input(rd.out[i], sp);
                        if let Some(gr) = gw.get_mut(&format!("{name}.lateral.weight")) {
                            Self::conv_backward_weight(
                                &mut wino, &lat, ap, dc, batch, gr, &mut col,
                            );
                        }
                        if let Some(gr) = gw.get_mut(&format!("{name}.lateral.bias")) {
                            bias_grad(de, gr);
                        }
                        self.conv_backward_data(
                            &mut wino,
                            &format!("{name}.lateral.weight"),
                            &lat,
                            dc,
                            batch,
                            &mut da[i][sp],
                            &mut col,
                        );
                    }
                    if let Some(tg) = l.td.filter(|_| l.td_used) {
                        let above = &g.layers[i + 1];
                        let sp = slot(above.const_out, t - 1);
                        let ap = tape.areas[i + 1].conv_input(rd.out[i + 1], sp);
                        if let Some(gr) = gw.get_mut(&format!("{name}.top_down.weight")) {
                            tg.backward_weight(dc, ap, batch, gr, &mut col);
                        }
                        if let Some(gr) = gw.get_mut(&format!("{name}.top_down.bias")) {
                            bias_grad(de, gr);
                        }
                        tg.forward(
                            self.w(&format!("{name}.top_down.weight")),
                            dc,
                            batch,
                            &mut da[i + 1][sp],
                            true,
                            &mut col,
                        );
                    }
                }
                // Bottom-up: summed over steps first when its input is constant.
                let summed = db_sum[i].is_some();
                let dbv: &[f32] = if let Some(sum) = db_sum[i].as_mut() {
                    let _p = scope(Op::Elementwise);
                    ops::map2(sum, &dz[..n], |s, d| s + d);
                    if t > 0 {
                        continue;
                    }
                    &sum[..]
                } else {
                    &dz[..n]
                };
                let input: &[f32] = match i {
                    0 if rd.bottom_up[0] => &tape.r16,
                    0 => &tape.r,
                    _ => &a.inp[si], // rounded in place where it is read rounded
                };
                // What the convolutions read: rounded once (the additive combine's is dz,
                // rounded above when the drive's convolutions read it rounded too).
                let dbc: &[f32] = match (rd.bottom_up[i], dz16 && !summed) {
                    (false, _) => dbv,
                    (true, true) => &de16,
                    (true, false) => {
                        let _p = scope(Op::Elementwise);
                        crate::bf16::round_into(dbv, &mut db16);
                        &db16
                    }
                };
                if let Some(gr) = gw.get_mut(&format!("{name}.bottom_up.weight")) {
                    Self::conv_backward_weight(&mut wino, &l.bu, input, dbc, batch, gr, &mut col);
                }
                if let Some(gr) = gw.get_mut(&format!("{name}.bottom_up.bias")) {
                    bias_grad(dbv, gr);
                }
                let wname = format!("{name}.bottom_up.weight");
                if i == 0 {
                    self.conv_backward_data(
                        &mut wino, &wname, &l.bu, dbc, batch, &mut dr, &mut col,
                    );
                } else {
                    let nin = l.cin * batch * hw;
                    ensure(&mut dinp, nin);
                    dinp[..nin].fill(0.0);
                    let dst = &mut dinp[..nin];
                    self.conv_backward_data(&mut wino, &wname, &l.bu, dbc, batch, dst, &mut col);
                    let below = &g.layers[i - 1];
                    let sb = slot(below.const_out, t);
                    ops::maxpool_backward(
                        &dinp[..nin],
                        &a.idx[si],
                        below.side,
                        below.side,
                        &mut da[i - 1][sb],
                    );
                }
            }
        }
        // Retina: ReLU, bias, weight (its input gradient is not needed).
        ops::map2(&mut dr, &tape.r, |g, r| if r <= 0.0 { 0.0 } else { g });
        if let Some(gr) = gw.get_mut("retina.bias") {
            bias_grad(&dr, gr);
        }
        if let Some(gr) = gw.get_mut("retina.weight") {
            // The weight gradient reads `dr` rounded (`tape.x` was rounded in the forward).
            if rd.retina {
                crate::bf16::round_in_place(&mut dr);
            }
            g.retina.backward_weight(&tape.x, &dr, batch, gr, &mut col);
        }
        // Parameters the network owns but never uses (faithful V1's lateral and top-down
        // convolutions) get no gradient, as in PyTorch, so optimisers leave them alone.
        for (i, l) in g.layers.iter().enumerate() {
            let name = AREAS[i];
            if !l.lat_used {
                gw.remove(&format!("{name}.lateral.weight"));
                gw.remove(&format!("{name}.lateral.bias"));
            }
            if !l.td_used {
                gw.remove(&format!("{name}.top_down.weight"));
                gw.remove(&format!("{name}.top_down.bias"));
            }
        }
        self.put_wino(wino);
        gw
    }
}

/// Which stores a cached set fits: (network, batch, whole tape kept).
type StoreKey = (BltSpec, usize, bool);

/// The per-area buffers of the last passes, kept for the next pass of the same shape: every
/// one of them is written before it is read in a pass, so reusing them saves allocating and
/// zeroing tens of megabytes per training step (the time loop itself never allocates them).
/// Two shapes are kept, the most recent first: a training step's and a validation pass's, or
/// the full chunks of a large inference batch ([`CHUNK`]) and its last, smaller one, so
/// that alternating between them does not reallocate every time.
fn stores_cache() -> &'static StoresCache {
    static CACHE: std::sync::OnceLock<StoresCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

type StoresCache = std::sync::Mutex<Vec<(StoreKey, Vec<AreaStore>)>>;

/// How many shapes [`stores_cache`] keeps.
const CACHED_SHAPES: usize = 2;

/// The cached stores of this shape, if any (taken out of the cache).
fn take_stores(key: &StoreKey) -> Option<Vec<AreaStore>> {
    let mut c = stores_cache().lock().ok()?;
    let i = c.iter().position(|(k, _)| k == key)?;
    Some(c.remove(i).1)
}

fn recycle(key: StoreKey, st: Vec<AreaStore>) {
    if let Ok(mut c) = stores_cache().lock() {
        c.retain(|(k, _)| *k != key);
        c.insert(0, (key, st));
        c.truncate(CACHED_SHAPES);
    }
}

impl AreaStore {
    /// The output of slot `so` as the convolutions read it: its bf16 copy when `rounded`
    /// ([`Rounding::out`]).
    fn conv_input(&self, rounded: bool, so: usize) -> &[f32] {
        if rounded { &self.a16[so] } else { &self.a[so] }
    }

    fn with_inp(mut self, n: usize) -> Self {
        for v in &mut self.inp {
            v.resize(n, 0.0);
        }
        self
    }
}

fn ensure_u8(v: &mut Vec<u8>, n: usize) {
    if v.len() < n {
        v.resize(n, 0);
    }
}

/// `[C][B][HW]` → `[B][C][HW]`.
fn to_nchw(x: &[f32], c: usize, batch: usize, hw: usize, _scratch: &mut [f32]) -> Vec<f32> {
    let mut o = vec![0.0f32; x.len()];
    for ch in 0..c {
        for b in 0..batch {
            o[(b * c + ch) * hw..(b * c + ch + 1) * hw]
                .copy_from_slice(&x[(ch * batch + b) * hw..(ch * batch + b + 1) * hw]);
        }
    }
    o
}
