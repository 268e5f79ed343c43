//! Synthetic neural recordings with a known ground truth, for validating the metrics.
//!
//! A hidden network sees every stimulus: pixels are average-pooled to 8×8×3 and z-scored,
//! projected by a random matrix to `hidden` units, and (recurrent kind) iterated at 10 ms
//! steps `h(t) = relu(W_in x + W_rec h(t−1) + c)` from stimulus onset; the feedforward kind
//! keeps `h(t) = relu(W_in x + c)` (a random linear–nonlinear map). Each site of a region
//! reads the hidden state of its region's latency: signal `g·softplus(w·h(⌊(τ − latency)/10⌋))`
//! at bin start τ (0 before the latency), smoothed over bins by an exponential filter. Trials
//! add Poisson-like noise (variance proportional to the rate) scaled per site so that its
//! single-trial signal-to-noise ratio is `snr · 2^u`, u ~ U(−1, 1).
//!
//! The ground truth: per site and bin the reliability of the trial-averaged response,
//! `ρ = V_s / (V_s + σ²/R)` (V_s the signal variance over stimuli, σ² the mean noise variance
//! per trial, R repetitions) — what a split-half Spearman–Brown ceiling estimates — plus the
//! latencies and the generating features per step ([T, N, hidden], in `neural-fit` format).

use std::path::Path;

use rand::Rng;
use ventral_core::rng::stream;

use crate::assembly::{Assembly, Coord, CoordValues};
use crate::error::{NeuralError, Result, file_err};
use crate::stimulus_set::StimulusSet;

/// Generator settings.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub seed: u64,
    /// `true`: recurrent hidden network; `false`: random linear–nonlinear map.
    pub recurrent: bool,
    pub hidden: usize,
    /// (region, latency ms, sites).
    pub regions: Vec<(String, f64, usize)>,
    /// First bin start, bin width, number of bins (ms).
    pub bin_start: f64,
    pub bin_ms: f64,
    pub n_bins: usize,
    pub repetitions: usize,
    /// Median single-trial SNR (signal variance / noise variance).
    pub snr: f64,
    /// Time constant of the exponential smoothing over bins, ms (0 = none).
    pub smoothing_ms: f64,
    /// Strength of the object (category) signal in the hidden network's drive: a class
    /// embedding scaled per stimulus by a gain in [0.25, 1.75) (how easy the image is). In the
    /// recurrent network it builds up over steps (1 − 0.7^(t+1)), so easy images become
    /// decodable sooner; 0 = no category structure beyond the pixels.
    pub object_signal: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            recurrent: true,
            hidden: 64,
            regions: vec![("V4".into(), 90.0, 40), ("IT".into(), 110.0, 40)],
            bin_start: 70.0,
            bin_ms: 10.0,
            n_bins: 19,
            repetitions: 10,
            snr: 0.5,
            smoothing_ms: 15.0,
            object_signal: 1.0,
        }
    }
}

/// Generated recordings and their ground truth.
#[derive(Debug, Clone)]
pub struct Synth {
    pub assembly: Assembly,
    /// Generating features [T, N, hidden] (C order).
    pub features: Vec<f32>,
    pub steps: usize,
    pub hidden: usize,
    pub stimulus_ids: Vec<String>,
    /// Per site: (neuroid_id, region, snr, reliability per bin).
    pub sites: Vec<(String, String, f64, Vec<f64>)>,
    /// Per stimulus: the gain of its object signal (larger = easier).
    pub object_gain: Vec<f64>,
}

