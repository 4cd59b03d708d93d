//! The names of things in a run: stages ([`StageId`]) and the runs of the per-seed stages
//! ([`RunKey`]).

use std::fmt;
use std::str::FromStr;

use artifacts::config::Variant;

use crate::error::Error;

/// The stages, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageId {
    /// Load, filter and split the interactions.
    Data,
    /// Item text (or co-occurrence) to embeddings.
    Embed,
    /// Embeddings to semantic ids.
    Sids,
    /// Train the model (per variant and seed).
    Train,
    /// Test metrics (per variant and seed).
    Eval,
    /// The report over all runs.
    Report,
}

impl StageId {
    /// Every stage, in pipeline order.
    pub const ALL: [StageId; 6] = [
        StageId::Data,
        StageId::Embed,
        StageId::Sids,
        StageId::Train,
        StageId::Eval,
        StageId::Report,
    ];

    /// The stage's name, also its artifact directory's name.
    pub fn name(self) -> &'static str {
        match self {
            StageId::Data => "data",
            StageId::Embed => "embed",
            StageId::Sids => "sids",
            StageId::Train => "train",
            StageId::Eval => "eval",
            StageId::Report => "report",
        }
    }

    /// True for the stages that run once per reducer variant and seed
    /// (`<stage>/<variant>/seed-<n>/`): `train` and `eval`.
    pub fn per_seed(self) -> bool {
        matches!(self, StageId::Train | StageId::Eval)
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StageId {
    type Err = Error;

    fn from_str(text: &str) -> Result<StageId, Error> {
        StageId::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| Error::UnknownStage {
                name: text.to_string(),
                known: StageId::ALL
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// One run of the per-seed stages: a reducer variant and a seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunKey {
    /// The reducer variant of this run (canonical).
    pub variant: Variant,
    /// The seed.
    pub seed: u64,
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/seed-{}", self.variant, self.seed)
    }
}
