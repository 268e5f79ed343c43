//! Hyperparameter sweeps: a spec expands into a manifest of runs, each named by the hash of
//! its resolved configuration; workers run their shard (Slurm array tasks, Kubernetes Indexed
//! Job pods, or plain processes), every run at most once at a time thanks to a lock file.
//!
//! Spec (`sweep.toml`):
//!
//! ```toml
//! base = "configs/tiny.toml"        # relative to the spec file
//! set = ["data.path=/data/stimuli"] # applied to every run (as --set)
//! init_from = "runs/tiny"           # optional: every run starts from these weights (RUN[:EPOCH] or a file)
//!
//! [grid]                            # the Cartesian product of these lists …
//! "train.optimizer.lr" = [0.01, 0.02, 0.05]
//! "train.batch_size" = [16, 32, 64, 128, 256]
//!
//! [[runs]]                          # … and/or explicit points
//! "train.optimizer.momentum" = 0.99
//! ```
//!
//! Output directory: `sweep.json` (the manifest: for each run its name, its parameters and the
//! BLAKE3 of its resolved `config.toml`), `runs/<name>/` (ordinary run directories),
//! `runs/<name>.lock` while a worker trains it, `runs/<name>/FAILED` when it failed (not retried
//! unless asked) and `sweep.log` (one line per start, finish and failure, appended).
//!
//! Sharding: run i of the manifest belongs to shard i mod N. Planning again with the same
//! spec is a no-op; a finished run is skipped; an interrupted one resumes from its last resume
//! point.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ventral_core::atomic::OutputLock;

use crate::config::TrainFile;
use crate::error::{Result, TrainError, file_err};

/// The spec file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub base: PathBuf,
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub init_from: Option<String>,
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    pub runs: Vec<BTreeMap<String, toml::Value>>,
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// `run-` + the first 12 hex digits of the BLAKE3 of the resolved configuration (and of
    /// `init_from`).
    pub name: String,
    /// The swept keys and their values (TOML syntax).
    pub params: BTreeMap<String, String>,
    /// Every `--set` of this run, in order: the spec's `set`, then the point.
    pub overrides: Vec<String>,
    pub config_blake3: String,
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The base configuration (as given, resolved against the spec's directory).
    pub base: PathBuf,
    pub init_from: Option<String>,
    pub runs: Vec<RunEntry>,
}

/// Manifest file name.
pub const MANIFEST: &str = "sweep.json";

