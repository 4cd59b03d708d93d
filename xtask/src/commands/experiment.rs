//! `cargo xtask experiment rq1|rq2|rq3 <dataset>|all`.

use anyhow::{Result, bail};
use artifacts::config::DataFormat;
use clap::Args;

use super::ConfigArgs;
use pipeline::experiment::{self, ExperimentOptions, Question};
use pipeline::{Workspace, backend, engine};

/// Arguments of `experiment`.
#[derive(Args)]
pub struct ExperimentArgs {
    /// Which question: rq1, rq2 or rq3.
    #[arg(value_parser = parse_question)]
    question: Question,
    #[command(flatten)]
    config: ConfigArgs,
    /// Seeds (default: 42–46 for rq1, run.seeds for rq2 and rq3).
    #[arg(long, value_delimiter = ',', value_name = "N,N,…")]
    seeds: Vec<u64>,
    /// rq3: encoder layers to prune after (default: all but the last).
    #[arg(long, value_delimiter = ',', value_name = "L,L,…")]
    layers: Vec<usize>,
    /// rq3: keep ratios to sweep (default: 0.1, 0.2, reducer.keep_ratio, 0.5, 0.75).
    #[arg(long, value_delimiter = ',', value_name = "R,R,…")]
    ratios: Vec<f64>,
}

fn parse_question(text: &str) -> Result<Question> {
    Question::ALL
        .into_iter()
        .find(|q| q.name() == text)
        .ok_or_else(|| anyhow::anyhow!("unknown question `{text}`; questions: rq1, rq2, rq3"))
}

/// The datasets `all` stands for: every configured dataset with real data (not the generated
/// `demo` set).
fn all_datasets(ws: &Workspace, args: &ExperimentArgs) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for name in ws.known_datasets()? {
        if args.config.resolve_for(ws, &name)?.data.format != DataFormat::Synthetic {
            out.push(name);
        }
    }
    Ok(out)
}

/// Runs the experiment on one dataset (or every real one for `rq1 all`) and prints the reports.
pub fn run(ws: &Workspace, args: &ExperimentArgs) -> Result<()> {
    let opts = ExperimentOptions {
        seeds: args.seeds.clone(),
        layers: args.layers.clone(),
        ratios: args.ratios.clone(),
    };
    let question = args.question;
    let datasets = if args.config.dataset == "all" {
        if question != Question::Rq1 {
            bail!("`all` is for rq1; run {} per dataset", question.name());
        }
        all_datasets(ws, args)?
    } else {
        vec![args.config.dataset.clone()]
    };
    let mut results = Vec::new();
    for dataset in &datasets {
        let cfg = args.config.resolve_for(ws, dataset)?;
        let mut plan = experiment::plan(question, &cfg, &opts)?;
        let words: Vec<String> = std::env::args().skip(1).collect();
        plan.command = format!("cargo xtask {}", words.join(" "));
        eprintln!(
            "experiment {} on `{dataset}` (profile {}, backend {}): variants {}, seeds {:?}",
            question.name(),
            args.config.profile,
            backend::name(),
            plan.variants
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            plan.seeds
        );
        let (report, stages) = experiment::run(ws, dataset, &cfg, &plan)?;
        eprintln!("{}", engine::table(&stages));
        println!("{}", std::fs::read_to_string(&report)?);
        println!("report: {}", report.display());
        results.push((
            dataset.clone(),
            experiment::collect(&ws.layout(dataset), &plan)?,
        ));
    }
    if datasets.len() > 1 {
        let path = experiment::write_rq1_summary(ws, &results)?;
        println!("{}", std::fs::read_to_string(&path)?);
        println!("report: {}", path.display());
    }
    Ok(())
}
