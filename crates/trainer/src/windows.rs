//! Training examples as the reference expands them (docs/reference.md §1.2): every user's training
//! sequence gives every contiguous window of ≥ 2 items (its last item is the target, the rest,
//! cut to the last `max_history` items, the input). A micro-batch takes the next
//! `users_per_batch` users of a seeded per-epoch shuffle, enumerates their windows (user → end
//! ascending → start ascending) and, above `max_windows`, subsamples them: the reference draws
//! `max_windows` indices with replacement and keeps the windows drawn at least once, in
//! enumeration order; `uniform` draws that many distinct windows.
//!
//! The micro-batch with index `i` is a pure function of `(seed, i)`: resuming at batch `i`
//! reproduces the data order without storing any sampler state.

use artifacts::config::{WindowSampling, WindowStarts};
use artifacts::hashing::mix;
use burn::data::dataset::Dataset;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The training split's user sequences that have at least one window (≥ 2 items).
#[derive(Debug, Clone)]
pub struct TrainUsers {
    sequences: Vec<Vec<u32>>,
}

impl TrainUsers {
    /// Keeps the sequences with at least 2 items.
    pub fn new(train: &[Vec<u32>]) -> Self {
        TrainUsers {
            sequences: train.iter().filter(|s| s.len() >= 2).cloned().collect(),
        }
    }

    /// Users with at least one window.
    pub fn users(&self) -> usize {
        self.sequences.len()
    }

    /// Total windows over all users (Σ k(k−1)/2).
    pub fn total_windows(&self) -> usize {
        self.sequences
            .iter()
            .map(|s| s.len() * (s.len() - 1) / 2)
            .sum()
    }
}

impl Dataset<Vec<u32>> for TrainUsers {
    fn get(&self, index: usize) -> Option<Vec<u32>> {
        self.sequences.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.sequences.len()
    }
}

/// One training example: a history and its target item.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Input items (at most `max_history`, oldest first).
    pub history: Vec<u32>,
    /// The item to predict.
    pub target: u32,
}

/// Draws micro-batches of windows.
#[derive(Debug, Clone)]
pub struct WindowSampler {
    users: TrainUsers,
    seed: u64,
    users_per_batch: usize,
    max_windows: usize,
    sampling: WindowSampling,
    max_history: usize,
    starts: WindowStarts,
}

impl WindowSampler {
    /// A sampler over `users`.
    pub fn new(
        users: TrainUsers,
        seed: u64,
        users_per_batch: usize,
        max_windows: usize,
        sampling: WindowSampling,
        max_history: usize,
    ) -> Self {
        WindowSampler {
            users,
            seed,
            users_per_batch: users_per_batch.max(1),
            max_windows: max_windows.max(1),
            sampling,
            max_history: max_history.max(1),
            starts: WindowStarts::All,
        }
    }

    /// Uses only the windows `starts` names.
    pub fn with_starts(mut self, starts: WindowStarts) -> Self {
        self.starts = starts;
        self
    }

    /// The sampler a run of `config` with `seed` trains on (`[train]` and `data.max_history`).
    pub fn from_config(users: TrainUsers, seed: u64, config: &artifacts::Config) -> Self {
        let t = &config.train;
        WindowSampler::new(
            users,
            seed,
            t.users_per_batch,
            t.max_windows,
            t.window_sampling,
            config.data.max_history,
        )
        .with_starts(t.windows)
    }

    /// Micro-batches per pass over the users (the last partial batch is dropped, as the
    /// reference's `drop_last`).
    pub fn batches_per_epoch(&self) -> usize {
        (self.users.len() / self.users_per_batch).max(1)
    }

