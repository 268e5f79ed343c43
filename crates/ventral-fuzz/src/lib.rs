//! In-repo fuzzing of every parser and configuration reader of ventral (issue 13).
//!
//! No coverage-guided fuzzer builds on stable Rust (cargo-fuzz and libFuzzer need nightly's
//! `-Zsanitizer`; AFL++ needs its own compiler wrappers), so this is a **seeded in-process
//! mutation loop**: each target starts from a checked-in seed corpus (`fuzz/corpus/<target>/`,
//! made by `ventral-fuzz seed` with ventral's own writers), mutates inputs with a named ChaCha
//! stream (bit flips, byte and integer substitutions with boundary values, numeric-text
//! replacements, insertions, deletions, duplications, splices between corpus entries,
//! truncation), writes them where the real reader expects its files, and calls the reader the
//! CLI calls. An input whose error message is new (digits masked) joins the corpus — a cheap
//! stand-in for coverage that keeps the search moving past the first check.
//!
//! A *finding* is a panic (caught and saved with its message and location) or an input that
//! takes longer than the slow limit. Aborts (an allocation failure, a stack overflow) end the
//! process: `scripts/fuzz.sh` then saves the input left in the work directory. Every finding
//! fixed becomes a regression input (`fuzz/regressions/<target>/`) that the test suite replays.
//!
//! Multi-file inputs (a packed split, a stimulus set, a config with `--set` lines) are one byte
//! string cut at [`SEP`] into the target's files, so mutations can also drop or merge files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

/// Separator between the files of a multi-file input.
pub const SEP: &[u8] = b"\n\x00--ventral-fuzz-next-file--\x00\n";

/// What one target reads.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// File names the input is cut into, in order (`SEP` between them).
    pub files: &'static [&'static str],
    /// What the reader is (for the report).
    pub what: &'static str,
    run: fn(&Path) -> Result<(), String>,
}

