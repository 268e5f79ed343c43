//! The run directory: what a fresh run writes first, resume points and their discovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ventral_core::safetensors::{SafeTensors, TensorOut};
use ventral_core::{AtomicDir, write_bytes_atomic};
use ventral_models::{Model, params};

use super::LoopState;
use super::observer::Observer;
use crate::error::{Result, TrainError, file_err};
use crate::optim::Optimizer;

/// Save `model`'s parameters under their PyTorch names (deterministic bytes, atomic).
pub fn save_model(model: &Model, path: &Path) -> Result<()> {
    let ex = params::export(model)?;
    let tensors: BTreeMap<String, TensorOut<'_>> = ex
        .iter()
        .map(|(k, (s, d))| (k.clone(), TensorOut::F32(s, d)))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert(
        "model".to_string(),
        serde_json::to_string(&model.config()).unwrap_or_default(),
    );
    meta.insert(
        "format".to_string(),
        "ventral weights, PyTorch parameter names".to_string(),
    );
    ventral_core::safetensors::write(path, &tensors, &meta)?;
    Ok(())
}

/// Load weights saved by ventral or by PyTorch (same names: safetensors, or a `torch.save`d
/// state dict) into `model`; an rcnn-sat network also reads the reference's Keras HDF5 weights
/// (`ventral_models::rcnn_sat::keras`), a ConvRNN translated from the original convrnns zoo
/// its TensorFlow checkpoints (`ventral_models::convrnn::tf_weights`: TensorFlow's names and
/// layouts mapped onto the model's). Other models refuse a TensorFlow checkpoint.
pub fn load_weights(model: Model, path: &Path) -> Result<Model> {
    use ventral_models::rcnn_sat::keras::HDF5_MAGIC;
    let tf = ventral_core::tf_checkpoint::prefix_of(path).is_some();
    if tf && !matches!(model, Model::ConvRnn(_)) {
        // Refused before the checkpoint (often gigabytes) is read.
        return Err(file_err(
            path.display(),
            "a TensorFlow checkpoint, under TensorFlow's names and layouts (`ventral inspect` \
             lists them): ventral maps TensorFlow's names for the convrnns zoo's ConvRNNs \
             (kind = \"convrnn\" from a convrnns model JSON or preset) only",
        ));
    }
    let st = if !tf && SafeTensors::head(path, HDF5_MAGIC.len())? == HDF5_MAGIC {
        match &model {
            Model::RcnnSat(m) => ventral_models::rcnn_sat::keras::read(path, &m.config)?,
            _ => {
                return Err(file_err(
                    path.display(),
                    "an HDF5 file: Keras weights are read for rcnn-sat networks (kind = \
                     \"rcnn_sat\") only; give this model safetensors or a PyTorch state dict",
                ));
            }
        }
    } else {
        SafeTensors::read(path)?
    };
    match model {
        Model::ConvRnn(m) if tf => {
            let named = ventral_models::convrnn::tf_weights::from_tensorflow(&m, &st)?;
            Ok(Model::ConvRnn(params::load_named(m, &named).map_err(
                |e| {
                    file_err(
                        path.display(),
                        format!("mapped from TensorFlow's names: {e}"),
                    )
                },
            )?))
        }
        model => Ok(params::load(model, &st)?),
    }
}

/// [`load_weights`] for running a model as it was trained: a convrnns TensorFlow checkpoint
/// also brings TensorFlow's layer-norm ε (1e-12) to the cells whose configuration leaves it
/// unset ([`ventral_models::convrnn::ConvRnn::use_tensorflow_layer_norm_eps`]), so that the
/// model gives the original's numbers (`record`); training from one keeps ventral's 1e-5.
pub fn load_weights_for_inference(model: Model, path: &Path) -> Result<Model> {
    let tf = ventral_core::tf_checkpoint::prefix_of(path).is_some();
    match load_weights(model, path)? {
        Model::ConvRnn(mut m) if tf => {
            m.use_tensorflow_layer_norm_eps();
            Ok(Model::ConvRnn(m))
        }
        m => Ok(m),
    }
}

/// A resume point read back: where it is and the loop state saved in it.
pub(super) struct Point {
    pub dir: PathBuf,
    pub state: LoopState,
}

impl Point {
    /// The state an observer saved in this point, if any.
    pub fn observer_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let p = self.dir.join("observers").join(format!("{name}.json"));
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_err(p.display(), e)),
        }
    }
}

/// The run directory.
pub(super) struct Run {
    pub dir: PathBuf,
}

