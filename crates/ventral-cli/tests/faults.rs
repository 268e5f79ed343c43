//! Fault tests (issue 13): every writer is killed with SIGKILL at seeded random moments and
//! rerun — the rerun succeeds and no orphan temporary stays behind — and every writer meets a
//! full disk (a small tmpfs, where this process may mount one) — it fails with exit 2 naming
//! the cause and leaves nothing on the disk, so the same command succeeds once space is free.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, s, ventral};

/// Temporaries a ventral writer may leave: `.<name>.<pid>-<n>.tmp`, `.record-<pid>…`, and
/// lock files.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.')
            && (n.ends_with(".tmp") || n.contains(".record-") || n.ends_with(".lock"))
        {
            out.push(e.path());
        }
    }
    out
}

/// Make temporaries look older than the minute a writer on another machine is given.
fn age(paths: &[PathBuf]) {
    for p in paths {
        Command::new("touch")
            .args(["-h", "-d", "-3 minutes"])
            .arg(p)
            .status()
            .unwrap();
    }
}

fn cmd(args: &[String]) -> Command {
    let mut c = common::command();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// Runs `args` once to time it, then for each of `kills` seeded moments in that time: spawn,
/// SIGKILL, check the output is absent or whole (`check`), age the temporaries, rerun (after
/// removing a whole output, which a rerun would refuse) and check the rerun leaves no orphan.
fn kill_and_rerun(
    name: &str,
    args: &[String],
    out: &Path,
    kills: usize,
    check: &dyn Fn(&Path),
    remove: &dyn Fn(&Path),
) {
    let parent = out.parent().unwrap();
    let t0 = Instant::now();
    let o = cmd(args).output().unwrap();
    ok(&o);
    let full = t0.elapsed();
    check(out);
    remove(out);
    let mut rng = ventral_core::rng::stream(13, &format!("faults-{name}"), &[]);
    for k in 0..kills {
        let frac = (rand::Rng::next_u32(&mut rng) as f64) / (u32::MAX as f64);
        let at = Duration::from_secs_f64(0.02 + frac * full.as_secs_f64() * 0.9);
        let mut child = cmd(args).spawn().unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        if out.exists() {
            // Killed after the commit: the output must be whole.
            check(out);
            remove(out);
        }
        let left = temporaries(parent);
        age(&left);
        let o = cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "{name}: rerun after a kill at {at:?} (#{k}) failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        check(out);
        let orphans = temporaries(parent);
        assert!(
            orphans.is_empty(),
            "{name}: after a kill at {at:?} and a rerun, temporaries remain: {orphans:?} (were {left:?})"
        );
        remove(out);
    }
}

fn rm(p: &Path) {
    if p.is_dir() {
        std::fs::remove_dir_all(p).unwrap();
    } else if p.exists() {
        std::fs::remove_file(p).unwrap();
    }
}

fn verify(p: &Path) {
    ok(&ventral(&["inspect", s(p), "--verify"]));
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// A small trained run and its data, shared by the record and train cases.
fn small_run(d: &Path) -> (PathBuf, PathBuf) {
    let stim = d.join("stim");
    ok(&ventral(&[
        "stimuli",
        "--out",
        s(&stim),
        "--num-images",
        "400",
    ]));
    let run = d.join("run");
    let cfg = common_config(d, &stim);
    ok(&ventral(&["train", s(&cfg), "--out", s(&run)]));
    (stim, run)
}

/// `configs/tiny.toml` on the stimuli at `stim`, two epochs.
fn common_config(d: &Path, stim: &Path) -> PathBuf {
    let repo = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("configs/tiny.toml"))
        .unwrap()
        .replace("path = \"runs/stimuli\"", &format!("path = {:?}", s(stim)));
    // Whatever the shipped number of epochs, two.
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("epochs = ") {
                "epochs = 2"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("\nepochs = 2\n"),
        "tiny.toml has no epochs line"
    );
    let cfg = d.join("tiny.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn kill_at_random_moments_then_rerun_succeeds_without_orphans() {
    let d = tempfile::tempdir().unwrap();
    // stimuli
    let out = d.path().join("k_stim");
    kill_and_rerun(
        "stimuli",
        &strings(&["stimuli", "--num-images", "1500", "--out", s(&out)]),
        &out,
        3,
        &verify,
        &rm,
    );
    // pack (an npz of 3 000 images)
    let n = 3000;
    let mut rng = ventral_core::rng::stream(13, "faults-pack-images", &[]);
    let px: Vec<u8> = (0..n * 32 * 32 * 3)
        .map(|_| rand::Rng::next_u32(&mut rng) as u8)
        .collect();
    let images =
        ventral_core::npy::NpyArray::new(vec![n, 32, 32, 3], ventral_core::npy::NpyData::U8(px))
            .unwrap();
    let labels = ventral_core::npy::NpyArray::new(
        vec![n],
        ventral_core::npy::NpyData::I64((0..n as i64).map(|i| i % 10).collect()),
    )
    .unwrap();
    let npz = d.path().join("imgs.npz");
    ventral_core::npy::write_npz(&npz, &[("images", &images), ("labels", &labels)], false).unwrap();
    let out = d.path().join("k_pack");
    kill_and_rerun(
        "pack",
        &strings(&["pack", "--format", "npz", s(&npz), "--out", s(&out)]),
        &out,
        3,
        &verify,
        &rm,
    );
    // record and train, on a small trained run
    let (stim, run) = small_run(d.path());
    let out = d.path().join("k_rec.npz");
    kill_and_rerun(
        "record",
        &strings(&[
            "record",
            "--run",
            s(&run),
            "--data",
            s(&stim),
            "--layers",
            "v1,v2,v4,it",
            "--pool",
            "none",
            "--out",
            s(&out),
        ]),
        &out,
        3,
        &|p: &Path| {
            let mut z = ventral_core::npy::NpzReader::open(p).unwrap();
            assert!(z.read("it").is_ok(), "{}", p.display());
        },
        &rm,
    );
    // Two writers of one file (record's npz) and of one run directory (train) at once: one
    // wins, the other stops at once with exit 2 naming the holder — or finds the output there.
    let cfg = common_config(d.path(), &stim);
    let same = d.path().join("same.npz");
    let rec_args = strings(&[
        "record",
        "--run",
        s(&run),
        "--data",
        s(&stim),
        "--layers",
        "v1,v2,v4,it",
        "--pool",
        "none",
        "--out",
        s(&same),
    ]);
    let train_out = d.path().join("same_run");
    let train_args = strings(&["train", s(&cfg), "--out", s(&train_out)]);
    for (what, args) in [("record", &rec_args), ("train", &train_args)] {
        let (a, b) = (cmd(args).spawn().unwrap(), cmd(args).spawn().unwrap());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let won = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            won, 1,
            "{what}: exactly one of two concurrent writers succeeds"
        );
        let lost = outs.iter().find(|o| !o.status.success()).unwrap();
        let err = String::from_utf8_lossy(&lost.stderr);
        assert_eq!(lost.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("being written by another process")
                || err.contains("already exists")
                || err.contains("already holds a run")
                || err.contains("finished run"),
            "{what}: {err}"
        );
        assert!(
            temporaries(d.path()).is_empty(),
            "{what}: {:?}",
            temporaries(d.path())
        );
    }
    ventral_core::npy::NpzReader::open(&same)
        .unwrap()
        .read("it")
        .unwrap();
    assert!(train_out.join("DONE").exists());

    // train: the killed run is resumed; the run directory holds no temporaries afterwards.
    let out = d.path().join("k_train");
    let base = strings(&["train", s(&cfg), "--out", s(&out)]);
    let t0 = Instant::now();
    ok(&cmd(&base).output().unwrap());
    let full = t0.elapsed();
    rm(&out);
    let mut rng = ventral_core::rng::stream(13, "faults-train", &[]);
    for _ in 0..3 {
        let frac = (rand::Rng::next_u32(&mut rng) as f64) / (u32::MAX as f64);
        let at = Duration::from_secs_f64(0.05 + frac * full.as_secs_f64() * 0.9);
        let mut child = cmd(&base).spawn().unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        for p in [&out, d.path()] {
            age(&temporaries(p));
        }
        let mut resume = base.clone();
        if out.exists() {
            resume.push("--resume".into());
        }
        let o = cmd(&resume).output().unwrap();
        assert!(
            o.status.success(),
            "train: resume after a kill at {at:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let orphans: Vec<PathBuf> = temporaries(&out)
            .into_iter()
            .chain(temporaries(d.path()))
            .collect();
        assert!(orphans.is_empty(), "train: kill at {at:?}: {orphans:?}");
        assert!(out.join("weights.safetensors").exists());
        rm(&out);
    }
}

/// A tmpfs of `mib` MiB at `path`, unmounted on drop; `None` (with the reason printed) where
/// this process may not mount one.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, mib: usize) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::piped())
            .output();
        match st {
            Ok(o) if o.status.success() => Some(Self(path.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIP full-disk test: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIP full-disk test: no mount command ({e})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every entry under `dir` (recursive), for "nothing left behind".
fn everything(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(everything(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn a_full_disk_fails_every_writer_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&d.path().join("full"), 2) else {
        if std::env::var_os("VENTRAL_REQUIRE_FIXTURES").is_some() && is_root() {
            panic!("CI runs as root but could not mount a tmpfs for the full-disk test");
        }
        return;
    };
    let full = fs.0.clone();
    let (stim, run) = small_run(d.path());
    let nc = d.path().join("rec.nc");
    ok(&ventral(&[
        "neural-synth",
        "--stimuli",
        s(&stim),
        "--out",
        s(&nc),
        "--sites",
        "8",
        "--behaviour",
        "--behaviour-trials",
        "4",
    ]));
    let trials = d.path().join("rec.behaviour.csv");
    let feats = d.path().join("rec.features.npz");
    let rec = d.path().join("acts.npz");
    ok(&ventral(&[
        "record",
        "--run",
        s(&run),
        "--data",
        s(&stim),
        "--out",
        s(&rec),
    ]));
    // A filler leaves 16 KiB free, so each writer gets started before the disk fills.
    let filler = full.join("filler");
    std::fs::write(&filler, vec![0u8; 2 * 1024 * 1024 - 16 * 1024]).unwrap();
    let o = |p: &str| full.join(p).display().to_string();
    let cases: Vec<Vec<String>> = vec![
        // Small enough for `stimuli`'s up-front disk estimate (20 images of 8 px: about
        // 12 KB), which refuses 600 images of 64 px before writing (tests/cli.rs); its 14
        // files take a 4 KiB page each on tmpfs, so the writers still meet the full disk.
        strings(&[
            "stimuli",
            "--num-images",
            "20",
            "--image-size",
            "8",
            "--out",
            &o("stim"),
        ]),
        strings(&[
            "pack",
            "--format",
            "imagefolder",
            s(&d.path().join("imgfolder")),
            "--out",
            &o("pack"),
        ]),
        strings(&[
            "record",
            "--run",
            s(&run),
            "--data",
            s(&stim),
            "--layers",
            "v1",
            "--pool",
            "none",
            "--out",
            &o("acts.npz"),
        ]),
        strings(&[
            "train",
            s(&common_config(d.path(), &stim)),
            "--out",
            &o("run"),
        ]),
        strings(&["neural-synth", "--stimuli", s(&stim), "--out", &o("rec.nc")]),
        strings(&[
            "neural-fit",
            "--features",
            s(&feats),
            "--neural",
            s(&nc),
            "--out",
            &o("fit"),
            "--splits",
            "2",
            "--ceiling-splits",
            "2",
            "--bootstraps",
            "1",
        ]),
        strings(&[
            "rsa",
            "--features",
            s(&feats),
            "--neural",
            s(&nc),
            "--out",
            &o("rsa"),
            "--bootstraps",
            "1",
        ]),
        strings(&["dynamics", "--activations", s(&rec), "--out", &o("dyn")]),
        strings(&[
            "ost",
            "--features",
            s(&feats),
            "--neural",
            s(&nc),
            "--out",
            &o("ost"),
            "--splits",
            "2",
            "--bootstraps",
            "1",
            "--procedure",
            "pooled",
        ]),
        strings(&["pareto", s(&run), "--out", &o("pareto")]),
        strings(&[
            "inspect",
            s(&stim.join("train")),
            "--contact-sheet",
            &o("sheet.png"),
        ]),
    ];
    // An image folder to pack (PNG files, so pack's output is the large part).
    let imgs = d.path().join("imgfolder");
    for c in ["a", "b"] {
        std::fs::create_dir_all(imgs.join(c)).unwrap();
        for i in 0..40 {
            let img = image::RgbImage::from_fn(64, 64, |x, y| {
                image::Rgb([(x * 4 + i) as u8, (y * 4) as u8, (x ^ y) as u8])
            });
            img.save(imgs.join(c).join(format!("{i}.png"))).unwrap();
        }
    }
    for args in &cases {
        let before = everything(&full);
        let out = cmd(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{}: succeeded on a full disk?\n{err}",
            args[0]
        );
        assert_eq!(out.status.code(), Some(2), "{}: {err}", args[0]);
        assert!(
            err.contains("No space left on device") || err.contains("space"),
            "{}: the error does not say the disk is full:\n{err}",
            args[0]
        );
        assert!(!err.contains("panicked"), "{}: {err}", args[0]);
        // One message, not a library's own stderr line fused onto it (the zip crate's Drop
        // used to print `ZipWriter::drop: failed to finalize archive` here).
        assert!(!err.contains("ZipWriter"), "{}: {err}", args[0]);
        let after = everything(&full);
        assert_eq!(
            before, after,
            "{}: a failed write left files behind:\n{err}",
            args[0]
        );
    }
    // Writers whose output is small (or may be: `behaviour`'s tables and plots) meet a disk
    // with no space at all.
    let traj = d.path().join("traj.csv");
    let rows: String = (1..=200)
        .map(|k| format!("{k},{}\n", (k as f64).powf(1.2)))
        .collect();
    std::fs::write(&traj, format!("step,dist_sq\n{rows}")).unwrap();
    let spec = d.path().join("sweep.toml");
    std::fs::write(
        &spec,
        format!(
            "base = {:?}\n[grid]\n\"train.optimizer.lr\" = [0.001, 0.002]\n",
            s(&common_config(d.path(), &stim))
        ),
    )
    .unwrap();
    let small: Vec<Vec<String>> = vec![
        strings(&["diffusion", "--trajectory", s(&traj), "--out", &o("diff")]),
        strings(&[
            "behaviour",
            "--features",
            s(&feats),
            "--trials",
            s(&trials),
            "--folds",
            "2",
            "--out",
            &o("behaviour"),
        ]),
        strings(&["sweep", s(&spec), "--out", &o("sweep")]),
        strings(&[
            "hessian",
            s(&run),
            "--images",
            "16",
            "--batch-size",
            "16",
            "--top-k",
            "1",
            "--iterations",
            "2",
            "--out",
            &o("hess"),
        ]),
    ];
    let top = full.join("top");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&top).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    for args in &small {
        let before = everything(&full);
        let out = cmd(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", args[0]);
        assert!(
            err.contains("No space left on device"),
            "{}: {err}",
            args[0]
        );
        assert!(!err.contains("panicked"), "{}: {err}", args[0]);
        assert_eq!(
            before,
            everything(&full),
            "{}: left files behind:\n{err}",
            args[0]
        );
    }
    std::fs::remove_file(&top).unwrap();

    // With space freed, writing to the same place succeeds: nothing left behind blocks it.
    std::fs::remove_file(&filler).unwrap();
    let o = ventral(&["stimuli", "--num-images", "40", "--out", &o("stim")]);
    ok(&o);
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}
