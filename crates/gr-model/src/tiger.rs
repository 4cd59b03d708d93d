//! The TIGER generative recommender as the reference (GRID + RASTP) builds it — not stock T5:
//! one shared SID embedding table with per-level offsets (`digit + level·V`), a learned SEP
//! vector after every item, a learned BOS vector for the decoder, a 3-linear MLP feed-forward in
//! place of T5's, one untied head per SID level, fixed `levels`-step decoding without EOS, and the
//! loss summed over levels of per-level cross-entropy (docs/reference.md §1.3, §4, §5).
//!
//! Parameter names follow the reference's Hugging Face-style names ([`REFERENCE_NAMES`], used by
//! [`Tiger::from_safetensors`] and [`crate::export::export_safetensors`]).

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::Distribution;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use artifacts::config::{KeepBasis, ModelConfig, PositionBias, ReducerConfig};
use rastp::{keep_count, reduce_rows};

use crate::error::Result;
use crate::input::HistoryBatch;
use crate::t5::{T5Attention, T5Config, additive_mask, linear_3d};
use crate::weights::{NameTable, load_safetensors};

/// The reference's names of a [`Tiger`]'s parameters (those of the `tiger-tiny` fixtures), for
/// loading and for export: T5-style blocks with the MLP feed-forward as `mlp.model.{0,2,5}`, the
/// SID table, SEP and BOS vectors, and one `decoder_mlp` head per level.
pub const REFERENCE_NAMES: NameTable = NameTable {
    names: &[
        ("embedding.weight", "item_sid_embedding_table.weight"),
        ("sep", "sep_token"),
        ("bos", "bos_token"),
        (
            "encoder.{i}.attn_norm.gamma",
            "encoder.block.{i}.layer.0.layer_norm.weight",
        ),
        (
            "encoder.{i}.attn.{*}",
            "encoder.block.{i}.layer.0.SelfAttention.{*}",
        ),
        (
            "encoder.{i}.ff_norm.gamma",
            "encoder.block.{i}.layer.1.layer_norm.weight",
        ),
        (
            "encoder.{i}.ff.lin1.{*}",
            "encoder.block.{i}.layer.1.mlp.model.0.{*}",
        ),
        (
            "encoder.{i}.ff.lin2.{*}",
            "encoder.block.{i}.layer.1.mlp.model.2.{*}",
        ),
        (
            "encoder.{i}.ff.lin3.{*}",
            "encoder.block.{i}.layer.1.mlp.model.5.{*}",
        ),
        ("encoder_norm.gamma", "encoder.final_layer_norm.weight"),
        (
            "decoder.{i}.self_norm.gamma",
            "decoder.block.{i}.layer.0.layer_norm.weight",
        ),
        (
            "decoder.{i}.self_attn.{*}",
            "decoder.block.{i}.layer.0.SelfAttention.{*}",
        ),
        (
            "decoder.{i}.cross_norm.gamma",
            "decoder.block.{i}.layer.1.layer_norm.weight",
        ),
        (
            "decoder.{i}.cross_attn.{*}",
            "decoder.block.{i}.layer.1.EncDecAttention.{*}",
        ),
        (
            "decoder.{i}.ff_norm.gamma",
            "decoder.block.{i}.layer.2.layer_norm.weight",
        ),
        (
            "decoder.{i}.ff.lin1.{*}",
            "decoder.block.{i}.layer.2.mlp.model.0.{*}",
        ),
        (
            "decoder.{i}.ff.lin2.{*}",
            "decoder.block.{i}.layer.2.mlp.model.2.{*}",
        ),
        (
            "decoder.{i}.ff.lin3.{*}",
            "decoder.block.{i}.layer.2.mlp.model.5.{*}",
        ),
        ("decoder_norm.gamma", "decoder.final_layer_norm.weight"),
        ("heads.{i}.weight", "decoder_mlp.{i}.weight"),
    ],
    aliases: &[],
    ignored: &[],
};