impl Run {
    pub fn ckpt(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// Decide what `--out` holds: `Ok(None)` to start fresh, `Ok(Some(point))` to resume, or
    /// an error when the directory holds something else. A finished run with `resume` is
    /// reported by [`Self::is_done`] before this is called.
    pub fn open(&self, resume: bool, config_text: &str) -> Result<Option<Point>> {
        if !self.dir.exists() {
            return Ok(None);
        }
        let saved = std::fs::read_to_string(self.dir.join("config.toml")).ok();
        let empty = std::fs::read_dir(&self.dir)
            .map(|mut r| r.next().is_none())
            .unwrap_or(true);
        match (&saved, resume) {
            (Some(s), true) if s != config_text => Err(TrainError::Config(format!(
                "{}: the run's config.toml differs from this configuration; resume with the same config and --set values",
                self.dir.display()
            ))),
            (_, true) => self.latest(),
            (None, false) if empty => Ok(None),
            (_, false) => Err(TrainError::Config(format!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                self.dir.display()
            ))),
        }
    }

    pub fn is_done(&self) -> bool {
        self.dir.join("DONE").is_file()
    }

    /// Write a resume point after `state.global_step` steps: model, optimiser, loop state and
    /// every observer's state, committed as one directory and then named in `LATEST`.
    pub fn save_point(
        &self,
        model: &Model,
        opt: &Optimizer,
        state: &LoopState,
        observers: &mut [&mut dyn Observer],
    ) -> Result<()> {
        let name = format!("step_{:08}", state.global_step);
        let target = self.ckpt().join(&name);
        if target.exists() {
            // Already saved at this step (e.g. epoch end right after a step checkpoint).
            return Ok(());
        }
        let d = AtomicDir::create(&target, false).map_err(|e| file_err(target.display(), e))?;
        save_model(model, &d.path().join("model.safetensors"))?;
        opt.save(&d.path().join("optim.safetensors"))?;
        let js = serde_json::to_vec_pretty(state).unwrap_or_default();
        write_bytes_atomic(&d.path().join("state.json"), &js)
            .map_err(|e| file_err(target.display(), e))?;
        for o in observers.iter_mut() {
            let bytes = o.checkpoint(&self.dir, state.global_step)?;
            if bytes.is_empty() {
                continue;
            }
            let od = d.path().join("observers");
            std::fs::create_dir_all(&od).map_err(|e| file_err(od.display(), e))?;
            write_bytes_atomic(&od.join(format!("{}.json", o.name())), &bytes)
                .map_err(|e| file_err(target.display(), e))?;
        }
        d.commit().map_err(|e| file_err(target.display(), e))?;
        let latest = self.ckpt().join("LATEST");
        write_bytes_atomic(&latest, name.as_bytes()).map_err(|e| file_err(latest.display(), e))?;
        // Older resume points are no longer needed.
        if let Ok(rd) = std::fs::read_dir(self.ckpt()) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with("step_") && n != name {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    /// The newest complete resume point, read.
    pub(super) fn latest(&self) -> Result<Option<Point>> {
        let Ok(name) = std::fs::read_to_string(self.ckpt().join("LATEST")) else {
            return Ok(None);
        };
        let dir = self.ckpt().join(name.trim());
        let sp = dir.join("state.json");
        if !sp.is_file() {
            return Ok(None);
        }
        let js = std::fs::read(&sp).map_err(|e| file_err(sp.display(), e))?;
        let state: LoopState =
            serde_json::from_slice(&js).map_err(|e| file_err(sp.display(), e))?;
        Ok(Some(Point { dir, state }))
    }

    /// Keep a copy of the weights as `checkpoints/epoch_NNNN` (once).
    pub fn save_epoch(&self, model: &Model, epoch: usize) -> Result<()> {
        let d = self.ckpt().join(format!("epoch_{epoch:04}"));
        if !d.exists() {
            let a = AtomicDir::create(&d, false).map_err(|e| file_err(d.display(), e))?;
            save_model(model, &a.path().join("model.safetensors"))?;
            a.commit().map_err(|e| file_err(d.display(), e))?;
        }
        Ok(())
    }

    /// Keep the untrained network as `checkpoints/init` (once).
    pub fn save_init(&self, model: &Model) -> Result<()> {
        let init_dir = self.ckpt().join("init");
        if !init_dir.exists() {
            let d =
                AtomicDir::create(&init_dir, false).map_err(|e| file_err(init_dir.display(), e))?;
            save_model(model, &d.path().join("model.safetensors"))?;
            d.commit().map_err(|e| file_err(init_dir.display(), e))?;
        }
        Ok(())
    }
}