impl Target {
    /// Run the reader on the files in `dir`; `Err` is a handled rejection (fine), a panic is a
    /// finding.
    pub fn run(&self, dir: &Path) -> Result<(), String> {
        (self.run)(dir)
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn t_npy(d: &Path) -> Result<(), String> {
    let a = ventral_core::npy::read_npy(&d.join("x.npy")).map_err(err)?;
    let _ = (a.to_f64(), a.to_i64(), a.to_strings());
    Ok(())
}

fn t_npz(d: &Path) -> Result<(), String> {
    let mut z = ventral_core::npy::NpzReader::open(&d.join("x.npz")).map_err(err)?;
    for n in z.names() {
        let a = z.read(&n).map_err(err)?;
        let _ = (a.to_f32(), a.to_strings());
    }
    Ok(())
}

/// Weights read as every reader of weights does, each tensor converted.
fn read_weights(path: &Path) -> Result<(), String> {
    let st = ventral_core::safetensors::SafeTensors::read(path).map_err(err)?;
    let names: Vec<String> = st.names().map(String::from).collect();
    for n in names {
        if st.f32(&n).is_err() {
            let _ = st.i64(&n);
        }
    }
    Ok(())
}

fn t_safetensors(d: &Path) -> Result<(), String> {
    read_weights(&d.join("weights.safetensors"))
}

fn t_pth(d: &Path) -> Result<(), String> {
    read_weights(&d.join("weights.pth"))
}

fn t_tf_checkpoint(d: &Path) -> Result<(), String> {
    read_weights(&d.join("model.ckpt"))
}

/// A convrnns checkpoint's tensors mapped onto the ConvRNN they belong to: the CLI test's
/// scaled `simplernn_shallow` (original code, `scripts/convrnns_tf_forward.py small`) with a
/// threshold decoder, built once; the mapped tensors loaded into it. The tensors come as
/// safetensors under TensorFlow's names (the seed: that checkpoint's, converted), so that
/// mutations reach the mapping rather than the bundle's CRCs (`tf_checkpoint` fuzzes those).
fn t_convrnns_checkpoint(d: &Path) -> Result<(), String> {
    use ventral_models::convrnn::{ConvRnn, tf_weights};
    // The CLI test's scaled simplernn_shallow (with a threshold decoder), and a scaled
    // ugrnn_intermediate with long-range feedback into its UGRNN and plain nodes (harbors of
    // several inputs); every checkpoint is mapped onto both.
    static NETS: std::sync::OnceLock<Result<Vec<ConvRnn>, String>> = std::sync::OnceLock::new();
    let nets = NETS.get_or_init(|| {
        let device = ventral_models::device::parse_device("cpu").map_err(err)?;
        let graphs = [
            (
                include_str!(
                    "../../ventral-cli/tests/fixtures/convrnns_checkpoint/simplernn_shallow.json"
                ),
                "simplernn_shallow.json",
            ),
            (
                include_str!(
                    "../../ventral-models/tests/fixtures/convrnns_tf_forward/ugrnn_intermediate_feedback.json"
                ),
                "ugrnn_intermediate_feedback.json",
            ),
        ];
        let mut nets = Vec::new();
        for (i, (text, name)) in graphs.into_iter().enumerate() {
            let json: serde_json::Value = serde_json::from_str(text).map_err(err)?;
            let mut cfg = ventral_models::convrnn::tf_json::translate(&json, name).map_err(err)?;
            if i == 0 {
                cfg.decoder.kind = ventral_models::convrnn::DecoderKind::Thresh;
                cfg.decoder.start = 6;
            }
            nets.push(ConvRnn::init(&cfg, &device, 0).map_err(err)?);
        }
        Ok(nets)
    });
    let nets = nets.as_ref().map_err(Clone::clone)?;
    let st = ventral_core::safetensors::SafeTensors::read(&d.join("tf_names.safetensors"))
        .map_err(err)?;
    let mut fits = Err(String::new());
    for net in nets {
        match tf_weights::from_tensorflow(net, &st) {
            Ok(named) => {
                ventral_models::params::load_named(net.clone(), &named).map_err(err)?;
                fits = Ok(());
            }
            Err(e) if fits.is_err() => fits = Err(e.to_string()),
            Err(_) => {}
        }
    }
    fits
}

fn t_pickle(d: &Path) -> Result<(), String> {
    let b = std::fs::read(d.join("data.pkl")).map_err(err)?;
    ventral_core::pth::read_pickle(&b)?;
    Ok(())
}

fn t_keras(d: &Path) -> Result<(), String> {
    // The seed's network: scripts/make_keras_fixtures.py's small BL.
    let cfg = ventral_models::rcnn_sat::RcnnSatConfig {
        variant: ventral_models::rcnn_sat::RcnnVariant::Bl,
        image_size: 64,
        num_classes: 5,
        timesteps: 3,
        cumulative_readout: false,
        channels: Some(vec![4, 4, 8, 8, 8, 8, 8]),
    };
    ventral_models::rcnn_sat::keras::read(&d.join("weights.h5"), &cfg).map_err(err)?;
    Ok(())
}

fn t_packed(d: &Path) -> Result<(), String> {
    let ds = ventral_data::PackedDataset::open(d).map_err(err)?;
    ds.verify().map_err(err)?;
    ds.metadata().map_err(err)?;
    let _ = ds.labels().iter().sum::<i64>();
    Ok(())
}

fn read_all<S: ventral_data::pack::SplitSource>(
    set: ventral_data::pack::SourceSet<S>,
) -> Result<(), String> {
    for mut s in set.splits {
        let n = s.len().min(8);
        let _ = (s.channels(), s.native_size(), s.meta_columns());
        s.read(0, n).map_err(err)?;
    }
    Ok(())
}

fn t_hdf5(d: &Path) -> Result<(), String> {
    read_all(ventral_data::readers::hdf5::open(&d.join("data.h5"), None).map_err(err)?)
}

fn t_cifar(d: &Path) -> Result<(), String> {
    read_all(ventral_data::readers::cifar::open(d, None).map_err(err)?)
}

fn t_npz_images(d: &Path) -> Result<(), String> {
    let opts = ventral_data::PackOptions::default();
    read_all(ventral_data::readers::npz::open(&d.join("images.npz"), &opts).map_err(err)?)
}

/// Recordings as `neural-fit --neural` reads them: a BrainIO `.nc`, or `.npz` arrays named by
/// a `.toml` (by extension).
fn recordings(p: &Path) -> Result<(), String> {
    let a = ventral_neural::Assembly::read_any(p).map_err(err)?;
    ventral_neural::recordings::Recordings::from_assembly(&a, &p.display().to_string())
        .map_err(err)?;
    Ok(())
}

fn t_netcdf(d: &Path) -> Result<(), String> {
    recordings(&d.join("rec.nc"))
}

fn t_features(d: &Path) -> Result<(), String> {
    let ids: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
    let f = ventral_neural::features::Features::read(&d.join("f.npz"), &ids, "the fuzz ids", &[])
        .map_err(err)?;
    let _ = f.constant_steps();
    Ok(())
}

fn t_stimulus_set(d: &Path) -> Result<(), String> {
    let set = ventral_neural::StimulusSet::read(
        &d.join("stimulus_set.csv"),
        Some(&d.join("stimulus_set.zip")),
    )
    .map_err(err)?;
    let ids: Vec<String> = set.ids.iter().take(4).cloned().collect();
    set.for_each_file(&ids, |_, _, _| Ok(())).map_err(err)?;
    Ok(())
}

fn t_train_config(d: &Path) -> Result<(), String> {
    let sets = std::fs::read(d.join("sets.txt")).unwrap_or_default();
    let sets: Vec<String> = String::from_utf8_lossy(&sets)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let cfg = ventral_train::config::TrainFile::load(&d.join("config.toml"), &sets).map_err(err)?;
    let _ = cfg.model.estimated_size();
    Ok(())
}

fn t_convrnn_graph(d: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(d.join("graph.json")).map_err(err)?;
    let cfg =
        ventral_models::convrnn::ConvRnnConfig::from_json(&text, "graph.json").map_err(err)?;
    cfg.plan().map_err(err)?;
    // Small graphs also run, twice: with the exact savings (step-invariant nodes reused, a
    // node's results of a repeating input kept, steps before the image arrives on one image)
    // and recomputing every node at every step on the whole batch. Their outputs must agree
    // bit for bit; a difference is a finding.
    let (params, units, _) = cfg.estimated_size();
    let small = params <= 200_000
        && units <= 50_000
        && cfg.image_size() <= 48
        && (1..=10).contains(&cfg.num_timesteps)
        && cfg.input_shape[0] <= 4;
    if small {
        convrnn_savings_are_exact(&cfg)?;
    }
    Ok(())
}

/// [`t_convrnn_graph`]'s differential check: the same network's `forward_areas` with and
/// without its exact savings, on a batch of two images.
fn convrnn_savings_are_exact(cfg: &ventral_models::convrnn::ConvRnnConfig) -> Result<(), String> {
    use burn::tensor::{Tensor, TensorData};
    let device = ventral_models::device::parse_device("cpu").map_err(err)?;
    let net = ventral_models::convrnn::ConvRnn::init(cfg, &device, 7).map_err(err)?;
    let [c, h, w] = cfg.input_shape;
    let n = 2 * c * h * w;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [2, c, h, w]), &device);
    let saved = net.forward_areas(x.clone(), true);
    let mut plain = net.clone();
    plain.reuse_step_invariant = false;
    let full = plain.forward_areas(x, true);
    let bits = |t: &Tensor<2>| -> Result<Vec<u32>, String> {
        let v = t
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        Ok(v.iter()
            .map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() })
            .collect())
    };
    for (t, (a, b)) in saved.log_probs.iter().zip(&full.log_probs).enumerate() {
        assert_eq!(
            bits(a)?,
            bits(b)?,
            "step {t}: the exact savings changed the log-probabilities"
        );
    }
    Ok(())
}

