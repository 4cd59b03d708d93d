//! Amazon 2014 review data to the `Dataset` artifact.
//!
//! Sources: the P5 folder layout ([`p5`]), the official raw files ([`raw`]), or the synthetic
//! `demo` set ([`synthetic`]). Whatever the source, the result is the same [`Interactions`]
//! (0-based ids, each user's items in time order) and the [`split::leave_one_out`] split.

pub mod error;
pub mod fetch;
pub mod p5;
pub mod pylit;
pub mod raw;
pub mod split;
pub mod stats;
pub mod synthetic;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use artifacts::config::{DataConfig, DataFormat};
use artifacts::dataset::{Dataset, Interactions};

use error::io;
pub use error::{Error, Result};

/// Where a dataset's interactions come from, resolved from the config and the folder's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A P5 folder.
    P5(PathBuf),
    /// The official raw files of a category in a folder.
    Raw {
        /// The folder.
        dir: PathBuf,
        /// Category as spelled in the file names.
        category: String,
    },
    /// The generated demo set.
    Synthetic,
}

impl Source {
    /// Decides the source for `dir` under `cfg.format`, with an error that lists the files each
    /// format needs when none fits.
    pub fn resolve(dir: &Path, cfg: &DataConfig) -> Result<Source> {
        let p5_here = dir.join(p5::SEQUENTIAL).exists();
        let (reviews, meta) = raw::raw_files(dir, &cfg.category);
        let raw_here = !cfg.category.is_empty() && reviews.exists();
        let expected = || {
            format!(
                "expected either a P5 folder ({}, {}, optionally {}) or the raw files {} and {}",
                p5::SEQUENTIAL,
                p5::ITEMS,
                p5::DATAMAPS,
                reviews.file_name().unwrap().to_string_lossy(),
                meta.file_name().unwrap().to_string_lossy()
            )
        };
        match cfg.format {
            DataFormat::Synthetic => Ok(Source::Synthetic),
            _ if !dir.is_dir() => Err(Error::MissingFolder {
                dir: dir.to_path_buf(),
                expected: expected(),
            }),
            DataFormat::P5 if !p5_here => Err(Error::MissingFile {
                dir: dir.to_path_buf(),
                file: p5::SEQUENTIAL.into(),
                format: "p5",
            }),
            DataFormat::P5 => Ok(Source::P5(dir.to_path_buf())),
            DataFormat::Raw if cfg.category.is_empty() => Err(Error::InvalidConfig {
                key: "data.category",
                message: "data.format = \"raw\" needs data.category (e.g. \"Beauty\") to name \
                          the files"
                    .to_string(),
            }),
            DataFormat::Raw if !raw_here => Err(Error::MissingFile {
                dir: dir.to_path_buf(),
                file: reviews.clone(),
                format: "raw",
            }),
            DataFormat::Raw => Ok(Source::Raw {
                dir: dir.to_path_buf(),
                category: cfg.category.clone(),
            }),
            DataFormat::Auto if p5_here => Ok(Source::P5(dir.to_path_buf())),
            DataFormat::Auto if raw_here => Ok(Source::Raw {
                dir: dir.to_path_buf(),
                category: cfg.category.clone(),
            }),
            DataFormat::Auto => Err(Error::NoDatasetFiles {
                dir: dir.to_path_buf(),
                expected: expected(),
            }),
        }
    }

    /// The format this source is read with.
    pub fn format(&self) -> DataFormat {
        match self {
            Source::P5(_) => DataFormat::P5,
            Source::Raw { .. } => DataFormat::Raw,
            Source::Synthetic => DataFormat::Synthetic,
        }
    }

    /// The files read from disk (what the data stage hashes as its inputs).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Source::P5(dir) => p5::p5_files(dir),
            Source::Raw { dir, category } => {
                let (r, m) = raw::raw_files(dir, category);
                vec![r, m]
            }
            Source::Synthetic => Vec::new(),
        }
    }
}

/// Loads the interactions of a source and returns them with facts worth recording.
pub fn load(
    source: &Source,
    cfg: &DataConfig,
) -> Result<(Interactions, BTreeMap<String, serde_json::Value>)> {
    let mut notes = BTreeMap::new();
    notes.insert("format".to_string(), source.format().to_string().into());
    let inter = match source {
        Source::P5(dir) => p5::load_p5(dir)?,
        Source::Raw { dir, category } => {
            let (inter, report) = raw::load_raw(dir, category, cfg.k_core)?;
            record(&mut notes, &report);
            inter
        }
        Source::Synthetic => {
            let (inter, report) = synthetic::generate(&cfg.synthetic, cfg.k_core)?;
            record(&mut notes, &report);
            inter
        }
    };
    inter.validate()?;
    Ok((inter, notes))
}

fn record(notes: &mut BTreeMap<String, serde_json::Value>, report: &raw::AssembleReport) {
    notes.insert("reviews_in".into(), report.reviews_in.into());
    notes.insert(
        "duplicates_dropped".into(),
        report.duplicates_dropped.into(),
    );
    notes.insert("k_core_rounds".into(), report.k_core_rounds.into());
    notes.insert(
        "items_without_meta".into(),
        report.items_without_meta.into(),
    );
}

/// Loads a source and splits it: the whole `Dataset` artifact in memory.
pub fn build(
    source: &Source,
    cfg: &DataConfig,
) -> Result<(Dataset, BTreeMap<String, serde_json::Value>)> {
    let (interactions, notes) = load(source, cfg)?;
    let split = split::leave_one_out(&interactions, cfg.max_history)?;
    Ok((
        Dataset {
            interactions,
            split,
        },
        notes,
    ))
}

/// Opens a file for line reading, decompressing it when its name ends in `.gz`.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).map_err(io("open", path))?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        ))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}
