//! Time the engine alone (no burn, fast to rebuild) on the tiny and reference BLT shapes, with
//! the per-operation breakdown of `ventral_engine::profile`.
//!
//! ```sh
//! cargo run --release -p ventral-engine --example engine_profile -- tiny 16 4 10
//! ```
//! Arguments: model (`tiny`, `ref64`, `ref64_mult`), batch, time steps, iterations.

use std::time::Instant;

use ventral_engine::{BltNet, BltSpec, Tensors, profile};

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
        topdown: true,
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
    let net = BltNet::new(&spec, &params)?;
    let x: Vec<f32> = (0..batch * 3 * 64 * 64).map(|_| rnd() * 2.0).collect();
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let weights = vec![1.0; steps];
    let (mut t_train, mut t_infer) = (0.0, 0.0);
    let (mut ops_train, mut ops_infer): (Vec<f64>, Vec<f64>) = (vec![0.0; 9], vec![0.0; 9]);
    let mut names = Vec::new();
    for it in 0..iters + 1 {
        let timed = it > 0;
        profile::enable(timed);
        let t = Instant::now();
        std::hint::black_box(net.loss_and_grad(&x, &labels, &weights)?);
        if timed {
            t_train += t.elapsed().as_secs_f64();
            for (a, (n, v)) in ops_train.iter_mut().zip(profile::totals()) {
                *a += v;
                if names.len() < 9 {
                    names.push(n);
                }
            }
        }
        profile::enable(timed);
        let t = Instant::now();
        std::hint::black_box(net.forward(&x, batch, false)?);
        if timed {
            t_infer += t.elapsed().as_secs_f64();
            for (a, (_, v)) in ops_infer.iter_mut().zip(profile::totals()) {
                *a += v;
            }
        }
    }
    profile::enable(false);
    let n = iters as f64;
    println!(
        "{model} T={steps} batch {batch}: train {:.1} img/s ({:.4} s), infer {:.1} img/s ({:.4} s), threads {}",
        batch as f64 * n / t_train,
        t_train / n,
        batch as f64 * n / t_infer,
        t_infer / n,
        rayon::current_num_threads()
    );
    println!("{:<28} {:>10} {:>10}", "op (ms per pass)", "train", "infer");
    for (i, name) in names.iter().enumerate() {
        println!(
            "{:<28} {:>10.2} {:>10.2}",
            name,
            1e3 * ops_train[i] / n,
            1e3 * ops_infer[i] / n
        );
    }
    println!(
        "{:<28} {:>10.2} {:>10.2}",
        "other",
        1e3 * (t_train - ops_train.iter().sum::<f64>()) / n,
        1e3 * (t_infer - ops_infer.iter().sum::<f64>()) / n
    );
    Ok(())
}
