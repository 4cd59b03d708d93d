//! BERT-family encoders (BERT, MiniLM) with Hugging Face numerics: word + position + token-type
//! embeddings with LayerNorm, post-norm blocks with scaled dot-product attention and erf-GELU.

use anyhow::{Result, ensure};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor};
use gr_model::t5::additive_mask;
use gr_model::weights::{Weights, linear_3d};
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

struct BertLayer<B: Backend> {
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
    /// Loads Hugging Face weights (names with or without the `bert.` prefix).
    pub fn load(w: &Weights, cfg: &BertConfig, device: &Device<B>) -> Result<Self> {
        ensure!(
            cfg.hidden_act == "gelu",
            "unsupported hidden_act `{}` (only `gelu`)",
            cfg.hidden_act
        );
        ensure!(
            cfg.hidden_size.is_multiple_of(cfg.num_attention_heads),
            "hidden_size {} is not a multiple of num_attention_heads {}",
            cfg.hidden_size,
            cfg.num_attention_heads
        );
        let p = if w.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let (d, f, e) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = format!("{p}encoder.layer.{i}");
                Ok(BertLayer {
                    query: w.linear(&format!("{l}.attention.self.query"), d, d, true, device)?,
                    key: w.linear(&format!("{l}.attention.self.key"), d, d, true, device)?,
                    value: w.linear(&format!("{l}.attention.self.value"), d, d, true, device)?,
                    attn_out: w.linear(
                        &format!("{l}.attention.output.dense"),
                        d,
                        d,
                        true,
                        device,
                    )?,
                    attn_norm: w.layer_norm(
                        &format!("{l}.attention.output.LayerNorm"),
                        d,
                        e,
                        device,
                    )?,
                    intermediate: w.linear(
                        &format!("{l}.intermediate.dense"),
                        d,
                        f,
                        true,
                        device,
                    )?,
                    output: w.linear(&format!("{l}.output.dense"), f, d, true, device)?,
                    out_norm: w.layer_norm(&format!("{l}.output.LayerNorm"), d, e, device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            word: w.embedding(
                &format!("{p}embeddings.word_embeddings.weight"),
                cfg.vocab_size,
                d,
                device,
            )?,
            position: w.embedding(
                &format!("{p}embeddings.position_embeddings.weight"),
                cfg.max_position_embeddings,
                d,
                device,
            )?,
            token_type: w.embedding(
                &format!("{p}embeddings.token_type_embeddings.weight"),
                cfg.type_vocab_size,
                d,
                device,
            )?,
            emb_norm: w.layer_norm(&format!("{p}embeddings.LayerNorm"), d, e, device)?,
            layers,
            heads: cfg.num_attention_heads,
            head_dim: d / cfg.num_attention_heads,
            max_positions: cfg.max_position_embeddings,
        })
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
            let h = layer
                .output
                .forward(gelu(layer.intermediate.forward(x.clone())));
            x = layer.out_norm.forward(h + x);
        }
        x
    }
}
