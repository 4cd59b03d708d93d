//! The command line as a user meets it: the real binary, run from the project root.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    test_support::project_root()
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(root())
        .env_remove("RASTP_DATASETS")
        .env_remove("RASTP_RUNS")
        .output()
        .expect("xtask runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn unknown_dataset_lists_the_known_ones() {
    let o = xtask(&["pipeline", "beuaty"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("unknown dataset `beuaty`") && t.contains("beauty") && t.contains("demo"),
        "{t}"
    );
}

#[test]
fn unknown_config_key_names_key_and_valid_keys() {
    let o = xtask(&["config", "demo", "--set", "data.max_histroy=3"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("data.max_histroy") && t.contains("max_history") && t.contains("k_core"),
        "{t}"
    );
    let o = xtask(&["config", "demo", "--profile", "fast"]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("unknown profile `fast`") && t.contains("quick"),
        "{t}"
    );
}

#[test]
fn config_shows_the_resolved_values() {
    let o = xtask(&["config", "beauty", "--set", "data.max_history=20"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("max_history = 20") && t.contains("category = \"Beauty\""),
        "{t}"
    );
}

#[test]
fn missing_dataset_folder_says_how_to_get_it() {
    let empty = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let o = xtask(&[
        "pipeline",
        "toys",
        "--until",
        "data",
        "--datasets-dir",
        empty.path().to_str().unwrap(),
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("does not exist") && t.contains("data fetch toys --from"),
        "{t}"
    );
}

#[test]
fn demo_data_stage_runs_then_is_reused_then_reruns_on_change() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path().to_str().unwrap();
    let first = xtask(&["pipeline", "demo", "--until", "data", "--runs-dir", r]);
    let t = text(&first);
    assert!(first.status.success(), "{t}");
    assert!(
        t.lines()
            .any(|l| l.starts_with("data") && l.contains("ran")),
        "{t}"
    );
    assert!(runs.path().join("demo/data/manifest.json").exists());
    assert!(runs.path().join("demo/data/test.parquet").exists());

    let second = text(&xtask(&[
        "pipeline",
        "demo",
        "--until",
        "data",
        "--runs-dir",
        r,
    ]));
    assert!(
        second
            .lines()
            .any(|l| l.starts_with("data") && l.contains("up to date")),
        "{second}"
    );

    let third = text(&xtask(&[
        "pipeline",
        "demo",
        "--until",
        "data",
        "--runs-dir",
        r,
        "--set",
        "data.max_history=5",
    ]));
    assert!(
        third
            .lines()
            .any(|l| l.starts_with("data") && l.contains("ran")),
        "{third}"
    );

    // Later stages build on the reused data stage.
    let more = text(&xtask(&[
        "pipeline",
        "demo",
        "--until",
        "sids",
        "--runs-dir",
        r,
        "--set",
        "data.max_history=5",
        "--set",
        "embedding.source=cf",
    ]));
    assert!(
        more.lines()
            .any(|l| l.starts_with("data") && l.contains("up to date"))
            && more
                .lines()
                .any(|l| l.starts_with("sids") && l.contains("ran")),
        "{more}"
    );
}

#[test]
fn stats_of_demo() {
    let o = xtask(&["data", "stats", "demo"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("users") && t.contains("sparsity") && t.contains("title"),
        "{t}"
    );
}

#[test]
fn info_runs_the_backend_self_check() {
    let o = xtask(&["info"]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("self-check: ok"), "{t}");
}

#[test]
fn two_pipelines_on_one_runs_folder_never_race() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path().to_str().unwrap();
    let args = [
        "pipeline",
        "demo",
        "--until",
        "sids",
        "--runs-dir",
        r,
        "--set",
        "embedding.source=cf",
    ];
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("xtask starts")
    };
    let (a, b) = (start(), start());
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut finished = 0;
    for o in &outputs {
        let t = text(o);
        if o.status.success() {
            finished += 1;
            assert!(t.lines().any(|l| l.starts_with("sids")), "{t}");
        } else {
            // The loser stops at once and names the holder; never an I/O error.
            assert!(
                t.contains("is in use by another run") && t.contains("pid "),
                "{t}"
            );
        }
        assert!(!t.contains("No such file"), "{t}");
    }
    assert!(finished >= 1);
    // Nothing temporary is left behind.
    let left: Vec<String> = std::fs::read_dir(runs.path().join("demo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp") || n.starts_with(".old"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
