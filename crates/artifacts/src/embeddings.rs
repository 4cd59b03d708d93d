//! The `ItemEmbeddings` artifact: `embeddings.safetensors` holding one f32 tensor `embeddings`
//! of shape `[n_items, dim]`, row = 0-based item id.

use std::path::Path;

use crate::error::{Error, Result, io};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// Version of the files; bump when their meaning changes.
pub const EMBEDDINGS_SCHEMA_VERSION: u32 = 1;
/// File name inside the artifact directory.
pub const EMBEDDINGS_FILE: &str = "embeddings.safetensors";

/// A dense `[n, dim]` matrix of item vectors, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemEmbeddings {
    /// Number of items (rows).
    pub n: usize,
    /// Dimension (columns).
    pub dim: usize,
    /// Row-major values, `n * dim` of them.
    pub data: Vec<f32>,
}

impl ItemEmbeddings {
    /// Wraps row-major values, checking the shape and that every value is finite.
    pub fn new(n: usize, dim: usize, data: Vec<f32>) -> Result<ItemEmbeddings> {
        if n == 0 || dim == 0 {
            return Err(Error::WrongDimension {
                what: "embeddings".to_string(),
                expected: "a non-empty [n, dim]".to_string(),
                found: format!("[{n}, {dim}]"),
            });
        }
        if data.len() != n * dim {
            return Err(Error::WrongDimension {
                what: format!("[{n}, {dim}] embeddings"),
                expected: format!("{n} x {dim} = {} values", n * dim),
                found: data.len().to_string(),
            });
        }
        if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteEmbedding {
                item: pos / dim + 1,
                value: data[pos],
                dimension: pos % dim,
            });
        }
        Ok(ItemEmbeddings { n, dim, data })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Writes `embeddings.safetensors` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![self.n, self.dim], &bytes)?;
        let path = dir.join(EMBEDDINGS_FILE);
        safetensors::serialize_to_file([("embeddings", view)], None, &path).map_err(|source| {
            Error::Safetensors {
                path: path.clone(),
                source,
            }
        })
    }

    /// Reads `embeddings.safetensors` from an artifact directory.
    pub fn read(dir: &Path) -> Result<ItemEmbeddings> {
        let path = dir.join(EMBEDDINGS_FILE);
        let bytes = std::fs::read(&path).map_err(io("read", &path))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
            path: path.clone(),
            source,
        })?;
        let t = st.tensor("embeddings").map_err(|_| Error::MissingTensor {
            path: path.clone(),
            tensor: "embeddings",
        })?;
        if t.dtype() != Dtype::F32 {
            return Err(Error::WrongTensor {
                path,
                tensor: "embeddings",
                expected: "F32".to_string(),
                found: format!("{:?}", t.dtype()),
            });
        }
        let shape = t.shape();
        if shape.len() != 2 {
            return Err(Error::WrongTensor {
                path,
                tensor: "embeddings",
                expected: "[n_items, dim]".to_string(),
                found: format!("{shape:?}"),
            });
        }
        let data = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        ItemEmbeddings::new(shape[0], shape[1], data).map_err(|e| e.in_path(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let e = ItemEmbeddings::new(2, 3, vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]).unwrap();
        e.write(dir.path()).unwrap();
        let r = ItemEmbeddings::read(dir.path()).unwrap();
        assert_eq!(r, e);
        assert_eq!(r.row(1), &[-1.0, 0.5, 0.0]);
        assert!(matches!(
            ItemEmbeddings::new(2, 3, vec![0.0; 5]),
            Err(Error::WrongDimension { .. })
        ));
        let err = ItemEmbeddings::new(2, 2, vec![0.0, 0.0, f32::NAN, 1.0]).unwrap_err();
        assert!(
            matches!(&err, Error::NonFiniteEmbedding { item: 2, dimension: 0, value } if value.is_nan()),
            "{err:?}"
        );
        let m = err.to_string();
        assert!(m.contains("item 2") && m.contains("NaN"), "{m}");
    }
}