/// Model shape (the fixtures' `config.json` names).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TigerConfig {
    /// SID digits per item (3 k-means levels + the dedup digit).
    pub num_levels: usize,
    /// Codes per digit (V).
    pub codes_per_level: usize,
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Head width.
    pub d_kv: usize,
    /// MLP width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_encoder_layers: usize,
    /// Decoder blocks.
    pub num_decoder_layers: usize,
    /// Dropout probability (inputs, attention probabilities, residual branches, MLP, outputs).
    pub dropout: f64,
    /// Relative position buckets.
    pub num_buckets: usize,
    /// Largest distance the buckets resolve.
    pub max_distance: usize,
    /// RMS norm epsilon.
    pub eps: f64,
    /// Output heads tied to the SID embedding table (`[model] tie_heads`); absent in the
    /// fixtures' `config.json` (untied, the reference).
    #[serde(default)]
    pub tie_heads: bool,
}

impl TigerConfig {
    /// The model of `[model]` for a catalogue of `levels`-digit SIDs (the k-means levels and the
    /// de-duplication digit) with `codes` codes per digit.
    pub fn new(model: &ModelConfig, levels: usize, codes: usize) -> TigerConfig {
        TigerConfig {
            num_levels: levels,
            codes_per_level: codes,
            d_model: model.d_model,
            num_heads: model.num_heads,
            d_kv: model.d_kv,
            d_ff: model.d_ff,
            num_encoder_layers: model.encoder_layers,
            num_decoder_layers: model.decoder_layers,
            dropout: model.dropout,
            num_buckets: model.num_buckets,
            max_distance: model.max_distance,
            eps: 1e-6,
            tie_heads: model.tie_heads,
        }
    }

    /// The model of `[model]` for the catalogue of a `SemanticIds` artifact.
    pub fn for_sids(model: &ModelConfig, sids: &artifacts::sids::SemanticIds) -> TigerConfig {
        TigerConfig::new(model, sids.levels() + 1, sids.codebook_size)
    }

    /// The reference model (docs/reference.md §4): `[model]`'s defaults over 4 levels × 256
    /// codes (d 128, 6 heads × 64, d_ff 1024, 4 + 4 blocks, dropout 0.15, 32 buckets up to 128).
    pub fn reference() -> TigerConfig {
        TigerConfig::new(&ModelConfig::default(), 4, 256)
    }

    fn t5(&self, num_layers: usize) -> T5Config {
        T5Config {
            vocab_size: self.num_levels * self.codes_per_level,
            d_model: self.d_model,
            d_kv: self.d_kv,
            num_heads: self.num_heads,
            d_ff: self.d_ff,
            num_layers,
            relative_attention_num_buckets: self.num_buckets,
            relative_attention_max_distance: self.max_distance,
            layer_norm_epsilon: self.eps,
            feed_forward_proj: "mlp".into(),
        }
    }

    /// The id of the virtual SEP token in encoder token ids (one past the SID vocabulary).
    pub fn sep_id(&self) -> usize {
        self.num_levels * self.codes_per_level
    }
}

/// The reference's `T5MultiLayerFF` MLP: Linear → ReLU → Linear → Dropout → ReLU → Linear → Dropout.
#[derive(Module, Debug)]
pub struct MlpFeedForward<B: Backend> {
    /// d → d_ff, with bias.
    pub lin1: Linear<B>,
    /// d_ff → d_ff, with bias.
    pub lin2: Linear<B>,
    /// d_ff → d, with bias.
    pub lin3: Linear<B>,
    /// Dropout inside the MLP.
    pub dropout: Dropout,
}

impl<B: Backend> MlpFeedForward<B> {
    /// `[b, l, d] → [b, l, d]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = relu(linear_3d(&self.lin1, x));
        let h = relu(self.dropout.forward(linear_3d(&self.lin2, h)));
        self.dropout.forward(linear_3d(&self.lin3, h))
    }

    fn new(cfg: &TigerConfig, device: &Device<B>) -> Self {
        let (d, f) = (cfg.d_model, cfg.d_ff);
        MlpFeedForward {
            lin1: LinearConfig::new(d, f).init(device),
            lin2: LinearConfig::new(f, f).init(device),
            lin3: LinearConfig::new(f, d).init(device),
            dropout: DropoutConfig::new(cfg.dropout).init(),
        }
    }
}

/// Encoder block: self-attention and MLP, each pre-normed with a residual.
#[derive(Module, Debug)]
pub struct TigerEncoderBlock<B: Backend> {
    /// Norm before self-attention.
    pub attn_norm: RmsNorm<B>,
    /// Self-attention (block 0 owns the bidirectional bias table).
    pub attn: T5Attention<B>,
    /// Norm before the MLP.
    pub ff_norm: RmsNorm<B>,
    /// MLP feed-forward.
    pub ff: MlpFeedForward<B>,
    /// Residual dropout.
    pub dropout: Dropout,
}

