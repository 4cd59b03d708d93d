//! The stage engine: runs the stages in order, reusing every artifact whose manifest matches the
//! stage's config hash and input hashes, and reports what it did. It holds the dataset's run
//! lock ([`artifacts::lock::RunLock`]) while it works, so a second pipeline on the same runs
//! folder stops at once with the holder's name instead of racing it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use artifacts::manifest::{Fingerprint, Manifest};
use artifacts::{ArtifactWriter, Config};

use crate::error::{Error, Result};
use crate::id::{RunKey, StageId};
use crate::layout::RunLayout;
use crate::stages::{Stage, StageContext, Upstream};
use crate::workspace::Workspace;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Last stage to run (inclusive); `None` runs them all.
    pub until: Option<StageId>,
    /// Re-run stages even when their artifacts are up to date.
    pub force: bool,
    /// Seeds for per-seed stages.
    pub seeds: Vec<u64>,
}

/// What happened to one stage (and run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It ran and wrote its artifact.
    Ran,
    /// Its artifact matched; nothing ran.
    UpToDate,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ran => "ran",
            Status::UpToDate => "up to date",
        })
    }
}

/// One row of the pipeline's report.
#[derive(Debug, Clone)]
pub struct StageReport {
    /// Which stage.
    pub stage: StageId,
    /// The run of a per-seed stage.
    pub run: Option<RunKey>,
    /// What happened.
    pub status: Status,
    /// Wall time of this invocation.
    pub seconds: f64,
    /// Artifact directory.
    pub dir: PathBuf,
}

/// Runs the pipeline for one dataset.
pub fn run(
    workspace: &Workspace,
    dataset: &str,
    config: &Config,
    stages: &[Box<dyn Stage>],
    opts: &PipelineOptions,
) -> Result<Vec<StageReport>> {
    let last = match opts.until {
        Some(id) => stages
            .iter()
            .position(|s| s.id() == id)
            .ok_or(Error::StageNotInPipeline(id))?,
        None => stages
            .len()
            .checked_sub(1)
            .ok_or(Error::NothingToRun("no stages to run"))?,
    };
    if opts.seeds.is_empty() {
        return Err(Error::NothingToRun("no seeds given"));
    }
    let layout = workspace.layout(dataset);
    let _lock = layout.lock()?;
    let artifact_dir = |stage: StageId, key: Option<&RunKey>| layout.artifact(stage, key);
    let variants = config.variants();
    if variants.is_empty() {
        return Err(Error::NothingToRun(
            "run.variants is empty: name at least one reducer (e.g. [\"none\", \"rastp\"])",
        ));
    }
    let keys: Vec<RunKey> = variants
        .iter()
        .flat_map(|&variant| opts.seeds.iter().map(move |&seed| RunKey { variant, seed }))
        .collect();
    let variant_configs: Vec<Config> = variants
        .iter()
        .map(|v| config.for_variant(v))
        .collect::<Result<_, _>>()?;
    let config_of = |key: Option<&RunKey>| match key {
        Some(k) => variants
            .iter()
            .position(|v| *v == k.variant)
            .map_or(config, |i| &variant_configs[i]),
        None => config,
    };

    let mut reports = Vec::new();
    for stage in &stages[..=last] {
        let stage_keys: Vec<Option<&RunKey>> = if stage.id().per_seed() {
            keys.iter().map(Some).collect()
        } else {
            vec![None]
        };
        for key in stage_keys {
            let dir = artifact_dir(stage.id(), key);
            let mut upstream = Upstream::default();
            for &u in stage.spec().upstream {
                if u.per_seed() && key.is_none() {
                    // A stage that runs once reads every run of a per-seed stage.
                    for k in &keys {
                        upstream.insert(u, Some(*k), artifact_dir(u, Some(k)));
                    }
                } else {
                    upstream.insert(u, None, artifact_dir(u, key));
                }
            }
            let ctx = StageContext {
                workspace,
                dataset,
                layout: &layout,
                config: config_of(key),
                run: key.copied(),
                upstream,
                work_dir: RunLayout::work_dir(&dir),
                run_hash: String::new(),
            };
            let (status, seconds) =
                run_stage(stage.as_ref(), ctx, &dir, opts.force).map_err(|e| Error::Stage {
                    stage: stage.id(),
                    source: Box::new(e),
                })?;
            let label = key.map(|k| format!(" ({k})")).unwrap_or_default();
            eprintln!(
                "[{}{label}] {status} ({seconds:.1} s) -> {}",
                stage.id(),
                dir.display()
            );
            reports.push(StageReport {
                stage: stage.id(),
                run: key.copied(),
                status,
                seconds,
                dir,
            });
        }
    }
    Ok(reports)
}

