//! `ventral stimuli`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ventral_data::stimuli::{StimulusConfig, generate};

use crate::commands::inspect::print_summary;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory (train/, val/, test/, stimulus_set/ are created inside).
    #[arg(long)]
    pub out: PathBuf,
    /// Images over all splits (80 % train, 10 % val, 10 % test).
    #[arg(long, default_value_t = 10_000)]
    pub num_images: usize,
    /// Image side length in pixels.
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Number of categories (1–8: animals, boats, cars, chairs, faces, fruits, planes, tables).
    #[arg(long, default_value_t = 8)]
    pub num_classes: usize,
    /// Distinct 3-D objects per category.
    #[arg(long, default_value_t = 4)]
    pub objects_per_category: usize,
    /// Root seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the BrainIO stimulus-set form (CSV + ZIP of PNGs).
    #[arg(long)]
    pub no_stimulus_set: bool,
    /// Replace the output directory if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = StimulusConfig {
        num_images: a.num_images,
        image_size: a.image_size,
        num_classes: a.num_classes,
        objects_per_category: a.objects_per_category,
        seed: a.seed,
        stimulus_set: !a.no_stimulus_set,
        overwrite: a.overwrite,
        ..StimulusConfig::default()
    };
    let bar = Progress::new("render", cfg.num_images, "img");
    let g = generate(&cfg, &a.out, &|d, t| bar.update(d, t))
        .with_context(|| format!("generating stimuli into {}", a.out.display()))?;
    bar.finish();
    println!(
        "generated {} images of {}×{} px in {:.2} s ({:.0} images/s, {} threads) into {}",
        cfg.num_images,
        cfg.image_size,
        cfg.image_size,
        g.seconds,
        cfg.num_images as f64 / g.seconds.max(1e-9),
        rayon::current_num_threads(),
        a.out.display()
    );
    for (name, m) in &g.splits {
        print_summary(name, m);
    }
    if cfg.stimulus_set {
        println!(
            "stimulus set (BrainIO form): {}",
            a.out.join("stimulus_set").display()
        );
    }
    Ok(())
}
