//! The configuration sections of the model, the token reducer, training and evaluation
//! (`[model]`, `[reducer]`, `[train]`, `[eval]`). Defaults are the reference pipeline's values
//! (docs/reference.md §4, §5, §6, §7); the `quick` profile overrides budgets only.

use anyhow::{Result, ensure};
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
    /// The padded length (the reference: `max(1, int(L/3))` of 150).
    #[default]
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
    /// Keep ratio of the `padded` length (reference) or of each sequence's `valid` length.
    pub keep_basis: KeepBasis,
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
            keep_basis: KeepBasis::Padded,
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
        ensure!(
            (1..encoder_layers).contains(&self.after_layer),
            "reducer.after_layer must be between 1 and {} (the model has {encoder_layers} encoder \
             layers and a reduction after the last one prunes nothing the encoder uses), got {}",
            encoder_layers.saturating_sub(1),
            self.after_layer
        );
        ensure!(
            self.keep_ratio > 0.0 && self.keep_ratio <= 1.0,
            "reducer.keep_ratio must be in (0, 1], got {}",
            self.keep_ratio
        );
        ensure!(
            self.mass > 0.0 && self.mass <= 1.0,
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
    /// Adam learning rate.
    pub lr: f64,
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
        ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            "train.lr must be a positive finite number, got {}",
            self.lr
        );
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "train.weight_decay must be a non-negative finite number, got {}",
            self.weight_decay
        );
        ensure!(
            !self.devices.is_empty(),
            "train.devices is empty: name at least one device (e.g. [0])"
        );
        Ok(())
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
            batch_users: 128,
            ks: vec![5, 10],
            test_users: 0,
        }
    }
}