fn value_text(v: &toml::Value) -> String {
    match v {
        // A bare word would be parsed back as a string anyway; keep TOML's quoting.
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Most runs one sweep may expand to (a grid is a product: a few long lists multiply past any
/// machine's memory).
pub const MAX_RUNS: usize = 100_000;

/// Expand a spec into runs (grid points first, in key order with the last key varying
/// fastest, then the explicit points); every point's configuration is loaded and checked.
pub fn expand(spec_path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| file_err(spec_path.display(), e))?;
    let spec: SweepSpec = toml::from_str(&text).map_err(|e| file_err(spec_path.display(), e))?;
    let base = spec_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&spec.base);
    let mut points: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
    for (key, values) in &spec.grid {
        if values.is_empty() {
            return Err(file_err(
                spec_path.display(),
                format!("grid.\"{key}\" is an empty list"),
            ));
        }
        if points.len().saturating_mul(values.len()) > MAX_RUNS {
            return Err(file_err(
                spec_path.display(),
                format!("the grid has more than {MAX_RUNS} points (at \"{key}\"); split the sweep"),
            ));
        }
        let mut next = Vec::with_capacity(points.len() * values.len());
        for p in &points {
            for v in values {
                let mut q = p.clone();
                q.insert(key.clone(), value_text(v));
                next.push(q);
            }
        }
        points = next;
    }
    if spec.grid.is_empty() {
        points.clear();
    }
    for r in &spec.runs {
        points.push(r.iter().map(|(k, v)| (k.clone(), value_text(v))).collect());
    }
    if points.is_empty() {
        return Err(file_err(
            spec_path.display(),
            "no runs: give a [grid] table or [[runs]] entries",
        ));
    }
    let mut runs: Vec<RunEntry> = Vec::with_capacity(points.len());
    for p in points {
        let mut overrides = spec.set.clone();
        overrides.extend(p.iter().map(|(k, v)| format!("{k}={v}")));
        let cfg = TrainFile::load(&base, &overrides)
            .and_then(|c| {
                c.check_for_training()
                    .map(|_| c)
                    .map_err(TrainError::Config)
            })
            .map_err(|e| {
                file_err(
                    spec_path.display(),
                    format!("the point {}: {e}", describe(&p)),
                )
            })?;
        let config_text = cfg.to_toml();
        let mut key = config_text.clone().into_bytes();
        if let Some(i) = &spec.init_from {
            key.extend_from_slice(b"\0init_from=");
            key.extend_from_slice(i.as_bytes());
        }
        let hex = ventral_core::hash::blake3_hex(&key);
        let name = format!("run-{}", &hex[..12]);
        if let Some(other) = runs.iter().find(|r| r.name == name) {
            return Err(file_err(
                spec_path.display(),
                format!(
                    "the points {} and {} give the same configuration",
                    describe(&other.params),
                    describe(&p)
                ),
            ));
        }
        runs.push(RunEntry {
            name,
            params: p,
            overrides,
            config_blake3: ventral_core::hash::blake3_hex(config_text.as_bytes()),
        });
    }
    Ok(Manifest {
        format: "ventral-sweep".into(),
        version: 1,
        base,
        init_from: spec.init_from,
        runs,
    })
}

fn describe(p: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("[{}]", v.join(", "))
}

/// Write the manifest into `dir` (created). Planning the same sweep again is a no-op
/// (returns `false`); a different sweep in `dir` is an error.
pub fn plan(m: &Manifest, dir: &Path) -> Result<bool> {
    let path = dir.join(MANIFEST);
    if path.exists() {
        let old = read_manifest(dir)?;
        if old == *m {
            return Ok(false);
        }
        return Err(file_err(
            path.display(),
            "holds a different sweep (other base, init_from or points); choose another --out",
        ));
    }
    let fresh = !dir.exists();
    std::fs::create_dir_all(dir.join("runs")).map_err(|e| file_err(dir.display(), e))?;
    let js = serde_json::to_vec_pretty(m).unwrap_or_default();
    if let Err(e) = ventral_core::write_bytes_atomic(&path, &js) {
        // Nothing planned: a directory this call created goes again (only while empty).
        if fresh {
            let _ = std::fs::remove_dir(dir.join("runs"));
            let _ = std::fs::remove_dir(dir);
        }
        return Err(file_err(path.display(), e));
    }
    Ok(true)
}

/// Read `dir/sweep.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let b = std::fs::read(&path).map_err(|e| {
        file_err(
            path.display(),
            format!("{e} (is this a sweep directory? plan it with `ventral sweep SPEC --out DIR`)"),
        )
    })?;
    let m: Manifest = serde_json::from_slice(&b).map_err(|e| file_err(path.display(), e))?;
    if m.format != "ventral-sweep" || m.version != 1 {
        return Err(file_err(
            path.display(),
            format!(
                "format {} version {} is not ventral-sweep 1",
                m.format, m.version
            ),
        ));
    }
    // Each name becomes `runs/<name>/`: a hand-edited `../x` would train outside the sweep.
    for r in &m.runs {
        ventral_core::atomic::check_plain_name(&r.name).map_err(|why| {
            file_err(
                path.display(),
                format!("run name {:?} cannot be used: {why}", r.name),
            )
        })?;
    }
    Ok(m)
}

/// Which shard this worker runs: `explicit` (K, N) if given, else Slurm's
/// `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT` (with `SLURM_ARRAY_TASK_MIN` subtracted), else
/// Kubernetes' `JOB_COMPLETION_INDEX` with `VENTRAL_SHARDS` (set it to the Job's
/// `completions`), else (0, 1): everything. `env` looks a variable up.
pub fn resolve_shard(
    explicit: Option<(usize, usize)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(usize, usize)> {
    let num = |k: &str| -> Result<Option<usize>> {
        match env(k) {
            None => Ok(None),
            Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
                TrainError::Config(format!(
                    "environment variable {k}={v} is not a whole number"
                ))
            }),
        }
    };
    let (k, n, from) = if let Some((k, n)) = explicit {
        (k, n, "--shard")
    } else if let (Some(id), Some(count)) =
        (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?)
    {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        (id.saturating_sub(min), count, "SLURM_ARRAY_TASK_ID/COUNT")
    } else if let Some(idx) = num("JOB_COMPLETION_INDEX")? {
        let n = num("VENTRAL_SHARDS")?.ok_or_else(|| {
            TrainError::Config(
                "JOB_COMPLETION_INDEX is set but VENTRAL_SHARDS is not: set it to the Job's completions (docs/sweeps.md)"
                    .into(),
            )
        })?;
        (idx, n, "JOB_COMPLETION_INDEX/VENTRAL_SHARDS")
    } else {
        (0, 1, "default")
    };
    if n == 0 || k >= n {
        return Err(TrainError::Config(format!(
            "shard {k} of {n} (from {from}): need 0 <= K < N"
        )));
    }
    Ok((k, n))
}