/// A standard normal draw (Box–Muller on 53-bit uniforms).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn uniform(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Stimuli of a BrainIO stimulus set as 8×8×3 pooled, z-scored pixel vectors.
pub fn pooled_pixels(set: &StimulusSet, ids: &[String]) -> Result<Vec<Vec<f64>>> {
    let zl = set
        .zip
        .as_ref()
        .map(|z| z.display().to_string())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(ids.len());
    set.for_each_file(ids, |_, fname, bytes| {
        let img = image::load_from_memory(&bytes)
            .map_err(|e| file_err(&zl, format!("{fname}: {e}")))?
            .to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut v = vec![0.0; 8 * 8 * 3];
        let mut cnt = vec![0.0; 64];
        for (x, y, p) in img.enumerate_pixels() {
            let cell = (y as usize * 8 / h.max(1)) * 8 + x as usize * 8 / w.max(1);
            cnt[cell] += 1.0;
            for c in 0..3 {
                v[cell * 3 + c] += p[c] as f64 / 255.0;
            }
        }
        for cell in 0..64 {
            for c in 0..3 {
                v[cell * 3 + c] /= f64::max(cnt[cell], 1.0);
            }
        }
        out.push(v);
        Ok(())
    })?;
    // z-score each pixel feature over stimuli.
    let d = 192;
    for j in 0..d {
        let m = out.iter().map(|v| v[j]).sum::<f64>() / out.len().max(1) as f64;
        let sd =
            (out.iter().map(|v| (v[j] - m).powi(2)).sum::<f64>() / out.len().max(1) as f64).sqrt();
        for v in &mut out {
            v[j] = if sd > 1e-12 { (v[j] - m) / sd } else { 0.0 };
        }
    }
    Ok(out)
}

/// Refuse, before allocating, sizes whose arrays overflow or exceed the memory available
/// (`MemAvailable`, or `VENTRAL_MAX_MEMORY`): the hidden network (`hidden × (inputs + hidden)`),
/// its features (`steps × stimuli × hidden`, float32), the sites' signals and the recordings
/// (`stimuli × repetitions × sites × bins`), float64.
fn check_size(cfg: &SynthConfig, ns: usize, d: usize, steps: usize) -> Result<()> {
    let (hd, nb, r) = (cfg.hidden, cfg.n_bins, cfg.repetitions);
    let sites = cfg
        .regions
        .iter()
        .try_fold(0usize, |a, x| a.checked_add(x.2));
    let need = (|| {
        let nk = sites?;
        let f64s = [
            hd.checked_mul(d.checked_add(hd)?)?,
            nk.checked_mul(ns)?.checked_mul(nb)?,
            ns.checked_mul(r)?.checked_mul(nk)?.checked_mul(nb)?,
        ]
        .iter()
        .try_fold(0usize, |a, &v| a.checked_add(v))?;
        let f32s = steps.checked_mul(ns)?.checked_mul(hd)?;
        f64s.checked_mul(8)?.checked_add(f32s.checked_mul(4)?)
    })();
    let what = || {
        format!(
            "hidden {hd}, {} sites, {ns} stimuli × {r} repetitions × {nb} bins, {steps} steps",
            sites.map_or_else(|| "too many".to_string(), |n| n.to_string())
        )
    };
    let Some(need) = need else {
        return Err(NeuralError::Invalid(format!(
            "neural-synth: the arrays' sizes overflow ({})",
            what()
        )));
    };
    match ventral_core::mem::exceeds(need as u64).map_err(NeuralError::Invalid)? {
        Some(m) => Err(NeuralError::Invalid(format!(
            "neural-synth: the recordings ({}) need {m}",
            what()
        ))),
        None => Ok(()),
    }
}

