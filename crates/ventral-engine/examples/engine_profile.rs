//! Time the engine alone (no burn, fast to rebuild) on the tiny and reference BLT shapes, with
//! the per-operation breakdown of `ventral_engine::profile`.
//!
//! ```sh
//! cargo run --release -p ventral-engine --example engine_profile -- tiny 16 4 10
//! ```
//! Arguments: model (`tiny`, `ref64`, `ref64_mult`), batch, time steps, iterations.
//! `WINOGRAD=1`: also the Winograd paths, alternated with the exact ones. `NO_TOPDOWN=1`: the
//! same network without its top-down convolutions (what they cost, by difference).

use std::time::Instant;

use ventral_engine::{BltNet, BltSpec, Tensors, profile};

/// A pass's time and its per-operation totals.
type Timed = (f64, Vec<(&'static str, f64)>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // VENTRAL_GLIBC_DEFAULTS=1: leave malloc as it is; VENTRAL_GENERAL_CONV=1: im2col + GEMM only.
    if std::env::var_os("VENTRAL_GLIBC_DEFAULTS").is_none() {
        ventral_engine::memory::keep_freed_memory();
    }
    ventral_engine::conv::set_general_only(std::env::var_os("VENTRAL_GENERAL_CONV").is_some());
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map(String::as_str).unwrap_or("tiny");
    let num = |i: usize, d: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (batch, steps, iters) = (num(2, 16), num(3, 4), num(4, 10));
    let (channels, classes, mult) = match model {
        "tiny" => ([8, 8, 16, 16, 32], 8, true),
        "ref64" => ([32, 64, 128, 256, 512], 100, false),
        "ref64_mult" => ([32, 64, 128, 256, 512], 100, true),
        other => return Err(format!("unknown model {other}").into()),
    };
    let spec = BltSpec {
        image_size: 64,
        num_classes: classes,
        timesteps: steps,
        channels,
        kernel: 3,
        lateral: true,
        topdown: std::env::var_os("NO_TOPDOWN").is_none(),
        lateral_gap: true,
        multiplicative: mult,
        layer_norm: true,
        classifier_bias: false,
        faithful_v1: true,
    };
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let params: Tensors = spec
        .parameters()
        .into_iter()
        .map(|(n, sh)| {
            let len: usize = sh.iter().product();
            let fan: usize = sh.iter().skip(1).product::<usize>().max(1);
            let scale = if n.ends_with("_ln.weight") {
                0.0
            } else {
                (3.0 / fan as f32).sqrt()
            };
            let v = (0..len)
                .map(|_| {
                    if n.ends_with("_ln.weight") {
                        1.0
                    } else {
                        rnd() * 2.0 * scale
                    }
                })
                .collect();
            let _ = scale;
            (n, v)
        })
        .collect();
    let x: Vec<f32> = (0..batch * 3 * 64 * 64).map(|_| rnd() * 2.0).collect();
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let weights = vec![1.0; steps];
    // The exact paths, then (WINOGRAD=1) the Winograd paths, alternated within each iteration
    // so that both see the same machine; the fastest iteration of each is reported, with its
    // per-operation times. Training builds its net per step (as `ventral train` does, so
    // transformed weights are not reused); inference keeps one net (as `ventral record` does).
    let variants: &[bool] = if std::env::var_os("WINOGRAD").is_some() {
        &[false, true]
    } else {
        &[false]
    };
    let mut infer_nets = Vec::new();
    for &w in variants {
        let mut net = BltNet::new(&spec, &params)?;
        net.set_winograd(w);
        infer_nets.push(net);
    }
    // Per variant and pass (train, infer): fastest time and its op totals.
    let mut best: Vec<[Timed; 2]> = variants
        .iter()
        .map(|_| [(f64::MAX, Vec::new()), (f64::MAX, Vec::new())])
        .collect();
    for it in 0..iters + 1 {
        for (v, &w) in variants.iter().enumerate() {
            let mut net = BltNet::new(&spec, &params)?;
            net.set_winograd_training(w);
            profile::enable(true);
            let t = Instant::now();
            std::hint::black_box(net.loss_and_grad(&x, &labels, &weights)?);
            let tt = t.elapsed().as_secs_f64();
            let ops_t = profile::totals();
            profile::enable(true);
            let t = Instant::now();
            std::hint::black_box(infer_nets[v].forward(&x, batch, false)?);
            let ti = t.elapsed().as_secs_f64();
            let ops_i = profile::totals();
            if it > 0 {
                for (slot, (t, ops)) in best[v].iter_mut().zip([(tt, ops_t), (ti, ops_i)]) {
                    if t < slot.0 {
                        *slot = (t, ops);
                    }
                }
            }
        }
    }
    profile::enable(false);
    for (v, &w) in variants.iter().enumerate() {
        let [(tt, ops_t), (ti, ops_i)] = &best[v];
        println!(
            "{model}{} T={steps} batch {batch} (fastest of {iters}): train {:.1} img/s ({:.4} s), infer {:.1} img/s ({:.4} s), threads {}",
            if w { " Winograd" } else { "" },
            batch as f64 / tt,
            tt,
            batch as f64 / ti,
            ti,
            rayon::current_num_threads()
        );
        println!("{:<28} {:>10} {:>10}", "op (ms per pass)", "train", "infer");
        for ((name, a), (_, b)) in ops_t.iter().zip(ops_i) {
            println!("{:<28} {:>10.2} {:>10.2}", name, 1e3 * a, 1e3 * b);
        }
        let sum = |o: &[(&str, f64)]| o.iter().map(|(_, v)| v).sum::<f64>();
        println!(
            "{:<28} {:>10.2} {:>10.2}",
            "other",
            1e3 * (tt - sum(ops_t)),
            1e3 * (ti - sum(ops_i))
        );
    }
    Ok(())
}
