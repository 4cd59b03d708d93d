//! Stage `eval` (per variant and seed): the trained model on the test split — Recall@K and
//! NDCG@K by beam search (reference §6), the most-popular baseline by the same metric code, and
//! users/s — into `metrics.json` (the `Metrics` artifact).

use anyhow::{Context, Result};
use artifacts::dataset::Dataset;
use artifacts::sids::SemanticIds;
use artifacts::{ArtifactWriter, Config};
use evaluator::{Metrics, evaluate, popularity};
use serde::{Deserialize, Serialize};
use trainer::settings::{eval_settings, reducer_identity};
use trainer::train::subsample;

use super::train::{catalogue, load_model};
use super::{Stage, StageContext, variant_name};
use crate::backend::device;

/// Evaluates a trained model.
pub struct EvalStage;

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Reducer variant.
    pub variant: String,
    /// Seed.
    pub seed: u64,
    /// Test users evaluated (of all).
    pub users: usize,
    /// All test users.
    pub all_users: usize,
    /// Constrained decoding.
    pub constrained: bool,
    /// The model's metrics.
    pub model: Metrics,
    /// The most-popular baseline on the same users.
    pub popularity: Metrics,
}

impl Stage for EvalStage {
    fn name(&self) -> &'static str {
        "eval"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn upstream(&self) -> &'static [&'static str] {
        &["data", "sids", "train"]
    }

    fn upstream_files(&self, upstream: &str, _config: &Config) -> Option<Vec<&'static str>> {
        (upstream == "data").then(|| vec!["train.parquet", "test.parquet"])
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({
            "eval": config.eval,
            "reducer": reducer_identity(&config.reducer),
            "at_eval": config.reducer.at_eval,
            "padding": config.model.padding,
            "model": config.model,
            "max_history": config.data.max_history,
        }))
    }

    fn per_seed(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let config = ctx.config;
        let seed = ctx.seed.context("eval runs per seed")?;
        let data = Dataset::read(&ctx.upstream["data"])?;
        let sids = SemanticIds::read(&ctx.upstream["sids"])?;
        let (catalogue, _) = catalogue(&sids, config)?;
        let (model, _) = load_model(&ctx.upstream["train"])?;
        // The same users for every seed and variant (a fixed subsample when eval.test_users > 0).
        let users = subsample(&data.split.test, config.eval.test_users, 0);
        let settings = eval_settings(config, false)?;
        let label = format!("test {}/seed-{seed}", variant_name(ctx));
        let metrics = evaluate(&model, &users, &catalogue, &settings, &device(), &label)?;
        let pop = popularity(&data.split.train, &users, &config.eval.ks);
        let report = EvalReport {
            variant: variant_name(ctx),
            seed,
            users: users.len(),
            all_users: data.split.test.len(),
            constrained: config.eval.constrained,
            model: metrics,
            popularity: pop,
        };
        let fmt = |m: &Metrics| {
            m.recall
                .iter()
                .map(|(k, r)| format!("R@{k} {r:.4} N@{k} {:.4}", m.ndcg[k]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "eval ({} seed {seed}) on {} of {} test users: {} | popularity: {} | {:.1} users/s, {:.1}% invalid SIDs",
            report.variant,
            report.users,
            report.all_users,
            fmt(&report.model),
            fmt(&report.popularity),
            report.model.users_per_s,
            100.0 * report.model.invalid_share
        );
        std::fs::write(
            out.file("metrics.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        out.rows("users", report.users as u64)
            .detail(
                "recall@5",
                report.model.recall.get(&5).copied().unwrap_or(0.0),
            )
            .detail("ndcg@5", report.model.ndcg.get(&5).copied().unwrap_or(0.0));
        Ok(())
    }
}
