//! `cargo xtask bench train-step|generate|quantize|embed` (the measurements live in
//! `crate::bench`).

use anyhow::Result;
use clap::Subcommand;

use crate::bench::{self, CpuBackend};
use pipeline::Workspace;

/// Benchmarks (numbers for docs/benchmarks.md).
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Full training steps of the reference model, with and without token reducers.
    TrainStep {
        /// Dataset whose real training windows give the second table (needs its `sids` artifact).
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Windows per micro-batch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Run only this variant in this process and print its timing as JSON (used internally).
        #[arg(long, hide = true)]
        only: Option<String>,
    },
    /// Beam-search users/s: synthetic full histories (beside PyTorch) and real test histories
    /// with fixed/dynamic padding, unconstrained/trie-constrained, without/with RASTP.
    Generate {
        /// Dataset whose test histories give the real rows (needs its `sids` artifact).
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Real test users timed per configuration (a fixed subsample).
        #[arg(long, default_value_t = 1024)]
        users: usize,
        /// Users per beam-search batch.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// The `quick` recipe on the dataset's real windows (training windows/s, constrained
    /// beam-search users/s) for none and rastp, beside the PyTorch replica of the same recipe.
    Quick {
        /// Dataset (needs its `sids` artifact).
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Minutes of training per run and side.
        #[arg(long, default_value_t = 2.0)]
        minutes: f64,
        /// Test users timed in beam search.
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// The PyTorch replica's training script.
        #[arg(long, default_value = "../shared/bench/peer/peer_tiger_train_torch.py")]
        peer: std::path::PathBuf,
    },
    /// Residual k-means time and inertia on a dataset's embeddings, against scikit-learn.
    Quantize {
        /// Dataset whose `embed` artifact is quantized.
        #[arg(default_value = "beauty")]
        dataset: String,
    },
    /// Sentence-encoder throughput on a dataset's item texts, against the PyTorch reference.
    Embed {
        /// Dataset whose item texts are embedded.
        #[arg(default_value = "beauty")]
        dataset: String,
        /// Texts per forward pass.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Embed only the first N items (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Run on this CPU backend instead of the compiled-in one.
        #[arg(long, value_enum)]
        backend: Option<CpuBackend>,
    },
}

/// Runs a benchmark.
pub fn run(ws: &Workspace, command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Embed {
            dataset,
            batch_size,
            limit,
            backend,
        } => bench::embed(ws, &dataset, batch_size, limit, backend),
        BenchCommand::TrainStep {
            dataset,
            batch,
            warmup,
            steps,
            only: Some(variant),
        } => {
            let t = bench::train_step_one(ws, &dataset, &variant, batch, warmup, steps)?;
            println!("{}", serde_json::to_string(&t)?);
            Ok(())
        }
        BenchCommand::TrainStep {
            dataset,
            batch,
            warmup,
            steps,
            only: None,
        } => bench::train_step(ws, &dataset, batch, warmup, steps),
        BenchCommand::Generate {
            dataset,
            users,
            batch,
        } => bench::generate(ws, &dataset, users, batch),
        BenchCommand::Quick {
            dataset,
            minutes,
            users,
            peer,
        } => {
            ws.check_dataset(&dataset)?;
            bench::quick_recipe(ws, &dataset, minutes, users, &ws.root.join(peer))
        }
        BenchCommand::Quantize { dataset } => {
            ws.check_dataset(&dataset)?;
            bench::quantize(ws, &dataset)
        }
    }
}