/// An original convrnns model JSON (neuroailab/convrnns, read by `convrnn::tf_json`) under the
/// file name it is given with (the name says the cell, as `model_func.py` takes it).
fn t_convrnns_json(d: &Path) -> Result<(), String> {
    let name = std::fs::read_to_string(d.join("name.txt")).map_err(err)?;
    let text = std::fs::read_to_string(d.join("model.json")).map_err(err)?;
    let origin = format!("{}.json", name.trim());
    let cfg = ventral_models::convrnn::ConvRnnConfig::from_json(&text, &origin).map_err(err)?;
    cfg.plan().map_err(err)?;
    let _ = cfg.estimated_size();
    Ok(())
}

fn t_ost_targets(d: &Path) -> Result<(), String> {
    ventral_neural::ost::OstTargets::read(&d.join("targets.csv")).map_err(err)?;
    Ok(())
}

fn t_sweep(d: &Path) -> Result<(), String> {
    ventral_train::sweep::expand(&d.join("sweep.toml")).map_err(err)?;
    Ok(())
}

/// The arrays of an activation file, one `.npy` per member: mutations reach the values and
/// headers themselves (inside a `.npz` the members' CRC-32 rejects nearly every one; the
/// container is the `npz` target's).
const DYNAMICS_ARRAYS: &[&str] = &[
    "outputs_all",
    "representations_all",
    "labels_all",
    "readout_weight",
    "readout_bias",
    "stimulus_id",
    "meta.variation",
];

