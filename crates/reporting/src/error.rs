//! The reporting crate's errors.

use std::path::PathBuf;

/// Everything reading runs and writing reports can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A run's JSON file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A run's JSON file is not what a finished stage writes.
    #[error("{} is malformed: {source}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// plotters failed to draw or write a plot.
    #[error("plot: {0}")]
    Plot(String),
    /// An artifact (training log, run variant …) could not be read.
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
}

/// The reporting crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
