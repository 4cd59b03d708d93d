//! Pipeline stages. A stage reads its configuration and its upstream artifacts, and writes one
//! artifact; the orchestrator ([`crate::pipeline`]) decides whether it needs to run.
//!
//! To add a stage: give it a [`StageId`], implement [`Stage`] in a module here and put it in
//! its place in [`registry`]. Nothing else changes.

pub mod data;
pub mod embed;
pub mod eval;
pub mod report;
pub mod sids;
pub mod train;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow};
use artifacts::config::Variant;
use artifacts::{ArtifactWriter, Config};

use crate::workspace::Workspace;

/// The stages, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageId {
    /// Load, filter and split the interactions.
    Data,
    /// Item text (or co-occurrence) to embeddings.
    Embed,
    /// Embeddings to semantic ids.
    Sids,
    /// Train the model (per variant and seed).
    Train,
    /// Test metrics (per variant and seed).
    Eval,
    /// The report over all runs.
    Report,
}

impl StageId {
    /// Every stage, in pipeline order.
    pub const ALL: [StageId; 6] = [
        StageId::Data,
        StageId::Embed,
        StageId::Sids,
        StageId::Train,
        StageId::Eval,
        StageId::Report,
    ];

    /// The stage's name, also its artifact directory's name.
    pub fn name(self) -> &'static str {
        match self {
            StageId::Data => "data",
            StageId::Embed => "embed",
            StageId::Sids => "sids",
            StageId::Train => "train",
            StageId::Eval => "eval",
            StageId::Report => "report",
        }
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StageId {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<StageId> {
        StageId::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = StageId::ALL.iter().map(|s| s.name()).collect();
                anyhow!("unknown stage `{text}`; stages: {}", names.join(", "))
            })
    }
}

/// One run of the per-seed stages: a reducer variant and a seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunKey {
    /// The reducer variant of this run (canonical).
    pub variant: Variant,
    /// The seed.
    pub seed: u64,
}

impl RunKey {
    /// `<variant>/seed-<seed>` under a stage's directory.
    pub fn dir(&self, stage_dir: &Path) -> PathBuf {
        stage_dir
            .join(self.variant.to_string())
            .join(format!("seed-{}", self.seed))
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/seed-{}", self.variant, self.seed)
    }
}

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

    /// The directory of upstream stage `stage` (an error when the stage is not upstream).
    pub fn dir(&self, stage: StageId) -> Result<&Path> {
        self.entries
            .iter()
            .find(|(s, _, _)| *s == stage)
            .map(|(_, _, d)| d.as_path())
            .with_context(|| format!("this stage does not read the `{stage}` artifact"))
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
    pub fn run(&self) -> Result<RunKey> {
        self.run.context("this stage runs per variant and seed")
    }

    /// The run's variant as its directories name it.
    pub fn variant_name(&self) -> String {
        self.run
            .map(|r| r.variant.to_string())
            .unwrap_or_else(|| self.config.reducer.kind.to_string())
    }
}

/// One step of the pipeline.
pub trait Stage {
    /// Which stage.
    fn id(&self) -> StageId;
    /// What it does, one line.
    fn about(&self) -> &'static str;
    /// Version of the artifact's on-disk schema.
    fn schema_version(&self) -> u32;
    /// Stages whose artifacts this one reads.
    fn upstream(&self) -> &'static [StageId];
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
    /// True when the stage runs once per reducer variant and seed (`<stage>/<variant>/seed-<n>/`).
    fn per_seed(&self) -> bool {
        false
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
