//! Typed pipeline artifacts shared by every stage crate.
//!
//! * [`config`]: the typed run configuration (`configs/<dataset>.toml`, profiles, `--set` overrides);
//! * [`manifest`]: what an artifact directory says about itself (stage, schema, hashes, rows, time);
//! * [`store`]: atomic artifact directories (written to a temporary sibling, renamed into place);
//! * [`dataset`]: the `Dataset` artifact (items, users, interactions, leave-one-out split) in parquet;
//! * [`progress`]: progress bars on a terminal, plain log lines elsewhere.
//!
//! Stage crates depend on this crate, never on each other's outputs directly.

pub mod config;
pub mod dataset;
pub mod embeddings;
pub mod hashing;
pub mod manifest;
pub mod model_config;
pub mod progress;
pub mod sids;
pub mod store;

pub use config::{Config, ConfigLayer};
pub use manifest::Manifest;
pub use store::ArtifactWriter;
