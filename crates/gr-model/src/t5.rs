//! T5 building blocks with Hugging Face numerics (transformers' `modeling_t5.py`):
//! RMS norm without mean or bias (eps 1e-6), pre-norm residual blocks, attention without
//! 1/sqrt(d) scaling and without q/k/v/o bias, softmax in f32, bucketed relative position bias
//! computed by the first block and shared by the later ones. Hugging Face checkpoints load through
//! one name table ([`T5_ENCODER_NAMES`], [`T5Encoder::from_safetensors`]).

use std::path::Path;

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::activation::{gelu_approximate, relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::weights::{NameTable, load_safetensors};

/// The Hugging Face `T5Config` fields these blocks use (`config.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct T5Config {
    /// Vocabulary size of the token embedding.
    pub vocab_size: usize,
    /// Model width.
    pub d_model: usize,
    /// Width of one attention head.
    pub d_kv: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Relative position buckets.
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Largest distance the buckets resolve.
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    /// RMS norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// `relu` (T5 1.0) or `gated-gelu` (T5 1.1, Flan-T5).
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
}

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}

/// T5's relative position bucket of `relative_position = key_pos − query_pos` (computed in f32
/// exactly as transformers does, so bucket boundaries agree).
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let mut rp = relative_position;
    if bidirectional {
        num_buckets /= 2;
        if rp > 0 {
            bucket += num_buckets;
        }
        rp = rp.abs();
    } else {
        rp = -rp.min(0);
    }
    let max_exact = num_buckets / 2;
    if rp < max_exact {
        bucket += rp;
    } else {
        let scaled = ((rp as f32 / max_exact as f32).ln()
            / (max_distance as f32 / max_exact as f32).ln()
            * (num_buckets - max_exact) as f32) as i64;
        bucket += (max_exact + scaled).min(num_buckets - 1);
    }
    bucket as usize
}

/// Additive attention mask `[batch, 1, 1, keys]` from a 0/1 key mask: 0 where kept, −∞ where
/// masked.
///
/// Transformers adds `finfo.min` instead; after softmax both give exactly 0 for a masked key, but
/// `exp` of a large finite negative number takes glibc's slow underflow path (it sets `errno`),
/// which was a tenth of the CPU training time (docs/benchmarks.md, "Speed, round 4"), while
/// `exp(−∞)` returns 0 at once. A row without any key (an empty padding row) keeps 0 everywhere,
/// so its softmax is uniform instead of NaN — the finite mask's behaviour.
pub fn additive_mask<B: Backend>(mask: Tensor<B, 2>) -> Tensor<B, 4> {
    let [b, k] = mask.dims();
    let empty_row = mask.clone().sum_dim(1).lower_equal_elem(0.0).expand([b, k]);
    let masked = mask
        .clone()
        .lower_equal_elem(0.0)
        .bool_and(empty_row.bool_not());
    mask.zeros_like()
        .mask_fill(masked, f32::NEG_INFINITY)
        .reshape([b, 1, 1, k])
}

/// Applies `linear` to `[b, l, d_in]` as one `[b·l, d_in] × [d_in, d_out]` product: CPU backends
/// run a single large matrix multiply instead of `b` small broadcast ones (several times faster).
pub fn linear_3d<B: Backend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, l, d] = x.dims();
    let y = linear.forward(x.reshape([b * l, d]));
    let d_out = y.dims()[1];
    y.reshape([b, l, d_out])
}

/// T5 attention (self or cross), optionally owning the relative position bias table.
#[derive(Module, Debug)]
pub struct T5Attention<B: Backend> {
    /// Query projection, no bias.
    pub q: Linear<B>,
    /// Key projection, no bias.
    pub k: Linear<B>,
    /// Value projection, no bias.
    pub v: Linear<B>,
    /// Output projection, no bias.
    pub o: Linear<B>,
    /// `[buckets, heads]`, only in the first block of a stack.
    pub relative_attention_bias: Option<Embedding<B>>,
    /// Heads.
    pub n_heads: usize,
    /// Head width.
    pub d_kv: usize,
    /// Encoder (true) or causal decoder (false) buckets.
    pub bidirectional: bool,
    /// Bucket count.
    pub num_buckets: usize,
    /// Largest resolved distance.
    pub max_distance: usize,
    /// Dropout on the attention probabilities (as transformers; 0 for inference).
    pub dropout: Dropout,
}

