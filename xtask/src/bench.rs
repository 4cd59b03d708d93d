//! `cargo xtask bench …`: measured numbers, with the reference figures beside them.

use std::time::Instant;

use anyhow::Result;
use artifacts::config::TemplateConfig;
use text_encoder::{ItemTextTemplate, SentenceEncoder};

use crate::backend;
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
    let (_, data, _) = DataStage::load(ws, dataset, &cfg)?;
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

/// PyTorch 2.15, 2 threads, this machine type: the reference model at batch 64 × 150 positions,
/// forward + loss + backward + Adam (`shared/bench/RESULTS-burn021-tiger-step.md`).
pub const PYTORCH_STEP_S: [(&str, f64); 2] = [("none", 3.85), ("rastp@2", 2.70)];

/// The train-step variants: (name, reducer).
pub fn train_step_variants() -> Vec<(&'static str, Option<gr_model::tiger::ReducerSpec>)> {
    use gr_model::tiger::ReducerSpec;
    use rastp::ReducerKind;
    let spec = |kind, after_layer| {
        Some(ReducerSpec {
            after_layer,
            ..ReducerSpec::reference(kind)
        })
    };
    vec![
        ("none", None),
        ("rastp@2", spec(ReducerKind::Rastp, 2)),
        ("rastp@1", spec(ReducerKind::Rastp, 1)),
        ("l2@2", spec(ReducerKind::L2, 2)),
    ]
}

/// One variant's timing: median seconds per step and the process's peak RSS.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StepTiming {
    /// Variant name.
    pub variant: String,
    /// Median seconds of the timed steps.
    pub median_s: f64,
    /// All timed steps.
    pub steps_s: Vec<f64>,
    /// Losses of all steps (warm-up included), to show it learns.
    pub losses: Vec<f32>,
    /// Peak resident memory of the process in MB (Linux VmHWM).
    pub peak_rss_mb: f64,
}

/// Times full training steps (forward, loss, backward, Adam with coupled L2 1e-4, lr 1e-3) of
/// the reference model on one fixed synthetic batch of `batch` windows × 30 items (150 encoder
/// positions, all real), for one variant, in this process.
pub fn train_step_one(
    variant: &str,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<StepTiming> {
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};
    use burn::tensor::{Int, Tensor, TensorData};
    use gr_model::tiger::{Tiger, TigerConfig};
    use rand::{Rng, SeedableRng};
    type A = backend::TrainBackend;

    let spec = train_step_variants()
        .into_iter()
        .find(|(name, _)| *name == variant)
        .map(|(_, s)| s)
        .ok_or_else(|| anyhow::anyhow!("unknown variant `{variant}`"))?;
    let device = backend::device();
    <A as burn::tensor::backend::Backend>::seed(&device, 42);
    let cfg = TigerConfig::reference();
    let mut model = Tiger::<A>::new(&cfg, &device);
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
        .init::<A, Tiger<A>>();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (items, levels, codes) = (30, cfg.num_levels, cfg.codes_per_level as i64);
    let sids: Vec<i64> = (0..batch * items * levels)
        .map(|_| rng.random_range(0..codes))
        .collect();
    let targets: Vec<i64> = (0..batch * levels)
        .map(|_| rng.random_range(0..codes))
        .collect();
    let sids =
        Tensor::<A, 3, Int>::from_data(TensorData::new(sids, [batch, items, levels]), &device);
    let targets =
        Tensor::<A, 2, Int>::from_data(TensorData::new(targets, [batch, levels]), &device);
    let item_mask = Tensor::<A, 2>::ones([batch, items], &device);

    let mut steps_s = Vec::new();
    let mut losses = Vec::new();
    for step in 0..warmup + steps {
        let started = Instant::now();
        let (embeds, mask) = model.embed_history(sids.clone(), item_mask.clone());
        let encoded = model.encode_with(embeds, mask, spec.as_ref());
        let logits = model.logits(model.decode(&encoded, targets.clone()));
        let loss = model.loss(logits, targets.clone());
        losses.push(burn::tensor::ElementConversion::elem::<f32>(
            loss.clone().into_scalar(),
        ));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        if step >= warmup {
            steps_s.push(started.elapsed().as_secs_f64());
        }
    }
    let mut sorted = steps_s.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(StepTiming {
        variant: variant.to_string(),
        median_s: sorted[sorted.len() / 2],
        steps_s,
        losses,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Peak resident set size of this process (MB), from /proc/self/status; 0 where unavailable.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs every variant in its own process (so peak memory is per variant) and prints the table.
pub fn train_step(batch: usize, warmup: usize, steps: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    println!(
        "bench train-step: reference TIGER (4+4 layers, d 128, 6x64 heads, d_ff 1024, dropout 0.15), batch {batch} x 150 positions, Adam; backend {}; {warmup} warm-up + {steps} timed steps",
        backend::name()
    );
    println!(
        "| variant | median s/step | windows/s | encoder tokens/s | saving vs none | peak RSS MB | PyTorch s/step (same CPU) | ratio to PyTorch |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut none_s = None;
    for (variant, _) in train_step_variants() {
        let out = std::process::Command::new(&exe)
            .args([
                "bench",
                "train-step",
                "--only",
                variant,
                "--batch",
                &batch.to_string(),
                "--warmup",
                &warmup.to_string(),
                "--steps",
                &steps.to_string(),
            ])
            .output()?;
        if !out.status.success() {
            anyhow::bail!(
                "variant {variant} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let t: StepTiming = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())?;
        let base = *none_s.get_or_insert(t.median_s);
        let torch = PYTORCH_STEP_S
            .iter()
            .find(|(n, _)| *n == variant)
            .map(|(_, s)| *s);
        println!(
            "| {variant} | {:.2} | {:.1} | {:.0} | {} | {:.0} | {} | {} |",
            t.median_s,
            batch as f64 / t.median_s,
            (batch * 150) as f64 / t.median_s,
            if variant == "none" {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * (1.0 - t.median_s / base))
            },
            t.peak_rss_mb,
            torch.map_or("-".into(), |s| format!("{s:.2}")),
            torch.map_or("-".into(), |s| format!("{:.2}x slower", t.median_s / s)),
        );
        eprintln!(
            "  {variant}: losses {:?}",
            t.losses
                .iter()
                .map(|l| format!("{l:.2}"))
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}
