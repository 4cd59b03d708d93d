//! Our k-means against scikit-learn on the shared fixture, and determinism across thread counts.

use artifacts::config::{KMeansAlgorithm, QuantizerConfig};
use artifacts::embeddings::ItemEmbeddings;
use quantizer::{ItemQuantizer, RqKMeans};
use test_support::{Fixture, data};

fn points() -> ItemEmbeddings {
    let data = Fixture::open(data!("kmeans/data.safetensors")).f32("points", &[4000, 32]);
    ItemEmbeddings::new(4000, 32, data).unwrap()
}

fn lloyd(levels: usize, n_init: usize, seed: u64) -> QuantizerConfig {
    QuantizerConfig {
        algorithm: KMeansAlgorithm::Lloyd,
        levels,
        codebook_size: 64,
        normalize_residuals: false,
        n_init,
        seed,
        ..Default::default()
    }
}

#[test]
fn lloyd_inertia_within_one_percent_of_scikit_learn() {
    let q = RqKMeans::new(&lloyd(1, 10, 0))
        .unwrap()
        .quantize(&points())
        .unwrap();
    let ours = q.levels[0].inertia;
    let sklearn = 129_706.14; // KMeans(n_clusters=64, n_init=10), meta.json
    assert!(
        ours <= sklearn * 1.01,
        "inertia {ours:.2} vs scikit-learn {sklearn:.2}"
    );
    assert_eq!(q.levels[0].used_codes, 64);
}

#[test]
fn residual_levels_track_scikit_learn() {
    let q = RqKMeans::new(&lloyd(3, 1, 0))
        .unwrap()
        .quantize(&points())
        .unwrap();
    let sklearn = [130_248.87, 103_407.08, 82_332.52];
    for (l, s) in q.levels.iter().zip(sklearn) {
        // One k-means++ start each, different RNG: close, not equal.
        assert!(
            l.inertia <= s * 1.05,
            "level {}: {:.2} vs {s:.2}",
            l.level,
            l.inertia
        );
    }
    assert!(q.levels[2].inertia < q.levels[0].inertia);
}

#[test]
fn same_seed_same_codes_on_any_thread_count() {
    let emb = points();
    for algorithm in [KMeansAlgorithm::Minibatch, KMeansAlgorithm::Lloyd] {
        let cfg = QuantizerConfig {
            algorithm,
            codebook_size: 32,
            batch_size: 512,
            init_buffer: 768,
            max_iter: 20,
            ..Default::default()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| RqKMeans::new(&cfg).unwrap().quantize(&emb).unwrap())
        };
        let one = run(1);
        let four = run(4);
        assert_eq!(one.codes, four.codes, "{algorithm:?}");
        let bits =
            |q: &quantizer::Quantized| q.codebooks.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&four), "{algorithm:?}");
        let other = RqKMeans::new(&QuantizerConfig {
            seed: 7,
            ..cfg.clone()
        })
        .unwrap()
        .quantize(&emb)
        .unwrap();
        assert_ne!(other.codes, one.codes);
    }
}

#[test]
fn fewer_items_than_clusters_is_an_error() {
    let emb = ItemEmbeddings::new(10, 2, vec![0.5; 20]).unwrap();
    let err = RqKMeans::new(&QuantizerConfig::default())
        .unwrap()
        .quantize(&emb)
        .unwrap_err();
    assert!(
        matches!(
            err,
            quantizer::Error::TooFewItems {
                items: 10,
                clusters: 256
            }
        ),
        "{err:?}"
    );
    let m = err.to_string();
    assert!(
        m.contains("10 items are fewer than the 256 clusters"),
        "{m}"
    );
}
