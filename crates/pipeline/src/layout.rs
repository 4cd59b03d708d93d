//! [`RunLayout`]: the one place that knows where every artifact of a dataset's runs lives.
//!
//! ```text
//! <runs>/<dataset>/
//!   .lock                                   the run lock (artifacts::lock)
//!   data/ embed/ sids/                      stages that run once
//!   train/<variant>/seed-<n>/               per-seed stages (StageId::per_seed)
//!   train/<variant>/seed-<n>.work/          checkpoints of an unfinished stage
//!   eval/<variant>/seed-<n>/
//!   report/  report.md                      the report artifact and its copy at the top
//!   experiments/<question>/report.md        experiments (dataset `all` for the cross-dataset summary)
//! ```

use std::path::{Path, PathBuf};

use artifacts::Config;
use artifacts::config::Variant;
use artifacts::lock::RunLock;
use artifacts::manifest::MANIFEST_FILE;

use crate::error::{Error, Result};
use crate::id::{RunKey, StageId};

/// Where one dataset's artifacts live under a runs folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    dataset: String,
    dir: PathBuf,
}

impl RunLayout {
    /// The layout of `dataset` under the runs folder `runs`.
    pub fn new(runs: &Path, dataset: &str) -> RunLayout {
        RunLayout {
            dataset: dataset.to_string(),
            dir: runs.join(dataset),
        }
    }

    /// The dataset's name.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The dataset's folder (`<runs>/<dataset>`), which holds its run lock.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the dataset's run lock (see [`RunLock`]).
    pub fn lock(&self) -> Result<RunLock> {
        Ok(RunLock::acquire(&self.dir)?)
    }

    /// A stage's folder: its artifact for a stage that runs once, the parent of its runs for a
    /// per-seed stage.
    pub fn stage_dir(&self, stage: StageId) -> PathBuf {
        self.dir.join(stage.name())
    }

    /// The artifact of `stage` (for a per-seed stage, of `run`; `run` is ignored for the others).
    ///
    /// # Panics
    /// For a per-seed stage without a run.
    pub fn artifact(&self, stage: StageId, run: Option<&RunKey>) -> PathBuf {
        match (stage.per_seed(), run) {
            (true, Some(k)) => self
                .stage_dir(stage)
                .join(k.variant.to_string())
                .join(format!("seed-{}", k.seed)),
            (true, None) => panic!("stage `{stage}` runs per variant and seed: name the run"),
            (false, _) => self.stage_dir(stage),
        }
    }

    /// The `data` artifact (the `Dataset`).
    pub fn data(&self) -> PathBuf {
        self.artifact(StageId::Data, None)
    }

    /// The `embed` artifact (the `ItemEmbeddings`).
    pub fn embed(&self) -> PathBuf {
        self.artifact(StageId::Embed, None)
    }

    /// The `sids` artifact (the `SemanticIds`).
    pub fn sids(&self) -> PathBuf {
        self.artifact(StageId::Sids, None)
    }

    /// The `train` artifact of one run (the `Model`).
    pub fn train(&self, run: &RunKey) -> PathBuf {
        self.artifact(StageId::Train, Some(run))
    }

    /// The `eval` artifact of one run (the `Metrics`).
    pub fn eval(&self, run: &RunKey) -> PathBuf {
        self.artifact(StageId::Eval, Some(run))
    }

    /// The `report` artifact.
    pub fn report(&self) -> PathBuf {
        self.artifact(StageId::Report, None)
    }

    /// The copy of the report at the top of the dataset's folder (`<runs>/<dataset>/report.md`).
    pub fn report_copy(&self) -> PathBuf {
        self.dir.join(reporting::REPORT_FILE)
    }

    /// Where a stage keeps state between attempts (checkpoints): beside its artifact directory
    /// (`seed-42` → `seed-42.work`).
    pub fn work_dir(artifact_dir: &Path) -> PathBuf {
        let name = artifact_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        artifact_dir.with_file_name(format!("{name}.work"))
    }

    /// The folder of an experiment's report and plots (`experiments/<question>`).
    pub fn experiment_dir(&self, question: &str) -> PathBuf {
        self.dir.join("experiments").join(question)
    }

    /// True when the artifact directory has a manifest (a committed artifact).
    pub fn exists(artifact_dir: &Path) -> bool {
        artifact_dir.join(MANIFEST_FILE).is_file()
    }

    /// An artifact a command needs, or [`Error::MissingArtifact`] telling how to make it.
    pub fn require(&self, stage: StageId, run: Option<&RunKey>) -> Result<PathBuf> {
        let dir = self.artifact(stage, run);
        if RunLayout::exists(&dir) {
            Ok(dir)
        } else {
            Err(Error::MissingArtifact {
                stage,
                dataset: self.dataset.clone(),
                dir,
            })
        }
    }

    /// The trained run to use: `variant` (made canonical), else the first of `run.variants` that
    /// has a `train` artifact for `seed`.
    pub fn find_trained(
        &self,
        config: &Config,
        variant: Option<Variant>,
        seed: u64,
    ) -> Result<RunKey> {
        let candidates: Vec<Variant> = match variant {
            Some(v) => vec![v.canonical(&config.reducer)],
            None => config.variants(),
        };
        candidates
            .iter()
            .map(|&variant| RunKey { variant, seed })
            .find(|k| RunLayout::exists(&self.train(k)))
            .ok_or_else(|| Error::NoTrainedModel {
                dataset: self.dataset.clone(),
                variants: candidates
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                seed,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifacts::config::ReducerKind;

    #[test]
    fn artifacts_have_one_place_each() {
        let l = RunLayout::new(Path::new("/runs"), "beauty");
        let k = RunKey {
            variant: "rastp@1:0.5".parse().unwrap(),
            seed: 7,
        };
        assert_eq!(l.data(), Path::new("/runs/beauty/data"));
        assert_eq!(l.sids(), Path::new("/runs/beauty/sids"));
        assert_eq!(
            l.train(&k),
            Path::new("/runs/beauty/train/rastp@1:0.5/seed-7")
        );
        assert_eq!(
            l.eval(&k),
            Path::new("/runs/beauty/eval/rastp@1:0.5/seed-7")
        );
        assert_eq!(l.artifact(StageId::Data, Some(&k)), l.data());
        assert_eq!(
            RunLayout::work_dir(&l.train(&k)),
            Path::new("/runs/beauty/train/rastp@1:0.5/seed-7.work")
        );
        assert_eq!(
            l.experiment_dir("rq3"),
            Path::new("/runs/beauty/experiments/rq3")
        );
    }

    #[test]
    fn missing_models_name_the_variants_and_the_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let l = RunLayout::new(tmp.path(), "demo");
        let mut cfg = Config::default();
        cfg.run.variants = vec![Variant::kind(ReducerKind::None)];
        match l.find_trained(&cfg, None, 3).unwrap_err() {
            Error::NoTrainedModel { variants, seed, .. } => {
                assert_eq!((variants.as_str(), seed), ("none", 3));
            }
            e => panic!("{e}"),
        }
        let k = RunKey {
            variant: Variant::kind(ReducerKind::None),
            seed: 3,
        };
        std::fs::create_dir_all(l.train(&k)).unwrap();
        std::fs::write(l.train(&k).join(MANIFEST_FILE), "{}").unwrap();
        assert_eq!(l.find_trained(&cfg, None, 3).unwrap(), k);
        assert!(matches!(
            l.require(StageId::Sids, None),
            Err(Error::MissingArtifact {
                stage: StageId::Sids,
                ..
            })
        ));
    }
}
