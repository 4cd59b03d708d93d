//! Beam search over SIDs as the reference generates (docs/reference.md §6): encode once; step 0 takes
//! the top `width` digits of the level-0 softmax; each later step scores every beam × digit by
//! the beam's probability times the digit's probability (plain probabilities, multiplied) and
//! keeps the top `width` per user. Fixed `levels` steps, no EOS, no length normalisation.
//!
//! The decoder runs one position per step with a key/value cache ([`DecoderCache`]): the
//! cross-attention keys/values of the encoder output are computed once per user and shared by
//! its beams (a user's beams are the query rows of one product); the self-attention cache is
//! re-ordered with the beams.
//!
//! Unconstrained (the reference), invalid SIDs may take beams. With a [`SidTrie`], every step
//! only extends prefixes of real items. The scores stay the model's own probabilities (the mask
//! restricts the choice and does not renormalise), so when every level has at most `width`
//! valid prefixes the constrained search is exact: it returns the items in the order of their
//! full-SID probability.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

pub use crate::input::{INVALID_LOGIT, SidTrie};
use crate::tiger::{DecoderCache, Encoded, Tiger};

/// Generated SIDs per user, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Beams {
    /// `sids[u][k]` = the k-th best SID of user `u` (`levels` digits).
    pub sids: Vec<Vec<Vec<u32>>>,
    /// `probs[u][k]` = its probability (product of the per-step probabilities).
    pub probs: Vec<Vec<f32>>,
}

/// One live or dead beam.
#[derive(Clone)]
struct Beam {
    prob: f32,
    sid: Vec<u32>,
    alive: bool,
}

/// How constrained decoding scores a step.
#[derive(Debug, Clone, Copy)]
pub struct Constraint<'a> {
    /// The catalogue's prefixes (and prior, if any).
    pub trie: &'a SidTrie,
    /// Score with the softmax over the valid digits (plus the trie's prior) instead of the full
    /// softmax.
    pub renormalize: bool,
}

/// Beam search of `width` beams for every user of `encoded`, unconstrained (the reference).
pub fn beam_search<B: Backend>(model: &Tiger<B>, encoded: &Encoded<B>, width: usize) -> Beams {
    beam_search_with(model, encoded, width, None)
}

/// Beam search of `width` beams for every user of `encoded`; with a constraint, only prefixes of
/// catalogue SIDs are extended (a user may then get fewer than `width` SIDs).
pub fn beam_search_with<B: Backend>(
    model: &Tiger<B>,
    encoded: &Encoded<B>,
    width: usize,
    constraint: Option<Constraint<'_>>,
) -> Beams {
    let trie = constraint.map(|c| c.trie);
    let renormalize = constraint.filter(|c| c.renormalize).map(|c| c.trie);
    let b = encoded.hidden.dims()[0];
    let v = model.codes;
    let device = encoded.hidden.device();
    let ints = |values: Vec<i64>| {
        let n = values.len();
        Tensor::<B, 1, Int>::from_data(TensorData::new(values, [n]), &device)
    };

    let mut cache: DecoderCache<B> =
        model.start_decoding(encoded.hidden.clone(), encoded.mask.clone());
    // Step 0 on one row per user.
    let states = model.decode_step(&mut cache, model.step_input(0, None, b));
    let roots = std::iter::repeat_n(&[][..], b);
    let p0 = step_probs(model.level_logits(0, states), renormalize, roots);
    let root = vec![Beam {
        prob: 1.0,
        sid: Vec::new(),
        alive: true,
    }];
    let mut beams: Vec<Vec<Beam>> = (0..b)
        .map(|u| extend(&root, &p0[u * v..(u + 1) * v], v, width, trie).0)
        .collect();
    // Every user's row becomes its `width` beam rows.
    cache = cache.select(
        ints((0..b * width).map(|r| (r / width) as i64).collect()),
        width,
    );

    for level in 1..model.levels {
        let digits: Vec<i64> = beams
            .iter()
            .flat_map(|ub| ub.iter().map(|bm| i64::from(*bm.sid.last().unwrap_or(&0))))
            .collect();
        let n = digits.len();
        let input = model.step_input(level, Some(ints(digits)), n);
        let states = model.decode_step(&mut cache, input);
        let prefixes = beams.iter().flatten().map(|bm| bm.sid.as_slice());
        let p = step_probs(model.level_logits(level, states), renormalize, prefixes);
        let mut parents = Vec::with_capacity(n);
        beams = beams
            .iter()
            .enumerate()
            .map(|(u, ub)| {
                let rows = &p[u * width * v..(u + 1) * width * v];
                let (next, from) = extend(ub, rows, v, width, trie);
                parents.extend(from.into_iter().map(|j| (u * width + j) as i64));
                next
            })
            .collect();
        if level + 1 < model.levels {
            cache = cache.select(ints(parents), width);
        }
    }
    let live = |ub: &Vec<Beam>| ub.iter().filter(|bm| bm.alive).cloned().collect::<Vec<_>>();
    let beams: Vec<Vec<Beam>> = beams.iter().map(live).collect();
    Beams {
        sids: beams
            .iter()
            .map(|ub| ub.iter().map(|bm| bm.sid.clone()).collect())
            .collect(),
        probs: beams
            .iter()
            .map(|ub| ub.iter().map(|bm| bm.prob).collect())
            .collect(),
    }
}

