//! `cargo xtask recommend`: the top-K items for one user (or an ad-hoc history of ASINs) from a
//! trained model, with titles, SIDs and beam probabilities; items already in the history are
//! marked. One model load, one beam search.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use artifacts::Config;
use artifacts::config::Variant;
use artifacts::dataset::Dataset;
use artifacts::sids::SemanticIds;
use evaluator::{Catalogue, EvalSettings, recommend};
use gr_model::artifact::load_trained;

use crate::backend::{Backend, device};
use crate::workspace::Workspace;

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
    ws.check_dataset(dataset)?;
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
    let (variant, hist, recs) =
        recommend_for(ws, dataset, &cfg, &who, variant, args.seed, args.top)?;
    println!(
        "top {} for a history of {} items ({variant}, seed {}; {:.2} s) — * = already in the history",
        recs.len(),
        hist.len(),
        args.seed,
        started.elapsed().as_secs_f64()
    );
    for r in recs {
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

/// Whose history.
pub enum Who {
    /// A user of the dataset, by id as in the data files (P5: 1-based numbers).
    User(String),
    /// Items by ASIN, oldest first.
    History(Vec<String>),
}

/// One recommended item.
#[derive(Debug, Clone)]
pub struct Recommendation {
    /// 1-based rank.
    pub rank: usize,
    /// The item's 1-based id, or `None` for a generated SID that is no item.
    pub item: Option<u32>,
    /// ASIN.
    pub asin: String,
    /// Title (or `-`).
    pub title: String,
    /// SID digits.
    pub sid: Vec<u32>,
    /// Beam probability.
    pub score: f32,
    /// Already in the history.
    pub seen: bool,
}

/// The train artifact to use: the given variant, else the first of `run.variants` that has one.
fn train_dir(
    ws: &Workspace,
    dataset: &str,
    config: &Config,
    variant: Option<Variant>,
    seed: u64,
) -> Result<(PathBuf, Variant)> {
    let candidates: Vec<Variant> = match variant {
        Some(v) => vec![v.canonical(&config.reducer)],
        None => config.variants(),
    };
    for v in &candidates {
        let dir = ws
            .run_dir(dataset)
            .join("train")
            .join(v.to_string())
            .join(format!("seed-{seed}"));
        if dir.join("manifest.json").is_file() {
            return Ok((dir, *v));
        }
    }
    bail!(
        "no trained model for `{dataset}` (variants {}, seed {seed}): run `cargo xtask pipeline {dataset}` first",
        candidates
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Recommends `top` items.
pub fn recommend_for(
    ws: &Workspace,
    dataset: &str,
    config: &Config,
    who: &Who,
    variant: Option<Variant>,
    seed: u64,
    top: usize,
) -> Result<(Variant, Vec<u32>, Vec<Recommendation>)> {
    let run = ws.run_dir(dataset);
    let data = Dataset::read(&run.join("data"))
        .with_context(|| format!("no data artifact: run `cargo xtask pipeline {dataset}` first"))?;
    let sids = SemanticIds::read(&run.join("sids"))?;
    let (dir, variant) = train_dir(ws, dataset, config, variant, seed)?;
    let config = config.for_variant(&variant)?;
    let catalogue = Catalogue::from_sids(&sids)?.with_prior(config.model.prior, &data.split.train);
    if top == 0 || top > catalogue.table.len() {
        bail!(
            "--top {top}: ask for 1 to {} items (the catalogue of `{dataset}`)",
            catalogue.table.len()
        );
    }
    let (model, _) = load_trained::<Backend>(&dir, &device())?;
    let inter = &data.interactions;
    let history: Vec<u32> = match who {
        Who::User(id) => {
            // A user id as in the data files; else a 1-based position (P5 ids are positions).
            let by_position = id
                .parse::<usize>()
                .ok()
                .filter(|&p| (1..=inter.users.len()).contains(&p))
                .map(|p| p - 1);
            let u = inter
                .users
                .iter()
                .position(|x| x == id)
                .or(by_position)
                .with_context(|| {
                    format!(
                        "unknown user `{id}` in `{dataset}` (users are {} … {}, {} in all)",
                        inter.users.first().map_or("", String::as_str),
                        inter.users.last().map_or("", String::as_str),
                        inter.users.len()
                    )
                })?;
            inter.sequences[u].clone()
        }
        Who::History(asins) => {
            let by_asin: HashMap<&str, u32> = inter
                .items
                .iter()
                .enumerate()
                .map(|(i, it)| (it.asin.as_str(), i as u32))
                .collect();
            asins
                .iter()
                .map(|a| {
                    by_asin
                        .get(a.as_str())
                        .copied()
                        .with_context(|| format!("unknown ASIN `{a}` in `{dataset}`"))
                })
                .collect::<Result<_>>()?
        }
    };
    if history.is_empty() {
        bail!("the history is empty");
    }
    let recent = &history[history.len().saturating_sub(config.data.max_history)..];
    let settings = EvalSettings {
        beam_width: top.max(config.eval.beam_width),
        ..EvalSettings::new(&config, false)
    };
    let ranked = recommend(&model, &[recent], &catalogue, &settings, &device());
    let r = &ranked[0];
    let recs = r
        .items
        .iter()
        .zip(&r.scores)
        // A beam with probability 0 is no generation (constrained decoding ran out of prefixes).
        .filter(|(_, score)| **score > 0.0)
        .take(top)
        .enumerate()
        .map(|(i, (item, &score))| {
            let record = item.map(|it| &inter.items[it as usize]);
            Recommendation {
                rank: i + 1,
                item: item.map(|it| it + 1),
                asin: record.map_or("-".into(), |r| r.asin.clone()),
                title: record
                    .and_then(|r| r.title.as_deref())
                    .map(|t| html_escape::decode_html_entities(t).into_owned())
                    .unwrap_or_else(|| "-".into()),
                sid: item.map_or(vec![], |it| catalogue.table.sid(it).to_vec()),
                score,
                seen: item.is_some_and(|it| history.contains(&it)),
            }
        })
        .collect();
    Ok((variant, history, recs))
}
