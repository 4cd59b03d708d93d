//! Collaborative item embeddings for items without text: positive pointwise mutual information
//! (PPMI) of item co-occurrence in the TRAINING sequences only (no validation/test item is ever
//! read), factorised by a seeded randomized SVD (Halko, Martinsson & Tropp 2011). Item `i`'s
//! vector is `U_i · sqrt(Σ)`. Items that never co-occur in training get a small seeded random
//! vector so that they stay distinct (counted in the report).

use crate::error::{Error, Result};
use artifacts::config::CfConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// What the collaborative embedding did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CfReport {
    /// Distinct co-occurring item pairs (non-zeros of the PPMI matrix, both triangles).
    pub nonzeros: usize,
    /// Items with no co-occurrence in training.
    pub items_without_signal: usize,
    /// Share of the PPMI matrix's squared Frobenius norm captured by the kept singular values.
    pub explained: f64,
}

/// Symmetric sparse matrix in compressed rows.
struct Csr {
    n: usize,
    offsets: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

impl Csr {
    fn matvec(&self, x: &[f64]) -> Vec<f64> {
        (0..self.n)
            .into_par_iter()
            .map(|i| {
                (self.offsets[i]..self.offsets[i + 1])
                    .map(|p| self.vals[p] * x[self.cols[p] as usize])
                    .sum()
            })
            .collect()
    }

    /// `M · X` for a matrix given by its columns.
    fn matmul(&self, cols: &[Vec<f64>]) -> Vec<Vec<f64>> {
        cols.par_iter().map(|c| self.matvec(c)).collect()
    }
}

/// PPMI co-occurrence matrix of items within `window` positions in the training sequences.
fn ppmi(train: &[Vec<u32>], n_items: usize, window: usize) -> Csr {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for seq in train {
        for (p, &a) in seq.iter().enumerate() {
            for &b in seq.iter().skip(p + 1).take(window) {
                if a != b {
                    pairs.push((a, b));
                    pairs.push((b, a));
                }
            }
        }
    }
    pairs.par_sort_unstable();
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n_items];
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j] == pairs[i] {
            j += 1;
        }
        rows[pairs[i].0 as usize].push((pairs[i].1, (j - i) as f64));
        i = j;
    }
    let row_sum: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().map(|&(_, c)| c).sum())
        .collect();
    let total: f64 = row_sum.iter().sum();
    let mut offsets = vec![0];
    let (mut cols, mut vals) = (Vec::new(), Vec::new());
    for (a, row) in rows.iter().enumerate() {
        for &(b, c) in row {
            let pmi = (c * total / (row_sum[a] * row_sum[b as usize])).ln();
            if pmi > 0.0 {
                cols.push(b);
                vals.push(pmi);
            }
        }
        offsets.push(cols.len());
    }
    Csr {
        n: n_items,
        offsets,
        cols,
        vals,
    }
}

/// Orthonormalises columns in place (modified Gram–Schmidt, twice for stability).
fn orthonormalize(cols: &mut [Vec<f64>]) {
    for _ in 0..2 {
        for j in 0..cols.len() {
            for i in 0..j {
                let (left, right) = cols.split_at_mut(j);
                let dot: f64 = left[i]
                    .iter()
                    .zip(right[0].iter())
                    .map(|(a, b)| a * b)
                    .sum();
                for (x, q) in right[0].iter_mut().zip(&left[i]) {
                    *x -= dot * q;
                }
            }
            let norm = cols[j].iter().map(|x| x * x).sum::<f64>().sqrt();
            let inv = if norm > 1e-300 { 1.0 / norm } else { 0.0 };
            cols[j].iter_mut().for_each(|x| *x *= inv);
        }
    }
}

/// Eigen-decomposition of a symmetric matrix (cyclic Jacobi). Returns eigenvalues in descending
/// order and the matching eigenvectors as columns (`vecs[k]` = k-th eigenvector).
#[allow(clippy::needless_range_loop)] // index form mirrors the rotation formulas
pub fn symmetric_eigen(a: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a.to_vec();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i][j] * m[i][j])
            .sum();
        let scale: f64 = (0..n).map(|i| m[i][i] * m[i][i]).sum::<f64>().max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if m[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * m[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k][p], m[k][q]);
                    m[k][p] = c * mkp - s * mkq;
                    m[k][q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p][k], m[q][k]);
                    m[p][k] = c * mpk - s * mqk;
                    m[q][k] = s * mpk + c * mqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[j][j].total_cmp(&m[i][i]));
    let values = order.iter().map(|&i| m[i][i]).collect();
    let vectors = order
        .iter()
        .map(|&k| (0..n).map(|r| v[r][k]).collect())
        .collect();
    (values, vectors)
}