/// One step's next-digit probabilities on the host, row by row: the full softmax of `logits`
/// `[rows, v]`, or (with `renormalize`) the softmax over each row's valid digits after its
/// prefix (one prefix per row), plus the trie's prior.
fn step_probs<'a, B: Backend>(
    logits: Tensor<B, 2>,
    renormalize: Option<&SidTrie>,
    prefixes: impl Iterator<Item = &'a [u32]>,
) -> Vec<f32> {
    let host = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().expect("f32");
    let Some(trie) = renormalize else {
        return host(softmax(logits, 1));
    };
    let v = logits.dims()[1];
    let mut rows = host(logits);
    rows.chunks_mut(v)
        .zip(prefixes)
        .for_each(|(row, prefix)| renormalize_row(row, trie, prefix));
    rows
}

/// Turns a row of logits into probabilities over the valid digits after `prefix` (softmax of
/// logit + prior over them; 0 elsewhere).
fn renormalize_row(row: &mut [f32], trie: &SidTrie, prefix: &[u32]) {
    let kids = trie.next(prefix);
    let prior = trie.prior(prefix);
    let score = |i: usize, c: u32| row[c as usize] + prior.map_or(0.0, |p| p[i]);
    let scores: Vec<f32> = kids
        .iter()
        .enumerate()
        .filter(|(_, c)| (**c as usize) < row.len())
        .map(|(i, &c)| score(i, c))
        .collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = scores.iter().map(|s| (s - max).exp()).sum();
    row.fill(0.0);
    for (&c, s) in kids.iter().zip(&scores) {
        row[c as usize] = (s - max).exp() / total;
    }
}