impl<B: Backend> TigerEncoderBlock<B> {
    /// Returns the new residual stream and the self-attention probabilities `[b, h, l, l]`.
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let (a, probs) = self
            .attn
            .forward(self.attn_norm.forward(x.clone()), None, bias);
        let x = x + self.dropout.forward(a);
        let x = x.clone()
            + self
                .dropout
                .forward(self.ff.forward(self.ff_norm.forward(x)));
        (x, probs)
    }
}

/// Decoder block: causal self-attention, cross-attention, MLP.
#[derive(Module, Debug)]
pub struct TigerDecoderBlock<B: Backend> {
    /// Norm before self-attention.
    pub self_norm: RmsNorm<B>,
    /// Causal self-attention (block 0 owns the causal bias table).
    pub self_attn: T5Attention<B>,
    /// Norm before cross-attention.
    pub cross_norm: RmsNorm<B>,
    /// Cross-attention over the encoder output (no position bias).
    pub cross_attn: T5Attention<B>,
    /// Norm before the MLP.
    pub ff_norm: RmsNorm<B>,
    /// MLP feed-forward.
    pub ff: MlpFeedForward<B>,
    /// Residual dropout.
    pub dropout: Dropout,
}

impl<B: Backend> TigerDecoderBlock<B> {
    /// One block over decoder states `x` `[b, q, d]` attending to `memory` `[b, l, d]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        self_bias: Tensor<B, 4>,
        memory: Tensor<B, 3>,
        cross_bias: Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let (a, _) = self
            .self_attn
            .forward(self.self_norm.forward(x.clone()), None, self_bias);
        let x = x + self.dropout.forward(a);
        let (c, _) =
            self.cross_attn
                .forward(self.cross_norm.forward(x.clone()), Some(memory), cross_bias);
        let x = x + self.dropout.forward(c);
        x.clone()
            + self
                .dropout
                .forward(self.ff.forward(self.ff_norm.forward(x)))
    }
}

/// Keys and values a decoder keeps between generation steps: per block, the self-attention
/// keys/values of the positions decoded so far (one row per beam) and the cross-attention
/// keys/values of the encoder output (computed once, one row per user, shared by its beams).
#[derive(Clone)]
pub struct DecoderCache<B: Backend> {
    /// Per block: self-attention `(keys, values)`, `[n, heads, t, d_kv]`; `None` before step 0.
    pub self_kv: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// Per block: cross-attention `(keys, values)`, `[users, heads, l, d_kv]`.
    pub cross_kv: Vec<(Tensor<B, 4>, Tensor<B, 4>)>,
    /// Additive cross-attention mask `[users, 1, 1, l]`.
    pub cross_bias: Tensor<B, 4>,
    /// Decoder rows per user (1 before beams are expanded, then the beam width).
    pub group: usize,
    /// Positions decoded so far.
    pub len: usize,
}

impl<B: Backend> DecoderCache<B> {
    /// Re-orders (or repeats) the decoder rows: row `i` of the result is row `rows[i]` now.
    /// `group` is the new number of rows per user; rows must stay with their user.
    pub fn select(&self, rows: Tensor<B, 1, Int>, group: usize) -> Self {
        let pick = |t: &Tensor<B, 4>| t.clone().select(0, rows.clone());
        DecoderCache {
            self_kv: self
                .self_kv
                .iter()
                .map(|kv| kv.as_ref().map(|(k, v)| (pick(k), pick(v))))
                .collect(),
            cross_kv: self.cross_kv.clone(),
            cross_bias: self.cross_bias.clone(),
            group,
            len: self.len,
        }
    }
}

/// The encoder's result.
pub struct Encoded<B: Backend> {
    /// After the final norm, `[b, l, d]` (`l` shrinks when a reducer prunes).
    pub hidden: Tensor<B, 3>,
    /// 0/1 key mask of `hidden`, `[b, l]`: what the decoder's cross-attention may read.
    pub mask: Tensor<B, 2>,
    /// Residual stream after every block (before the final norm; before any reduction).
    pub block_outputs: Vec<Tensor<B, 3>>,
    /// Positions kept by a selecting reducer, per sequence (ascending).
    pub kept: Option<Vec<Vec<usize>>>,
}

