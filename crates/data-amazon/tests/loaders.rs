//! The raw SNAP loader and the P5 loader on small files written by the test, in the exact
//! formats of the real data (gzip, JSON lines, Python dict literals).

use std::io::Write;
use std::path::Path;

use artifacts::config::{DataConfig, DataFormat};
use data_amazon::{Source, build, load};

fn gz(path: &Path, lines: &[String]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for l in lines {
        writeln!(enc, "{l}").unwrap();
    }
    enc.finish().unwrap();
}

fn review(user: &str, asin: &str, time: i64) -> String {
    format!(
        r#"{{"reviewerID": "{user}", "asin": "{asin}", "reviewerName": "N", "helpful": [0, 0], "reviewText": "ok", "overall": 5.0, "summary": "s", "unixReviewTime": {time}, "reviewTime": "01 1, 2014"}}"#
    )
}

/// Six users and items forming a 3-core, plus noise that the iterative filter must remove:
/// user `ux` (2 reviews) and item `iz` (reviewed by two users, one of them `ux`).
fn raw_fixture(dir: &Path) {
    let mut reviews = Vec::new();
    // Users u1..u4 each review i1..i4 with times chosen so that orders differ per user.
    let orders = [[1, 2, 3, 4], [4, 3, 2, 1], [2, 2, 1, 3], [5, 6, 7, 8]];
    for (u, times) in orders.iter().enumerate() {
        for (i, &t) in times.iter().enumerate() {
            reviews.push(review(&format!("u{}", u + 1), &format!("i{}", i + 1), t));
        }
    }
    reviews.push(review("ux", "i1", 3));
    reviews.push(review("ux", "iz", 4));
    reviews.push(review("u1", "iz", 9)); // iz: 2 users -> dropped; then ux has 1 -> dropped.
    reviews.push(review("u2", "i1", 99)); // duplicate of (u2, i1): the first is kept.
    gz(&dir.join("reviews_Test_5.json.gz"), &reviews);
    let meta = vec![
        "{'asin': 'i1', 'title': 'Rose &amp; Oud Perfume', 'brand': 'Maison', 'categories': [['Beauty', 'Fragrance']], 'price': 12.5, 'related': {'also_bought': ['i2']}}".to_string(),
        "{'asin': 'i2', 'title': \"Kid's Soap\", 'categories': [['Beauty', 'Bath'], ['Kids']], 'description': 'Gentle soap.'}".to_string(),
        "{'asin': 'i3', 'categories': [['Beauty']], 'salesRank': {'Beauty': 3}}".to_string(),
        "{'asin': 'iz', 'title': 'Filtered out'}".to_string(),
    ];
    gz(&dir.join("meta_Test.json.gz"), &meta);
}

fn cfg(format: DataFormat, k: usize) -> DataConfig {
    DataConfig {
        format,
        category: "Test".into(),
        k_core: k,
        ..Default::default()
    }
}

#[test]
fn raw_files_load_with_iterative_core_time_order_and_first_appearance_ids() {
    let dir = tempfile::tempdir().unwrap();
    raw_fixture(dir.path());
    let source = Source::resolve(dir.path(), &cfg(DataFormat::Auto, 3)).unwrap();
    assert!(matches!(source, Source::Raw { .. }));
    let (inter, notes) = load(&source, &cfg(DataFormat::Auto, 3)).unwrap();
    assert_eq!(inter.users, vec!["u1", "u2", "u3", "u4"]);
    // u1 reads i1 i2 i3 i4 -> ids 0 1 2 3 by first appearance.
    let asins: Vec<_> = inter.items.iter().map(|i| i.asin.as_str()).collect();
    assert_eq!(asins, vec!["i1", "i2", "i3", "i4"]);
    assert_eq!(
        inter.sequences,
        vec![
            vec![0, 1, 2, 3],
            vec![3, 2, 1, 0],
            vec![2, 0, 1, 3], // times 2,2,1,3: i3 first, then i1 before i2 (file order on the tie)
            vec![0, 1, 2, 3],
        ]
    );
    assert_eq!(notes["duplicates_dropped"], 1);
    assert_eq!(notes["items_without_meta"], 1); // i4
    assert!(notes["k_core_rounds"].as_u64().unwrap() >= 2);
    let i1 = &inter.items[0];
    assert_eq!(
        i1.title.as_deref(),
        Some("Rose &amp; Oud Perfume"),
        "entities are decoded by the text stage"
    );
    assert_eq!(i1.price, Some(12.5));
    assert_eq!(inter.items[1].categories.as_ref().unwrap().len(), 2);
    assert_eq!(inter.items[1].description.as_deref(), Some("Gentle soap."));
    assert_eq!(inter.items[2].title, None);

    let (dataset, _) = build(&source, &cfg(DataFormat::Raw, 3)).unwrap();
    assert_eq!(dataset.split.test[2].target, 3);
    assert_eq!(dataset.split.valid[2].target, 1);
    assert_eq!(dataset.split.train[2], vec![2, 0]);
}