/// The best `width` one-digit extensions of `beams` given each beam's next-digit probabilities
/// (`probs`, `beams.len() × v`), with the index of each new beam's parent. Always returns
/// `width` beams; those without a valid candidate are dead.
fn extend(
    beams: &[Beam],
    probs: &[f32],
    v: usize,
    width: usize,
    trie: Option<&SidTrie>,
) -> (Vec<Beam>, Vec<usize>) {
    let mut candidates: Vec<(f32, usize, u32)> = Vec::new();
    for (j, beam) in beams.iter().enumerate() {
        if !beam.alive {
            continue;
        }
        let row = &probs[j * v..(j + 1) * v];
        match trie {
            None => candidates.extend(
                row.iter()
                    .enumerate()
                    .map(|(c, &q)| (beam.prob * q, j, c as u32)),
            ),
            Some(trie) => candidates.extend(
                trie.next(&beam.sid)
                    .iter()
                    .filter(|&&c| (c as usize) < v)
                    .map(|&c| (beam.prob * row[c as usize], j, c)),
            ),
        }
    }
    // Best first; ties by (parent, digit), i.e. by candidate order as the reference's top-k.
    let order = |a: &(f32, usize, u32), b: &(f32, usize, u32)| {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if candidates.len() > width {
        candidates.select_nth_unstable_by(width - 1, order);
        candidates.truncate(width);
    }
    candidates.sort_by(order);
    let mut next = Vec::with_capacity(width);
    let mut parents = Vec::with_capacity(width);
    for (prob, j, c) in &candidates {
        let mut sid = beams[*j].sid.clone();
        sid.push(*c);
        next.push(Beam {
            prob: *prob,
            sid,
            alive: true,
        });
        parents.push(*j);
    }
    while next.len() < width {
        next.push(Beam {
            prob: 0.0,
            sid: vec![0; beams.first().map_or(0, |b| b.sid.len()) + 1],
            alive: false,
        });
        parents.push(0);
    }
    (next, parents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_lists_valid_next_digits() {
        let sids: Vec<Vec<u32>> = vec![vec![1, 2, 0], vec![1, 3, 0], vec![4, 2, 1]];
        let trie = SidTrie::new(sids.iter().map(Vec::as_slice));
        assert_eq!(trie.next(&[]), &[1, 4]);
        assert_eq!(trie.next(&[1]), &[2, 3]);
        assert_eq!(trie.next(&[4, 2]), &[1]);
        assert!(trie.next(&[2]).is_empty());
        assert!(trie.contains(&[1, 3, 0]) && !trie.contains(&[1, 3, 1]) && !trie.contains(&[1, 3]));
    }

    #[test]
    fn prior_and_valid_bias_follow_item_weights() {
        let sids: Vec<Vec<u32>> = vec![vec![1, 2], vec![1, 3], vec![4, 2]];
        let weights = [3.0, 1.0, 4.0];
        let trie = SidTrie::new(sids.iter().map(Vec::as_slice))
            .with_prior(sids.iter().map(Vec::as_slice).zip(weights));
        let root: Vec<f32> = trie.prior(&[]).unwrap().iter().map(|l| l.exp()).collect();
        assert!((root[0] - 0.5).abs() < 1e-6 && (root[1] - 0.5).abs() < 1e-6);
        let after1: Vec<f32> = trie.prior(&[1]).unwrap().iter().map(|l| l.exp()).collect();
        assert!((after1[0] - 0.75).abs() < 1e-6 && (after1[1] - 0.25).abs() < 1e-6);
        let bias = trie.valid_bias(&[1, 3], 5);
        assert_eq!(bias[0], INVALID_LOGIT);
        assert!((bias[1] - 0.5f32.ln()).abs() < 1e-6 && (bias[4] - 0.5f32.ln()).abs() < 1e-6);
        assert!((bias[5 + 3] - 0.25f32.ln()).abs() < 1e-6 && bias[5 + 4] == INVALID_LOGIT);
        // Renormalised scoring: equal logits give the prior itself.
        let mut row = vec![0.0f32; 5];
        renormalize_row(&mut row, &trie, &[1]);
        assert!((row[2] - 0.75).abs() < 1e-6 && (row[3] - 0.25).abs() < 1e-6 && row[0] == 0.0);
    }

    #[test]
    fn extend_keeps_the_best_and_marks_missing_beams_dead() {
        let root = [Beam {
            prob: 1.0,
            sid: vec![],
            alive: true,
        }];
        let probs = [0.1, 0.5, 0.4];
        let (next, parents) = extend(&root, &probs, 3, 2, None);
        assert_eq!(next[0].sid, vec![1]);
        assert_eq!(next[1].sid, vec![2]);
        assert_eq!(parents, vec![0, 0]);
        let sids: Vec<Vec<u32>> = vec![vec![0]];
        let trie = SidTrie::new(sids.iter().map(Vec::as_slice));
        let (next, _) = extend(&root, &probs, 3, 2, Some(&trie));
        assert_eq!(next[0].sid, vec![0]);
        assert!(next[0].alive && !next[1].alive);
    }
}
