//! `ventral pack`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ventral_data::pack::{InputFormat, Layout, PackOptions, pack};

use crate::commands::inspect::print_summary;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input format: imagefolder, hdf5, cifar or npz.
    #[arg(long)]
    format: InputFormat,
    /// Input file or directory.
    input: PathBuf,
    /// Dataset root to write; each split goes to OUT/<split>.
    #[arg(long)]
    out: PathBuf,
    /// Pack only this split (or name the single split of a one-split input; default train).
    #[arg(long)]
    split: Option<String>,
    /// Resize (shorter side) and centre-crop to this size; ImageFolder defaults to 64, other
    /// formats keep their size.
    #[arg(long)]
    image_size: Option<usize>,
    /// Fail when more than this fraction of a split's images cannot be decoded.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.01)]
    max_reject_fraction: f64,
    /// npz: name of the image array.
    #[arg(long, default_value = "images")]
    images_key: String,
    /// npz: name of the label array.
    #[arg(long, default_value = "labels")]
    labels_key: String,
    /// npz: name of the optional class-name array.
    #[arg(long, default_value = "class_names")]
    class_names_key: String,
    /// npz: axis order of 4-D image arrays, nhwc or nchw (guessed when not given).
    #[arg(long)]
    layout: Option<Layout>,
    /// Replace splits that already exist in OUT.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(a: Args) -> Result<()> {
    let opts = PackOptions {
        image_size: a.image_size,
        split: a.split.clone(),
        max_reject_fraction: a.max_reject_fraction,
        overwrite: a.overwrite,
        images_key: a.images_key.clone(),
        labels_key: a.labels_key.clone(),
        class_names_key: a.class_names_key.clone(),
        layout: a.layout,
    };
    let start = std::time::Instant::now();
    let bar = Progress::new("pack", 0, "img");
    let splits = pack(a.format, &a.input, &a.out, &opts, &|_, d, t| {
        bar.update(d, t)
    })
    .with_context(|| format!("packing {}", a.input.display()))?;
    bar.finish();
    let secs = start.elapsed().as_secs_f64();
    let total: usize = splits.iter().map(|s| s.manifest.num_images).sum();
    println!(
        "packed {total} images in {secs:.2} s ({:.0} images/s) into {}",
        total as f64 / secs.max(1e-9),
        a.out.display()
    );
    for s in &splits {
        print_summary(&s.name, &s.manifest);
        if !s.rejected.is_empty() {
            println!(
                "  {} images rejected, listed in {}",
                s.rejected.len(),
                s.dir.join("rejected.csv").display()
            );
        }
    }
    Ok(())
}