#[test]
fn malformed_raw_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    raw_fixture(dir.path());
    gz(
        &dir.path().join("meta_Test.json.gz"),
        &[
            "{'asin': 'i1'}".into(),
            "{'asin': 'i2' 'title': 'x'}".into(),
        ],
    );
    let err = load(
        &Source::resolve(dir.path(), &cfg(DataFormat::Raw, 3)).unwrap(),
        &cfg(DataFormat::Raw, 3),
    )
    .unwrap_err();
    assert!(
        matches!(&err, data_amazon::Error::BadLiteral { line: 2, .. }),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(
        m.contains("meta_Test.json.gz:2") && m.contains("Python dict literal"),
        "{m}"
    );

    gz(
        &dir.path().join("reviews_Test_5.json.gz"),
        &[review("a", "b", 1), "{\"reviewerID\": \"a\"}".into()],
    );
    let err = load(
        &Source::resolve(dir.path(), &cfg(DataFormat::Raw, 3)).unwrap(),
        &cfg(DataFormat::Raw, 3),
    )
    .unwrap_err();
    assert!(
        matches!(&err, data_amazon::Error::BadJson { line: Some(2), .. }),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(
        m.contains("reviews_Test_5.json.gz:2") && m.contains("unixReviewTime"),
        "{m}"
    );
}

#[test]
fn p5_folder_loads_with_reviewer_ids() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sequential_data.txt"),
        "1 1 2 3\n2 3 2 1 2\n",
    )
    .unwrap();
    let item = |id: u32, asin: &str| {
        format!(
            r#"{{"item_id": {id}, "asin": "{asin}", "title": "T{id}", "brand": null, "categories": [["Beauty"]], "description": null, "price": null}}"#
        )
    };
    gz(
        &dir.path().join("items.jsonl.gz"),
        &[item(1, "A"), item(2, "B"), item(3, "C")],
    );
    gz(
        &dir.path().join("datamaps.json.gz"),
        &[
            r#"{"id2user": {"1": "R1", "2": "R2"}, "id2item": {"1": "A", "2": "B", "3": "C"}}"#
                .to_string(),
        ],
    );
    let c = cfg(DataFormat::Auto, 5);
    let source = Source::resolve(dir.path(), &c).unwrap();
    assert_eq!(source, Source::P5(dir.path().to_path_buf()));
    assert_eq!(source.files().len(), 3);
    let (inter, _) = load(&source, &c).unwrap();
    assert_eq!(inter.users, vec!["R1", "R2"]);
    assert_eq!(inter.sequences, vec![vec![0, 1, 2], vec![2, 1, 0, 1]]);
    assert_eq!(inter.items[2].title.as_deref(), Some("T3"));
}

#[test]
fn missing_folder_and_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let err = Source::resolve(&dir.path().join("nope"), &cfg(DataFormat::Auto, 5)).unwrap_err();
    assert!(
        matches!(&err, data_amazon::Error::MissingFolder { .. }),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(
        m.contains("does not exist")
            && m.contains("sequential_data.txt")
            && m.contains("reviews_Test_5.json.gz"),
        "{m}"
    );
    let err = Source::resolve(dir.path(), &cfg(DataFormat::Auto, 5)).unwrap_err();
    assert!(
        matches!(&err, data_amazon::Error::NoDatasetFiles { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("no dataset files"), "{err}");
    let err = Source::resolve(dir.path(), &cfg(DataFormat::P5, 5)).unwrap_err();
    assert!(
        matches!(&err, data_amazon::Error::MissingFile { format: "p5", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sequential_data.txt"), "{err}");
    // A P5 folder whose items file is missing.
    std::fs::write(dir.path().join("sequential_data.txt"), "1 1 2 3\n").unwrap();
    let c = cfg(DataFormat::Auto, 5);
    let err = load(&Source::resolve(dir.path(), &c).unwrap(), &c).unwrap_err();
    assert!(matches!(&err, data_amazon::Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("items.jsonl.gz"), "{err}");
}
