//! The reducers on burn tensors (the `tensor` feature).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::ReducerKind;

/// A reduced sequence.
#[derive(Debug, Clone)]
pub struct Reduced<B: Backend> {
    /// `[b, k, d]`.
    pub hidden: Tensor<B, 3>,
    /// `[b, k]` 0/1.
    pub mask: Tensor<B, 2>,
    /// Kept positions `[b][k]` (ascending) for selecting reducers; `None` for pooling.
    pub kept: Option<Vec<Vec<usize>>>,
    /// The original position each output slot stands for, `[b][k]` (selection: the kept
    /// position; pooling: the window's first position; fill slots of short rows: 0).
    pub positions: Vec<Vec<usize>>,
}

/// RASTP importance `[b, l]`: attention received (`probs` `[b, heads, q, l]` summed over heads and
/// queries) × L1 norm of `hidden` `[b, l, d]`; −∞ where `mask` is 0. Detached.
pub fn rastp_importance<B: Backend>(
    probs: Tensor<B, 4>,
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [b, _, _, l] = probs.dims();
    let received = probs.detach().sum_dim(1).sum_dim(2).reshape([b, l]);
    let l1 = hidden.detach().abs().sum_dim(2).reshape([b, l]);
    (received * l1).mask_fill(mask.equal_elem(0.0), f32::NEG_INFINITY)
}

/// L2-norm score `[b, l]`, −∞ where `mask` is 0. Detached.
pub fn l2_score<B: Backend>(hidden: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
    let [b, l, _] = hidden.dims();
    let norm = hidden
        .detach()
        .powi_scalar(2)
        .sum_dim(2)
        .sqrt()
        .reshape([b, l]);
    norm.mask_fill(mask.equal_elem(0.0), f32::NEG_INFINITY)
}

/// Top-`keep` positions of each row by score (ties: lower position first), sorted ascending.
pub fn top_positions(scores: &[f32], rows: usize, len: usize, keep: usize) -> Vec<Vec<usize>> {
    top_positions_per_row(scores, len, &vec![keep; rows])
}

/// Top-`keeps[r]` positions of row `r` by score (ties: lower position first), sorted ascending.
pub fn top_positions_per_row(scores: &[f32], len: usize, keeps: &[usize]) -> Vec<Vec<usize>> {
    (0..keeps.len())
        .map(|r| {
            let keep = keeps[r];
            let row = &scores[r * len..(r + 1) * len];
            let mut order: Vec<usize> = (0..len).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let mut kept = order[..keep.min(len)].to_vec();
            kept.sort_unstable();
            kept
        })
        .collect()
}

/// The smallest top set of each row holding `mass` of its (finite, non-negative) importance.
pub fn mass_positions(scores: &[f32], rows: usize, len: usize, mass: f64) -> Vec<Vec<usize>> {
    (0..rows)
        .map(|r| {
            let row = &scores[r * len..(r + 1) * len];
            let mut order: Vec<usize> = (0..len).filter(|&i| row[i].is_finite()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let total: f64 = order.iter().map(|&i| f64::from(row[i].max(0.0))).sum();
            let mut acc = 0.0;
            let mut kept = Vec::new();
            for &i in &order {
                kept.push(i);
                acc += f64::from(row[i].max(0.0));
                if acc >= mass * total {
                    break;
                }
            }
            if kept.is_empty() {
                kept.push(0);
            }
            kept.sort_unstable();
            kept
        })
        .collect()
}

/// Gathers the kept positions of `hidden` and `mask`; rows with fewer positions than the longest
/// are filled with masked copies of position 0.
pub fn gather_positions<B: Backend>(
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    kept: Vec<Vec<usize>>,
) -> Reduced<B> {
    let [b, _, d] = hidden.dims();
    let device = hidden.device();
    let k = kept.iter().map(Vec::len).max().unwrap_or(1);
    let mut idx = Vec::with_capacity(b * k);
    let mut pad = Vec::with_capacity(b * k);
    for row in &kept {
        for j in 0..k {
            idx.push(row.get(j).copied().unwrap_or(0) as i64);
            pad.push(if j < row.len() { 1.0f32 } else { 0.0 });
        }
    }
    let idx2 = Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [b, k]), &device);
    let idx3 = idx2.clone().reshape([b, k, 1]).repeat_dim(2, d);
    let present = Tensor::<B, 2>::from_data(TensorData::new(pad, [b, k]), &device);
    let positions = kept
        .iter()
        .map(|row| (0..k).map(|j| row.get(j).copied().unwrap_or(0)).collect())
        .collect();
    Reduced {
        hidden: hidden.gather(1, idx3),
        mask: mask.gather(1, idx2) * present,
        kept: Some(kept),
        positions,
    }
}

/// Adaptive pooling windows of `len` positions into `k` (PyTorch's `adaptive_*_pool1d`).
fn windows(len: usize, k: usize) -> Vec<(usize, usize)> {
    (0..k)
        .map(|i| ((i * len) / k, ((i + 1) * len).div_ceil(k)))
        .collect()
}