/// Zip the members `<name>.npy` present in `dir` into `out`, stored, with correct CRCs.
fn store_npz(dir: &Path, names: &[&str], out: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::fs::File::create(out).map_err(err)?);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    for name in names {
        let member = format!("{name}.npy");
        if let Ok(bytes) = std::fs::read(dir.join(&member)) {
            z.start_file(member, opts).map_err(err)?;
            z.write_all(&bytes).map_err(err)?;
        }
    }
    z.finish().map_err(err)?;
    Ok(())
}

/// What `ventral dynamics` does with an activation file (and, when present, a metadata CSV):
/// read, analyse (split by the metadata's `variation` / `occluded_fraction` columns when it
/// has them, as the command's default), write the tables and the report.
fn t_dynamics(d: &Path) -> Result<(), String> {
    use ventral_analysis::{Activations, Metadata, analyse, output};
    let acts = d.join("acts.npz");
    store_npz(d, DYNAMICS_ARRAYS, &acts)?;
    let act = Activations::read(&acts).map_err(err)?;
    let meta_path = d.join("meta.csv");
    let meta = if meta_path.is_file() {
        Some(Metadata::read_csv(&meta_path, act.n, act.stimulus_ids.as_deref()).map_err(err)?)
    } else {
        act.metadata.clone()
    };
    let split_by = meta
        .as_ref()
        .map(Metadata::default_split_by)
        .unwrap_or_default();
    let dynamics = analyse(&act, None, meta.as_ref(), &split_by).map_err(err)?;
    let out = d.join("out");
    std::fs::create_dir_all(&out).map_err(err)?;
    output::write_tables(&out, &act, &dynamics).map_err(err)?;
    let net = output::Net {
        name: "fuzz".into(),
        acts: &act,
        dynamics: &dynamics,
        class_names: None,
    };
    output::write_report(&out, &[net]).map_err(err)?;
    Ok(())
}

/// What `ventral diffusion --trajectory` does with a trajectory CSV: read, fit with the
/// command's default options, write the tables and plots.
fn t_trajectory(d: &Path) -> Result<(), String> {
    use ventral_analysis::diffusion::{Hyper, Options, analyse, read_csv, write};
    let t = read_csv(&d.join("traj.csv"), "fuzz").map_err(err)?;
    let h = Hyper {
        // The command's: the last finite `lr` of the file, else `--lr`.
        lr: t
            .lr
            .as_ref()
            .and_then(|v| v.iter().rev().find(|v| v.is_finite()).copied())
            .unwrap_or(0.01),
        batch_size: 32.0,
        momentum: 0.9,
    };
    let a = analyse(vec![(t, h)], Options::default()).map_err(err)?;
    let out = d.join("out");
    std::fs::create_dir_all(&out).map_err(err)?;
    write(&out, &a).map_err(err)?;
    Ok(())
}

/// Behavioural trials as `ventral behaviour --trials` reads them, indexed, and the
/// Brain-Score split-half ceiling draws over them.
fn trials(path: &Path) -> Result<(), String> {
    use ventral_neural::behaviour::{Metric, Target, TargetHalves, Trials};
    let t = Trials::read(path).map_err(err)?;
    let target = Target::new(&t, "the fuzz trials").map_err(err)?;
    let _ = TargetHalves::new(&target, &Metric::ALL, 2, 0);
    Ok(())
}

fn t_trials(d: &Path) -> Result<(), String> {
    trials(&d.join("trials.csv"))
}

fn t_trials_nc(d: &Path) -> Result<(), String> {
    trials(&d.join("trials.nc"))
}

/// Recordings from plain `.npz` arrays described by a TOML (`neural-fit --neural x.toml`).
fn t_recordings_npz(d: &Path) -> Result<(), String> {
    recordings(&d.join("rec.toml"))
}

/// A `splits.json` given back to `neural-fit --splits` / `ost`: the splits against six
/// stimulus ids and the ceiling halvings over four repetitions.
fn t_splits(d: &Path) -> Result<(), String> {
    use ventral_neural::predictivity::{read_halves_json, read_splits_json};
    let p = d.join("splits.json");
    let ids: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    read_splits_json(&p, &ids).map_err(err)?;
    read_halves_json(&p, 4).map_err(err)?;
    Ok(())
}

