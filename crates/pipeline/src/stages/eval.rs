//! Stage `eval` (per variant and seed): the trained model on the test split — Recall@K and
//! NDCG@K by beam search (docs/reference.md §6), the most-popular baseline by the same metric
//! code, and users/s — into `metrics.json` (the `Metrics` artifact, `artifacts::metrics`).

use artifacts::dataset::{files, subsample};
use artifacts::metrics::{EvalReport, METRICS_FILE};
use artifacts::{ArtifactWriter, Config};
use evaluator::{EvalSettings, evaluate, popularity};
use gr_model::artifact::load_trained;

use super::{Stage, StageContext, StageId, StageSpec};
use crate::backend::{Backend, device};
use crate::error::{Result, write_file};
use crate::inputs::RunInputs;

/// Evaluates a trained model.
pub struct EvalStage;

/// The stage's constant description.
const SPEC: StageSpec = StageSpec {
    id: StageId::Eval,
    about: "Recall/NDCG on the test split",
    schema_version: 1,
    upstream: &[StageId::Data, StageId::Sids, StageId::Train],
};

impl Stage for EvalStage {
    fn spec(&self) -> StageSpec {
        SPEC
    }

    fn upstream_files(&self, upstream: StageId, _config: &Config) -> Option<Vec<&'static str>> {
        (upstream == StageId::Data).then(|| vec![files::TRAIN, files::TEST])
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({
            "eval": config.eval,
            "reducer": config.reducer.identity(),
            "at_eval": config.reducer.at_eval,
            "padding": config.model.padding,
            "model": config.model,
            "max_history": config.data.max_history,
        }))
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let config = ctx.config;
        let seed = ctx.run().seed;
        let RunInputs {
            data, catalogue, ..
        } = RunInputs::from_dirs(
            ctx.upstream.dir(StageId::Data),
            ctx.upstream.dir(StageId::Sids),
            config,
        )?;
        let (model, _) = load_trained::<Backend>(ctx.upstream.dir(StageId::Train), &device())?;
        // The same users for every seed and variant (a fixed subsample when eval.test_users > 0).
        let users = subsample(&data.split.test, config.eval.test_users, 0);
        let settings = EvalSettings::new(config, false);
        let label = format!("test {}/seed-{seed}", ctx.variant_name());
        let metrics = evaluate(&model, &users, &catalogue, &settings, &device(), &label)?;
        let report = EvalReport {
            variant: ctx.variant_name(),
            seed,
            users: users.len(),
            all_users: data.split.test.len(),
            constrained: config.eval.constrained,
            model: metrics,
            popularity: popularity(&data.split.train, &users, &config.eval.ks),
        };
        eprintln!(
            "eval ({} seed {seed}) on {} of {} test users: {} | popularity: {} | {:.1} users/s, {:.1}% invalid SIDs",
            report.variant,
            report.users,
            report.all_users,
            report.model.summary(),
            report.popularity.summary(),
            report.model.users_per_s,
            100.0 * report.model.invalid_share
        );
        write_file(
            &out.file(METRICS_FILE),
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
