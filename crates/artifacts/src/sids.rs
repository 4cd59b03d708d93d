//! The `SemanticIds` artifact: `semantic_ids.parquet` (item, c0..c{L-1}, dedup),
//! `codebooks.safetensors` (`codebooks`: `[levels, codebook_size, dim]` f32) and `stats.json`.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result, io};

/// Version of the files; bump when their meaning changes.
pub const SIDS_SCHEMA_VERSION: u32 = 1;

/// The names of the artifact's files inside its directory.
pub mod files {
    /// Every item's digits (`item`, `c0`..`c{L-1}`, `dedup`).
    pub const SEMANTIC_IDS: &str = "semantic_ids.parquet";
    /// The k-means centroids, tensor `codebooks` of shape `[levels, codebook_size, dim]`.
    pub const CODEBOOKS: &str = "codebooks.safetensors";
    /// Quantisation statistics (written by the `sids` stage).
    pub const STATS: &str = "stats.json";
}

/// Every item's code: `levels` k-means digits plus a de-duplication digit.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticIds {
    /// `codes[i]` = item `i`'s digits, `levels + 1` of them (the last is the dedup digit).
    pub codes: Vec<Vec<u32>>,
    /// Codes per level (the dedup digit may use fewer).
    pub codebook_size: usize,
    /// `[levels][codebook_size][dim]` centroids, flattened.
    pub codebooks: Vec<f32>,
    /// Embedding dimension of the codebooks.
    pub dim: usize,
}

impl SemanticIds {
    /// k-means levels (digits before the dedup digit).
    pub fn levels(&self) -> usize {
        self.codes.first().map_or(0, |c| c.len() - 1)
    }

    /// Writes `semantic_ids.parquet` and `codebooks.safetensors` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let levels = self.levels();
        let mut cols = vec![Column::new(
            "item".into(),
            (0..self.codes.len() as u32).collect::<Vec<_>>(),
        )];
        for l in 0..levels {
            cols.push(Column::new(
                format!("c{l}").into(),
                self.codes.iter().map(|c| c[l]).collect::<Vec<_>>(),
            ));
        }
        cols.push(Column::new(
            "dedup".into(),
            self.codes.iter().map(|c| c[levels]).collect::<Vec<_>>(),
        ));
        let mut df = DataFrame::new_infer_height(cols)?;
        let path = dir.join(files::SEMANTIC_IDS);
        let file = File::create(&path).map_err(io("create", &path))?;
        ParquetWriter::new(file)
            .finish(&mut df)
            .map_err(|source| Error::Parquet {
                action: "write",
                path: path.clone(),
                source,
            })?;

        let bytes: Vec<u8> = self
            .codebooks
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view = TensorView::new(
            Dtype::F32,
            vec![levels, self.codebook_size, self.dim],
            &bytes,
        )?;
        let cb_path = dir.join(files::CODEBOOKS);
        safetensors::serialize_to_file([("codebooks", view)], None, &cb_path).map_err(
            |source| Error::Safetensors {
                path: cb_path.clone(),
                source,
            },
        )?;
        Ok(())
    }

    /// Reads a `SemanticIds` artifact directory.
    pub fn read(dir: &Path) -> Result<SemanticIds> {
        let path = dir.join(files::SEMANTIC_IDS);
        let file = File::open(&path).map_err(io("open", &path))?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|source| Error::Parquet {
                action: "read",
                path: path.clone(),
                source,
            })?;
        let levels = df.width() - 2;
        let mut codes = vec![Vec::with_capacity(levels + 1); df.height()];
        for name in (0..levels)
            .map(|l| format!("c{l}"))
            .chain(["dedup".to_string()])
        {
            for (row, v) in codes
                .iter_mut()
                .zip(df.column(&name)?.u32()?.into_no_null_iter())
            {
                row.push(v);
            }
        }
        let cb_path = dir.join(files::CODEBOOKS);
        let bytes = std::fs::read(&cb_path).map_err(io("read", &cb_path))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
            path: cb_path.clone(),
            source,
        })?;
        let t = st.tensor("codebooks").map_err(|_| Error::MissingTensor {
            path: cb_path.clone(),
            tensor: "codebooks",
        })?;
        let shape = t.shape().to_vec();
        if shape.len() != 3 || shape[0] != levels {
            return Err(Error::WrongTensor {
                path: cb_path,
                tensor: "codebooks",
                expected: format!("[{levels}, codebook_size, dim] ({levels} levels)"),
                found: format!("{shape:?}"),
            });
        }
        let codebooks = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(SemanticIds {
            codes,
            codebook_size: shape[1],
            codebooks,
            dim: shape[2],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = SemanticIds {
            codes: vec![vec![1, 2, 3, 0], vec![1, 2, 3, 1], vec![4, 5, 6, 0]],
            codebook_size: 8,
            codebooks: (0..3 * 8 * 2).map(|v| v as f32).collect(),
            dim: 2,
        };
        s.write(dir.path()).unwrap();
        assert_eq!(SemanticIds::read(dir.path()).unwrap(), s);
        assert_eq!(s.levels(), 3);
    }
}