/// Every target, in report order.
pub const TARGETS: &[Target] = &[
    Target {
        name: "npy",
        files: &["x.npy"],
        what: "NumPy .npy (every dtype ventral reads)",
        run: t_npy,
    },
    Target {
        name: "npz",
        files: &["x.npz"],
        what: "NumPy .npz (ZIP of .npy, stored or deflated)",
        run: t_npz,
    },
    Target {
        name: "safetensors",
        files: &["weights.safetensors"],
        what: "safetensors weights",
        run: t_safetensors,
    },
    Target {
        name: "pth",
        files: &["weights.pth"],
        what: "PyTorch checkpoint (torch.save of a state dict: zip + restricted pickle)",
        run: t_pth,
    },
    Target {
        name: "pickle",
        files: &["data.pkl"],
        what: "a PyTorch checkpoint's pickle alone (the restricted machine, no zip CRC in the way)",
        run: t_pickle,
    },
    Target {
        name: "tf_checkpoint",
        files: &["model.ckpt.index", "model.ckpt.data-00000-of-00001"],
        what: "TensorFlow checkpoint (tensor bundle: LevelDB-table index + data shard)",
        run: t_tf_checkpoint,
    },
    Target {
        name: "convrnns_checkpoint",
        files: &["tf_names.safetensors"],
        what: "an original convrnns TensorFlow checkpoint mapped onto its ConvRNN (tf_weights)",
        run: t_convrnns_checkpoint,
    },
    Target {
        name: "keras",
        files: &["weights.h5"],
        what: "rcnn-sat Keras weights (HDF5, save_weights / save layouts)",
        run: t_keras,
    },
    Target {
        name: "packed",
        files: &["manifest.json", "images.npy", "labels.npy", "metadata.csv"],
        what: "packed split (manifest, images, labels, metadata CSV)",
        run: t_packed,
    },
    Target {
        name: "hdf5",
        files: &["data.h5"],
        what: "MiniEcoset-layout HDF5",
        run: t_hdf5,
    },
    Target {
        name: "cifar",
        files: &["test_batch.bin", "batches.meta.txt"],
        what: "CIFAR-10 binary batch + class names",
        run: t_cifar,
    },
    Target {
        name: "npz_images",
        files: &["images.npz"],
        what: "image arrays in .npz (pack --format npz)",
        run: t_npz_images,
    },
    Target {
        name: "netcdf",
        files: &["rec.nc"],
        what: "BrainIO netCDF assembly → recordings",
        run: t_netcdf,
    },
    Target {
        name: "features",
        files: &["f.npz"],
        what: "model features npz aligned to stimulus ids",
        run: t_features,
    },
    Target {
        name: "stimulus_set",
        files: &["stimulus_set.csv", "stimulus_set.zip"],
        what: "BrainIO stimulus set CSV + ZIP",
        run: t_stimulus_set,
    },
    Target {
        name: "train_config",
        files: &["config.toml", "sets.txt"],
        what: "training TOML with --set overrides (model presets, graphs, ranges)",
        run: t_train_config,
    },
    Target {
        name: "convrnn_graph",
        files: &["graph.json"],
        what: "PyTorchTNN graph JSON (small ones also run, with and without the exact savings)",
        run: t_convrnn_graph,
    },
    Target {
        name: "convrnns_json",
        files: &["name.txt", "model.json"],
        what: "an original convrnns (TensorFlow) model JSON and the name that says its cell",
        run: t_convrnns_json,
    },
    Target {
        name: "ost_targets",
        files: &["targets.csv"],
        what: "OST targets CSV",
        run: t_ost_targets,
    },
    Target {
        name: "sweep",
        files: &["sweep.toml", "tiny.toml"],
        what: "sweep spec TOML (grid, runs) over a base config",
        run: t_sweep,
    },
    Target {
        name: "dynamics",
        files: &[
            "outputs_all.npy",
            "representations_all.npy",
            "labels_all.npy",
            "readout_weight.npy",
            "readout_bias.npy",
            "stimulus_id.npy",
            "meta.variation.npy",
            "meta.csv",
        ],
        what: "activation arrays (stored into an npz) + metadata CSV → dynamics analysis, tables, report",
        run: t_dynamics,
    },
    Target {
        name: "trajectory",
        files: &["traj.csv"],
        what: "SGD trajectory CSV → diffusion exponent fit, tables, plots",
        run: t_trajectory,
    },
    Target {
        name: "trials",
        files: &["trials.csv"],
        what: "behavioural trials CSV → target, split-half draws",
        run: t_trials,
    },
    Target {
        name: "trials_nc",
        files: &["trials.nc"],
        what: "BrainIO behavioural assembly → target, split-half draws",
        run: t_trials_nc,
    },
    Target {
        name: "recordings_npz",
        files: &["rec.toml", "rec.npz"],
        what: "recordings as .npz arrays described by a TOML",
        run: t_recordings_npz,
    },
    Target {
        name: "splits",
        files: &["splits.json"],
        what: "splits.json given back (CV splits, ceiling halvings)",
        run: t_splits,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Cut `input` into the target's files and write them into `dir` (files beyond the cuts are
/// absent; earlier ones are removed first).
pub fn materialize(t: &Target, input: &[u8], dir: &Path) -> std::io::Result<()> {
    let mut parts = split(input).into_iter();
    for f in t.files {
        let p = dir.join(f);
        match parts.next() {
            Some(bytes) => std::fs::write(&p, bytes)?,
            None => match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
    }
    Ok(())
}

/// Split at [`SEP`].
pub fn split(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    out.push(rest);
    out
}

/// Join files into one input.
pub fn join(files: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEP);
        }
        out.extend_from_slice(f);
    }
    out
}

