//! Saving and loading a trained model.
//!
//! * burn records ([`save_record`], [`load_record`]): the model's own full-precision
//!   MessagePack record, what checkpoints use;
//! * safetensors ([`export_safetensors`]): the reference's Hugging Face-style parameter names
//!   and PyTorch layouts (`Linear` weights `[out, in]`), readable by the reference code and by
//!   [`crate::tiger::Tiger::load`].

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::nn::{Linear, RmsNorm};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};

use crate::t5::T5Attention;
use crate::tiger::{MlpFeedForward, Tiger};

/// The recorder checkpoints use (full precision, named MessagePack).
pub fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
}

/// Saves `model` as a burn record at `path` (`.mpk` is appended by burn).
pub fn save_record<B: Backend>(model: &Tiger<B>, path: &Path) -> Result<()> {
    model
        .clone()
        .save_file(path.to_path_buf(), &recorder())
        .with_context(|| format!("cannot save the model record {}", path.display()))
}

/// Loads a burn record saved by [`save_record`] into `model` (which fixes the shapes).
pub fn load_record<B: Backend>(
    model: Tiger<B>,
    path: &Path,
    device: &Device<B>,
) -> Result<Tiger<B>> {
    model
        .load_file(path.to_path_buf(), &recorder(), device)
        .with_context(|| format!("cannot load the model record {}", path.display()))
}

/// Collected tensors: name → (shape, values).
#[derive(Default)]
struct Collected(BTreeMap<String, (Vec<usize>, Vec<f32>)>);

impl Collected {
    fn put<B: Backend, const D: usize>(&mut self, name: String, t: Tensor<B, D>) {
        let shape = t.dims().to_vec();
        let values = t
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 tensor");
        self.0.insert(name, (shape, values));
    }

    fn param<B: Backend, const D: usize>(&mut self, name: String, p: &Param<Tensor<B, D>>) {
        self.put(name, p.val());
    }

    /// A burn `Linear` (`[in, out]`) as PyTorch's `[out, in]` (+ bias).
    fn linear<B: Backend>(&mut self, prefix: &str, l: &Linear<B>) {
        self.put(format!("{prefix}.weight"), l.weight.val().transpose());
        if let Some(b) = &l.bias {
            self.param(format!("{prefix}.bias"), b);
        }
    }

    fn norm<B: Backend>(&mut self, name: String, n: &RmsNorm<B>) {
        self.param(name, &n.gamma);
    }

    fn attention<B: Backend>(&mut self, prefix: &str, a: &T5Attention<B>) {
        for (part, l) in [("q", &a.q), ("k", &a.k), ("v", &a.v), ("o", &a.o)] {
            self.linear(&format!("{prefix}.{part}"), l);
        }
        if let Some(table) = &a.relative_attention_bias {
            self.param(
                format!("{prefix}.relative_attention_bias.weight"),
                &table.weight,
            );
        }
    }

    fn mlp<B: Backend>(&mut self, prefix: &str, m: &MlpFeedForward<B>) {
        self.linear(&format!("{prefix}.model.0"), &m.lin1);
        self.linear(&format!("{prefix}.model.2"), &m.lin2);
        self.linear(&format!("{prefix}.model.5"), &m.lin3);
    }
}

/// Writes `model` to `path` as safetensors under the reference's parameter names.
pub fn export_safetensors<B: Backend>(model: &Tiger<B>, path: &Path) -> Result<()> {
    let mut c = Collected::default();
    c.param(
        "item_sid_embedding_table.weight".into(),
        &model.embedding.weight,
    );
    c.param("sep_token".into(), &model.sep);
    c.param("bos_token".into(), &model.bos);
    for (i, block) in model.encoder.iter().enumerate() {
        let p = format!("encoder.block.{i}.layer");
        c.norm(format!("{p}.0.layer_norm.weight"), &block.attn_norm);
        c.attention(&format!("{p}.0.SelfAttention"), &block.attn);
        c.norm(format!("{p}.1.layer_norm.weight"), &block.ff_norm);
        c.mlp(&format!("{p}.1.mlp"), &block.ff);
    }
    c.norm(
        "encoder.final_layer_norm.weight".into(),
        &model.encoder_norm,
    );
    for (i, block) in model.decoder.iter().enumerate() {
        let p = format!("decoder.block.{i}.layer");
        c.norm(format!("{p}.0.layer_norm.weight"), &block.self_norm);
        c.attention(&format!("{p}.0.SelfAttention"), &block.self_attn);
        c.norm(format!("{p}.1.layer_norm.weight"), &block.cross_norm);
        c.attention(&format!("{p}.1.EncDecAttention"), &block.cross_attn);
        c.norm(format!("{p}.2.layer_norm.weight"), &block.ff_norm);
        c.mlp(&format!("{p}.2.mlp"), &block.ff);
    }
    c.norm(
        "decoder.final_layer_norm.weight".into(),
        &model.decoder_norm,
    );
    for (h, head) in model.heads.iter().enumerate() {
        c.linear(&format!("decoder_mlp.{h}"), head);
    }
    let bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> =
        c.0.into_iter()
            .map(|(name, (shape, values))| {
                let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name, (shape, raw))
            })
            .collect();
    let views = bytes
        .iter()
        .map(|(name, (shape, raw))| {
            TensorView::new(Dtype::F32, shape.clone(), raw)
                .map(|view| (name.clone(), view))
                .with_context(|| format!("tensor {name}"))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize_to_file(views, None, path)
        .with_context(|| format!("cannot write {}", path.display()))
}
