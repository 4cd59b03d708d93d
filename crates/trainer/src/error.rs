//! The errors of this crate: a loss that is no longer finite, checkpoints that cannot be written
//! or read back, and the model's, evaluator's and artifacts' errors.

use std::path::PathBuf;

/// Errors of the trainer crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint's `state.json` that does not parse.
    #[error("{} is not a training state", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint directory that cannot be moved into place.
    #[error("cannot move the checkpoint into place")]
    CommitCheckpoint(#[source] artifacts::Error),
    /// The optimiser's record that cannot be saved or loaded.
    #[error("cannot {action} the optimiser state in {}", dir.display())]
    Optimizer {
        /// `save` or `load`.
        action: &'static str,
        /// The checkpoint directory.
        dir: PathBuf,
        /// burn's error.
        #[source]
        source: burn::record::RecorderError,
    },
    /// No device to train on.
    #[error("no training device (train.devices is empty)")]
    NoDevice,
    /// The training loss became NaN or infinite.
    #[error(
        "training loss is {value} (not finite) at micro-batch {batch}, optimiser step {step}; \
         stopping: {checkpoint}. Check train.lr (= {lr}) and the input data."
    )]
    NonFiniteLoss {
        /// The loss.
        value: f64,
        /// The micro-batch (0-based) whose loss it is.
        batch: u64,
        /// Optimiser steps taken so far.
        step: u64,
        /// `train.lr`.
        lr: f64,
        /// A sentence on the last good checkpoint (kept, or none yet).
        checkpoint: String,
    },
    /// The configuration or an artifact.
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    /// The model (records, SIDs).
    #[error(transparent)]
    Model(#[from] gr_model::Error),
    /// Validation.
    #[error(transparent)]
    Eval(#[from] evaluator::Error),
    /// A value that does not serialise to JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
