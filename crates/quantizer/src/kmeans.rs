//! k-means on row-major `f32` points: nearest-centroid assignment (parallel, bit-identical on
//! any thread count: every point's distances are computed in a fixed order), k-means++ seeding,
//! the reference's mini-batch updates, and Lloyd iterations.

use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Row-major points `[n, dim]`.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    /// Values, `n * dim`.
    pub data: &'a [f32],
    /// Dimension.
    pub dim: usize,
}

impl<'a> Points<'a> {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Squared Euclidean distance, accumulated in a fixed order: 32 independent lanes (so the CPU
/// keeps several vector FMAs in flight), summed pairwise, then the tail.
#[inline]
pub fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let mut acc = [0f32; LANES];
    let chunks = a.len() / LANES;
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            let d = ca[l] - cb[l];
            acc[l] += d * d;
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    let mut tail = 0f32;
    for i in chunks * LANES..a.len() {
        let d = a[i] - b[i];
        tail += d * d;
    }
    acc[0] + tail
}

/// Rows per block of the blocked distance computation. Blocks are fixed by this constant, not
/// by the thread count, so results are bit-identical on any number of threads.
const BLOCK: usize = 256;

/// Nearest centroid of every point (lowest index on ties) and its squared distance, computed as
/// ‖x‖² + ‖c‖² − 2·x·c with one single-threaded GEMM per block of points (blocks in parallel).
pub fn assign(points: Points, centroids: &[f32]) -> (Vec<u32>, Vec<f32>) {
    let dim = points.dim;
    let k = centroids.len() / dim;
    let n = points.len();
    let c_norms: Vec<f32> = centroids
        .chunks_exact(dim)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    let mut labels = vec![0u32; n];
    let mut dists = vec![0f32; n];
    labels
        .par_chunks_mut(BLOCK)
        .zip(dists.par_chunks_mut(BLOCK))
        .enumerate()
        .for_each(|(b, (lab, dis))| {
            let start = b * BLOCK;
            let rows = lab.len();
            let block = &points.data[start * dim..(start + rows) * dim];
            let mut dots = vec![0f32; rows * k];
            // SAFETY: dst is rows×k row-major, lhs rows×dim row-major, rhs = centroidsᵀ (dim×k) read
            // from the k×dim row-major centroids; the buffers have exactly those sizes.
            unsafe {
                gemm::gemm(
                    rows,
                    k,
                    dim,
                    dots.as_mut_ptr(),
                    1,
                    k as isize,
                    false,
                    block.as_ptr(),
                    1,
                    dim as isize,
                    centroids.as_ptr(),
                    dim as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            for r in 0..rows {
                let x = &block[r * dim..(r + 1) * dim];
                let x_norm: f32 = x.iter().map(|v| v * v).sum();
                let mut best = (0u32, f32::INFINITY);
                for (c, (&dot, &cn)) in dots[r * k..(r + 1) * k].iter().zip(&c_norms).enumerate() {
                    let d = (x_norm + cn - 2.0 * dot).max(0.0);
                    if d < best.1 {
                        best = (c as u32, d);
                    }
                }
                lab[r] = best.0;
                dis[r] = best.1;
            }
        });
    (labels, dists)
}

/// k-means++: the first centroid uniformly, each next one sampled with probability ∝ the squared
/// distance to the nearest centroid chosen so far. With `trials` > 1 ("greedy k-means++", as
/// scikit-learn), that many candidates are sampled per step and the one that lowers the total
/// squared distance most is kept.
pub fn kmeans_plus_plus(points: Points, k: usize, trials: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = points.len();
    let dim = points.dim;
    let mut centroids = Vec::with_capacity(k * dim);
    centroids.extend_from_slice(points.row(rng.random_range(0..n)));
    let mut min_d: Vec<f32> = (0..n)
        .into_par_iter()
        .map(|i| sq_dist(points.row(i), &centroids[..dim]))
        .collect();
    for _ in 1..k {
        let total: f64 = min_d.iter().map(|&d| f64::from(d)).sum();
        let mut best: Option<(f64, usize, Vec<f32>)> = None;
        for _ in 0..trials.max(1) {
            let cand = if total > 0.0 {
                let target = rng.random::<f64>() * total;
                let mut acc = 0.0;
                min_d
                    .iter()
                    .position(|&d| {
                        acc += f64::from(d);
                        acc > target
                    })
                    .unwrap_or(n - 1)
            } else {
                rng.random_range(0..n)
            };
            let c = points.row(cand);
            let updated: Vec<f32> = min_d
                .par_iter()
                .enumerate()
                .map(|(i, &m)| m.min(sq_dist(points.row(i), c)))
                .collect();
            let potential: f64 = updated.iter().map(|&d| f64::from(d)).sum();
            if best.as_ref().is_none_or(|(p, _, _)| potential < *p) {
                best = Some((potential, cand, updated));
            }
        }
        let (_, pick, updated) = best.expect("at least one candidate");
        centroids.extend_from_slice(points.row(pick));
        min_d = updated;
    }
    centroids
}

/// Result of one k-means fit.
#[derive(Debug, Clone)]
pub struct Fit {
    /// `[k, dim]` centroids.
    pub centroids: Vec<f32>,
    /// Nearest centroid of every point.
    pub labels: Vec<u32>,
    /// Sum of squared distances to the assigned centroids.
    pub inertia: f64,
    /// Updates (mini-batch) or iterations (Lloyd) run.
    pub iterations: usize,
}

fn finish(points: Points, centroids: Vec<f32>, iterations: usize) -> Fit {
    let (labels, d) = assign(points, &centroids);
    let inertia = d.iter().map(|&v| f64::from(v)).sum();
    Fit {
        centroids,
        labels,
        inertia,
        iterations,
    }
}

/// Mini-batch k-means as the reference runs it (Sculley 2010): rows shuffled each pass, batches
/// of `batch` rows; k-means++ on the first `init_buffer` rows seen; then `updates` batches, each
/// moving every centroid c that received n_b > 0 points by c ← c − (n_b / N_c)(c − mean_b), with
/// N_c the running count.
pub fn minibatch(
    points: Points,
    k: usize,
    batch: usize,
    init_buffer: usize,
    updates: usize,
    rng: &mut ChaCha8Rng,
) -> Fit {
    let n = points.len();
    let dim = points.dim;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut cursor = 0;
    let mut next_batch = |rng: &mut ChaCha8Rng| -> Vec<usize> {
        if cursor >= n {
            order.shuffle(rng);
            cursor = 0;
        }
        let end = (cursor + batch).min(n);
        let b = order[cursor..end].to_vec();
        cursor = end;
        b
    };
    // Init buffer: whole batches until it holds at least `init_buffer` rows (capped at n).
    let mut buffer: Vec<usize> = Vec::new();
    while buffer.len() < init_buffer.min(n) {
        buffer.extend(next_batch(rng));
    }
    buffer.truncate(init_buffer.max(k));
    let buf_data: Vec<f32> = buffer
        .iter()
        .flat_map(|&i| points.row(i).iter().copied())
        .collect();
    let mut centroids = kmeans_plus_plus(
        Points {
            data: &buf_data,
            dim,
        },
        k,
        1, // the reference samples one candidate per step (torch.multinomial)
        rng,
    );
    let mut counts = vec![0f64; k];
    for _ in 0..updates {
        let rows = next_batch(rng);
        let data: Vec<f32> = rows
            .iter()
            .flat_map(|&i| points.row(i).iter().copied())
            .collect();
        let (labels, _) = assign(Points { data: &data, dim }, &centroids);
        let mut sums = vec![0f64; k * dim];
        let mut nb = vec![0usize; k];
        for (r, &c) in labels.iter().enumerate() {
            nb[c as usize] += 1;
            for (s, &v) in sums[c as usize * dim..(c as usize + 1) * dim]
                .iter_mut()
                .zip(&data[r * dim..(r + 1) * dim])
            {
                *s += f64::from(v);
            }
        }
        for c in 0..k {
            if nb[c] == 0 {
                continue;
            }
            counts[c] += nb[c] as f64;
            let lr = nb[c] as f64 / counts[c];
            for d in 0..dim {
                let mean = sums[c * dim + d] / nb[c] as f64;
                let cur = f64::from(centroids[c * dim + d]);
                centroids[c * dim + d] = (cur - lr * (cur - mean)) as f32;
            }
        }
    }
    finish(points, centroids, updates)
}

/// Lloyd's algorithm from k-means++ seeds, stopping as scikit-learn does: when the squared
/// centre shift of an iteration is at most `tol` × the mean per-feature variance of the points
/// (or after `max_iter` iterations). An empty cluster takes the point farthest from its centroid.
pub fn lloyd(points: Points, k: usize, max_iter: usize, tol: f64, rng: &mut ChaCha8Rng) -> Fit {
    let dim = points.dim;
    let n = points.len() as f64;
    let mut mean = vec![0f64; dim];
    let mut sq = vec![0f64; dim];
    for i in 0..points.len() {
        for (d, &v) in points.row(i).iter().enumerate() {
            mean[d] += f64::from(v);
            sq[d] += f64::from(v) * f64::from(v);
        }
    }
    let mean_var = (0..dim)
        .map(|d| sq[d] / n - (mean[d] / n).powi(2))
        .sum::<f64>()
        / dim as f64;
    let threshold = tol * mean_var;
    let trials = 2 + (k as f64).ln() as usize;
    let mut centroids = kmeans_plus_plus(points, k, trials, rng);
    let mut iterations = 0;
    for _ in 0..max_iter {
        iterations += 1;
        let (labels, dists) = assign(points, &centroids);
        let previous = centroids.clone();
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &c) in labels.iter().enumerate() {
            counts[c as usize] += 1;
            for (s, &v) in sums[c as usize * dim..(c as usize + 1) * dim]
                .iter_mut()
                .zip(points.row(i))
            {
                *s += f64::from(v);
            }
        }
        // Re-seed empty clusters from the worst-fitted points (each point used once).
        let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
        if !empty.is_empty() {
            let mut worst: Vec<usize> = (0..points.len()).collect();
            worst.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]).then(a.cmp(&b)));
            for (c, &p) in empty.iter().zip(&worst) {
                centroids[c * dim..(c + 1) * dim].copy_from_slice(points.row(p));
            }
        }
        for c in (0..k).filter(|&c| counts[c] > 0) {
            for d in 0..dim {
                centroids[c * dim + d] = (sums[c * dim + d] / counts[c] as f64) as f32;
            }
        }
        let shift: f64 = centroids
            .iter()
            .zip(&previous)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        if empty.is_empty() && shift <= threshold {
            break;
        }
    }
    finish(points, centroids, iterations)
}

