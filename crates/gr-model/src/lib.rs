//! The generative-recommendation model's building blocks.
//!
//! * [`t5`]: T5 blocks with Hugging Face numerics (encoder stack, attention with relative
//!   position bias, RMS norm, relu / gated-gelu feed-forward), shared with the text encoder's
//!   T5 path;
//! * [`weights`]: Hugging Face safetensors checkpoints into burn modules, with shape checks.
//!
//! The TIGER model, the decoder and beam search come next (generic over `B: Backend`).

pub mod t5;
pub mod weights;
