//! T5 encoder parity with Hugging Face transformers on the tiny random fixtures.

use std::path::Path;

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use gr_model::t5::{T5Config, T5Encoder};
use gr_model::weights::Weights;

type B = Flex;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn load(name: &str) -> (T5Config, T5Encoder<B>) {
    let cfg: T5Config =
        serde_json::from_str(&std::fs::read_to_string(data(name).join("config.json")).unwrap())
            .unwrap();
    let w = Weights::open(&data(name).join("model.safetensors")).unwrap();
    let enc = T5Encoder::<B>::load(&w, &cfg, &Default::default()).unwrap();
    (cfg, enc)
}

fn ids_and_mask(file: &Weights) -> (Tensor<B, 2, Int>, Tensor<B, 2>, Vec<i64>) {
    let dev = Default::default();
    let ids = file.ints("input_ids", &[3, 12]).unwrap();
    let mask = file.ints("attention_mask", &[3, 12]).unwrap();
    let mask_f: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
    (
        Tensor::from_data(TensorData::new(ids, [3, 12]), &dev),
        Tensor::from_data(TensorData::new(mask_f, [3, 12]), &dev),
        mask,
    )
}

fn vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn t5_tiny_encoder_matches_transformers() {
    let (_, enc) = load("t5-tiny");
    let inputs = Weights::open(&data("t5-tiny/inputs.safetensors")).unwrap();
    let expected = Weights::open(&data("t5-tiny/expected.safetensors")).unwrap();
    let (ids, mask, _) = ids_and_mask(&inputs);
    let out = enc.forward(ids, mask);

    let bias = expected
        .values("encoder_position_bias", &[1, 4, 12, 12])
        .unwrap();
    assert!(max_abs(&vec(out.position_bias), &bias) < 1e-6);

    let blocks = expected
        .values("encoder_block_outputs", &[3, 3, 12, 32])
        .unwrap();
    for (i, got) in out.block_outputs.into_iter().enumerate() {
        let want = &blocks[i * 3 * 12 * 32..(i + 1) * 3 * 12 * 32];
        let err = max_abs(&vec(got), want);
        assert!(err < 1e-4, "block {i}: max abs error {err}");
    }
    let want = expected
        .values("encoder_last_hidden_state", &[3, 12, 32])
        .unwrap();
    let err = max_abs(&vec(out.last_hidden_state), &want);
    assert!(err < 1e-4, "encoder output: max abs error {err}");
}

#[test]
fn t5_gated_gelu_encoder_and_mean_pooling_match() {
    let (cfg, enc) = load("t5-tiny-gated");
    assert_eq!(cfg.feed_forward_proj, "gated-gelu");
    let expected = Weights::open(&data("t5-tiny-gated/expected.safetensors")).unwrap();
    let (ids, mask, mask_i) = ids_and_mask(&expected);
    let out = enc.forward(ids, mask);
    let h = vec(out.last_hidden_state);
    let want = expected
        .values("encoder_last_hidden_state", &[3, 12, 32])
        .unwrap();
    assert!(max_abs(&h, &want) < 1e-4, "error {}", max_abs(&h, &want));
    // Masked mean over real tokens.
    let pooled_want = expected.values("mean_pooled", &[3, 32]).unwrap();
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
    assert!(max_abs(&pooled, &pooled_want) < 1e-4);
}

#[test]
fn wrong_shapes_are_named() {
    let w = Weights::open(&data("t5-tiny/model.safetensors")).unwrap();
    let mut cfg: T5Config =
        serde_json::from_str(&std::fs::read_to_string(data("t5-tiny/config.json")).unwrap())
            .unwrap();
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
