//! Progress reporting: a live bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress reporter safe to call from many threads.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    start: Instant,
    last_logged: Mutex<usize>,
}

impl Progress {
    /// A reporter for `total` items of `unit` (e.g. "img").
    pub fn new(label: &str, total: usize, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(&format!(
                "{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} {{msg}} ETA {{eta}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(label.to_string());
            b
        });
        Self {
            bar,
            label: label.to_string(),
            start: Instant::now(),
            last_logged: Mutex::new(0),
        }
    }

    /// Report `done` of `total`.
    pub fn update(&self, done: usize, total: usize) {
        self.report(done, total, None);
    }

    /// Report `done` of `total` with a message (shown on the bar, and in plain log lines).
    pub fn update_with(&self, done: usize, total: usize, msg: &str) {
        self.report(done, total, Some(msg));
    }

    /// The bar, or a plain log line at every 10 % (with the rate, or the message and ETA).
    fn report(&self, done: usize, total: usize, msg: Option<&str>) {
        if let Some(b) = &self.bar {
            if let Some(m) = msg {
                b.set_message(m.to_string());
            }
            b.set_length(total as u64);
            b.set_position(done as u64);
            return;
        }
        let step = (total / 10).max(1);
        if let Ok(mut last) = self.last_logged.lock()
            && (done >= *last + step || done == total)
            && done != *last
        {
            *last = done;
            let secs = self.start.elapsed().as_secs_f64();
            match msg {
                Some(m) => {
                    let eta = if done > 0 {
                        secs / done as f64 * (total - done) as f64
                    } else {
                        0.0
                    };
                    eprintln!("{}: {done}/{total} {m}, ETA {eta:.0} s", self.label);
                }
                None => eprintln!(
                    "{}: {done}/{total} ({:.0}/s)",
                    self.label,
                    done as f64 / secs.max(1e-9)
                ),
            }
        }
    }

    /// Finish the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
