//! `bench generate`: beam-search throughput of the reference model, beside PyTorch.

use std::time::Instant;

use anyhow::Result;
use artifacts::config::{ReducerConfig, ReducerKind};
use pipeline::{Workspace, backend};

/// PyTorch 2.15, 2 threads, this machine type: beam search (width 10, KV cache) of the reference
/// model over 256 users with 30-item histories (150 positions), users/s
/// (docs/reference.md §10.2, quiet re-run).
pub const PYTORCH_BEAM_USERS_PER_S: [(&str, f64); 2] = [("none", 30.8), ("rastp@2", 54.5)];

/// Beam-search throughput of the reference model (untrained; speed does not depend on the
/// weights): synthetic full histories as PyTorch's bench, then the dataset's real test
/// histories with fixed and dynamic padding, unconstrained and trie-constrained.
pub fn generate(ws: &Workspace, dataset: &str, users: usize, batch: usize) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    use evaluator::{EvalSettings, recommend};
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

    // The real histories with the plain catalogue (no prior), as PyTorch's bench decodes.
    let Ok(pipeline::RunInputs {
        data, catalogue, ..
    }) = pipeline::RunInputs::load(&ws.layout(dataset), &artifacts::Config::default())
    else {
        println!(
            "\n(real-history rows skipped: run `cargo xtask pipeline {dataset} --until sids` first)"
        );
        return Ok(());
    };
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
