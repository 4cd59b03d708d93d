//! Evaluation of a generative recommender on held-out users, as the reference defines it
//! (docs/reference.md §6): beam search, a generated SID hits when it equals the target item's SID, and
//! per user **Recall@K** = 1 if the target is among the top K beams, **NDCG@K** =
//! 1/log2(rank + 1) for a hit at 1-based rank ≤ K; both averaged over all users. A most-popular
//! baseline goes through the same metric code.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use artifacts::Config;
use artifacts::config::ReducerConfig;
use artifacts::config::{Prior, TrainLoss};
use artifacts::dataset::HeldOut;
use artifacts::metrics::Metrics;
use artifacts::progress::Progress;
use artifacts::sids::SemanticIds;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, ElementConversion};
use gr_model::generate::{Constraint, SidTrie, beam_search_with};
use gr_model::input::{HistoryBatch, SidTable};
use gr_model::tiger::Tiger;

/// Errors of the evaluator crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two items with one SID: generation could not tell them apart.
    #[error("items {first} and {second} share the SID {sid:?}")]
    DuplicateSid {
        /// The first item (0-based).
        first: u32,
        /// The second item (0-based).
        second: u32,
        /// Their SID.
        sid: Vec<u32>,
    },
    /// An evaluation over no users.
    #[error("no users to evaluate")]
    NoUsers,
    /// The SID table does not fit the model.
    #[error(transparent)]
    Model(#[from] gr_model::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Recall@K and NDCG@K from each user's 1-based rank of the target (`None`: not retrieved).
pub fn rank_metrics(
    ranks: &[Option<usize>],
    ks: &[usize],
) -> (BTreeMap<usize, f64>, BTreeMap<usize, f64>) {
    let n = ranks.len().max(1) as f64;
    let mut recall = BTreeMap::new();
    let mut ndcg = BTreeMap::new();
    for &k in ks {
        let hits = ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count();
        let gain: f64 = ranks
            .iter()
            .filter_map(|r| r.filter(|&r| r <= k))
            .map(|r| 1.0 / ((r + 1) as f64).log2())
            .fold(0.0, |a, b| a + b);
        recall.insert(k, hits as f64 / n);
        ndcg.insert(k, gain / n);
    }
    (recall, ndcg)
}

/// The catalogue as generation sees it: SIDs, the SID → item map and the prefix trie.
pub struct Catalogue {
    /// Item SIDs.
    pub table: SidTable,
    by_sid: HashMap<Vec<u32>, u32>,
    /// Prefix trie for constrained decoding.
    pub trie: SidTrie,
}

impl Catalogue {
    /// From the SID table (SIDs must be unique, as the dedup digit makes them).
    pub fn new(table: SidTable) -> Result<Self> {
        let mut by_sid = HashMap::with_capacity(table.len());
        for item in 0..table.len() as u32 {
            let prev = by_sid.insert(table.sid(item).to_vec(), item);
            if let Some(first) = prev {
                return Err(Error::DuplicateSid {
                    first,
                    second: item,
                    sid: table.sid(item).to_vec(),
                });
            }
        }
        let trie = SidTrie::new((0..table.len() as u32).map(|i| table.sid(i)));
        Ok(Catalogue {
            table,
            by_sid,
            trie,
        })
    }

    /// The catalogue of a `SemanticIds` artifact.
    pub fn from_sids(sids: &SemanticIds) -> Result<Self> {
        Catalogue::new(SidTable::from_sids(sids)?)
    }

    /// The catalogue with the prior `model.prior` asks for: for `popularity`, each item weighs
    /// its count in the training sequences `train` plus one.
    pub fn with_prior(mut self, prior: Prior, train: &[Vec<u32>]) -> Self {
        if prior == Prior::Popularity {
            let counts = item_counts(train);
            let items = (0..self.table.len() as u32).map(|i| {
                let count = counts.get(&i).copied().unwrap_or(0);
                (self.table.sid(i), count as f64 + 1.0)
            });
            self.trie = std::mem::take(&mut self.trie).with_prior(items);
        }
        self
    }

    /// A batch of histories with their targets for a teacher-forced loss; with `valid_loss`,
    /// each level's loss is restricted to the digits that continue the target's prefix (and the
    /// catalogue's prior added) — the batch both training and validation score.
    pub fn loss_batch<B: Backend>(
        &self,
        histories: &[&[u32]],
        targets: &[u32],
        slots: Option<usize>,
        valid_loss: bool,
        device: &Device<B>,
    ) -> HistoryBatch<B> {
        let batch = HistoryBatch::new(histories, Some(targets), &self.table, slots, device);
        if valid_loss {
            batch.restrict_to(&self.trie, &self.table, targets)
        } else {
            batch
        }
    }

    /// The item with this SID.
    pub fn item(&self, sid: &[u32]) -> Option<u32> {
        self.by_sid.get(sid).copied()
    }
}

/// How to generate.
#[derive(Debug, Clone)]
pub struct EvalSettings {
    /// Beam width.
    pub beam_width: usize,
    /// Restrict decoding to catalogue prefixes.
    pub constrained: bool,
    /// With `constrained`: score steps with the softmax over the valid digits (and the prior).
    pub renormalize: bool,
    /// Take the teacher-forced loss over the valid digits (`train.loss = "valid"`).
    pub valid_loss: bool,
    /// Users per batch.
    pub batch_users: usize,
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Fixed item slots (`Some`) or dynamic padding (`None`).
    pub slots: Option<usize>,
    /// Reducer at evaluation (kind `none` when `reducer.at_eval` is off).
    pub reducer: ReducerConfig,
    /// Also compute the teacher-forced loss.
    pub with_loss: bool,
}

impl EvalSettings {
    /// Generation as `[eval]` says, with the padding of `[model]` and, when `reducer.at_eval`,
    /// the reducer of `[reducer]`.
    pub fn new(config: &Config, with_loss: bool) -> EvalSettings {
        let e = &config.eval;
        EvalSettings {
            beam_width: e.beam_width,
            constrained: e.constrained,
            renormalize: e.renormalize,
            valid_loss: config.train.loss == TrainLoss::Valid,
            batch_users: e.batch_users,
            ks: e.ks.clone(),
            slots: config.padding_slots(),
            reducer: if config.reducer.at_eval {
                config.reducer.clone()
            } else {
                ReducerConfig::none()
            },
            with_loss,
        }
    }
}

/// Ranked item recommendations of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Items (or `None` for a generated SID that is no item), best first.
    pub items: Vec<Option<u32>>,
    /// Beam probabilities.
    pub scores: Vec<f32>,
}

