//! T5 encoder parity with Hugging Face transformers on the tiny random fixtures.

use burn::backend::Flex;
use burn::tensor::{Int, Tensor};
use gr_model::t5::{T5Config, T5Encoder};
use gr_model::weights::Weights;
use test_support::{Fixture, assert_close, data, read_json, values};

type B = Flex;

fn load(name: &str) -> (T5Config, T5Encoder<B>) {
    let dir = data!(name);
    let cfg: T5Config = read_json(dir.join("config.json"));
    let w = Weights::open(&dir.join("model.safetensors")).unwrap();
    let enc = T5Encoder::<B>::load(&w, &cfg, &Default::default()).unwrap();
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

#[test]
fn t5_tiny_encoder_matches_transformers() {
    let (_, enc) = load("t5-tiny");
    let inputs = Fixture::open(data!("t5-tiny/inputs.safetensors"));
    let expected = Fixture::open(data!("t5-tiny/expected.safetensors"));
    let (ids, mask, _) = ids_and_mask(&inputs);
    let out = enc.forward(ids, mask);

    let bias = expected.f32("encoder_position_bias", &[1, 4, 12, 12]);
    assert_close("position bias", &values(out.position_bias), &bias, 1e-6);

    let blocks = expected.f32("encoder_block_outputs", &[3, 3, 12, 32]);
    for (i, got) in out.block_outputs.into_iter().enumerate() {
        let want = &blocks[i * 3 * 12 * 32..(i + 1) * 3 * 12 * 32];
        assert_close(&format!("block {i}"), &values(got), want, 1e-4);
    }
    let want = expected.f32("encoder_last_hidden_state", &[3, 12, 32]);
    assert_close(
        "encoder output",
        &values(out.last_hidden_state),
        &want,
        1e-4,
    );
}

#[test]
fn t5_gated_gelu_encoder_and_mean_pooling_match() {
    let (cfg, enc) = load("t5-tiny-gated");
    assert_eq!(cfg.feed_forward_proj, "gated-gelu");
    let expected = Fixture::open(data!("t5-tiny-gated/expected.safetensors"));
    let (ids, mask, mask_i) = ids_and_mask(&expected);
    let out = enc.forward(ids, mask);
    let h = values(out.last_hidden_state);
    let want = expected.f32("encoder_last_hidden_state", &[3, 12, 32]);
    assert_close("encoder output", &h, &want, 1e-4);
    // Masked mean over real tokens.
    let pooled_want = expected.f32("mean_pooled", &[3, 32]);
    let mut pooled = vec![0f32; 3 * 32];
    for b in 0..3 {
        let n: i64 = mask_i[b * 12..(b + 1) * 12].iter().sum();
        for t in 0..12 {
            if mask_i[b * 12 + t] == 1 {
                for d in 0..32 {
                    pooled[b * 32 + d] += h[(b * 12 + t) * 32 + d] / n as f32;
                }
            }
        }
    }
    assert_close("mean pooled", &pooled, &pooled_want, 1e-4);
}

#[test]
fn wrong_shapes_are_named() {
    let w = Weights::open(&data!("t5-tiny/model.safetensors")).unwrap();
    let mut cfg: T5Config = read_json(data!("t5-tiny/config.json"));
    cfg.d_model = 64;
    let err = format!(
        "{:#}",
        T5Encoder::<B>::load(&w, &cfg, &Default::default()).unwrap_err()
    );
    assert!(err.contains("shape") && err.contains("expected"), "{err}");
    cfg.d_model = 32;
    cfg.num_layers = 5;
    let err = format!(
        "{:#}",
        T5Encoder::<B>::load(&w, &cfg, &Default::default()).unwrap_err()
    );
    assert!(err.contains("missing tensor `encoder.block.3"), "{err}");
}
