//! Stage `report`: every variant's and seed's `train` and `eval` artifacts into `report.md` — a
//! table like the paper's Table 2 (mean ± std over seeds, the paper's numbers beside ours), the
//! most-popular baseline, training time per run and each reducer's time saving against `none` —
//! and plots of validation Recall@5 and loss against micro-batch and wall time. A copy of
//! `report.md` goes to `runs/<dataset>/report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use artifacts::{ArtifactWriter, Config};

use super::eval::EvalReport;
use super::train::TrainSummary;
use super::{Stage, StageContext};

/// Writes the report.
pub struct ReportStage;

/// The paper's test numbers (RASTP README, reference §6): (dataset, with RASTP?) → R@5, R@10, N@5, N@10.
pub fn paper_numbers(dataset: &str, rastp: bool) -> Option<[f64; 4]> {
    Some(match (dataset, rastp) {
        ("beauty", false) => [0.0426, 0.0645, 0.0282, 0.0353],
        ("beauty", true) => [0.0441, 0.0656, 0.0289, 0.0358],
        ("sports", false) => [0.0196, 0.0289, 0.0128, 0.0158],
        ("sports", true) => [0.0187, 0.0278, 0.0123, 0.0153],
        ("toys", false) => [0.0345, 0.0499, 0.0238, 0.0287],
        ("toys", true) => [0.0351, 0.0504, 0.0240, 0.0289],
        _ => return None,
    })
}

/// One run (variant, seed) as the report sees it.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Its training summary.
    pub train: TrainSummary,
    /// Its test metrics.
    pub eval: EvalReport,
    /// Its `train_log.csv`.
    pub log_csv: PathBuf,
}

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `mean ± std` of `values` with `digits` decimals (just the mean for one value).
pub fn pm(values: &[f64], digits: usize) -> String {
    let (m, s) = mean_std(values);
    if values.len() > 1 {
        format!("{m:.digits$} ± {s:.digits$}")
    } else {
        format!("{m:.digits$}")
    }
}

/// Column `i` of Table 2: Recall@5, Recall@10, NDCG@5, NDCG@10 (NaN when absent).
pub fn table_metric(m: &evaluator::Metrics, i: usize) -> f64 {
    match i {
        0 => m.recall.get(&5),
        1 => m.recall.get(&10),
        2 => m.ndcg.get(&5),
        _ => m.ndcg.get(&10),
    }
    .copied()
    .unwrap_or(f64::NAN)
}

/// Reads every run named in `upstream` (`train:<variant>/seed-<n>`, `eval:…`).
pub fn collect_runs(upstream: &BTreeMap<String, PathBuf>) -> Result<Vec<RunResult>> {
    let mut runs = Vec::new();
    for (name, dir) in upstream {
        let Some(key) = name.strip_prefix("train:") else {
            continue;
        };
        let eval_dir = upstream
            .get(&format!("eval:{key}"))
            .with_context(|| format!("no eval artifact for {key}"))?;
        runs.push(read_run(dir, eval_dir)?);
    }
    Ok(runs)
}