impl<B: Backend> T5Attention<B> {
    /// A freshly initialised attention (PyTorch defaults: Linear U(±1/√fan_in), bias table N(0, 1)).
    pub fn new(
        cfg: &T5Config,
        has_bias: bool,
        bidirectional: bool,
        dropout: f64,
        device: &Device<B>,
    ) -> Self {
        let inner = cfg.num_heads * cfg.d_kv;
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        T5Attention {
            q: lin(cfg.d_model, inner),
            k: lin(cfg.d_model, inner),
            v: lin(cfg.d_model, inner),
            o: lin(inner, cfg.d_model),
            relative_attention_bias: has_bias.then(|| {
                EmbeddingConfig::new(cfg.relative_attention_num_buckets, cfg.num_heads).init(device)
            }),
            n_heads: cfg.num_heads,
            d_kv: cfg.d_kv,
            bidirectional,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// The same attention with dropout `p` on its probabilities.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = DropoutConfig::new(p).init();
        self
    }

    /// Relative position bias `[1, heads, q_len, k_len]`; zeros when this block has no table.
    pub fn compute_bias(&self, q_len: usize, k_len: usize, device: &Device<B>) -> Tensor<B, 4> {
        let Some(table) = &self.relative_attention_bias else {
            return Tensor::zeros([1, self.n_heads, q_len, k_len], device);
        };
        let buckets: Vec<i64> = (0..q_len)
            .flat_map(|q| {
                (0..k_len).map(move |k| {
                    relative_position_bucket(
                        k as i64 - q as i64,
                        self.bidirectional,
                        self.num_buckets,
                        self.max_distance,
                    ) as i64
                })
            })
            .collect();
        let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(buckets, [q_len, k_len]), device);
        table.forward(idx).permute([2, 0, 1]).unsqueeze_dim(0)
    }

