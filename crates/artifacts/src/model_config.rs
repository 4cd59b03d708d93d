//! The configuration sections of the model, the token reducer, training and evaluation
//! (`[model]`, `[reducer]`, `[train]`, `[eval]`). Defaults are the reference pipeline's values
//! (docs/reference.md §4, §5, §6, §7); the `quick` profile overrides budgets only.

use crate::error::{Error, Result};

/// `ensure!` for [`Error::InvalidConfig`]: fails with `key` and the formatted message unless `cond`.
macro_rules! check {
    ($cond:expr, $key:literal, $($fmt:tt)+) => {
        if !$cond {
            return Err(Error::InvalidConfig {
                key: $key,
                message: format!($($fmt)+),
            });
        }
    };
}
use serde::{Deserialize, Serialize};

/// How encoder inputs are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// Every input padded to `max_history + 1` item slots (the reference: 30 × 5 = 150 positions).
    #[default]
    Fixed,
    /// Padded to the longest history in the batch.
    Dynamic,
}

/// `[model]`: the TIGER encoder-decoder's shape (docs/reference.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of one head.
    pub d_kv: usize,
    /// MLP width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub encoder_layers: usize,
    /// Decoder blocks.
    pub decoder_layers: usize,
    /// Dropout probability.
    pub dropout: f64,
    /// Relative position buckets.
    pub num_buckets: usize,
    /// Largest distance the buckets resolve.
    pub max_distance: usize,
    /// `fixed` (reference: 150 positions) or `dynamic` (longest history in the batch).
    pub padding: Padding,
    /// `none` (reference) or `popularity`: the log-frequency of each digit among the training
    /// split's items that share the prefix, `log P_pop(digit | prefix)`, is added to the
    /// logits of the valid digits, so the model starts as the most-popular list and learns the
    /// rest (needs `train.loss = "valid"` and `eval.renormalize = true`).
    pub prior: Prior,
    /// Tie each level's output head to that level's rows of the SID embedding table (logits =
    /// `d_model^-0.5 · state · E_levelᵀ`, T5's tied `lm_head`) instead of a separate head per level
    /// (the reference). A digit seen in the history then starts close to its own logit, so the
    /// model learns to follow the codes of recent items from few windows.
    pub tie_heads: bool,
}

/// A fixed prior added to the model's per-level logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// No prior (the reference).
    #[default]
    None,
    /// `log P_pop(digit | prefix)` from the training split's item counts.
    Popularity,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            d_model: 128,
            num_heads: 6,
            d_kv: 64,
            d_ff: 1024,
            encoder_layers: 4,
            decoder_layers: 4,
            dropout: 0.15,
            num_buckets: 32,
            max_distance: 128,
            padding: Padding::Fixed,
            prior: Prior::None,
            tie_heads: false,
        }
    }
}

/// Which token reducer runs inside the encoder: the `rastp` crate's own enum (`none`, `rastp`,
/// `l2`, `max-pool`, `avg-pool`, `rastp-adaptive`), so there is one name for each reducer.
pub use rastp::ReducerKind;

/// What the encoder blocks after a reduction use as position bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PositionBias {
    /// No position bias after the cut (the reference).
    #[default]
    None,
    /// The bias of the shortened sequence's own positions `0..k`.
    Recompute,
    /// The bias of the kept tokens' original positions (pooling: window starts).
    Gather,
}

/// What the keep ratio is a share of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeepBasis {
    /// The reference's count whatever the padding: `min(L, ⌊reference_len · ratio⌋)` of the
    /// padded length `L`, where `reference_len` is the fixed padding's length (150). Under fixed
    /// padding this is `padded`; under dynamic padding it keeps the tokens the reference keeps
    /// (a history of ≤ 10 items is never cut).
    #[default]
    Reference,
    /// The padded length of the batch or chunk (`max(1, int(L/3))` of whatever `L` is).
    Padded,
    /// Each sequence's real length (the paper's ρ).
    Valid,
}

/// `[reducer]`: token reduction inside the encoder (docs/reference.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReducerConfig {
    /// `none`, `rastp`, `l2`, `max-pool`, `avg-pool`, `rastp-adaptive`.
    pub kind: ReducerKind,
    /// Reduce after this encoder layer (1-based; the reference: 2 of 4).
    pub after_layer: usize,
    /// Share of tokens kept by the fixed-count reducers (the reference: 1/3).
    pub keep_ratio: f64,
    /// `rastp-adaptive`: share of the total importance the kept tokens hold.
    pub mass: f64,
    /// Reduce during validation and test too (the reference: yes).
    pub at_eval: bool,
    /// Position bias after the cut: `none` (reference), `recompute`, `gather`.
    pub position_bias: PositionBias,
    /// What the keep ratio is a share of: `reference` (the fixed padding's length, capped at
    /// the batch's), `padded` (the batch's padded length) or `valid` (each sequence's length).
    pub keep_basis: KeepBasis,
    /// The fixed padding's length in tokens, `(max_history + 1) · (levels + 1)` (150 for the
    /// reference), derived from `[data]` and `[quantizer]` when the configuration is loaded.
    #[serde(skip)]
    pub reference_len: usize,
}

