//! The experiments' reports (`cargo xtask experiment rq1|rq2|rq3`): RQ1's Table 2 per dataset
//! and across datasets, RQ2's and RQ3's table of variants and their plots. The runs come from the
//! pipeline's `train` and `eval` artifacts ([`RunResult`]); the planning and running of an
//! experiment live in the `pipeline` crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use artifacts::Config;
use artifacts::config::{ReducerKind, Variant};

use crate::plots::{Marks, Series, validation_plots, xy_plot};
use crate::runs::{RunResult, by_variant, none_rate, time_saved_cell};
use crate::stats::{mean_std, paper_numbers, pm, table_metric};
use crate::table2;

/// The research questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Question {
    /// RQ1: TIGER with and without RASTP, five seeds (the paper's Table 2).
    Rq1,
    /// RQ2: RASTP against other reducers at the same layer and keep ratio.
    Rq2,
    /// RQ3: RASTP after each encoder layer and over keep ratios.
    Rq3,
}

impl Question {
    /// Every question.
    pub const ALL: [Question; 3] = [Question::Rq1, Question::Rq2, Question::Rq3];

    /// `rq1`, `rq2`, `rq3`.
    pub fn name(self) -> &'static str {
        match self {
            Question::Rq1 => "rq1",
            Question::Rq2 => "rq2",
            Question::Rq3 => "rq3",
        }
    }
}

/// What a report says about how it was made.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// The question.
    pub question: Question,
    /// The dataset.
    pub dataset: &'a str,
    /// The seeds of every variant.
    pub seeds: &'a [u64],
    /// The command line that produced it (empty: the plain command).
    pub command: &'a str,
    /// The backend the runs were trained on.
    pub backend: &'a str,
}

fn metric(r: &RunResult, i: usize) -> f64 {
    table_metric(&r.eval.model, i)
}

/// The report's markdown; plots go into `dir`.
pub fn markdown(
    header: &Header,
    config: &Config,
    runs: &[RunResult],
    dir: &Path,
) -> Result<String> {
    let mut md = String::new();
    let dataset = header.dataset;
    let seeds = format!("{:?}", header.seeds);
    match header.question {
        Question::Rq1 => {
            let _ = writeln!(
                md,
                "# RQ1 on {dataset}: does RASTP keep quality while saving training time?\n"
            );
            // The pipeline report's table, one heading level down.
            md.push_str(&table2::markdown(dataset, config, runs).replacen("# ", "## ", 1));
            validation_plots(runs, dir)?;
        }
        Question::Rq2 => {
            let _ = writeln!(
                md,
                "# RQ2 on {dataset}: RASTP against other token reducers\n\nEvery reducer prunes after encoder layer {} to a keep ratio of {:.3}; seeds {seeds}.\n",
                config.reducer.after_layer, config.reducer.keep_ratio
            );
            md.push_str(&settings(config));
            md.push_str(&variant_table(config, runs));
            let series: Vec<Series> = by_variant(runs)
                .into_iter()
                .map(|(v, rs)| {
                    (
                        v,
                        rs.iter()
                            .map(|r| (r.seconds_per_k_windows(), metric(r, 0)))
                            .collect(),
                    )
                })
                .collect();
            xy_plot(
                dir,
                "quality_vs_time",
                &series,
                ("training seconds per 1,000 windows", "test Recall@5"),
                Marks::Points,
                false,
            )?;
            validation_plots(runs, dir)?;
            let _ = writeln!(
                md,
                "\n![test Recall@5 against training time per window, one dot per run](quality_vs_time.svg)\n\n\
                 ![validation Recall@5 against wall time](val_recall_by_time.svg)\n"
            );
        }
        Question::Rq3 => {
            let _ = writeln!(
                md,
                "# RQ3 on {dataset}: where to prune and how much\n\nRASTP after each encoder layer (keep ratio {:.3}), and over keep ratios after layer {}; `none` for reference. Seeds {seeds}.\n",
                config.reducer.keep_ratio, config.reducer.after_layer
            );
            md.push_str(&settings(config));
            md.push_str(&variant_table(config, runs));
            rq3_plots(config, runs, dir)?;
            let _ = writeln!(
                md,
                "\n![test Recall@5 by layer](recall5_by_layer.svg)\n\n\
                 ![training time by layer](time_by_layer.svg)\n\n\
                 ![test Recall@5 by keep ratio](recall5_by_ratio.svg)\n\n\
                 ![training time by keep ratio](time_by_ratio.svg)\n"
            );
        }
    }
    let _ = writeln!(
        md,
        "\nProduced by `{}` (backend {}). PNG versions of the plots sit beside the SVG files.",
        if header.command.is_empty() {
            format!(
                "cargo xtask experiment {} {dataset}",
                header.question.name()
            )
        } else {
            header.command.to_string()
        },
        header.backend
    );
    Ok(md)
}

