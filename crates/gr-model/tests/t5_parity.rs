//! Loading T5 encoder checkpoints: shape errors, tied embedding copies, half precision. The
//! forward parity with Hugging Face transformers lives in `test_support::conformance` and runs on
//! the CPU in `tests/conformance.rs`.

use burn::backend::Flex;
use burn::tensor::{DType, Int, Tensor, TensorData};
use gr_model::t5::{T5Config, T5Encoder};
use test_support::{Fixture, assert_close, data, read_json, rewrite_safetensors, values};

type B = Flex;

fn load(name: &str) -> (T5Config, T5Encoder<B>) {
    let dir = data!(name);
    let cfg: T5Config = read_json(dir.join("config.json"));
    let enc =
        T5Encoder::<B>::from_safetensors(&dir.join("model.safetensors"), &cfg, &Default::default())
            .unwrap();
    (cfg, enc)
}

fn ids_and_mask(file: &Fixture) -> (Tensor<B, 2, Int>, Tensor<B, 2>, Vec<i64>) {
    let dev = Default::default();
    (
        file.int_tensor("input_ids", [3, 12], &dev),
        file.mask_tensor("attention_mask", [3, 12], &dev),
        file.i64("attention_mask", &[3, 12]),
    )
}

/// The message of a load that failed because the weights do not fit the model.
fn mismatch<T>(result: gr_model::Result<T>) -> String {
    match result {
        Err(err @ gr_model::Error::WeightsMismatch { .. }) => err.to_string(),
        Err(err) => panic!("expected a weights mismatch, got {err:?}"),
        Ok(_) => panic!("expected a weights mismatch, got a model"),
    }
}

#[test]
fn wrong_shapes_are_named() {
    let path = data!("t5-tiny/model.safetensors");
    let mut cfg: T5Config = read_json(data!("t5-tiny/config.json"));
    cfg.d_model = 64;
    let err = mismatch(T5Encoder::<B>::from_safetensors(
        &path,
        &cfg,
        &Default::default(),
    ));
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(
        err.contains("tensor `shared.weight` has shape [70, 32], expected [70, 64]"),
        "{err}"
    );
    cfg.d_model = 32;
    cfg.num_layers = 5;
    let err = mismatch(T5Encoder::<B>::from_safetensors(
        &path,
        &cfg,
        &Default::default(),
    ));
    assert!(err.contains("missing tensor `encoder.block.3"), "{err}");
    // Fewer blocks than the file: the extra ones are unexpected, not silently dropped.
    cfg.num_layers = 2;
    let err = mismatch(T5Encoder::<B>::from_safetensors(
        &path,
        &cfg,
        &Default::default(),
    ));
    assert!(err.contains("unexpected tensor `encoder.block.2"), "{err}");
}

#[test]
fn a_tied_embedding_copy_loads_in_place_of_shared() {
    // The same weights with `shared.weight` renamed to `encoder.embed_tokens.weight`.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    rewrite_safetensors(&data!("t5-tiny/model.safetensors"), &path, |mut t| {
        if t.name == "shared.weight" {
            t.name = "encoder.embed_tokens.weight".into();
        }
        t
    });
    let cfg: T5Config = read_json(data!("t5-tiny/config.json"));
    let (_, want) = load("t5-tiny");
    let got = T5Encoder::<B>::from_safetensors(&path, &cfg, &Default::default()).unwrap();
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(vec![5i64, 9, 1, 0], [1, 4]),
        &Default::default(),
    );
    let mask = Tensor::<B, 2>::ones([1, 4], &Default::default());
    assert_eq!(
        values(got.forward(ids.clone(), mask.clone()).last_hidden_state),
        values(want.forward(ids, mask).last_hidden_state)
    );
}

#[test]
fn half_precision_checkpoints_load_as_f32() {
    // The fixture's weights stored as F16.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    rewrite_safetensors(&data!("t5-tiny/model.safetensors"), &path, |mut t| {
        let vals: Vec<f32> = t
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let half = TensorData::new(vals, t.shape.clone()).convert_dtype(DType::F16);
        t.bytes = half.as_bytes().to_vec();
        t.dtype = safetensors::Dtype::F16;
        t
    });
    let cfg: T5Config = read_json(data!("t5-tiny/config.json"));
    let (_, full) = load("t5-tiny");
    let half = T5Encoder::<B>::from_safetensors(&path, &cfg, &Default::default()).unwrap();
    let weight = half.blocks[0].attn.q.weight.val();
    assert_eq!(weight.dtype(), DType::F32);
    let inputs = Fixture::open(data!("t5-tiny/inputs.safetensors"));
    let (ids, mask, _) = ids_and_mask(&inputs);
    assert_close(
        "F16 weights",
        &values(half.forward(ids.clone(), mask.clone()).last_hidden_state),
        &values(full.forward(ids, mask).last_hidden_state),
        2e-2,
    );
}
