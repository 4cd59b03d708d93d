//! `cargo xtask bench …`: measured numbers, with the reference figures beside them.

use std::time::Instant;

use anyhow::Result;
use artifacts::config::{ReducerConfig, ReducerKind, TemplateConfig};
use text_encoder::{ItemTextTemplate, SentenceEncoder};

use crate::backend;
use crate::workspace::Workspace;

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
/// forward + loss + backward + Adam (docs/reference.md §10.2–§10.3).
pub const PYTORCH_STEP_S: [(&str, f64); 2] = [("none", 3.85), ("rastp@2", 2.70)];

/// The train-step variants: (name, reducer).
pub fn train_step_variants() -> Vec<(&'static str, ReducerConfig)> {
    let spec = |kind, after_layer| ReducerConfig {
        after_layer,
        ..ReducerConfig::reference(kind)
    };
    vec![
        ("none", ReducerConfig::none()),
        ("rastp@2", spec(ReducerKind::Rastp, 2)),
        ("rastp@1", spec(ReducerKind::Rastp, 1)),
        ("l2@2", spec(ReducerKind::L2, 2)),
    ]
}

/// How the batch of a train-step variant is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepInput {
    /// Synthetic windows of 30 real items each (150 positions), as the PyTorch reference bench.
    Synthetic,
    /// One micro-batch of the dataset's real training windows, padded to 150 positions.
    RealFixed,
    /// The same real windows padded to the longest one (dynamic padding).
    RealDynamic,
    /// The same real windows sorted by length, in chunks of 16, each padded to its longest.
    RealSorted,
}

/// The real-window rows: (input, reducer name, keep basis valid?).
pub fn real_step_variants() -> Vec<(StepInput, &'static str, bool)> {
    vec![
        (StepInput::RealFixed, "none", false),
        (StepInput::RealFixed, "rastp@2", false),
        (StepInput::RealDynamic, "none", false),
        (StepInput::RealDynamic, "rastp@2", false),
        (StepInput::RealDynamic, "rastp@2", true),
        (StepInput::RealSorted, "none", false),
        (StepInput::RealSorted, "rastp@2", false),
    ]
}

/// A variant's name on the command line: `[real-fixed:|real-dynamic:|real-sorted:]<reducer>[+valid]`.
pub fn step_variant_name(input: StepInput, reducer: &str, valid: bool) -> String {
    let prefix = match input {
        StepInput::Synthetic => "",
        StepInput::RealFixed => "real-fixed:",
        StepInput::RealDynamic => "real-dynamic:",
        StepInput::RealSorted => "real-sorted:",
    };
    format!("{prefix}{reducer}{}", if valid { "+valid" } else { "" })
}

fn parse_step_variant(name: &str) -> Result<(StepInput, ReducerConfig)> {
    let (input, rest) = match name.split_once(':') {
        Some(("real-fixed", r)) => (StepInput::RealFixed, r),
        Some(("real-dynamic", r)) => (StepInput::RealDynamic, r),
        Some(("real-sorted", r)) => (StepInput::RealSorted, r),
        Some((other, _)) => anyhow::bail!("unknown input `{other}`"),
        None => (StepInput::Synthetic, name),
    };
    let (reducer, valid) = match rest.strip_suffix("+valid") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut spec = train_step_variants()
        .into_iter()
        .find(|(n, _)| *n == reducer)
        .map(|(_, s)| s)
        .ok_or_else(|| anyhow::anyhow!("unknown variant `{reducer}`"))?;
    if valid && spec.is_active() {
        spec.keep_basis = artifacts::config::KeepBasis::Valid;
    }
    Ok((input, spec))
}

