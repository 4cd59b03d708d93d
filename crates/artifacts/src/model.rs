//! The `Model` artifact (`train/<variant>/seed-<n>/`): `model.mpk` (burn record of the best
//! validation checkpoint), `model.json` (the model's shape), `model.safetensors` (the same
//! weights under the reference's names), `train_log.csv` ([`LogRow`]s) and `summary.json`
//! ([`TrainSummary`]). The types here are what the files hold; the trainer writes them, the
//! evaluator, `recommend` and the reports read them.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result, io};
use serde::{Deserialize, Serialize};

/// The burn record of the best model.
pub const MODEL_RECORD: &str = "model.mpk";
/// The model's shape ([`TigerConfig`](../../gr_model/tiger/struct.TigerConfig.html) as JSON).
pub const MODEL_SHAPE: &str = "model.json";
/// The weights under the reference's names and PyTorch layouts.
pub const MODEL_SAFETENSORS: &str = "model.safetensors";
/// The training log.
pub const TRAIN_LOG: &str = "train_log.csv";
/// The run's summary.
pub const TRAIN_SUMMARY: &str = "summary.json";

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// `train.patience` validations without a better Recall@5.
    EarlyStopping,
    /// `train.max_batches` micro-batches done.
    MaxBatches,
    /// `train.max_minutes` spent.
    TimeBudget,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::EarlyStopping => "early-stopping",
            StopReason::MaxBatches => "max-batches",
            StopReason::TimeBudget => "time-budget",
        })
    }
}

/// `summary.json` of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Reducer variant.
    pub variant: String,
    /// Seed.
    pub seed: u64,
    /// Why training stopped.
    pub stop: StopReason,
    /// Micro-batches trained.
    pub batches: u64,
    /// Optimiser steps.
    pub steps: u64,
    /// Windows trained on.
    pub windows: u64,
    /// Training wall time (seconds, all sessions, validation included).
    pub wall_s: f64,
    /// Seconds spent in validation.
    pub validation_s: f64,
    /// Median seconds per micro-batch (last session).
    pub median_batch_s: f64,
    /// Windows per second of training (validation excluded).
    pub windows_per_s: f64,
    /// Best validation Recall@5.
    pub best_val_recall5: f64,
    /// Micro-batch of the best validation.
    pub best_batch: u64,
    /// The micro-batch this run resumed from, if it was interrupted.
    pub resumed_from: Option<u64>,
    /// The model's shape.
    pub model: ModelShape,
}

/// The model shape as the summary records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelShape {
    /// SID digits.
    pub num_levels: usize,
    /// Codes per digit.
    pub codes_per_level: usize,
    /// Parameters.
    pub parameters: usize,
}

/// What a row of `train_log.csv` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogKind {
    /// A logging interval of training.
    Train,
    /// A validation.
    Val,
}

impl LogKind {
    fn name(self) -> &'static str {
        match self {
            LogKind::Train => "train",
            LogKind::Val => "val",
        }
    }
}

/// One row of `train_log.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// A training interval or a validation.
    pub kind: LogKind,
    /// Micro-batches done.
    pub batch: u64,
    /// Optimiser steps done.
    pub step: u64,
    /// Training wall time so far (seconds, over all sessions).
    pub wall_s: f64,
    /// Mean training loss over the interval (train rows).
    pub loss: Option<f64>,
    /// Windows per second over the interval (train rows).
    pub windows_per_s: Option<f64>,
    /// Validation Recall@5 (val rows).
    pub recall5: Option<f64>,
    /// Validation Recall@10.
    pub recall10: Option<f64>,
    /// Validation NDCG@5.
    pub ndcg5: Option<f64>,
    /// Validation NDCG@10.
    pub ndcg10: Option<f64>,
    /// Validation teacher-forced loss.
    pub val_loss: Option<f64>,
}

const LOG_HEADER: &str = "kind,batch,step,wall_s,loss,windows_per_s,val_recall5,val_recall10,val_ndcg5,val_ndcg10,val_loss";

