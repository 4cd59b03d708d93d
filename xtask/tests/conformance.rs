//! Backend conformance: every check of `test_support::conformance` (the model's parity fixtures —
//! forward, loss, gradients, RASTP's kept tokens, beams, the T5 encoder — training a batch, and
//! the model options) on the backend this crate was built with, with the CPU's tolerances, plus, on
//! a GPU backend, a short demo training and evaluation through the pipeline's stages (on the CPU
//! `tests/demo_pipeline.rs` trains the demo, so it is trained once per backend).
//!
//! `cargo test -p xtask --test conformance` checks `flex`; `--features wgpu` checks burn's wgpu
//! backend (CI runs it on Mesa's software Vulkan, lavapipe), `--features cuda` CUDA (the GPU check,
//! `scripts/gpu-check.sh`). wgpu and CUDA share burn-cubecl's kernels, so what passes on lavapipe
//! exercises the code CUDA runs.

use pipeline::backend::{Backend, TrainBackend, device};
#[cfg(any(feature = "wgpu", feature = "cuda", feature = "tch"))]
use pipeline::{Demo, Status};

test_support::conformance_tests!(Backend, TrainBackend, device());

/// The demo pipeline on this backend under the `short` profile (the tiny model, 100 micro-batches
/// of at most 64 windows) with collaborative embeddings (no sentence-encoder weights needed):
/// data → embed → sids → train → eval → report for TIGER and RASTP. Both models learn (the training
/// loss falls) and rank above the most-popular baseline, as on the CPU. On lavapipe (CI) this is
/// the slow test: ~3–4 s per micro-batch, and the first run compiles every kernel through LLVM.
#[cfg(any(feature = "wgpu", feature = "cuda", feature = "tch"))]
#[test]
fn demo_trains_and_evaluates() {
    let runs = tempfile::tempdir().unwrap();
    let demo = Demo::new(runs.path(), "short", &["embedding.source=cf"]).unwrap();
    let reports = demo.run_all(42).unwrap();
    assert!(
        reports.iter().all(|r| r.status == Status::Ran),
        "{reports:?}"
    );
    let demo = runs.path().join("demo");
    for variant in ["none", "rastp"] {
        let read = |f: &str| {
            let path = demo.join(f.replace("{v}", variant));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        };
        let m: artifacts::metrics::EvalReport =
            serde_json::from_str(&read("eval/{v}/seed-42/metrics.json")).unwrap();
        let (ours, popular) = (m.model.recall[&10], m.popularity.recall[&10]);
        assert!(
            ours < 1.0 && ours > 1.5 * popular,
            "{variant} on {}: Recall@10 {ours} vs most popular {popular}",
            pipeline::backend::name()
        );
        let log = artifacts::model::read_log(&demo.join(format!(
            "train/{variant}/seed-42/{}",
            artifacts::model::TRAIN_LOG
        )))
        .unwrap();
        let losses: Vec<f64> = log
            .iter()
            .filter(|r| r.kind == artifacts::model::LogKind::Train)
            .filter_map(|r| r.loss)
            .collect();
        // A row every 6 micro-batches (val_every / 8).
        assert!(losses.len() >= 15, "{variant}: {} log rows", losses.len());
        assert!(
            losses.iter().all(|l| l.is_finite()),
            "{variant}: {losses:?}"
        );
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (first, last) = (mean(&losses[..3]), mean(&losses[losses.len() - 3..]));
        // The valid-digit loss starts near the popularity prior's (~5.9 nats on the demo) and
        // falls by ~0.7 nats in 100 micro-batches on the CPU; a model that learns nothing stays.
        assert!(
            last < first - 0.3,
            "{variant}: training loss {first:.3} -> {last:.3}"
        );
    }
}
