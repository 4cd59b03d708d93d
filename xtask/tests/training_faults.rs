//! Training faults on the `demo` data through the real binary: a run killed with SIGKILL resumes
//! from its last checkpoint and ends exactly where an uninterrupted run ends; a non-finite loss
//! stops with a clear error and keeps the last good checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    test_support::project_root()
}

/// A short demo training (collaborative embeddings, so no text model is needed).
const SETS: [&str; 9] = [
    "embedding.source=cf",
    "run.variants=[\"rastp\"]",
    "train.max_batches=12",
    "train.checkpoint_every=2",
    "train.val_every=6",
    "train.max_windows=32",
    "train.patience=100",
    "model.dropout=0.1",
    "eval.batch_users=300",
];

fn command(runs: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(["pipeline", "demo", "--until", "train", "--seeds", "3"]);
    for s in SETS.iter().chain(extra) {
        c.args(["--set", s]);
    }
    c.current_dir(root())
        .env("RASTP_RUNS", runs)
        .env_remove("RASTP_DATASETS");
    c
}

fn train_dir(runs: &Path) -> PathBuf {
    runs.join("demo/train/rastp/seed-3")
}

/// The log without the timing columns.
fn log_without_times(runs: &Path) -> Vec<String> {
    std::fs::read_to_string(train_dir(runs).join("train_log.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [&f[..3], &f[4..5], &f[6..]].concat().join(",")
        })
        .collect()
}

#[test]
fn killed_training_resumes_and_ends_like_an_uninterrupted_run() {
    let straight = tempfile::tempdir().unwrap();
    let out = command(straight.path(), &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = std::fs::read(train_dir(straight.path()).join("model.safetensors")).unwrap();

    let killed = tempfile::tempdir().unwrap();
    let mut child = command(killed.path(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = killed
        .path()
        .join("demo/train/rastp/seed-3.work/checkpoint/state.json");
    let started = Instant::now();
    loop {
        let batch = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["batch"].as_u64());
        if batch.is_some_and(|b| (4..12).contains(&b)) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!train_dir(killed.path()).join("manifest.json").exists());

    let out = command(killed.path(), &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming from the checkpoint at micro-batch"),
        "{stderr}"
    );
    let got = std::fs::read(train_dir(killed.path()).join("model.safetensors")).unwrap();
    assert!(
        got == want,
        "the resumed run's best model differs from the uninterrupted run's"
    );
    assert_eq!(
        log_without_times(killed.path()),
        log_without_times(straight.path())
    );
    assert!(
        !killed.path().join("demo/train/rastp/seed-3.work").exists(),
        "work dir removed"
    );
}

#[test]
fn non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint() {
    let runs = tempfile::tempdir().unwrap();
    let out = command(runs.path(), &["train.lr=1e30", "train.checkpoint_every=1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not finite") && stderr.contains("train.lr"),
        "{stderr}"
    );
    assert!(stderr.contains("last good checkpoint"), "{stderr}");
    let work = runs.path().join("demo/train/rastp/seed-3.work/checkpoint");
    assert!(work.join("state.json").is_file() && work.join("model.mpk").is_file());
    assert!(!train_dir(runs.path()).join("manifest.json").exists());

    let out = command(runs.path(), &["train.lr=nan"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("train.lr must be"),
        "{stderr}"
    );
}