/// One micro-batch of real training windows (the reference's expansion and subsampling).
pub fn real_windows(
    ws: &Workspace,
    dataset: &str,
    windows: usize,
) -> Result<(Vec<trainer::windows::Example>, gr_model::input::SidTable)> {
    use anyhow::Context;
    let run = ws.run_dir(dataset);
    let data = artifacts::dataset::Dataset::read(&run.join("data")).with_context(|| {
        format!("real-window rows need `cargo xtask pipeline {dataset} --until sids` first")
    })?;
    let sids = artifacts::sids::SemanticIds::read(&run.join("sids"))?;
    let table = gr_model::input::SidTable::from_sids(&sids)?;
    let sampler = trainer::WindowSampler::new(
        trainer::TrainUsers::new(&data.split.train),
        42,
        32,
        windows,
        artifacts::config::WindowSampling::Replacement,
        29,
    );
    let mut batch = Vec::new();
    let mut index = 0;
    while batch.len() < windows {
        batch.extend(sampler.batch(index));
        index += 1;
    }
    batch.truncate(windows);
    Ok((batch, table))
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
    ws: &Workspace,
    dataset: &str,
    variant: &str,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<StepTiming> {
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};
    use burn::tensor::{Tensor, TensorData};
    use gr_model::tiger::{Tiger, TigerConfig};
    use rand::{Rng, SeedableRng};
    type A = backend::TrainBackend;

    let (input, spec) = parse_step_variant(variant)?;
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
    let synthetic = gr_model::input::HistoryBatch::<A> {
        sids: Tensor::from_data(TensorData::new(sids, [batch, items, levels]), &device),
        item_mask: Tensor::ones([batch, items], &device),
        targets: Some(Tensor::from_data(
            TensorData::new(targets, [batch, levels]),
            &device,
        )),
        lengths: vec![items; batch],
        level_bias: None,
    };
    // Chunks of the step's batch with their share of it.
    let chunks: Vec<(gr_model::input::HistoryBatch<A>, f64)> = match input {
        StepInput::Synthetic => vec![(synthetic, 1.0)],
        real => real_chunks::<A>(ws, dataset, real, batch, &device)?,
    };

    let mut steps_s = Vec::new();
    let mut losses = Vec::new();
    for step in 0..warmup + steps {
        let started = Instant::now();
        let mut accumulator = burn::optim::GradientsAccumulator::<Tiger<A>>::new();
        let mut step_loss = 0.0;
        for (chunk, share) in &chunks {
            let loss = model.batch_loss(chunk.clone(), &spec).mul_scalar(*share);
            step_loss += burn::tensor::ElementConversion::elem::<f32>(loss.clone().into_scalar());
            accumulator.accumulate(&model, GradientsParams::from_grads(loss.backward(), &model));
        }
        losses.push(step_loss);
        model = optim.step(1e-3, model, accumulator.grads());
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

/// One micro-batch of the dataset's real windows as the chunks of a train step (fixed padding,
/// dynamic padding, or length-sorted chunks of 16), each with its share of the batch.
fn real_chunks<A: burn::tensor::backend::Backend>(
    ws: &Workspace,
    dataset: &str,
    input: StepInput,
    batch: usize,
    device: &burn::tensor::Device<A>,
) -> Result<Vec<(gr_model::input::HistoryBatch<A>, f64)>> {
    let (mut windows, table) = real_windows(ws, dataset, batch)?;
    let (slots, chunk) = match input {
        StepInput::RealFixed => (Some(30), batch),
        StepInput::RealDynamic => (None, batch),
        _ => {
            windows.sort_by_key(|w| w.history.len());
            (None, 16)
        }
    };
    Ok(windows
        .chunks(chunk)
        .map(|part| {
            let h: Vec<&[u32]> = part.iter().map(|w| w.history.as_slice()).collect();
            let t: Vec<u32> = part.iter().map(|w| w.target).collect();
            let b = gr_model::input::HistoryBatch::<A>::new(&h, Some(&t), &table, slots, device);
            (b, part.len() as f64 / batch as f64)
        })
        .collect())
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

fn run_step_variant(
    dataset: &str,
    variant: &str,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<StepTiming> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args([
            "bench",
            "train-step",
            dataset,
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
    Ok(serde_json::from_str(
        String::from_utf8_lossy(&out.stdout).trim(),
    )?)
}

/// Runs every variant in its own process (so peak memory is per variant) and prints the tables.
pub fn train_step(
    ws: &Workspace,
    dataset: &str,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<()> {
    train_step_synthetic(dataset, batch, warmup, steps)?;
    if !ws.run_dir(dataset).join("sids/manifest.json").exists() {
        println!(
            "\n(real-window rows skipped: run `cargo xtask pipeline {dataset} --until sids` first)"
        );
        return Ok(());
    }
    let (windows, _) = real_windows(ws, dataset, batch)?;
    let lens: Vec<usize> = windows.iter().map(|w| w.history.len()).collect();
    let mean = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    println!(
        "\nReal {dataset} training windows (one micro-batch of {batch}: 32 users' windows subsampled as the reference; mean history {mean:.1} items = {:.1} positions, longest {} items):",
        mean * 5.0,
        lens.iter().max().unwrap_or(&0)
    );
    println!(
        "| input | variant | median s/step | windows/s | saving vs none (same input) | saving vs fixed none | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut fixed_none = None;
    let mut none_by_input = std::collections::HashMap::new();
    for (input, reducer, valid) in real_step_variants() {
        let name = step_variant_name(input, reducer, valid);
        let t = run_step_variant(dataset, &name, batch, warmup, steps)?;
        if reducer == "none" {
            none_by_input.insert(format!("{input:?}"), t.median_s);
        }
        let base = *fixed_none.get_or_insert(t.median_s);
        let same = none_by_input
            .get(&format!("{input:?}"))
            .copied()
            .unwrap_or(t.median_s);
        let input_name = match input {
            StepInput::RealFixed => "fixed 150",
            StepInput::RealDynamic => "dynamic (batch max)",
            StepInput::RealSorted => "dynamic, sorted chunks of 16",
            StepInput::Synthetic => "synthetic",
        };
        let label = if valid {
            format!("{reducer} (keep ⅓ of valid)")
        } else {
            reducer.to_string()
        };
        println!(
            "| {input_name} | {label} | {:.2} | {:.1} | {} | {:.1}% | {:.0} |",
            t.median_s,
            batch as f64 / t.median_s,
            if reducer == "none" {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * (1.0 - t.median_s / same))
            },
            100.0 * (1.0 - t.median_s / base),
            t.peak_rss_mb
        );
    }
    Ok(())
}

/// The synthetic 150-position rows, beside PyTorch's.
fn train_step_synthetic(dataset: &str, batch: usize, warmup: usize, steps: usize) -> Result<()> {
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
        let t = run_step_variant(dataset, variant, batch, warmup, steps)?;
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

/// PyTorch 2.15, 2 threads, this machine type: beam search (width 10, KV cache) of the reference
/// model over 256 users with 30-item histories (150 positions), users/s
/// (docs/reference.md §10.2, quiet re-run).
pub const PYTORCH_BEAM_USERS_PER_S: [(&str, f64); 2] = [("none", 30.8), ("rastp@2", 54.5)];

/// Beam-search throughput of the reference model (untrained; speed does not depend on the
/// weights): synthetic full histories as PyTorch's bench, then the dataset's real test
/// histories with fixed and dynamic padding, unconstrained and trie-constrained.
pub fn generate(ws: &Workspace, dataset: &str, users: usize, batch: usize) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    use evaluator::{Catalogue, EvalSettings, recommend};
    use gr_model::tiger::{Tiger, TigerConfig};
    use rand::{Rng, SeedableRng};
    type B = backend::Backend;

    let device = backend::device();
    <B as burn::tensor::backend::Backend>::seed(&device, 42);
    let cfg = TigerConfig::reference();
    let model = Tiger::<B>::new(&cfg, &device);
    let reducers = [
        ("none", ReducerConfig::none()),
        ("rastp@2", ReducerConfig::reference(ReducerKind::Rastp)),
    ];
    println!(
        "bench generate: reference TIGER, beam width 10, 4 levels, KV cache; backend {}; batches of {batch} users",
        backend::name()
    );
    println!(
        "| histories | padding | decoding | variant | users | seconds | users/s | PyTorch users/s (same CPU) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");

    // Synthetic: every user 30 real items (150 positions), as the PyTorch bench.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let n = batch.min(users.max(1));
    let sids: Vec<i64> = (0..n * 30 * 4).map(|_| rng.random_range(0..256)).collect();
    let sids = Tensor::<B, 3, Int>::from_data(TensorData::new(sids, [n, 30, 4]), &device);
    let mask = Tensor::<B, 2>::ones([n, 30], &device);
    for (name, spec) in &reducers {
        // One warm-up, then the median of two runs.
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let (embeds, m) = model.embed_history(sids.clone(), mask.clone());
            let encoded = model.encode_with(embeds, m, spec);
            let _ = gr_model::generate::beam_search(&model, &encoded, 10);
            times.push(started.elapsed().as_secs_f64());
        }
        let mut t = times[1..].to_vec();
        t.sort_by(f64::total_cmp);
        let secs = t[0];
        let torch = PYTORCH_BEAM_USERS_PER_S
            .iter()
            .find(|(v, _)| v == name)
            .map(|(_, s)| *s);
        println!(
            "| synthetic, 30 items | fixed 150 | free | {name} | {n} | {secs:.2} | {:.1} | {} | {} |",
            n as f64 / secs,
            torch.map_or("-".into(), |s| format!("{s:.1}")),
            torch.map_or("-".into(), |s| format!("{:.2}x", (n as f64 / secs) / s))
        );
    }

    let run = ws.run_dir(dataset);
    let Ok(data) = artifacts::dataset::Dataset::read(&run.join("data")) else {
        println!(
            "\n(real-history rows skipped: run `cargo xtask pipeline {dataset} --until sids` first)"
        );
        return Ok(());
    };
    let sid_art = artifacts::sids::SemanticIds::read(&run.join("sids"))?;
    let catalogue = Catalogue::from_sids(&sid_art)?;
    let test = artifacts::dataset::subsample(&data.split.test, users, 0);
    let mean = test.iter().map(|u| u.history.len()).sum::<usize>() as f64 / test.len() as f64;
    let mut order: Vec<usize> = (0..test.len()).collect();
    order.sort_by_key(|&u| test[u].history.len());
    for (padding, slots) in [("fixed 150", Some(30)), ("dynamic", None)] {
        for constrained in [false, true] {
            for (name, spec) in &reducers {
                let settings = EvalSettings {
                    beam_width: 10,
                    constrained,
                    renormalize: false,
                    valid_loss: false,
                    batch_users: batch,
                    ks: vec![5, 10],
                    slots,
                    reducer: spec.clone(),
                    with_loss: false,
                };
                let started = Instant::now();
                let mut invalid = 0usize;
                for chunk in order.chunks(batch) {
                    let h: Vec<&[u32]> =
                        chunk.iter().map(|&u| test[u].history.as_slice()).collect();
                    invalid += recommend(&model, &h, &catalogue, &settings, &device)
                        .iter()
                        .map(|r| r.items.iter().filter(|i| i.is_none()).count())
                        .sum::<usize>();
                }
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "| {dataset} test, mean {mean:.1} items | {padding} | {} | {name} | {} | {secs:.2} | {:.1} | - | ({:.0}% invalid SIDs) |",
                    if constrained { "trie" } else { "free" },
                    test.len(),
                    test.len() as f64 / secs,
                    100.0 * invalid as f64 / (test.len() * 10) as f64
                );
            }
        }
    }
    Ok(())
}

/// One side's figures of the quick-recipe bench.
#[derive(Debug, Clone, Copy, Default)]
struct RecipeSpeed {
    windows_per_s: f64,
    beam_users_per_s: f64,
}

/// Trains the quick recipe of `dataset` for `minutes` (no validation) as the pipeline would, then
/// times constrained beam search on `users` test users with the trained model.
fn quick_recipe_ours(
    ws: &Workspace,
    dataset: &str,
    config: &artifacts::Config,
    minutes: f64,
    users: usize,
) -> Result<RecipeSpeed> {
    use anyhow::Context;
    use artifacts::dataset::{Dataset, subsample};
    use artifacts::sids::SemanticIds;
    use evaluator::{Catalogue, EvalSettings, evaluate};
    use gr_model::tiger::{Tiger, TigerConfig};
    let run = ws.run_dir(dataset);
    let data = Dataset::read(&run.join("data")).with_context(|| {
        format!(
            "bench quick needs `cargo xtask pipeline {dataset} --profile quick --until sids` first"
        )
    })?;
    let sids = SemanticIds::read(&run.join("sids"))?;
    let catalogue = Catalogue::from_sids(&sids)?.with_prior(config.model.prior, &data.split.train);
    let model_cfg = TigerConfig::for_sids(&config.model, &sids);
    let mut config = config.clone();
    config.train.max_minutes = minutes;
    config.train.max_batches = 0;
    config.train.val_every = usize::MAX / 4;
    config.train.val_users = 20;
    let sampler = trainer::WindowSampler::from_config(
        trainer::TrainUsers::new(&data.split.train),
        42,
        &config,
    );
    let work_root = tempfile::tempdir()?;
    let work = trainer::checkpoint::WorkDir::new(work_root.path())?;
    let settings = trainer::TrainSettings::new(&config, 42, "bench");
    let train_data = trainer::TrainData {
        sampler: &sampler,
        valid: &data.split.valid,
        catalogue: &catalogue,
    };
    let device = backend::device();
    let outcome = trainer::train::<backend::TrainBackend>(
        &model_cfg,
        &train_data,
        &settings,
        &work,
        &backend::devices(&config.train.devices)?,
    )?;
    let s = &outcome.state;
    let windows_per_s = s.windows as f64 / (s.wall_s - s.validation_s).max(1e-9);
    let model = gr_model::export::load_record(
        Tiger::<backend::Backend>::new(&model_cfg, &device),
        &work.best_model().with_extension("mpk"),
        &device,
    )?;
    let test = subsample(&data.split.test, users, 0);
    let m = evaluate(
        &model,
        &test,
        &catalogue,
        &EvalSettings::new(&config, false),
        &device,
        "bench beam",
    )?;
    Ok(RecipeSpeed {
        windows_per_s,
        beam_users_per_s: m.users_per_s,
    })
}

/// The PyTorch replica on the same recipe (`peer_tiger_train_torch.py --recipe quick` with the
/// model shape and objective of `config`), or `None` when Python with torch or the script is not
/// there.
fn quick_recipe_peer(
    config: &artifacts::Config,
    variant: &str,
    minutes: f64,
    users: usize,
    peer: &std::path::Path,
) -> Result<Option<RecipeSpeed>> {
    let python = std::env::var("PEER_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/peer-venv/bin/python")
    });
    if !peer.is_file() || !std::path::Path::new(&python).is_file() {
        eprintln!(
            "PyTorch side skipped: need {} and {python} (python3 -m venv ~/.cache/peer-venv && ~/.cache/peer-venv/bin/pip install torch numpy safetensors scikit-learn; or set PEER_PYTHON)",
            peer.display()
        );
        return Ok(None);
    }
    let (m, t) = (&config.model, &config.train);
    // The same padding: the replica gets our chunk size (with chunk_windows 0 and several
    // workers, each worker's length-sorted share of the micro-batch).
    let chunk = match trainer::step::chunk_size(t.max_windows, t.chunk_windows, t.devices.len()) {
        c if c >= t.max_windows => 0,
        c => c,
    };
    let mut args: Vec<String> = [
        "--minutes",
        &minutes.to_string(),
        "--threads",
        "2",
        "--variant",
        variant,
        "--recipe",
        "quick",
        "--test-users",
        &users.to_string(),
        "--val-users",
        "0",
        "--d-ff",
        &m.d_ff.to_string(),
        "--heads",
        &m.num_heads.to_string(),
        "--d-kv",
        &m.d_kv.to_string(),
        "--d-model",
        &m.d_model.to_string(),
        "--layers",
        &m.encoder_layers.to_string(),
        "--lr",
        &t.lr.to_string(),
        "--batch",
        &t.max_windows.to_string(),
        "--chunk",
        &chunk.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if t.loss == artifacts::config::TrainLoss::Valid {
        args.push("--train-constrained".into());
    }
    // The same decoding: beam width, and renormalised steps (the replica has no prior).
    args.extend(["--beam".to_string(), config.eval.beam_width.to_string()]);
    if config.eval.renormalize {
        args.extend(["--beam-renorm".to_string(), "on".to_string()]);
    }
    let out = std::process::Command::new(&python)
        .arg(peer)
        .args(&args)
        .stderr(std::process::Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| anyhow::anyhow!("the PyTorch replica printed no result line ({e}): {line}"))?;
    let num = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    Ok(Some(RecipeSpeed {
        windows_per_s: num("windows_per_s"),
        beam_users_per_s: num("eval_users_per_s"),
    }))
}

/// `bench quick`: training windows/s and constrained beam-search users/s of the `quick` recipe
/// on the dataset's real windows, for `none` and `rastp`, beside the PyTorch replica of the same
/// recipe run right after on the same machine (2 threads each), with the ratios.
pub fn quick_recipe(
    ws: &Workspace,
    dataset: &str,
    minutes: f64,
    users: usize,
    peer: &std::path::Path,
) -> Result<()> {
    let base = ws.config(dataset, None, "quick", &[])?;
    println!(
        "bench quick: `{dataset}`, profile quick (d_model {}, {}+{} layers, {} heads × {}, d_ff {}, ≤ {} windows per micro-batch in chunks of {}, loss {:?}), {minutes} min of training per run, beam search on {users} test users; backend {}",
        base.model.d_model,
        base.model.encoder_layers,
        base.model.decoder_layers,
        base.model.num_heads,
        base.model.d_kv,
        base.model.d_ff,
        base.train.max_windows,
        base.train.chunk_windows,
        base.train.loss,
        backend::name()
    );
    println!(
        "| variant | windows/s (ours) | windows/s (PyTorch) | ratio | beam users/s (ours) | beam users/s (PyTorch) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for variant in ["none", "rastp"] {
        let config = base.for_variant(&variant.parse()?)?;
        let ours = quick_recipe_ours(ws, dataset, &config, minutes, users)?;
        let torch = quick_recipe_peer(&config, variant, minutes, users, peer)?;
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
        let ratio =
            |a: f64, b: Option<f64>| b.map_or("-".to_string(), |b| format!("{:.2}×", a / b));
        println!(
            "| {variant} | {:.1} | {} | {} | {:.1} | {} | {} |",
            ours.windows_per_s,
            cell(torch.map(|t| t.windows_per_s)),
            ratio(ours.windows_per_s, torch.map(|t| t.windows_per_s)),
            ours.beam_users_per_s,
            cell(torch.map(|t| t.beam_users_per_s)),
            ratio(ours.beam_users_per_s, torch.map(|t| t.beam_users_per_s)),
        );
    }
    Ok(())
}
