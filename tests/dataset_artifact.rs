//! Cross-crate: the demo dataset goes through the real data stage and the orchestrator, and the
//! `Dataset` artifact read back is consistent with the leave-one-out protocol.

use pipeline::{Demo, PipelineOptions, StageId, Status};
use tiger_rastp::artifacts::dataset::Dataset;
use tiger_rastp::artifacts::{Config, ConfigLayer, Manifest};

fn demo(runs: &std::path::Path, sets: &[&str]) -> Demo {
    Demo::new(runs, "quick", sets).unwrap()
}

#[test]
fn demo_dataset_artifact_follows_leave_one_out() {
    let runs = tempfile::tempdir().unwrap();
    let demo_run = demo(runs.path(), &["data.max_history=8"]);
    let opts = PipelineOptions {
        until: Some(StageId::Data),
        force: false,
        seeds: vec![42],
    };
    let reports = demo_run.run(&opts).unwrap();
    assert_eq!(reports[0].status, Status::Ran);

    let dir = runs.path().join("demo/data");
    let manifest = Manifest::read(&dir).unwrap().unwrap();
    let d = Dataset::read(&dir).unwrap();
    let inter = &d.interactions;
    assert_eq!(manifest.rows["users"] as usize, inter.users.len());
    assert_eq!(
        manifest.rows["interactions"] as usize,
        inter.num_interactions()
    );
    assert_eq!(manifest.details["format"], "synthetic");
    for (u, seq) in inter.sequences.iter().enumerate() {
        let n = seq.len();
        assert_eq!(d.split.train[u], seq[..n - 2]);
        assert_eq!(d.split.valid[u].target, seq[n - 2]);
        assert_eq!(d.split.test[u].target, seq[n - 1]);
        assert!(d.split.test[u].history.len() <= 8);
        assert_eq!(d.split.test[u].history.last(), Some(&seq[n - 2]));
    }
    // Every item has text: the demo set exercises the text stage fully.
    assert!(
        inter
            .items
            .iter()
            .all(|i| i.title.is_some() && i.categories.is_some())
    );

    // The same config is reused; a different generator seed re-runs.
    let again = demo_run.run(&opts).unwrap();
    assert_eq!(again[0].status, Status::UpToDate);
    let other = demo(
        runs.path(),
        &["data.max_history=8", "data.synthetic.seed=9"],
    );
    let rerun = other.run(&opts).unwrap();
    assert_eq!(rerun[0].status, Status::Ran);
    assert_ne!(
        Manifest::read(&dir).unwrap().unwrap().content_hash,
        manifest.content_hash
    );
}

#[test]
fn profiles_and_files_compose() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, "[data]\nformat = \"synthetic\"\nk_core = 4\n").unwrap();
    let c = Config::from_layers(&[
        ConfigLayer::File(file),
        ConfigLayer::Set("data.synthetic.users=100".into()),
    ])
    .unwrap();
    assert_eq!(c.data.k_core, 4);
    assert_eq!(c.data.synthetic.users, 100);
}

#[test]
fn demo_embeddings_from_text_and_from_cooccurrence() {
    use tiger_rastp::artifacts::embeddings::ItemEmbeddings;
    let runs = tempfile::tempdir().unwrap();
    let opts = PipelineOptions {
        until: Some(StageId::Embed),
        force: false,
        seeds: vec![42],
    };

    // Collaborative embeddings: no model needed.
    let demo_run = demo(runs.path(), &["embedding.source=cf", "embedding.cf.dim=16"]);
    let r = demo_run.run(&opts).unwrap();
    assert_eq!((r[0].status, r[1].status), (Status::Ran, Status::Ran));
    let dir = runs.path().join("demo/embed");
    let e = ItemEmbeddings::read(&dir).unwrap();
    let items = Dataset::read(&runs.path().join("demo/data"))
        .unwrap()
        .interactions
        .items
        .len();
    assert_eq!((e.n, e.dim), (items, 16));
    let m = Manifest::read(&dir).unwrap().unwrap();
    assert_eq!(m.details["source"], "cf");

    // Text through the real MiniLM (fetched like `cargo xtask setup`): 384-d, unit rows, and
    // items of the same sub-category closer than items of different categories.
    let demo_run = demo(runs.path(), &[]);
    let r = demo_run.run(&opts).unwrap();
    assert_eq!((r[0].status, r[1].status), (Status::UpToDate, Status::Ran));
    let e = ItemEmbeddings::read(&dir).unwrap();
    assert_eq!(e.dim, 384);
    for i in 0..e.n {
        let norm: f32 = e.row(i).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    let m = Manifest::read(&dir).unwrap().unwrap();
    assert_eq!(m.details["source"], "text");
    assert_eq!(m.details["source_requested"], "auto");
    let again = demo_run.run(&opts).unwrap();
    assert_eq!(again[1].status, Status::UpToDate);
}

#[test]
fn demo_semantic_ids_are_unique_and_follow_the_seed() {
    use std::collections::HashSet;
    use tiger_rastp::artifacts::sids::SemanticIds;
    let runs = tempfile::tempdir().unwrap();
    let opts = PipelineOptions {
        until: Some(StageId::Sids),
        force: false,
        seeds: vec![42],
    };
    let base = [
        "embedding.source=cf",
        "embedding.cf.dim=16",
        "quantizer.codebook_size=8",
    ];
    let demo_run = demo(runs.path(), &base);
    let r = demo_run.run(&opts).unwrap();
    assert_eq!(r[2].stage, StageId::Sids);
    assert_eq!(r[2].status, Status::Ran);
    let dir = runs.path().join("demo/sids");
    let sids = SemanticIds::read(&dir).unwrap();
    let n = Dataset::read(&runs.path().join("demo/data"))
        .unwrap()
        .interactions
        .items
        .len();
    assert_eq!(sids.codes.len(), n);
    assert_eq!(sids.levels(), 3);
    assert!(sids.codes.iter().all(|c| c[..3].iter().all(|&d| d < 8)));
    assert_eq!(
        sids.codes.iter().collect::<HashSet<_>>().len(),
        n,
        "4-digit ids are unique"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["levels"].as_array().unwrap().len(), 3);

    let again = demo_run.run(&opts).unwrap();
    assert_eq!(again[2].status, Status::UpToDate);
    let mut sets = base.to_vec();
    sets.push("quantizer.seed=7");
    let reseeded = demo(runs.path(), &sets).run(&opts).unwrap();
    assert_eq!(
        (reseeded[1].status, reseeded[2].status),
        (Status::UpToDate, Status::Ran)
    );
    assert_ne!(SemanticIds::read(&dir).unwrap().codes, sids.codes);
}
