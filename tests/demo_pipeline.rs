//! End to end: `cargo xtask pipeline demo` as a library call — data → embed → sids → train →
//! eval → report for TIGER and RASTP — and the recommendations beat the most-popular baseline.

use pipeline::backend::{Backend, device};
use pipeline::experiment::{self, ExperimentOptions, Question};
use pipeline::recommend::Who;
use pipeline::{Demo, Error, StageId, Status, TrainedRun};
use tiger_rastp::artifacts::Config;
use tiger_rastp::artifacts::metrics::EvalReport;

#[test]
fn demo_pipeline_trains_evaluates_and_reports() {
    let runs = tempfile::tempdir().unwrap();
    let demo_run = Demo::new(runs.path(), "paper", &[]).unwrap();
    let (ws, cfg): (_, &Config) = (&demo_run.workspace, &demo_run.config);
    let reports = demo_run.run_all(42).unwrap();
    assert!(
        reports.iter().all(|r| r.status == Status::Ran),
        "{reports:?}"
    );

    let demo = runs.path().join("demo");
    for variant in ["none", "rastp"] {
        let metrics =
            std::fs::read_to_string(demo.join(format!("eval/{variant}/seed-42/metrics.json")))
                .unwrap();
        let m: EvalReport = serde_json::from_str(&metrics).unwrap();
        let (ours, popular) = (m.model.recall[&10], m.popularity.recall[&10]);
        assert!(ours < 1.0, "{variant}: Recall@10 {ours}");
        assert!(
            ours > 2.0 * popular,
            "{variant}: Recall@10 {ours} is not well above the most-popular baseline {popular}"
        );
        assert_eq!(m.users, m.all_users);
        assert!(
            demo.join(format!("train/{variant}/seed-42/model.safetensors"))
                .is_file()
        );
    }
    let report = std::fs::read_to_string(demo.join("report.md")).unwrap();
    for needle in [
        "Recall@5",
        "NDCG@10",
        "ours none",
        "ours rastp",
        "most popular",
        "time saved",
    ] {
        assert!(report.contains(needle), "report lacks {needle}:\n{report}");
    }
    for plot in ["val_recall_by_batch", "val_loss_by_time"] {
        for ext in ["svg", "png"] {
            assert!(
                demo.join(format!("report/{plot}.{ext}")).is_file(),
                "{plot}.{ext}"
            );
        }
    }

    // The trained model recommends ten real items with titles for a user.
    let layout = demo_run.layout();
    let run = TrainedRun::<Backend>::load(&layout, cfg, None, 42, &device()).unwrap();
    let recommend = |who: Who, top: usize| run.recommend(&who, top, &device());
    let answer = recommend(Who::User("1".into()), 10).unwrap();
    assert_eq!(run.run.variant.to_string(), "none");
    assert!(!answer.history.is_empty());
    let recs = &answer.items;
    assert_eq!(recs.len(), 10);
    assert!(recs.iter().all(|r| r.item.is_some() || r.title == "-"));
    assert!(
        recs.iter()
            .filter(|r| r.item.is_some())
            .all(|r| r.title != "-" && r.sid.len() == 4)
    );
    assert!(recs.windows(2).all(|w| w[0].score >= w[1].score));
    let err = recommend(Who::User("no-such-user".into()), 10).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownUser { id, .. } if id == "no-such-user"),
        "{err}"
    );
    let err = recommend(Who::History(vec!["B000BOGUS".into()]), 10).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownItem { id, .. } if id == "B000BOGUS"),
        "{err}"
    );
    let err = recommend(Who::History(vec![]), 10).unwrap_err();
    assert!(matches!(err, Error::EmptyHistory), "{err}");
    // More items than the catalogue holds are refused, not padded with empty rows.
    let err = recommend(Who::User("1".into()), 5000).unwrap_err();
    assert!(
        matches!(err, Error::TopOutOfRange { top: 5000, .. }),
        "{err}"
    );

    // Everything is reused on a second run.
    let again = demo_run.run_all(42).unwrap();
    assert!(
        again.iter().all(|r| r.status == Status::UpToDate),
        "{again:?}"
    );

    // RQ2 through the same pipeline: `none` and `rastp` are reused, the other reducers train.
    let config = ws.config("demo", None, "paper", &[]).unwrap();
    let plan = experiment::plan(Question::Rq2, &config, &ExperimentOptions::default()).unwrap();
    let (path, stages) = experiment::run(ws, "demo", &config, &plan).unwrap();
    let trained: Vec<String> = stages
        .iter()
        .filter(|r| r.stage == StageId::Train && r.status == Status::Ran)
        .filter_map(|r| r.run)
        .map(|k| k.variant.to_string())
        .collect();
    assert_eq!(trained, ["l2", "max-pool", "avg-pool"], "{stages:?}");
    assert_eq!(path, demo.join("experiments/rq2/report.md"));
    let rq2 = std::fs::read_to_string(&path).unwrap();
    for variant in ["none", "rastp", "l2", "max-pool", "avg-pool"] {
        let row = rq2
            .lines()
            .find(|l| l.starts_with(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("no row for {variant}:\n{rq2}"));
        // Recall@5 is a real number in (0, 1).
        let recall5: f64 = row.split('|').nth(5).unwrap().trim().parse().unwrap();
        assert!(recall5 > 0.0 && recall5 < 1.0, "{row}");
    }
    for ext in ["svg", "png"] {
        assert!(
            demo.join(format!("experiments/rq2/quality_vs_time.{ext}"))
                .is_file()
        );
    }
    // Run again: everything is reused and the report is rewritten in place.
    let (_, stages) = experiment::run(ws, "demo", &config, &plan).unwrap();
    assert!(
        stages.iter().all(|r| r.status == Status::UpToDate),
        "{stages:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(demo.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A damaged model file is named as damaged, not as a decoding error.
    let record = demo.join("train/none/seed-42/model.mpk");
    let bytes = std::fs::read(&record).unwrap();
    std::fs::write(&record, &bytes[..bytes.len() / 2]).unwrap();
    let err = TrainedRun::<Backend>::load(&layout, cfg, None, 42, &device())
        .err()
        .expect("a damaged model loads");
    assert!(
        matches!(err.artifact(), Some(tiger_rastp::artifacts::Error::Damaged { path, .. })
            if path.ends_with("model.mpk")),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("model.mpk is damaged") && text.contains("re-run"),
        "{text}"
    );
}