/// Parse `K/N`.
pub fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: expected K/N, e.g. 0/4"))?;
    let k = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard {s}: K is not a whole number"))?;
    let n = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard {s}: N is not a whole number"))?;
    Ok((k, n))
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Done,
    Failed(String),
    /// A worker holds the lock (its `host:pid`).
    Running(String),
    /// Started and interrupted: the loop state of its last resume point.
    Partial {
        epoch: usize,
        batch: usize,
    },
    Pending,
}

impl RunState {
    pub fn label(&self) -> String {
        match self {
            RunState::Done => "done".into(),
            RunState::Failed(m) => format!("failed: {m}"),
            RunState::Running(by) => format!("running ({by})"),
            RunState::Partial { epoch, batch } => format!("partial (epoch {epoch}, batch {batch})"),
            RunState::Pending => "pending".into(),
        }
    }
}

/// A run's directory.
pub fn run_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("runs").join(name)
}

fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("runs").join(format!("{name}.lock"))
}

/// Host name for lock files (`/proc/sys/kernel/hostname`, `HOSTNAME`, else "localhost").
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The lock on one run: `runs/<name>.lock` held through [`OutputLock`] (an advisory `flock`
/// the kernel drops when the worker dies, so a killed worker never leaves a stale lock),
/// holding `host:pid` for `sweep status`. Released (file removed) on drop.
pub type RunLock = OutputLock;

/// Take the lock of run `name`; `Ok(None)` when another worker holds it.
pub fn try_lock(dir: &Path, name: &str) -> Result<Option<RunLock>> {
    let p = lock_path(dir, name);
    let me = format!("{}:{}", host(), std::process::id());
    OutputLock::try_at(&p, &me).map_err(|e| file_err(p.display(), e))
}

/// Where run `name` of the sweep in `dir` stands.
pub fn state(dir: &Path, name: &str) -> RunState {
    let rd = run_dir(dir, name);
    if rd.join("DONE").is_file() {
        return RunState::Done;
    }
    if let Ok(m) = std::fs::read_to_string(rd.join("FAILED")) {
        return RunState::Failed(m.lines().next().unwrap_or("").to_string());
    }
    if let Some(owner) = OutputLock::holder(&lock_path(dir, name)) {
        return RunState::Running(owner);
    }
    let latest = std::fs::read_to_string(rd.join("checkpoints/LATEST")).unwrap_or_default();
    let st = rd
        .join("checkpoints")
        .join(latest.trim())
        .join("state.json");
    if let Ok(b) = std::fs::read(&st)
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b)
    {
        return RunState::Partial {
            epoch: v["epoch"].as_u64().unwrap_or(0) as usize,
            batch: v["batch"].as_u64().unwrap_or(0) as usize,
        };
    }
    RunState::Pending
}