/// One run from its `train` and `eval` artifact directories.
pub fn read_run(train_dir: &Path, eval_dir: &Path) -> Result<RunResult> {
    Ok(RunResult {
        train: read_json(&train_dir.join("summary.json"))?,
        eval: read_json(&eval_dir.join("metrics.json"))?,
        log_csv: train_dir.join("train_log.csv"),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
}

/// The report's markdown.
pub fn markdown(dataset: &str, config: &Config, runs: &[RunResult]) -> String {
    let mut by_variant: BTreeMap<String, Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        by_variant
            .entry(r.train.variant.clone())
            .or_default()
            .push(r);
    }
    // Column order: the configured variant order.
    let variants: Vec<String> = config
        .variants()
        .iter()
        .map(|v| v.to_string())
        .filter(|v| by_variant.contains_key(v))
        .collect();
    let mut md = String::new();
    let seeds: Vec<u64> = {
        let mut s: Vec<u64> = runs.iter().map(|r| r.train.seed).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let users = runs.first().map(|r| (r.eval.users, r.eval.all_users));
    let _ = writeln!(md, "# {dataset}: TIGER with and without token reduction\n");
    let _ = writeln!(
        md,
        "Test split, {} of {} users, beam width {}, {} decoding; seeds {:?} (mean ± sample std over seeds). \
         Model {}+{} layers, d_model {}, padding {:?}; reducer settings: after layer {}, keep ratio {:.3} of the {:?} length, \
         position bias after the cut {:?}, at evaluation {}. Training: {} users → ≤ {} windows per micro-batch, \
         accumulation {}, lr {}, validation every {} micro-batches on {} users{}{}.\n",
        users.map_or(0, |u| u.0),
        users.map_or(0, |u| u.1),
        config.eval.beam_width,
        if config.eval.constrained {
            "trie-constrained"
        } else {
            "unconstrained (as the reference)"
        },
        seeds,
        config.model.encoder_layers,
        config.model.decoder_layers,
        config.model.d_model,
        config.model.padding,
        config.reducer.after_layer,
        config.reducer.keep_ratio,
        config.reducer.keep_basis,
        config.reducer.position_bias,
        config.reducer.at_eval,
        config.train.users_per_batch,
        config.train.max_windows,
        config.train.grad_accumulation,
        config.train.lr,
        config.train.val_every,
        if config.train.val_users == 0 {
            "all".to_string()
        } else {
            config.train.val_users.to_string()
        },
        if config.train.max_batches > 0 {
            format!(", at most {} micro-batches", config.train.max_batches)
        } else {
            String::new()
        },
        if config.train.max_minutes > 0.0 {
            format!(", at most {} minutes", config.train.max_minutes)
        } else {
            String::new()
        },
    );

    // Table 2.
    let mut header = vec!["Metric".to_string()];
    for v in &variants {
        let rastp = v == "rastp";
        if (v == "none" || rastp) && paper_numbers(dataset, rastp).is_some() {
            header.push(format!(
                "paper {}",
                if rastp { "RASTP ✓" } else { "TIGER ×" }
            ));
        }
        header.push(format!("ours {v}"));
    }
    header.push("most popular".into());
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}|", vec!["---"; header.len()].join("|"));
    for (i, name) in ["Recall@5", "Recall@10", "NDCG@5", "NDCG@10"]
        .iter()
        .enumerate()
    {
        let mut row = vec![name.to_string()];
        for v in &variants {
            let rastp = v == "rastp";
            if let Some(p) = paper_numbers(dataset, rastp).filter(|_| v == "none" || rastp) {
                row.push(format!("{:.4}", p[i]));
            }
            let vals: Vec<f64> = by_variant[v]
                .iter()
                .map(|r| table_metric(&r.eval.model, i))
                .collect();
            row.push(pm(&vals, 4));
        }
        let pop = runs.first().map(|r| table_metric(&r.eval.popularity, i));
        row.push(pop.map_or("-".into(), |p| format!("{p:.4}")));
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }

    // Time.
    let _ = writeln!(md, "\n## Training time\n");
    let _ = writeln!(
        md,
        "| variant | runs | wall time per run (s) | of which validation (s) | windows/s | median s / micro-batch | micro-batches | best val Recall@5 | stopped by | time saved vs none (training, per window) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    let none_rate = by_variant
        .get("none")
        .map(|rs| mean_std(&rs.iter().map(|r| r.train.windows_per_s).collect::<Vec<_>>()).0);
    for v in &variants {
        let rs = &by_variant[v];
        let wall: Vec<f64> = rs.iter().map(|r| r.train.wall_s).collect();
        let val: Vec<f64> = rs.iter().map(|r| r.train.validation_s).collect();
        let rate: Vec<f64> = rs.iter().map(|r| r.train.windows_per_s).collect();
        let med: Vec<f64> = rs.iter().map(|r| r.train.median_batch_s).collect();
        let batches: Vec<f64> = rs.iter().map(|r| r.train.batches as f64).collect();
        let best: Vec<f64> = rs.iter().map(|r| r.train.best_val_recall5).collect();
        let stops: Vec<String> = rs.iter().map(|r| r.train.stop.clone()).collect();
        let saving = match (none_rate, v.as_str()) {
            (Some(n), v) if v != "none" => {
                let r = mean_std(&rate).0;
                format!("{:.1} %", 100.0 * (1.0 - n / r))
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            md,
            "| {v} | {} | {} | {} | {} | {} | {} | {} | {} | {saving} |",
            rs.len(),
            pm(&wall, 0),
            pm(&val, 0),
            pm(&rate, 1),
            pm(&med, 3),
            pm(&batches, 0),
            pm(&best, 4),
            stops.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\nThe paper reports 26.7 % less training time with RASTP (GPU, reference schedule). \"Time saved\" here is \
         1 − (windows/s of none) / (windows/s of the variant), from training time without validation.\n"
    );
    let _ = writeln!(md, "## Plots\n");
    let _ = writeln!(
        md,
        "![validation Recall@5 against micro-batch](val_recall_by_batch.svg)\n"
    );
    let _ = writeln!(
        md,
        "![validation Recall@5 against wall time](val_recall_by_time.svg)\n"
    );
    let _ = writeln!(
        md,
        "![validation loss against micro-batch](val_loss_by_batch.svg)\n"
    );
    let _ = writeln!(
        md,
        "![validation loss against wall time](val_loss_by_time.svg)\n"
    );
    let _ = writeln!(
        md,
        "PNG versions sit beside the SVG files. Produced by `cargo xtask pipeline {dataset}`."
    );
    md
}

impl Stage for ReportStage {
    fn name(&self) -> &'static str {
        "report"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn upstream(&self) -> &'static [&'static str] {
        &["train", "eval"]
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({ "variants": config.run.variants, "report": 1 }))
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let runs = collect_runs(&ctx.upstream)?;
        let md = markdown(ctx.dataset, ctx.config, &runs);
        crate::plots::validation_plots(&runs, out.dir())?;
        std::fs::write(out.file("report.md"), &md)?;
        let run_dir = ctx.workspace.run_dir(ctx.dataset);
        trainer::checkpoint::write_atomic(
            &run_dir.join("report.md"),
            md.replace("](val_", "](report/val_").as_bytes(),
        )?;
        eprintln!("{md}");
        out.rows("runs", runs.len() as u64);
        Ok(())
    }
}