/// Generates recordings for the stimuli `ids` (with `object_names`) from pooled pixels `x`.
pub fn generate(
    cfg: &SynthConfig,
    ids: &[String],
    object_names: &[String],
    x: &[Vec<f64>],
) -> Result<Synth> {
    if ids.len() < 4
        || cfg.repetitions < 2
        || cfg.n_bins == 0
        || cfg.hidden == 0
        || cfg.snr.is_nan()
        || cfg.snr <= 0.0
        || cfg.object_signal.is_nan()
        || cfg.object_signal < 0.0
        || object_names.len() != ids.len()
        || x.len() != ids.len()
    {
        return Err(NeuralError::Invalid(
            "neural-synth needs ≥ 4 stimuli (with one object name and one input each), ≥ 2 repetitions, ≥ 1 bin, hidden ≥ 1, snr > 0 and object signal ≥ 0"
                .into(),
        ));
    }
    let (ns, hd, d) = (ids.len(), cfg.hidden, x[0].len());
    let min_lat = cfg
        .regions
        .iter()
        .map(|r| r.1)
        .fold(f64::INFINITY, f64::min);
    let last = cfg.bin_start + cfg.bin_ms * cfg.n_bins as f64;
    let steps = (((last - min_lat.min(cfg.bin_start)) / 10.0).ceil() as usize).max(1);
    check_size(cfg, ns, d, steps)?;
    // Hidden network.
    let mut rng = stream(cfg.seed, "synth-network", &[]);
    let w_in: Vec<f64> = (0..hd * d)
        .map(|_| normal(&mut rng) / (d as f64).sqrt())
        .collect();
    let c: Vec<f64> = (0..hd).map(|_| 0.5 * normal(&mut rng)).collect();
    let w_rec: Vec<f64> = (0..hd * hd)
        .map(|_| 0.9 * normal(&mut rng) / (hd as f64).sqrt())
        .collect();
    // Object signal: a class embedding per object, a gain per stimulus.
    let classes = crate::cv::codes(object_names);
    let n_classes = classes.iter().max().map_or(0, |m| m + 1);
    let mut orng = stream(cfg.seed, "synth-objects", &[]);
    let embed: Vec<f64> = (0..n_classes * hd).map(|_| normal(&mut orng)).collect();
    let object_gain: Vec<f64> = (0..ns).map(|_| 0.25 + 1.5 * uniform(&mut orng)).collect();
    let mut feats = vec![0f32; steps * ns * hd];
    for s in 0..ns {
        let drive: Vec<f64> = (0..hd)
            .map(|i| c[i] + (0..d).map(|j| w_in[i * d + j] * x[s][j]).sum::<f64>())
            .collect();
        let obj: Vec<f64> = (0..hd)
            .map(|i| cfg.object_signal * object_gain[s] * embed[classes[s] * hd + i])
            .collect();
        let mut h = vec![0.0; hd];
        for t in 0..steps {
            let ramp = if cfg.recurrent {
                1.0 - 0.7f64.powi(t as i32 + 1)
            } else {
                1.0
            };
            let next: Vec<f64> = (0..hd)
                .map(|i| {
                    let rec = if cfg.recurrent {
                        (0..hd).map(|j| w_rec[i * hd + j] * h[j]).sum::<f64>()
                    } else {
                        0.0
                    };
                    (drive[i] + ramp * obj[i] + rec).max(0.0)
                })
                .collect();
            h = next;
            for i in 0..hd {
                feats[(t * ns + s) * hd + i] = h[i] as f32;
            }
        }
    }
    // Sites.
    let nb = cfg.n_bins;
    let alpha = if cfg.smoothing_ms > 0.0 {
        (-cfg.bin_ms / cfg.smoothing_ms).exp()
    } else {
        0.0
    };
    let mut signal: Vec<Vec<f64>> = Vec::new(); // per site [S * B]
    let mut site_meta = Vec::new();
    let mut srng = stream(cfg.seed, "synth-sites", &[]);
    for (region, lat, n) in &cfg.regions {
        for k in 0..*n {
            let w: Vec<f64> = (0..hd)
                .map(|_| normal(&mut srng) / (hd as f64).sqrt())
                .collect();
            let gain = 1.0 + uniform(&mut srng);
            let baseline = 1.0 + 2.0 * uniform(&mut srng);
            let snr = cfg.snr * 2f64.powf(2.0 * uniform(&mut srng) - 1.0);
            let mut sig = vec![0.0; ns * nb];
            for s in 0..ns {
                let mut prev = 0.0;
                for b in 0..nb {
                    let tau = cfg.bin_start + cfg.bin_ms * b as f64;
                    let raw = if tau >= *lat {
                        let t = (((tau - lat) / 10.0).floor() as usize).min(steps - 1);
                        let z: f64 = (0..hd)
                            .map(|i| w[i] * feats[(t * ns + s) * hd + i] as f64)
                            .sum();
                        gain * (1.0 + z.exp()).ln()
                    } else {
                        0.0
                    };
                    prev = alpha * prev + (1.0 - alpha) * raw;
                    sig[s * nb + b] = prev;
                }
            }
            signal.push(sig);
            site_meta.push((format!("{region}_{k:03}"), region.clone(), snr, baseline));
        }
    }
    // Noise scale per site: σ² = max over bins of signal variance / snr (one scale per site,
    // so reliability follows the signal's time course).
    let nk = signal.len();
    let r_ = cfg.repetitions;
    let mut data = vec![0.0; ns * r_ * nk * nb];
    let mut sites = Vec::with_capacity(nk);
    let mut nrng = stream(cfg.seed, "synth-noise", &[]);
    for (k, sig) in signal.iter().enumerate() {
        let (ref nid, ref region, snr, baseline) = site_meta[k];
        let var_s: Vec<f64> = (0..nb)
            .map(|b| {
                let m = (0..ns).map(|s| sig[s * nb + b]).sum::<f64>() / ns as f64;
                (0..ns).map(|s| (sig[s * nb + b] - m).powi(2)).sum::<f64>() / ns as f64
            })
            .collect();
        let sigma2 = var_s.iter().fold(0.0f64, |a, &v| a.max(v)).max(1e-12) / snr;
        let mut reliability = Vec::with_capacity(nb);
        for b in 0..nb {
            let mean_rate = (0..ns).map(|s| baseline + sig[s * nb + b]).sum::<f64>() / ns as f64;
            // Per-trial noise variance σ² · rate / mean rate: its mean over stimuli is σ².
            for s in 0..ns {
                let rate = baseline + sig[s * nb + b];
                let sd = (sigma2 * rate / mean_rate).sqrt();
                for rep in 0..r_ {
                    data[((s * r_ + rep) * nk + k) * nb + b] = rate + sd * normal(&mut nrng);
                }
            }
            reliability.push(var_s[b] / (var_s[b] + sigma2 / r_ as f64));
        }
        sites.push((nid.clone(), region.clone(), snr, reliability));
    }
    let np = ns * r_;
    let mut coords = std::collections::BTreeMap::new();
    let pres = |v: CoordValues| Coord {
        dim: "presentation".into(),
        values: v,
    };
    coords.insert(
        "stimulus_id".into(),
        pres(CoordValues::Str(
            (0..np).map(|p| ids[p / r_].clone()).collect(),
        )),
    );
    coords.insert(
        "object_name".into(),
        pres(CoordValues::Str(
            (0..np).map(|p| object_names[p / r_].clone()).collect(),
        )),
    );
    coords.insert(
        "repetition".into(),
        pres(CoordValues::Int((0..np).map(|p| (p % r_) as i64).collect())),
    );
    let neu = |v: CoordValues| Coord {
        dim: "neuroid".into(),
        values: v,
    };
    coords.insert(
        "neuroid_id".into(),
        neu(CoordValues::Str(
            sites.iter().map(|s| s.0.clone()).collect(),
        )),
    );
    coords.insert(
        "region".into(),
        neu(CoordValues::Str(
            sites.iter().map(|s| s.1.clone()).collect(),
        )),
    );
    let tb = |v: CoordValues| Coord {
        dim: "time_bin".into(),
        values: v,
    };
    coords.insert(
        "time_bin_start".into(),
        tb(CoordValues::Float(
            (0..nb)
                .map(|b| cfg.bin_start + cfg.bin_ms * b as f64)
                .collect(),
        )),
    );
    coords.insert(
        "time_bin_end".into(),
        tb(CoordValues::Float(
            (0..nb)
                .map(|b| cfg.bin_start + cfg.bin_ms * (b + 1) as f64)
                .collect(),
        )),
    );
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert(
        "identifier".into(),
        format!("ventral.synth.seed{}", cfg.seed),
    );
    attrs.insert("stimulus_set_identifier".into(), "ventral.stimuli".into());
    Ok(Synth {
        assembly: Assembly {
            dims: vec!["presentation".into(), "neuroid".into(), "time_bin".into()],
            shape: vec![np, nk, nb],
            data,
            coords,
            attrs,
        },
        features: feats,
        steps,
        hidden: hd,
        stimulus_ids: ids.to_vec(),
        sites,
        object_gain,
    })
}

