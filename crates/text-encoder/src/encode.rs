//! Sentences to vectors: tokenise in parallel, sort by length, batch with little padding, run the
//! encoder, masked-mean pool, optionally L2-normalise, and put the rows back in input order.

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result, io};
use artifacts::progress::Progress;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Int, Tensor, TensorData};
use gr_model::t5::{T5Config, T5Encoder};
use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::bert::{Bert, BertConfig};

/// The encoder network behind a sentence encoder.
enum Network<B: Backend> {
    Bert(Box<Bert<B>>),
    T5(Box<T5Encoder<B>>),
}

/// A pretrained sentence encoder loaded from a folder with `config.json`, `model.safetensors`
/// and `tokenizer.json`.
pub struct SentenceEncoder<B: Backend> {
    tokenizer: Tokenizer,
    network: Network<B>,
    dim: usize,
    normalize: bool,
    max_tokens: usize,
    device: Device<B>,
}

/// One tokenised text.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Token type ids.
    pub type_ids: Vec<u32>,
    /// True when the text was cut to `max_tokens`.
    pub truncated: bool,
}

/// What an encoding run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodeReport {
    /// Texts encoded.
    pub texts: usize,
    /// Tokens fed to the model (after truncation).
    pub tokens: usize,
    /// Padding positions computed (the cost of batching).
    pub padding: usize,
    /// Texts cut to `max_tokens`.
    pub truncated: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

pub use crate::model_files::MODEL_FILES;

