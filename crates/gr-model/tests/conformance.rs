//! Backend conformance on the CPU: every check of `test_support::conformance` (the model's parity
//! fixtures — TIGER forward, loss, gradients, RASTP's kept tokens, beams, the T5 encoder —
//! training a batch, and the model options: cached and constrained decoding, single-query
//! attention, padding, reducer options, records) on burn's `Flex` backend, through the same
//! `conformance_tests!` list that `xtask/tests/conformance.rs` runs on the backend `xtask` is
//! built with.

use burn::backend::{Autodiff, Flex};

test_support::conformance_tests!(Flex, Autodiff<Flex>, Default::default());