    /// The users of micro-batch `index` (indices into the training users).
    pub fn batch_users(&self, index: u64) -> Vec<usize> {
        let per_epoch = self.batches_per_epoch() as u64;
        let (epoch, pos) = (index / per_epoch, (index % per_epoch) as usize);
        let mut order: Vec<usize> = (0..self.users.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(self.seed, 1, epoch)));
        let take = self.users_per_batch.min(order.len());
        order[pos * take..(pos + 1) * take].to_vec()
    }

    /// Micro-batch `index`.
    pub fn batch(&self, index: u64) -> Vec<Example> {
        let mut windows: Vec<(usize, usize, usize)> = Vec::new();
        for u in self.batch_users(index) {
            let k = self.users.sequences[u].len();
            for end in 2..=k {
                let last_start = match self.starts {
                    WindowStarts::All => end - 2,
                    WindowStarts::Prefix => 0,
                };
                for start in 0..=last_start {
                    windows.push((u, start, end));
                }
            }
        }
        let total = windows.len();
        if total > self.max_windows {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, 2, index));
            let mut chosen = vec![false; total];
            match self.sampling {
                WindowSampling::Replacement => {
                    for _ in 0..self.max_windows {
                        chosen[rng.random_range(0..total)] = true;
                    }
                }
                WindowSampling::Uniform => {
                    for i in rand::seq::index::sample(&mut rng, total, self.max_windows) {
                        chosen[i] = true;
                    }
                }
            }
            windows = windows
                .into_iter()
                .zip(chosen)
                .filter_map(|(w, keep)| keep.then_some(w))
                .collect();
        }
        windows
            .into_iter()
            .map(|(u, start, end)| {
                let seq = &self.users.sequences[u];
                let from = start.max((end - 1).saturating_sub(self.max_history));
                Example {
                    history: seq[from..end - 1].to_vec(),
                    target: seq[end - 1],
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(max_windows: usize, sampling: WindowSampling) -> WindowSampler {
        let train = vec![vec![1, 2, 3, 4], vec![5, 6], vec![7], vec![8, 9, 10]];
        WindowSampler::new(TrainUsers::new(&train), 3, 3, max_windows, sampling, 2)
    }

    #[test]
    fn every_window_of_at_least_two_items_in_reference_order() {
        let s = sampler(1000, WindowSampling::Replacement);
        assert_eq!(s.users.len(), 3, "single-item sequences give no window");
        assert_eq!(s.users.total_windows(), 6 + 1 + 3);
        let batch = s.batch(0);
        assert_eq!(batch.len(), 10);
        // User [1,2,3,4]'s windows: end 2: [1]→2; end 3: [1,2]→3, [2]→3; end 4: [2,3]→4 (cut to 2), …
        let first: Vec<Example> = batch.iter().filter(|e| e.target <= 4).cloned().collect();
        let want = [
            (vec![1], 2),
            (vec![1, 2], 3),
            (vec![2], 3),
            (vec![2, 3], 4),
            (vec![2, 3], 4),
            (vec![3], 4),
        ];
        assert_eq!(first.len(), want.len());
        for (e, (h, t)) in first.iter().zip(want) {
            assert_eq!((&e.history, e.target), (&h, t));
        }
    }

    #[test]
    fn subsampling_keeps_at_most_the_cap_in_order_and_is_reproducible() {
        for sampling in [WindowSampling::Replacement, WindowSampling::Uniform] {
            let s = sampler(4, sampling);
            let a = s.batch(5);
            assert_eq!(a, s.batch(5), "a pure function of (seed, index)");
            assert!(a.len() <= 4 && !a.is_empty());
            if sampling == WindowSampling::Uniform {
                assert_eq!(a.len(), 4);
            }
        }
    }

    #[test]
    fn prefix_windows_give_one_example_per_target() {
        let s = sampler(1000, WindowSampling::Replacement).with_starts(WindowStarts::Prefix);
        let batch = s.batch(0);
        assert_eq!(batch.len(), 3 + 1 + 2);
        let targets: Vec<u32> = batch
            .iter()
            .filter(|e| e.target <= 4)
            .map(|e| e.target)
            .collect();
        assert_eq!(targets, vec![2, 3, 4]);
    }

    #[test]
    fn epochs_visit_every_user_once() {
        let train: Vec<Vec<u32>> = (0..10).map(|u| vec![u, u + 100]).collect();
        let s = WindowSampler::new(
            TrainUsers::new(&train),
            1,
            3,
            512,
            WindowSampling::Replacement,
            29,
        );
        assert_eq!(s.batches_per_epoch(), 3);
        let mut seen: Vec<usize> = (0..3).flat_map(|i| s.batch_users(i)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        assert_ne!(
            s.batch_users(0),
            s.batch_users(3),
            "a new shuffle each epoch"
        );
    }
}
