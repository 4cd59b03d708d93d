//! Stage `embed`: the `Dataset` artifact's items to the `ItemEmbeddings` artifact, through the
//! sentence encoder (item text) or collaborative embeddings (training co-occurrence).

use std::collections::BTreeMap;
use std::path::PathBuf;

use artifacts::config::{EmbeddingConfig, EmbeddingSource};
use artifacts::dataset::{Dataset, files};
use artifacts::embeddings::{EMBEDDINGS_SCHEMA_VERSION, ItemEmbeddings};
use artifacts::{ArtifactWriter, Config};
use serde::Serialize;
use text_encoder::cf::cf_embeddings;
use text_encoder::encode::MODEL_FILES;
use text_encoder::{ItemTextTemplate, SentenceEncoder, models};

use super::{Stage, StageContext, StageId, StageSpec};
use crate::backend;
use crate::error::{Error, Result, write_file};

/// Embeds every item.
pub struct EmbedStage;

/// The settings that change the vectors (batch size does not).
#[derive(Serialize)]
struct EmbedKey<'a> {
    source: EmbeddingSource,
    auto_min_text_share: Option<f64>,
    model: &'a str,
    max_tokens: usize,
    normalize: Option<bool>,
    template: &'a artifacts::config::TemplateConfig,
    cf: &'a artifacts::config::CfConfig,
}

/// Each item's text under the configured template.
pub fn item_texts(dataset: &Dataset, cfg: &EmbeddingConfig) -> Result<Vec<String>> {
    let template = ItemTextTemplate::new(&cfg.template)?;
    Ok(dataset
        .interactions
        .items
        .iter()
        .map(|i| template.render(i))
        .collect())
}

/// The source actually used: `auto` resolved by the share of items with text.
pub fn effective_source(cfg: &EmbeddingConfig, texts: &[String]) -> (EmbeddingSource, f64) {
    let share = texts.iter().filter(|t| !t.is_empty()).count() as f64 / texts.len().max(1) as f64;
    let source = match cfg.source {
        EmbeddingSource::Auto if share >= cfg.auto_min_text_share => EmbeddingSource::Text,
        EmbeddingSource::Auto => EmbeddingSource::Cf,
        s => s,
    };
    (source, share)
}

fn uses_text(s: EmbeddingSource) -> bool {
    matches!(s, EmbeddingSource::Text | EmbeddingSource::TextCf)
}

fn uses_cf(s: EmbeddingSource) -> bool {
    matches!(s, EmbeddingSource::Cf | EmbeddingSource::TextCf)
}

impl EmbedStage {
    fn source_for(ctx: &StageContext) -> Result<(Dataset, Vec<String>, EmbeddingSource, f64)> {
        let dataset = Dataset::read(ctx.upstream.dir(StageId::Data))?;
        let texts = item_texts(&dataset, &ctx.config.embedding)?;
        let (source, share) = effective_source(&ctx.config.embedding, &texts);
        Ok((dataset, texts, source, share))
    }

    fn model_dir(ctx: &StageContext) -> Result<PathBuf> {
        let cfg = &ctx.config.embedding;
        Ok(models::ensure(
            &ctx.workspace.models_dir(),
            &cfg.model,
            cfg.model_dir.as_deref(),
        )?)
    }
}

/// The stage's constant description.
const SPEC: StageSpec = StageSpec {
    id: StageId::Embed,
    about: "item text to sentence embeddings (or collaborative embeddings)",
    schema_version: EMBEDDINGS_SCHEMA_VERSION,
    upstream: &[StageId::Data],
};

impl Stage for EmbedStage {
    fn spec(&self) -> StageSpec {
        SPEC
    }

    fn config_hash(&self, config: &Config) -> String {
        let e = &config.embedding;
        Config::section_hash(&EmbedKey {
            source: e.source,
            auto_min_text_share: (e.source == EmbeddingSource::Auto)
                .then_some(e.auto_min_text_share),
            model: &e.model,
            max_tokens: e.max_tokens,
            normalize: e.normalize,
            template: &e.template,
            cf: &e.cf,
        })
    }

