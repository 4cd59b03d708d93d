//! The `Metrics` artifact (`eval/<variant>/seed-<n>/metrics.json`): Recall@K and NDCG@K of a
//! trained model on the test users, beside the most-popular baseline on the same users.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metrics file's name.
pub const METRICS_FILE: &str = "metrics.json";

/// Metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Users evaluated.
    pub users: usize,
    /// Recall@K by K.
    pub recall: BTreeMap<usize, f64>,
    /// NDCG@K by K.
    pub ndcg: BTreeMap<usize, f64>,
    /// Share of generated SIDs that are no catalogue item (unconstrained search only).
    pub invalid_share: f64,
    /// Mean teacher-forced loss (summed over levels), when computed.
    pub loss: Option<f64>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Users per second.
    pub users_per_s: f64,
}

impl Metrics {
    /// `R@5 0.0123 N@5 0.0080, R@10 …` for log lines.
    pub fn summary(&self) -> String {
        self.recall
            .iter()
            .map(|(k, r)| {
                format!(
                    "R@{k} {r:.4} N@{k} {:.4}",
                    self.ndcg.get(k).copied().unwrap_or(0.0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Reducer variant.
    pub variant: String,
    /// Seed.
    pub seed: u64,
    /// Test users evaluated (of all).
    pub users: usize,
    /// All test users.
    pub all_users: usize,
    /// Constrained decoding.
    pub constrained: bool,
    /// The model's metrics.
    pub model: Metrics,
    /// The most-popular baseline on the same users.
    pub popularity: Metrics,
}
