//! Stage `train` (per variant and seed): the `Dataset` and `SemanticIds` artifacts to a trained
//! model (`model.mpk`, the best validation checkpoint; `model.safetensors` under the reference's
//! names), `train_log.csv` and `summary.json`. Checkpoints live in the work directory beside the
//! artifact, so a killed run resumes where it stopped.

use anyhow::{Context, Result};
use artifacts::dataset::Dataset;
use artifacts::sids::SemanticIds;
use artifacts::{ArtifactWriter, Config};
use burn::module::Module;
use evaluator::Catalogue;
use gr_model::input::SidTable;
use gr_model::tiger::{Tiger, TigerConfig};
use serde::{Deserialize, Serialize};
use trainer::checkpoint::{WorkDir, log_csv};
use trainer::settings::{eval_settings, reducer_identity, reducer_spec, slots, tiger_config};
use trainer::{TrainSettings, TrainUsers, WindowSampler};

use super::{Stage, StageContext, variant_name};
use crate::backend::{Backend, TrainBackend, device};

/// Trains the model.
pub struct TrainStage;

/// `summary.json` of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Reducer variant.
    pub variant: String,
    /// Seed.
    pub seed: u64,
    /// Why training stopped.
    pub stop: String,
    /// Micro-batches trained.
    pub batches: u64,
    /// Optimiser steps.
    pub steps: u64,
    /// Windows trained on.
    pub windows: u64,
    /// Training wall time (seconds, all sessions, validation included).
    pub wall_s: f64,
    /// Seconds spent in validation.
    pub validation_s: f64,
    /// Median seconds per micro-batch (last session).
    pub median_batch_s: f64,
    /// Windows per second of training (validation excluded).
    pub windows_per_s: f64,
    /// Best validation Recall@5 and its micro-batch.
    pub best_val_recall5: f64,
    /// Micro-batch of the best validation.
    pub best_batch: u64,
    /// The micro-batch this run resumed from, if it was interrupted.
    pub resumed_from: Option<u64>,
    /// The model's shape.
    pub model: ModelShape,
}

/// The model shape as stored beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelShape {
    /// SID digits.
    pub num_levels: usize,
    /// Codes per digit.
    pub codes_per_level: usize,
    /// Parameters.
    pub parameters: usize,
}

/// The catalogue and model shape shared by training, evaluation and `recommend`.
pub fn catalogue(sids: &SemanticIds, config: &Config) -> Result<(Catalogue, TigerConfig)> {
    let levels = sids.levels() + 1;
    let table = SidTable::new(&sids.codes, sids.codebook_size)
        .context("the semantic ids do not fit the model's vocabulary (quantizer.max_dedup)")?;
    Ok((
        Catalogue::new(table)?,
        tiger_config(config, levels, sids.codebook_size),
    ))
}

/// Loads the trained model of a `train` artifact (its shape from the artifact's `model.json`).
pub fn load_model(dir: &std::path::Path) -> Result<(Tiger<Backend>, TigerConfig)> {
    let path = dir.join("model.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is the train artifact complete?)",
            path.display()
        )
    })?;
    let model_cfg: TigerConfig =
        serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))?;
    let fresh = Tiger::<Backend>::new(&model_cfg, &device());
    let model = gr_model::export::load_record(fresh, &dir.join("model.mpk"), &device())?;
    Ok((model, model_cfg))
}

impl Stage for TrainStage {
    fn name(&self) -> &'static str {
        "train"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn upstream(&self) -> &'static [&'static str] {
        &["data", "sids"]
    }

    fn upstream_files(&self, upstream: &str, _config: &Config) -> Option<Vec<&'static str>> {
        (upstream == "data").then(|| vec!["train.parquet", "valid.parquet"])
    }

    fn config_hash(&self, config: &Config) -> String {
        Config::section_hash(&serde_json::json!({
            "model": config.model,
            "reducer": reducer_identity(&config.reducer),
            "at_eval": config.reducer.at_eval,
            "train": train_identity(&config.train),
            "eval": { "beam_width": config.eval.beam_width, "constrained": config.eval.constrained },
            "max_history": config.data.max_history,
        }))
    }

    fn per_seed(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let config = ctx.config;
        let seed = ctx.seed.context("train runs per seed")?;
        let data = Dataset::read(&ctx.upstream["data"])?;
        let sids = SemanticIds::read(&ctx.upstream["sids"])?;
        let (catalogue, model_cfg) = catalogue(&sids, config)?;
        let reducer = reducer_spec(&config.reducer, config.model.encoder_layers)?;
        let users = TrainUsers::new(&data.split.train);
        let t = &config.train;
        let sampler = WindowSampler::new(
            users.clone(),
            seed,
            t.users_per_batch,
            t.max_windows,
            t.window_sampling,
            config.data.max_history,
        )
        .with_starts(t.windows);
        let settings = TrainSettings {
            train: t.clone(),
            seed,
            slots: slots(config),
            reducer,
            validation: eval_settings(config, true)?,
            run_hash: ctx.run_hash.clone(),
        };
        let params = Tiger::<Backend>::new(&model_cfg, &device()).num_params();
        print_plan(config, &users, &model_cfg, params);
        let work = WorkDir::new(&ctx.work_dir)?;
        let outcome = trainer::train::<TrainBackend>(
            &model_cfg,
            &sampler,
            &data.split.valid,
            &catalogue,
            &settings,
            &work,
            &crate::backend::devices(&t.devices)?,
        )?;
        let s = &outcome.state;
        let validation_s = s.validation_s;
        std::fs::copy(
            work.best_model().with_extension("mpk"),
            out.file("model.mpk"),
        )
        .context("cannot copy the best model")?;
        std::fs::write(
            out.file("model.json"),
            serde_json::to_string_pretty(&model_cfg)?,
        )?;
        let (best, _) = load_model(out.dir())?;
        gr_model::export::export_safetensors(&best, &out.file("model.safetensors"))?;
        std::fs::write(out.file("train_log.csv"), log_csv(&s.log))?;
        let train_s = (s.wall_s - validation_s).max(1e-9);
        let summary = TrainSummary {
            variant: variant_name(ctx),
            seed,
            stop: serde_json::to_value(outcome.stop)?
                .as_str()
                .unwrap_or("")
                .to_string(),
            batches: s.batch,
            steps: s.step,
            windows: s.windows,
            wall_s: s.wall_s,
            validation_s,
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
        std::fs::write(
            out.file("summary.json"),
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
            .detail("stop", summary.stop.clone())
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
        "train plan: {} training users, {} windows in all; micro-batch = {} users → ≤ {} windows of ≤ {} positions; ≈ {:.2} TFLOP per micro-batch at full length ({} parameters); validation every {} micro-batches{}{}",
        users.users(),
        users.total_windows(),
        t.users_per_batch,
        t.max_windows,
        positions,
        flops / 1e12,
        params,
        t.val_every,
        if t.max_batches > 0 {
            format!(", at most {} micro-batches", t.max_batches)
        } else {
            String::new()
        },
        if t.max_minutes > 0.0 {
            format!(", at most {} minutes", t.max_minutes)
        } else {
            String::new()
        },
    );
}

/// `[train]` without the keys that do not change what is learned (`devices`).
pub fn train_identity(train: &artifacts::config::TrainConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(train).expect("serialisable");
    if let Some(map) = v.as_object_mut() {
        map.remove("devices");
    }
    v
}
