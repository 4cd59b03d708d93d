//! BERT-family encoders (BERT, MiniLM) with Hugging Face numerics: word + position + token-type
//! embeddings with LayerNorm, post-norm blocks with scaled dot-product attention and erf-GELU.
//! Hugging Face checkpoints load through one name table ([`BERT_NAMES`]).

use std::path::Path;

use crate::error::{Error, Result};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor};
use gr_model::t5::{additive_mask, linear_3d};
use gr_model::weights::{NameTable, load_safetensors};
use serde::Deserialize;

/// The `config.json` fields of a Hugging Face `BertModel`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Blocks.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Longest input.
    pub max_position_embeddings: usize,
    /// Token-type vocabulary.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    /// Activation; only the exact (erf) `gelu` is supported.
    #[serde(default = "gelu_name")]
    pub hidden_act: String,
}

fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn gelu_name() -> String {
    "gelu".into()
}

/// Hugging Face names of a [`Bert`]'s parameters (`BertModel`, with or without the `bert.`
/// prefix of task checkpoints; a pooler or task head in the file is ignored). LayerNorm
/// weight/bias become burn's gamma/beta through burn-store's PyTorch adapter.
pub const BERT_NAMES: NameTable = NameTable {
    names: &[
        ("word.weight", "embeddings.word_embeddings.weight"),
        ("position.weight", "embeddings.position_embeddings.weight"),
        (
            "token_type.weight",
            "embeddings.token_type_embeddings.weight",
        ),
        ("emb_norm.{*}", "embeddings.LayerNorm.{*}"),
        (
            "layers.{i}.query.{*}",
            "encoder.layer.{i}.attention.self.query.{*}",
        ),
        (
            "layers.{i}.key.{*}",
            "encoder.layer.{i}.attention.self.key.{*}",
        ),
        (
            "layers.{i}.value.{*}",
            "encoder.layer.{i}.attention.self.value.{*}",
        ),
        (
            "layers.{i}.attn_out.{*}",
            "encoder.layer.{i}.attention.output.dense.{*}",
        ),
        (
            "layers.{i}.attn_norm.{*}",
            "encoder.layer.{i}.attention.output.LayerNorm.{*}",
        ),
        (
            "layers.{i}.intermediate.{*}",
            "encoder.layer.{i}.intermediate.dense.{*}",
        ),
        (
            "layers.{i}.output.{*}",
            "encoder.layer.{i}.output.dense.{*}",
        ),
        (
            "layers.{i}.out_norm.{*}",
            "encoder.layer.{i}.output.LayerNorm.{*}",
        ),
    ],
    aliases: &[(r"^bert\.(.+)$", "$1")],
    ignored: &["pooler.", "cls.", "embeddings.position_ids"],
};

/// One post-norm BERT block.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    query: Linear<B>,
    key: Linear<B>,
    value: Linear<B>,
    attn_out: Linear<B>,
    attn_norm: LayerNorm<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    out_norm: LayerNorm<B>,
}

/// A BERT encoder (no pooler).
#[derive(Module, Debug)]
pub struct Bert<B: Backend> {
    word: Embedding<B>,
    position: Embedding<B>,
    token_type: Embedding<B>,
    emb_norm: LayerNorm<B>,
    layers: Vec<BertLayer<B>>,
    heads: usize,
    head_dim: usize,
    max_positions: usize,
}

impl<B: Backend> Bert<B> {
    /// A freshly initialised encoder of shape `cfg` (what [`Bert::from_safetensors`] fills).
    pub fn new(cfg: &BertConfig, device: &Device<B>) -> Result<Self> {
        if cfg.hidden_act != "gelu" {
            return Err(Error::Activation {
                name: cfg.hidden_act.clone(),
            });
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(Error::Heads {
                hidden_size: cfg.hidden_size,
                heads: cfg.num_attention_heads,
            });
        }
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        let lin = |i, o| LinearConfig::new(i, o).init(device);
        let norm = || {
            LayerNormConfig::new(d)
                .with_epsilon(cfg.layer_norm_eps)
                .init(device)
        };
        let emb = |n| EmbeddingConfig::new(n, d).init(device);
        Ok(Bert {
            word: emb(cfg.vocab_size),
            position: emb(cfg.max_position_embeddings),
            token_type: emb(cfg.type_vocab_size),
            emb_norm: norm(),
            layers: (0..cfg.num_hidden_layers)
                .map(|_| BertLayer {
                    query: lin(d, d),
                    key: lin(d, d),
                    value: lin(d, d),
                    attn_out: lin(d, d),
                    attn_norm: norm(),
                    intermediate: lin(d, f),
                    output: lin(f, d),
                    out_norm: norm(),
                })
                .collect(),
            heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
            max_positions: cfg.max_position_embeddings,
        })
    }

    /// Loads a Hugging Face BERT checkpoint (`model.safetensors`) of shape `cfg`.
    pub fn from_safetensors(path: &Path, cfg: &BertConfig, device: &Device<B>) -> Result<Self> {
        let mut bert = Self::new(cfg, device)?;
        load_safetensors(&mut bert, path, &BERT_NAMES)?;
        Ok(bert)
    }

    /// Longest input the position table allows.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Last hidden state `[b, l, d]` of token ids `[b, l]`, token types `[b, l]` and a 0/1 mask `[b, l]`.
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        type_ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2>,
    ) -> Tensor<B, 3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..l as i64, &device)
            .reshape([1, l])
            .repeat_dim(0, b);
        let x = self.word.forward(ids)
            + self.position.forward(positions)
            + self.token_type.forward(type_ids);
        let mut x = self.emb_norm.forward(x);
        let bias = additive_mask(mask);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            let split =
                |t: Tensor<B, 3>| t.reshape([b, l, self.heads, self.head_dim]).swap_dims(1, 2);
            let q = split(linear_3d(&layer.query, x.clone()));
            let k = split(linear_3d(&layer.key, x.clone()));
            let v = split(linear_3d(&layer.value, x.clone()));
            let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias.clone();
            let ctx = softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([
                b,
                l,
                self.heads * self.head_dim,
            ]);
            x = layer.attn_norm.forward(linear_3d(&layer.attn_out, ctx) + x);
            let h = linear_3d(
                &layer.output,
                gelu(linear_3d(&layer.intermediate, x.clone())),
            );
            x = layer.out_norm.forward(h + x);
        }
        x
    }
}
