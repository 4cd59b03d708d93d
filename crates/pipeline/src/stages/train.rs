//! Stage `train` (per variant and seed): the `Dataset` and `SemanticIds` artifacts to a trained
//! model — the `Model` artifact (`artifacts::model`): `model.mpk` (the best validation
//! checkpoint), `model.json`, `model.safetensors` (the reference's names), `train_log.csv` and
//! `summary.json`. Checkpoints live in the work directory beside the artifact, so a killed run
//! resumes where it stopped.

use artifacts::dataset::files;
use artifacts::model::{ModelShape, TRAIN_LOG, TRAIN_SUMMARY, TrainSummary, log_csv};
use artifacts::{ArtifactWriter, Config};
use burn::module::Module;
use gr_model::artifact::write_model_files;
use gr_model::tiger::{Tiger, TigerConfig};
use trainer::checkpoint::WorkDir;
use trainer::{TrainData, TrainSettings, TrainUsers, WindowSampler};

use super::{Stage, StageContext, StageId, StageSpec};
use crate::backend::{Backend, TrainBackend, device, devices};
use crate::error::{Result, write_file};
use crate::inputs::RunInputs;

/// Trains the model.
pub struct TrainStage;

/// The stage's constant description.
const SPEC: StageSpec = StageSpec {
    id: StageId::Train,
    about: "train the TIGER model (with the token reducer)",
    schema_version: 1,
    upstream: &[StageId::Data, StageId::Sids],
};

impl Stage for TrainStage {
    fn spec(&self) -> StageSpec {
        SPEC
    }

    fn upstream_files(&self, upstream: StageId, _config: &Config) -> Option<Vec<&'static str>> {
        (upstream == StageId::Data).then(|| vec![files::TRAIN, files::VALID])
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({
            "model": config.model,
            "reducer": config.reducer.identity(),
            "at_eval": config.reducer.at_eval,
            "train": config.train.identity(),
            "eval": {
                "beam_width": config.eval.beam_width,
                "constrained": config.eval.constrained,
                "renormalize": config.eval.renormalize,
            },
            "max_history": config.data.max_history,
        }))
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let config = ctx.config;
        let seed = ctx.run().seed;
        let RunInputs {
            data,
            catalogue,
            model: model_cfg,
            ..
        } = RunInputs::from_dirs(
            ctx.upstream.dir(StageId::Data),
            ctx.upstream.dir(StageId::Sids),
            config,
        )?;
        let users = TrainUsers::new(&data.split.train);
        let t = &config.train;
        let sampler = WindowSampler::from_config(users.clone(), seed, config);
        let settings = TrainSettings::new(config, seed, &ctx.run_hash);
        let params = Tiger::<Backend>::new(&model_cfg, &device()).num_params();
        print_plan(config, &users, &model_cfg, params);
        let work = WorkDir::new(&ctx.work_dir)?;
        let train_data = TrainData {
            sampler: &sampler,
            valid: &data.split.valid,
            catalogue: &catalogue,
        };
        let outcome = trainer::train::<TrainBackend>(
            &model_cfg,
            &train_data,
            &settings,
            &work,
            &devices(&t.devices)?,
        )?;
        let s = &outcome.state;
        write_model_files::<Backend>(
            out.dir(),
            &work.best_model().with_extension("mpk"),
            &model_cfg,
            &device(),
        )?;
        write_file(&out.file(TRAIN_LOG), log_csv(&s.log))?;
        let train_s = (s.wall_s - s.validation_s).max(1e-9);
        let summary = TrainSummary {
            variant: ctx.variant_name(),
            seed,
            stop: outcome.stop,
            batches: s.batch,
            steps: s.step,
            windows: s.windows,
            wall_s: s.wall_s,
            validation_s: s.validation_s,
            median_batch_s: outcome.median_batch_s,
            windows_per_s: s.windows as f64 / train_s,
            best_val_recall5: s.best_recall5.unwrap_or(0.0),
            best_batch: s.best_batch,
            resumed_from: outcome.resumed_from,
            model: ModelShape {
                num_levels: model_cfg.num_levels,
                codes_per_level: model_cfg.codes_per_level,
                parameters: params,
            },
        };
        write_file(
            &out.file(TRAIN_SUMMARY),
            serde_json::to_string_pretty(&summary)?,
        )?;
        eprintln!(
            "train ({} seed {seed}): {} micro-batches, {} steps, stopped by {}; best validation Recall@5 {:.4} at micro-batch {}; {:.0} s ({:.0} s validating), {:.1} windows/s",
            summary.variant,
            summary.batches,
            summary.steps,
            summary.stop,
            summary.best_val_recall5,
            summary.best_batch,
            summary.wall_s,
            summary.validation_s,
            summary.windows_per_s
        );
        out.rows("micro_batches", s.batch)
            .detail("best_val_recall5", summary.best_val_recall5)
            .detail("stop", summary.stop.to_string())
            .detail("wall_s", summary.wall_s);
        Ok(())
    }
}

/// Prints the compute estimate before starting: windows per micro-batch and FLOPs.
fn print_plan(config: &Config, users: &TrainUsers, model_cfg: &TigerConfig, params: usize) {
    let t = &config.train;
    let positions = (config.data.max_history + 1) * (model_cfg.num_levels + 1);
    let windows = t.max_windows.min(users.total_windows());
    // ≈ 6 × parameters × tokens for forward + backward (dense part), per micro-batch.
    let flops = 6.0 * params as f64 * (windows * positions) as f64;
    eprintln!(
        "train plan: {} training users, {} windows in all; micro-batch = {} users → ≤ {} windows of ≤ {} positions; ≈ {:.2} GFLOP per micro-batch at full length ({} parameters); validation every {} micro-batches{}",
        users.users(),
        users.total_windows(),
        t.users_per_batch,
        t.max_windows,
        positions,
        flops / 1e9,
        params,
        t.val_every,
        t.limits_text(),
    );
}
