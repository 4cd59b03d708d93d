//! The training loop: micro-batches of windows, forward/backward (in chunks when a micro-batch is
//! large), gradient accumulation, Adam with coupled L2 weight decay, step-based validation with
//! beam-search Recall@5, early stopping with the best model kept, resumable checkpoints and a
//! NaN/inf guard.
//!
//! burn-train's `Learner` validates once per epoch with per-batch metrics; the reference
//! validates every 1,600 micro-batches of an endless stream with a generative metric (beam
//! search, Recall@5) and stops early on it. So the loop is built from burn's parts (autodiff,
//! `GradientsAccumulator`, the Adam optimiser and its record, the record-based checkpointing)
//! instead of the `Learner`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use artifacts::config::TrainConfig;
use artifacts::dataset::HeldOut;
use artifacts::progress::Progress;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::record::Recorder;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, ElementConversion, Tensor};
use evaluator::{Catalogue, EvalSettings, evaluate};
use gr_model::export::{load_record, recorder, save_record};
use gr_model::input::HistoryBatch;
use gr_model::tiger::{ReducerSpec, Tiger, TigerConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{LogRow, TrainState, WorkDir, log_csv, write_atomic};
use crate::windows::{Example, WindowSampler, mix};

/// What the loop needs besides the data.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// The schedule.
    pub train: TrainConfig,
    /// Seed of initialisation, data order and dropout.
    pub seed: u64,
    /// Fixed padding slots (`Some`) or dynamic padding (`None`).
    pub slots: Option<usize>,
    /// The reducer during training.
    pub reducer: Option<ReducerSpec>,
    /// Validation generation settings (its reducer is the one used at evaluation).
    pub validation: EvalSettings,
    /// Fingerprint of this run; checkpoints of other runs are not resumed.
    pub run_hash: String,
}

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// `patience` validations without a better Recall@5.
    EarlyStopping,
    /// `max_batches` micro-batches done.
    MaxBatches,
    /// `max_minutes` spent.
    TimeBudget,
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

/// Micro-batches between two `train` log rows.
fn log_every(cfg: &TrainConfig) -> u64 {
    (cfg.val_every as u64 / 8).clamp(1, 50)
}