    /// Relative position bias `[b, heads, k, k]` between the original `positions[r]` of each
    /// row's tokens (after a reduction); zeros when this block has no table.
    pub fn compute_bias_at(&self, positions: &[Vec<usize>], device: &Device<B>) -> Tensor<B, 4> {
        let b = positions.len();
        let k = positions.first().map_or(0, Vec::len);
        let Some(table) = &self.relative_attention_bias else {
            return Tensor::zeros([b, self.n_heads, k, k], device);
        };
        let buckets: Vec<i64> = positions
            .iter()
            .flat_map(|row| {
                row.iter().flat_map(move |&q| {
                    row.iter().map(move |&key| {
                        relative_position_bucket(
                            key as i64 - q as i64,
                            self.bidirectional,
                            self.num_buckets,
                            self.max_distance,
                        ) as i64
                    })
                })
            })
            .collect();
        let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(buckets, [b * k, k]), device);
        table
            .forward(idx)
            .reshape([b, k, k, self.n_heads])
            .permute([0, 3, 1, 2])
    }

    /// Attention of `x` `[b, q, d]` over `kv` (`x` itself when `None`) with the additive `bias`
    /// (position bias + mask, broadcastable to `[b, heads, q, k]`). Returns the output
    /// `[b, q, d]` and the attention probabilities `[b, heads, q, k]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        kv: Option<Tensor<B, 3>>,
        bias: Tensor<B, 4>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let kv = kv.unwrap_or_else(|| x.clone());
        let q = self.project_q(x);
        let (k, v) = self.project_kv(kv);
        self.attend(q, k, v, bias)
    }

    /// Splits `[b, l, heads·d_kv]` into heads, `[b, heads, l, d_kv]`.
    fn split_heads(&self, t: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, l, _] = t.dims();
        t.reshape([b, l, self.n_heads, self.d_kv]).swap_dims(1, 2)
    }

    /// Keys and values of `kv` `[b, l, d]`, each `[b, heads, l, d_kv]` (what a cache holds).
    pub fn project_kv(&self, kv: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (
            self.split_heads(linear_3d(&self.k, kv.clone())),
            self.split_heads(linear_3d(&self.v, kv)),
        )
    }

    /// Queries of `x` `[b, q, d]`, `[b, heads, q, d_kv]`.
    pub fn project_q(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        self.split_heads(linear_3d(&self.q, x))
    }

    /// Attention of `x` `[b·g, 1, d]` — `g` consecutive rows per group, e.g. the beams of one
    /// user — over per-group keys/values `[b, heads, l, d_kv]` with the additive `bias`
    /// (broadcastable to `[b, heads, g, l]`). The group's rows are the query rows of one product,
    /// so keys and values are neither copied per row nor multiplied in `g` thin products.
    pub fn attend_grouped(
        &self,
        x: Tensor<B, 3>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        bias: Tensor<B, 4>,
        group: usize,
    ) -> Tensor<B, 3> {
        let [n, _, _] = x.dims();
        let b = n / group;
        let q = linear_3d(&self.q, x)
            .reshape([b, group, self.n_heads, self.d_kv])
            .swap_dims(1, 2);
        let (ctx, _) = self.attend_heads(q, k, v, bias);
        linear_3d(&self.o, ctx.reshape([n, 1, self.n_heads * self.d_kv]))
    }

    /// Attention of projected queries over projected keys/values with the additive `bias`;
    /// dropout (training) acts on the probabilities, which are returned as used (as
    /// transformers' `output_attentions`).
    pub fn attend(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        bias: Tensor<B, 4>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let [b, _, q_len, _] = q.dims();
        let (ctx, probs) = self.attend_heads(q, k, v, bias);
        let ctx = ctx.reshape([b, q_len, self.n_heads * self.d_kv]);
        (linear_3d(&self.o, ctx), probs)
    }

    /// The heads' contexts `[b, q, heads, d_kv]` and probabilities `[b, heads, q, k]`.
    ///
    /// A single query row (`q == 1`: a cached decoding step, a beam search's first step) is
    /// scored as broadcast products summed over one axis rather than as one-row matrix products:
    /// on the CPU a one-row product's per-call cost dominates at beam-search sizes, and on
    /// burn-cubecl (wgpu, CUDA) the autotuner may pick its vector-matrix kernel for a key length
    /// that kernel cannot run — for a transposed key matrix its tune key does not record whether
    /// the number of keys is a multiple of the plane size, so a kernel chosen for 64 keys is
    /// reused for RASTP's 50 and the launch fails (burn 0.21 / cubek-matmul 0.2).
    fn attend_heads(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        bias: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        // The CPU backend runs the whole attention as one kernel (forward and backward) unless
        // dropout acts on the probabilities.
        if (self.dropout.prob == 0.0 || !B::ad_enabled(&q.device()))
            && let Some(out) = crate::host_attention::try_attend(&q, &k, &v, &bias)
        {
            return out;
        }
        if q.dims()[2] == 1 {
            // [b, h, 1, d] * [b, h, t, d] summed over d: [b, h, t, 1] → [b, h, 1, t].
            let scores = (q * k).sum_dim(3).swap_dims(2, 3) + bias;
            let probs = self.dropout.forward(softmax(scores, 3));
            // [b, h, t, 1] * [b, h, t, d] summed over t: [b, h, 1, d].
            let ctx = (probs.clone().swap_dims(2, 3) * v).sum_dim(2);
            return (ctx.swap_dims(1, 2), probs);
        }
        let scores = q.matmul(k.swap_dims(2, 3)) + bias;
        let probs = self.dropout.forward(softmax(scores, 3));
        let ctx = probs.clone().matmul(v).swap_dims(1, 2);
        (ctx, probs)
    }
}

/// T5's feed-forward: `relu` (`wo(relu(wi x))`) or `gated-gelu` (`wo(gelu_tanh(wi_0 x) * wi_1 x)`).
#[derive(Module, Debug)]
pub struct T5FeedForward<B: Backend> {
    /// `relu` input projection.
    pub wi: Option<Linear<B>>,
    /// `gated-gelu` gate projection.
    pub wi_0: Option<Linear<B>>,
    /// `gated-gelu` linear projection.
    pub wi_1: Option<Linear<B>>,
    /// Output projection.
    pub wo: Linear<B>,
}

