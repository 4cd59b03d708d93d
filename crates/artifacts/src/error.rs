//! The errors of this crate: what a caller can act on (a missing or damaged artifact, a bad
//! configuration key and the layer it came from, a malformed line) with the file, key or line.

use std::path::{Path, PathBuf};

use crate::layer::ConfigLayer;

/// Errors of the artifacts crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted (`read`, `create`, `open`, `write`, `remove`, `list`, `lock`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A rename (moving a directory into place or aside) failed.
    #[error("cannot move {} to {}", from.display(), to.display())]
    Rename {
        /// The directory moved.
        from: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A directory path that ends without a name (`/`, `..`).
    #[error("directory path {} has no name", path.display())]
    NoDirName {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the runs folder's lock.
    #[error(
        "{} is in use by another run ({holder}); wait for it to finish or stop it, or use \
         another --runs-dir",
        dir.display()
    )]
    Locked {
        /// The locked folder.
        dir: PathBuf,
        /// What the lock file says about its holder (`pid …, command, start time`).
        holder: String,
    },
    /// An artifact that a stage needs is not there.
    #[error("no `{stage}` artifact in {} (run the `{stage}` stage first)", dir.display())]
    MissingArtifact {
        /// The stage that makes it.
        stage: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The artifact's manifest does not list a file that was asked for.
    #[error("the `{stage}` artifact in {} lists no {name}; re-run the pipeline", dir.display())]
    UnlistedFile {
        /// The stage that made the artifact.
        stage: String,
        /// The artifact directory.
        dir: PathBuf,
        /// The file's name.
        name: String,
    },
    /// A file of an artifact differs from what its manifest records.
    #[error(
        "{} is damaged ({damage}: its size or content differs from what the `{stage}` stage \
         wrote); re-run the pipeline (`--force` re-runs the stage) to rebuild it",
        path.display()
    )]
    Damaged {
        /// The damaged file.
        path: PathBuf,
        /// The stage that wrote it.
        stage: String,
        /// What failed.
        damage: Damage,
    },
    /// `manifest.json` does not parse.
    #[error("{} is not a valid manifest", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stage tried to write the manifest's file name.
    #[error("a stage must not write {name} itself")]
    ReservedFile {
        /// The reserved name.
        name: &'static str,
    },
    /// A configuration key (or the whole table) that does not deserialise: an unknown key, a
    /// value of the wrong type. `layer` is the layer that introduced it, when known.
    #[error("{}", config_key_message(layer.as_ref(), key))]
    ConfigKey {
        /// The layer (file, profile or `--set`) after which the merged configuration failed.
        layer: Option<ConfigLayer>,
        /// The dotted key (`data.max_history`); empty for the whole table.
        key: String,
        /// The deserialiser's error (it names the allowed keys).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A configuration file that is not valid TOML (`path` is `None` for text).
    #[error("{}", match path { Some(p) => format!("{} is not valid TOML", p.display()), None => "invalid TOML".to_string() })]
    InvalidToml {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A `--set` override that is not `section.key=value`.
    #[error("--set {assignment}: {problem}")]
    BadSet {
        /// The override as given.
        assignment: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A configuration value out of range, or sections that disagree.
    #[error("{message}")]
    InvalidConfig {
        /// The key at fault (`train.lr`, `eval.renormalize`, …).
        key: &'static str,
        /// What is wrong, naming the key and the value.
        message: String,
    },
    /// A run variant (`kind[@layer][:keep_ratio]`) that does not parse.
    #[error(
        "{problem} in variant `{text}`: expected `kind[@layer][:keep_ratio]` with kind one of \
         none, rastp, l2, max-pool, avg-pool, rastp-adaptive (e.g. `rastp`, `rastp@3`, `rastp:0.5`)"
    )]
    BadVariant {
        /// The variant as written.
        text: String,
        /// Which part is wrong.
        problem: String,
    },
    /// A run variant whose configuration fails [`crate::Config::check`].
    #[error("in run variant `{variant}`")]
    InVariant {
        /// The variant.
        variant: String,
        /// Why its configuration is invalid.
        #[source]
        source: Box<Error>,
    },
    /// A dataset whose users, items and sequences disagree.
    #[error("{0}")]
    InvalidDataset(String),
    /// A user's sequence refers to an item id that does not exist.
    #[error("user {user} refers to item id {item}, but there are only {items} items")]
    UnknownItem {
        /// The user (1-based, as the command line shows it).
        user: usize,
        /// The unknown item id.
        item: u32,
        /// How many items there are.
        items: u32,
    },
    /// `interactions.parquet` names a user that `users.parquet` does not have.
    #[error("{file}: user {user} is not in {users_file}")]
    UnknownUser {
        /// The file that names the user.
        file: &'static str,
        /// The user id.
        user: u32,
        /// The file of users.
        users_file: &'static str,
    },
    /// A parquet file that cannot be written or read.
    #[error("cannot {action} {}", path.display())]
    Parquet {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// polars' error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A parquet file without the expected columns or types.
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    /// A cell that does not hold what the column promises.
    #[error("{file} row {row}: {problem}")]
    BadCell {
        /// The file.
        file: &'static str,
        /// The row (0-based).
        row: usize,
        /// What was expected.
        problem: String,
    },
    /// A list column with a null list.
    #[error("null list in column `{column}`")]
    NullList {
        /// The column.
        column: String,
    },
    /// A safetensors file that does not parse or cannot be written.
    #[error("{} is not a safetensors file", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// safetensors' error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A tensor that cannot be serialised (its bytes do not match its shape).
    #[error(transparent)]
    Tensor(#[from] safetensors::SafeTensorError),
    /// A safetensors file without the tensor that the artifact stores.
    #[error("{} has no `{tensor}` tensor", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: &'static str,
    },
    /// A tensor of the wrong element type or shape.
    #[error("{}: `{tensor}` must be {expected}, is {found}", path.display())]
    WrongTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: &'static str,
        /// The expected dtype or shape.
        expected: String,
        /// What the file has.
        found: String,
    },
    /// A matrix whose number of values does not match its shape.
    #[error("{what}: expected {expected}, got {found}")]
    WrongDimension {
        /// What was checked.
        what: String,
        /// The expected size or shape.
        expected: String,
        /// The size or shape found.
        found: String,
    },
    /// An embedding with NaN or an infinity.
    #[error("embedding of item {item} has a non-finite value ({value}) in dimension {dimension}")]
    NonFiniteEmbedding {
        /// The item (1-based).
        item: usize,
        /// The value.
        value: f32,
        /// The dimension (0-based).
        dimension: usize,
    },
    /// A line of a text file (the train log) that does not parse.
    #[error("{} line {line}: {problem}", path.display())]
    MalformedLine {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What was expected.
        problem: String,
    },
    /// An error with the artifact directory or file it happened in.
    #[error("in {}", path.display())]
    In {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<Error>,
    },
    /// A value that does not serialise to JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;

/// What was wrong with a damaged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file cannot be read (missing, unreadable).
    Unreadable,
    /// Its size differs from the manifest's.
    Size {
        /// Bytes the manifest records.
        expected: u64,
        /// Bytes on disk.
        found: u64,
    },
    /// Its SHA-256 differs from the manifest's.
    Sha256 {
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        found: String,
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Unreadable => write!(f, "it cannot be read"),
            Damage::Size { expected, found } => {
                write!(f, "{found} bytes, the manifest says {expected}")
            }
            Damage::Sha256 { expected, found } => {
                write!(f, "SHA-256 {found}, the manifest says {expected}")
            }
        }
    }
}

fn config_key_message(layer: Option<&ConfigLayer>, key: &str) -> String {
    let key = if key.is_empty() || key == "." {
        "the configuration".to_string()
    } else {
        format!("key `{key}`")
    };
    match layer {
        Some(layer) => format!("in {layer}: {key}"),
        None => key,
    }
}

impl Error {
    /// Wraps `self` with the directory or file it happened in.
    pub fn in_path(self, path: &Path) -> Error {
        Error::In {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }

    /// The innermost error of this crate (through [`Error::In`] and [`Error::InVariant`]).
    pub fn root(&self) -> &Error {
        match self {
            Error::In { source, .. } | Error::InVariant { source, .. } => source.root(),
            e => e,
        }
    }
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
