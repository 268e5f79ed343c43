//! The seed corpus: valid inputs for every target, written with ventral's own writers (and the
//! repository's own fixture files), so that mutations start from what the readers accept.
//! `ventral-fuzz seed --out fuzz/corpus` regenerates the checked-in corpus.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use ventral_core::npy::{DType, NpyArray, NpyData, header_bytes, write_npz};
use ventral_core::safetensors::{TensorOut, to_bytes};

use crate::join;

fn npz_bytes(dir: &Path, arrays: &[(&str, &NpyArray)], compress: bool) -> Result<Vec<u8>> {
    let p = dir.join("seed.npz");
    write_npz(&p, arrays, compress)?;
    Ok(std::fs::read(&p)?)
}

fn arr(shape: Vec<usize>, data: NpyData) -> Result<NpyArray> {
    NpyArray::new(shape, data).map_err(anyhow::Error::msg)
}

/// Seeds by target name. `repo` is the repository root (configs, fixtures); `scratch` a
/// directory to write intermediate files in.
pub fn make(repo: &Path, scratch: &Path) -> Result<BTreeMap<&'static str, Vec<Vec<u8>>>> {
    let mut s: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    let f32a = arr(
        vec![2, 3],
        NpyData::F32(vec![0.5, -1.0, 2.0, 3.5, 0.0, 1e-3]),
    )?;
    let u8a = arr(
        vec![2, 2, 2, 1],
        NpyData::U8(vec![0, 1, 2, 3, 250, 251, 252, 255]),
    )?;
    let i64a = arr(vec![3], NpyData::I64(vec![0, 1, 2]))?;
    let strs = NpyArray::from_strings(&["s0".into(), "s1".into(), "s2".into()]);
    s.insert(
        "npy",
        vec![
            f32a.to_bytes(),
            u8a.to_bytes(),
            i64a.to_bytes(),
            strs.to_bytes(),
            {
                let mut b = header_bytes(DType::F64, &[2]);
                b.extend_from_slice(&1.5f64.to_le_bytes());
                b.extend_from_slice(&(-2.0f64).to_le_bytes());
                b
            },
        ],
    );
    s.insert(
        "npz",
        vec![
            npz_bytes(scratch, &[("a", &f32a), ("labels", &i64a)], false)?,
            npz_bytes(scratch, &[("ids", &strs), ("x", &u8a)], true)?,
        ],
    );

    // safetensors: f32 and i64 tensors with metadata, as ventral saves weights.
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    let steps = vec![3i64, 4];
    let (ws, ss) = ([2usize, 1, 2, 3], [2usize]);
    let mut tensors = BTreeMap::new();
    tensors.insert("v1.conv.weight".to_string(), TensorOut::F32(&ws, &w));
    tensors.insert("opt.step".to_string(), TensorOut::I64(&ss, &steps));
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "ventral".to_string());
    s.insert(
        "safetensors",
        vec![
            to_bytes(&tensors, &meta),
            to_bytes(&tensors, &BTreeMap::new()),
        ],
    );

    // PyTorch checkpoints as PyTorch writes them (scripts/make_pth_fixtures.py): a state dict
    // of every dtype and view, a wrapped DataParallel one, a pickled module (refused).
    let pth = repo.join("crates/ventral-core/tests/fixtures/pth");
    s.insert(
        "pth",
        ["dtypes.pth", "wrapped.pth", "whole_model.pth"]
            .iter()
            .map(|f| {
                std::fs::read(pth.join(f)).with_context(|| format!("{}", pth.join(f).display()))
            })
            .collect::<Result<Vec<_>>>()?,
    );
    // Their pickles alone.
    let mut pickles = Vec::new();
    for seed in &s["pth"] {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(seed.as_slice()))?;
        let name = z
            .file_names()
            .filter_map(|n| n.ok())
            .find(|n| n.ends_with("data.pkl"))
            .map(|n| n.to_string())
            .context("a fixture without data.pkl")?;
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut z.by_name(&name)?, &mut b)?;
        pickles.push(b);
    }
    s.insert("pickle", pickles);
    // TensorFlow checkpoints as TensorFlow writes them (scripts/make_tf_checkpoint_fixtures.py):
    // index + its one data shard.
    let tf = repo.join("crates/ventral-core/tests/fixtures/tf_checkpoint");
    let mut tf_seeds = Vec::new();
    for prefix in ["dtypes", "object", "partitioned"] {
        let read = |ext: &str| {
            let p = tf.join(format!("{prefix}.{ext}"));
            std::fs::read(&p).with_context(|| format!("{}", p.display()))
        };
        tf_seeds.push(join(&[read("index")?, read("data-00000-of-00001")?]));
    }
    s.insert("tf_checkpoint", tf_seeds);
    // A checkpoint of the original convrnns code (scripts/convrnns_tf_forward.py small), its
    // tensors as safetensors under TensorFlow's names.
    let cc = repo.join("crates/ventral-cli/tests/fixtures/convrnns_checkpoint/model.ckpt");
    let st = ventral_core::safetensors::SafeTensors::read(&cc)
        .with_context(|| format!("{}", cc.display()))?;
    let mut vals = Vec::new();
    for n in st.names() {
        let (shape, data) = st.f32(n)?;
        vals.push((n.to_string(), shape, data));
    }
    let tensors: std::collections::BTreeMap<String, ventral_core::safetensors::TensorOut<'_>> =
        vals.iter()
            .map(|(n, s, d)| (n.clone(), ventral_core::safetensors::TensorOut::F32(s, d)))
            .collect();
    // And the variables of a graph with long-range feedback into other cells
    // (`convrnns_tf_forward.py feedback`: component_conv's parts over a harbor of several
    // inputs), filled with a golden-ratio sequence.
    let fb = repo.join(
        "crates/ventral-models/tests/fixtures/convrnns_tf_forward/ugrnn_intermediate_feedback.safetensors",
    );
    let gold = ventral_core::safetensors::SafeTensors::read(&fb)
        .with_context(|| format!("{}", fb.display()))?;
    let vars: Vec<(String, Vec<usize>, bool)> = serde_json::from_str(
        gold.metadata()
            .get("variables")
            .context("the feedback fixture has no variables")?,
    )?;
    let fb_vals: Vec<(String, Vec<usize>, Vec<f32>)> = vars
        .into_iter()
        .map(|(n, shape, _)| {
            let len = shape.iter().product();
            let v = ventral_core::fixtures::convrnns_unit(&n, len)
                .map(|u| u as f32)
                .collect();
            (n, shape, v)
        })
        .collect();
    let fb_tensors: std::collections::BTreeMap<String, ventral_core::safetensors::TensorOut<'_>> =
        fb_vals
            .iter()
            .map(|(n, s, d)| (n.clone(), ventral_core::safetensors::TensorOut::F32(s, d)))
            .collect();
    s.insert(
        "convrnns_checkpoint",
        vec![
            ventral_core::safetensors::to_bytes(&tensors, &Default::default()),
            ventral_core::safetensors::to_bytes(&fb_tensors, &Default::default()),
        ],
    );
    // rcnn-sat Keras weights as the reference writes them (scripts/make_keras_fixtures.py).
    let keras = repo.join("crates/ventral-models/tests/fixtures/keras/bl_small.h5");
    s.insert(
        "keras",
        vec![std::fs::read(&keras).with_context(|| format!("{}", keras.display()))?],
    );

    // A generated stimulus set: packed splits, the BrainIO stimulus set, then recordings and
    // features synthesised from it.
    let stim = scratch.join("stim");
    let cfg = ventral_data::stimuli::StimulusConfig {
        num_images: 24,
        image_size: 8,
        num_classes: 3,
        objects_per_category: 1,
        ..Default::default()
    };
    ventral_data::stimuli::generate(&cfg, &stim, &|_, _| {}).context("generating stimuli")?;
    let split = stim.join("test");
    let m = ventral_data::packed::read_manifest(&split)?;
    let files: Vec<Vec<u8>> = [
        "manifest.json",
        &m.images_file,
        &m.labels_file,
        &m.metadata_file,
    ]
    .iter()
    .map(|f| std::fs::read(split.join(f)))
    .collect::<std::io::Result<_>>()?;
    s.insert("packed", vec![join(&files)]);
    let set_dir = stim.join("stimulus_set");
    let mut set_files = Vec::new();
    for ext in ["csv", "zip"] {
        let p = std::fs::read_dir(&set_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .with_context(|| format!("no .{ext} in {}", set_dir.display()))?;
        set_files.push(std::fs::read(p)?);
    }
    s.insert("stimulus_set", vec![join(&set_files)]);
    let set = ventral_neural::synth::open_stimulus_set(&stim)?;
    let ids: Vec<String> = set.ids.clone();
    let objects: Vec<String> = set
        .rows
        .iter()
        .map(|r| r.get("object_name").cloned().unwrap_or_default())
        .collect();
    let x = ventral_neural::synth::pooled_pixels(&set, &ids)?;
    let syn = ventral_neural::synth::generate(
        &ventral_neural::synth::SynthConfig {
            hidden: 4,
            regions: vec![("V4".into(), 90.0, 2), ("IT".into(), 110.0, 2)],
            n_bins: 3,
            repetitions: 2,
            ..Default::default()
        },
        &ids,
        &objects,
        &x,
    )?;
    let nc = scratch.join("rec.nc");
    syn.assembly.write(&nc)?;
    s.insert("netcdf", vec![std::fs::read(&nc)?]);

    // Features aligned by id: the first four ids are the ones the target asks for.
    let fids: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
    let feats = arr(
        vec![2, 5, 3],
        NpyData::F32((0..30).map(|i| (i % 7) as f32).collect()),
    )?;
    s.insert(
        "features",
        vec![
            npz_bytes(
                scratch,
                &[
                    ("layer", &feats),
                    ("stimulus_id", &NpyArray::from_strings(&fids)),
                ],
                false,
            )?,
            npz_bytes(
                scratch,
                &[
                    ("it", &feats),
                    ("stimulus_id", &NpyArray::from_strings(&fids)),
                ],
                true,
            )?,
        ],
    );

    // CIFAR-10: three records and the class names.
    let mut batch = Vec::new();
    for (i, label) in [3u8, 0, 9].into_iter().enumerate() {
        batch.push(label);
        batch.extend((0..3072).map(|j| ((i * 31 + j) % 256) as u8));
    }
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    s.insert(
        "cifar",
        vec![join(&[batch.clone(), names.as_bytes().to_vec()]), batch],
    );

    // Images in npz, the layouts pack --format npz reads.
    let imgs = arr(
        vec![2, 4, 4, 3],
        NpyData::U8((0..96).map(|i| (i * 5 % 256) as u8).collect()),
    )?;
    let labels = arr(vec![2], NpyData::I64(vec![0, 1]))?;
    let imgs_f = arr(
        vec![2, 3, 4, 4],
        NpyData::F32((0..96).map(|i| (i % 10) as f32 / 10.0).collect()),
    )?;
    s.insert(
        "npz_images",
        vec![
            npz_bytes(scratch, &[("images", &imgs), ("labels", &labels)], false)?,
            npz_bytes(scratch, &[("x_train", &imgs_f), ("y_train", &labels)], true)?,
        ],
    );

    // Repository files: HDF5 fixtures, configs, PyTorchTNN graphs.
    let fixtures = repo.join("tests/fixtures/data");
    s.insert(
        "hdf5",
        vec![
            std::fs::read(fixtures.join("miniecoset_8px.h5"))?,
            std::fs::read(fixtures.join("miniecoset_missing_labels.h5"))?,
        ],
    );
    let mut configs = Vec::new();
    for (f, sets) in [
        (
            "configs/tiny.toml",
            "train.optimizer.lr=0.01\ntrain.epochs=2\n",
        ),
        ("configs/convrnn_cpu.toml", "model.num_timesteps=4\n"),
        ("configs/tiny_bl.toml", ""),
    ] {
        configs.push(join(&[
            std::fs::read(repo.join(f))?,
            sets.as_bytes().to_vec(),
        ]));
    }
    s.insert("train_config", configs);
    let tiny = std::fs::read(repo.join("configs/tiny.toml"))?;
    let sweep = std::fs::read_to_string(repo.join("configs/sweep_sgd.toml"))?
        .replace("init_from = \"runs/tiny_adam\"\n", "");
    s.insert("sweep", vec![join(&[sweep.into_bytes(), tiny])]);
    let graphs = repo.join("crates/ventral-models/tests/fixtures/convrnn");
    let mut g = Vec::new();
    for f in ["basic.json", "feedback_rgc.json", "gru.json"] {
        g.push(std::fs::read(graphs.join(f))?);
    }
    s.insert("convrnn_graph", g);
    // The convrnns zoo's own model JSON files, under their names (the name says the cell).
    let zoo = repo.join("crates/ventral-models/zoo/convrnns");
    let mut z = Vec::new();
    for name in [
        "rgc_shallow",
        "rgc_intermediate",
        "lstm_shallow",
        "ugrnn_intermediate_t30",
    ] {
        let p = zoo.join(format!("{name}.json"));
        let text = std::fs::read(&p).with_context(|| format!("{}", p.display()))?;
        z.push(join(&[name.as_bytes().to_vec(), text]));
    }
    s.insert("convrnns_json", z);
    s.insert(
        "ost_targets",
        vec![
            b"stimulus_id,object_name,ost_ms,i1_threshold\na,x,100,1.5\nb,y,,1.5\nc,x,130.5,1.5\n"
                .to_vec(),
        ],
    );
    // Activations as `record` writes them (and the reference notebook's keys): 3 steps, 8
    // images, 3 classes, 4 units, whose log-probabilities come from the readout.
    let (t, n, c, d) = (3usize, 8usize, 3usize, 4usize);
    let w: Vec<f32> = (0..c * d)
        .map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.5)
        .collect();
    let bias = [0.1f32, -0.2, 0.05];
    let mut reps = Vec::with_capacity(t * n * d);
    let mut lp = Vec::with_capacity(t * n * c);
    for step in 0..t {
        for img in 0..n {
            let r: Vec<f32> = (0..d)
                .map(|u| ((img * 3 + u * 5 + step) % 7) as f32 * 0.3 * (step + 1) as f32)
                .collect();
            let z: Vec<f32> = (0..c)
                .map(|k| bias[k] + (0..d).map(|u| w[k * d + u] * r[u]).sum::<f32>())
                .collect();
            let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
            lp.extend(z.iter().map(|v| v - lse));
            reps.extend(r);
        }
    }
    let out_a = arr(vec![t, n, c], NpyData::F32(lp))?;
    let reps_a = arr(vec![t, n, d], NpyData::F32(reps))?;
    let labels_a = arr(
        vec![n],
        NpyData::I64((0..n as i64).map(|i| i % 3).collect()),
    )?;
    let w_a = arr(vec![c, d], NpyData::F32(w))?;
    let b_a = arr(vec![c], NpyData::F32(bias.to_vec()))?;
    let act_ids: Vec<String> = (0..n).map(|i| format!("img{i}")).collect();
    let variation: Vec<String> = (0..n).map(|i| ["low", "high"][i % 2].to_string()).collect();
    let meta_csv = format!(
        "stimulus_id,variation,class_name\n{}",
        (0..n)
            .map(|i| format!("img{i},{},c{}\n", variation[i], i % 3))
            .collect::<String>()
    );
    let ids_a = NpyArray::from_strings(&act_ids);
    let var_a = NpyArray::from_strings(&variation);
    // The target's files: one .npy per member (it stores them into the npz), then the CSV.
    let members = |with_ids: bool, csv: Option<&str>| -> Vec<u8> {
        let mut files: Vec<Vec<u8>> = [&out_a, &reps_a, &labels_a, &w_a, &b_a]
            .iter()
            .map(|a| a.to_bytes())
            .collect();
        if with_ids {
            files.push(ids_a.to_bytes());
            files.push(var_a.to_bytes());
        }
        if let Some(c) = csv {
            files.push(c.as_bytes().to_vec());
        }
        join(&files)
    };
    s.insert(
        "dynamics",
        vec![
            members(false, None),
            members(true, None),
            members(true, Some(&meta_csv)),
        ],
    );

    // Trajectories as `train.sgd_dynamics` logs them (a power law with noise) and a user's
    // own two-column log.
    let mut logged = String::from("step,epoch,lr,dist_sq,local_sq,vel_norm\n");
    let mut own = String::from("k,dist_sq\n");
    for k in 0..40u32 {
        let kf = f64::from(k);
        let dist = 0.02 * kf.powf(0.7) * (1.0 + 0.01 * f64::from(k % 3));
        logged.push_str(&format!(
            "{},{},0.02,{dist},{},{}\n",
            k + 100,
            k / 10,
            1e-4 * (1.0 + 0.1 * f64::from(k % 5)),
            0.5 + 0.01 * kf
        ));
        own.push_str(&format!("{k},{dist}\n"));
    }
    s.insert("trajectory", vec![logged.into_bytes(), own.into_bytes()]);

    // Behavioural trials: three objects, six images, both distractors per image; and
    // Brain-Score's own Rajalingham2018-layout assembly (the golden test's fixture).
    let objs = ["bear", "car", "dog"];
    let mut trials = String::from("stimulus_id,sample_obj,dist_obj,choice\n");
    for i in 0..6usize {
        let o = i % 3;
        for off in 1..3 {
            let dist = (o + off) % 3;
            for rep in 0..2 {
                let choice = if (i + rep + off) % 4 == 0 { dist } else { o };
                trials.push_str(&format!(
                    "im{i},{},{},{}\n",
                    objs[o], objs[dist], objs[choice]
                ));
            }
        }
    }
    s.insert("trials", vec![trials.into_bytes()]);
    s.insert(
        "trials_nc",
        vec![std::fs::read(repo.join(
            "crates/ventral-neural/tests/fixtures/brainscore_trials.nc",
        ))?],
    );

    // The synthetic recordings above as plain arrays with a TOML naming their axes.
    let a = &syn.assembly;
    let mut arrays: Vec<(String, NpyArray)> = vec![(
        "resp".into(),
        arr(a.shape.clone(), NpyData::F64(a.data.clone()))?,
    )];
    let mut rec_toml = String::from(
        "npz = \"rec.npz\"\ndata = \"resp\"\ndims = [\"presentation\", \"neuroid\", \"time_bin\"]\nidentifier = \"fuzz.recordings\"\n\n[coords]\n",
    );
    for (name, c) in &a.coords {
        let data = match &c.values {
            ventral_neural::CoordValues::Str(v) => NpyData::Bytes {
                width: v.iter().map(String::len).max().unwrap_or(1),
                values: v.iter().map(|x| x.as_bytes().to_vec()).collect(),
            },
            ventral_neural::CoordValues::Int(v) => NpyData::I64(v.clone()),
            ventral_neural::CoordValues::Float(v) => NpyData::F64(v.clone()),
        };
        arrays.push((format!("c_{name}"), arr(vec![c.values.len()], data)?));
        rec_toml.push_str(&format!("{name} = \"c_{name}\"\n"));
    }
    let refs: Vec<(&str, &NpyArray)> = arrays.iter().map(|(n, x)| (n.as_str(), x)).collect();
    s.insert(
        "recordings_npz",
        vec![join(&[
            rec_toml.into_bytes(),
            npz_bytes(scratch, &refs, false)?,
        ])],
    );

    // A splits.json as `neural-fit` writes it (two splits of six ids, two ceiling halvings of
    // four repetitions).
    s.insert(
        "splits",
        vec![
            br#"{"procedure":"ventral","seed":0,"splits":[{"train":["s0","s1","s2","s3"],"test":["s4","s5"]},{"train":["s2","s3","s4","s5"],"test":["s0","s1"]}],"ceiling_halves":{"seed":0,"halves":[{"first":[0,1],"second":[2,3]},{"first":[0,2],"second":[1,3]}]}}"#
                .to_vec(),
            br#"{"splits":[{"train":["s5","s4","s3"],"test":["s0","s1","s2"]}]}"#.to_vec(),
        ],
    );
    Ok(s)
}