impl<B: Backend> SentenceEncoder<B> {
    /// Loads the encoder in `dir`. `normalize = None` uses the family's convention (BERT: L2
    /// normalised as sentence-transformers; T5: raw mean, as the reference).
    pub fn load(
        dir: &Path,
        normalize: Option<bool>,
        max_tokens: usize,
        device: &Device<B>,
    ) -> Result<Self> {
        for f in MODEL_FILES {
            if !dir.join(f).is_file() {
                return Err(Error::MissingModelFile {
                    dir: dir.to_path_buf(),
                    file: f,
                });
            }
        }
        if max_tokens < 2 {
            return Err(Error::InvalidConfig {
                key: "embedding.max_tokens",
                message: format!("embedding.max_tokens must be at least 2, got {max_tokens}"),
            });
        }
        let config_path = dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(io("read", &config_path))?;
        let bad_config = |problem| {
            let path = config_path.clone();
            move |source| Error::BadModelConfig {
                path,
                problem,
                source,
            }
        };
        let config: serde_json::Value =
            serde_json::from_str(&config_text).map_err(bad_config("not JSON"))?;
        let model_type = config["model_type"].as_str().unwrap_or("");
        let weights = dir.join("model.safetensors");
        let (network, dim, vocab, default_norm, max_positions) = match model_type {
            "bert" => {
                let cfg: BertConfig = serde_json::from_value(config.clone())
                    .map_err(bad_config("not a BERT config"))?;
                let bert = Bert::from_safetensors(&weights, &cfg, device)?;
                let maxp = bert.max_positions();
                (
                    Network::Bert(Box::new(bert)),
                    cfg.hidden_size,
                    cfg.vocab_size,
                    true,
                    Some(maxp),
                )
            }
            "t5" => {
                let cfg: T5Config = serde_json::from_value(config.clone())
                    .map_err(bad_config("not a T5 config"))?;
                (
                    Network::T5(Box::new(T5Encoder::from_safetensors(
                        &weights, &cfg, device,
                    )?)),
                    cfg.d_model,
                    cfg.vocab_size,
                    false,
                    None,
                )
            }
            other => {
                return Err(Error::Unsupported {
                    path: config_path,
                    what: format!("model_type `{other}`"),
                    supported: "bert, t5",
                });
            }
        };
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|source| Error::Tokenizer {
                path: Some(tokenizer_path.clone()),
                source,
            })?;
        tokenizer
            .with_truncation(None)
            .map_err(|source| Error::Tokenizer {
                path: Some(tokenizer_path),
                source,
            })?;
        tokenizer.with_padding(None);
        let tok_vocab = tokenizer.get_vocab_size(true);
        if tok_vocab > vocab {
            return Err(Error::Vocabulary {
                tokens: tok_vocab,
                vocab,
            });
        }
        Ok(SentenceEncoder {
            tokenizer,
            network,
            dim,
            normalize: normalize.unwrap_or(default_norm),
            max_tokens: max_positions.map_or(max_tokens, |m| max_tokens.min(m)),
            device: device.clone(),
        })
    }

    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether outputs are L2-normalised.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// Tokenises texts in parallel; a text longer than `max_tokens` keeps its first tokens and its
    /// final special token (as Hugging Face truncation does).
    pub fn tokenize(&self, texts: &[String]) -> Result<Vec<Tokens>> {
        texts
            .par_iter()
            .map(|t| {
                let enc = self
                    .tokenizer
                    .encode(t.as_str(), true)
                    .map_err(|source| Error::Tokenizer { path: None, source })?;
                let mut ids = enc.get_ids().to_vec();
                let mut type_ids = enc.get_type_ids().to_vec();
                let truncated = ids.len() > self.max_tokens;
                if truncated {
                    let (last, last_type) = (*ids.last().unwrap(), *type_ids.last().unwrap());
                    ids.truncate(self.max_tokens - 1);
                    type_ids.truncate(self.max_tokens - 1);
                    ids.push(last);
                    type_ids.push(last_type);
                }
                Ok(Tokens {
                    ids,
                    type_ids,
                    truncated,
                })
            })
            .collect()
    }

    /// Embeds `texts` into row-major `[texts.len(), dim]`.
    pub fn embed(
        &self,
        texts: &[String],
        batch_size: usize,
        label: &str,
    ) -> Result<(Vec<f32>, EncodeReport)> {
        if batch_size < 1 {
            return Err(Error::InvalidConfig {
                key: "embedding.batch_size",
                message: "embedding.batch_size must be at least 1".to_string(),
            });
        }
        let started = Instant::now();
        let tokens = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));
        let mut out = vec![0f32; texts.len() * self.dim];
        let mut report = EncodeReport {
            texts: texts.len(),
            ..Default::default()
        };
        let mut progress = Progress::new(label, texts.len() as u64);
        for chunk in order.chunks(batch_size) {
            let rows =
                self.embed_batch(chunk.iter().map(|&i| &tokens[i]).collect(), &mut report)?;
            for (r, &i) in chunk.iter().enumerate() {
                out[i * self.dim..(i + 1) * self.dim]
                    .copy_from_slice(&rows[r * self.dim..(r + 1) * self.dim]);
            }
            progress.inc(chunk.len() as u64);
        }
        progress.finish();
        if let Some(pos) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                index: pos / self.dim,
                text: texts[pos / self.dim].clone(),
            });
        }
        report.truncated = tokens.iter().filter(|t| t.truncated).count();
        report.seconds = started.elapsed().as_secs_f64();
        Ok((out, report))
    }

    fn embed_batch(&self, batch: Vec<&Tokens>, report: &mut EncodeReport) -> Result<Vec<f32>> {
        let b = batch.len();
        let l = batch.iter().map(|t| t.ids.len()).max().unwrap_or(1).max(1);
        let mut ids = vec![0i64; b * l];
        let mut types = vec![0i64; b * l];
        let mut mask = vec![0f32; b * l];
        for (r, t) in batch.iter().enumerate() {
            for (c, (&id, &ty)) in t.ids.iter().zip(&t.type_ids).enumerate() {
                ids[r * l + c] = i64::from(id);
                types[r * l + c] = i64::from(ty);
                mask[r * l + c] = 1.0;
            }
            report.tokens += t.ids.len();
            report.padding += l - t.ids.len();
        }
        let dev = &self.device;
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, l]), dev);
        let mask_t = Tensor::<B, 2>::from_data(TensorData::new(mask, [b, l]), dev);
        let hidden = match &self.network {
            Network::Bert(bert) => {
                let types = Tensor::<B, 2, Int>::from_data(TensorData::new(types, [b, l]), dev);
                bert.forward(ids, types, mask_t.clone())
            }
            Network::T5(t5) => t5.forward(ids, mask_t.clone()).last_hidden_state,
        };
        let pooled = masked_mean(hidden, mask_t);
        let pooled = if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        };
        pooled
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| Error::Output(format!("{e:?}")))
    }
}

/// Mean over the positions where `mask` is 1: `[b, l, d], [b, l] → [b, d]`.
pub fn masked_mean<B: Backend>(hidden: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
    let [b, l, _] = hidden.dims();
    let m = mask.reshape([b, l, 1]);
    let summed = (hidden * m.clone()).sum_dim(1).squeeze_dim(1);
    let count = m.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
    summed / count
}

/// Rows divided by their L2 norm (at least 1e-12), as sentence-transformers' `Normalize`.
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