impl<B: Backend> T5FeedForward<B> {
    /// `[b, l, d] → [b, l, d]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = match (&self.wi, &self.wi_0, &self.wi_1) {
            (Some(wi), _, _) => relu(linear_3d(wi, x)),
            (None, Some(g), Some(l)) => gelu_approximate(linear_3d(g, x.clone())) * linear_3d(l, x),
            _ => unreachable!("constructed with either wi or wi_0 + wi_1"),
        };
        linear_3d(&self.wo, h)
    }

    /// A freshly initialised feed-forward for `cfg.feed_forward_proj` (`relu` or `gated-gelu`).
    pub fn new(cfg: &T5Config, device: &Device<B>) -> Result<Self> {
        let (d, f) = (cfg.d_model, cfg.d_ff);
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        let (wi, wi_0, wi_1) = match cfg.feed_forward_proj.as_str() {
            "relu" => (Some(lin(d, f)), None, None),
            "gated-gelu" => (None, Some(lin(d, f)), Some(lin(d, f))),
            other => {
                return Err(Error::UnsupportedFeedForward {
                    name: other.to_string(),
                });
            }
        };
        Ok(T5FeedForward {
            wi,
            wi_0,
            wi_1,
            wo: lin(f, d),
        })
    }
}

/// One encoder block: self-attention then feed-forward, each pre-normed with a residual.
#[derive(Module, Debug)]
pub struct T5EncoderBlock<B: Backend> {
    /// Norm before self-attention.
    pub attn_norm: RmsNorm<B>,
    /// Self-attention.
    pub attn: T5Attention<B>,
    /// Norm before the feed-forward.
    pub ff_norm: RmsNorm<B>,
    /// Feed-forward.
    pub ff: T5FeedForward<B>,
}

impl<B: Backend> T5EncoderBlock<B> {
    /// `x + attn(norm(x))`, then `+ ff(norm(·))`; also returns the attention probabilities.
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let (a, probs) = self
            .attn
            .forward(self.attn_norm.forward(x.clone()), None, bias);
        let x = x + a;
        let x = x.clone() + self.ff.forward(self.ff_norm.forward(x));
        (x, probs)
    }
}

/// Hugging Face names of a [`T5Encoder`]'s parameters (`T5EncoderModel`, or the encoder of a
/// `T5ForConditionalGeneration`; the relative position bias exists in block 0 only, as in the
/// model). `encoder.embed_tokens.weight`, the tied copy of `shared.weight`, is read when a
/// checkpoint has only that one.
pub const T5_ENCODER_NAMES: NameTable = NameTable {
    names: &[
        ("embed_tokens.weight", "shared.weight"),
        (
            "blocks.{i}.attn_norm.gamma",
            "encoder.block.{i}.layer.0.layer_norm.weight",
        ),
        (
            "blocks.{i}.attn.{*}",
            "encoder.block.{i}.layer.0.SelfAttention.{*}",
        ),
        (
            "blocks.{i}.ff_norm.gamma",
            "encoder.block.{i}.layer.1.layer_norm.weight",
        ),
        (
            "blocks.{i}.ff.{*}",
            "encoder.block.{i}.layer.1.DenseReluDense.{*}",
        ),
        ("final_norm.gamma", "encoder.final_layer_norm.weight"),
    ],
    aliases: &[(r"^encoder\.embed_tokens\.weight$", "shared.weight")],
    ignored: &["decoder.", "lm_head."],
};

/// The T5 encoder stack (`T5EncoderModel`): token embedding, blocks, final norm.
#[derive(Module, Debug)]
pub struct T5Encoder<B: Backend> {
    /// Token embedding (`shared.weight`).
    pub embed_tokens: Embedding<B>,
    /// Blocks; only the first owns the relative position bias table.
    pub blocks: Vec<T5EncoderBlock<B>>,
    /// Final RMS norm.
    pub final_norm: RmsNorm<B>,
}

/// What the encoder produced, with the intermediate residual streams.
pub struct EncoderOutput<B: Backend> {
    /// After the final norm, `[b, l, d]`.
    pub last_hidden_state: Tensor<B, 3>,
    /// Residual stream after each block (before the final norm).
    pub block_outputs: Vec<Tensor<B, 3>>,
    /// Block 0's relative position bias `[1, heads, l, l]` (no mask).
    pub position_bias: Tensor<B, 4>,
}

