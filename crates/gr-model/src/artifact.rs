//! The trained-model files of the `Model` artifact (`train/<variant>/seed-<n>/`): the best
//! model's burn record (`model.mpk`), its shape (`model.json`) and the reference-named
//! safetensors export (`model.safetensors`). Loading checks the files against the artifact's
//! manifest first, so a damaged or truncated file is reported as such, not as a decoding error.

use std::path::Path;

use artifacts::Manifest;
use artifacts::model::{MODEL_RECORD, MODEL_SAFETENSORS, MODEL_SHAPE};
use burn::tensor::Device;
use burn::tensor::backend::Backend;

use crate::error::{Error, Result};
use crate::export::{export_safetensors, load_record};
use crate::tiger::{Tiger, TigerConfig};

/// Writes the model files into the artifact directory `dir` being built: the burn record at
/// `record` (a `.mpk` file, e.g. the best checkpoint) copied as `model.mpk`, the shape as
/// `model.json`, and the safetensors export.
pub fn write_model_files<B: Backend>(
    dir: &Path,
    record: &Path,
    cfg: &TigerConfig,
    device: &Device<B>,
) -> Result<()> {
    std::fs::copy(record, dir.join(MODEL_RECORD)).map_err(|source| Error::Io {
        action: "copy the model record",
        path: record.to_path_buf(),
        source,
    })?;
    let shape = dir.join(MODEL_SHAPE);
    std::fs::write(&shape, serde_json::to_string_pretty(cfg)?).map_err(|source| Error::Io {
        action: "write",
        path: shape.clone(),
        source,
    })?;
    let model = load_record(
        Tiger::<B>::new(cfg, device),
        &dir.join(MODEL_RECORD),
        device,
    )?;
    export_safetensors(&model, &dir.join(MODEL_SAFETENSORS))
}

/// Loads the trained model of the `Model` artifact in `dir`, after checking its files against
/// the artifact's manifest.
pub fn load_trained<B: Backend>(dir: &Path, device: &Device<B>) -> Result<(Tiger<B>, TigerConfig)> {
    let manifest = Manifest::require(dir, "train")?;
    manifest.verify_files(dir, &[MODEL_SHAPE, MODEL_RECORD])?;
    let path = dir.join(MODEL_SHAPE);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let cfg: TigerConfig =
        serde_json::from_str(&text).map_err(|source| Error::BadModelShape { path, source })?;
    let model = load_record(
        Tiger::<B>::new(&cfg, device),
        &dir.join(MODEL_RECORD),
        device,
    )?;
    Ok((model, cfg))
}
