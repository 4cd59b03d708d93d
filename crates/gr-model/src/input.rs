//! Model inputs from item ids: the catalogue's SIDs ([`SidTable`]), their prefix trie
//! ([`SidTrie`], for constrained decoding and the valid-digit loss) and right-padded history
//! batches ([`HistoryBatch`]).

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};

/// Every item's SID (`levels` digits each, dedup digit included), indexed by 0-based item id.
#[derive(Debug, Clone)]
pub struct SidTable {
    digits: Vec<u32>,
    levels: usize,
    codes: usize,
}

impl SidTable {
    /// The catalogue of a `SemanticIds` artifact (every digit, the de-duplication digit included).
    pub fn from_sids(sids: &artifacts::sids::SemanticIds) -> Result<Self> {
        SidTable::new(&sids.codes, sids.codebook_size).map_err(|e| Error::Vocabulary(Box::new(e)))
    }

    /// From per-item digit lists; every digit must be below `codes` (the model's V).
    pub fn new(sids: &[Vec<u32>], codes: usize) -> Result<Self> {
        let levels = sids.first().map_or(0, Vec::len);
        if levels == 0 {
            return Err(Error::EmptySidTable);
        }
        let mut digits = Vec::with_capacity(sids.len() * levels);
        for (item, sid) in sids.iter().enumerate() {
            if sid.len() != levels {
                return Err(Error::SidLength {
                    item,
                    expected: levels,
                    found: sid.len(),
                });
            }
            if let Some(&digit) = sid.iter().find(|&&d| d as usize >= codes) {
                return Err(Error::SidDigit { item, digit, codes });
            }
            digits.extend_from_slice(sid);
        }
        Ok(SidTable {
            digits,
            levels,
            codes,
        })
    }

    /// Digits per SID.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// Codes per digit (V).
    pub fn codes(&self) -> usize {
        self.codes
    }

    /// Items.
    pub fn len(&self) -> usize {
        self.digits.len() / self.levels
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }

    /// Item `item`'s digits.
    pub fn sid(&self, item: u32) -> &[u32] {
        let i = item as usize * self.levels;
        &self.digits[i..i + self.levels]
    }
}

/// A logit far below any real one: what an invalid digit gets.
pub const INVALID_LOGIT: f32 = -1e9;

/// The valid next digits of every SID prefix of a catalogue, and optionally a prior over them.
#[derive(Debug, Clone, Default)]
pub struct SidTrie {
    children: HashMap<Vec<u32>, Vec<u32>>,
    /// `log P(digit | prefix)` of each prefix's children (aligned with `children`), when a prior
    /// was set.
    log_prior: HashMap<Vec<u32>, Vec<f32>>,
    levels: usize,
}

impl SidTrie {
    /// Builds the trie of the catalogue's SIDs (all of one length).
    pub fn new<'a>(sids: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut children: HashMap<Vec<u32>, Vec<u32>> = HashMap::new();
        let mut levels = 0;
        for sid in sids {
            levels = sid.len();
            for t in 0..sid.len() {
                let next = children.entry(sid[..t].to_vec()).or_default();
                if !next.contains(&sid[t]) {
                    next.push(sid[t]);
                }
            }
        }
        for next in children.values_mut() {
            next.sort_unstable();
        }
        SidTrie {
            children,
            log_prior: HashMap::new(),
            levels,
        }
    }

    /// Sets the prior `log P(digit | prefix)` from item weights: `(sid, weight)` for every item
    /// (e.g. its training count + 1); a prefix's mass is the sum of its items' weights.
    pub fn with_prior<'a>(mut self, items: impl IntoIterator<Item = (&'a [u32], f64)>) -> Self {
        let mut mass: HashMap<Vec<u32>, f64> = HashMap::new();
        for (sid, w) in items {
            for t in 1..=sid.len() {
                *mass.entry(sid[..t].to_vec()).or_default() += w;
            }
        }
        self.log_prior = self
            .children
            .iter()
            .map(|(prefix, kids)| {
                let m: Vec<f64> = kids
                    .iter()
                    .map(|&c| {
                        let mut node = prefix.clone();
                        node.push(c);
                        mass.get(&node)
                            .copied()
                            .unwrap_or(0.0)
                            .max(f64::MIN_POSITIVE)
                    })
                    .collect();
                let total: f64 = m.iter().sum();
                let logs = m.iter().map(|x| (x / total).ln() as f32).collect();
                (prefix.clone(), logs)
            })
            .collect();
        self
    }

    /// The prior of `prefix`'s children (aligned with [`SidTrie::next`]), when one is set.
    pub fn prior(&self, prefix: &[u32]) -> Option<&[f32]> {
        self.log_prior.get(prefix).map(Vec::as_slice)
    }

    /// The additive logit bias `[levels × v]` that restricts every level of `sid` to the digits
    /// continuing its prefix (their prior, or 0, for valid digits; [`INVALID_LOGIT`] elsewhere).
    pub fn valid_bias(&self, sid: &[u32], v: usize) -> Vec<f32> {
        let mut bias = vec![INVALID_LOGIT; sid.len() * v];
        for t in 0..sid.len() {
            let kids = self.next(&sid[..t]);
            let prior = self.prior(&sid[..t]);
            for (i, &c) in kids.iter().enumerate() {
                if (c as usize) < v {
                    bias[t * v + c as usize] = prior.map_or(0.0, |p| p[i]);
                }
            }
        }
        bias
    }

    /// The digits that may follow `prefix` (empty when the prefix is not a catalogue prefix).
    pub fn next(&self, prefix: &[u32]) -> &[u32] {
        self.children.get(prefix).map_or(&[], Vec::as_slice)
    }

    /// True when `sid` is a whole catalogue SID.
    pub fn contains(&self, sid: &[u32]) -> bool {
        sid.len() == self.levels
            && !sid.is_empty()
            && self
                .next(&sid[..sid.len() - 1])
                .contains(&sid[sid.len() - 1])
    }
}

