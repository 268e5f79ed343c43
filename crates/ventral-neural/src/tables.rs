//! CSV tables of the brain-comparison commands, written with the csv crate (names that
//! contain a comma, quote or newline are quoted), so that every command's outputs come from
//! this crate and the CLI only parses arguments.

use crate::error::{NeuralError, Result};

/// A number as a CSV field: Rust's shortest round-trip form, empty when not finite.
pub fn csv_number(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// A CSV table (header + rows) as text; `what` (the file name) names it in errors.
pub fn csv_table(
    what: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<String> {
    let err = |e: &dyn std::fmt::Display| NeuralError::Invalid(format!("writing {what}: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| err(&e))?;
    for row in rows {
        w.write_record(&row).map_err(|e| err(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| err(&e))?;
    String::from_utf8(bytes).map_err(|e| err(&e))
}