/// The settings every run of an experiment shares, as one paragraph.
fn settings(config: &Config) -> String {
    let m = &config.model;
    let t = &config.train;
    let budget = match (t.max_minutes > 0.0, t.max_batches > 0) {
        (true, true) => format!(
            "at most {} minutes or {} micro-batches",
            t.max_minutes, t.max_batches
        ),
        (true, false) => format!("{} minutes", t.max_minutes),
        (false, true) => format!("{} micro-batches", t.max_batches),
        (false, false) => "until early stopping".to_string(),
    };
    format!(
        "Model {}+{} layers, d_model {}, d_ff {}, dropout {}, {:?} padding. Training: {} users → ≤ {} \
         windows ({:?}) per micro-batch, accumulation {}, lr {}, {budget} per run (validation every {} \
         micro-batches on {} users, included). Test: beam width {}, {} decoding.\n\n",
        m.encoder_layers,
        m.decoder_layers,
        m.d_model,
        m.d_ff,
        m.dropout,
        m.padding,
        t.users_per_batch,
        t.max_windows,
        t.windows,
        t.grad_accumulation,
        t.lr,
        t.val_every,
        t.val_users_text(),
        config.eval.beam_width,
        if config.eval.constrained {
            "trie-constrained"
        } else {
            "unconstrained"
        },
    )
}

/// One row per variant: its reducer settings, test metrics (mean ± std over seeds), training
/// speed and the time saved against `none`.
pub fn variant_table(config: &Config, runs: &[RunResult]) -> String {
    let groups = by_variant(runs);
    let none = none_rate(&groups);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| variant | after layer | keep ratio | runs | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | best val Recall@5 | windows/s | s per 1,000 windows | time saved vs none |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (v, rs) in &groups {
        let variant: Variant = v.parse().unwrap_or(Variant::kind(ReducerKind::None));
        let reducer = variant.apply(&config.reducer);
        let (layer, ratio) = if reducer.kind == ReducerKind::None {
            ("-".to_string(), "1".to_string())
        } else {
            (
                reducer.after_layer.to_string(),
                format!("{:.3}", reducer.keep_ratio),
            )
        };
        let vals = |i: usize| pm(&rs.iter().map(|r| metric(r, i)).collect::<Vec<_>>(), 4);
        let rate: Vec<f64> = rs.iter().map(|r| r.train.windows_per_s).collect();
        let per_k: Vec<f64> = rs.iter().map(|r| r.seconds_per_k_windows()).collect();
        let best: Vec<f64> = rs.iter().map(|r| r.train.best_val_recall5).collect();
        let saved = time_saved_cell(v, rs, none);
        let _ = writeln!(
            md,
            "| {v} | {layer} | {ratio} | {} | {} | {} | {} | {} | {} | {} | {} | {saved} |",
            rs.len(),
            vals(0),
            vals(1),
            vals(2),
            vals(3),
            pm(&best, 4),
            pm(&rate, 1),
            pm(&per_k, 1),
        );
    }
    if let Some(pop) = runs.first().map(|r| &r.eval.popularity) {
        let g = |m: &BTreeMap<usize, f64>, k| m.get(&k).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "\nMost popular on the same users: Recall@5 {:.4}, Recall@10 {:.4}, NDCG@5 {:.4}, NDCG@10 {:.4}. \
             Test split, {} of {} users. \"Time saved\" is 1 − (windows/s of none) / (windows/s of the variant), \
             training without validation.",
            g(&pop.recall, 5),
            g(&pop.recall, 10),
            g(&pop.ndcg, 5),
            g(&pop.ndcg, 10),
            runs[0].eval.users,
            runs[0].eval.all_users
        );
    }
    md
}

