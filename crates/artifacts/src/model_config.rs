//! The configuration sections of the model, the token reducer, training and evaluation
//! (`[model]`, `[reducer]`, `[train]`, `[eval]`). Defaults are the reference pipeline's values
//! (reference §4, §5, §6, §7); the `quick` profile overrides budgets only.

use std::fmt;

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

/// `[model]`: the TIGER encoder-decoder's shape (reference §4).
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

/// Which token reducer runs inside the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReducerName {
    /// No reduction (TIGER).
    #[default]
    None,
    /// Attention received × L1 norm (the paper).
    Rastp,
    /// L2 norm of the hidden state.
    L2,
    /// Max-pooling of consecutive tokens.
    MaxPool,
    /// Average-pooling of consecutive tokens.
    AvgPool,
    /// RASTP keeping the smallest set holding `reducer.mass` of the importance.
    RastpAdaptive,
}

impl fmt::Display for ReducerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReducerName::None => "none",
            ReducerName::Rastp => "rastp",
            ReducerName::L2 => "l2",
            ReducerName::MaxPool => "max-pool",
            ReducerName::AvgPool => "avg-pool",
            ReducerName::RastpAdaptive => "rastp-adaptive",
        })
    }
}

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

/// `[reducer]`: token reduction inside the encoder (reference §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReducerConfig {
    /// `none`, `rastp`, `l2`, `max-pool`, `avg-pool`, `rastp-adaptive`.
    pub kind: ReducerName,
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
            kind: ReducerName::None,
            after_layer: 2,
            keep_ratio: 1.0 / 3.0,
            mass: 0.9,
            at_eval: true,
            position_bias: PositionBias::None,
            keep_basis: KeepBasis::Padded,
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

/// `[train]`: the training schedule (reference §1.2, §5).
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

/// `[eval]`: generation and metrics (reference §6).
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