impl Default for ReducerConfig {
    fn default() -> Self {
        ReducerConfig {
            kind: ReducerKind::None,
            after_layer: 2,
            keep_ratio: 1.0 / 3.0,
            mass: 0.9,
            at_eval: true,
            position_bias: PositionBias::None,
            keep_basis: KeepBasis::Reference,
            reference_len: 150,
        }
    }
}

impl ReducerConfig {
    /// No reduction (the full encoder).
    pub fn none() -> ReducerConfig {
        ReducerConfig {
            kind: ReducerKind::None,
            ..ReducerConfig::default()
        }
    }

    /// The reference's RASTP: after layer 2, a third of the padded length, no bias afterwards.
    pub fn reference(kind: ReducerKind) -> ReducerConfig {
        ReducerConfig {
            kind,
            ..ReducerConfig::default()
        }
    }

    /// True when tokens are reduced.
    pub fn is_active(&self) -> bool {
        self.kind != ReducerKind::None
    }

    /// Checks the values against a model with `encoder_layers` encoder blocks.
    pub fn check(&self, encoder_layers: usize) -> Result<()> {
        if !self.is_active() {
            return Ok(());
        }
        check!(
            (1..encoder_layers).contains(&self.after_layer),
            "reducer.after_layer",
            "reducer.after_layer must be between 1 and {} (the model has {encoder_layers} encoder \
             layers and a reduction after the last one prunes nothing the encoder uses), got {}",
            encoder_layers.saturating_sub(1),
            self.after_layer
        );
        check!(
            self.keep_ratio > 0.0 && self.keep_ratio <= 1.0,
            "reducer.keep_ratio",
            "reducer.keep_ratio must be in (0, 1], got {}",
            self.keep_ratio
        );
        check!(
            self.mass > 0.0 && self.mass <= 1.0,
            "reducer.mass",
            "reducer.mass must be in (0, 1], got {}",
            self.mass
        );
        Ok(())
    }

    /// What identifies a run's reducer (for fingerprints): nothing but the kind for `none`.
    pub fn identity(&self) -> serde_json::Value {
        if self.is_active() {
            serde_json::to_value(self).expect("serialisable")
        } else {
            serde_json::json!({ "kind": "none" })
        }
    }
}

/// How a micro-batch's windows are subsampled when there are more than `max_windows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WindowSampling {
    /// `max_windows` draws with replacement, duplicates dropped, enumeration order kept (reference).
    #[default]
    Replacement,
    /// `max_windows` distinct windows drawn uniformly, enumeration order kept.
    Uniform,
}

/// Which windows of a user's training sequence are examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WindowStarts {
    /// Every contiguous window of ≥ 2 items (the reference: k(k−1)/2 per user).
    #[default]
    All,
    /// Only windows starting at the sequence's first item: one example per target, with the
    /// longest history (k−1 per user; the shorter windows repeat the same targets).
    Prefix,
}

/// The training objective per SID level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TrainLoss {
    /// Cross-entropy over all codes of the level (the reference).
    #[default]
    Full,
    /// Cross-entropy over the digits that continue the target's prefix to a real item (the
    /// decoding trie's choices): the model learns only the choices it is asked to make.
    Valid,
}

/// How the learning rate moves over the optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// `lr` throughout (after the warm-up; the reference).
    #[default]
    Constant,
    /// `lr · sqrt(warmup / step)` after the warm-up.
    InverseSqrt,
}

/// Which validation result makes a checkpoint the best one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The highest Recall@5 (the reference).
    #[default]
    Recall5,
    /// Recall@10 when it differs from the best by more than one standard error on the
    /// validation users; within that noise, the lower validation loss.
    Recall10OrLoss,
}

