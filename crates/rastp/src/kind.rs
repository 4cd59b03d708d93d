//! The reducer's name and its keep count: what a configuration needs, without burn.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which reducer (`reducer.kind` in the configuration, written in kebab case: `none`, `rastp`,
/// `l2`, `max-pool`, `avg-pool`, `rastp-adaptive`). `None` is the only way to say "no reduction".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReducerKind {
    /// Keep everything (the identity; TIGER without pruning).
    #[default]
    None,
    /// Attention received × L1 norm (RASTP).
    Rastp,
    /// L2 norm of the hidden state.
    L2,
    /// Max over windows of consecutive tokens.
    MaxPool,
    /// Mean over windows of consecutive tokens.
    AvgPool,
    /// RASTP keeping, per sequence, the smallest top set that holds a share (`mass`) of the
    /// total importance.
    RastpAdaptive,
}

impl ReducerKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [ReducerKind; 6] = [
        ReducerKind::None,
        ReducerKind::Rastp,
        ReducerKind::L2,
        ReducerKind::MaxPool,
        ReducerKind::AvgPool,
        ReducerKind::RastpAdaptive,
    ];

    /// The configuration's name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            ReducerKind::None => "none",
            ReducerKind::Rastp => "rastp",
            ReducerKind::L2 => "l2",
            ReducerKind::MaxPool => "max-pool",
            ReducerKind::AvgPool => "avg-pool",
            ReducerKind::RastpAdaptive => "rastp-adaptive",
        }
    }
}

impl fmt::Display for ReducerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReducerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ReducerKind::ALL
            .into_iter()
            .find(|k| k.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = ReducerKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown reducer `{text}`, expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// How many tokens a fixed-ratio reducer keeps of `len`: `max(1, ⌊len · ratio⌋)` (the reference's
/// `max(1, int(L * 1/3))`).
pub fn keep_count(len: usize, ratio: f64) -> usize {
    ((len as f64 * ratio).floor() as usize).clamp(1, len.max(1))
}
