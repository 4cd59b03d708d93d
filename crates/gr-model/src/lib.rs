//! The generative-recommendation model's building blocks.
//!
//! * [`t5`]: T5 blocks with Hugging Face numerics (encoder stack, attention with relative
//!   position bias, RMS norm, relu / gated-gelu feed-forward), shared with the text encoder's
//!   T5 path;
//! * [`tiger`]: the TIGER encoder-decoder as the reference builds it (SID embeddings with level
//!   offsets, SEP and BOS vectors, MLP feed-forward, one head per level, summed per-level loss),
//!   forward and gradients parity-tested against the reference replica;
//! * [`host_attention`]: attention as one host kernel (forward and backward) on the CPU backend;
//! * [`generate`]: batched beam search as the reference (probabilities multiplied, fixed steps);
//! * [`weights`]: safetensors checkpoints in and out of burn modules through burn-store, by one
//!   name table per model (burn paths ↔ reference names), with name and shape checks;
//! * [`input`]: the catalogue's SIDs, their prefix trie and right-padded history batches (fixed
//!   or dynamic);
//! * [`export`]: burn records (checkpoints) and safetensors export under the reference's names
//!   ([`tiger::REFERENCE_NAMES`]);
//! * [`artifact`]: the trained-model artifact's files written and loaded (checked against the
//!   artifact's manifest);
//! * [`error`]: the crate's [`Error`].
//!
//! Token reducers from the `rastp` crate plug into the encoder (`Tiger::encode_with` takes the
//! `[reducer]` section itself: kind, layer, keep ratio and basis, position bias); generation uses a decoder
//! key/value cache and, optionally, a prefix trie of the catalogue ([`input::SidTrie`]).

pub mod artifact;
pub mod error;
pub mod export;
pub mod generate;
pub mod host_attention;
pub mod input;
pub mod t5;
pub mod tiger;
pub mod weights;

pub use error::{Error, Result};
