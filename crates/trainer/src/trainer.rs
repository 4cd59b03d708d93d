//! The training loop as a small state machine with named steps: [`Trainer::step`] (one
//! micro-batch), [`Trainer::validate`], [`Trainer::checkpoint`] and [`Trainer::should_stop`];
//! [`Trainer::run`] strings them together as the reference schedules them.
//!
//! burn-train's `Learner` validates once per epoch with per-batch metrics; the reference
//! validates every 1,600 micro-batches of an endless stream with a generative metric (beam
//! search, Recall@5) and stops early on it. So the loop is built from burn's parts (autodiff,
//! `GradientsAccumulator`, the Adam optimiser and its record, record-based checkpointing)
//! instead of the `Learner`. Validation is the evaluator's beam search (the trainer depends on
//! the evaluator; see docs/architecture.md).

use std::time::Instant;

use artifacts::Config;
use artifacts::config::{ReducerConfig, Selection, TrainConfig, TrainLoss};
use artifacts::dataset::{HeldOut, subsample};
use artifacts::hashing::mix;
use artifacts::metrics::Metrics;
use artifacts::model::{LogKind, LogRow, StopReason};
use artifacts::progress::Progress;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{Adam, AdamConfig, GradientsAccumulator, Optimizer};
use burn::record::Recorder;
use burn::tensor::Device;
use burn::tensor::backend::AutodiffBackend;
use evaluator::{Catalogue, EvalSettings, evaluate};
use gr_model::export::{load_record, recorder, save_record};
use gr_model::tiger::{Tiger, TigerConfig};

use crate::checkpoint::{TrainState, WorkDir};
use crate::error::{Error, Result};
use crate::parallel::{accumulate_parallel, materialise};
use crate::step::{ChunkLoss, PaddedCost, accumulate_serial, chunks};
use crate::windows::WindowSampler;

/// The Adam optimiser every training of the model uses (the trainer, the conformance checks,
/// the benchmarks): β₁ = 0.9, β₂ = 0.999, ε = 1e-8 (PyTorch's defaults, which the reference
/// trains with), `train.weight_decay` as coupled L2 weight decay (none when 0), no gradient
/// clipping. The learning rate is not part of it: [`TrainConfig::lr_at`] gives it per step.
pub fn optimizer(train: &TrainConfig) -> AdamConfig {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(
            (train.weight_decay > 0.0).then(|| WeightDecayConfig::new(train.weight_decay as f32)),
        )
        .with_grad_clipping(None)
}

/// What the loop needs besides the data: the `[train]` schedule and what the model and the
/// validation read from `[model]`, `[reducer]` and `[eval]`.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// The schedule.
    pub train: TrainConfig,
    /// Seed of initialisation, data order and dropout.
    pub seed: u64,
    /// Fixed padding slots (`Some`) or dynamic padding (`None`).
    pub slots: Option<usize>,
    /// The reducer during training.
    pub reducer: ReducerConfig,
    /// Validation generation settings (its reducer is the one used at evaluation).
    pub validation: EvalSettings,
    /// Fingerprint of this run; checkpoints of other runs are not resumed.
    pub run_hash: String,
    /// Cost model for splitting a dynamically padded micro-batch over the workers.
    pub padded_cost: PaddedCost,
}

impl TrainSettings {
    /// The settings of a run of `config` with `seed`, identified by `run_hash`.
    pub fn new(config: &Config, seed: u64, run_hash: &str) -> TrainSettings {
        TrainSettings {
            train: config.train.clone(),
            seed,
            slots: config.padding_slots(),
            reducer: config.reducer.clone(),
            validation: EvalSettings::new(config, true),
            run_hash: run_hash.to_string(),
            padded_cost: PaddedCost::of(&config.model, config.quantizer.levels + 1),
        }
    }
}

/// The result of a finished run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The final state (log, best Recall@5, counters).
    pub state: TrainState,
    /// Why it ended.
    pub stop: StopReason,
    /// The micro-batch the run resumed from, if it did.
    pub resumed_from: Option<u64>,
    /// Median seconds per micro-batch in this session.
    pub median_batch_s: f64,
}

