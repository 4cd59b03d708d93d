//! The pipeline's errors: what a caller (the command line, a server) can act on, with the
//! library crates' errors as sources.

use std::path::PathBuf;

/// Everything the pipeline library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset name without `configs/<name>.toml`.
    #[error("unknown dataset `{name}`; known datasets: {known} (each has configs/<name>.toml)")]
    UnknownDataset { name: String, known: String },
    /// A profile name without `configs/profiles/<name>.toml`.
    #[error("unknown profile `{name}`; known profiles: {known} (configs/profiles/<name>.toml)")]
    UnknownProfile { name: String, known: String },
    /// A stage name that is not one of the pipeline's.
    #[error("unknown stage `{name}`; stages: {known}")]
    UnknownStage { name: String, known: String },
    /// `--until` names a stage the given stage list does not have.
    #[error("stage `{0}` is not in this pipeline")]
    StageNotInPipeline(crate::StageId),
    /// A pipeline or experiment was asked to do nothing (no stages, seeds or variants).
    #[error("{0}")]
    NothingToRun(&'static str),
    /// The project root was not found from the current directory.
    #[error(
        "cannot find the project root (a folder with Cargo.toml and configs/); run from inside the project"
    )]
    NoProjectRoot,
    /// An artifact a command needs has not been made yet.
    #[error("no {stage} artifact in {}: run `cargo xtask pipeline {dataset}` first", dir.display())]
    MissingArtifact {
        stage: crate::StageId,
        dataset: String,
        dir: PathBuf,
    },
    /// No trained model for any of the asked variants and the seed.
    #[error(
        "no trained model for `{dataset}` (variants {variants}, seed {seed}): run `cargo xtask pipeline {dataset}` first"
    )]
    NoTrainedModel {
        dataset: String,
        variants: String,
        seed: u64,
    },
    /// A user id (or 1-based position) the dataset does not have.
    #[error("unknown user `{id}` in `{dataset}` (users are {first} … {last}, {count} in all)")]
    UnknownUser {
        id: String,
        dataset: String,
        first: String,
        last: String,
        count: usize,
    },
    /// An item id (ASIN, or 1-based number) the dataset does not have.
    #[error("unknown item `{id}` in `{dataset}`{hint}")]
    UnknownItem {
        id: String,
        dataset: String,
        hint: String,
    },
    /// A recommendation was asked for an empty history.
    #[error("the history is empty")]
    EmptyHistory,
    /// More (or fewer) recommendations than the catalogue can give.
    #[error("top {top}: ask for 1 to {max} items (the catalogue of `{dataset}`)")]
    TopOutOfRange {
        top: usize,
        max: usize,
        dataset: String,
    },
    /// A stage failed; the source says why.
    #[error("stage `{stage}` failed")]
    Stage {
        stage: crate::StageId,
        #[source]
        source: Box<Error>,
    },
    /// A wrong setting of the run (device list, experiment options …).
    #[error("{0}")]
    Invalid(String),
    /// The backend computed a wrong answer or failed.
    #[error("backend: {0}")]
    Backend(String),
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// JSON could not be written or read.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An artifact is missing, damaged, locked or malformed, or a config is wrong.
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
    /// A dataset's folder has no data the loader knows.
    #[error(
        "dataset `{dataset}`: link its folder with `cargo xtask data fetch {dataset} --from DIR`, or \
             download it with `cargo xtask data fetch {dataset}` (see datasets/README.md)"
    )]
    NoDataSource {
        dataset: String,
        #[source]
        source: Box<data_amazon::Error>,
    },
    /// Reading the raw dataset failed.
    #[error(transparent)]
    Data(#[from] data_amazon::Error),
    /// The sentence encoder failed.
    #[error(transparent)]
    TextEncoder(#[from] text_encoder::Error),
    /// The sentence encoder in a model folder could not be loaded.
    #[error("loading the sentence encoder from {}", dir.display())]
    LoadEncoder {
        dir: PathBuf,
        #[source]
        source: Box<text_encoder::Error>,
    },
    /// Quantizing the embeddings failed.
    #[error(transparent)]
    Quantizer(#[from] quantizer::Error),
    /// The model failed (wrong shape, damaged weights …).
    #[error(transparent)]
    Model(#[from] gr_model::Error),
    /// Training failed (non-finite loss …).
    #[error(transparent)]
    Trainer(#[from] trainer::Error),
    /// Evaluation failed.
    #[error(transparent)]
    Evaluator(#[from] evaluator::Error),
    /// Writing a report failed.
    #[error(transparent)]
    Report(#[from] reporting::Error),
}

impl Error {
    /// The artifact error underneath, however deep the crates wrapped it (a missing, damaged or
    /// locked artifact, a bad config key): what a caller maps to "re-run the pipeline" or a
    /// server to an internal error.
    pub fn artifact(&self) -> Option<&artifacts::Error> {
        fn model(e: &gr_model::Error) -> Option<&artifacts::Error> {
            match e {
                gr_model::Error::Artifact(a) => Some(a),
                _ => None,
            }
        }
        match self {
            Error::Artifact(a) => Some(a),
            Error::Model(e) => model(e),
            Error::Trainer(trainer::Error::Artifact(a)) => Some(a),
            Error::Trainer(trainer::Error::Model(e)) => model(e),
            Error::TextEncoder(text_encoder::Error::Artifact(a)) => Some(a),
            Error::LoadEncoder { source, .. } => match source.as_ref() {
                text_encoder::Error::Artifact(a) => Some(a),
                _ => None,
            },
            Error::Data(data_amazon::Error::Artifact(a)) => Some(a),
            Error::Report(reporting::Error::Artifact(a)) => Some(a),
            Error::Stage { source, .. } => source.artifact(),
            _ => None,
        }
    }
}

/// The pipeline's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the path to an I/O error.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// Writes a whole file, naming the path when it fails.
pub(crate) fn write_file(path: &std::path::Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).map_err(io(path))
}
