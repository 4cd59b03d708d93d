//! The generative-recommendation model's building blocks.
//!
//! * [`t5`]: T5 blocks with Hugging Face numerics (encoder stack, attention with relative
//!   position bias, RMS norm, relu / gated-gelu feed-forward), shared with the text encoder's
//!   T5 path;
//! * [`tiger`]: the TIGER encoder-decoder as the reference builds it (SID embeddings with level
//!   offsets, SEP and BOS vectors, MLP feed-forward, one head per level, summed per-level loss),
//!   forward and gradients parity-tested against the reference replica;
//! * [`weights`]: Hugging Face safetensors checkpoints into burn modules, with shape checks.
//!
//! Still to come (the model issue): token reducers wired into the encoder, beam search with a
//! key/value cache, PyTorch-default initialisation for training from scratch, record save/load.

pub mod t5;
pub mod tiger;
pub mod weights;
