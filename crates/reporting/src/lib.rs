//! Reports of finished runs: the statistics over seeds, the paper's numbers, Table 2 of the
//! pipeline report, and plots. Reads the `Model` and `Metrics` artifacts only (no model code),
//! so the report stage and the experiments share one implementation.
//!
//! * [`runs`]: one run's training summary, metrics and log, read from its artifacts;
//! * [`stats`]: mean ± std over seeds, the paper's Table 2, metric columns;
//! * [`table2`]: the pipeline report (`report.md`);
//! * [`plots`]: validation curves and x/y plots (SVG and PNG);
//! * [`error`]: what reading runs and writing reports fails with;
//! * [`experiments`]: the experiments' reports (RQ1 across datasets, RQ2's and RQ3's tables and plots).

pub mod error;
pub mod experiments;
pub mod plots;
pub mod runs;
pub mod stats;
pub mod table2;

/// The file name of every markdown report (the pipeline's and each experiment's).
pub const REPORT_FILE: &str = "report.md";

pub use error::{Error, Result};
pub use runs::RunResult;