fn pool<B: Backend>(
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    keep: usize,
    max: bool,
) -> Reduced<B> {
    let [b, l, d] = hidden.dims();
    let spans = windows(l, keep);
    let starts: Vec<usize> = spans.iter().map(|&(s, _)| s).collect();
    let parts: Vec<(Tensor<B, 3>, Tensor<B, 2>)> = spans
        .into_iter()
        .map(|(s, e)| {
            let h = hidden.clone().slice([0..b, s..e, 0..d]);
            let h = if max { h.max_dim(1) } else { h.mean_dim(1) };
            (h, mask.clone().slice([0..b, s..e]).max_dim(1))
        })
        .collect();
    let (hs, ms): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    Reduced {
        hidden: Tensor::cat(hs, 1),
        mask: Tensor::cat(ms, 1),
        kept: None,
        positions: vec![starts; b],
    }
}

/// Applies a reducer to a layer's output `hidden` `[b, l, d]` with `mask` `[b, l]` and that
/// layer's self-attention probabilities `probs` `[b, heads, l, l]`, keeping `keep` tokens
/// (except the adaptive kind, which keeps per sequence the top set holding `mass` of the
/// importance; `mass` is ignored by the other kinds).
pub fn reduce<B: Backend>(
    kind: ReducerKind,
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    probs: Tensor<B, 4>,
    keep: usize,
    mass: f64,
) -> Reduced<B> {
    let b = hidden.dims()[0];
    reduce_rows(kind, hidden, mask, probs, &vec![keep; b], mass)
}

