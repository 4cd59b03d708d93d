//! `cargo xtask recommend`: the top-K items for one user (or an ad-hoc history of ASINs) from a
//! trained model, with titles, SIDs and beam probabilities; items already in the history are
//! marked. One model load, one beam search (`pipeline::TrainedRun`).

use anyhow::Result;
use artifacts::config::Variant;
use pipeline::backend::{Backend, device};
use pipeline::recommend::Who;
use pipeline::{TrainedRun, Workspace};

use super::ConfigArgs;

/// Arguments of `recommend`.
#[derive(clap::Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// User id as in the data files (P5: 1, 2, …), or a 1-based user position.
    #[arg(long, conflicts_with = "history", required_unless_present = "history")]
    user: Option<String>,
    /// A history of ASINs, oldest first, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "ASIN,ASIN,…")]
    history: Vec<String>,
    /// Which trained variant (default: the first of run.variants that is trained).
    #[arg(long)]
    variant: Option<String>,
    /// Seed of the trained model.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many items (at most the catalogue's size; beam search widens its beam to this).
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// Prints the recommendations.
pub fn run(ws: &Workspace, args: &RecommendArgs) -> Result<()> {
    let cfg = args.config.resolve(ws)?;
    let dataset = &args.config.dataset;
    let variant = args
        .variant
        .as_deref()
        .map(str::parse::<Variant>)
        .transpose()?;
    let who = match &args.user {
        Some(u) => Who::User(u.clone()),
        None => Who::History(args.history.clone()),
    };
    let started = std::time::Instant::now();
    let run =
        TrainedRun::<Backend>::load(&ws.layout(dataset), &cfg, variant, args.seed, &device())?;
    let recs = run.recommend(&who, args.top, &device())?;
    println!(
        "top {} for a history of {} items ({}, seed {}; {:.2} s) — * = already in the history",
        recs.items.len(),
        recs.history.len(),
        run.run.variant,
        args.seed,
        started.elapsed().as_secs_f64()
    );
    for r in recs.items {
        let sid: Vec<String> = r.sid.iter().map(u32::to_string).collect();
        println!(
            "{:>3}. {}{:<7} {:<12} <{}> {:.2e}  {}",
            r.rank,
            if r.seen { "*" } else { " " },
            r.item.map_or("-".into(), |i| i.to_string()),
            r.asin,
            sid.join(","),
            r.score,
            r.title
        );
    }
    Ok(())
}