/// RQ3's four plots: test Recall@5 and training time against the layer and the keep ratio.
fn rq3_plots(config: &Config, runs: &[RunResult], dir: &Path) -> Result<()> {
    let base = &config.reducer;
    let mut by_layer: Vec<(f64, f64, f64)> = Vec::new();
    let mut by_ratio: Vec<(f64, f64, f64)> = Vec::new();
    let mut none: Option<(f64, f64)> = None;
    for (v, rs) in by_variant(runs) {
        let variant: Variant = v.parse()?;
        let r = variant.apply(base);
        let recall = mean_std(&rs.iter().map(|r| metric(r, 0)).collect::<Vec<_>>()).0;
        let time = mean_std(
            &rs.iter()
                .map(|r| r.seconds_per_k_windows())
                .collect::<Vec<_>>(),
        )
        .0;
        if r.kind == ReducerKind::None {
            none = Some((recall, time));
            continue;
        }
        if (r.keep_ratio - base.keep_ratio).abs() < 1e-9 {
            by_layer.push((r.after_layer as f64, recall, time));
        }
        if r.after_layer == base.after_layer {
            by_ratio.push((r.keep_ratio, recall, time));
        }
    }
    by_layer.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_ratio.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (points, axis, x_label, label) in [
        (
            &by_layer,
            "layer",
            "RASTP after encoder layer",
            format!("rastp (keep {:.3})", base.keep_ratio),
        ),
        (
            &by_ratio,
            "ratio",
            "keep ratio",
            format!("rastp (after layer {})", base.after_layer),
        ),
    ] {
        if points.is_empty() {
            continue;
        }
        let x0 = points.first().map_or(0.0, |p| p.0);
        let x1 = points.last().map_or(1.0, |p| p.0);
        for (name, pick, y_label) in [
            ("recall5", 1usize, "test Recall@5"),
            ("time", 2usize, "training seconds per 1,000 windows"),
        ] {
            let y = |p: &(f64, f64, f64)| if pick == 1 { p.1 } else { p.2 };
            let mut series: Vec<Series> =
                vec![(label.clone(), points.iter().map(|p| (p.0, y(p))).collect())];
            if let Some((nr, nt)) = none {
                let v = if pick == 1 { nr } else { nt };
                series.push(("none (no pruning)".into(), vec![(x0, v), (x1, v)]));
            }
            xy_plot(
                dir,
                &format!("{name}_by_{axis}"),
                &series,
                (x_label, y_label),
                Marks::LinesAndPoints,
                pick == 2,
            )?;
        }
    }
    Ok(())
}

