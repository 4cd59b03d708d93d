//! `bench quantize`: residual k-means on a dataset's embeddings, beside scikit-learn.

use std::time::Instant;

use anyhow::Result;
use pipeline::Workspace;

/// scikit-learn residual k-means 3 × 256 (Lloyd, k-means++, n_init 1, no residual normalisation)
/// on the 12,101 MiniLM Beauty embeddings: 13.2 s, level inertia 4131.46 / 3287.18 / 2773.21
/// (docs/reference.md §10.1, quiet re-run).
pub const SKLEARN_RQ_SECONDS: f64 = 13.2;
/// scikit-learn's per-level inertia in that run.
pub const SKLEARN_RQ_INERTIA: [f64; 3] = [4131.460, 3287.178, 2773.208];

/// Times residual k-means on a dataset's embedding artifact: scikit-learn's setting (Lloyd, no
/// residual normalisation) and the reference's mini-batch setting.
pub fn quantize(ws: &Workspace, dataset: &str) -> Result<()> {
    use artifacts::config::{KMeansAlgorithm, QuantizerConfig};
    use quantizer::{ItemQuantizer, RqKMeans, add_dedup_digit};
    let dir = ws.layout(dataset).embed();
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
