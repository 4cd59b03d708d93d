//! Beam search over SIDs as the reference generates (reference §6): encode once; step 0 takes
//! the top `width` digits of the level-0 softmax; each later step scores every beam × digit by
//! the beam's probability times the digit's probability (plain probabilities, multiplied) and
//! keeps the top `width` per user. Fixed `levels` steps, no EOS, no length normalisation, no
//! prefix constraint (invalid SIDs may take beams, as in the reference).
//!
//! Each step re-runs the decoder on the whole prefix (at most `levels` positions); the encoder
//! output is computed once and shared by a user's beams.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::tiger::{Encoded, Tiger};

/// Generated SIDs per user, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Beams {
    /// `sids[u][k]` = the k-th best SID of user `u` (`levels` digits).
    pub sids: Vec<Vec<Vec<u32>>>,
    /// `probs[u][k]` = its probability (product of the per-step probabilities).
    pub probs: Vec<Vec<f32>>,
}

/// Beam search of `width` beams for every user of `encoded`.
pub fn beam_search<B: Backend>(model: &Tiger<B>, encoded: &Encoded<B>, width: usize) -> Beams {
    let [b, l, d] = encoded.hidden.dims();
    let v = model.codes;
    let host = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().expect("f32");
    let last = |states: Tensor<B, 3>| {
        let [n, t, _] = states.dims();
        states.slice([0..n, t - 1..t, 0..d]).reshape([n, d])
    };

    let states = model.decode_prefix(encoded.hidden.clone(), encoded.mask.clone(), None);
    let p0 = host(softmax(model.level_logits(0, last(states)), 1));
    let mut beams: Vec<Vec<(f32, Vec<u32>)>> = (0..b)
        .map(|u| {
            top(&p0[u * v..(u + 1) * v], width)
                .into_iter()
                .map(|(p, tok)| (p, vec![tok as u32]))
                .collect()
        })
        .collect();

    let n = b * width;
    let memory = encoded
        .hidden
        .clone()
        .unsqueeze_dim::<4>(1)
        .repeat_dim(1, width)
        .reshape([n, l, d]);
    let memory_mask = encoded
        .mask
        .clone()
        .unsqueeze_dim::<3>(1)
        .repeat_dim(1, width)
        .reshape([n, l]);
    for level in 1..model.levels {
        let prefix: Vec<i64> = beams
            .iter()
            .flat_map(|ub| ub.iter().flat_map(|(_, s)| s.iter().map(|&t| i64::from(t))))
            .collect();
        let prefix =
            Tensor::<B, 2, Int>::from_data(TensorData::new(prefix, [n, level]), &memory.device());
        let states = model.decode_prefix(memory.clone(), memory_mask.clone(), Some(prefix));
        let p = host(softmax(model.level_logits(level, last(states)), 1));
        beams = beams
            .iter()
            .enumerate()
            .map(|(u, ub)| {
                let scores: Vec<f32> = ub
                    .iter()
                    .enumerate()
                    .flat_map(|(j, (bp, _))| {
                        p[(u * width + j) * v..(u * width + j + 1) * v]
                            .iter()
                            .map(move |&q| bp * q)
                    })
                    .collect();
                top(&scores, width)
                    .into_iter()
                    .map(|(prob, c)| {
                        let mut sid = ub[c / v].1.clone();
                        sid.push((c % v) as u32);
                        (prob, sid)
                    })
                    .collect()
            })
            .collect();
    }
    Beams {
        sids: beams
            .iter()
            .map(|ub| ub.iter().map(|(_, s)| s.clone()).collect())
            .collect(),
        probs: beams
            .iter()
            .map(|ub| ub.iter().map(|(p, _)| *p).collect())
            .collect(),
    }
}

/// The `k` largest values with their indices, largest first (ties: lower index first).
fn top(values: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (values[i], i)).collect()
}
