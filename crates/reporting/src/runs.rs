//! One run (variant, seed) as the reports see it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use artifacts::metrics::{EvalReport, METRICS_FILE};
use artifacts::model::{TRAIN_LOG, TRAIN_SUMMARY, TrainSummary};

use crate::stats::{mean_std, time_saved};

/// A finished run: its training summary, test metrics and training log.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Its training summary.
    pub train: TrainSummary,
    /// Its test metrics.
    pub eval: EvalReport,
    /// Its `train_log.csv`.
    pub log_csv: PathBuf,
}

impl RunResult {
    /// One run from its `train` and `eval` artifact directories.
    pub fn read(train_dir: &Path, eval_dir: &Path) -> Result<RunResult> {
        Ok(RunResult {
            train: read_json(&train_dir.join(TRAIN_SUMMARY))?,
            eval: read_json(&eval_dir.join(METRICS_FILE))?,
            log_csv: train_dir.join(TRAIN_LOG),
        })
    }

    /// Seconds of training (validation excluded) per 1,000 windows.
    pub fn seconds_per_k_windows(&self) -> f64 {
        1000.0 / self.train.windows_per_s
    }
}

/// Runs grouped by variant, in order of first appearance.
pub fn by_variant(runs: &[RunResult]) -> Vec<VariantRuns<'_>> {
    let mut out: Vec<VariantRuns> = Vec::new();
    for r in runs {
        match out.iter_mut().find(|(v, _)| *v == r.train.variant) {
            Some((_, rs)) => rs.push(r),
            None => out.push((r.train.variant.clone(), vec![r])),
        }
    }
    out
}

/// The runs of one variant.
pub type VariantRuns<'a> = (String, Vec<&'a RunResult>);

/// Mean training windows/s of the `none` runs among `groups` (the base of "time saved").
pub fn none_rate(groups: &[VariantRuns]) -> Option<f64> {
    groups
        .iter()
        .find(|(v, _)| v == "none")
        .map(|(_, rs)| mean_std(&windows_per_s(rs)).0)
}

/// Training windows/s of each run.
pub fn windows_per_s(runs: &[&RunResult]) -> Vec<f64> {
    runs.iter().map(|r| r.train.windows_per_s).collect()
}

/// The "time saved vs none" cell of a variant's row: `-` for `none` itself or without a `none`
/// run, else 1 − (windows/s of none) / (mean windows/s of the variant) in percent.
pub fn time_saved_cell(variant: &str, runs: &[&RunResult], none_rate: Option<f64>) -> String {
    match none_rate {
        Some(n) if variant != "none" => {
            format!(
                "{:.1} %",
                100.0 * time_saved(n, mean_std(&windows_per_s(runs)).0)
            )
        }
        _ => "-".into(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Malformed {
        path: path.into(),
        source,
    })
}