/// Beam search for a batch of histories; items best first.
pub fn recommend<B: Backend>(
    model: &Tiger<B>,
    histories: &[&[u32]],
    catalogue: &Catalogue,
    settings: &EvalSettings,
    device: &Device<B>,
) -> Vec<Ranked> {
    let batch = HistoryBatch::<B>::new(histories, None, &catalogue.table, settings.slots, device);
    let (embeds, mask) = model.embed_history(batch.sids, batch.item_mask);
    let encoded = model.encode_with(embeds, mask, &settings.reducer);
    let constraint = settings.constrained.then_some(Constraint {
        trie: &catalogue.trie,
        renormalize: settings.renormalize,
    });
    let beams = beam_search_with(model, &encoded, settings.beam_width, constraint);
    beams
        .sids
        .iter()
        .zip(&beams.probs)
        .map(|(sids, probs)| Ranked {
            items: sids.iter().map(|s| catalogue.item(s)).collect(),
            scores: probs.clone(),
        })
        .collect()
}

/// Evaluates `model` on `users` (each a history and a target). Users are batched in order of
/// history length, so dynamic padding wastes little.
pub fn evaluate<B: Backend>(
    model: &Tiger<B>,
    users: &[HeldOut],
    catalogue: &Catalogue,
    settings: &EvalSettings,
    device: &Device<B>,
    label: &str,
) -> Result<Metrics> {
    if users.is_empty() {
        return Err(Error::NoUsers);
    }
    let started = Instant::now();
    let mut order: Vec<usize> = (0..users.len()).collect();
    order.sort_by_key(|&u| (users[u].history.len(), u));
    let mut ranks = vec![None; users.len()];
    let (mut generated, mut invalid) = (0usize, 0usize);
    let mut loss_sum = 0.0;
    let mut progress = Progress::new(label, users.len() as u64);
    for chunk in order.chunks(settings.batch_users.max(1)) {
        let histories: Vec<&[u32]> = chunk.iter().map(|&u| users[u].history.as_slice()).collect();
        for (&u, ranked) in chunk
            .iter()
            .zip(recommend(model, &histories, catalogue, settings, device))
        {
            generated += ranked.items.len();
            invalid += ranked.items.iter().filter(|i| i.is_none()).count();
            ranks[u] = ranked
                .items
                .iter()
                .position(|&i| i == Some(users[u].target))
                .map(|p| p + 1);
        }
        if settings.with_loss {
            let targets: Vec<u32> = chunk.iter().map(|&u| users[u].target).collect();
            loss_sum += batch_loss(model, &histories, &targets, catalogue, settings, device)
                * chunk.len() as f64;
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    let (recall, ndcg) = rank_metrics(&ranks, &settings.ks);
    let seconds = started.elapsed().as_secs_f64();
    Ok(Metrics {
        users: users.len(),
        recall,
        ndcg,
        invalid_share: invalid as f64 / generated.max(1) as f64,
        loss: settings.with_loss.then(|| loss_sum / users.len() as f64),
        seconds,
        users_per_s: users.len() as f64 / seconds.max(1e-9),
    })
}

/// The teacher-forced loss of one batch (the training loss, without dropout).
pub fn batch_loss<B: Backend>(
    model: &Tiger<B>,
    histories: &[&[u32]],
    targets: &[u32],
    catalogue: &Catalogue,
    settings: &EvalSettings,
    device: &Device<B>,
) -> f64 {
    let batch = catalogue.loss_batch(
        histories,
        targets,
        settings.slots,
        settings.valid_loss,
        device,
    );
    let loss = model.batch_loss(batch, &settings.reducer);
    f64::from(loss.into_scalar().elem::<f32>())
}

/// How often each item occurs in the training sequences.
fn item_counts(train: &[Vec<u32>]) -> HashMap<u32, usize> {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for &item in train.iter().flatten() {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

/// The most-popular baseline: every user gets the items most frequent in `train`, best first,
/// scored by the same metric code.
pub fn popularity(train: &[Vec<u32>], users: &[HeldOut], ks: &[usize]) -> Metrics {
    let started = Instant::now();
    let mut ranked: Vec<(u32, usize)> = item_counts(train).into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let depth = ks.iter().copied().max().unwrap_or(10);
    let top: Vec<u32> = ranked.iter().take(depth).map(|&(i, _)| i).collect();
    let ranks: Vec<Option<usize>> = users
        .iter()
        .map(|u| top.iter().position(|&i| i == u.target).map(|p| p + 1))
        .collect();
    let (recall, ndcg) = rank_metrics(&ranks, ks);
    let seconds = started.elapsed().as_secs_f64();
    Metrics {
        users: users.len(),
        recall,
        ndcg,
        invalid_share: 0.0,
        loss: None,
        seconds,
        users_per_s: users.len() as f64 / seconds.max(1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_the_reference_definitions() {
        let ranks = [Some(1), Some(3), Some(7), None];
        let (r, n) = rank_metrics(&ranks, &[5, 10]);
        assert_eq!(r[&5], 0.5);
        assert_eq!(r[&10], 0.75);
        let want5 = (1.0 + 1.0 / 4f64.log2()) / 4.0;
        assert!((n[&5] - want5).abs() < 1e-12);
        let want10 = (1.0 + 0.5 + 1.0 / 8f64.log2()) / 4.0;
        assert!((n[&10] - want10).abs() < 1e-12);
    }

    #[test]
    fn popularity_ranks_by_training_frequency() {
        let train = vec![vec![1, 2, 2], vec![2, 3, 3, 3]];
        let users = vec![
            HeldOut {
                user: 0,
                history: vec![1],
                target: 3,
            },
            HeldOut {
                user: 1,
                history: vec![2],
                target: 2,
            },
            HeldOut {
                user: 2,
                history: vec![2],
                target: 9,
            },
        ];
        let m = popularity(&train, &users, &[1, 2]);
        assert!((m.recall[&1] - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.recall[&2] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn catalogue_rejects_duplicate_sids() {
        let t = SidTable::new(&[vec![1, 2], vec![1, 2]], 4).unwrap();
        assert!(matches!(Catalogue::new(t), Err(Error::DuplicateSid { .. })));
    }
}
