//! Token reducers: after an encoder layer, keep fewer tokens and run the rest of the encoder and
//! the decoder's cross-attention on the shorter sequence. Generic over `B: Backend`; depends on
//! burn alone (the `tensor` feature, on by default); without it the crate is the reducer's name
//! and keep count only ([`ReducerKind`], [`keep_count`]), which a configuration needs without burn.
//!
//! * [`ReducerKind::Rastp`] (the paper): importance = attention probability each token receives,
//!   summed over heads and over all query rows (padded queries included, as the reference), times
//!   the L1 norm of the layer's output; padding scores −∞; the top tokens are kept in their
//!   original order;
//! * [`ReducerKind::L2`]: the L2 norm of the layer's output as the score (the reference's unused
//!   baseline);
//! * [`ReducerKind::AvgPool`] / [`ReducerKind::MaxPool`]: adaptive pooling of consecutive tokens
//!   (the reference's pooling baseline averages, padding included; a window is valid when any of
//!   its tokens is);
//! * [`ReducerKind::RastpAdaptive`]: per sequence, the smallest set of top tokens holding a share
//!   of the total importance (the paper's future work); rows are padded to the batch's largest set.
//!
//! Selection runs on the host on the detached scores (a few hundred floats per sequence): it
//! breaks ties by position (stable), so results are exact and reproducible, and no gradient flows
//! through the choice — only the kept rows carry gradient.

mod kind;
#[cfg(feature = "tensor")]
mod reduce;

pub use kind::{ReducerKind, keep_count};
#[cfg(feature = "tensor")]
pub use reduce::*;
