//! `model.tie_heads`: each level's head is `d^-0.5 · E_levelᵀ` of the SID embedding table. The
//! export writes it as separate heads, so the reference's untied model loaded from the file
//! computes the same logits; the embedding table learns through the heads.

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use gr_model::export::export_safetensors;
use gr_model::tiger::{Tiger, TigerConfig};
use test_support::{assert_close, small_tiger, values};

fn tied() -> TigerConfig {
    TigerConfig {
        dropout: 0.0,
        tie_heads: true,
        ..small_tiger()
    }
}

/// Logits `[2, 4, 16]` of `model` for fixed random inputs and targets.
fn logits<B: Backend>(model: &Tiger<B>, dev: &B::Device) -> Tensor<B, 3> {
    // Not `B::seed` + `Tensor::random`: the other test of this file draws from the same global
    // generator at the same time, and the two calls of this function must see the same inputs.
    let embeds = Tensor::<B, 3>::from_data(
        TensorData::new(test_support::normal_values(2 * 10 * 32, 7), [2, 10, 32]),
        dev,
    );
    let mask = Tensor::<B, 2>::from_data(
        TensorData::new(
            [[1.0f32; 10], [1., 1., 1., 1., 1., 1., 0., 0., 0., 0.]].concat(),
            [2, 10],
        ),
        dev,
    );
    let targets = Tensor::<B, 2, Int>::from_data(
        TensorData::new(vec![3i64, 1, 4, 1, 5, 9, 2, 6], [2, 4]),
        dev,
    );
    let encoded = model.encode(embeds, mask);
    model.logits(model.decode(&encoded, targets))
}

#[test]
fn tied_heads_are_the_scaled_embedding_and_export_as_untied_heads() {
    let dev = Default::default();
    let model = Tiger::<Flex>::new(&tied(), &dev);
    let got = logits(&model, &dev);

    // Level 2's logits are the states times d^-0.5 · E_2ᵀ.
    let untied = model.clone().untie_heads();
    let e2 = model
        .embedding
        .weight
        .val()
        .slice([32..48, 0..32])
        .transpose()
        .mul_scalar(32f32.powf(-0.5));
    assert_close(
        "head 2 = d^-0.5 · E_2ᵀ",
        &values(untied.heads[2].weight.val()),
        &values(e2),
        1e-6,
    );
    // The separate heads of a fresh model differ: the tied forward must not be using them.
    assert!(
        test_support::max_abs(
            &values(model.heads[2].weight.val()),
            &values(untied.heads[2].weight.val())
        ) > 1e-2
    );

    // The exported file is the reference's untied model with the same logits.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tied.safetensors");
    export_safetensors(&model, &path).unwrap();
    let reference = TigerConfig {
        tie_heads: false,
        ..tied()
    };
    let loaded = Tiger::<Flex>::from_safetensors(&path, &reference, &dev).unwrap();
    assert!(!loaded.tied);
    assert_close(
        "logits of the exported untied model",
        &values(logits(&loaded, &dev)),
        &values(got),
        1e-5,
    );
}

#[test]
fn the_embedding_table_learns_through_tied_heads() {
    type A = Autodiff<Flex>;
    let dev = Default::default();
    for tie in [false, true] {
        let model = Tiger::<A>::new(
            &TigerConfig {
                tie_heads: tie,
                ..tied()
            },
            &dev,
        );
        let logits = logits(&model, &dev);
        let targets = Tensor::<A, 2, Int>::from_data(
            TensorData::new(vec![3i64, 1, 4, 1, 5, 9, 2, 6], [2, 4]),
            &dev,
        );
        // The encoder reads random embeddings and the last level's digits are never decoder
        // inputs: only a tied head reaches the table's last-level rows.
        let grads = model.loss(logits, targets).backward();
        let table = values(model.embedding.weight.grad(&grads).expect("decoder inputs"));
        let last_level = &table[48 * 32..64 * 32];
        let moved = last_level.iter().any(|v| v.abs() > 1e-6);
        let head = model.heads[0].weight.grad(&grads);
        assert_eq!(
            moved, tie,
            "tie_heads = {tie}: last-level rows learn only when tied"
        );
        assert_eq!(
            head.is_some(),
            !tie,
            "tie_heads = {tie}: separate heads learn only when untied"
        );
    }
}