/// What the training data is: the window stream, the validation users, the catalogue.
pub struct TrainData<'a> {
    /// Micro-batches of windows.
    pub sampler: &'a WindowSampler,
    /// Validation users (all of them; `train.val_users` subsamples).
    pub valid: &'a [HeldOut],
    /// Item SIDs and the decoding trie.
    pub catalogue: &'a Catalogue,
}

/// Trains a fresh model (or resumes the checkpoint in `work`) and leaves the best model's
/// record in `work.best_model()`. The first of `devices` holds the model and the optimiser; more
/// devices share each micro-batch's forward/backward passes (data parallel).
pub fn train<B: AutodiffBackend>(
    model_cfg: &TigerConfig,
    data: &TrainData<'_>,
    settings: &TrainSettings,
    work: &WorkDir,
    devices: &[Device<B>],
) -> Result<TrainOutcome> {
    Trainer::<B>::new(model_cfg, data, settings, work, devices)?.run()
}

/// Training losses and throughput since the last `train` log row.
struct Interval {
    loss: f64,
    batches: u64,
    windows: u64,
    started: Instant,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            loss: 0.0,
            batches: 0,
            windows: 0,
            started: Instant::now(),
        }
    }
}

/// One training run in progress.
pub struct Trainer<'a, B: AutodiffBackend> {
    settings: &'a TrainSettings,
    data: &'a TrainData<'a>,
    work: &'a WorkDir,
    devices: &'a [Device<B>],
    val_users: Vec<HeldOut>,
    model: Tiger<B>,
    optim: OptimizerAdaptor<Adam, Tiger<B>, B>,
    accumulator: GradientsAccumulator<Tiger<B>>,
    state: TrainState,
    resumed_from: Option<u64>,
    session: Instant,
    wall_before: f64,
    batch_times: Vec<f64>,
    interval: Interval,
    progress: Progress,
    replicas_ready: bool,
}

impl<'a, B: AutodiffBackend> Trainer<'a, B> {
    /// A fresh model and optimiser, or the state of the checkpoint in `work` when it belongs to
    /// this run.
    pub fn new(
        model_cfg: &TigerConfig,
        data: &'a TrainData<'a>,
        settings: &'a TrainSettings,
        work: &'a WorkDir,
        devices: &'a [Device<B>],
    ) -> Result<Self> {
        let cfg = &settings.train;
        cfg.check()?;
        let device = devices.first().ok_or(Error::NoDevice)?;
        B::seed(device, mix(settings.seed, 0, 0));
        let mut trainer = Trainer {
            settings,
            data,
            work,
            devices,
            val_users: subsample(data.valid, cfg.val_users, settings.seed),
            model: Tiger::<B>::new(model_cfg, device),
            optim: optimizer(cfg).init::<B, Tiger<B>>(),
            accumulator: GradientsAccumulator::new(),
            state: TrainState::fresh(&settings.run_hash),
            resumed_from: None,
            session: Instant::now(),
            wall_before: 0.0,
            batch_times: Vec::new(),
            interval: Interval::new(),
            progress: Progress::new("train", cfg.max_batches as u64),
            replicas_ready: false,
        };
        trainer.resume()?;
        trainer.wall_before = trainer.state.wall_s;
        trainer
            .progress
            .inc(trainer.state.batch.min(cfg.max_batches as u64));
        Ok(trainer)
    }

    /// Loads the newest checkpoint of this run, if there is one.
    fn resume(&mut self) -> Result<()> {
        let Some(dir) = self.work.latest() else {
            return Ok(());
        };
        let saved = WorkDir::load_state(&dir)?;
        if saved.run_hash != self.settings.run_hash {
            eprintln!(
                "ignoring the checkpoint in {}: it belongs to another configuration",
                dir.display()
            );
            return Ok(());
        }
        let device = &self.devices[0];
        self.model = load_record(self.model.clone(), &dir.join("model.mpk"), device)?;
        let record = recorder()
            .load(dir.join("optim.mpk"), device)
            .map_err(|source| Error::Optimizer {
                action: "load",
                dir: dir.clone(),
                source,
            })?;
        self.optim = self.optim.clone().load_record(record);
        eprintln!(
            "resuming from the checkpoint at micro-batch {} ({})",
            saved.batch,
            dir.display()
        );
        self.resumed_from = Some(saved.batch);
        self.state = saved;
        Ok(())
    }

