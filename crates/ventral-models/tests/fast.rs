//! The engine's BLT (`ventral_models::fast`) against burn's autodiff of the same module, over
//! every configuration switch: additive and multiplicative, faithful V1 or not, LayerNorm or
//! biases, classifier bias, lateral/top-down on and off, `lt_position = last`, one step, odd
//! batch, both kernel sizes. Outputs, representations, areas and every gradient must agree to
//! float32 round-off. The reference is burn's autodiff in float64 (so that burn's own float32
//! round-off does not count against the engine); the yardstick for "float32 round-off" is burn's
//! own float32 autodiff of the same model and batch: the engine may be at most a small factor
//! less accurate than it (a fixed 1e-4 bound alone is flaky: a first-layer bias gradient is a
//! sum of terms that LayerNorm makes cancel, so its relative round-off depends on the input).
//! Inputs are generated from the case's seed, so every run checks the same numbers.

#![allow(clippy::unwrap_used)]

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use ventral_models::config::{BltConfig, Interaction, LtPosition, NormKind};
use ventral_models::{Blt, fast, params};

mod common;
use common::{max_rel, normals};

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Casts every parameter to float64.
struct ToF64;

impl ModuleMapper for ToF64 {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        p.map(|t| t.cast(FloatDType::F64).detach().require_grad())
    }
}

fn f32s<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(FloatDType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Burn autodiff of the weighted per-step loss; returns the outputs and the named gradients.
fn burn_loss_grads(
    model: &Blt,
    x: Tensor<4>,
    y: &Tensor<1, Int>,
    batch: usize,
    weights: &[f64],
) -> (ventral_models::ModelOutput, params::NamedTensors) {
    let out = model.forward_areas(x, true);
    let mut loss: Option<Tensor<1>> = None;
    for (t, lp) in out.log_probs.iter().enumerate() {
        let l = lp
            .clone()
            .gather(1, y.clone().reshape([batch, 1]))
            .mean()
            .neg()
            * weights[t];
        loss = Some(match loss {
            None => l,
            Some(a) => a + l,
        });
    }
    let grads = loss.unwrap().backward();
    let g = params::gradients(model, &grads);
    (out, g)
}

fn tiny(t: usize) -> BltConfig {
    let mut c = BltConfig::reference64(t);
    c.num_classes = 5;
    c.channels = vec![4, 6, 8, 10, 12];
    c
}

fn check(cfg: &BltConfig, batch: usize, seed: u64, weights: &[f64]) {
    let device = Device::flex().autodiff();
    let mut model = params::init_reference(Blt::init(cfg, &device).unwrap(), seed);
    // Non-trivial LayerNorm affine parameters, so that their gradients are tested.
    let mut named = params::export(&model);
    for (name, (_, v)) in named.iter_mut() {
        if name.contains("_ln.") {
            for (i, x) in v.iter_mut().enumerate() {
                *x += 0.1 * ((i as f32) * 0.7 + name.len() as f32).sin();
            }
        }
    }
    model = params::load_named(model, &named).unwrap();
    let s = cfg.image_size;
    let xv = normals(batch * 3 * s * s, seed);
    let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [batch, 3, s, s]), &device);
    let labels: Vec<usize> = (0..batch)
        .map(|i| (i * 3 + seed as usize) % cfg.num_classes)
        .collect();
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(
            labels.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            [batch],
        ),
        &device,
    );
    let p = fast::parameters(&model);
    let (_, burn32) = burn_loss_grads(&model, x.clone(), &y, batch, weights);
    let model = model.map(&mut ToF64);
    let (out, ours) = burn_loss_grads(&model, x.cast(FloatDType::F64), &y, batch, weights);

    let net = fast::BltNet::new(&fast::spec(cfg), &p).unwrap();
    let (eo, nll, eg) = net.loss_and_grad(&xv, &labels, weights).unwrap();
    let fo = net.forward(&xv, batch, true).unwrap();
    let label = format!("{cfg:?} batch {batch}");
    for t in 0..cfg.timesteps {
        let lp = f32s(out.log_probs[t].clone());
        let rep = f32s(out.representations[t].clone());
        assert!(
            max_rel(&eo.log_probs[t], &lp) < 2e-5,
            "{label}: log_probs t={t}"
        );
        assert!(
            max_rel(&fo.log_probs[t], &lp) < 2e-5,
            "{label}: inference log_probs t={t}"
        );
        assert!(
            max_rel(&eo.representations[t], &rep) < 2e-5,
            "{label}: reps t={t}"
        );
        for (j, (name, a)) in out.areas[t].iter().enumerate() {
            let av = f32s(a.clone());
            assert!(
                max_rel(&fo.areas[t][j], &av) < 2e-5,
                "{label}: area {name} t={t}"
            );
        }
        let expect: f64 = -labels
            .iter()
            .enumerate()
            .map(|(b, &y)| lp[b * cfg.num_classes + y] as f64)
            .sum::<f64>()
            / batch as f64;
        assert!((nll[t] - expect).abs() < 1e-5, "{label}: nll t={t}");
    }
    let expected_names: Vec<String> = ours.keys().cloned().collect();
    for name in &expected_names {
        let (_, g) = &ours[name];
        let e = eg
            .get(name)
            .unwrap_or_else(|| panic!("{label}: engine has no gradient for {name}"));
        let r = rel_l2(e, g);
        let r32 = rel_l2(&burn32[name].1, g);
        assert!(
            r < 1e-4f64.max(8.0 * r32),
            "{label}: gradient {name}: rel L2 {r} (burn float32: {r32})"
        );
    }
    // Parameters burn leaves without gradient (unused, e.g. faithful V1's lateral) get none.
    let engine_names: Vec<String> = eg.keys().cloned().collect();
    assert_eq!(
        engine_names, expected_names,
        "{label}: parameters with a gradient"
    );
}

#[test]
fn engine_matches_burn_autodiff_on_every_switch() {
    let w4 = [1.0, 0.5, 2.0, 1.0];
    let mut cases = Vec::new();
    for inter in [Interaction::Additive, Interaction::Multiplicative] {
        for faithful in [true, false] {
            let mut c = tiny(4);
            c.interaction = inter;
            c.faithful_v1 = faithful;
            cases.push(c);
        }
    }
    let mut c = tiny(4);
    c.norm = NormKind::None;
    c.classifier_bias = true;
    c.faithful_v1 = false;
    cases.push(c);
    let mut c = tiny(4);
    c.norm = NormKind::None;
    c.interaction = Interaction::Multiplicative;
    cases.push(c);
    let mut c = tiny(4);
    c.topdown = false;
    cases.push(c);
    let mut c = tiny(4);
    c.lateral = false;
    c.faithful_v1 = false;
    cases.push(c);
    let mut c = tiny(4);
    c.lateral = false;
    c.topdown = false;
    cases.push(c);
    let mut c = tiny(4);
    c.lt_position = LtPosition::Last;
    cases.push(c);
    for (i, c) in cases.iter().enumerate() {
        check(c, 3, i as u64, &w4);
    }
    check(&tiny(1), 2, 7, &[1.0]);
    let mut c = tiny(3);
    c.image_size = 128;
    c.faithful_v1 = false;
    c.interaction = Interaction::Multiplicative;
    check(&c, 1, 9, &[0.3, 1.0, 1.0]);
}
