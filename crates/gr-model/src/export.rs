//! Saving and loading a trained model.
//!
//! * burn records ([`save_record`], [`load_record`]): the model's own full-precision
//!   MessagePack record, what checkpoints use;
//! * safetensors ([`export_safetensors`]): the reference's Hugging Face-style parameter names
//!   ([`REFERENCE_NAMES`]) and PyTorch layouts (`Linear` weights `[out, in]`), readable by the
//!   reference code and by [`crate::tiger::Tiger::from_safetensors`].

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::Device;
use burn::tensor::backend::Backend;

use crate::tiger::Tiger;
use crate::weights::{NameTable, save_safetensors};

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

/// Writes `model` to `path` as safetensors under the reference's parameter names
/// ([`REFERENCE_NAMES`]), `Linear` weights as PyTorch's `[out, in]`.
/// A model with tied heads is written with its heads untied ([`Tiger::untie_heads`]), so the
/// file is the reference's format either way.
pub fn export_safetensors<B: Backend>(model: &Tiger<B>, path: &Path) -> Result<()> {
    if model.tied {
        save_safetensors(&model.clone().untie_heads(), path, &REFERENCE_NAMES)
    } else {
        save_safetensors(model, path, &REFERENCE_NAMES)
    }
}