/// Trains a fresh model (or resumes the checkpoint in `work`) and leaves the best model's
/// record in `work.best_model()`. The first of `devices` holds the model and the optimiser; more
/// devices share each micro-batch's forward/backward passes (data parallel).
pub fn train<B: AutodiffBackend>(
    model_cfg: &TigerConfig,
    sampler: &WindowSampler,
    valid: &[HeldOut],
    catalogue: &Catalogue,
    s: &TrainSettings,
    work: &WorkDir,
    devices: &[Device<B>],
) -> Result<TrainOutcome> {
    let cfg = &s.train;
    let device = devices
        .first()
        .context("no training device (train.devices is empty)")?;
    anyhow::ensure!(
        cfg.lr.is_finite() && cfg.lr > 0.0,
        "train.lr must be a positive finite number, got {}",
        cfg.lr
    );
    anyhow::ensure!(
        cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0,
        "train.weight_decay must be a non-negative finite number, got {}",
        cfg.weight_decay
    );
    B::seed(device, mix(s.seed, 0, 0));
    let mut model = Tiger::<B>::new(model_cfg, device);
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)),
        )
        .init::<B, Tiger<B>>();
    let mut state = TrainState {
        run_hash: s.run_hash.clone(),
        batch: 0,
        step: 0,
        best_recall5: None,
        best_batch: 0,
        since_best: 0,
        wall_s: 0.0,
        windows: 0,
        validation_s: 0.0,
        log: Vec::new(),
    };
    let mut resumed_from = None;
    if let Some(dir) = work.latest() {
        let saved = WorkDir::load_state(&dir)?;
        if saved.run_hash == s.run_hash {
            model = load_record(model, &dir.join("model.mpk"), device)?;
            let record = recorder()
                .load(dir.join("optim.mpk"), device)
                .with_context(|| format!("cannot load the optimiser state in {}", dir.display()))?;
            optim = optim.load_record(record);
            eprintln!(
                "resuming from the checkpoint at micro-batch {} ({})",
                saved.batch,
                dir.display()
            );
            resumed_from = Some(saved.batch);
            state = saved;
        } else {
            eprintln!(
                "ignoring the checkpoint in {}: it belongs to another configuration",
                dir.display()
            );
        }
    }

    let val_users = subsample(valid, cfg.val_users, s.seed);
    let grad_accumulation = cfg.grad_accumulation.max(1) as u64;
    let val_every = cfg.val_every.max(1) as u64;
    let checkpoint_every = cfg.checkpoint_every.max(1) as u64;
    let session = Instant::now();
    let wall_before = state.wall_s;
    let wall = |state_before: f64| state_before + session.elapsed().as_secs_f64();
    let mut accumulator = GradientsAccumulator::<Tiger<B>>::new();
    let mut batch_times = Vec::new();
    let (mut interval_loss, mut interval_batches, mut interval_windows) = (0.0, 0u64, 0u64);
    let mut interval_started = Instant::now();
    let mut last_validated = state
        .log
        .iter()
        .rev()
        .find(|r| r.kind == "val")
        .map(|r| r.batch);
    let mut progress = Progress::new("train", cfg.max_batches as u64);
    progress.inc(state.batch.min(cfg.max_batches as u64));

    let validate = |model: &Tiger<B>, state: &mut TrainState, wall_s: f64| -> Result<bool> {
        let started = Instant::now();
        let m = evaluate(
            &model.valid(),
            &val_users,
            catalogue,
            &s.validation,
            device,
            "validate",
        )?;
        state.validation_s += started.elapsed().as_secs_f64();
        let r5 = m.recall.get(&5).copied().unwrap_or(0.0);
        state.log.push(LogRow {
            kind: "val".into(),
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
        let better = state.best_recall5.is_none_or(|b| r5 > b);
        if better {
            state.best_recall5 = Some(r5);
            state.best_batch = state.batch;
            state.since_best = 0;
        } else {
            state.since_best += 1;
        }
        eprintln!(
            "validation at micro-batch {}: Recall@5 {r5:.4}, NDCG@5 {:.4}, loss {:.4}{}",
            state.batch,
            m.ndcg.get(&5).copied().unwrap_or(0.0),
            m.loss.unwrap_or(f64::NAN),
            if better { " (best)" } else { "" }
        );
        Ok(better)
    };

    let mut materialised = false;
    let stop = loop {
        let budget_spent = cfg.max_minutes > 0.0 && wall(wall_before) >= cfg.max_minutes * 60.0;
        let batches_done = cfg.max_batches > 0 && state.batch >= cfg.max_batches as u64;
        let early = state.since_best >= cfg.patience.max(1) && state.best_recall5.is_some();
        if budget_spent || batches_done || early {
            if last_validated != Some(state.batch) && !early {
                let w = wall(wall_before);
                if validate(&model, &mut state, w)? {
                    save_record(&model.valid(), &work.best_model())?;
                }
            }
            state.wall_s = wall(wall_before);
            save_checkpoint(work, &state, &model, &optim)?;
            break if early {
                StopReason::EarlyStopping
            } else if batches_done {
                StopReason::MaxBatches
            } else {
                StopReason::TimeBudget
            };
        }

        let started = Instant::now();
        let mut examples = sampler.batch(state.batch);
        if s.slots.is_none() && cfg.chunk_windows > 0 {
            // Dynamic padding: chunks of similar length pad little (the gradient is the same sum).
            examples.sort_by_key(|e| e.history.len());
        }
        let total = examples.len();
        // Chunks: `chunk_windows` each; with several devices and no chunking, one per device.
        let chunk = match (cfg.chunk_windows, devices.len()) {
            (0, 1) => total,
            (0, n) => total.div_ceil(n),
            (c, _) => c,
        };
        let parts: Vec<&[Example]> = examples.chunks(chunk.max(1)).collect();
        let scale = 1.0 / total as f64 / grad_accumulation as f64;
        let chunk_loss = |model: &Tiger<B>, part: &[Example], device: &Device<B>| {
            let histories: Vec<&[u32]> = part.iter().map(|e| e.history.as_slice()).collect();
            let targets: Vec<u32> = part.iter().map(|e| e.target).collect();
            let batch = HistoryBatch::<B>::new(
                &histories,
                Some(&targets),
                &catalogue.table,
                s.slots,
                device,
            );
            // The micro-batch loss is the mean over all its windows; accumulation divides by
            // the number of micro-batches per step (as Lightning).
            let loss = model
                .batch_loss(batch, s.reducer.as_ref())
                .mul_scalar(part.len() as f64 * scale);
            let value =
                f64::from(loss.clone().into_scalar().elem::<f32>()) * grad_accumulation as f64;
            (loss, value)
        };
        let mut values = vec![0.0; parts.len()];
        if devices.len() == 1 {
            B::seed(device, mix(s.seed, 3, state.batch));
            for (i, part) in parts.iter().enumerate() {
                let (loss, value) = chunk_loss(&model, part, device);
                values[i] = value;
                if !value.is_finite() {
                    break;
                }
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                accumulator.accumulate(&model, grads);
            }
        } else {
            if !materialised {
                // burn initialises parameters lazily, at first use, and a clone of an
                // uninitialised parameter draws its own values: run the first chunk's forward
                // on the main model as the one-device loop would (same seed, same order), then
                // fix any parameter it did not touch, before forking replicas.
                B::seed(device, mix(s.seed, 3, state.batch));
                drop(chunk_loss(&model, parts[0], device));
                model.visit(&mut Materialise);
                materialised = true;
            }
            // Data parallel: chunk i goes to device i mod n; each device sums its chunks'
            // gradients on its own replica; the sums move to the first device.
            let results = std::thread::scope(|scope| {
                let workers: Vec<_> = devices
                    .iter()
                    .enumerate()
                    .map(|(d, dev)| {
                        let replica = model.clone().fork(dev);
                        let mine: Vec<(usize, &[Example])> = parts
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| i % devices.len() == d)
                            .map(|(i, p)| (i, *p))
                            .collect();
                        let chunk_loss = &chunk_loss;
                        let seed = mix(s.seed, 3, state.batch) ^ d as u64;
                        scope.spawn(move || {
                            B::seed(dev, seed);
                            let mut acc = GradientsAccumulator::<Tiger<B>>::new();
                            let mut values = Vec::new();
                            for (i, part) in mine {
                                let (loss, value) = chunk_loss(&replica, part, dev);
                                values.push((i, value));
                                if !value.is_finite() {
                                    break;
                                }
                                let grads = GradientsParams::from_grads(loss.backward(), &replica);
                                acc.accumulate(&replica, grads);
                            }
                            (values, acc.grads())
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("a training worker panicked"))
                    .collect::<Vec<_>>()
            });
            for (chunk_values, grads) in results {
                for (i, v) in chunk_values {
                    values[i] = v;
                }
                accumulator.accumulate(&model, grads.to_device(device, &model));
            }
        }
        if let Some(value) = values.iter().copied().find(|v| !v.is_finite()) {
            let kept = work
                .latest()
                .map(|d| {
                    format!(
                        "the last good checkpoint (micro-batch {}) is kept in {}",
                        WorkDir::load_state(&d).map(|s| s.batch).unwrap_or(0),
                        d.display()
                    )
                })
                .unwrap_or_else(|| "no checkpoint was written yet".into());
            bail!(
                "training loss is {value} (not finite) at micro-batch {}, optimiser step {}; \
                 stopping: {kept}. Check train.lr (= {}) and the input data.",
                state.batch,
                state.step,
                cfg.lr
            );
        }
        let batch_loss: f64 = values.iter().sum();
        state.batch += 1;
        state.windows += total as u64;
        if state.batch.is_multiple_of(grad_accumulation) {
            model = optim.step(cfg.lr, model, accumulator.grads());
            state.step += 1;
        }
        batch_times.push(started.elapsed().as_secs_f64());
        interval_loss += batch_loss;
        interval_batches += 1;
        interval_windows += total as u64;
        progress.inc(1);
        if state.batch.is_multiple_of(log_every(cfg)) {
            let secs = interval_started.elapsed().as_secs_f64().max(1e-9);
            let row = LogRow {
                kind: "train".into(),
                batch: state.batch,
                step: state.step,
                wall_s: wall(wall_before),
                loss: Some(interval_loss / interval_batches as f64),
                windows_per_s: Some(interval_windows as f64 / secs),
                recall5: None,
                recall10: None,
                ndcg5: None,
                ndcg10: None,
                val_loss: None,
            };
            progress.message(&format!(
                "loss {:.3}, {:.0} windows/s",
                row.loss.unwrap_or(0.0),
                row.windows_per_s.unwrap_or(0.0)
            ));
            state.log.push(row);
            (interval_loss, interval_batches, interval_windows) = (0.0, 0, 0);
            interval_started = Instant::now();
        }
        let at_step_boundary = state.batch.is_multiple_of(grad_accumulation);
        if state.batch.is_multiple_of(val_every) && at_step_boundary {
            let w = wall(wall_before);
            if validate(&model, &mut state, w)? {
                save_record(&model.valid(), &work.best_model())?;
            }
            last_validated = Some(state.batch);
            state.wall_s = wall(wall_before);
            save_checkpoint(work, &state, &model, &optim)?;
        } else if state.batch.is_multiple_of(checkpoint_every) && at_step_boundary {
            state.wall_s = wall(wall_before);
            save_checkpoint(work, &state, &model, &optim)?;
        }
    };
    progress.finish();
    if state.best_recall5.is_none() || !work.best_model().with_extension("mpk").exists() {
        save_record(&model.valid(), &work.best_model())?;
    }
    batch_times.sort_by(f64::total_cmp);
    let median_batch_s = batch_times
        .get(batch_times.len() / 2)
        .copied()
        .unwrap_or(0.0);
    Ok(TrainOutcome {
        state,
        stop,
        resumed_from,
        median_batch_s,
    })
}

/// Gives every lazily initialised parameter its value now.
struct Materialise;

impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

fn save_checkpoint<B: AutodiffBackend, O: Optimizer<Tiger<B>, B>>(
    work: &WorkDir,
    state: &TrainState,
    model: &Tiger<B>,
    optim: &O,
) -> Result<()> {
    work.save(state, |dir| {
        save_record(model, &dir.join("model"))?;
        recorder()
            .record(optim.to_record(), dir.join("optim"))
            .context("cannot save the optimiser state")?;
        Ok(())
    })?;
    write_atomic(
        &work.root.join("train_log.csv"),
        log_csv(&state.log).as_bytes(),
    )
}

/// A fixed seeded subsample of `n` users (all when `n` is 0 or at least their number), in
/// their original order.
pub fn subsample(users: &[HeldOut], n: usize, seed: u64) -> Vec<HeldOut> {
    if n == 0 || n >= users.len() {
        return users.to_vec();
    }
    let mut idx: Vec<usize> = (0..users.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, 4, 0)));
    let mut idx = idx[..n].to_vec();
    idx.sort_unstable();
    idx.into_iter().map(|i| users[i].clone()).collect()
}
