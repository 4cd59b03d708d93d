//! The orchestrator: runs the stages in order, reusing every artifact whose manifest matches the
//! stage's config hash and input hashes, and reports what it did.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use artifacts::config::Variant;
use artifacts::manifest::{Fingerprint, Manifest};
use artifacts::{ArtifactWriter, Config};

use crate::stages::{Slot, Stage, StageContext};
use crate::workspace::Workspace;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Last stage to run (inclusive); `None` runs them all.
    pub until: Option<String>,
    /// Re-run stages even when their artifacts are up to date.
    pub force: bool,
    /// Seeds for per-seed stages.
    pub seeds: Vec<u64>,
}

/// What happened to one stage (and seed).
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// It ran and wrote its artifact.
    Ran,
    /// Its artifact matched; nothing ran.
    UpToDate,
    /// The stage is not implemented yet.
    NotAvailable,
    /// An upstream stage has no artifact (because it is not available).
    Blocked(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ran => f.write_str("ran"),
            Status::UpToDate => f.write_str("up to date"),
            Status::NotAvailable => f.write_str("not available yet"),
            Status::Blocked(up) => write!(f, "waits for `{up}`"),
        }
    }
}

/// One row of the pipeline's report.
#[derive(Debug, Clone)]
pub struct StageReport {
    /// Stage name.
    pub stage: String,
    /// Seed of a per-seed stage.
    pub seed: Option<u64>,
    /// What happened.
    pub status: Status,
    /// Wall time of this invocation (0 when it did not run).
    pub seconds: f64,
    /// Artifact directory, when there is one.
    pub dir: Option<PathBuf>,
    /// One-line description of the stage.
    pub about: &'static str,
}

/// Runs the pipeline for one dataset.
pub fn run(
    workspace: &Workspace,
    dataset: &str,
    config: &Config,
    slots: &[Slot],
    opts: &PipelineOptions,
) -> Result<Vec<StageReport>> {
    let last = match &opts.until {
        Some(name) => slots.iter().position(|s| s.name == name).with_context(|| {
            format!(
                "unknown stage `{name}` for --until; stages: {}",
                slots.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            )
        })?,
        None => slots.len() - 1,
    };
    if opts.seeds.is_empty() {
        bail!("no seeds given");
    }
    let run_dir = workspace.run_dir(dataset);
    let per_seed: BTreeMap<&str, bool> = slots
        .iter()
        .map(|s| (s.name, s.stage.as_ref().is_some_and(|st| st.per_seed())))
        .collect();
    let is_per_seed = |stage: &str| per_seed.get(stage).copied().unwrap_or(false);
    let artifact_dir = |stage: &str, key: Option<&RunKey>| match key {
        Some(k) if is_per_seed(stage) => k.dir(&run_dir.join(stage)),
        _ => run_dir.join(stage),
    };
    let variants = config.variants();
    if variants.is_empty() {
        bail!("run.variants is empty: name at least one reducer (e.g. [\"none\", \"rastp\"])");
    }
    let keys: Vec<RunKey> = variants
        .iter()
        .flat_map(|&variant| opts.seeds.iter().map(move |&seed| RunKey { variant, seed }))
        .collect();

    let mut reports = Vec::new();
    let mut missing: BTreeMap<&str, ()> = BTreeMap::new();
    for slot in &slots[..=last] {
        let Some(stage) = &slot.stage else {
            missing.insert(slot.name, ());
            reports.push(report(slot, None, Status::NotAvailable, 0.0, None));
            continue;
        };
        if let Some(up) = stage.upstream().iter().find(|u| missing.contains_key(*u)) {
            missing.insert(slot.name, ());
            reports.push(report(
                slot,
                None,
                Status::Blocked(up.to_string()),
                0.0,
                None,
            ));
            continue;
        }
        let stage_keys: Vec<Option<&RunKey>> = if stage.per_seed() {
            keys.iter().map(Some).collect()
        } else {
            vec![None]
        };
        for key in stage_keys {
            let dir = artifact_dir(slot.name, key);
            let mut upstream = BTreeMap::new();
            for &u in stage.upstream() {
                if is_per_seed(u) && key.is_none() {
                    // A stage that runs once reads every run of a per-seed stage.
                    for k in &keys {
                        upstream.insert(format!("{u}:{}", k.label()), artifact_dir(u, Some(k)));
                    }
                } else {
                    upstream.insert(u.to_string(), artifact_dir(u, key));
                }
            }
            let variant_config;
            let config = match key {
                Some(k) => {
                    variant_config = config.for_variant(&k.variant);
                    &variant_config
                }
                None => config,
            };
            let ctx = StageContext {
                workspace,
                dataset,
                config,
                seed: key.map(|k| k.seed),
                variant: key.map(|k| k.variant),
                upstream,
                work_dir: work_dir(&dir),
                run_hash: String::new(),
            };
            let status = run_stage(stage.as_ref(), ctx, &dir, opts.force)
                .with_context(|| format!("stage `{}` failed", slot.name))?;
            let (status, secs) = status;
            let label = key.map(|k| format!(" ({})", k.label())).unwrap_or_default();
            eprintln!(
                "[{}{label}] {status} ({secs:.1} s) -> {}",
                slot.name,
                dir.display()
            );
            reports.push(report(slot, key.map(|k| k.seed), status, secs, Some(dir)));
        }
    }
    Ok(reports)
}

