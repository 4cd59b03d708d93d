//! Safetensors weights under a reference's parameter names, through burn-store.
//!
//! A [`NameTable`] pairs burn module paths with the reference's names (Hugging Face style). The
//! same table serves both directions: [`load_safetensors`] reads a checkpoint into an already
//! constructed module (PyTorch layouts converted by burn-store's `PyTorchToBurnAdapter`:
//! `Linear` weights transposed, `LayerNorm` weight/bias as gamma/beta), and [`save_safetensors`]
//! writes a module under the reference's names and PyTorch layouts (`BurnToPyTorchAdapter`).
//! A load that leaves any parameter unset, finds a tensor the model does not have, or a shape
//! that does not match fails with an error naming the file and the tensors, in the file's terms.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, SafetensorsStore, TensorSnapshot,
};
use burn::tensor::DType;
use burn::tensor::backend::Backend;

use crate::error::{Error, Result};

/// How a model's burn parameter paths map onto a reference's tensor names.
///
/// Each entry of `names` is `(burn path, reference name)`, both templates in which `{i}` stands
/// for a block index and `{*}` for the rest of the name (the same on both sides); entries must
/// not chain (a rewritten name must not match another entry of the same direction).
#[derive(Debug, Clone, Copy)]
pub struct NameTable {
    /// `(burn path, reference name)` templates.
    pub names: &'static [(&'static str, &'static str)],
    /// Regex rewrites applied to a file's names before `names` when loading: other spellings of
    /// a reference name (a tied copy, a prefix some checkpoints carry).
    pub aliases: &'static [(&'static str, &'static str)],
    /// Prefixes of file tensors the model does not use (e.g. the decoder when only the encoder
    /// is loaded); any other tensor of the file that the model lacks is an error.
    pub ignored: &'static [&'static str],
}

/// Regex of a template (anchored, `{i}` and `{*}` as named groups).
fn pattern(template: &str) -> String {
    let escaped = template
        .replace('.', r"\.")
        .replace("{i}", r"(?P<i>\d+)")
        .replace("{*}", "(?P<rest>.+)");
    format!("^{escaped}$")
}

/// Replacement string of a template for the regex of [`pattern`].
fn replacement(template: &str) -> String {
    template.replace("{i}", "${i}").replace("{*}", "${rest}")
}

impl NameTable {
    /// File names → burn paths (aliases first).
    pub fn to_burn(&self) -> KeyRemapper {
        let aliases = self
            .aliases
            .iter()
            .map(|&(f, t)| (f.to_string(), t.to_string()));
        let names = self
            .names
            .iter()
            .map(|&(burn, reference)| (pattern(reference), replacement(burn)));
        KeyRemapper::from_pattern_iter(aliases.chain(names)).expect("valid name table")
    }

    /// Burn paths → reference names.
    pub fn to_reference(&self) -> KeyRemapper {
        KeyRemapper::from_pattern_iter(
            self.names
                .iter()
                .map(|&(burn, reference)| (pattern(burn), replacement(reference))),
        )
        .expect("valid name table")
    }

    fn aliases(&self) -> KeyRemapper {
        KeyRemapper::from_pattern_iter(self.aliases.iter().copied()).expect("valid name table")
    }

    fn ignores(&self, name: &str) -> bool {
        self.ignored.iter().any(|p| name.starts_with(p))
    }
}

/// Converts float tensors of other precisions (F16, BF16, F64) to F32 as they load.
#[derive(Debug, Clone, Copy)]
struct ToF32;

impl ModuleAdapter for ToF32 {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        if !matches!(snapshot.dtype, DType::F16 | DType::BF16 | DType::F64) {
            return snapshot.clone();
        }
        let data = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data()?.convert_dtype(DType::F32))),
            DType::F32,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// Loads the safetensors file at `path` into `module` (constructed with the file's shapes),