    /// Trains until [`Trainer::should_stop`] says so, validating and checkpointing on schedule.
    pub fn run(mut self) -> Result<TrainOutcome> {
        let stop = loop {
            if let Some(stop) = self.should_stop() {
                if self.state.last_validated() != Some(self.state.batch)
                    && stop != StopReason::EarlyStopping
                {
                    self.validate()?;
                }
                self.checkpoint()?;
                break stop;
            }
            self.step()?;
            let t = &self.settings.train;
            let boundary = self
                .state
                .batch
                .is_multiple_of(t.grad_accumulation.max(1) as u64);
            if boundary && self.state.batch.is_multiple_of(t.val_every.max(1) as u64) {
                self.validate()?;
                self.checkpoint()?;
            } else if boundary
                && self
                    .state
                    .batch
                    .is_multiple_of(t.checkpoint_every.max(1) as u64)
            {
                self.checkpoint()?;
            }
        };
        self.progress.finish();
        let best = self.work.best_model();
        if self.state.best_recall5.is_none() || !best.with_extension("mpk").exists() {
            save_record(&self.model.valid(), &best)?;
        }
        let mut times = std::mem::take(&mut self.batch_times);
        times.sort_by(f64::total_cmp);
        Ok(TrainOutcome {
            median_batch_s: times.get(times.len() / 2).copied().unwrap_or(0.0),
            state: self.state,
            stop,
            resumed_from: self.resumed_from,
        })
    }

    /// Why the run should end now, if it should: patience spent, the micro-batch budget done,
    /// or the time budget spent (checked in that order).
    pub fn should_stop(&self) -> Option<StopReason> {
        let t = &self.settings.train;
        let s = &self.state;
        if s.since_best >= t.patience.max(1) && s.best_recall5.is_some() {
            Some(StopReason::EarlyStopping)
        } else if t.max_batches > 0 && s.batch >= t.max_batches as u64 {
            Some(StopReason::MaxBatches)
        } else if t.max_minutes > 0.0 && self.wall() >= t.max_minutes * 60.0 {
            Some(StopReason::TimeBudget)
        } else {
            None
        }
    }

    /// Training wall time over all sessions.
    fn wall(&self) -> f64 {
        self.wall_before + self.session.elapsed().as_secs_f64()
    }

    /// One micro-batch: gradients of its windows (in chunks, over the devices) accumulated, an
    /// optimiser step at every `grad_accumulation`-th micro-batch, a log row every few. A
    /// non-finite loss stops the run with an error naming the micro-batch and the kept checkpoint.
    pub fn step(&mut self) -> Result<()> {
        let t = &self.settings.train;
        let started = Instant::now();
        let mut examples = self.data.sampler.batch(self.state.batch);
        let total = examples.len();
        let dynamic = self
            .settings
            .slots
            .is_none()
            .then_some(&self.settings.padded_cost);
        let parts = chunks(&mut examples, t.chunk_windows, self.devices.len(), dynamic);
        let grad_accumulation = t.grad_accumulation.max(1) as u64;
        let loss = ChunkLoss {
            catalogue: self.data.catalogue,
            valid_loss: t.loss == TrainLoss::Valid,
            slots: self.settings.slots,
            reducer: &self.settings.reducer,
            micro_batch: total,
            grad_accumulation,
        };
        let device = &self.devices[0];
        let seed = mix(self.settings.seed, 3, self.state.batch);
        let values = if self.devices.len() == 1 {
            B::seed(device, seed);
            accumulate_serial(&self.model, &parts, &loss, device, &mut self.accumulator)
        } else {
            if !self.replicas_ready {
                // Run the first chunk's forward on the main model as the one-device loop would
                // (same seed, same order), then fix any parameter it did not touch, before
                // forking replicas.
                B::seed(device, seed);
                drop(loss.compute(&self.model, parts[0], device));
                materialise(&self.model);
                self.replicas_ready = true;
            }
            accumulate_parallel(
                &self.model,
                &parts,
                &loss,
                self.devices,
                seed,
                &mut self.accumulator,
            )
        };
        if let Some(value) = values.iter().copied().find(|v| !v.is_finite()) {
            return Err(Error::NonFiniteLoss {
                value,
                batch: self.state.batch,
                step: self.state.step,
                lr: t.lr,
                checkpoint: self.work.describe_latest(),
            });
        }
        self.state.batch += 1;
        self.state.windows += total as u64;
        if self.state.batch.is_multiple_of(grad_accumulation) {
            let grads = std::mem::take(&mut self.accumulator).grads();
            let lr = t.lr_at(self.state.step);
            self.model = self.optim.step(lr, self.model.clone(), grads);
            self.state.step += 1;
        }
        self.batch_times.push(started.elapsed().as_secs_f64());
        self.interval.loss += values.iter().sum::<f64>();
        self.interval.batches += 1;
        self.interval.windows += total as u64;
        self.progress.inc(1);
        if self.state.batch.is_multiple_of(log_every(t)) {
            self.log_interval();
        }
        Ok(())
    }