impl<B: Backend> T5Encoder<B> {
    /// A freshly initialised encoder of shape `cfg` (what [`T5Encoder::from_safetensors`] fills).
    pub fn new(cfg: &T5Config, device: &Device<B>) -> Result<Self> {
        let norm = || {
            RmsNormConfig::new(cfg.d_model)
                .with_epsilon(cfg.layer_norm_epsilon)
                .init(device)
        };
        let blocks = (0..cfg.num_layers)
            .map(|i| {
                Ok(T5EncoderBlock {
                    attn_norm: norm(),
                    attn: T5Attention::new(cfg, i == 0, true, 0.0, device),
                    ff_norm: norm(),
                    ff: T5FeedForward::new(cfg, device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(T5Encoder {
            embed_tokens: EmbeddingConfig::new(cfg.vocab_size, cfg.d_model).init(device),
            blocks,
            final_norm: norm(),
        })
    }

    /// Loads the encoder of a Hugging Face T5 checkpoint (`model.safetensors`; a full
    /// encoder-decoder checkpoint's decoder and LM head are ignored).
    pub fn from_safetensors(path: &Path, cfg: &T5Config, device: &Device<B>) -> Result<Self> {
        let mut encoder = Self::new(cfg, device)?;
        load_safetensors(&mut encoder, path, &T5_ENCODER_NAMES)?;
        Ok(encoder)
    }

    /// Encodes token ids `[b, l]` with a 0/1 mask `[b, l]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> EncoderOutput<B> {
        self.forward_embeds(self.embed_tokens.forward(ids), mask)
    }

    /// Encodes input embeddings `[b, l, d]` with a 0/1 mask `[b, l]`.
    pub fn forward_embeds(&self, x: Tensor<B, 3>, mask: Tensor<B, 2>) -> EncoderOutput<B> {
        let l = x.dims()[1];
        let device = x.device();
        let position_bias = self.blocks[0].attn.compute_bias(l, l, &device);
        let bias = position_bias.clone() + additive_mask(mask);
        let mut x = x;
        let mut block_outputs = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            x = block.forward(x, bias.clone()).0;
            block_outputs.push(x.clone());
        }
        EncoderOutput {
            last_hidden_state: self.final_norm.forward(x),
            block_outputs,
            position_bias,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_keys_get_zero_weight_and_an_empty_row_stays_finite() {
        use burn::backend::Flex;
        let dev = Default::default();
        let mask = Tensor::<Flex, 2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 1.0, 0.0, 0.0, 0.0], [2, 3]),
            &dev,
        );
        let bias = additive_mask(mask);
        let bias_values = bias.clone().into_data().to_vec::<f32>().unwrap();
        assert_eq!(bias_values[..3], [0.0, f32::NEG_INFINITY, 0.0]);
        assert_eq!(
            bias_values[3..],
            [0.0, 0.0, 0.0],
            "an empty row is left unmasked"
        );
        let scores = Tensor::<Flex, 4>::from_data(
            TensorData::new(vec![3.0f32, 50.0, -2.0, 1.0, 2.0, 3.0], [2, 1, 1, 3]),
            &dev,
        );
        let probs = softmax(scores + bias, 3)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(probs.iter().all(|p| p.is_finite()), "{probs:?}");
        assert_eq!(probs[1], 0.0);
        assert!((probs[0] + probs[2] - 1.0).abs() < 1e-6);
        assert!((probs[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn buckets_match_transformers() {
        // Values from transformers' _relative_position_bucket (32 buckets, max distance 128).
        let bi = |r| relative_position_bucket(r, true, 32, 128);
        assert_eq!(
            (bi(0), bi(1), bi(-1), bi(7), bi(8), bi(-8)),
            (0, 17, 1, 23, 24, 8)
        );
        assert_eq!((bi(127), bi(128), bi(1000), bi(-1000)), (31, 31, 31, 15));
        let uni = |r| relative_position_bucket(r, false, 32, 128);
        assert_eq!(
            (uni(0), uni(3), uni(-3), uni(-15), uni(-16), uni(-200)),
            (0, 0, 3, 15, 16, 31)
        );
    }
}
