//! Sentence-encoder parity with Hugging Face / sentence-transformers (max abs error ≤ 1e-4).

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use test_support::{Fixture, assert_close, data, max_abs, read_json, rewrite_safetensors};
use text_encoder::bert::{Bert, BertConfig};
use text_encoder::{Error, SentenceEncoder};

type B = Flex;

fn data(name: &str) -> PathBuf {
    data!(name)
}

fn texts(meta: &Path) -> Vec<String> {
    let m: serde_json::Value = read_json(meta);
    m["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Compares `[n, l, d]` hidden states only where the mask is 1.
fn masked_error(got: &[f32], want: &[f32], mask: &[i64], d: usize) -> f32 {
    let mut err = 0f32;
    for (t, &m) in mask.iter().enumerate() {
        if m == 1 {
            err = err.max(max_abs(&got[t * d..(t + 1) * d], &want[t * d..(t + 1) * d]));
        }
    }
    err
}

fn run_bert(dir: &Path, expected: &Fixture, rows: usize, d: usize) -> (Vec<f32>, Vec<i64>) {
    let cfg: BertConfig = read_json(dir.join("config.json"));
    let dev = Default::default();
    let bert = Bert::<B>::from_safetensors(&dir.join("model.safetensors"), &cfg, &dev).unwrap();
    let ids = expected.i64("input_ids", &[8, 246]);
    let types = expected.i64("token_type_ids", &[8, 246]);
    let mask = expected.i64("attention_mask", &[8, 246]);
    let take = rows * 246;
    let mask_f: Vec<f32> = mask[..take].iter().map(|&m| m as f32).collect();
    let h = bert.forward(
        Tensor::<B, 2, Int>::from_data(TensorData::new(ids[..take].to_vec(), [rows, 246]), &dev),
        Tensor::<B, 2, Int>::from_data(TensorData::new(types[..take].to_vec(), [rows, 246]), &dev),
        Tensor::<B, 2>::from_data(TensorData::new(mask_f, [rows, 246]), &dev),
    );
    assert_eq!(h.dims(), [rows, 246, d]);
    (h.into_data().to_vec().unwrap(), mask[..take].to_vec())
}

#[test]
fn tokenizer_matches_sentence_transformers() {
    let dir = data("bert-tiny");
    let expected = Fixture::open(dir.join("expected.safetensors"));
    let enc = SentenceEncoder::<B>::load(&dir, None, 256, &Default::default()).unwrap();
    let tokens = enc.tokenize(&texts(&data("minilm/meta.json"))).unwrap();
    let ids = expected.i64("input_ids", &[8, 246]);
    for (r, t) in tokens.iter().enumerate() {
        let want: Vec<u32> = ids[r * 246..(r + 1) * 246]
            .iter()
            .filter(|&&i| i != 0)
            .map(|&i| i as u32)
            .collect();
        assert_eq!(t.ids, want, "text {r}");
        assert!(!t.truncated);
    }
    // Truncation keeps the first tokens and the final [SEP].
    let short = SentenceEncoder::<B>::load(&dir, None, 10, &Default::default()).unwrap();
    let t = &short
        .tokenize(&texts(&data("minilm/meta.json"))[..1])
        .unwrap()[0];
    assert!(t.truncated && t.ids.len() == 10);
    assert_eq!((t.ids[0], t.ids[9]), (101, 102));
}

#[test]
fn bert_tiny_matches_transformers() {
    let dir = data("bert-tiny");
    let expected = Fixture::open(dir.join("expected.safetensors"));
    let (h, mask) = run_bert(&dir, &expected, 8, 32);
    let want = expected.f32("last_hidden_state", &[8, 246, 32]);
    let err = masked_error(&h, &want, &mask, 32);
    assert!(err < 1e-4, "last hidden state error {err}");

    // The whole sentence-encoder path (own tokenisation, length-sorted batches of 3).
    let enc = SentenceEncoder::<B>::load(&dir, None, 256, &Default::default()).unwrap();
    assert!(enc.normalizes());
    let (out, report) = enc
        .embed(&texts(&data("minilm/meta.json")), 3, "bert-tiny")
        .unwrap();
    let want = expected.f32("normalized", &[8, 32]);
    assert_close("normalized", &out, &want, 1e-4);
    assert_eq!(report.tokens, 39 + 38 + 49 + 51 + 15 + 246 + 45 + 22);
    // Sorting by length keeps padding far below padding everything to the longest text.
    assert!(report.padding < 8 * 246 - report.tokens);

    let raw = SentenceEncoder::<B>::load(&dir, Some(false), 256, &Default::default()).unwrap();
    let (out, _) = raw
        .embed(&texts(&data("minilm/meta.json")), 8, "bert-tiny")
        .unwrap();
    let want = expected.f32("mean_pooled", &[8, 32]);
    assert_close("mean pooled", &out, &want, 1e-4);
}

/// Task checkpoints name the encoder `bert.…` and may carry a pooler or a head: the prefix is
/// dropped and those extra tensors are ignored.
#[test]
fn bert_prefixed_checkpoints_load() {
    let dir = data("bert-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    rewrite_safetensors(&dir.join("model.safetensors"), &path, |mut t| {
        t.name = format!("bert.{}", t.name);
        t
    });
    let cfg: BertConfig = read_json(dir.join("config.json"));
    let dev = Default::default();
    let plain = Bert::<B>::from_safetensors(&dir.join("model.safetensors"), &cfg, &dev).unwrap();
    let bert = Bert::<B>::from_safetensors(&path, &cfg, &dev).unwrap();
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(vec![101i64, 7592, 102], [1, 3]), &dev);
    let run = |m: &Bert<B>| {
        m.forward(ids.clone(), ids.zeros_like(), Tensor::ones([1, 3], &dev))
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(run(&bert), run(&plain));
}

/// The real all-MiniLM-L6-v2, fetched through the same code path as `cargo xtask setup`.
#[test]
fn minilm_matches_sentence_transformers() {
    let models = test_support::project_root().join("models");
    let dir = text_encoder::models::ensure(&models, "all-MiniLM-L6-v2", None)
        .expect("fetch all-MiniLM-L6-v2");
    let expected = Fixture::open(data("minilm/expected.safetensors"));
    let (h, mask) = run_bert(&dir, &expected, 2, 384);
    let want = expected.f32("last_hidden_state_first2", &[2, 246, 384]);
    let err = masked_error(&h, &want, &mask, 384);
    assert!(err < 1e-4, "last hidden state error {err}");

    let enc = SentenceEncoder::<B>::load(&dir, None, 256, &Default::default()).unwrap();
    assert_eq!(enc.dim(), 384);
    let (out, _) = enc
        .embed(&texts(&data("minilm/meta.json")), 4, "minilm")
        .unwrap();
    let want = expected.f32("normalized", &[8, 384]);
    assert_close("sentence embedding", &out, &want, 1e-4);
}

#[test]
fn mismatched_model_files_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(data("bert-tiny").join(f), dir.join(f)).unwrap();
    }
    let err = SentenceEncoder::<B>::load(dir, None, 256, &Default::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::MissingModelFile {
                file: "config.json",
                ..
            }
        ),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(m.contains("config.json"), "{m}");
    // A config whose width disagrees with the weights.
    let cfg = std::fs::read_to_string(data("bert-tiny/config.json"))
        .unwrap()
        .replace("\"hidden_size\": 32", "\"hidden_size\": 64");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let err = SentenceEncoder::<B>::load(dir, None, 256, &Default::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::Model(gr_model::Error::WeightsMismatch { .. })),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(m.contains("model.safetensors"), "{m}");
    assert!(
        m.contains(
            "tensor `encoder.layer.0.attention.self.query.weight` has shape [32, 32], expected [64, 64]"
        ),
        "{m}"
    );
    // A vocabulary smaller than the tokenizer's.
    let cfg = std::fs::read_to_string(data("bert-tiny/config.json"))
        .unwrap()
        .replace("\"vocab_size\": 30522", "\"vocab_size\": 1000");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let err = SentenceEncoder::<B>::load(dir, None, 256, &Default::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::Vocabulary { .. } | Error::Model(gr_model::Error::WeightsMismatch { .. })
        ),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(m.contains("shape") || m.contains("tokenizer"), "{m}");
}