/// Checks that k-means can run: finite values, at least `k` points.
pub fn check_input(points: Points, k: usize) -> Result<()> {
    if points.dim == 0 || !points.data.len().is_multiple_of(points.dim) {
        return Err(Error::WrongDimension {
            dim: points.dim,
            found: points.data.len(),
        });
    }
    if k < 1 {
        return Err(Error::InvalidConfig {
            key: "quantizer.codebook_size",
            message: "codebook size must be at least 1".to_string(),
        });
    }
    if points.len() < k {
        return Err(Error::TooFewItems {
            items: points.len(),
            clusters: k,
        });
    }
    if let Some(p) = points.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            item: p / points.dim + 1,
            value: points.data[p],
            dimension: p % points.dim,
        });
    }
    Ok(())
}

/// The best of `n_init` fits by inertia (each with its own seed stream from `rng`).
pub fn best_of<F: FnMut(&mut ChaCha8Rng) -> Fit>(
    n_init: usize,
    rng: &mut ChaCha8Rng,
    mut fit: F,
) -> Fit {
    let mut best: Option<Fit> = None;
    for _ in 0..n_init.max(1) {
        let mut run_rng = ChaCha8Rng::seed_from_u64(rng.random());
        let f = fit(&mut run_rng);
        if best.as_ref().is_none_or(|b| f.inertia < b.inertia) {
            best = Some(f);
        }
    }
    best.expect("at least one run")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Vec<f32> {
        // Three tight blobs in 2-D.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let centers = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        (0..300)
            .flat_map(|i| {
                let (x, y) = centers[i % 3];
                [x + rng.random::<f32>() - 0.5, y + rng.random::<f32>() - 0.5]
            })
            .collect()
    }

    #[test]
    fn lloyd_and_minibatch_find_separated_blobs() {
        let data = blobs();
        let p = Points {
            data: &data,
            dim: 2,
        };
        for fit in [
            lloyd(p, 3, 100, 1e-6, &mut ChaCha8Rng::seed_from_u64(1)),
            minibatch(p, 3, 64, 150, 20, &mut ChaCha8Rng::seed_from_u64(1)),
        ] {
            for i in 0..300 {
                assert_eq!(fit.labels[i], fit.labels[i % 3], "point {i}");
            }
            assert!(fit.inertia / 300.0 < 0.2, "inertia {}", fit.inertia);
        }
    }

    #[test]
    fn empty_clusters_are_reseeded() {
        // Two distinct values, three clusters: Lloyd must still return 3 distinct centroids
        // with every cluster non-empty or re-seeded, and zero inertia.
        let data = vec![0.0, 0.0, 0.0, 5.0, 5.0, 9.0];
        let fit = lloyd(
            Points {
                data: &data,
                dim: 1,
            },
            3,
            50,
            0.0,
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert!(fit.inertia < 1e-9, "{}", fit.inertia);
    }

    #[test]
    fn bad_input() {
        let p = Points {
            data: &[1.0, f32::NAN],
            dim: 1,
        };
        let err = check_input(p, 1).unwrap_err();
        assert!(matches!(err, Error::NonFinite { item: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("item 2"), "{err}");
        let p = Points {
            data: &[1.0, 2.0],
            dim: 1,
        };
        let err = check_input(p, 3).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooFewItems {
                    items: 2,
                    clusters: 3
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("fewer than the 3 clusters"),
            "{err}"
        );
    }
}