/// The TIGER encoder-decoder.
#[derive(Module, Debug)]
pub struct Tiger<B: Backend> {
    /// Shared SID embedding table `[levels·V, d]` (row = digit + level·V).
    pub embedding: Embedding<B>,
    /// SEP vector `[1, d]`.
    pub sep: Param<Tensor<B, 2>>,
    /// Decoder start vector `[1, d]`.
    pub bos: Param<Tensor<B, 2>>,
    /// Encoder blocks.
    pub encoder: Vec<TigerEncoderBlock<B>>,
    /// Encoder final norm.
    pub encoder_norm: RmsNorm<B>,
    /// Decoder blocks.
    pub decoder: Vec<TigerDecoderBlock<B>>,
    /// Decoder final norm.
    pub decoder_norm: RmsNorm<B>,
    /// One head per level, `d → V`, no bias. Unused while `tied` (they are then filled from the
    /// embedding table only for export, [`Tiger::untie_heads`]).
    pub heads: Vec<Linear<B>>,
    /// Dropout on the stacks' inputs and outputs.
    pub dropout: Dropout,
    /// SID digits per item.
    pub levels: usize,
    /// Codes per digit.
    pub codes: usize,
    /// Level `l`'s logits are `d^-0.5 · state · E_lᵀ` (the embedding rows of level `l`).
    pub tied: bool,
}

impl<B: Backend> Tiger<B> {
    /// A freshly initialised model with the reference's initialisation (docs/reference.md §4): every
    /// Linear U(±1/√fan_in) (weights and biases), SID embeddings, SEP, BOS and the relative bias
    /// tables N(0, 1), RMS norm weights 1.
    pub fn new(cfg: &TigerConfig, device: &Device<B>) -> Self {
        let d = cfg.d_model;
        let norm = || RmsNormConfig::new(d).with_epsilon(cfg.eps).init(device);
        let dropout = || DropoutConfig::new(cfg.dropout).init();
        let enc_cfg = cfg.t5(cfg.num_encoder_layers);
        let dec_cfg = cfg.t5(cfg.num_decoder_layers);
        let normal = |shape: [usize; 2]| {
            Param::from_tensor(Tensor::random(
                shape,
                Distribution::Normal(0.0, 1.0),
                device,
            ))
        };
        Tiger {
            embedding: EmbeddingConfig::new(cfg.num_levels * cfg.codes_per_level, d).init(device),
            sep: normal([1, d]),
            bos: normal([1, d]),
            encoder: (0..cfg.num_encoder_layers)
                .map(|i| TigerEncoderBlock {
                    attn_norm: norm(),
                    attn: T5Attention::new(&enc_cfg, i == 0, true, cfg.dropout, device),
                    ff_norm: norm(),
                    ff: MlpFeedForward::new(cfg, device),
                    dropout: dropout(),
                })
                .collect(),
            encoder_norm: norm(),
            decoder: (0..cfg.num_decoder_layers)
                .map(|i| TigerDecoderBlock {
                    self_norm: norm(),
                    self_attn: T5Attention::new(&dec_cfg, i == 0, false, cfg.dropout, device),
                    cross_norm: norm(),
                    cross_attn: T5Attention::new(&dec_cfg, false, true, cfg.dropout, device),
                    ff_norm: norm(),
                    ff: MlpFeedForward::new(cfg, device),
                    dropout: dropout(),
                })
                .collect(),
            decoder_norm: norm(),
            heads: (0..cfg.num_levels)
                .map(|_| {
                    LinearConfig::new(d, cfg.codes_per_level)
                        .with_bias(false)
                        .init(device)
                })
                .collect(),
            dropout: dropout(),
            levels: cfg.num_levels,
            codes: cfg.codes_per_level,
            tied: cfg.tie_heads,
        }
    }

    /// Loads a model saved under the reference's names (the `tiger-tiny` fixtures, or
    /// [`crate::export::export_safetensors`]): [`Tiger::new`] filled from the file by
    /// [`REFERENCE_NAMES`]. Fails, naming the file and the tensors, when a tensor is missing,
    /// unexpected or of another shape than `cfg` implies.
    pub fn from_safetensors(path: &Path, cfg: &TigerConfig, device: &Device<B>) -> Result<Self> {
        let mut model = Self::new(cfg, device);
        load_safetensors(&mut model, path, &REFERENCE_NAMES)?;
        Ok(model)
    }

