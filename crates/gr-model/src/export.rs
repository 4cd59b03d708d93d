//! Saving and loading a trained model.
//!
//! * burn records ([`save_record`], [`load_record`]): the model's own full-precision
//!   MessagePack record, what checkpoints use;
//! * safetensors ([`export_safetensors`]): the reference's Hugging Face-style parameter names
//!   ([`REFERENCE_NAMES`]) and PyTorch layouts (`Linear` weights `[out, in]`), readable by the
//!   reference code and by [`crate::tiger::Tiger::from_safetensors`].

use std::path::Path;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::Device;
use burn::tensor::backend::Backend;

use crate::error::{Error, Result};
pub use crate::tiger::REFERENCE_NAMES;
use crate::tiger::Tiger;
use crate::weights::save_safetensors;

/// The recorder checkpoints use (full precision, named MessagePack).
pub fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
}

/// Saves `model` as a burn record at `path` (`.mpk` is appended by burn).
pub fn save_record<B: Backend>(model: &Tiger<B>, path: &Path) -> Result<()> {
    model
        .clone()
        .save_file(path.to_path_buf(), &recorder())
        .map_err(|source| Error::Record {
            action: "save",
            path: path.to_path_buf(),
            source,
        })
}

/// Loads a burn record saved by [`save_record`] into `model` (which fixes the shapes).
pub fn load_record<B: Backend>(
    model: Tiger<B>,
    path: &Path,
    device: &Device<B>,
) -> Result<Tiger<B>> {
    model
        .load_file(path.to_path_buf(), &recorder(), device)
        .map_err(|source| Error::Record {
            action: "load",
            path: path.to_path_buf(),
            source,
        })
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