/// A batch of histories (and targets) as model inputs.
#[derive(Debug, Clone)]
pub struct HistoryBatch<B: Backend> {
    /// `[b, slots, levels]` raw digits (0 in padded slots).
    pub sids: Tensor<B, 3, Int>,
    /// `[b, slots]` 0/1: real item slots.
    pub item_mask: Tensor<B, 2>,
    /// `[b, levels]` target digits, when targets were given.
    pub targets: Option<Tensor<B, 2, Int>>,
    /// Real items per row.
    pub lengths: Vec<usize>,
    /// `[b, levels, V]` added to the logits before the loss: restricts each level to the digits
    /// that continue the target's prefix (and adds the trie's prior). `None`: the full softmax.
    pub level_bias: Option<Tensor<B, 3>>,
}

impl<B: Backend> HistoryBatch<B> {
    /// Right-padded histories. `slots`: `Some(n)` pads every row to `n` item slots (fixed
    /// padding; longer histories keep their last `n` items), `None` to the longest row
    /// (dynamic padding).
    pub fn new(
        histories: &[&[u32]],
        targets: Option<&[u32]>,
        table: &SidTable,
        slots: Option<usize>,
        device: &Device<B>,
    ) -> Self {
        let h = table.levels();
        let b = histories.len();
        let longest = histories.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let n = slots.unwrap_or(longest);
        let mut sids = vec![0i64; b * n * h];
        let mut mask = vec![0f32; b * n];
        let mut lengths = Vec::with_capacity(b);
        for (r, hist) in histories.iter().enumerate() {
            let hist = &hist[hist.len().saturating_sub(n)..];
            lengths.push(hist.len());
            for (s, &item) in hist.iter().enumerate() {
                mask[r * n + s] = 1.0;
                for (l, &d) in table.sid(item).iter().enumerate() {
                    sids[(r * n + s) * h + l] = i64::from(d);
                }
            }
        }
        let targets = targets.map(|t| {
            let digits: Vec<i64> = t
                .iter()
                .flat_map(|&item| table.sid(item).iter().map(|&d| i64::from(d)))
                .collect();
            Tensor::from_data(TensorData::new(digits, [b, h]), device)
        });
        HistoryBatch {
            sids: Tensor::from_data(TensorData::new(sids, [b, n, h]), device),
            item_mask: Tensor::from_data(TensorData::new(mask, [b, n]), device),
            targets,
            lengths,
            level_bias: None,
        }
    }

    /// Restricts the loss of every level to the digits that continue the target's prefix in
    /// `trie` (plus its prior): `targets` are the batch's target items, as given to `new`.
    pub fn restrict_to(mut self, trie: &SidTrie, table: &SidTable, targets: &[u32]) -> Self {
        let v = table.codes;
        let levels = table.levels;
        let bias: Vec<f32> = targets
            .iter()
            .flat_map(|&t| trie.valid_bias(table.sid(t), v))
            .collect();
        let device = self.sids.device();
        self.level_bias = Some(Tensor::from_data(
            TensorData::new(bias, [targets.len(), levels, v]),
            &device,
        ));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn fixed_and_dynamic_padding_layouts() {
        let table = SidTable::new(&[vec![1, 2], vec![3, 4], vec![5, 6]], 8).unwrap();
        let dev = Default::default();
        let h: [&[u32]; 2] = [&[0, 1, 2], &[2]];
        let fixed = HistoryBatch::<Flex>::new(&h, Some(&[1, 0]), &table, Some(2), &dev);
        assert_eq!(fixed.sids.dims(), [2, 2, 2]);
        let s: Vec<i64> = fixed.sids.into_data().convert::<i64>().to_vec().unwrap();
        assert_eq!(
            s,
            vec![3, 4, 5, 6, 5, 6, 0, 0],
            "last 2 items kept, right padding"
        );
        let t: Vec<i64> = fixed
            .targets
            .unwrap()
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap();
        assert_eq!(t, vec![3, 4, 1, 2]);
        let dynamic = HistoryBatch::<Flex>::new(&h, None, &table, None, &dev);
        assert_eq!(dynamic.item_mask.dims(), [2, 3]);
        assert_eq!(dynamic.lengths, vec![3, 1]);
        assert!(matches!(
            SidTable::new(&[vec![1, 9]], 8),
            Err(Error::SidDigit {
                item: 0,
                digit: 9,
                codes: 8
            })
        ));
    }
}