const INTERESTING_TEXT: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "4294967295",
    "18446744073709551615",
    "99999999999999999999",
    "1e300",
    "-1e300",
    "1e-320",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "\"\"",
    "[]",
    "{}",
    "null",
    "true",
    "0.0",
    "-0",
    "1e6",
    "100000",
    "4096",
    "8192",
];
const INTERESTING_U32: &[u32] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    4096,
    65536,
];

/// One mutation of `data` (another corpus entry for splices).
pub fn mutate(rng: &mut impl Rng, data: &mut Vec<u8>, other: &[u8]) {
    let n = data.len();
    match rng.random_range(0..11u32) {
        0 if n > 0 => {
            let i = rng.random_range(0..n);
            data[i] ^= 1 << rng.random_range(0..8u32);
        }
        1 if n > 0 => {
            let i = rng.random_range(0..n);
            data[i] = rng.random();
        }
        2 if n >= 4 => {
            let i = rng.random_range(0..n - 3);
            let v = INTERESTING_U32[rng.random_range(0..INTERESTING_U32.len())];
            let b = if rng.random() {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let w = [1usize, 2, 4][rng.random_range(0..3)];
            data[i..i + w].copy_from_slice(&b[..w]);
        }
        3 => {
            // Replace a run of digits (or insert) with an interesting number/text.
            let s = INTERESTING_TEXT[rng.random_range(0..INTERESTING_TEXT.len())].as_bytes();
            let digits: Vec<usize> = (0..n).filter(|&i| data[i].is_ascii_digit()).collect();
            if digits.is_empty() {
                let i = rng.random_range(0..=n);
                data.splice(i..i, s.iter().copied());
            } else {
                let i = digits[rng.random_range(0..digits.len())];
                let mut j = i;
                while j < n && (data[j].is_ascii_digit() || data[j] == b'.') {
                    j += 1;
                }
                let mut k = i;
                while k > 0 && data[k - 1].is_ascii_digit() {
                    k -= 1;
                }
                data.splice(k..j, s.iter().copied());
            }
        }
        4 => {
            let i = rng.random_range(0..=n);
            let len = rng.random_range(1..=16usize);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            data.splice(i..i, bytes);
        }
        5 if n > 0 => {
            let i = rng.random_range(0..n);
            let len = rng.random_range(1..=(n - i).min(64));
            data.drain(i..i + len);
        }
        6 if n > 0 => {
            let i = rng.random_range(0..n);
            let len = rng.random_range(1..=(n - i).min(64));
            let chunk = data[i..i + len].to_vec();
            let at = rng.random_range(0..=n);
            data.splice(at..at, chunk);
        }
        7 if !other.is_empty() => {
            let i = rng.random_range(0..=n);
            let j = rng.random_range(0..other.len());
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        8 if n > 0 => {
            data.truncate(rng.random_range(0..n));
        }
        9 if n > 0 => {
            // Overwrite a short range with 0x00 or 0xff (lengths, counts, offsets).
            let i = rng.random_range(0..n);
            let len = rng.random_range(1..=(n - i).min(8));
            let v = if rng.random() { 0 } else { 0xff };
            data[i..i + len].fill(v);
        }
        _ if n > 1 => {
            let i = rng.random_range(0..n);
            let j = rng.random_range(0..n);
            data.swap(i, j);
        }
        _ => data.push(rng.random()),
    }
}

/// A panic caught while running a target.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: &'static str,
    pub message: String,
    pub input: Vec<u8>,
}

/// Totals of one fuzzing run.
#[derive(Debug, Default)]
pub struct Stats {
    pub execs: u64,
    pub rejected: u64,
    pub accepted: u64,
    pub corpus: usize,
    pub distinct_errors: usize,
    pub slowest: Duration,
    pub findings: Vec<Finding>,
    pub seconds: f64,
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Install a quiet panic hook that records the message and location (the default hook would
/// print every caught panic).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let loc = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut g) = LAST_PANIC.lock() {
            *g = Some(format!("{msg} at {loc}"));
        }
    }));
}

