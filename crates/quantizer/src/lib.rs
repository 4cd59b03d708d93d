//! Item embeddings to semantic ids.
//!
//! [`ItemQuantizer`] is the interface the pipeline uses; [`RqKMeans`] (residual k-means, the
//! reference's tokenizer) is the implementation today, so other tokenizers (RQ-VAE, balanced
//! k-means, …) can be added without touching other crates. [`add_dedup_digit`] makes every
//! item's id unique, as the reference does.

pub mod error;
pub mod kmeans;

use std::collections::HashMap;

use artifacts::config::{KMeansAlgorithm, QuantizerConfig};
use artifacts::embeddings::ItemEmbeddings;
pub use error::{Error, Result};
use kmeans::{Points, best_of, check_input, lloyd, minibatch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Codes of every item at every level, with the codebooks that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// `codes[i][l]` = item `i`'s code at level `l`.
    pub codes: Vec<Vec<u32>>,
    /// `[levels][codebook_size][dim]` centroids, flattened.
    pub codebooks: Vec<f32>,
    /// Codes per level.
    pub codebook_size: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Per-level quality.
    pub levels: Vec<LevelStats>,
}

/// Quality of one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelStats {
    /// Level index.
    pub level: usize,
    /// Sum of squared distances of this level's (normalised) residuals to their centroids.
    pub inertia: f64,
    /// Mean squared quantisation error per item at this level (inertia / items).
    pub reconstruction_error: f64,
    /// Codes used at least once.
    pub used_codes: usize,
    /// `used_codes / codebook_size`.
    pub utilisation: f64,
    /// exp(entropy) of the code distribution: the effective number of codes.
    pub perplexity: f64,
    /// Mini-batch updates or Lloyd iterations.
    pub iterations: usize,
}

/// A way to turn item embeddings into per-level codes.
pub trait ItemQuantizer {
    /// Short name for manifests and logs.
    fn name(&self) -> String;
    /// Codes for every item.
    fn quantize(&self, embeddings: &ItemEmbeddings) -> Result<Quantized>;
}

/// Residual k-means: at each level, (optionally) L2-normalise the residual, cluster it, subtract
/// the assigned centroid.
pub struct RqKMeans {
    cfg: QuantizerConfig,
}

impl RqKMeans {
    /// A residual k-means quantizer with these settings (checked).
    pub fn new(cfg: &QuantizerConfig) -> Result<RqKMeans> {
        let check = |ok: bool, key: &'static str, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidConfig {
                    key,
                    message: message.to_string(),
                })
            }
        };
        check(
            cfg.levels >= 1,
            "quantizer.levels",
            "quantizer.levels must be at least 1",
        )?;
        check(
            cfg.codebook_size >= 2,
            "quantizer.codebook_size",
            "quantizer.codebook_size must be at least 2",
        )?;
        check(
            cfg.batch_size >= 1 && cfg.minibatch_updates >= 1,
            "quantizer.batch_size",
            "quantizer.batch_size and minibatch_updates must be at least 1",
        )?;
        check(
            cfg.max_iter >= 1 && cfg.n_init >= 1,
            "quantizer.max_iter",
            "quantizer.max_iter and n_init must be at least 1",
        )?;
        Ok(RqKMeans { cfg: cfg.clone() })
    }
}

impl ItemQuantizer for RqKMeans {
    fn name(&self) -> String {
        let algo = match self.cfg.algorithm {
            KMeansAlgorithm::Minibatch => "minibatch",
            KMeansAlgorithm::Lloyd => "lloyd",
        };
        format!(
            "rq-kmeans ({} x {}, {algo})",
            self.cfg.levels, self.cfg.codebook_size
        )
    }