fn report(
    slot: &Slot,
    seed: Option<u64>,
    status: Status,
    seconds: f64,
    dir: Option<PathBuf>,
) -> StageReport {
    StageReport {
        stage: slot.name.to_string(),
        seed,
        status,
        seconds,
        dir,
        about: slot.about,
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

    /// `<variant>/seed-<seed>`.
    pub fn label(&self) -> String {
        format!("{}/seed-{}", self.variant, self.seed)
    }
}

/// Where a stage keeps state between attempts (checkpoints): beside its artifact directory.
pub fn work_dir(artifact_dir: &Path) -> PathBuf {
    let name = artifact_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    artifact_dir.with_file_name(format!("{name}.work"))
}

/// Runs one stage unless its artifact is current. Returns the status and the wall time.
fn run_stage(
    stage: &dyn Stage,
    mut ctx: StageContext,
    dir: &Path,
    force: bool,
) -> Result<(Status, f64)> {
    let started = Instant::now();
    let mut inputs = BTreeMap::new();
    for (name, up_dir) in &ctx.upstream {
        let manifest = Manifest::require(up_dir, name)?;
        let base = name.split(':').next().unwrap_or(name);
        let hash = match stage.upstream_files(base, ctx.config) {
            None => manifest.content_hash,
            Some(files) => {
                let mut read = BTreeMap::new();
                for f in files {
                    let entry = manifest.files.get(f).with_context(|| {
                        format!("the `{name}` artifact in {} has no {f}", up_dir.display())
                    })?;
                    read.insert(f, entry.sha256.clone());
                }
                artifacts::hashing::hash_json(&read)
            }
        };
        inputs.insert(format!("stage:{name}"), hash);
    }
    for (name, path) in stage.external_inputs(&ctx)? {
        inputs.insert(
            format!("file:{name}"),
            artifacts::hashing::hash_file(&path)?,
        );
    }
    let fingerprint = Fingerprint {
        stage: stage.name().to_string(),
        schema_version: stage.schema_version(),
        config_hash: stage.config_hash(ctx.config),
        inputs,
    };
    let current = Manifest::read(dir)
        .ok()
        .flatten()
        .is_some_and(|m| m.is_current(dir, &fingerprint));
    if current && !force {
        return Ok((Status::UpToDate, started.elapsed().as_secs_f64()));
    }
    ctx.run_hash = artifacts::hashing::hash_json(&fingerprint);
    let mut writer = ArtifactWriter::create(dir, fingerprint)?;
    if let Some(seed) = ctx.seed {
        writer.detail("seed", seed);
    }
    if let Some(variant) = ctx.variant {
        writer.detail("variant", variant.to_string());
    }
    stage.run(&ctx, &mut writer)?;
    writer.commit(&format!("{} {}", stage.name(), env!("CARGO_PKG_VERSION")))?;
    if ctx.work_dir.exists() {
        std::fs::remove_dir_all(&ctx.work_dir)
            .with_context(|| format!("cannot remove {}", ctx.work_dir.display()))?;
    }
    Ok((Status::Ran, started.elapsed().as_secs_f64()))
}

/// The report as an aligned text table.
pub fn table(reports: &[StageReport]) -> String {
    let mut rows = vec![[
        "stage".to_string(),
        "status".into(),
        "time".into(),
        "artifact / what".into(),
    ]];
    for r in reports {
        let stage = match r.seed {
            Some(s) => format!("{} seed {s}", r.stage),
            None => r.stage.clone(),
        };
        let time = match r.status {
            Status::Ran | Status::UpToDate => format!("{:.1} s", r.seconds),
            _ => "-".into(),
        };
        let what = match &r.dir {
            Some(d) => d.display().to_string(),
            None => r.about.to_string(),
        };
        rows.push([stage, r.status.to_string(), time, what]);
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
    use artifacts::config::ReducerName;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A stage for testing the orchestrator: writes its config value and counts its runs.
    struct Counting {
        name: &'static str,
        upstream: &'static [&'static str],
        per_seed: bool,
        runs: Rc<Cell<usize>>,
    }

    impl Stage for Counting {
        fn name(&self) -> &'static str {
            self.name
        }
        fn schema_version(&self) -> u32 {
            1
        }
        fn upstream(&self) -> &'static [&'static str] {
            self.upstream
        }
        fn config_hash(&self, config: &Config) -> String {
            // Only the first stage reads the config.
            match self.upstream.is_empty() {
                true => Config::section_hash(&config.data.max_history),
                false => Config::section_hash(&self.name),
            }
        }
        fn per_seed(&self) -> bool {
            self.per_seed
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
            std::fs::write(out.file("out.txt"), text)?;
            Ok(())
        }
    }

    fn slots(counts: &[Rc<Cell<usize>>; 3]) -> Vec<Slot> {
        vec![
            Slot {
                name: "a",
                about: "first",
                stage: Some(Box::new(Counting {
                    name: "a",
                    upstream: &[],
                    per_seed: false,
                    runs: counts[0].clone(),
                })),
            },
            Slot {
                name: "b",
                about: "second",
                stage: Some(Box::new(Counting {
                    name: "b",
                    upstream: &["a"],
                    per_seed: false,
                    runs: counts[1].clone(),
                })),
            },
            Slot {
                name: "c",
                about: "per seed",
                stage: Some(Box::new(Counting {
                    name: "c",
                    upstream: &["b"],
                    per_seed: true,
                    runs: counts[2].clone(),
                })),
            },
            Slot {
                name: "d",
                about: "later",
                stage: None,
            },
        ]
    }

    fn opts(until: Option<&str>, seeds: &[u64]) -> PipelineOptions {
        PipelineOptions {
            until: until.map(str::to_string),
            force: false,
            seeds: seeds.to_vec(),
        }
    }

    #[test]
    fn skips_current_stages_and_reruns_on_config_change() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().into(), None, Some(tmp.path().join("runs")));
        let counts: [Rc<Cell<usize>>; 3] = Default::default();
        let slots = slots(&counts);
        let mut cfg = Config::default();
        cfg.run.variants = vec![Variant::kind(ReducerName::None)];
        let r = run(&ws, "t", &cfg, &slots, &opts(None, &[1, 2])).unwrap();
        let statuses: Vec<_> = r.iter().map(|r| r.status.clone()).collect();
        assert_eq!(
            statuses,
            vec![
                Status::Ran,
                Status::Ran,
                Status::Ran,
                Status::Ran,
                Status::NotAvailable
            ]
        );
        assert!(
            tmp.path()
                .join("runs/t/c/none/seed-2/manifest.json")
                .exists()
        );

        let r = run(&ws, "t", &cfg, &slots, &opts(None, &[1, 2])).unwrap();
        assert!(r[..4].iter().all(|r| r.status == Status::UpToDate));
        assert_eq!(
            counts.iter().map(|c| c.get()).collect::<Vec<_>>(),
            vec![1, 1, 2]
        );

        // A config change re-runs `a`; its output changes, so `b` re-runs; `b`'s output is the
        // same, so `c` is reused through the content hash.
        cfg.data.max_history = 7;
        let r = run(&ws, "t", &cfg, &slots, &opts(None, &[1, 2])).unwrap();
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
            &slots,
            &PipelineOptions {
                force: true,
                ..opts(Some("a"), &[1])
            },
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, Status::Ran);
        assert!(table(&r).contains("ran"));

        // Two variants: the per-seed stage runs once per (variant, seed), in its own directory.
        cfg.run.variants = vec![
            Variant::kind(ReducerName::None),
            "rastp@1:0.5".parse().unwrap(),
        ];
        let r = run(&ws, "t", &cfg, &slots, &opts(Some("c"), &[1])).unwrap();
        assert_eq!(r.len(), 4);
        assert!(
            tmp.path()
                .join("runs/t/c/rastp@1:0.5/seed-1/manifest.json")
                .exists()
        );
    }

    #[test]
    fn unknown_until_lists_stages_and_missing_stages_block_downstream() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::at(tmp.path().into(), None, Some(tmp.path().join("runs")));
        let counts: [Rc<Cell<usize>>; 3] = Default::default();
        let mut slots = slots(&counts);
        let m = format!(
            "{:#}",
            run(
                &ws,
                "t",
                &Config::default(),
                &slots,
                &opts(Some("zz"), &[1])
            )
            .unwrap_err()
        );
        assert!(m.contains("a, b, c, d"), "{m}");
        slots[1].stage = None;
        let r = run(&ws, "t", &Config::default(), &slots, &opts(None, &[1])).unwrap();
        assert_eq!(r[1].status, Status::NotAvailable);
        assert_eq!(r[2].status, Status::Blocked("b".into()));
        assert_eq!(counts[2].get(), 0);
        assert!(table(&r).contains("waits for `b`"));
    }
}