    /// Encoder inputs from item SIDs `[b, items, levels]` (raw digits; anything where
    /// `item_mask` is 0) and the 0/1 item mask `[b, items]`: each item's digit embeddings (with
    /// level offsets) followed by the SEP vector, `[b, items·(levels+1), d]`, and the matching
    /// mask (a SEP takes its item's mask). Padded slots embed row 0 and SEP, masked, as the reference.
    pub fn embed_history(
        &self,
        sids: Tensor<B, 3, Int>,
        item_mask: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let [b, n, h] = sids.dims();
        let device = sids.device();
        let d = self.bos.dims()[1];
        let offsets =
            Tensor::<B, 1, Int>::arange_step(0..(h * self.codes) as i64, self.codes, &device)
                .reshape([1, 1, h]);
        let keep = item_mask.clone().int().reshape([b, n, 1]);
        let ids = (sids.clamp_min(0) + offsets) * keep;
        let tokens = self
            .embedding
            .forward(ids.reshape([b, n * h]))
            .reshape([b, n, h, d]);
        let sep = self
            .sep
            .val()
            .reshape([1, 1, 1, d])
            .repeat_dim(0, b)
            .repeat_dim(1, n);
        let embeds = Tensor::cat(vec![tokens, sep], 2).reshape([b, n * (h + 1), d]);
        let mask = item_mask
            .reshape([b, n, 1])
            .repeat_dim(2, h + 1)
            .reshape([b, n * (h + 1)]);
        (embeds, mask)
    }

    /// Runs the encoder over input embeddings `[b, l, d]` with a 0/1 mask `[b, l]`.
    pub fn encode(&self, embeds: Tensor<B, 3>, mask: Tensor<B, 2>) -> Encoded<B> {
        self.encode_with(embeds, mask, &ReducerConfig::none())
    }

    /// Runs the encoder, reducing tokens after layer `reducer.after_layer` as `reducer` says
    /// (nothing for kind `none`; `at_eval` is the caller's business). After a reduction the
    /// remaining blocks get the bias `reducer.position_bias` names (the reference: none), and the
    /// reduced mask; the returned mask is the reduced one, so the decoder never relies on right
    /// padding.
    pub fn encode_with(
        &self,
        embeds: Tensor<B, 3>,
        mask: Tensor<B, 2>,
        reducer: &ReducerConfig,
    ) -> Encoded<B> {
        let [b, l, _] = embeds.dims();
        let device = embeds.device();
        let mut bias =
            self.encoder[0].attn.compute_bias(l, l, &device) + additive_mask(mask.clone());
        let mut mask = mask;
        let mut kept = None;
        let mut x = self.dropout.forward(embeds);
        let mut block_outputs = Vec::with_capacity(self.encoder.len());
        for (i, block) in self.encoder.iter().enumerate() {
            let (out, probs) = block.forward(x, bias.clone());
            x = out;
            block_outputs.push(x.clone());
            if reducer.is_active() && reducer.after_layer == i + 1 {
                let spec = reducer;
                let keeps: Vec<usize> = match spec.keep_basis {
                    KeepBasis::Reference => {
                        vec![keep_count(spec.reference_len, spec.keep_ratio).min(l); b]
                    }
                    KeepBasis::Padded => vec![keep_count(l, spec.keep_ratio); b],
                    KeepBasis::Valid => {
                        let valid: Vec<f32> = mask
                            .clone()
                            .sum_dim(1)
                            .into_data()
                            .to_vec()
                            .expect("f32 mask");
                        valid
                            .iter()
                            .map(|&v| keep_count(v.round() as usize, spec.keep_ratio))
                            .collect()
                    }
                };
                let r = reduce_rows(spec.kind, x, mask, probs, &keeps, spec.mass);
                x = r.hidden;
                mask = r.mask;
                kept = r.kept;
                let k = x.dims()[1];
                let table = &self.encoder[0].attn;
                let position = match spec.position_bias {
                    PositionBias::None => Tensor::zeros([b, 1, k, k], &device),
                    PositionBias::Recompute => table.compute_bias(k, k, &device),
                    PositionBias::Gather => table.compute_bias_at(&r.positions, &device),
                };
                bias = position + additive_mask(mask.clone());
            }
        }
        Encoded {
            hidden: self.dropout.forward(self.encoder_norm.forward(x)),
            mask,
            block_outputs,
            kept,
        }
    }