    fn quantize(&self, emb: &ItemEmbeddings) -> Result<Quantized> {
        let cfg = &self.cfg;
        let (n, dim, k) = (emb.n, emb.dim, cfg.codebook_size);
        check_input(
            Points {
                data: &emb.data,
                dim,
            },
            k,
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut resid = emb.data.clone();
        let mut codes = vec![Vec::with_capacity(cfg.levels); n];
        let mut codebooks = Vec::with_capacity(cfg.levels * k * dim);
        let mut levels = Vec::new();
        for level in 0..cfg.levels {
            if cfg.normalize_residuals {
                normalize_rows(&mut resid, dim);
            }
            let points = Points { data: &resid, dim };
            let fit = best_of(cfg.n_init, &mut rng, |r| match cfg.algorithm {
                KMeansAlgorithm::Minibatch => minibatch(
                    points,
                    k,
                    cfg.batch_size,
                    cfg.init_buffer,
                    cfg.minibatch_updates,
                    r,
                ),
                KMeansAlgorithm::Lloyd => lloyd(points, k, cfg.max_iter, cfg.tol, r),
            });
            let mut counts = vec![0usize; k];
            for (i, &c) in fit.labels.iter().enumerate() {
                codes[i].push(c);
                counts[c as usize] += 1;
                let centroid = &fit.centroids[c as usize * dim..(c as usize + 1) * dim];
                for (r, &cv) in resid[i * dim..(i + 1) * dim].iter_mut().zip(centroid) {
                    *r -= cv;
                }
            }
            let entropy: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / n as f64;
                    -p * p.ln()
                })
                .sum();
            let used = counts.iter().filter(|&&c| c > 0).count();
            levels.push(LevelStats {
                level,
                inertia: fit.inertia,
                reconstruction_error: fit.inertia / n as f64,
                used_codes: used,
                utilisation: used as f64 / k as f64,
                perplexity: entropy.exp(),
                iterations: fit.iterations,
            });
            codebooks.extend_from_slice(&fit.centroids);
        }
        Ok(Quantized {
            codes,
            codebooks,
            codebook_size: k,
            dim,
            levels,
        })
    }
}

fn normalize_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            row.iter_mut()
                .for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
    }
}

/// Collision facts of the k-means codes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DedupStats {
    /// Share of items whose k-means code no other item has.
    pub unique_share: f64,
    /// Items in the largest group sharing one code.
    pub largest_group: usize,
    /// Codes shared by more than one item.
    pub colliding_codes: usize,
    /// The largest de-duplication digit given.
    pub max_digit: usize,
}

/// Appends the de-duplication digit (docs/reference.md §3): 0 for an item whose code is unique; for a
/// code shared by n items, 1, 2, …, n in item order. Fails when a digit would exceed `max_dedup`.
pub fn add_dedup_digit(
    codes: &[Vec<u32>],
    max_dedup: usize,
) -> Result<(Vec<Vec<u32>>, DedupStats)> {
    let mut groups: HashMap<&[u32], usize> = HashMap::new();
    for c in codes {
        *groups.entry(c.as_slice()).or_default() += 1;
    }
    let largest = groups.values().copied().max().unwrap_or(0);
    if largest > max_dedup {
        let code = groups
            .iter()
            .find(|(_, v)| **v == largest)
            .map(|(c, _)| c.to_vec())
            .unwrap_or_default();
        return Err(Error::DedupOverflow {
            largest,
            code,
            max_dedup,
        });
    }
    let mut seen: HashMap<&[u32], u32> = HashMap::new();
    let out = codes
        .iter()
        .map(|c| {
            let digit = if groups[c.as_slice()] == 1 {
                0
            } else {
                let s = seen.entry(c.as_slice()).or_default();
                *s += 1;
                *s
            };
            let mut full = c.clone();
            full.push(digit);
            full
        })
        .collect();
    let unique = groups.values().filter(|&&v| v == 1).count();
    Ok((
        out,
        DedupStats {
            unique_share: unique as f64 / codes.len().max(1) as f64,
            largest_group: largest,
            colliding_codes: groups.values().filter(|&&v| v > 1).count(),
            max_digit: if largest > 1 { largest } else { 0 },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_digit_follows_the_reference() {
        let codes = vec![
            vec![1, 2, 3],
            vec![4, 5, 6],
            vec![1, 2, 3],
            vec![1, 2, 3],
            vec![7, 7, 7],
            vec![4, 5, 6],
        ];
        let (out, stats) = add_dedup_digit(&codes, 255).unwrap();
        let digits: Vec<u32> = out.iter().map(|c| c[3]).collect();
        assert_eq!(digits, vec![1, 1, 2, 3, 0, 2]);
        assert_eq!(stats.largest_group, 3);
        assert_eq!(stats.colliding_codes, 2);
        assert!((stats.unique_share - 1.0 / 6.0).abs() < 1e-12);
        let unique: std::collections::HashSet<_> = out.iter().collect();
        assert_eq!(unique.len(), 6, "every item gets a unique id");
        let err = add_dedup_digit(&codes, 2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DedupOverflow {
                    largest: 3,
                    max_dedup: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let m = err.to_string();
        assert!(
            m.contains("3 items share the code [1, 2, 3]") && m.contains("max_dedup = 2"),
            "{m}"
        );
    }
}
