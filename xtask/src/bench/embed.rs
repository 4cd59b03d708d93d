//! `bench embed`: MiniLM sentence embedding of a dataset's item texts, beside
//! sentence-transformers.

use std::time::Instant;

use anyhow::Result;
use artifacts::config::TemplateConfig;
use pipeline::{Workspace, backend};
use text_encoder::{ItemTextTemplate, SentenceEncoder};

/// sentence-transformers all-MiniLM-L6-v2 on this kind of 2-core machine, all 12,101 Beauty item
/// texts, batch 64, 2 threads: 125.7 items/s (docs/reference.md §10.1,
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
    let (_, data, _) = ws.load_dataset(dataset, &cfg)?;
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