/// Error text with digits and the work directory masked, so that `row 3` and `row 4` are one
/// behaviour.
fn shape_of(e: &str, dir: &str) -> String {
    e.replace(dir, "DIR")
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect()
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub max_execs: u64,
    pub max_time: Duration,
    pub slow: Duration,
    pub max_corpus: usize,
    pub max_input: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 0,
            max_execs: 1000,
            max_time: Duration::from_secs(3600),
            slow: Duration::from_secs(2),
            max_corpus: 512,
            max_input: 1 << 20,
        }
    }
}

/// Run `t` on each of `seeds` (replayed unmutated first), then on mutations of the corpus until
/// `cfg.max_execs` or `cfg.max_time`. `work` is the directory the files are written to (the
/// input being run is left there, so an abort can be recovered by the caller).
pub fn fuzz(t: &Target, seeds: &[Vec<u8>], work: &Path, cfg: &Config) -> std::io::Result<Stats> {
    let mut rng = ventral_core::rng::stream(cfg.seed, &format!("fuzz-{}", t.name), &[]);
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut stats = Stats::default();
    let dir_s = work.display().to_string();
    let start = Instant::now();
    let mut replay = seeds.iter().cloned();
    while stats.execs < cfg.max_execs && start.elapsed() < cfg.max_time {
        let input = match replay.next() {
            Some(s) => s,
            None => {
                let mut x = corpus[rng.random_range(0..corpus.len())].clone();
                let other = corpus[rng.random_range(0..corpus.len())].clone();
                for _ in 0..rng.random_range(1..=4u32) {
                    mutate(&mut rng, &mut x, &other);
                }
                x.truncate(cfg.max_input);
                x
            }
        };
        materialize(t, &input, work)?;
        std::fs::write(work.join(".input"), &input)?;
        let t0 = Instant::now();
        let res = std::panic::catch_unwind(|| t.run(work));
        let dt = t0.elapsed();
        stats.execs += 1;
        stats.slowest = stats.slowest.max(dt);
        match res {
            Ok(Ok(())) => stats.accepted += 1,
            Ok(Err(e)) => {
                stats.rejected += 1;
                if seen.insert(shape_of(&e, &dir_s)) && corpus.len() < cfg.max_corpus {
                    corpus.push(input.clone());
                }
            }
            Err(_) => {
                let message = LAST_PANIC
                    .lock()
                    .ok()
                    .and_then(|mut g| g.take())
                    .unwrap_or_else(|| "panic (no message)".into());
                stats.findings.push(Finding {
                    kind: "panic",
                    message,
                    input: input.clone(),
                });
            }
        }
        if dt > cfg.slow {
            stats.findings.push(Finding {
                kind: "slow",
                message: format!("took {:.1} s", dt.as_secs_f64()),
                input,
            });
        }
    }
    stats.corpus = corpus.len();
    stats.distinct_errors = seen.len();
    stats.seconds = start.elapsed().as_secs_f64();
    Ok(stats)
}

/// The inputs in `dir` (sorted by name; missing directory = none).
pub fn read_inputs(dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in rd {
        let p = e?.path();
        if p.is_file() {
            let b = std::fs::read(&p)?;
            out.push((p, b));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Peak resident memory of this process so far (`VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
}

pub mod seeds;