/// Reads `DIR/stimulus_set/stimulus_set.{csv,zip}` (the layout `ventral stimuli` writes) or
/// `DIR/*.csv` + `DIR/*.zip`.
pub fn open_stimulus_set(dir: &Path) -> Result<StimulusSet> {
    let nested = dir.join("stimulus_set").join("stimulus_set.csv");
    if nested.exists() {
        return StimulusSet::read(
            &nested,
            Some(&dir.join("stimulus_set").join("stimulus_set.zip")),
        );
    }
    let list = std::fs::read_dir(dir).map_err(|e| file_err(dir.display(), e))?;
    let files: Vec<_> = list.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    let csv = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "csv"));
    let zip = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "zip"));
    match (csv, zip) {
        (Some(c), Some(z)) => StimulusSet::read(c, Some(z)),
        _ => Err(file_err(
            dir.display(),
            "no stimulus set: expected stimulus_set/stimulus_set.csv + .zip or a .csv and a .zip",
        )),
    }
}

/// Settings of [`behaviour_trials`].
#[derive(Debug, Clone)]
pub struct BehaviourConfig {
    pub seed: u64,
    /// Generating-feature step the subject reads.
    pub step: usize,
    /// Trials per (image, distractor) pair.
    pub trials_per_pair: usize,
    /// Evidence gain β of the subject.
    pub gain: f64,
}

