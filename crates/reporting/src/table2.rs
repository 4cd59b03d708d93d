//! The pipeline's report (`report.md`): a table like the paper's Table 2 (mean ± std over
//! seeds, the paper's numbers beside ours), the most-popular baseline, training time per run and
//! each reducer's time saving against `none`, and links to the validation plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use artifacts::Config;

use crate::runs::{RunResult, by_variant, none_rate, time_saved_cell, windows_per_s};
use crate::stats::{TABLE_METRICS, paper_numbers, pm, table_metric};

/// The report's markdown.
pub fn markdown(dataset: &str, config: &Config, runs: &[RunResult]) -> String {
    let groups = by_variant(runs);
    let none = none_rate(&groups);
    let by_variant: BTreeMap<String, Vec<&RunResult>> = groups.into_iter().collect();
    // Column order: the configured variant order.
    let variants: Vec<String> = config
        .variants()
        .iter()
        .map(|v| v.to_string())
        .filter(|v| by_variant.contains_key(v))
        .collect();
    let mut md = String::new();
    let _ = writeln!(md, "# {dataset}: TIGER with and without token reduction\n");
    md.push_str(&settings(config, runs));
    md.push_str(&metrics_table(dataset, &variants, &by_variant, runs));
    md.push_str(&time_table(&variants, &by_variant, none));
    md.push_str(&plots_section(dataset));
    md
}

/// The paragraph on the test users, decoding, model, reducer and schedule.
fn settings(config: &Config, runs: &[RunResult]) -> String {
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.train.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let users = runs.first().map(|r| (r.eval.users, r.eval.all_users));
    let (m, r, t) = (&config.model, &config.reducer, &config.train);
    format!(
        "Test split, {} of {} users, beam width {}, {} decoding; seeds {:?} (mean ± sample std over seeds). \
         Model {}+{} layers, d_model {}, padding {:?}; reducer settings: after layer {}, keep ratio {:.3} of the {:?} length, \
         position bias after the cut {:?}, at evaluation {}. Training: {} users → ≤ {} windows per micro-batch, \
         accumulation {}, lr {}, validation every {} micro-batches on {} users{}.\n\n",
        users.map_or(0, |u| u.0),
        users.map_or(0, |u| u.1),
        config.eval.beam_width,
        if config.eval.constrained {
            "trie-constrained"
        } else {
            "unconstrained (as the reference)"
        },
        seeds,
        m.encoder_layers,
        m.decoder_layers,
        m.d_model,
        m.padding,
        r.after_layer,
        r.keep_ratio,
        r.keep_basis,
        r.position_bias,
        r.at_eval,
        t.users_per_batch,
        t.max_windows,
        t.grad_accumulation,
        t.lr,
        t.val_every,
        t.val_users_text(),
        t.limits_text(),
    )
}

/// Table 2: the paper's numbers (for `none` and `rastp`) beside ours, and the popularity list.
fn metrics_table(
    dataset: &str,
    variants: &[String],
    by_variant: &BTreeMap<String, Vec<&RunResult>>,
    runs: &[RunResult],
) -> String {
    let paper = |v: &str| {
        let rastp = v == "rastp";
        paper_numbers(dataset, rastp).filter(|_| v == "none" || rastp)
    };
    let mut md = String::new();
    let mut header = vec!["Metric".to_string()];
    for v in variants {
        if paper(v).is_some() {
            let label = if v == "rastp" {
                "RASTP ✓"
            } else {
                "TIGER ×"
            };
            header.push(format!("paper {label}"));
        }
        header.push(format!("ours {v}"));
    }
    header.push("most popular".into());
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}|", vec!["---"; header.len()].join("|"));
    for (i, name) in TABLE_METRICS.iter().enumerate() {
        let mut row = vec![name.to_string()];
        for v in variants {
            if let Some(p) = paper(v) {
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
    md
}

/// Training time per variant and the time saved against `none`.
fn time_table(
    variants: &[String],
    by_variant: &BTreeMap<String, Vec<&RunResult>>,
    none_rate: Option<f64>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n## Training time\n");
    let _ = writeln!(
        md,
        "| variant | runs | wall time per run (s) | of which validation (s) | windows/s | median s / micro-batch | micro-batches | best val Recall@5 | stopped by | time saved vs none (training, per window) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for v in variants {
        let rs = &by_variant[v];
        let col = |f: &dyn Fn(&RunResult) -> f64| rs.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let stops: Vec<String> = rs.iter().map(|r| r.train.stop.to_string()).collect();
        let saving = time_saved_cell(v, rs, none_rate);
        let _ = writeln!(
            md,
            "| {v} | {} | {} | {} | {} | {} | {} | {} | {} | {saving} |",
            rs.len(),
            pm(&col(&|r| r.train.wall_s), 0),
            pm(&col(&|r| r.train.validation_s), 0),
            pm(&windows_per_s(rs), 1),
            pm(&col(&|r| r.train.median_batch_s), 3),
            pm(&col(&|r| r.train.batches as f64), 0),
            pm(&col(&|r| r.train.best_val_recall5), 4),
            stops.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\nThe paper reports 26.7 % less training time with RASTP (GPU, reference schedule). \"Time saved\" here is \
         1 − (windows/s of none) / (windows/s of the variant), from training time without validation.\n"
    );
    md
}

/// Links to the validation plots.
fn plots_section(dataset: &str) -> String {
    let mut md = String::from("## Plots\n\n");
    for (file, what) in [
        (
            "val_recall_by_batch",
            "validation Recall@5 against micro-batch",
        ),
        (
            "val_recall_by_time",
            "validation Recall@5 against wall time",
        ),
        ("val_loss_by_batch", "validation loss against micro-batch"),
        ("val_loss_by_time", "validation loss against wall time"),
    ] {
        let _ = writeln!(md, "![{what}]({file}.svg)\n");
    }
    let _ = writeln!(
        md,
        "PNG versions sit beside the SVG files. Produced by `cargo xtask pipeline {dataset}`."
    );
    md
}