/// [`reduce`] with a keep count per sequence (`keeps[r]`, e.g. a share of each sequence's real
/// length). Selecting reducers pad shorter rows with masked slots to the longest; pooling, which
/// works on the padded layout, uses the largest count for every row.
pub fn reduce_rows<B: Backend>(
    kind: ReducerKind,
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    probs: Tensor<B, 4>,
    keeps: &[usize],
    mass: f64,
) -> Reduced<B> {
    let [b, l, _] = hidden.dims();
    assert_eq!(keeps.len(), b, "one keep count per sequence");
    let keep = keeps.iter().copied().max().unwrap_or(1).clamp(1, l);
    let host = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().expect("f32 scores");
    match kind {
        ReducerKind::None => Reduced {
            hidden,
            mask,
            kept: Some(vec![(0..l).collect(); b]),
            positions: vec![(0..l).collect(); b],
        },
        ReducerKind::Rastp => {
            let scores = host(rastp_importance(probs, hidden.clone(), mask.clone()));
            gather_positions(hidden, mask, top_positions_per_row(&scores, l, keeps))
        }
        ReducerKind::L2 => {
            let scores = host(l2_score(hidden.clone(), mask.clone()));
            gather_positions(hidden, mask, top_positions_per_row(&scores, l, keeps))
        }
        ReducerKind::RastpAdaptive => {
            let scores = host(rastp_importance(probs, hidden.clone(), mask.clone()));
            gather_positions(hidden, mask, mass_positions(&scores, b, l, mass))
        }
        ReducerKind::MaxPool => pool(hidden, mask, keep, true),
        ReducerKind::AvgPool => pool(hidden, mask, keep, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keep_count;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type B = Flex;

    fn inputs(
        b: usize,
        l: usize,
        d: usize,
        valid: &[usize],
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Tensor<B, 4>) {
        let dev = Default::default();
        let hidden = Tensor::<B, 3>::random([b, l, d], Distribution::Normal(0.0, 1.0), &dev);
        let mask: Vec<f32> = valid
            .iter()
            .flat_map(|&v| (0..l).map(move |i| if i < v { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [b, l]), &dev);
        let logits = Tensor::<B, 4>::random([b, 2, l, l], Distribution::Normal(0.0, 1.0), &dev)
            + (mask.clone().neg() + 1.0)
                .mul_scalar(-1e9)
                .reshape([b, 1, 1, l]);
        (hidden, mask, burn::tensor::activation::softmax(logits, 3))
    }

    #[test]
    fn keep_count_follows_the_reference() {
        assert_eq!(keep_count(150, 1.0 / 3.0), 50);
        assert_eq!(keep_count(30, 1.0 / 3.0), 10);
        assert_eq!(keep_count(2, 0.1), 1);
    }

    #[test]
    fn selection_keeps_order_exact_count_and_drops_padding_first() {
        let (h, m, p) = inputs(3, 12, 4, &[12, 7, 3]);
        for kind in [ReducerKind::Rastp, ReducerKind::L2] {
            let r = reduce(kind, h.clone(), m.clone(), p.clone(), 5, 1.0);
            let kept = r.kept.unwrap();
            assert_eq!(r.hidden.dims(), [3, 5, 4]);
            for (row, valid) in kept.iter().zip([12, 7, 3]) {
                assert_eq!(row.len(), 5);
                assert!(row.windows(2).all(|w| w[0] < w[1]), "ascending: {row:?}");
                let real = row.iter().filter(|&&i| i < valid).count();
                assert_eq!(
                    real,
                    valid.min(5),
                    "real tokens are kept before padding: {row:?}"
                );
            }
            let mask: Vec<f32> = r.mask.into_data().to_vec().unwrap();
            assert_eq!(mask[10..15], [1.0, 1.0, 1.0, 0.0, 0.0]);
            // Gathered rows are the original rows.
            let hv: Vec<f32> = h.clone().into_data().to_vec().unwrap();
            let rv: Vec<f32> = r.hidden.into_data().to_vec().unwrap();
            for (j, &pos) in kept[1].iter().enumerate() {
                assert_eq!(
                    rv[(5 + j) * 4..(5 + j + 1) * 4],
                    hv[(12 + pos) * 4..(12 + pos + 1) * 4]
                );
            }
        }
    }

    #[test]
    fn per_row_keep_counts_pad_short_rows_with_masked_slots() {
        let (h, m, p) = inputs(2, 9, 3, &[9, 6]);
        let r = reduce_rows(ReducerKind::Rastp, h, m, p, &[3, 2], 1.0);
        let kept = r.kept.unwrap();
        assert_eq!((kept[0].len(), kept[1].len()), (3, 2));
        assert_eq!(r.hidden.dims(), [2, 3, 3]);
        let mask: Vec<f32> = r.mask.into_data().to_vec().unwrap();
        assert_eq!(mask, vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        assert!(kept[1].iter().all(|&i| i < 6));
        assert_eq!(r.positions[1][..2], kept[1][..]);
    }

    #[test]
    fn names_round_trip() {
        for kind in ReducerKind::ALL {
            assert_eq!(kind.to_string().parse::<ReducerKind>(), Ok(kind));
        }
        assert!(
            "topk"
                .parse::<ReducerKind>()
                .unwrap_err()
                .contains("max-pool")
        );
    }

    #[test]
    fn none_is_the_identity() {
        let (h, m, p) = inputs(2, 6, 3, &[6, 4]);
        let r = reduce(ReducerKind::None, h.clone(), m.clone(), p, 2, 1.0);
        assert_eq!(r.hidden.into_data(), h.into_data());
        assert_eq!(r.mask.into_data(), m.into_data());
    }

    #[test]
    fn pooling_windows_and_masks() {
        assert_eq!(windows(150, 50)[..2], [(0, 3), (3, 6)]);
        assert_eq!(windows(10, 4), vec![(0, 3), (2, 5), (5, 8), (7, 10)]);
        let (h, m, p) = inputs(1, 6, 2, &[4]);
        let avg = reduce(
            ReducerKind::AvgPool,
            h.clone(),
            m.clone(),
            p.clone(),
            3,
            1.0,
        );
        let hv: Vec<f32> = h.clone().into_data().to_vec().unwrap();
        let av: Vec<f32> = avg.hidden.into_data().to_vec().unwrap();
        assert!((av[0] - (hv[0] + hv[2]) / 2.0).abs() < 1e-6);
        let mask: Vec<f32> = avg.mask.into_data().to_vec().unwrap();
        assert_eq!(mask, vec![1.0, 1.0, 0.0]);
        let mx = reduce(ReducerKind::MaxPool, h, m, p, 3, 1.0);
        let mv: Vec<f32> = mx.hidden.into_data().to_vec().unwrap();
        assert_eq!(mv[0], hv[0].max(hv[2]));
    }

    #[test]
    fn adaptive_keeps_the_smallest_set_with_the_mass() {
        let scores = [5.0, 1.0, 3.0, 1.0, f32::NEG_INFINITY];
        assert_eq!(mass_positions(&scores, 1, 5, 0.5), vec![vec![0]]);
        assert_eq!(mass_positions(&scores, 1, 5, 0.8), vec![vec![0, 2]]);
        assert_eq!(mass_positions(&scores, 1, 5, 1.0), vec![vec![0, 1, 2, 3]]);
        let (h, m, p) = inputs(2, 8, 3, &[8, 2]);
        let r = reduce(ReducerKind::RastpAdaptive, h, m, p, 0, 0.9);
        let kept = r.kept.unwrap();
        assert!(kept[1].len() <= 2 && kept[0].len() <= 8);
        assert_eq!(r.hidden.dims()[1], kept[0].len().max(kept[1].len()));
    }

    #[test]
    fn gradients_reach_kept_tokens_only() {
        type A = Autodiff<Flex>;
        let dev = Default::default();
        let h =
            Tensor::<A, 3>::random([1, 6, 2], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let m = Tensor::<A, 2>::ones([1, 6], &dev);
        let p = Tensor::<A, 4>::ones([1, 1, 6, 6], &dev).div_scalar(6.0);
        let r = reduce(ReducerKind::L2, h.clone(), m, p, 2, 1.0);
        let kept = r.kept.clone().unwrap();
        let grads = r.hidden.sum().backward();
        let g: Vec<f32> = h.grad(&grads).unwrap().into_data().to_vec().unwrap();
        for pos in 0..6 {
            let want = if kept[0].contains(&pos) { 1.0 } else { 0.0 };
            assert_eq!(g[pos * 2..pos * 2 + 2], [want, want], "position {pos}");
        }
    }
}