/// Two-alternative trials of a synthetic subject that reads the generating features: at step
/// `step` the features are z-scored per unit over images, each object's centroid taken over
/// its images, and the subject's evidence for object k on image i is
/// `e_ik = −β ‖ẑ_i − μ_k‖² / units`; offered the sample o and the distractor c it picks o with
/// probability `σ(e_io − e_ic)` — per-image difficulty the generating features carry exactly.
/// Every (image, other object) pair gets `trials_per_pair` trials, drawn from the named stream
/// `synth-behaviour` at the image's index. `features` is [T, N, units].
pub fn behaviour_trials(
    features: &[f32],
    steps: usize,
    units: usize,
    ids: &[String],
    objects: &[String],
    cfg: &BehaviourConfig,
) -> Result<crate::behaviour::Trials> {
    let n = ids.len();
    if cfg.step >= steps {
        return Err(NeuralError::Invalid(format!(
            "behaviour: the subject's step {} is past the generating network's last step {} (--behaviour-step 0 to {})",
            cfg.step,
            steps.saturating_sub(1),
            steps.saturating_sub(1)
        )));
    }
    if features.len() != steps * n * units || objects.len() != n {
        return Err(NeuralError::Invalid(format!(
            "behaviour: step {} of {steps}, {} feature values for {n} stimuli × {units} units",
            cfg.step,
            features.len()
        )));
    }
    let mut names: Vec<String> = objects.to_vec();
    names.sort();
    names.dedup();
    if names.len() < 2 || names.iter().any(|s| s.is_empty()) {
        return Err(NeuralError::Invalid(
            "behaviour: the stimuli need an object_name and at least two objects".into(),
        ));
    }
    let obj: Vec<usize> = objects
        .iter()
        .map(|o| names.iter().position(|x| x == o).unwrap_or(0))
        .collect();
    let x = &features[cfg.step * n * units..(cfg.step + 1) * n * units];
    let mut z = vec![0.0f64; n * units];
    for j in 0..units {
        let m = (0..n).map(|i| f64::from(x[i * units + j])).sum::<f64>() / n as f64;
        let v = (0..n)
            .map(|i| (f64::from(x[i * units + j]) - m).powi(2))
            .sum::<f64>()
            / n as f64;
        let sd = if v > 0.0 { v.sqrt() } else { 1.0 };
        for i in 0..n {
            z[i * units + j] = (f64::from(x[i * units + j]) - m) / sd;
        }
    }
    let k = names.len();
    let mut mu = vec![0.0f64; k * units];
    let mut cnt = vec![0usize; k];
    for i in 0..n {
        cnt[obj[i]] += 1;
        for j in 0..units {
            mu[obj[i] * units + j] += z[i * units + j];
        }
    }
    for o in 0..k {
        for j in 0..units {
            mu[o * units + j] /= cnt[o].max(1) as f64;
        }
    }
    let mut t = crate::behaviour::Trials {
        stimulus_id: Vec::new(),
        sample_obj: Vec::new(),
        dist_obj: Vec::new(),
        choice: Vec::new(),
    };
    for i in 0..n {
        let e: Vec<f64> = (0..k)
            .map(|o| {
                let d2: f64 = (0..units)
                    .map(|j| (z[i * units + j] - mu[o * units + j]).powi(2))
                    .sum();
                -cfg.gain * d2 / units as f64
            })
            .collect();
        let mut rng = stream(cfg.seed, "synth-behaviour", &[i as u64]);
        let o = obj[i];
        for c in (0..k).filter(|&c| c != o) {
            let p = 1.0 / (1.0 + (e[c] - e[o]).exp());
            for _ in 0..cfg.trials_per_pair {
                t.stimulus_id.push(ids[i].clone());
                t.sample_obj.push(names[o].clone());
                t.dist_obj.push(names[c].clone());
                t.choice.push(
                    if uniform(&mut rng) < p {
                        &names[o]
                    } else {
                        &names[c]
                    }
                    .clone(),
                );
            }
        }
    }
    Ok(t)
}
