//! The errors of this crate: model files that are missing, damaged or do not fit the model,
//! semantic ids that do not fit its vocabulary.

use std::path::PathBuf;

/// Errors of the gr-model crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted (`read`, `write`, `copy the model record`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `model.json` does not describe a model.
    #[error("{} is malformed", path.display())]
    BadModelShape {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A burn record that cannot be saved or loaded.
    #[error("cannot {action} the model record {}", path.display())]
    Record {
        /// `save` or `load`.
        action: &'static str,
        /// The record file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: burn::record::RecorderError,
    },
    /// A safetensors weights file that cannot be read or written.
    #[error("cannot {action} model weights {}", path.display())]
    Weights {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// burn-store's error.
        #[source]
        source: burn::store::SafetensorsStoreError,
    },
    /// A weights file that burn-store could not apply, for a reason other than names or shapes.
    #[error("{}: cannot load the weights:\n{report}", path.display())]
    WeightsUnreadable {
        /// The file.
        path: PathBuf,
        /// burn-store's report.
        report: String,
    },
    /// A weights file whose tensors do not fit the model: missing, unexpected, other shapes.
    #[error(
        "{}: the weights do not fit the model (does config.json match them?):\n  - {}",
        path.display(),
        listed(issues)
    )]
    WeightsMismatch {
        /// The file.
        path: PathBuf,
        /// One line per tensor, in the file's names (`tensor `x` has shape [..], expected [..]`).
        issues: Vec<String>,
    },
    /// A model with parameters that the name table cannot export.
    #[error(
        "cannot export {}: parameters without a reference name: {}",
        path.display(),
        names.join(", ")
    )]
    UnnamedParameters {
        /// The file that was to be written.
        path: PathBuf,
        /// The parameters' burn paths.
        names: Vec<String>,
    },
    /// A T5 configuration with a feed-forward this crate does not implement.
    #[error("unsupported feed_forward_proj `{name}` (supported: relu, gated-gelu)")]
    UnsupportedFeedForward {
        /// The configured name.
        name: String,
    },
    /// A SID table without items or digits.
    #[error("the SID table is empty")]
    EmptySidTable,
    /// An item whose SID has another number of digits than the first item's.
    #[error("item {item} has {found} SID digits, expected {expected}")]
    SidLength {
        /// The item (0-based).
        item: usize,
        /// Digits expected.
        expected: usize,
        /// Digits found.
        found: usize,
    },
    /// A SID digit outside the model's vocabulary.
    #[error("item {item} has SID digit {digit}, but the model has {codes} codes per level")]
    SidDigit {
        /// The item (0-based).
        item: usize,
        /// The digit.
        digit: u32,
        /// Codes per level (V).
        codes: usize,
    },
    /// A `SemanticIds` artifact that does not fit the model's vocabulary.
    #[error(
        "the semantic ids do not fit the model's vocabulary (quantizer.max_dedup must be below \
         quantizer.codebook_size)"
    )]
    Vocabulary(#[source] Box<Error>),
    /// The `Model` artifact's manifest or files.
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    /// A value that does not serialise to JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;

/// The first ten issues, one per line, and how many more.
fn listed(issues: &[String]) -> String {
    const SHOWN: usize = 10;
    let more = issues.len().saturating_sub(SHOWN);
    let mut out = issues[..issues.len().min(SHOWN)].join("\n  - ");
    if more > 0 {
        out.push_str(&format!("\n  - and {more} more"));
    }
    out
}
