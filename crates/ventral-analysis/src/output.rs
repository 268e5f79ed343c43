//! Tidy CSV tables, plots and the report.