/// `train_log.csv` text.
pub fn log_csv(rows: &[LogRow]) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    let mut out = format!("{LOG_HEADER}\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{:.3},{},{},{},{},{},{},{}\n",
            r.kind.name(),
            r.batch,
            r.step,
            r.wall_s,
            opt(r.loss),
            opt(r.windows_per_s),
            opt(r.recall5),
            opt(r.recall10),
            opt(r.ndcg5),
            opt(r.ndcg10),
            opt(r.val_loss)
        ));
    }
    out
}

/// Reads a `train_log.csv` written by [`log_csv`]; an error names the file, line and field.
pub fn read_log(path: &Path) -> Result<Vec<LogRow>> {
    let text = std::fs::read_to_string(path).map_err(io("read", path))?;
    let malformed = |line: usize, problem: String| Error::MalformedLine {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut lines = text.lines();
    if lines.next() != Some(LOG_HEADER) {
        return Err(malformed(
            1,
            format!("the first line is not the train log header `{LOG_HEADER}`"),
        ));
    }
    lines
        .enumerate()
        .map(|(i, line)| parse_row(line).map_err(|problem| malformed(i + 2, problem)))
        .collect()
}

/// One row of the log, or what is wrong with it.
fn parse_row(line: &str) -> std::result::Result<LogRow, String> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 11 {
        return Err(format!(
            "expected 11 comma-separated fields, found {}",
            f.len()
        ));
    }
    let num = |i: usize| -> std::result::Result<Option<f64>, String> {
        if f[i].is_empty() {
            return Ok(None);
        }
        f[i].parse()
            .map(Some)
            .map_err(|e| format!("`{}` is not a number ({e})", f[i]))
    };
    let int = |i: usize| -> std::result::Result<u64, String> {
        f[i].parse()
            .map_err(|e| format!("`{}` is not a whole number ({e})", f[i]))
    };
    let kind = match f[0] {
        "train" => LogKind::Train,
        "val" => LogKind::Val,
        other => {
            return Err(format!(
                "unknown row kind `{other}`, expected `train` or `val`"
            ));
        }
    };
    Ok(LogRow {
        kind,
        batch: int(1)?,
        step: int(2)?,
        wall_s: num(3)?.unwrap_or(0.0),
        loss: num(4)?,
        windows_per_s: num(5)?,
        recall5: num(6)?,
        recall10: num(7)?,
        ndcg5: num(8)?,
        ndcg10: num(9)?,
        val_loss: num(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trips_and_bad_lines_are_named() {
        let rows = vec![
            LogRow {
                kind: LogKind::Train,
                batch: 50,
                step: 3,
                wall_s: 12.5,
                loss: Some(13.25),
                windows_per_s: Some(40.0),
                recall5: None,
                recall10: None,
                ndcg5: None,
                ndcg10: None,
                val_loss: None,
            },
            LogRow {
                kind: LogKind::Val,
                batch: 100,
                step: 6,
                wall_s: 30.0,
                loss: None,
                windows_per_s: None,
                recall5: Some(0.25),
                recall10: Some(0.5),
                ndcg5: Some(0.125),
                ndcg10: Some(0.25),
                val_loss: Some(12.0),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TRAIN_LOG);
        std::fs::write(&path, log_csv(&rows)).unwrap();
        assert_eq!(read_log(&path).unwrap(), rows);
        std::fs::write(&path, format!("{LOG_HEADER}\nval,1,1,x,,,,,,,\n")).unwrap();
        let err = read_log(&path).unwrap_err();
        assert!(
            matches!(&err, Error::MalformedLine { line: 2, .. }),
            "{err:?}"
        );
        let e = err.to_string();
        assert!(e.contains("line 2") && e.contains("`x`"), "{e}");
        assert_eq!(
            serde_json::to_string(&StopReason::TimeBudget).unwrap(),
            "\"time-budget\""
        );
    }
}
