//! Pipeline stages. A stage reads its configuration and its upstream artifacts, and writes one
//! artifact; the engine ([`crate::engine`]) decides whether it needs to run.
//!
//! To add a stage: give it a [`StageId`], declare its [`StageSpec`] as a `const`, implement
//! [`Stage`] in a module here and put it in its place in [`registry`]. Nothing else changes.

pub mod data;
pub mod embed;
pub mod eval;
pub mod report;
pub mod sids;
pub mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use artifacts::{ArtifactWriter, Config};

use crate::error::Result;
use crate::id::{RunKey, StageId};
use crate::layout::RunLayout;
use crate::workspace::Workspace;

/// The upstream artifacts a stage reads: per upstream stage, its directory (the same run's, for
/// a per-seed stage reading a per-seed stage) or, for a stage that runs once and reads a
/// per-seed stage, every run's.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    entries: Vec<(StageId, Option<RunKey>, PathBuf)>,
}

impl Upstream {
    /// Adds an upstream artifact.
    pub fn insert(&mut self, stage: StageId, run: Option<RunKey>, dir: PathBuf) {
        self.entries.push((stage, run, dir));
    }

    /// The directory of upstream stage `stage`.
    ///
    /// # Panics
    /// When `stage` is not upstream: the stage's spec and its code disagree.
    pub fn dir(&self, stage: StageId) -> &Path {
        self.entries
            .iter()
            .find(|(s, _, _)| *s == stage)
            .map(|(_, _, d)| d.as_path())
            .unwrap_or_else(|| panic!("this stage does not read the `{stage}` artifact"))
    }

    /// Every run of the per-seed upstream stage `stage`, in pipeline order.
    pub fn runs(&self, stage: StageId) -> impl Iterator<Item = (RunKey, &Path)> {
        self.entries
            .iter()
            .filter(move |(s, _, _)| *s == stage)
            .filter_map(|(_, run, d)| run.map(|r| (r, d.as_path())))
    }

    /// Every entry with the name its manifest input gets (`data`, `train:none/seed-42`).
    pub fn named(&self) -> impl Iterator<Item = (StageId, String, &Path)> {
        self.entries.iter().map(|(stage, run, dir)| {
            let name = match run {
                Some(r) => format!("{stage}:{r}"),
                None => stage.to_string(),
            };
            (*stage, name, dir.as_path())
        })
    }
}

/// What a stage gets to work with.
pub struct StageContext<'a> {
    /// The project's folders.
    pub workspace: &'a Workspace,
    /// Dataset name (`beauty`, `demo`, …).
    pub dataset: &'a str,
    /// Where the dataset's artifacts live.
    pub layout: &'a RunLayout,
    /// The resolved configuration (for a per-seed stage, the variant's).
    pub config: &'a Config,
    /// The run (variant and seed) of a per-seed stage.
    pub run: Option<RunKey>,
    /// The upstream artifacts.
    pub upstream: Upstream,
    /// A directory for state that must survive a crash (checkpoints); removed after the
    /// artifact is committed.
    pub work_dir: PathBuf,
    /// Hash of the stage's fingerprint (configuration and inputs) for this run.
    pub run_hash: String,
}

impl StageContext<'_> {
    /// The run of a per-seed stage (an error for a stage that runs once).
    ///
    /// # Panics
    /// For a stage that runs once (the engine gives every per-seed stage its run).
    pub fn run(&self) -> RunKey {
        self.run
            .unwrap_or_else(|| panic!("this stage runs per variant and seed"))
    }

    /// The run's variant as its directories name it.
    pub fn variant_name(&self) -> String {
        self.run
            .map(|r| r.variant.to_string())
            .unwrap_or_else(|| self.config.reducer.kind.to_string())
    }
}

/// What a stage is, fixed for its lifetime: declared once per stage as a `const`.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    /// Which stage (whether it runs per variant and seed is [`StageId::per_seed`]).
    pub id: StageId,
    /// What it does, one line.
    pub about: &'static str,
    /// Version of the artifact's on-disk schema.
    pub schema_version: u32,
    /// Stages whose artifacts this one reads.
    pub upstream: &'static [StageId],
}

/// One step of the pipeline: its [`StageSpec`] and what varies with the configuration.
pub trait Stage {
    /// The stage's constant description.
    fn spec(&self) -> StageSpec;
    /// Which stage.
    fn id(&self) -> StageId {
        self.spec().id
    }
    /// Hash of the configuration this stage reads (a change re-runs it).
    fn config_hash(&self, config: &Config) -> String;
    /// The files of upstream artifact `upstream` that this stage reads; `None` means all of them.
    /// Naming them lets an upstream change that does not touch them leave this stage current.
    fn upstream_files(&self, _upstream: StageId, _config: &Config) -> Option<Vec<&'static str>> {
        None
    }
    /// Files outside the pipeline this stage reads, by name (their content is hashed).
    fn external_inputs(&self, _ctx: &StageContext) -> Result<BTreeMap<String, PathBuf>> {
        Ok(BTreeMap::new())
    }
    /// Does the work, writing files into `out` and recording rows/details on it.
    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()>;
}

/// The pipeline's stages in order.
pub fn registry() -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(data::DataStage),
        Box::new(embed::EmbedStage),
        Box::new(sids::SidsStage),
        Box::new(train::TrainStage),
        Box::new(eval::EvalStage),
        Box::new(report::ReportStage),
    ]
}
