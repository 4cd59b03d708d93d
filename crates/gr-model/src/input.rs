//! Model inputs from item ids: the catalogue's SIDs and right-padded history batches.

use anyhow::{Context, Result, ensure};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};

use artifacts::config::ReducerConfig;

use crate::generate::SidTrie;
use crate::tiger::Tiger;

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
        SidTable::new(&sids.codes, sids.codebook_size).context(
            "the semantic ids do not fit the model's vocabulary (quantizer.max_dedup must be \
             below quantizer.codebook_size)",
        )
    }

    /// From per-item digit lists; every digit must be below `codes` (the model's V).
    pub fn new(sids: &[Vec<u32>], codes: usize) -> Result<Self> {
        let levels = sids.first().map_or(0, Vec::len);
        ensure!(levels > 0, "the SID table is empty");
        let mut digits = Vec::with_capacity(sids.len() * levels);
        for (item, sid) in sids.iter().enumerate() {
            ensure!(
                sid.len() == levels,
                "item {item} has {} SID digits, expected {levels}",
                sid.len()
            );
            if let Some(&d) = sid.iter().find(|&&d| d as usize >= codes) {
                anyhow::bail!(
                    "item {item} has SID digit {d}, but the model has {codes} codes per level"
                );
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

impl<B: Backend> Tiger<B> {
    /// The reference loss (summed per-level cross-entropy, batch mean) of a batch built with
    /// targets: embed, encode with `reducer`, teacher-forced decode.
    pub fn batch_loss(&self, batch: HistoryBatch<B>, reducer: &ReducerConfig) -> Tensor<B, 1> {
        let targets = batch
            .targets
            .expect("a loss needs a batch built with targets");
        let (embeds, mask) = self.embed_history(batch.sids, batch.item_mask);
        let encoded = self.encode_with(embeds, mask, reducer);
        let logits = self.logits(self.decode(&encoded, targets.clone()));
        let logits = match batch.level_bias {
            Some(bias) => logits + bias,
            None => logits,
        };
        self.loss(logits, targets)
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
        assert!(SidTable::new(&[vec![1, 9]], 8).is_err());
    }
}