    /// Appends a `train` row for the interval since the last one.
    fn log_interval(&mut self) {
        let secs = self.interval.started.elapsed().as_secs_f64().max(1e-9);
        let row = LogRow {
            kind: LogKind::Train,
            batch: self.state.batch,
            step: self.state.step,
            wall_s: self.wall(),
            loss: Some(self.interval.loss / self.interval.batches as f64),
            windows_per_s: Some(self.interval.windows as f64 / secs),
            recall5: None,
            recall10: None,
            ndcg5: None,
            ndcg10: None,
            val_loss: None,
        };
        self.progress.message(&format!(
            "loss {:.3}, {:.0} windows/s",
            row.loss.unwrap_or(0.0),
            row.windows_per_s.unwrap_or(0.0)
        ));
        self.state.log.push(row);
        self.interval = Interval::new();
    }

    /// Beam search on the validation users; logs a `val` row, and keeps the model as the best
    /// when its Recall@5 is the highest so far.
    pub fn validate(&mut self) -> Result<()> {
        let wall_s = self.wall();
        let started = Instant::now();
        let model = self.model.valid();
        let m = evaluate(
            &model,
            &self.val_users,
            self.data.catalogue,
            &self.settings.validation,
            &self.devices[0],
            "validate",
        )?;
        let state = &mut self.state;
        state.validation_s += started.elapsed().as_secs_f64();
        let r5 = m.recall.get(&5).copied().unwrap_or(0.0);
        state.log.push(LogRow {
            kind: LogKind::Val,
            batch: state.batch,
            step: state.step,
            wall_s,
            loss: None,
            windows_per_s: None,
            recall5: Some(r5),
            recall10: m.recall.get(&10).copied(),
            ndcg5: m.ndcg.get(&5).copied(),
            ndcg10: m.ndcg.get(&10).copied(),
            val_loss: m.loss,
        });
        let better = is_better(self.settings.train.select, state, &m);
        if better {
            state.best_recall5 = Some(r5);
            state.best_recall10 = m.recall.get(&10).copied();
            state.best_loss = m.loss;
            state.best_batch = state.batch;
            state.since_best = 0;
        } else {
            state.since_best += 1;
        }
        eprintln!(
            "validation at micro-batch {} ({} users): Recall@5 {r5:.4}, Recall@10 {:.4}, NDCG@5 {:.4}, loss {:.4}{}",
            state.batch,
            m.users,
            m.recall.get(&10).copied().unwrap_or(0.0),
            m.ndcg.get(&5).copied().unwrap_or(0.0),
            m.loss.unwrap_or(f64::NAN),
            if better { " (best)" } else { "" }
        );
        if better {
            save_record(&model, &self.work.best_model())?;
        }
        Ok(())
    }

