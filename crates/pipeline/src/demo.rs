//! The demo pipeline in a runs folder of its own: the synthetic `demo` dataset (no downloads)
//! through the real stages. The one set-up the end-to-end tests, the backend conformance test and
//! a first look at the project share.

use std::path::Path;

use artifacts::Config;

use crate::engine::{self, PipelineOptions, StageReport};
use crate::error::Result;
use crate::layout::RunLayout;
use crate::stages::registry;
use crate::workspace::Workspace;

/// The dataset name of the synthetic demo set.
pub const DATASET: &str = "demo";

/// The demo dataset's configuration under a profile, with its runs in their own folder.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The project's folders, with `runs` replaced.
    pub workspace: Workspace,
    /// `configs/demo.toml` under the profile and the `--set` overrides.
    pub config: Config,
}

impl Demo {
    /// The demo under `profile` (`quick`, `short`, `paper` …) with `sets` (`key=value`) applied,
    /// writing its artifacts under `runs`.
    pub fn new(runs: &Path, profile: &str, sets: &[&str]) -> Result<Demo> {
        let workspace = Workspace::locate(None, Some(runs.to_path_buf()))?;
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let config = workspace.config(DATASET, None, profile, &sets)?;
        Ok(Demo { workspace, config })
    }

    /// Runs the pipeline's stages (all of them, up to `until`, for `seeds`).
    pub fn run(&self, opts: &PipelineOptions) -> Result<Vec<StageReport>> {
        engine::run(&self.workspace, DATASET, &self.config, &registry(), opts)
    }

    /// Runs every stage for one seed.
    pub fn run_all(&self, seed: u64) -> Result<Vec<StageReport>> {
        self.run(&PipelineOptions {
            until: None,
            force: false,
            seeds: vec![seed],
        })
    }

    /// Where the demo's artifacts are.
    pub fn layout(&self) -> RunLayout {
        self.workspace.layout(DATASET)
    }
}
