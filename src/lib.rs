//! Generative recommendation (TIGER) with RASTP token pruning, in Rust on burn.
//!
//! This facade re-exports the workspace's library crates so that one dependency gives all of
//! them; each crate is usable on its own. The command line is `cargo xtask` (see the README).
//!
//! * [`artifacts`]: configuration, manifests, atomic artifact I/O, the typed artifacts;
//! * [`data_amazon`]: Amazon 2014 loaders (P5 folders, raw files), the synthetic demo set, the split;
//! * [`text_encoder`]: item text → sentence embeddings (BERT / T5 encoders, collaborative vectors);
//! * [`quantizer`]: residual k-means semantic ids;
//! * [`gr_model`]: the TIGER encoder-decoder, its loss and beam search;
//! * [`rastp`]: the token reducers (RASTP and the baselines), generic over the backend;
//! * [`trainer`]: the training loop (sampling, Adam, checkpoints, early stopping);
//! * [`evaluator`]: Recall/NDCG of generated semantic ids and the most-popular baseline;
//! * [`reporting`]: tables and plots of finished runs;
//! * [`pipeline`]: the stages, where every artifact lives, loading a trained run, experiments.

pub use artifacts;
pub use data_amazon;
pub use evaluator;
pub use gr_model;
pub use pipeline;
pub use quantizer;
pub use rastp;
pub use reporting;
pub use text_encoder;
pub use trainer;