/// Append one line to `dir/sweep.log` (one write per line, O_APPEND).
pub fn log(dir: &Path, line: &str) {
    let p = dir.join("sweep.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// What a worker did.
#[derive(Debug, Default)]
pub struct ShardReport {
    pub trained: Vec<String>,
    pub skipped_done: Vec<String>,
    pub skipped_running: Vec<String>,
    pub skipped_failed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Run shard `k` of `n`: each pending, partial (or, with `retry_failed`, failed) run whose
/// index is ≡ k (mod n), under its lock, through `train_one(entry, run_dir)`. A failure is
/// written to the run's `FAILED` and the worker goes on; a run interrupted by a signal is not
/// marked failed and stops the worker (`Err` returned).
pub fn run_shard(
    dir: &Path,
    m: &Manifest,
    (k, n): (usize, usize),
    retry_failed: bool,
    train_one: &mut dyn FnMut(&RunEntry, &Path) -> Result<()>,
) -> Result<ShardReport> {
    let mut rep = ShardReport::default();
    let me = format!("{}:{}", host(), std::process::id());
    for (i, e) in m.runs.iter().enumerate() {
        if i % n != k {
            continue;
        }
        let rd = run_dir(dir, &e.name);
        if rd.join("DONE").is_file() {
            rep.skipped_done.push(e.name.clone());
            continue;
        }
        let Some(lock) = try_lock(dir, &e.name)? else {
            rep.skipped_running.push(e.name.clone());
            continue;
        };
        // Re-check under the lock: another worker may have finished it meanwhile.
        if rd.join("DONE").is_file() {
            rep.skipped_done.push(e.name.clone());
            continue;
        }
        if rd.join("FAILED").is_file() {
            if !retry_failed {
                rep.skipped_failed.push(e.name.clone());
                continue;
            }
            let _ = std::fs::remove_file(rd.join("FAILED"));
        }
        log(dir, &format!("start {} {me}", e.name));
        match train_one(e, &rd) {
            Ok(()) => {
                log(dir, &format!("done {} {me}", e.name));
                rep.trained.push(e.name.clone());
            }
            Err(err @ TrainError::Interrupted(_)) => {
                log(dir, &format!("interrupted {} {me}", e.name));
                drop(lock);
                return Err(err);
            }
            Err(err) => {
                let msg = err.to_string();
                log(dir, &format!("failed {} {me}: {msg}", e.name));
                std::fs::create_dir_all(&rd).map_err(|x| file_err(rd.display(), x))?;
                ventral_core::write_bytes_atomic(&rd.join("FAILED"), format!("{msg}\n").as_bytes())
                    .map_err(|x| file_err(rd.display(), x))?;
                rep.failed.push((e.name.clone(), msg));
            }
        }
        drop(lock);
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_from_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(resolve_shard(Some((1, 3)), &env(&[])).unwrap(), (1, 3));
        assert_eq!(resolve_shard(None, &env(&[])).unwrap(), (0, 1));
        assert_eq!(
            resolve_shard(
                None,
                &env(&[
                    ("SLURM_ARRAY_TASK_ID", "5"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                    ("SLURM_ARRAY_TASK_MIN", "2")
                ])
            )
            .unwrap(),
            (3, 4)
        );
        assert_eq!(
            resolve_shard(
                None,
                &env(&[("JOB_COMPLETION_INDEX", "2"), ("VENTRAL_SHARDS", "3")])
            )
            .unwrap(),
            (2, 3)
        );
        assert!(
            resolve_shard(None, &env(&[("JOB_COMPLETION_INDEX", "2")]))
                .unwrap_err()
                .to_string()
                .contains("VENTRAL_SHARDS")
        );
        assert!(resolve_shard(Some((3, 3)), &env(&[])).is_err());
        assert!(
            resolve_shard(
                None,
                &env(&[
                    ("SLURM_ARRAY_TASK_ID", "x"),
                    ("SLURM_ARRAY_TASK_COUNT", "2")
                ])
            )
            .is_err()
        );
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("1").is_err());
    }

    #[test]
    fn a_held_lock_is_not_taken_twice_and_is_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("runs")).unwrap();
        let l = try_lock(d.path(), "a").unwrap().unwrap();
        assert!(try_lock(d.path(), "a").unwrap().is_none(), "held");
        assert_eq!(
            state(d.path(), "a"),
            RunState::Running(format!("{}:{}", host(), std::process::id()))
        );
        drop(l);
        assert!(!d.path().join("runs/a.lock").exists());
        assert_eq!(state(d.path(), "a"), RunState::Pending);
        // A lock file left without a holder (its worker was killed) is simply taken.
        std::fs::write(d.path().join("runs/b.lock"), "elsewhere:1").unwrap();
        assert!(try_lock(d.path(), "b").unwrap().is_some());
    }
}

#[cfg(test)]
mod manifest_tests {
    use super::*;

    /// A run name is one directory under `runs/`: a hand-edited `sweep.json` naming a run
    /// `../x` is refused when the manifest is read, before any worker trains it.
    #[test]
    fn run_names_that_leave_the_sweep_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let entry = |name: &str| RunEntry {
            name: name.into(),
            params: BTreeMap::new(),
            overrides: Vec::new(),
            config_blake3: String::new(),
        };
        for (name, ok) in [
            ("run-0123456789ab", true),
            ("../escaped", false),
            ("..", false),
        ] {
            let m = Manifest {
                format: "ventral-sweep".into(),
                version: 1,
                base: PathBuf::from("tiny.toml"),
                init_from: None,
                runs: vec![entry(name)],
            };
            std::fs::write(d.path().join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
            let r = read_manifest(d.path());
            assert_eq!(r.is_ok(), ok, "{name}: {r:?}");
            if !ok {
                let e = r.unwrap_err().to_string();
                assert!(e.contains("sweep.json") && e.contains(name), "{e}");
            }
        }
    }
}
