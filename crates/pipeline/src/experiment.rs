//! The paper's research questions as commands (`cargo xtask experiment rq1|rq2|rq3`).
//!
//! An experiment is a list of run variants and seeds handed to the ordinary pipeline (the same
//! stages and artifacts as `cargo xtask pipeline`, so up-to-date runs are reused and an
//! interrupted experiment resumes from the last checkpoint), followed by a report written to
//! `runs/<dataset>/experiments/<name>/` (markdown + plots, replaced atomically).

use std::path::{Path, PathBuf};

use artifacts::Config;
use artifacts::config::{ReducerKind, Variant};
use artifacts::store::StagingDir;
use reporting::RunResult;
pub use reporting::experiments::Question;
use reporting::experiments::{Header, markdown, rq1_summary};

use crate::engine::{self, PipelineOptions, StageReport};
use crate::error::{Error, Result, write_file};
use crate::id::{RunKey, StageId};
use crate::layout::RunLayout;
use crate::stages::registry;
use crate::workspace::Workspace;

/// Choices that override an experiment's defaults.
#[derive(Debug, Clone, Default)]
pub struct ExperimentOptions {
    /// Seeds (default: five for RQ1, `run.seeds` for RQ2 and RQ3).
    pub seeds: Vec<u64>,
    /// RQ3: layers to prune after (default: every layer but the last).
    pub layers: Vec<usize>,
    /// RQ3: keep ratios to sweep at `reducer.after_layer` (default 0.1, 0.2, 0.5, 0.75; the
    /// configured layer and ratio are always included).
    pub ratios: Vec<f64>,
}

/// The five seeds of RQ1 (the paper reports means over five runs).
pub const RQ1_SEEDS: [u64; 5] = [42, 43, 44, 45, 46];

/// What one experiment runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The question.
    pub question: Question,
    /// Variants (canonical, in report order).
    pub variants: Vec<Variant>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// The command line that produced it, quoted in the report (empty: the plain command).
    pub command: String,
}

fn canonical(config: &Config, variants: Vec<Variant>) -> Vec<Variant> {
    let mut c = config.clone();
    c.run.variants = variants;
    c.variants()
}

/// The variants and seeds of `question` under `config`.
pub fn plan(question: Question, config: &Config, opts: &ExperimentOptions) -> Result<Plan> {
    let kind = Variant::kind;
    let seeds = match (question, opts.seeds.is_empty()) {
        (_, false) => opts.seeds.clone(),
        (Question::Rq1, true) => RQ1_SEEDS.to_vec(),
        (_, true) => config.run.seeds.clone(),
    };
    let variants = match question {
        Question::Rq1 => vec![kind(ReducerKind::None), kind(ReducerKind::Rastp)],
        Question::Rq2 => vec![
            kind(ReducerKind::None),
            kind(ReducerKind::Rastp),
            kind(ReducerKind::L2),
            kind(ReducerKind::MaxPool),
            kind(ReducerKind::AvgPool),
        ],
        Question::Rq3 => {
            let layers_in_model = config.model.encoder_layers;
            let layers: Vec<usize> = if opts.layers.is_empty() {
                (1..layers_in_model).collect()
            } else {
                opts.layers.clone()
            };
            for &l in &layers {
                if !(1..layers_in_model).contains(&l) {
                    return Err(Error::Invalid(format!(
                        "--layers: {l} is not a layer RASTP can follow (1 to {}; the model has \
                         {layers_in_model} encoder layers)",
                        layers_in_model - 1
                    )));
                }
            }
            let ratios: Vec<f64> = if opts.ratios.is_empty() {
                let mut r = vec![0.1, 0.2, config.reducer.keep_ratio, 0.5, 0.75];
                r.sort_by(f64::total_cmp);
                r
            } else {
                opts.ratios.clone()
            };
            if let Some(r) = ratios.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
                return Err(Error::Invalid(format!(
                    "--ratios: {r} is not a keep ratio in (0, 1]"
                )));
            }
            // Both sweeps pass through the reference point (the configured layer and ratio).
            let mut layers = layers;
            layers.push(config.reducer.after_layer);
            layers.sort_unstable();
            let mut ratios = ratios;
            ratios.push(config.reducer.keep_ratio);
            ratios.sort_by(f64::total_cmp);
            let mut v = vec![kind(ReducerKind::None)];
            v.extend(layers.iter().map(|&l| Variant {
                after_layer: Some(l),
                ..kind(ReducerKind::Rastp)
            }));
            v.extend(ratios.iter().map(|&r| Variant {
                keep_ratio: Some(r),
                ..kind(ReducerKind::Rastp)
            }));
            v
        }
    };
    if seeds.is_empty() {
        return Err(Error::NothingToRun(
            "no seeds: give --seeds or set run.seeds",
        ));
    }
    Ok(Plan {
        question,
        variants: canonical(config, variants),
        seeds,
        command: String::new(),
    })
}

