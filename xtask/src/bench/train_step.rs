//! `bench train-step`: full training steps of the reference model (forward, loss, backward,
//! Adam), one child process per variant, beside PyTorch.

use std::time::Instant;

use anyhow::Result;
use artifacts::config::{ReducerConfig, ReducerKind};
use pipeline::{Workspace, backend};

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
    // The reference's sampling (`[train]` and `data.max_history` defaults) at `windows` per
    // micro-batch.
    let mut config = artifacts::Config::default();
    config.train.max_windows = windows;
    let inputs = super::inputs(ws, dataset, &config, "paper")?;
    let table = inputs.catalogue.table.clone();
    let sampler = trainer::WindowSampler::from_config(
        trainer::TrainUsers::new(&inputs.data.split.train),
        42,
        &config,
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
    use burn::optim::{GradientsParams, Optimizer};
    use burn::tensor::{Tensor, TensorData};
    use gr_model::tiger::{Tiger, TigerConfig};
    use rand::{Rng, SeedableRng};
    type A = backend::TrainBackend;

    let (input, spec) = parse_step_variant(variant)?;
    let device = backend::device();
    <A as burn::tensor::backend::Backend>::seed(&device, 42);
    let cfg = TigerConfig::reference();
    let mut model = Tiger::<A>::new(&cfg, &device);
    // The trainer's Adam with the default `[train]` (coupled L2 1e-4, lr 1e-3).
    let train = artifacts::config::TrainConfig::default();
    let mut optim = trainer::optimizer(&train).init::<A, Tiger<A>>();
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
        model = optim.step(train.lr, model, accumulator.grads());
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
    if !pipeline::RunLayout::exists(&ws.layout(dataset).sids()) {
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
