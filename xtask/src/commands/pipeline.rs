//! `cargo xtask pipeline <dataset>`.

use anyhow::Result;
use clap::Args;

use super::ConfigArgs;
use pipeline::{PipelineOptions, StageId, Workspace, backend, engine, registry};

/// Arguments of `pipeline`.
#[derive(Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Stop after this stage (data, embed, sids, train, eval, report).
    #[arg(long, value_name = "STAGE")]
    until: Option<StageId>,
    /// Re-run stages even when their artifacts are up to date.
    #[arg(long)]
    force: bool,
    /// Seeds for training and evaluation, comma-separated (default: run.seeds).
    #[arg(long, value_delimiter = ',', value_name = "N,N,…")]
    seeds: Vec<u64>,
}

/// Runs the pipeline and prints what each stage did.
pub fn run(ws: &Workspace, args: &PipelineArgs) -> Result<()> {
    let cfg = args.config.resolve(ws)?;
    let seeds = if args.seeds.is_empty() {
        cfg.run.seeds.clone()
    } else {
        args.seeds.clone()
    };
    let opts = PipelineOptions {
        until: args.until,
        force: args.force,
        seeds,
    };
    let dataset = &args.config.dataset;
    eprintln!(
        "pipeline `{dataset}` (profile {}, backend {}), artifacts in {}",
        args.config.profile,
        backend::name(),
        ws.layout(dataset).dir().display()
    );
    let reports = engine::run(ws, dataset, &cfg, &registry(), &opts)?;
    println!("{}", engine::table(&reports));
    Ok(())
}