    /// Saves a resumable checkpoint (model, optimiser, state, log).
    pub fn checkpoint(&mut self) -> Result<()> {
        self.state.wall_s = self.wall();
        let (model, optim) = (&self.model, &self.optim);
        self.work.save(&self.state, |dir| {
            save_record(model, &dir.join("model"))?;
            recorder()
                .record(optim.to_record(), dir.join("optim"))
                .map_err(|source| Error::Optimizer {
                    action: "save",
                    dir: dir.to_path_buf(),
                    source,
                })?;
            Ok(())
        })
    }
}

/// Whether validation `m` makes a better checkpoint than the best so far, as `select` says.
/// `recall10-or-loss`: Recall@10 decides when it differs from the best by more than one
/// standard error of a proportion on the validation users; within that noise, the lower
/// validation loss does.
fn is_better(select: Selection, best: &TrainState, m: &Metrics) -> bool {
    let r5 = m.recall.get(&5).copied().unwrap_or(0.0);
    match select {
        Selection::Recall5 => best.best_recall5.is_none_or(|b| r5 > b),
        Selection::Recall10OrLoss => {
            let Some(best_r10) = best.best_recall10 else {
                return true;
            };
            let r10 = m.recall.get(&10).copied().unwrap_or(0.0);
            let n = m.users.max(1) as f64;
            let p = r10.max(best_r10);
            let se = (p * (1.0 - p) / n).sqrt().max(1.0 / n);
            if (r10 - best_r10).abs() > se {
                r10 > best_r10
            } else {
                match (m.loss, best.best_loss) {
                    (Some(l), Some(b)) => l < b,
                    _ => r10 > best_r10,
                }
            }
        }
    }
}

/// Micro-batches between two `train` log rows.
fn log_every(cfg: &TrainConfig) -> u64 {
    (cfg.val_every as u64 / 8).clamp(1, 50)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn metrics(users: usize, r10: f64, loss: f64) -> Metrics {
        Metrics {
            users,
            recall: BTreeMap::from([(5, r10 / 2.0), (10, r10)]),
            ndcg: BTreeMap::new(),
            invalid_share: 0.0,
            loss: Some(loss),
            seconds: 1.0,
            users_per_s: 1.0,
        }
    }

    #[test]
    fn recall_decides_beyond_noise_and_loss_within_it() {
        let mut best = TrainState::fresh("x");
        let sel = Selection::Recall10OrLoss;
        assert!(is_better(sel, &best, &metrics(1000, 0.01, 9.0)));
        best.best_recall10 = Some(0.020);
        best.best_loss = Some(9.0);
        // One standard error at p = 0.03 on 1,000 users is 0.0054.
        assert!(is_better(sel, &best, &metrics(1000, 0.030, 9.5)));
        assert!(!is_better(sel, &best, &metrics(1000, 0.010, 8.0)));
        // Within noise: the loss decides.
        assert!(is_better(sel, &best, &metrics(1000, 0.018, 8.9)));
        assert!(!is_better(sel, &best, &metrics(1000, 0.024, 9.1)));
        // The reference rule: strictly better Recall@5.
        best.best_recall5 = Some(0.01);
        assert!(!is_better(
            Selection::Recall5,
            &best,
            &metrics(1000, 0.02, 1.0)
        ));
        assert!(is_better(
            Selection::Recall5,
            &best,
            &metrics(1000, 0.022, 99.0)
        ));
    }

    #[test]
    fn warm_up_then_inverse_square_root() {
        let t = TrainConfig {
            lr: 1e-2,
            warmup_steps: 100,
            schedule: artifacts::config::LrSchedule::InverseSqrt,
            ..TrainConfig::default()
        };
        assert!((t.lr_at(0) - 1e-4).abs() < 1e-12);
        assert!((t.lr_at(99) - 1e-2).abs() < 1e-12);
        assert!((t.lr_at(399) - 5e-3).abs() < 1e-12);
        assert_eq!(TrainConfig::default().lr_at(5000), 1e-3);
    }
}