/// Collaborative embeddings `[n_items, cfg.dim]` (row-major, f32) from training sequences.
pub fn cf_embeddings(
    train: &[Vec<u32>],
    n_items: usize,
    cfg: &CfConfig,
) -> Result<(Vec<f32>, CfReport)> {
    let invalid = |key, message: String| Err(Error::InvalidConfig { key, message });
    if cfg.dim < 1 {
        return invalid(
            "embedding.cf.dim",
            "embedding.cf.dim must be at least 1".into(),
        );
    }
    if cfg.window < 1 {
        return invalid(
            "embedding.cf.window",
            "embedding.cf.window must be at least 1".into(),
        );
    }
    if cfg.dim >= n_items {
        return invalid(
            "embedding.cf.dim",
            format!(
                "embedding.cf.dim ({}) must be below the number of items ({n_items})",
                cfg.dim
            ),
        );
    }
    let m = ppmi(train, n_items, cfg.window);
    if m.vals.is_empty() {
        return Err(Error::NoCooccurrence);
    }
    let l = (cfg.dim + 10).min(n_items);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let omega: Vec<Vec<f64>> = (0..l)
        .map(|_| (0..n_items).map(|_| gaussian(&mut rng)).collect())
        .collect();
    let mut q = m.matmul(&omega);
    orthonormalize(&mut q);
    for _ in 0..cfg.power_iters {
        q = m.matmul(&q);
        orthonormalize(&mut q);
    }
    // B = Qᵀ M; BBᵀ = (MQ)ᵀ(MQ) since M is symmetric.
    let mq = m.matmul(&q);
    let gram: Vec<Vec<f64>> = (0..l)
        .map(|i| {
            (0..l)
                .map(|j| mq[i].iter().zip(&mq[j]).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    let (eig, vecs) = symmetric_eigen(&gram);
    let frob: f64 = m.vals.iter().map(|v| v * v).sum();
    let sigma: Vec<f64> = eig
        .iter()
        .take(cfg.dim)
        .map(|e| e.max(0.0).sqrt())
        .collect();
    let explained = sigma.iter().map(|s| s * s).sum::<f64>() / frob;

    let mut out = vec![0f32; n_items * cfg.dim];
    let mut without = 0;
    for i in 0..n_items {
        let has_signal = m.offsets[i + 1] > m.offsets[i];
        for (k, s) in sigma.iter().enumerate() {
            let u_ik: f64 = (0..l).map(|c| q[c][i] * vecs[k][c]).sum();
            out[i * cfg.dim + k] = (u_ik * s.sqrt()) as f32;
        }
        if !has_signal {
            without += 1;
            for k in 0..cfg.dim {
                out[i * cfg.dim + k] = (1e-3 * gaussian(&mut rng)) as f32;
            }
        }
    }
    Ok((
        out,
        CfReport {
            nonzeros: m.vals.len(),
            items_without_signal: without,
            explained,
        },
    ))
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_eigen_of_a_known_matrix() {
        let a = vec![
            vec![4.0, 1.0, 0.0],
            vec![1.0, 3.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let (vals, vecs) = symmetric_eigen(&a);
        let r = (5.0f64).sqrt();
        assert!((vals[0] - (3.5 + r / 2.0)).abs() < 1e-10);
        assert!((vals[1] - (3.5 - r / 2.0)).abs() < 1e-10);
        assert!((vals[2] - 1.0).abs() < 1e-10);
        for (k, v) in vecs.iter().enumerate() {
            let av: Vec<f64> = (0..3)
                .map(|i| (0..3).map(|j| a[i][j] * v[j]).sum())
                .collect();
            for i in 0..3 {
                assert!((av[i] - vals[k] * v[i]).abs() < 1e-9);
            }
        }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn items_bought_together_get_similar_vectors() {
        // Two communities of 20 items; users browse within one community. Item 40 never
        // appears in training.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let train: Vec<Vec<u32>> = (0..400)
            .map(|u| {
                let base = if u % 2 == 0 { 0 } else { 20 };
                (0..8).map(|_| base + rng.random_range(0..20u32)).collect()
            })
            .collect();
        let cfg = CfConfig {
            dim: 4,
            window: 2,
            power_iters: 3,
            seed: 3,
        };
        let (e, report) = cf_embeddings(&train, 41, &cfg).unwrap();
        assert_eq!(report.items_without_signal, 1);
        assert!(report.explained > 0.0 && report.explained <= 1.0 + 1e-9);
        let row = |i: usize| &e[i * 4..(i + 1) * 4];
        let same: f32 = (1..20).map(|j| cosine(row(0), row(j))).sum::<f32>() / 19.0;
        let across: f32 = (20..40).map(|j| cosine(row(0), row(j))).sum::<f32>() / 20.0;
        assert!(same > 0.8 && across < 0.2, "same {same}, across {across}");
        // Deterministic for a seed.
        assert_eq!(cf_embeddings(&train, 41, &cfg).unwrap().0, e);
    }

    #[test]
    fn no_cooccurrence_is_an_error() {
        let cfg = CfConfig::default();
        assert!(matches!(
            cf_embeddings(&[vec![1], vec![2]], 100, &cfg),
            Err(Error::NoCooccurrence)
        ));
    }
}