/// The fingerprint a stage would record now: its config hash and its inputs' hashes.
fn fingerprint(stage: &dyn Stage, ctx: &StageContext) -> Result<Fingerprint> {
    let mut inputs = BTreeMap::new();
    for (up, name, up_dir) in ctx.upstream.named() {
        let manifest = Manifest::require(up_dir, up.name())?;
        let hash = match stage.upstream_files(up, ctx.config) {
            None => manifest.content_hash,
            Some(files) => {
                let mut read = BTreeMap::new();
                for f in files {
                    let entry = manifest.files.get(f).ok_or_else(|| {
                        Error::Invalid(format!(
                            "the `{name}` artifact in {} has no {f}",
                            up_dir.display()
                        ))
                    })?;
                    read.insert(f, entry.sha256.clone());
                }
                artifacts::hashing::hash_json(&read)
            }
        };
        inputs.insert(format!("stage:{name}"), hash);
    }
    for (name, path) in stage.external_inputs(ctx)? {
        inputs.insert(
            format!("file:{name}"),
            artifacts::hashing::hash_file(&path)?,
        );
    }
    Ok(Fingerprint {
        stage: stage.id().name().to_string(),
        schema_version: stage.spec().schema_version,
        config_hash: stage.config_hash(ctx.config),
        inputs,
    })
}

/// Runs one stage unless its artifact is current. Returns the status and the wall time.
fn run_stage(
    stage: &dyn Stage,
    mut ctx: StageContext,
    dir: &Path,
    force: bool,
) -> Result<(Status, f64)> {
    let started = Instant::now();
    let fingerprint = fingerprint(stage, &ctx)?;
    let current = Manifest::read(dir)
        .ok()
        .flatten()
        .is_some_and(|m| m.is_current(dir, &fingerprint));
    if current && !force {
        return Ok((Status::UpToDate, started.elapsed().as_secs_f64()));
    }
    ctx.run_hash = artifacts::hashing::hash_json(&fingerprint);
    let mut writer = ArtifactWriter::create(dir, fingerprint)?;
    if let Some(run) = ctx.run {
        writer
            .detail("seed", run.seed)
            .detail("variant", run.variant.to_string());
    }
    stage.run(&ctx, &mut writer)?;
    writer.commit(&format!("{} {}", stage.id(), env!("CARGO_PKG_VERSION")))?;
    if ctx.work_dir.exists() {
        std::fs::remove_dir_all(&ctx.work_dir).map_err(crate::error::io(&ctx.work_dir))?;
    }
    Ok((Status::Ran, started.elapsed().as_secs_f64()))
}

