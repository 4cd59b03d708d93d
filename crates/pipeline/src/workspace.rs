//! Where things are: the project root, configs, datasets, runs; and the resolved configuration
//! of one dataset.

use std::path::{Path, PathBuf};

use artifacts::{Config, ConfigLayer};

use crate::error::{Error, Result, io};
use crate::layout::RunLayout;

/// Environment variable naming the folder that holds `amazon/<dataset>/` (default `<root>/datasets`).
pub const DATASETS_ENV: &str = "RASTP_DATASETS";
/// Environment variable naming the folder for run artifacts (default `<root>/runs`).
pub const RUNS_ENV: &str = "RASTP_RUNS";

/// The project's folders.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Project root (holds `configs/`).
    pub root: PathBuf,
    /// Holds `amazon/<dataset>/`.
    pub datasets: PathBuf,
    /// Holds `<dataset>/<stage>/`.
    pub runs: PathBuf,
}

impl Workspace {
    /// Finds the project root from the current directory (so a binary carried to another machine
    /// works inside any copy of the tree), else from where this crate was built.
    pub fn locate(datasets: Option<PathBuf>, runs: Option<PathBuf>) -> Result<Workspace> {
        let cwd = std::env::current_dir().map_err(io("."))?;
        // This crate sits at `<root>/crates/pipeline`.
        let built = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .map(Path::to_path_buf);
        let root = cwd
            .ancestors()
            .find(|d| d.join("configs").is_dir() && d.join("Cargo.toml").is_file())
            .map(Path::to_path_buf)
            .or(built.filter(|d| d.join("configs").is_dir()))
            .ok_or(Error::NoProjectRoot)?;
        Ok(Workspace::at(root, datasets, runs))
    }

    /// A workspace rooted at `root`, with optional overrides (flags win over environment variables).
    pub fn at(root: PathBuf, datasets: Option<PathBuf>, runs: Option<PathBuf>) -> Workspace {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Workspace {
            datasets: datasets
                .or_else(|| env(DATASETS_ENV))
                .unwrap_or_else(|| root.join("datasets")),
            runs: runs
                .or_else(|| env(RUNS_ENV))
                .unwrap_or_else(|| root.join("runs")),
            root,
        }
    }

    /// The datasets that have a config file (`configs/<name>.toml`).
    pub fn known_datasets(&self) -> Result<Vec<String>> {
        let dir = self.root.join("configs");
        toml_stems(&dir).map_err(io(dir))
    }

    /// The profiles that exist (`configs/profiles/<name>.toml`).
    pub fn known_profiles(&self) -> Vec<String> {
        toml_stems(&self.root.join("configs/profiles")).unwrap_or_default()
    }

    /// Folder the dataset's files are read from.
    pub fn dataset_dir(&self, dataset: &str) -> PathBuf {
        self.datasets.join("amazon").join(dataset)
    }

    /// Where the dataset's run artifacts live.
    pub fn layout(&self, dataset: &str) -> RunLayout {
        RunLayout::new(&self.runs, dataset)
    }

    /// Folder of the pretrained weights (`models/<name>/`, filled by `cargo xtask setup`).
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Checks the dataset name against the config files.
    pub fn check_dataset(&self, dataset: &str) -> Result<()> {
        let known = self.known_datasets()?;
        if !known.iter().any(|k| k == dataset) {
            return Err(Error::UnknownDataset {
                name: dataset.to_string(),
                known: known.join(", "),
            });
        }
        Ok(())
    }

    /// Resolves the configuration: `configs/<dataset>.toml` (or `config_file`), then the profile,
    /// then the `--set` overrides.
    pub fn config(
        &self,
        dataset: &str,
        config_file: Option<&Path>,
        profile: &str,
        sets: &[String],
    ) -> Result<Config> {
        self.check_dataset(dataset)?;
        let mut layers = vec![ConfigLayer::File(
            config_file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.join(format!("configs/{dataset}.toml"))),
        )];
        let profile_path = self.root.join(format!("configs/profiles/{profile}.toml"));
        if !profile_path.is_file() {
            return Err(Error::UnknownProfile {
                name: profile.to_string(),
                known: self.known_profiles().join(", "),
            });
        }
        layers.push(ConfigLayer::Profile {
            name: profile.to_string(),
            path: profile_path,
        });
        layers.extend(sets.iter().map(|s| ConfigLayer::Set(s.clone())));
        Ok(Config::from_layers(&layers)?)
    }
}

/// Sorted file stems of the `.toml` files directly in `dir`.
fn toml_stems(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// Facts a loader reports (format, filter counts, …).
pub type Notes = std::collections::BTreeMap<String, serde_json::Value>;

impl Workspace {
    /// Resolves where `dataset`'s interactions come from.
    pub fn data_source(&self, dataset: &str, config: &Config) -> Result<data_amazon::Source> {
        let dir = self.dataset_dir(dataset);
        data_amazon::Source::resolve(&dir, &config.data).map_err(|source| Error::NoDataSource {
            dataset: dataset.to_string(),
            source: Box::new(source),
        })
    }

    /// Loads and splits `dataset` straight from its source (no artifact written), with the
    /// source and the loader's notes.
    pub fn load_dataset(
        &self,
        dataset: &str,
        config: &Config,
    ) -> Result<(data_amazon::Source, artifacts::dataset::Dataset, Notes)> {
        let source = self.data_source(dataset, config)?;
        let (data, notes) = data_amazon::build(&source, &config.data)?;
        Ok((source, data, notes))
    }
}
