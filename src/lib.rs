//! Generative recommendation (TIGER) with RASTP token pruning, in Rust on burn.
//!
//! This facade re-exports the pipeline's crates so that one dependency gives all of them; each
//! crate is usable on its own. The command line is `cargo xtask` (see the README).
//!
//! * [`artifacts`]: configuration, manifests, atomic artifact I/O, the `Dataset` artifact;
//! * [`data_amazon`]: Amazon 2014 loaders (P5 folders, raw files), the synthetic demo set, the split.

pub use artifacts;
pub use data_amazon;
