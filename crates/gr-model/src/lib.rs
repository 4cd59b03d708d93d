//! The generative-recommendation model's building blocks.
//!
//! * [`t5`]: T5 blocks with Hugging Face numerics (encoder stack, attention with relative
//!   position bias, RMS norm, relu / gated-gelu feed-forward), shared with the text encoder's
//!   T5 path;
//! * [`tiger`]: the TIGER encoder-decoder as the reference builds it (SID embeddings with level
//!   offsets, SEP and BOS vectors, MLP feed-forward, one head per level, summed per-level loss),
//!   forward and gradients parity-tested against the reference replica;
//! * [`generate`]: batched beam search as the reference (probabilities multiplied, fixed steps);
//! * [`weights`]: Hugging Face safetensors checkpoints into burn modules, with shape checks.
//!
//! Token reducers from the `rastp` crate plug into the encoder (`Tiger::encode_with`). Still to
//! come (the model issue): a decoder key/value cache and trie-constrained decoding, the
//! `position_bias` / `at_eval` / `keep_basis` options, dynamic padding, PyTorch-default
//! initialisation for training from scratch, record save/load and safetensors export.

pub mod generate;
pub mod t5;
pub mod tiger;
pub mod weights;
