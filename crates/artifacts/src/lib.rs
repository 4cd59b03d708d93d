//! Typed pipeline artifacts shared by every stage crate.
//!
//! * [`config`]: the typed run configuration (`configs/<dataset>.toml`, profiles, `--set` overrides),
//!   applied in [`layer`]s;
//! * [`manifest`]: what an artifact directory says about itself (stage, schema, hashes, rows, time);
//! * [`store`]: atomic artifact directories (written to a temporary sibling, renamed into place);
//! * [`dataset`]: the `Dataset` artifact (items, users, interactions, leave-one-out split) in parquet;
//! * [`embeddings`], [`sids`]: the `ItemEmbeddings` and `SemanticIds` artifacts;
//! * [`model`]: the `Model` artifact's files (training summary, log, stop reasons);
//! * [`metrics`]: the `Metrics` artifact (Recall/NDCG of a model and of the popularity baseline);
//! * [`lock`]: one pipeline at a time per runs folder and dataset;
//! * [`progress`]: progress bars on a terminal, plain log lines elsewhere;
//! * [`error`]: the crate's [`Error`].
//!
//! Stage crates depend on this crate, never on each other's outputs directly.

pub mod config;
pub mod dataset;
pub mod embeddings;
pub mod error;
pub mod hashing;
pub mod layer;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod model;
pub mod model_config;
pub mod progress;
pub mod sids;
pub mod store;

pub use config::{Config, ConfigLayer};
pub use error::{Damage, Error, Result};
pub use manifest::Manifest;
pub use store::ArtifactWriter;
