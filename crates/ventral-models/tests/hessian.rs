//! Hessian-vector products by central differences of the engine's float32 gradients, against
//! the exact Hessian of the readout block: with every other parameter fixed, the loss is a
//! softmax regression on the GAP features r, whose Hessian is known in closed form,
//! H_WW·V = Σₜ wₜ · mean_i ((diag(p) − p pᵀ) V rᵢ) rᵢᵀ, computed here in float64 from the
//! engine's own forward outputs. The error is printed per ε (the measurement behind the
//! default ε of `ventral hessian`).

#![allow(clippy::unwrap_used)]

mod common;

use burn::tensor::Device;
use common::normals;
use ventral_models::config::BltConfig;
use ventral_models::hessian::HvpProblem;
use ventral_models::{Blt, fast, params};

#[test]
fn readout_block_matches_the_exact_hessian() {
    let mut cfg = BltConfig::reference64(3);
    cfg.num_classes = 5;
    cfg.channels = vec![4, 6, 8, 10, 12];
    let device = Device::flex();
    let model = params::init_reference(Blt::init(&cfg, &device).unwrap(), 3);
    let p = fast::parameters(&model).unwrap();
    let (batch, s) = (8usize, cfg.image_size);
    let x = normals(batch * 3 * s * s, 11);
    let labels: Vec<usize> = (0..batch).map(|i| i % cfg.num_classes).collect();
    let weights = vec![0.5, 0.75, 1.0];
    let spec = fast::spec(&cfg);

    // Exact H_WW·V from the forward outputs.
    let net = fast::BltNet::new(&spec, &p).unwrap();
    let out = net.forward(&x, batch, false).unwrap();
    let c = cfg.num_classes;
    let d = out.representations[0].len() / batch;
    let n_w = p["readout.weight"].len();
    assert_eq!(n_w, c * d);
    let vw: Vec<f64> = normals(n_w, 5).iter().map(|&v| v as f64).collect();
    let mut exact = vec![0.0f64; n_w];
    for (t, w) in weights.iter().enumerate() {
        for i in 0..batch {
            let r: Vec<f64> = out.representations[t][i * d..(i + 1) * d]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let pr: Vec<f64> = out.log_probs[t][i * c..(i + 1) * c]
                .iter()
                .map(|&v| (v as f64).exp())
                .collect();
            let a: Vec<f64> = (0..c)
                .map(|k| (0..d).map(|j| vw[k * d + j] * r[j]).sum())
                .collect();
            let pa: f64 = pr.iter().zip(&a).map(|(x, y)| x * y).sum();
            for k in 0..c {
                let b = pr[k] * (a[k] - pa);
                for j in 0..d {
                    exact[k * d + j] += w * b * r[j] / batch as f64;
                }
            }
        }
    }

    // The same product by central differences, v = 0 outside the readout.
    let mut prob = HvpProblem::new(spec, &p, vec![(x, labels)], weights).unwrap();
    let names = prob.names().to_vec();
    let mut v = vec![0.0f64; prob.dim()];
    let mut at = 0;
    let mut range = 0..0;
    for (name, n) in &names {
        if name == "readout.weight" {
            v[at..at + n].copy_from_slice(&vw);
            range = at..at + n;
        }
        at += n;
    }
    let exact_norm = exact.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut best = f64::INFINITY;
    for eps in [1.0, 1e-1, 1e-2, 1e-3, 1e-4] {
        let hv = prob.hvp(&v, eps).unwrap();
        let err = hv[range.clone()]
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt()
            / exact_norm;
        println!("eps {eps:e}: relative error of H·v (readout block) {err:.3e}");
        if eps == ventral_models::hessian::DEFAULT_EPS {
            assert!(err < 1e-3, "default eps: relative error {err}");
        }
        best = best.min(err);
    }
    assert!(best < 1e-2, "best relative error {best}");
    assert_eq!(prob.gradient_calls, 10);
}
