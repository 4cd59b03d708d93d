//! `cargo xtask bench …`: measured numbers, with the reference figures beside them.

use std::time::Instant;

use anyhow::Result;
use artifacts::config::TemplateConfig;
use text_encoder::{ItemTextTemplate, SentenceEncoder};

use crate::backend;
use crate::stages::StageContext;
use crate::stages::data::DataStage;
use crate::workspace::Workspace;

/// sentence-transformers all-MiniLM-L6-v2 on this kind of 2-core machine, all 12,101 Beauty item
/// texts, batch 64, 2 threads: 125.7 items/s (`shared/bench/RESULTS-python-embed-kmeans.md`,
/// quiet re-run).
pub const PYTORCH_EMBED_ITEMS_PER_S: f64 = 125.7;

/// A CPU backend to benchmark (the compiled-in default is `flex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuBackend {
    /// burn-flex: gemm + SIMD + rayon (the default).
    Flex,
    /// burn-ndarray with matrixmultiply, multi-threaded.
    Ndarray,
}

/// Embeds a dataset's item texts with all-MiniLM-L6-v2 and prints the throughput.
pub fn embed(
    ws: &Workspace,
    dataset: &str,
    batch_size: usize,
    limit: usize,
    cpu: Option<CpuBackend>,
) -> Result<()> {
    match cpu {
        None => embed_on::<backend::Backend>(
            ws,
            dataset,
            batch_size,
            limit,
            backend::name(),
            &backend::device(),
        ),
        Some(CpuBackend::Flex) => embed_on::<burn::backend::Flex>(
            ws,
            dataset,
            batch_size,
            limit,
            "flex",
            &Default::default(),
        ),
        Some(CpuBackend::Ndarray) => embed_on::<burn::backend::NdArray>(
            ws,
            dataset,
            batch_size,
            limit,
            "ndarray",
            &Default::default(),
        ),
    }
}

fn embed_on<B: burn::tensor::backend::Backend>(
    ws: &Workspace,
    dataset: &str,
    batch_size: usize,
    limit: usize,
    backend_name: &str,
    device: &burn::tensor::Device<B>,
) -> Result<()> {
    let cfg = ws.config(dataset, None, "paper", &[])?;
    let ctx = StageContext {
        workspace: ws,
        dataset,
        config: &cfg,
        seed: None,
        upstream: Default::default(),
    };
    let (data, _) = data_amazon::build(&DataStage::source(&ctx)?, &cfg.data)?;
    // The reference benchmark's texts: the default template with HTML entities left as they are.
    let template = ItemTextTemplate::new(&TemplateConfig {
        decode_html: false,
        ..Default::default()
    })?;
    let mut texts: Vec<String> = data
        .interactions
        .items
        .iter()
        .map(|i| template.render(i))
        .collect();
    if limit > 0 {
        texts.truncate(limit);
    }
    let dir = text_encoder::models::ensure(&ws.root.join("models"), "all-MiniLM-L6-v2", None)?;
    let load = Instant::now();
    let encoder = SentenceEncoder::<B>::load(&dir, None, 256, device)?;
    let load_s = load.elapsed().as_secs_f64();
    let (_, report) = encoder.embed(&texts, batch_size, "bench embed")?;
    let rate = report.texts as f64 / report.seconds;
    println!(
        "bench embed: all-MiniLM-L6-v2 on {} item texts of `{dataset}`",
        report.texts
    );
    println!("backend            {backend_name}");
    println!("threads            {}", rayon::current_num_threads());
    println!("batch size         {batch_size} (texts sorted by length)");
    println!("model load         {load_s:.2} s (not counted)");
    println!("wall time          {:.1} s", report.seconds);
    println!("items/s            {rate:.1}");
    println!(
        "tokens/s           {:.0} ({} tokens, {:.1}% padding, {} truncated)",
        report.tokens as f64 / report.seconds,
        report.tokens,
        100.0 * report.padding as f64 / (report.tokens + report.padding) as f64,
        report.truncated
    );
    println!(
        "vs PyTorch         {:.2}x the speed of sentence-transformers ({PYTORCH_EMBED_ITEMS_PER_S} items/s on all 12,101 Beauty texts, same machine type)",
        rate / PYTORCH_EMBED_ITEMS_PER_S
    );
    Ok(())
}

/// scikit-learn residual k-means 3 × 256 (Lloyd, k-means++, n_init 1, no residual normalisation)
/// on the 12,101 MiniLM Beauty embeddings: 13.2 s, level inertia 4131.46 / 3287.18 / 2773.21
/// (`shared/bench/RESULTS-python-embed-kmeans.md`, quiet re-run).
pub const SKLEARN_RQ_SECONDS: f64 = 13.2;
/// scikit-learn's per-level inertia in that run.
pub const SKLEARN_RQ_INERTIA: [f64; 3] = [4131.460, 3287.178, 2773.208];

/// Times residual k-means on a dataset's embedding artifact: scikit-learn's setting (Lloyd, no
/// residual normalisation) and the reference's mini-batch setting.
pub fn quantize(ws: &Workspace, dataset: &str) -> Result<()> {
    use artifacts::config::{KMeansAlgorithm, QuantizerConfig};
    use quantizer::{ItemQuantizer, RqKMeans, add_dedup_digit};
    let dir = ws.run_dir(dataset).join("embed");
    let emb = artifacts::embeddings::ItemEmbeddings::read(&dir).map_err(|e| {
        anyhow::anyhow!("{e:#}\nrun `cargo xtask pipeline {dataset} --until embed` first")
    })?;
    println!(
        "bench quantize: residual k-means 3 x 256 on `{dataset}` embeddings [{}, {}], {} threads",
        emb.n,
        emb.dim,
        rayon::current_num_threads()
    );
    let settings = [
        (
            "lloyd, no residual norm (scikit-learn's setting)",
            QuantizerConfig {
                algorithm: KMeansAlgorithm::Lloyd,
                normalize_residuals: false,
                ..Default::default()
            },
        ),
        (
            "lloyd, residuals normalised",
            QuantizerConfig {
                algorithm: KMeansAlgorithm::Lloyd,
                ..Default::default()
            },
        ),
        ("minibatch (reference setting)", QuantizerConfig::default()),
    ];
    println!(
        "| setting | seconds | inertia per level | iterations | unique before dedup | largest group |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, cfg) in settings {
        let t = Instant::now();
        let q = RqKMeans::new(&cfg)?.quantize(&emb)?;
        let secs = t.elapsed().as_secs_f64();
        let (_, d) = add_dedup_digit(&q.codes, usize::MAX)?;
        let inertia: Vec<String> = q
            .levels
            .iter()
            .map(|l| format!("{:.1}", l.inertia))
            .collect();
        let iters: Vec<String> = q.levels.iter().map(|l| l.iterations.to_string()).collect();
        println!(
            "| {name} | {secs:.2} | {} | {} | {:.1}% | {} |",
            inertia.join(" / "),
            iters.join(" / "),
            100.0 * d.unique_share,
            d.largest_group
        );
        if !cfg.normalize_residuals {
            let ratio: Vec<String> = q
                .levels
                .iter()
                .zip(SKLEARN_RQ_INERTIA)
                .map(|(l, s)| format!("{:.3}", l.inertia / s))
                .collect();
            println!(
                "|   vs scikit-learn ({SKLEARN_RQ_SECONDS} s; 4131.5 / 3287.2 / 2773.2) | {:.2}x faster | inertia ratio {} | | 77.0% | 13 |",
                SKLEARN_RQ_SECONDS / secs,
                ratio.join(" / ")
            );
        }
    }
    Ok(())
}
