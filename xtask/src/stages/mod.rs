//! Pipeline stages. A stage reads its configuration and its upstream artifacts, and writes one
//! artifact; the orchestrator ([`crate::pipeline`]) decides whether it needs to run.
//!
//! To add a stage: implement [`Stage`] in a module here and put it in its slot in [`registry`].
//! Nothing else changes.

pub mod data;
pub mod embed;
pub mod eval;
pub mod report;
pub mod sids;
pub mod train;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use artifacts::{ArtifactWriter, Config};

use crate::workspace::Workspace;

/// What a stage gets to work with.
pub struct StageContext<'a> {
    /// The project's folders.
    pub workspace: &'a Workspace,
    /// Dataset name (`beauty`, `demo`, …).
    pub dataset: &'a str,
    /// The resolved configuration.
    pub config: &'a Config,
    /// The seed, for per-seed stages.
    pub seed: Option<u64>,
    /// The reducer variant, for per-seed stages (`config.reducer.kind` is set to it).
    pub variant: Option<artifacts::config::Variant>,
    /// Upstream stage name → its artifact directory. A stage that runs once and reads a
    /// per-seed stage gets every run of it, as `<stage>:<variant>/seed-<n>`.
    pub upstream: BTreeMap<String, PathBuf>,
    /// A directory for state that must survive a crash (checkpoints); removed after the
    /// artifact is committed.
    pub work_dir: PathBuf,
    /// Hash of the stage's fingerprint (configuration and inputs) for this run.
    pub run_hash: String,
}

/// One step of the pipeline.
pub trait Stage {
    /// Short name, also the artifact directory's name (`data`, `embed`, …).
    fn name(&self) -> &'static str;
    /// Version of the artifact's on-disk schema.
    fn schema_version(&self) -> u32;
    /// Stages whose artifacts this one reads.
    fn upstream(&self) -> &'static [&'static str];
    /// Hash of the configuration this stage reads (a change re-runs it).
    fn config_hash(&self, config: &Config) -> String;
    /// The files of upstream artifact `upstream` that this stage reads; `None` means all of them.
    /// Naming them lets an upstream change that does not touch them leave this stage current.
    fn upstream_files(&self, _upstream: &str, _config: &Config) -> Option<Vec<&'static str>> {
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

/// A place in the pipeline: a stage, or a stage that is not built yet.
pub struct Slot {
    /// Stage name.
    pub name: &'static str,
    /// What it does, one line.
    pub about: &'static str,
    /// The implementation, when it exists.
    pub stage: Option<Box<dyn Stage>>,
}

/// The pipeline in order. Slots without an implementation are reported as not available.
pub fn registry() -> Vec<Slot> {
    vec![
        Slot {
            name: "data",
            about: "load, filter and split the interactions",
            stage: Some(Box::new(data::DataStage)),
        },
        Slot {
            name: "embed",
            about: "item text to sentence embeddings (or collaborative embeddings)",
            stage: Some(Box::new(embed::EmbedStage)),
        },
        Slot {
            name: "sids",
            about: "RQ-KMeans semantic ids",
            stage: Some(Box::new(sids::SidsStage)),
        },
        Slot {
            name: "train",
            about: "train the TIGER model (with the token reducer)",
            stage: Some(Box::new(train::TrainStage)),
        },
        Slot {
            name: "eval",
            about: "Recall/NDCG on the test split",
            stage: Some(Box::new(eval::EvalStage)),
        },
        Slot {
            name: "report",
            about: "Table-2 report and plots",
            stage: Some(Box::new(report::ReportStage)),
        },
    ]
}

/// The run's variant as its directories name it (the reducer kind outside a per-seed stage).
pub fn variant_name(ctx: &StageContext) -> String {
    ctx.variant
        .map(|v| v.to_string())
        .unwrap_or_else(|| ctx.config.reducer.kind.to_string())
}
