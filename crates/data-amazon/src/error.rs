//! The errors of this crate: a dataset folder without the files a format needs, a malformed line
//! of a source file (file:line and what was expected), a setting out of range.

use std::path::{Path, PathBuf};

use crate::pylit::LiteralError;

/// Errors of the data-amazon crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted (`open`, `create`, `write`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a source file that cannot be read (I/O, bad gzip).
    #[error("{}:{line}: cannot read the line", path.display())]
    ReadLine {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The operating system's or decompressor's error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a source file that does not say what its format says.
    #[error("{}:{line}: {problem}", path.display())]
    MalformedLine {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// JSON that does not have the expected fields (`line` is `None` for a whole-file document).
    #[error("{}: expected {expected}", at(path, *line))]
    BadJson {
        /// The file.
        path: PathBuf,
        /// The line (1-based), for JSON-lines files.
        line: Option<usize>,
        /// What was expected.
        expected: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A metadata line that is not a Python dict literal.
    #[error("{}:{line}: not a Python dict literal", path.display())]
    BadLiteral {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// Where the parser stopped and what it expected.
        #[source]
        source: LiteralError,
    },
    /// A file with nothing in it that the format needs (no users, no reviews).
    #[error("{}: {problem}", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
        /// What is missing.
        problem: &'static str,
    },
    /// An item id that the sequences use but the item file lacks.
    #[error("{}: item {item} is used in {sequences} but has no row", path.display())]
    UnknownItem {
        /// The item file.
        path: PathBuf,
        /// The item id (1-based, P5).
        item: u32,
        /// The file that uses it.
        sequences: &'static str,
    },
    /// The dataset folder does not exist.
    #[error("dataset folder {} does not exist; {expected}", dir.display())]
    MissingFolder {
        /// The folder.
        dir: PathBuf,
        /// The files each format needs.
        expected: String,
    },
    /// The folder lacks the file that the configured format reads.
    #[error("{} has no {} (data.format = \"{format}\")", dir.display(), file.display())]
    MissingFile {
        /// The folder.
        dir: PathBuf,
        /// The file.
        file: PathBuf,
        /// The configured format.
        format: &'static str,
    },
    /// No format's files are in the folder.
    #[error("no dataset files in {}: {expected}", dir.display())]
    NoDatasetFiles {
        /// The folder.
        dir: PathBuf,
        /// The files each format needs.
        expected: String,
    },
    /// A `[data]` setting out of range or missing.
    #[error("{message}")]
    InvalidConfig {
        /// The key at fault (`data.category`, `data.synthetic.items`, …).
        key: &'static str,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A user with too few items for the leave-one-out split.
    #[error(
        "user {user} has {items} item(s); the leave-one-out split needs at least 3 per user \
         (raise data.k_core or filter the data)"
    )]
    TooFewItems {
        /// The user (1-based).
        user: usize,
        /// How many items the user has.
        items: usize,
    },
    /// The k-core filter left nothing.
    #[error("no user and item has at least {k} interactions: the {k}-core is empty")]
    EmptyCore {
        /// k of the filter.
        k: usize,
    },
    /// A download that could not start.
    #[error(
        "cannot download {url}: {cause}.\nIf this machine is offline, put reviews_{category}_5.json.gz \
         and meta_{category}.json.gz (the official Amazon 2014 files) into {} by hand, or \
         link a folder that holds them, or a P5 folder (sequential_data.txt, items.jsonl.gz, \
         datamaps.json.gz), with `cargo xtask data fetch <dataset> --from DIR`.",
        dir.display()
    )]
    Download {
        /// The address.
        url: String,
        /// The category being fetched.
        category: String,
        /// The folder the files go into.
        dir: PathBuf,
        /// The HTTP client's error.
        cause: Box<ureq::Error>,
    },
    /// A download that stopped half-way.
    #[error("download of {url} failed")]
    DownloadInterrupted {
        /// The address.
        url: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `--from` names something that does not exist.
    #[error("{} does not exist", path.display())]
    DoesNotExist {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `--from` names a file, not a folder.
    #[error("{} is not a folder", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// The dataset's place is a real folder, which linking would hide.
    #[error(
        "{} already exists and is not a link; move it away first (nothing was changed)",
        path.display()
    )]
    NotALink {
        /// The path.
        path: PathBuf,
    },
    /// The symbolic link cannot be made.
    #[error("cannot link {} to {}", link.display(), target.display())]
    Link {
        /// The link.
        link: PathBuf,
        /// The folder it was to point at.
        target: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The loaded interactions or the artifact are invalid.
    #[error(transparent)]
    Artifact(#[from] artifacts::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;

fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(n) => format!("{}:{n}", path.display()),
        None => path.display().to_string(),
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

/// `map_err` helper: a line that cannot be read.
pub(crate) fn read_line(path: &Path, line: usize) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::ReadLine {
        path: path.to_path_buf(),
        line,
        source,
    }
}