/// RQ1 over several datasets: one table, a block of rows per dataset, the paper beside ours.
pub fn rq1_summary(results: &[(String, Vec<RunResult>)]) -> String {
    let mut md = String::from(
        "# RQ1 on all datasets: TIGER (×) and TIGER + RASTP (✓)\n\n\
         | dataset | RASTP | Recall@5 (paper) | Recall@10 (paper) | NDCG@5 (paper) | NDCG@10 (paper) | windows/s | time saved |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (dataset, runs) in results {
        let groups = by_variant(runs);
        let none = none_rate(&groups);
        for (v, rs) in &groups {
            let rastp = v == "rastp";
            let paper = paper_numbers(dataset, rastp);
            let cells: Vec<String> = (0..4)
                .map(|i| {
                    let ours = pm(&rs.iter().map(|r| metric(r, i)).collect::<Vec<_>>(), 4);
                    match paper {
                        Some(p) => format!("{ours} ({:.4})", p[i]),
                        None => ours,
                    }
                })
                .collect();
            let rate: Vec<f64> = rs.iter().map(|r| r.train.windows_per_s).collect();
            let saved = time_saved_cell(v, rs, none);
            let _ = writeln!(
                md,
                "| {dataset} | {} | {} | {} | {saved} |",
                if rastp { "✓" } else { "×" },
                cells.join(" | "),
                pm(&rate, 1)
            );
        }
    }
    md.push_str("\nPer-dataset reports: `runs/<dataset>/experiments/rq1/report.md`.\n");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished run with the given test Recall@5 and training speed.
    fn run_result(
        variant: &str,
        seed: u64,
        recall5: f64,
        windows_per_s: f64,
        log: &Path,
    ) -> RunResult {
        let metrics = |r: f64| {
            serde_json::json!({"users": 100, "recall": {"5": r, "10": r * 1.5}, "ndcg": {"5": r / 2.0, "10": r / 1.5},
                "invalid_share": 0.0, "loss": null, "seconds": 1.0, "users_per_s": 100.0})
        };
        let train = serde_json::json!({"variant": variant, "seed": seed, "stop": "time-budget", "batches": 10,
            "steps": 10, "windows": 1000, "wall_s": 60.0, "validation_s": 5.0, "median_batch_s": 0.5,
            "windows_per_s": windows_per_s, "best_val_recall5": recall5, "best_batch": 10, "resumed_from": null,
            "model": {"num_levels": 4, "codes_per_level": 256, "parameters": 1000}});
        let eval = serde_json::json!({"variant": variant, "seed": seed, "users": 100, "all_users": 200,
            "constrained": true, "model": metrics(recall5), "popularity": metrics(0.01)});
        RunResult {
            train: serde_json::from_value(train).unwrap(),
            eval: serde_json::from_value(eval).unwrap(),
            log_csv: log.to_path_buf(),
        }
    }

    #[test]
    fn rq3_report_has_a_row_per_variant_and_four_plots() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("train_log.csv");
        std::fs::write(
            &log,
            "kind,batch,wall_s,val_recall5,val_loss\nval,10,60,0.02,3.0\n",
        )
        .unwrap();
        let c = Config::default();
        // RQ3's default plan under the default config (pipeline::experiment::plan).
        let variants = [
            "none",
            "rastp@1",
            "rastp",
            "rastp@3",
            "rastp:0.1",
            "rastp:0.2",
            "rastp:0.5",
            "rastp:0.75",
        ];
        let runs: Vec<RunResult> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                run_result(
                    v,
                    42,
                    0.02 + 0.001 * i as f64,
                    100.0 + 10.0 * i as f64,
                    &log,
                )
            })
            .collect();
        let header = Header {
            question: Question::Rq3,
            dataset: "beauty",
            seeds: &[42],
            command: "",
            backend: "flex (burn CPU)",
        };
        let md = markdown(&header, &c, &runs, tmp.path()).unwrap();
        assert!(md.contains("| rastp@3 | 3 | 0.333 | 1 | 0.0230 |"), "{md}");
        assert!(md.contains("| rastp:0.75 | 2 | 0.750 |"), "{md}");
        // none runs at 100 windows/s, rastp (index 2) at 120: 1 − 100/120 = 16.7 %.
        assert!(md.contains("| 16.7 % |"), "{md}");
        assert!(
            md.contains("Most popular on the same users: Recall@5 0.0100"),
            "{md}"
        );
        for name in [
            "recall5_by_layer",
            "time_by_layer",
            "recall5_by_ratio",
            "time_by_ratio",
        ] {
            assert!(md.contains(&format!("({name}.svg)")), "{md}");
            assert!(
                tmp.path().join(format!("{name}.svg")).is_file(),
                "{name}.svg"
            );
            assert!(
                tmp.path().join(format!("{name}.png")).is_file(),
                "{name}.png"
            );
        }
    }

    #[test]
    fn rq1_summary_puts_the_paper_beside_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log.csv");
        let beauty = vec![
            run_result("none", 42, 0.04, 100.0, &log),
            run_result("none", 43, 0.05, 100.0, &log),
            run_result("rastp", 42, 0.045, 150.0, &log),
            run_result("rastp", 43, 0.045, 150.0, &log),
        ];
        let md = rq1_summary(&[("beauty".into(), beauty)]);
        assert!(
            md.contains("| beauty | × | 0.0450 ± 0.0071 (0.0426) |"),
            "{md}"
        );
        assert!(
            md.contains("| beauty | ✓ | 0.0450 ± 0.0000 (0.0441) |"),
            "{md}"
        );
        assert!(md.contains("| 33.3 % |"), "{md}");
    }
}