/// The report as an aligned text table.
pub fn table(reports: &[StageReport]) -> String {
    let mut rows = vec![[
        "stage".to_string(),
        "status".into(),
        "time".into(),
        "artifact".into(),
    ]];
    for r in reports {
        let stage = match r.run {
            Some(k) => format!("{} seed {}", r.stage, k.seed),
            None => r.stage.to_string(),
        };
        rows.push([
            stage,
            r.status.to_string(),
            format!("{:.1} s", r.seconds),
            r.dir.display().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap())
        .collect();
    rows.iter()
        .map(|r| {
            (0..4)
                .map(|c| format!("{:<w$}", r[c], w = widths[c]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::StageSpec;
    use artifacts::config::{ReducerKind, Variant};
    use std::cell::Cell;
    use std::rc::Rc;

    /// A stage for testing the orchestrator: writes its config value and counts its runs.
    struct Counting {
        id: StageId,
        upstream: &'static [StageId],
        runs: Rc<Cell<usize>>,
    }

    impl Stage for Counting {
        fn spec(&self) -> StageSpec {
            StageSpec {
                id: self.id,
                about: "counts its runs",
                schema_version: 1,
                upstream: self.upstream,
            }
        }
        fn config_hash(&self, config: &Config) -> String {
            // Only the first stage reads the config.
            match self.upstream.is_empty() {
                true => Config::section_hash(&config.data.max_history),
                false => Config::section_hash(&self.id.name()),
            }
        }
        fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
            self.runs.set(self.runs.get() + 1);
            // Output depends on the config only for the first stage, so that downstream
            // reuse by content hash is visible.
            let text = if self.upstream.is_empty() {
                ctx.config.data.max_history.to_string()
            } else {
                "x".into()
            };
            crate::error::write_file(&out.file("out.txt"), text)
        }
    }

    fn stages(counts: &[Rc<Cell<usize>>; 3]) -> Vec<Box<dyn Stage>> {
        vec![
            Box::new(Counting {
                id: StageId::Data,
                upstream: &[],
                runs: counts[0].clone(),
            }),
            Box::new(Counting {
                id: StageId::Embed,
                upstream: &[StageId::Data],
                runs: counts[1].clone(),
            }),
            Box::new(Counting {
                id: StageId::Train,
                upstream: &[StageId::Embed],
                runs: counts[2].clone(),
            }),
        ]
    }

    fn opts(until: Option<StageId>, seeds: &[u64]) -> PipelineOptions {
        PipelineOptions {
            until,
            force: false,
            seeds: seeds.to_vec(),
        }
    }

    #[test]
    fn skips_current_stages_and_reruns_on_config_change() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().into(), None, Some(tmp.path().join("runs")));
        let counts: [Rc<Cell<usize>>; 3] = Default::default();
        let stages = stages(&counts);
        let mut cfg = Config::default();
        cfg.run.variants = vec![Variant::kind(ReducerKind::None)];
        let r = run(&ws, "t", &cfg, &stages, &opts(None, &[1, 2])).unwrap();
        assert!(r.iter().all(|r| r.status == Status::Ran) && r.len() == 4);
        assert!(
            tmp.path()
                .join("runs/t/train/none/seed-2/manifest.json")
                .exists()
        );

        let r = run(&ws, "t", &cfg, &stages, &opts(None, &[1, 2])).unwrap();
        assert!(r.iter().all(|r| r.status == Status::UpToDate));
        assert_eq!(
            counts.iter().map(|c| c.get()).collect::<Vec<_>>(),
            vec![1, 1, 2]
        );

        // A config change re-runs `data`; its output changes, so `embed` re-runs; `embed`'s
        // output is the same, so `train` is reused through the content hash.
        cfg.data.max_history = 7;
        let r = run(&ws, "t", &cfg, &stages, &opts(None, &[1, 2])).unwrap();
        assert_eq!(r[0].status, Status::Ran);
        assert_eq!(
            counts.iter().map(|c| c.get()).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        assert_eq!(r[2].status, Status::UpToDate);

        // --until stops early; --force re-runs.
        let r = run(
            &ws,
            "t",
            &cfg,
            &stages,
            &PipelineOptions {
                force: true,
                ..opts(Some(StageId::Data), &[1])
            },
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, Status::Ran);
        assert!(table(&r).contains("ran"));

        // Two variants: the per-seed stage runs once per (variant, seed), in its own directory.
        cfg.run.variants = vec![
            Variant::kind(ReducerKind::None),
            "rastp@1:0.5".parse().unwrap(),
        ];
        let r = run(&ws, "t", &cfg, &stages, &opts(Some(StageId::Train), &[1])).unwrap();
        assert_eq!(r.len(), 4);
        assert!(
            tmp.path()
                .join("runs/t/train/rastp@1:0.5/seed-1/manifest.json")
                .exists()
        );
    }

    #[test]
    fn stage_names_parse_and_bad_ones_list_the_stages() {
        assert_eq!("sids".parse::<StageId>().unwrap(), StageId::Sids);
        match "zz".parse::<StageId>().unwrap_err() {
            Error::UnknownStage { known, .. } => {
                assert_eq!(known, "data, embed, sids, train, eval, report")
            }
            e => panic!("{e}"),
        }
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().into(), None, Some(tmp.path().join("runs")));
        let counts: [Rc<Cell<usize>>; 3] = Default::default();
        let err = run(
            &ws,
            "t",
            &Config::default(),
            &stages(&counts),
            &opts(Some(StageId::Report), &[1]),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::StageNotInPipeline(StageId::Report)),
            "{err}"
        );
    }
}