/// `[train]`: the training schedule (docs/reference.md §1.2, §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Users per micro-batch (each expanded to all its windows of ≥ 2 items).
    pub users_per_batch: usize,
    /// Most windows per micro-batch.
    pub max_windows: usize,
    /// `replacement` (reference) or `uniform`.
    pub window_sampling: WindowSampling,
    /// `all` windows (reference) or only `prefix` windows (one per target).
    pub windows: WindowStarts,
    /// Windows per forward pass inside a micro-batch (memory bound; 0 = all at once). The gradient
    /// is the same either way.
    pub chunk_windows: usize,
    /// Micro-batches per optimiser step.
    pub grad_accumulation: usize,
    /// Adam learning rate (the peak, with a warm-up or schedule).
    pub lr: f64,
    /// `full` (reference) or `valid`: the digits each level's cross-entropy is taken over.
    pub loss: TrainLoss,
    /// Optimiser steps of linear learning-rate warm-up (0 = none).
    pub warmup_steps: usize,
    /// `constant` (reference) or `inverse-sqrt` after the warm-up.
    pub schedule: LrSchedule,
    /// Which validation decides the best checkpoint and early stopping.
    pub select: Selection,
    /// Coupled L2 weight decay (Adam, not AdamW).
    pub weight_decay: f64,
    /// Validate every this many micro-batches.
    pub val_every: usize,
    /// Stop after this many validations without a better Recall@5.
    pub patience: usize,
    /// Validation users (0 = all; otherwise a fixed seeded subsample).
    pub val_users: usize,
    /// Most micro-batches (0 = unbounded; early stopping ends the run).
    pub max_batches: usize,
    /// Wall-clock budget in minutes (0 = none); the run validates and stops when it is spent.
    pub max_minutes: f64,
    /// Save a resumable checkpoint every this many micro-batches (and at every validation).
    pub checkpoint_every: usize,
    /// Devices to train on, by index (`[0, 1, 2, 3]`: four GPUs under `--features cuda`).
    /// With more than one, each micro-batch's chunks are spread over the devices (data
    /// parallel: a model replica per device, gradients summed on the first, where the optimiser
    /// runs — burn-train's multi-device strategy). Not part of a run's identity: the result is
    /// the same sum up to floating-point order.
    pub devices: Vec<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            users_per_batch: 32,
            max_windows: 512,
            window_sampling: WindowSampling::Replacement,
            windows: WindowStarts::All,
            chunk_windows: 0,
            grad_accumulation: 16,
            lr: 1e-3,
            loss: TrainLoss::Full,
            warmup_steps: 0,
            schedule: LrSchedule::Constant,
            select: Selection::Recall5,
            weight_decay: 1e-4,
            val_every: 1600,
            patience: 10,
            val_users: 0,
            max_batches: 0,
            max_minutes: 0.0,
            checkpoint_every: 200,
            devices: vec![0],
        }
    }
}

impl TrainConfig {
    /// Checks the values that have no meaning out of range.
    pub fn check(&self) -> Result<()> {
        check!(
            self.lr.is_finite() && self.lr > 0.0,
            "train.lr",
            "train.lr must be a positive finite number, got {}",
            self.lr
        );
        check!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "train.weight_decay",
            "train.weight_decay must be a non-negative finite number, got {}",
            self.weight_decay
        );
        check!(
            !self.devices.is_empty(),
            "train.devices",
            "train.devices is empty: name at least one device (e.g. [0])"
        );
        check!(
            self.schedule == LrSchedule::Constant || self.warmup_steps > 0,
            "train.warmup_steps",
            "train.schedule = \"inverse-sqrt\" needs train.warmup_steps > 0 (the step the decay starts from)"
        );
        Ok(())
    }

    /// The learning rate of optimiser step `step` (0-based): linear warm-up over
    /// `warmup_steps`, then `lr` or its inverse-square-root decay.
    pub fn lr_at(&self, step: u64) -> f64 {
        let w = self.warmup_steps as f64;
        let t = step as f64 + 1.0;
        let warm = if w > 0.0 { (t / w).min(1.0) } else { 1.0 };
        let decay = match self.schedule {
            LrSchedule::Constant => 1.0,
            LrSchedule::InverseSqrt => (w.max(1.0) / t.max(w)).sqrt(),
        };
        self.lr * warm * decay
    }

    /// `all` or the number of validation users, for reports.
    pub fn val_users_text(&self) -> String {
        if self.val_users == 0 {
            "all".to_string()
        } else {
            self.val_users.to_string()
        }
    }

    /// The run's budgets as `, at most N micro-batches, at most M minutes` (empty when
    /// unbounded), for logs and reports.
    pub fn limits_text(&self) -> String {
        let mut out = String::new();
        if self.max_batches > 0 {
            out.push_str(&format!(", at most {} micro-batches", self.max_batches));
        }
        if self.max_minutes > 0.0 {
            out.push_str(&format!(", at most {} minutes", self.max_minutes));
        }
        out
    }

    /// `[train]` without the keys that do not change what is learned (`devices`), for fingerprints.
    pub fn identity(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("serialisable");
        if let Some(map) = v.as_object_mut() {
            map.remove("devices");
        }
        v
    }
}

/// `[eval]`: generation and metrics (docs/reference.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Beam width.
    pub beam_width: usize,
    /// Restrict every decoding step to prefixes of real items (the reference: no).
    pub constrained: bool,
    /// With `constrained`: score each step with the softmax over the valid digits only (what a
    /// model trained with `train.loss = "valid"` predicts), instead of the full softmax.
    pub renormalize: bool,
    /// Users per beam-search batch.
    pub batch_users: usize,
    /// Cut-offs of Recall@K and NDCG@K.
    pub ks: Vec<usize>,
    /// Test users evaluated (0 = all; otherwise a fixed seeded subsample).
    pub test_users: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            beam_width: 10,
            constrained: false,
            renormalize: false,
            batch_users: 128,
            ks: vec![5, 10],
            test_users: 0,
        }
    }
}
