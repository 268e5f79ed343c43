//! Per-layer convolution timings (direct / GEMM paths, Winograd F(4 × 4) forward and weight
//! gradient, the top-down convolutions' forward by Winograd F(4 × 4, 2 × 2) on their phases)
//! at the BLT layer shapes, fastest of 20 calls.
//!
//! ```sh
//! cargo run --release -p ventral-engine --example conv_time            # all layers, batch 16
//! BATCH=64 CONV_ONLY=ref64 WINO_ONLY=1 WINO_PROFILE=1 cargo run --release -p ventral-engine --example conv_time
//! ```
//! `BATCH`: images per call (a training step's weight gradients see steps × batch);
//! `CONV_ONLY`: layers whose name contains it; `WINO_ONLY`: skip the direct paths;
//! `WINO_PROFILE`: the Winograd passes' time per kind of work; `DATA_PROFILE`: the input
//! gradient's; `WINO_F2`: F(2 × 2) instead of F(4 × 4); `BF16=1`: the three passes in bf16
//! (`Scratch::with_bf16`, on AMX where the CPU has it); `PASSES=fdw` (any of them): only
//! those passes (forward, input gradient, weight gradient), without the Winograd timings;
//! `NCHW=1`: the batch-major entry points where the pass runs in place.
use std::time::Instant;
use ventral_engine::conv::{Conv, Scratch};
fn main() {
    ventral_engine::memory::keep_freed_memory();
    let b: usize = std::env::var("BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    // (name, geometry): bottom-up / lateral (stride 1), top-down (transposed, stride 2).
    let geos = [
        ("v1 bu 8->8 64", Conv::new(8, 8, 3, 1, 1, 64, 64)),
        ("v2 lat 16 32", Conv::new(16, 16, 3, 1, 1, 32, 32)),
        ("v2 bu 8->16 32", Conv::new(8, 16, 3, 1, 1, 32, 32)),
        ("v2 td 16<-16", Conv::transposed(16, 16, 3, 2, 1, 1, 16, 16)),
        ("v4 lat 16 16", Conv::new(16, 16, 3, 1, 1, 16, 16)),
        ("v4 td 16<-32", Conv::transposed(32, 16, 3, 2, 1, 1, 8, 8)),
        ("it lat 32 8", Conv::new(32, 32, 3, 1, 1, 8, 8)),
        ("retina 3->8", Conv::new(3, 8, 3, 1, 1, 64, 64)),
        // Stride 2: the CPU ConvRNNs' conv1 (7×7, pad 3) at 64 px, BLT_net_64's top-down.
        ("convrnn conv1", Conv::new(3, 16, 7, 2, 3, 64, 64)),
        (
            "ref64 v1<-v2 td",
            Conv::transposed(128, 64, 3, 2, 1, 1, 32, 32),
        ),
        (
            "ref64 v2<-v4 td",
            Conv::transposed(256, 128, 3, 2, 1, 1, 16, 16),
        ),
        (
            "ref64 v4<-it td",
            Conv::transposed(512, 256, 3, 2, 1, 1, 8, 8),
        ),
        // BLT_net_64's wide stride-1 layers (direct or GEMM by map size).
        ("ref64 v1 bu 64", Conv::new(32, 64, 3, 1, 1, 64, 64)),
        ("ref64 v1 lat 64", Conv::new(64, 64, 3, 1, 1, 64, 64)),
        ("ref64 v2 lat 32", Conv::new(128, 128, 3, 1, 1, 32, 32)),
        ("ref64 v4 bu 16", Conv::new(128, 256, 3, 1, 1, 16, 16)),
        ("ref64 v4 lat 16", Conv::new(256, 256, 3, 1, 1, 16, 16)),
        ("ref64 it lat 8", Conv::new(512, 512, 3, 1, 1, 8, 8)),
        // The CPU ConvRNNs' cells on 8 × 8 maps: the GRU's gates (input and state, 64 → 2·32),
        // the reciprocal gated cell's 32 → 32, BLT_net_64's IT bottom-up.
        ("gru gates 64->64 8", Conv::new(64, 64, 3, 1, 1, 8, 8)),
        ("cell 32->32 8", Conv::new(32, 32, 3, 1, 1, 8, 8)),
        ("cell 64->128 8", Conv::new(64, 128, 3, 1, 1, 8, 8)),
        ("ref64 it bu 8", Conv::new(256, 512, 3, 1, 1, 8, 8)),
        // The convrnns zoo's 224-px backbones: maps of 28, 14 and 7 (rows not whole 8-column
        // tiles: lanes where the CPU has AVX-512F from 8 px, im2col + GEMM otherwise).
        ("zoo 128 28", Conv::new(128, 128, 3, 1, 1, 28, 28)),
        ("zoo 256 14", Conv::new(256, 256, 3, 1, 1, 14, 14)),
        ("zoo 512 7", Conv::new(512, 512, 3, 1, 1, 7, 7)),
        ("small 256 4", Conv::new(256, 256, 3, 1, 1, 4, 4)),
        ("small 512 2", Conv::new(512, 512, 3, 1, 1, 2, 2)),
        ("small 128 4", Conv::new(128, 128, 3, 1, 1, 4, 4)),
        // Top-downs of other widths, for the phases' limits (`nophase` against the default).
        ("td 32<-32 16", Conv::transposed(32, 32, 3, 2, 1, 1, 16, 16)),
        ("td 64<-64 16", Conv::transposed(64, 64, 3, 2, 1, 1, 16, 16)),
        ("td 64<-32 32", Conv::transposed(64, 32, 3, 2, 1, 1, 32, 32)),
        (
            "td 128<-64 16",
            Conv::transposed(128, 64, 3, 2, 1, 1, 16, 16),
        ),
        ("td 16<-8 32", Conv::transposed(16, 8, 3, 2, 1, 1, 32, 32)),
        // Maps narrower than 8 (batch-interleaved direct, or im2col + GEMM with `general`):
        // the CPU ConvRNNs' conv4 and conv5 cells.
        ("cell 32->32 4x4", Conv::new(32, 32, 3, 1, 1, 4, 4)),
        ("cell 64->64 4x4", Conv::new(64, 64, 3, 1, 1, 4, 4)),
        ("cell 32->64 2x2", Conv::new(32, 64, 3, 1, 1, 2, 2)),
        ("cell 128->128 2x2", Conv::new(128, 128, 3, 1, 1, 2, 2)),
        // The reciprocal gated cells' 1 × 1 convolutions and 2 × 2 ones (TensorFlow's `same`:
        // one more zero after the last row and column) on 16- and 8-px maps — padded by the
        // engine (`with_pad_end`), and as before on an explicitly padded 17- and 9-px input.
        ("rgc 1x1 32 16", Conv::new(32, 32, 1, 1, 0, 16, 16)),
        ("rgc 1x1 32 8", Conv::new(32, 32, 1, 1, 0, 8, 8)),
        ("rgc 1x1 96->32 8", Conv::new(96, 32, 1, 1, 0, 8, 8)),
        // 1 × 1 layers of wider channels (`Conv::pointwise`'s measurements; the convrnns zoo's
        // 28-px maps).
        ("1x1 128 8", Conv::new(128, 128, 1, 1, 0, 8, 8)),
        ("1x1 128 28", Conv::new(128, 128, 1, 1, 0, 28, 28)),
        ("1x1 256 4", Conv::new(256, 256, 1, 1, 0, 4, 4)),
        (
            "rgc 2x2 32 16",
            Conv::new(32, 32, 2, 1, 0, 16, 16).with_pad_end(1),
        ),
        (
            "rgc 2x2 32 8",
            Conv::new(32, 32, 2, 1, 0, 8, 8).with_pad_end(1),
        ),
        ("rgc 2x2 32 16 padded", Conv::new(32, 32, 2, 1, 0, 17, 17)),
        ("rgc 2x2 32 8 padded", Conv::new(32, 32, 2, 1, 0, 9, 9)),
    ];
    // `general` as the first argument: im2col + GEMM everywhere (the path before the direct
    // kernels), for side-by-side timings.
    // `narrow`: the direct kernels' 8-lane tiles only (no AVX-512).
    match std::env::args().nth(1).as_deref() {
        Some("general") => ventral_engine::conv::set_general_only(true),
        Some("narrow") => ventral_engine::kernel::set_wide_tiles(false),
        // `nophase`: stride-2 input gradients by im2col's product + col2im, not by phases.
        Some("nophase") => ventral_engine::conv::set_phase_data(false),
        _ => {}
    }
    // CONV_ONLY=<text>: only the layers whose name contains it.
    let only = std::env::var("CONV_ONLY").unwrap_or_default();
    // PASSES=<letters>: only these direct passes — f(orward), d(ata: input gradient),
    // w(eight gradient) — and no Winograd timings (for profilers: `perf record` one pass).
    let passes = std::env::var("PASSES").ok();
    let pass = |c: char| passes.as_ref().is_none_or(|p| p.contains(c));
    // NCHW=1: the batch-major entry points (`forward_nchw`, …: what the ConvRNNs' layers call
    // through burn) where the pass runs in place; the channel-major ones otherwise.
    let nchw = std::env::var_os("NCHW").is_some();
    for (name, g) in geos {
        if !name.contains(only.as_str()) {
            continue;
        }
        let x: Vec<f32> = (0..g.ci * b * g.hi * g.wi)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..g.co * g.ci * g.k * g.k)
            .map(|i| (i % 5) as f32 * 0.1)
            .collect();
        let dy: Vec<f32> = (0..g.co * b * g.ho * g.wo)
            .map(|i| (i % 3) as f32 * 0.1)
            .collect();
        let mut y = vec![0.0f32; dy.len()];
        let mut dx = vec![0.0f32; x.len()];
        let mut dw = vec![0.0f32; w.len()];
        let mut s = Scratch::with_bf16(std::env::var_os("BF16").is_some());
        // KEEP: weights packed once and kept, as the networks' passes do
        // (`Scratch::keep_packed_weights`; the bf16 AMX and the lanes kernels).
        if std::env::var_os("KEEP").is_some() {
            s = s.keep_packed_weights();
        }
        let mut best = [f64::MAX; 3];
        // WINO_ONLY: time the Winograd forward alone (for profilers).
        let direct_runs = if std::env::var_os("WINO_ONLY").is_some() {
            0
        } else {
            20
        };
        let mut data_ops: Vec<(&str, f64)> = Vec::new();
        for _ in 0..direct_runs {
            if pass('f') {
                let t = Instant::now();
                if nchw && g.forward_in_place() {
                    g.forward_nchw(&w, &x, b, &mut y, false, &mut s);
                } else {
                    g.forward(&w, &x, b, &mut y, false, &mut s);
                }
                best[0] = best[0].min(t.elapsed().as_secs_f64());
            }
            if pass('d') {
                ventral_engine::profile::enable(true);
                let t = Instant::now();
                if nchw && g.data_in_place() {
                    g.backward_data_nchw(&w, &dy, b, &mut dx, &mut s);
                } else {
                    g.backward_data(&w, &dy, b, &mut dx, &mut s);
                }
                let el = t.elapsed().as_secs_f64();
                if el < best[1] {
                    best[1] = el;
                    data_ops = ventral_engine::profile::totals();
                }
                ventral_engine::profile::enable(false);
            }
            if pass('w') {
                let t = Instant::now();
                if nchw && g.weight_in_place() {
                    g.backward_weight_nchw(&x, &dy, b, &mut dw, &mut s);
                } else {
                    g.backward_weight(&x, &dy, b, &mut dw, &mut s);
                }
                best[2] = best[2].min(t.elapsed().as_secs_f64());
            }
        }
        if passes.is_some() {
            // Only the chosen direct passes (for profilers): no Winograd timings.
            let ms = |t: f64| if t == f64::MAX { f64::NAN } else { t * 1e3 };
            println!(
                "{name:16} fwd {:.2} ms, bwd_data {:.2} ms, wgrad {:.2} ms",
                ms(best[0]),
                ms(best[1]),
                ms(best[2])
            );
            continue;
        }
        // Winograd F(2×2, 3×3) forward where it applies, timed in the same run.
        let (mut wino, mut wino_w) = (f64::MAX, f64::MAX);
        let f = if std::env::var_os("WINO_F2").is_some() {
            ventral_engine::winograd::F2
        } else {
            ventral_engine::winograd::F4
        };
        if f.applies(&g) {
            let mut u = Vec::new();
            f.weights(&w, g.co, g.ci, &mut u);
            ventral_engine::winograd::forward(&f, &g, &u, &x, b, &mut y, false, &mut s);
            // WINO_PROFILE: the fastest of the 20 calls' time per kind of work.
            let prof = std::env::var_os("WINO_PROFILE").is_some();
            let mut best_ops: Vec<(&str, f64)> = Vec::new();
            for _ in 0..20 {
                ventral_engine::profile::enable(prof);
                let t = Instant::now();
                ventral_engine::winograd::forward(&f, &g, &u, &x, b, &mut y, false, &mut s);
                wino = wino.min(t.elapsed().as_secs_f64());
                for (i, (n, t)) in ventral_engine::profile::totals().into_iter().enumerate() {
                    match best_ops.get_mut(i) {
                        Some(e) => e.1 = e.1.min(t),
                        None => best_ops.push((n, t)),
                    }
                }
            }
            let mut dw = vec![0.0f32; w.len()];
            let mut best_w: Vec<(&str, f64)> = Vec::new();
            for _ in 0..10 {
                ventral_engine::profile::enable(prof);
                let t = Instant::now();
                ventral_engine::winograd::backward_weight(&f, &g, &x, &dy, b, &mut dw, &mut s);
                wino_w = wino_w.min(t.elapsed().as_secs_f64());
                for (i, (n, t)) in ventral_engine::profile::totals().into_iter().enumerate() {
                    match best_w.get_mut(i) {
                        Some(e) => e.1 = e.1.min(t),
                        None => best_w.push((n, t)),
                    }
                }
            }
            ventral_engine::profile::enable(false);
            if prof {
                for (what, ops) in [("forward", &best_ops), ("weight gradient", &best_w)] {
                    let t = ops_line(ops);
                    println!("  {name} winograd {what}, fastest per kind: {}", t);
                }
            }
        }
        // A top-down (transposed) convolution's forward (`g`'s input gradient) by Winograd
        // F(4 × 4, 2 × 2) on its phases, as inference passes run it.
        if ventral_engine::upsample::applies(&g) {
            use ventral_engine::upsample as up;
            let mut u = Vec::new();
            up::weights(&w, &g, &mut u);
            let prof = std::env::var_os("WINO_PROFILE").is_some();
            let (mut best_up, mut ops) = (f64::MAX, Vec::new());
            for _ in 0..20 {
                ventral_engine::profile::enable(prof);
                let t = Instant::now();
                up::forward(&g, &u, &dy, b, &mut dx, &mut s);
                let el = t.elapsed().as_secs_f64();
                let tot = ventral_engine::profile::totals();
                if el < best_up {
                    (best_up, ops) = (el, tot);
                }
            }
            ventral_engine::profile::enable(false);
            if prof {
                let t = ops_line(&ops);
                println!("  {name} upsample forward: {}", t);
            }
            println!(
                "{name:<16} top-down forward by F(4x4,2x2) phases {:.2} ms (exact: bwd_data below)",
                best_up * 1e3
            );
        }
        if std::env::var_os("DATA_PROFILE").is_some() {
            let t = ops_line(&data_ops);
            println!("  input gradient (fastest): {}", t);
        }
        println!(
            "{name:<16} fwd {:.2} ms, bwd_data {:.2} ms, wgrad {:.2} ms (direct {}, wgrad {}){}",
            best[0] * 1e3,
            best[1] * 1e3,
            best[2] * 1e3,
            g.uses_direct(),
            if !g.uses_direct_wgrad() {
                "by GEMM"
            } else if ventral_engine::kernel::wgrad_by_channels(g.co, 1) && !g.interleaved() {
                "direct by channels"
            } else {
                "direct by pixels"
            },
            if wino < f64::MAX {
                format!(
                    ", winograd F({}) fwd {:.2} ms, wgrad {:.2} ms",
                    f.m,
                    wino * 1e3,
                    wino_w * 1e3
                )
            } else {
                String::new()
            }
        );
    }
}

/// A profile's nonzero per-kind times, `kind 1.23 ms, …`.
fn ops_line(ops: &[(&str, f64)]) -> String {
    let t: Vec<String> = ops
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(n, s)| format!("{n} {:.2} ms", s * 1e3))
        .collect();
    t.join(", ")
}
