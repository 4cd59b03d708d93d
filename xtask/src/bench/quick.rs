//! `bench quick`: our `quick` recipe's training windows/s and constrained beam-search users/s
//! beside the PyTorch replica of the same recipe, run right after on the same machine.

use anyhow::Result;
use pipeline::{Workspace, backend};

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
    use artifacts::dataset::subsample;
    use evaluator::{EvalSettings, evaluate};
    use gr_model::tiger::Tiger;
    let pipeline::RunInputs {
        data,
        catalogue,
        model: model_cfg,
        ..
    } = super::inputs(ws, dataset, config, "quick")?;
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
    // Comparable padding: the replica gets our chunk size (with chunk_windows 0 and several
    // workers, the length-sorted micro-batch in equal shares; our trainer cuts the sorted
    // micro-batch into cost-balanced shares instead, which pad as little).
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
