//! The TIGER model against the reference replica on the `tiger-tiny` fixture (eval mode):
//! forward pass, loss, gradients, RASTP's kept tokens and beams, on the CPU backend. The checks
//! live in `test_support::conformance`, which `xtask/tests/conformance.rs` also runs on the
//! GPU backends.

use burn::backend::{Autodiff, Flex};
use test_support::conformance as check;

type B = Flex;
type A = Autodiff<Flex>;

#[test]
fn tiger_tiny_forward_and_loss_match_the_reference() {
    check::tiger_forward_and_loss::<B>(&Default::default());
}

#[test]
fn tiger_tiny_gradients_match_the_reference() {
    check::tiger_gradients::<A>(&Default::default());
}

#[test]
fn tiger_tiny_rastp_matches_the_reference() {
    check::tiger_rastp_forward::<B>(&Default::default());
}

#[test]
fn tiger_tiny_rastp_gradients_match_the_reference() {
    check::tiger_rastp_gradients::<A>(&Default::default());
}

#[test]
fn beam_search_matches_the_reference() {
    check::beams_match_the_reference::<B>(&Default::default());
}