/// by the names of `table`. Every parameter of the module must be in the file with its shape,
/// and every tensor of the file must belong to the module (or be ignored by the table).
pub fn load_safetensors<B: Backend, M: Module<B>>(
    module: &mut M,
    path: &Path,
    table: &NameTable,
) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .remap(table.to_burn())
        .with_from_adapter(PyTorchToBurnAdapter.chain(ToF32))
        .allow_partial(true)
        .validate(false);
    let unreadable = |source| Error::Weights {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let result = module.load_from(&mut store).map_err(unreadable)?;
    // Every parameter got a tensor (none missing, no shape errors), and every tensor of the file
    // that is not ignored went into a parameter. The latter is counted, not read off
    // `result.unused`: burn-store lists a tensor found under an adapter's alternative name
    // (LayerNorm `weight` for `gamma`) as unused although it was applied.
    let in_file = store
        .keys()
        .map_err(unreadable)?
        .iter()
        .filter(|name| !table.ignores(name))
        .count();
    if result.errors.is_empty() && result.missing.is_empty() && result.applied.len() == in_file {
        return Ok(());
    }
    let issues = mismatches(module, path, table)?;
    if issues.is_empty() {
        // Not a naming or shape problem (e.g. unreadable data): burn-store's own report.
        return Err(Error::WeightsUnreadable {
            path: path.to_path_buf(),
            report: result.to_string(),
        });
    }
    Err(Error::WeightsMismatch {
        path: path.to_path_buf(),
        issues,
    })
}

/// The differences between what `module` expects (reference names and PyTorch shapes, in the
/// module's order) and what the file holds: missing tensors and wrong shapes, then the file's
/// tensors that the module does not have.
fn mismatches<B: Backend, M: Module<B>>(
    module: &M,
    path: &Path,
    table: &NameTable,
) -> Result<Vec<String>> {
    let (expected, _) = table.to_reference().remap(module.collect(
        None,
        Some(Box::new(BurnToPyTorchAdapter)),
        false,
    ));
    let mut file = SafetensorsStore::from_file(path).remap(table.aliases());
    let found: BTreeMap<String, Vec<usize>> = file
        .get_all_snapshots()
        .map_err(|source| Error::Weights {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?
        .iter()
        .map(|(name, s)| (name.clone(), s.shape.to_vec()))
        .collect();
    let mut issues = Vec::new();
    let mut known = HashSet::new();
    for snapshot in &expected {
        let name = snapshot.full_path();
        let want = snapshot.shape.to_vec();
        match found.get(&name) {
            None => issues.push(format!("missing tensor `{name}` (expected shape {want:?})")),
            Some(shape) if *shape != want => issues.push(format!(
                "tensor `{name}` has shape {shape:?}, expected {want:?}"
            )),
            Some(_) => {}
        }
        known.insert(name);
    }
    for (name, shape) in &found {
        if !known.contains(name) && !table.ignores(name) {
            issues.push(format!(
                "unexpected tensor `{name}` (shape {shape:?}): the model has no such parameter"
            ));
        }
    }
    Ok(issues)
}

/// Writes `module` to `path` as safetensors under the reference names of `table`, in PyTorch
/// layouts, with the metadata `{"format": "pt"}` (Hugging Face's convention). Every parameter
/// must have a reference name in the table.
pub fn save_safetensors<B: Backend, M: Module<B>>(
    module: &M,
    path: &Path,
    table: &NameTable,
) -> Result<()> {
    let to_reference = table.to_reference();
    let unnamed: Vec<String> = module
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), false)
        .iter()
        .map(TensorSnapshot::full_path)
        .filter(|p| !to_reference.patterns.iter().any(|(re, _)| re.is_match(p)))
        .collect();
    if !unnamed.is_empty() {
        return Err(Error::UnnamedParameters {
            path: path.to_path_buf(),
            names: unnamed,
        });
    }
    let mut store = SafetensorsStore::from_file(path)
        .remap(to_reference)
        .with_to_adapter(BurnToPyTorchAdapter)
        .clear_metadata()
        .metadata("format", "pt")
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|source| Error::Weights {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_anchored_patterns() {
        assert_eq!(
            pattern("encoder.{i}.attn.{*}"),
            r"^encoder\.(?P<i>\d+)\.attn\.(?P<rest>.+)$"
        );
        assert_eq!(
            replacement("encoder.block.{i}.x.{*}"),
            "encoder.block.${i}.x.${rest}"
        );
    }
}