    /// Teacher-forced decoder states for target digits `[b, levels]` (raw digits, no offsets):
    /// input `[BOS, E[t0], E[t1+V], …]`, outputs at positions `0..levels`, `[b, levels, d]`.
    pub fn decode(&self, encoded: &Encoded<B>, targets: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, h] = targets.dims();
        // The last target digit is never an input: the model predicts it from the first h-1.
        let prefix = (h > 1).then(|| targets.slice([0..b, 0..h - 1]));
        self.decode_prefix(encoded.hidden.clone(), encoded.mask.clone(), prefix)
    }

    /// Decoder states `[n, t+1, d]` for `[BOS, E[p0], E[p1+V], …, E[p(t-1)+(t-1)V]]` given a
    /// prefix of raw digits `[n, t]` (`None`: BOS alone), over `memory` `[n, l, d]` with its
    /// 0/1 mask `[n, l]`.
    pub fn decode_prefix(
        &self,
        memory: Tensor<B, 3>,
        memory_mask: Tensor<B, 2>,
        prefix: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let n = memory.dims()[0];
        let device = memory.device();
        let d = self.bos.dims()[1];
        let bos = self.bos.val().reshape([1, 1, d]).repeat_dim(0, n);
        let inputs = match prefix {
            None => bos,
            Some(p) => {
                let [_, t] = p.dims();
                let offsets = Tensor::<B, 1, Int>::arange_step(
                    0..(t * self.codes) as i64,
                    self.codes,
                    &device,
                )
                .reshape([1, t]);
                let tokens = self
                    .embedding
                    .weight
                    .val()
                    .select(0, (p + offsets).reshape([n * t]))
                    .reshape([n, t, d]);
                Tensor::cat(vec![bos, tokens], 1)
            }
        };
        let q = inputs.dims()[1];
        let causal: Vec<f32> = (0..q)
            .flat_map(|i| (0..q).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let self_bias = self.decoder[0].self_attn.compute_bias(q, q, &device)
            + Tensor::<B, 2>::from_data(TensorData::new(causal, [q, q]), &device)
                .reshape([1, 1, q, q]);
        let cross_bias = additive_mask(memory_mask);
        let mut x = self.dropout.forward(inputs);
        for block in &self.decoder {
            x = block.forward(x, self_bias.clone(), memory.clone(), cross_bias.clone());
        }
        self.dropout.forward(self.decoder_norm.forward(x))
    }

    /// A decoder cache over `memory` `[n, l, d]` with its 0/1 mask `[n, l]`: the cross-attention
    /// keys and values of every block, computed once.
    pub fn start_decoding(
        &self,
        memory: Tensor<B, 3>,
        memory_mask: Tensor<B, 2>,
    ) -> DecoderCache<B> {
        DecoderCache {
            self_kv: vec![None; self.decoder.len()],
            cross_kv: self
                .decoder
                .iter()
                .map(|block| block.cross_attn.project_kv(memory.clone()))
                .collect(),
            cross_bias: additive_mask(memory_mask),
            group: 1,
            len: 0,
        }
    }

    /// The decoder input at step `cache.len`: BOS at step 0, else the embedding of the previous
    /// level's digits `[n]` (raw digits, the level offset is added here).
    pub fn step_input(
        &self,
        level: usize,
        digits: Option<Tensor<B, 1, Int>>,
        n: usize,
    ) -> Tensor<B, 3> {
        let d = self.bos.dims()[1];
        match digits {
            None => self.bos.val().reshape([1, 1, d]).repeat_dim(0, n),
            Some(t) => self
                .embedding
                .weight
                .val()
                .select(0, t.add_scalar(((level - 1) * self.codes) as i64))
                .reshape([n, 1, d]),
        }
    }

    /// One decoding step with the cache: the new position's input `[n, 1, d]` → its final
    /// decoder state `[n, d]`; the cache gains the position. Equal to the last row of
    /// [`Tiger::decode_prefix`] on the whole prefix.
    pub fn decode_step(&self, cache: &mut DecoderCache<B>, input: Tensor<B, 3>) -> Tensor<B, 2> {
        let [n, _, d] = input.dims();
        let device = input.device();
        let t = cache.len;
        let self_bias = self.decoder[0]
            .self_attn
            .compute_bias(t + 1, t + 1, &device)
            .slice([
                0..1,
                0..self.decoder[0].self_attn.n_heads,
                t..t + 1,
                0..t + 1,
            ]);
        let mut x = self.dropout.forward(input);
        for (i, block) in self.decoder.iter().enumerate() {
            let normed = block.self_norm.forward(x.clone());
            let (k_new, v_new) = block.self_attn.project_kv(normed.clone());
            let (k, v) = match cache.self_kv[i].take() {
                None => (k_new, v_new),
                Some((k, v)) => (
                    Tensor::cat(vec![k, k_new], 2),
                    Tensor::cat(vec![v, v_new], 2),
                ),
            };
            let (a, _) = block.self_attn.attend(
                block.self_attn.project_q(normed),
                k.clone(),
                v.clone(),
                self_bias.clone(),
            );
            cache.self_kv[i] = Some((k, v));
            x = x + block.dropout.forward(a);
            let (ck, cv) = cache.cross_kv[i].clone();
            let c = block.cross_attn.attend_grouped(
                block.cross_norm.forward(x.clone()),
                ck,
                cv,
                cache.cross_bias.clone(),
                cache.group,
            );
            x = x + block.dropout.forward(c);
            x = x.clone()
                + block
                    .dropout
                    .forward(block.ff.forward(block.ff_norm.forward(x)));
        }
        cache.len += 1;
        self.dropout
            .forward(self.decoder_norm.forward(x))
            .reshape([n, d])
    }

    /// Logits `[n, V]` of SID level `level` from decoder states `[n, d]`.
    pub fn level_logits(&self, level: usize, states: Tensor<B, 2>) -> Tensor<B, 2> {
        if self.tied {
            states.matmul(self.tied_head(level))
        } else {
            self.heads[level].forward(states)
        }
    }

    /// The tied head of `level` as a `Linear` weight `[d, V]`: `d^-0.5 · E_levelᵀ`.
    fn tied_head(&self, level: usize) -> Tensor<B, 2> {
        let [_, d] = self.embedding.weight.dims();
        self.embedding
            .weight
            .val()
            .slice([level * self.codes..(level + 1) * self.codes, 0..d])
            .transpose()
            .mul_scalar((d as f64).powf(-0.5))
    }

    /// The same model with separate heads equal to its tied ones (a no-op when untied): what the
    /// reference's untied model computes identically, e.g. for the safetensors export.
    pub fn untie_heads(mut self) -> Self {
        if self.tied {
            for level in 0..self.levels {
                let weight = self.tied_head(level);
                self.heads[level].weight = Param::from_tensor(weight);
            }
            self.tied = false;
        }
        self
    }

    /// Per-level logits `[b, levels, V]` from decoder states `[b, levels, d]`.
    pub fn logits(&self, states: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, _, d] = states.dims();
        let per_level: Vec<Tensor<B, 3>> = (0..self.levels)
            .map(|l| {
                self.level_logits(
                    l,
                    states.clone().slice([0..b, l..l + 1, 0..d]).reshape([b, d]),
                )
                .unsqueeze_dim(1)
            })
            .collect();
        Tensor::cat(per_level, 1)
    }

    /// The reference loss: Σ over levels of the batch-mean cross-entropy of that level's digit.
    pub fn loss(&self, logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
        let [b, h, _] = logits.dims();
        let logp = log_softmax(logits, 2);
        let picked = logp.gather(2, targets.reshape([b, h, 1])).reshape([b, h]);
        picked.sum().neg().div_scalar(b as f64)
    }

    /// The reference loss (summed per-level cross-entropy, batch mean) of a batch built with
    /// targets: embed, encode with `reducer`, teacher-forced decode.
    pub fn batch_loss(&self, batch: HistoryBatch<B>, reducer: &ReducerConfig) -> Tensor<B, 1> {
        let targets = batch
            .targets
            .expect("a loss needs a batch built with targets");
        let (embeds, mask) = self.embed_history(batch.sids, batch.item_mask);
        let encoded = self.encode_with(embeds, mask, reducer);
        let logits = self.logits(self.decode(&encoded, targets.clone()));
        let logits = match batch.level_bias {
            Some(bias) => logits + bias,
            None => logits,
        };
        self.loss(logits, targets)
    }
}
