//! `ventral quickstart`: the whole pipeline on a laptop CPU, offline — embedded stimuli, a
//! small BLT and its B (feedforward) control trained with a loss at every step, recordings of
//! both (and of the untrained BLT), and the representation-dynamics report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::commands::{dynamics, record, stimuli, train};

/// The tiny BLT configuration (configs/tiny.toml), embedded.
const TINY: &str = include_str!("../../../../configs/tiny.toml");

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Working directory (stimuli, runs, recordings, report).
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Images to generate (80 % train, 10 % val, 10 % test).
    #[arg(long, default_value_t = 20000, value_parser = super::positive)]
    num_images: usize,
    /// Training epochs per network.
    #[arg(long, default_value_t = 3, value_parser = super::positive)]
    epochs: usize,
    /// Root seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start again from scratch (otherwise finished steps are reused).
    #[arg(long)]
    overwrite: bool,
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    if a.overwrite && a.out.exists() {
        std::fs::remove_dir_all(&a.out)?;
    }
    // Finished steps are reused only when they were made with these settings.
    let settings = serde_json::json!({
        "num_images": a.num_images,
        "epochs": a.epochs,
        "seed": a.seed,
        "config": ventral_core::hash::blake3_hex(TINY.as_bytes()),
    });
    let saved_path = a.out.join("quickstart.json");
    let non_empty = std::fs::read_dir(&a.out)
        .map(|mut r| r.next().is_some())
        .unwrap_or(false);
    if non_empty {
        let saved: Option<serde_json::Value> = std::fs::read(&saved_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match saved {
            Some(s) if s == settings => {}
            Some(s) => anyhow::bail!(
                "{} holds a quickstart made with --num-images {} --epochs {} --seed {}{}; pass --overwrite to start again with these settings, or choose another --out",
                a.out.display(),
                s["num_images"],
                s["epochs"],
                s["seed"],
                if s["config"] != settings["config"] {
                    " (and another version's tiny.toml)"
                } else {
                    ""
                }
            ),
            None => anyhow::bail!(
                "{} is not empty and holds no quickstart.json (results of unknown settings); pass --overwrite or choose another --out",
                a.out.display()
            ),
        }
    }
    std::fs::create_dir_all(&a.out)?;
    ventral_core::write_bytes_atomic(
        &saved_path,
        serde_json::to_string_pretty(&settings)?.as_bytes(),
    )?;
    let stim = a.out.join("stimuli");
    let step = |name: &str| eprintln!("\n== {name} ({:.0} s) ==", t0.elapsed().as_secs_f64());
    step("1/4 stimuli");
    if !stim.join("test").join("manifest.json").is_file() {
        stimuli::run(stimuli::Args {
            out: stim.clone(),
            num_images: a.num_images,
            image_size: 64,
            num_classes: 8,
            objects_per_category: 4,
            seed: a.seed,
            no_stimulus_set: true,
            overwrite: true,
        })?;
    } else {
        eprintln!("reusing {}", stim.display());
    }
    let config = a.out.join("tiny.toml");
    ventral_core::write_bytes_atomic(&config, TINY.as_bytes())?;
    let common = [
        format!("data.path={}", stim.display()),
        format!("train.epochs={}", a.epochs),
        format!("train.seed={}", a.seed),
    ];
    let nets = [
        ("BLT", "blt", vec![]),
        (
            "B",
            "b",
            vec![
                "model.lateral=false".to_string(),
                "model.topdown=false".to_string(),
            ],
        ),
    ];
    for (i, (label, dir, extra)) in nets.iter().enumerate() {
        step(&format!("2/4 train {label} ({} of 2)", i + 1));
        train::run(train::Args {
            config: config.clone(),
            set: common.iter().chain(extra).cloned().collect(),
            out: Some(a.out.join(dir)),
            resume: true,
            init_from: None,
        })?;
    }
    step("3/4 record");
    let rec = a.out.join("recordings");
    std::fs::create_dir_all(&rec)?;
    for (_, dir, _) in &nets {
        for ck in ["last", "init"] {
            let out = rec.join(format!("{dir}_{ck}.npz"));
            record::run(record::Args {
                run: Some(a.out.join(dir)),
                data: Some(stim.clone()),
                split: Some("test".into()),
                checkpoint: ck.into(),
                model: None,
                weights: None,
                images: None,
                labels: None,
                layers: Vec::new(),
                pool: "gap".into(),
                out,
                // The quickstart regenerates its own recordings.
                overwrite: true,
                // The native engine's pass (`fast::CHUNK`); more would record the same.
                batch_size: 64,
                device: "cpu".into(),
                engine: "auto".into(),
                // The quickstart's recordings stay on the exact path.
                winograd: false,
            })?;
        }
    }
    step("4/4 dynamics");
    let report = a.out.join("dynamics");
    dynamics::run(dynamics::Args {
        activations: nets
            .iter()
            .map(|(label, dir, _)| {
                format!("{label}={}", rec.join(format!("{dir}_last.npz")).display())
            })
            .collect(),
        untrained: nets
            .iter()
            .map(|(label, dir, _)| {
                format!("{label}={}", rec.join(format!("{dir}_init.npz")).display())
            })
            .collect(),
        metadata: None,
        split_by: Vec::new(),
        out: report.clone(),
        overwrite: true,
    })?;
    println!(
        "\nquickstart finished in {:.0} s\nopen {}",
        t0.elapsed().as_secs_f64(),
        report.join("report.html").display()
    );
    Ok(())
}