/// Runs (or reuses) every run of the plan and writes the report. Returns the report's path and
/// the pipeline's stage reports.
pub fn run(
    ws: &Workspace,
    dataset: &str,
    config: &Config,
    plan: &Plan,
) -> Result<(PathBuf, Vec<StageReport>)> {
    let layout = ws.layout(dataset);
    let _lock = layout.lock()?;
    let mut cfg = config.clone();
    cfg.run.variants = plan.variants.clone();
    let opts = PipelineOptions {
        until: Some(StageId::Eval),
        force: false,
        seeds: plan.seeds.clone(),
    };
    let reports = engine::run(ws, dataset, &cfg, &registry(), &opts)?;
    let runs = collect(&layout, plan)?;
    let dir = layout.experiment_dir(plan.question.name());
    let header = Header {
        question: plan.question,
        dataset,
        seeds: &plan.seeds,
        command: &plan.command,
        backend: crate::backend::name(),
    };
    write_report(&dir, |tmp| {
        let md = markdown(&header, &cfg, &runs, tmp)?;
        write_file(&tmp.join(reporting::REPORT_FILE), md)
    })?;
    Ok((dir.join(reporting::REPORT_FILE), reports))
}

/// Every (variant, seed) run of the plan, read from its `train` and `eval` artifacts.
pub fn collect(layout: &RunLayout, plan: &Plan) -> Result<Vec<RunResult>> {
    let mut runs = Vec::new();
    for &variant in &plan.variants {
        for &seed in &plan.seeds {
            let key = RunKey { variant, seed };
            runs.push(RunResult::read(&layout.train(&key), &layout.eval(&key))?);
        }
    }
    Ok(runs)
}

/// Builds a report in a fresh temporary directory beside `dir`, then puts it in place of `dir`.
fn write_report(dir: &Path, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let staging = StagingDir::new(dir)?;
    build(staging.path())?;
    staging.commit()?;
    Ok(())
}

/// Writes the cross-dataset RQ1 table to `runs/all/experiments/rq1/report.md`.
pub fn write_rq1_summary(ws: &Workspace, results: &[(String, Vec<RunResult>)]) -> Result<PathBuf> {
    let dir = ws.layout("all").experiment_dir(Question::Rq1.name());
    write_report(&dir, |tmp| {
        write_file(&tmp.join(reporting::REPORT_FILE), rq1_summary(results))
    })?;
    Ok(dir.join(reporting::REPORT_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(plan: &Plan) -> Vec<String> {
        plan.variants.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn plans_name_the_papers_runs() {
        let c = Config::default();
        let p = plan(Question::Rq1, &c, &ExperimentOptions::default()).unwrap();
        assert_eq!(names(&p), ["none", "rastp"]);
        assert_eq!(p.seeds, RQ1_SEEDS);
        let p = plan(Question::Rq2, &c, &ExperimentOptions::default()).unwrap();
        assert_eq!(names(&p), ["none", "rastp", "l2", "max-pool", "avg-pool"]);
        assert_eq!(p.seeds, [42]);
        // The reference point (layer 2, ratio 1/3) is one run, shared with RQ1 and RQ2.
        let p = plan(Question::Rq3, &c, &ExperimentOptions::default()).unwrap();
        assert_eq!(
            names(&p),
            [
                "none",
                "rastp@1",
                "rastp",
                "rastp@3",
                "rastp:0.1",
                "rastp:0.2",
                "rastp:0.5",
                "rastp:0.75"
            ]
        );
        let opts = ExperimentOptions {
            seeds: vec![1, 2],
            layers: vec![3],
            ratios: vec![0.25],
        };
        let p = plan(Question::Rq3, &c, &opts).unwrap();
        assert_eq!(names(&p), ["none", "rastp", "rastp@3", "rastp:0.25"]);
        assert_eq!(p.seeds, [1, 2]);
        for (layers, ratios, needle) in [
            (vec![4], vec![], "--layers: 4"),
            (vec![], vec![1.5], "--ratios: 1.5"),
        ] {
            let opts = ExperimentOptions {
                layers,
                ratios,
                ..Default::default()
            };
            match plan(Question::Rq3, &c, &opts).unwrap_err() {
                Error::Invalid(e) => assert!(e.contains(needle), "{e}"),
                e => panic!("{e}"),
            }
        }
    }
}
