//! A freshly initialised TIGER model starts at the uniform loss and learns a fixed batch, with
//! and without RASTP (dropout on, Adam with coupled L2 as the reference); the check is
//! `test_support::conformance::fresh_model_learns_a_batch`, shared with the GPU backends.

use burn::backend::{Autodiff, Flex};

#[test]
fn fresh_model_learns_a_batch() {
    test_support::conformance::fresh_model_learns_a_batch::<Autodiff<Flex>>(&Default::default());
}
