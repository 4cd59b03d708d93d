//! Resumable training state on disk. A checkpoint is a directory (`model.mpk`, `optim.mpk`,
//! `state.json`) replaced atomically: written as `checkpoint.tmp`, the previous one moved to
//! `checkpoint.old`, the new one renamed into place, the old one removed. A crash at any point
//! leaves `checkpoint` or `checkpoint.old` complete, and [`latest`] finds it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One row of `train_log.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// `train` (a logging interval) or `val` (a validation).
    pub kind: String,
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

/// Everything besides the model and optimiser records needed to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Fingerprint of the run (configuration and inputs); a checkpoint of another run is ignored.
    pub run_hash: String,
    /// Next micro-batch index (the data order and dropout seeds derive from it).
    pub batch: u64,
    /// Optimiser steps done.
    pub step: u64,
    /// Best validation Recall@5 so far.
    pub best_recall5: Option<f64>,
    /// Micro-batch of the best validation.
    pub best_batch: u64,
    /// Validations since the best one.
    pub since_best: usize,
    /// Training wall time so far (seconds).
    pub wall_s: f64,
    /// Windows trained on so far.
    pub windows: u64,
    /// Seconds spent validating so far (part of `wall_s`).
    pub validation_s: f64,
    /// The log so far.
    pub log: Vec<LogRow>,
}

/// The paths of a work directory.
pub struct WorkDir {
    /// The directory.
    pub root: PathBuf,
}

impl WorkDir {
    /// `root` (created when missing).
    pub fn new(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        Ok(WorkDir {
            root: root.to_path_buf(),
        })
    }

    /// The current checkpoint directory.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// The best model's record (burn appends `.mpk`).
    pub fn best_model(&self) -> PathBuf {
        self.root.join("best")
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> Option<PathBuf> {
        [self.checkpoint(), self.root.join("checkpoint.old")]
            .into_iter()
            .find(|dir| {
                dir.join("state.json").is_file()
                    && dir.join("model.mpk").is_file()
                    && dir.join("optim.mpk").is_file()
            })
    }

    /// Writes a checkpoint: `fill` puts `model.mpk` and `optim.mpk` into the directory it gets.
    pub fn save(&self, state: &TrainState, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let tmp = self.root.join("checkpoint.tmp");
        let old = self.root.join("checkpoint.old");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        fill(&tmp)?;
        write_atomic(&tmp.join("state.json"), &serde_json::to_vec_pretty(state)?)?;
        let current = self.checkpoint();
        if current.exists() {
            let _ = fs::remove_dir_all(&old);
            fs::rename(&current, &old)?;
        }
        fs::rename(&tmp, &current)
            .with_context(|| format!("cannot move the checkpoint into {}", current.display()))?;
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }

    /// Reads a checkpoint's state.
    pub fn load_state(dir: &Path) -> Result<TrainState> {
        let path = dir.join("state.json");
        let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a training state", path.display()))
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// `train_log.csv` text.
pub fn log_csv(rows: &[LogRow]) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    let mut out = String::from(
        "kind,batch,step,wall_s,loss,windows_per_s,val_recall5,val_recall10,val_ndcg5,val_ndcg10,val_loss\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{:.3},{},{},{},{},{},{},{}\n",
            r.kind,
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