    fn upstream_files(&self, _upstream: StageId, config: &Config) -> Option<Vec<&'static str>> {
        // Item texts come from the items table; collaborative vectors from the training split only.
        Some(match config.embedding.source {
            EmbeddingSource::Text => vec![files::ITEMS],
            _ => vec![files::ITEMS, files::TRAIN],
        })
    }

    fn external_inputs(&self, ctx: &StageContext) -> Result<BTreeMap<String, PathBuf>> {
        let (_, _, source, _) = Self::source_for(ctx)?;
        if !uses_text(source) {
            return Ok(BTreeMap::new());
        }
        let dir = Self::model_dir(ctx)?;
        Ok(MODEL_FILES
            .iter()
            .map(|f| (format!("model/{f}"), dir.join(f)))
            .collect())
    }

    fn run(&self, ctx: &StageContext, out: &mut ArtifactWriter) -> Result<()> {
        let cfg = &ctx.config.embedding;
        let (dataset, texts, source, share) = Self::source_for(ctx)?;
        let n = texts.len();
        eprintln!(
            "embed: source {} ({} requested; {:.1}% of {n} items have text)",
            source,
            cfg.source,
            100.0 * share
        );
        out.detail("source", source.to_string())
            .detail("source_requested", cfg.source.to_string())
            .detail("text_share", share)
            .detail("template", serde_json::to_value(&cfg.template)?);

        let mut parts: Vec<(usize, Vec<f32>)> = Vec::new();
        if uses_text(source) {
            if share == 0.0 {
                return Err(Error::Invalid(format!(
                    "no item has text, so embedding.source = \"{source}\" cannot work; use \"cf\" (or \"auto\")"
                )));
            }
            let dir = Self::model_dir(ctx)?;
            let encoder = SentenceEncoder::<backend::Backend>::load(
                &dir,
                cfg.normalize,
                cfg.max_tokens,
                &backend::device(),
            )
            .map_err(|source| Error::LoadEncoder {
                dir: dir.clone(),
                source: Box::new(source),
            })?;
            let (values, report) = encoder.embed(&texts, cfg.batch_size, "embed")?;
            eprintln!(
                "embed: {n} texts in {:.1} s ({:.1} items/s), {} tokens, {} truncated at {} tokens",
                report.seconds,
                n as f64 / report.seconds,
                report.tokens,
                report.truncated,
                cfg.max_tokens
            );
            out.detail("model", cfg.model.clone())
                .detail("model_dir", dir.display().to_string())
                .detail("normalized", encoder.normalizes())
                .detail("tokens", report.tokens)
                .detail("truncated", report.truncated)
                .detail(
                    "items_without_text",
                    texts.iter().filter(|t| t.is_empty()).count(),
                );
            parts.push((encoder.dim(), values));
        }
        if uses_cf(source) {
            let (values, report) = cf_embeddings(&dataset.split.train, n, &cfg.cf)?;
            eprintln!(
                "embed: collaborative {}-d from training co-occurrence ({} non-zeros, {:.1}% of PPMI energy kept, {} items without signal)",
                cfg.cf.dim,
                report.nonzeros,
                100.0 * report.explained,
                report.items_without_signal
            );
            out.detail("cf_nonzeros", report.nonzeros)
                .detail("cf_explained", report.explained)
                .detail("cf_items_without_signal", report.items_without_signal);
            parts.push((cfg.cf.dim, values));
        }
        let embeddings = concat_normalized(n, &parts)?;
        embeddings.write(out.dir())?;
        let lines: Vec<String> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({"item": i + 1, "text": t}).to_string())
            .collect();
        write_file(&out.file("item_texts.jsonl"), lines.join("\n") + "\n")?;
        out.rows("items", n as u64)
            .rows("dim", embeddings.dim as u64);
        Ok(())
    }
}

/// One part as it is; several parts each L2-normalised per row, then concatenated.
fn concat_normalized(n: usize, parts: &[(usize, Vec<f32>)]) -> Result<ItemEmbeddings> {
    if let [(dim, values)] = parts {
        return Ok(ItemEmbeddings::new(n, *dim, values.clone())?);
    }
    let dim: usize = parts.iter().map(|(d, _)| d).sum();
    let mut data = Vec::with_capacity(n * dim);
    for i in 0..n {
        for (d, values) in parts {
            let row = &values[i * d..(i + 1) * d];
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            data.extend(row.iter().map(|v| v / norm));
        }
    }
    Ok(ItemEmbeddings::new(n, dim, data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_text_only_when_most_items_have_it() {
        let cfg = EmbeddingConfig::default();
        let texts = |k: usize| {
            (0..10)
                .map(|i| {
                    if i < k {
                        "x".to_string()
                    } else {
                        String::new()
                    }
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(effective_source(&cfg, &texts(6)).0, EmbeddingSource::Text);
        assert_eq!(effective_source(&cfg, &texts(4)).0, EmbeddingSource::Cf);
        let cf = EmbeddingConfig {
            source: EmbeddingSource::Cf,
            ..Default::default()
        };
        assert_eq!(effective_source(&cf, &texts(10)).0, EmbeddingSource::Cf);
    }

    #[test]
    fn concatenation_normalises_each_part() {
        let e = concat_normalized(1, &[(2, vec![3.0, 4.0]), (1, vec![-2.0])]).unwrap();
        assert_eq!(e.data, vec![0.6, 0.8, -1.0]);
    }
}
