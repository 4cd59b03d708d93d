//! Resumable training state on disk. A checkpoint is a directory (`model.mpk`, `optim.mpk`,
//! `state.json`) replaced atomically with [`artifacts::store::StagingDir`], the project's one way
//! to replace a directory: a crash at any point leaves `checkpoint` (or the previous copy moved
//! aside) complete, and [`WorkDir::latest`] finds it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use artifacts::model::{LogKind, LogRow, log_csv};
use artifacts::store::{StagingDir, surviving_dirs, write_file_atomic};
use serde::{Deserialize, Serialize};

/// Everything besides the model and optimiser records needed to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Fingerprint of the run (configuration and inputs); a checkpoint of another run is ignored.
    pub run_hash: String,
    /// Next micro-batch index (the data order and dropout seeds derive from it).
    pub batch: u64,
    /// Optimiser steps done.
    pub step: u64,
    /// Validation Recall@5 of the best checkpoint so far.
    pub best_recall5: Option<f64>,
    /// Validation Recall@10 of the best checkpoint so far.
    #[serde(default)]
    pub best_recall10: Option<f64>,
    /// Validation loss of the best checkpoint so far.
    #[serde(default)]
    pub best_loss: Option<f64>,
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

impl TrainState {
    /// The state of a run that has not started.
    pub fn fresh(run_hash: &str) -> TrainState {
        TrainState {
            run_hash: run_hash.to_string(),
            batch: 0,
            step: 0,
            best_recall5: None,
            best_recall10: None,
            best_loss: None,
            best_batch: 0,
            since_best: 0,
            wall_s: 0.0,
            windows: 0,
            validation_s: 0.0,
            log: Vec::new(),
        }
    }

    /// The micro-batch of the last validation, if any.
    pub fn last_validated(&self) -> Option<u64> {
        self.log
            .iter()
            .rev()
            .find(|r| r.kind == LogKind::Val)
            .map(|r| r.batch)
    }
}

/// The paths of a work directory.
pub struct WorkDir {
    /// The directory.
    pub root: PathBuf,
}

impl WorkDir {
    /// `root` (created when missing).
    pub fn new(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(|source| Error::Io {
            action: "create",
            path: root.to_path_buf(),
            source,
        })?;
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
        surviving_dirs(&self.checkpoint()).into_iter().find(|dir| {
            ["state.json", "model.mpk", "optim.mpk"]
                .iter()
                .all(|f| dir.join(f).is_file())
        })
    }

    /// Writes a checkpoint: `fill` puts `model.mpk` and `optim.mpk` into the directory it gets.
    /// The training log is written beside it.
    pub fn save(&self, state: &TrainState, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let staging = StagingDir::new(&self.checkpoint())?;
        fill(staging.path())?;
        let state_path = staging.path().join("state.json");
        fs::write(&state_path, serde_json::to_vec_pretty(state)?).map_err(|source| Error::Io {
            action: "write the training state",
            path: state_path.clone(),
            source,
        })?;
        staging.commit().map_err(Error::CommitCheckpoint)?;
        write_file_atomic(
            &self.root.join("train_log.csv"),
            log_csv(&state.log).as_bytes(),
        )?;
        Ok(())
    }

    /// Reads a checkpoint's state.
    pub fn load_state(dir: &Path) -> Result<TrainState> {
        let path = dir.join("state.json");
        let text = fs::read(&path).map_err(|source| Error::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| Error::BadState { path, source })
    }

    /// A sentence on the newest checkpoint, for error messages.
    pub fn describe_latest(&self) -> String {
        self.latest()
            .map(|d| {
                format!(
                    "the last good checkpoint (micro-batch {}) is kept in {}",
                    WorkDir::load_state(&d).map(|s| s.batch).unwrap_or(0),
                    d.display()
                )
            })
            .unwrap_or_else(|| "no checkpoint was written yet".into())
    }
}
