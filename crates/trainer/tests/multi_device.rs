//! Data-parallel training: spreading a micro-batch's chunks over two device workers gives the
//! same losses (so the same gradients and updates) as one device, up to floating-point order.

use artifacts::config::{ReducerConfig, ReducerKind, TrainConfig};
use artifacts::dataset::HeldOut;
use burn::backend::{Autodiff, Flex};
use evaluator::{Catalogue, EvalSettings};
use gr_model::input::SidTable;
use gr_model::tiger::TigerConfig;
use test_support::small_tiger;
use trainer::checkpoint::WorkDir;
use trainer::step::PaddedCost;
use trainer::windows::{TrainUsers, WindowSampler};
use trainer::{TrainData, TrainSettings, train};

type A = Autodiff<Flex>;

const ITEMS: u32 = 40;

fn losses(devices: usize, chunk_windows: usize, reducer: ReducerKind) -> Vec<f64> {
    let model = TigerConfig {
        num_levels: 3,
        codes_per_level: 8,
        dropout: 0.0,
        num_buckets: 8,
        max_distance: 32,
        ..small_tiger()
    };
    let sids: Vec<Vec<u32>> = (0..ITEMS).map(|i| vec![i % 8, i / 8, 0]).collect();
    let catalogue = Catalogue::new(SidTable::new(&sids, 8).unwrap()).unwrap();
    let train_seqs: Vec<Vec<u32>> = (0..30u32)
        .map(|u| (0..7).map(|k| (u * 3 + k * (1 + u % 3)) % ITEMS).collect())
        .collect();
    let valid: Vec<HeldOut> = (0..10u32)
        .map(|u| HeldOut {
            user: u,
            history: train_seqs[u as usize].clone(),
            target: (u * 3 + 7) % ITEMS,
        })
        .collect();
    let cfg = TrainConfig {
        users_per_batch: 8,
        max_windows: 40,
        chunk_windows,
        grad_accumulation: 1,
        lr: 1e-2,
        weight_decay: 0.0,
        val_every: 8,
        max_batches: 5,
        checkpoint_every: 100,
        ..TrainConfig::default()
    };
    let sampler = WindowSampler::new(
        TrainUsers::new(&train_seqs),
        7,
        cfg.users_per_batch,
        cfg.max_windows,
        cfg.window_sampling,
        6,
    );
    let settings = TrainSettings {
        train: cfg,
        seed: 7,
        slots: None,
        reducer: ReducerConfig::reference(reducer),
        validation: EvalSettings {
            beam_width: 4,
            constrained: true,
            renormalize: false,
            valid_loss: false,
            batch_users: 16,
            ks: vec![5],
            slots: None,
            reducer: ReducerConfig::none(),
            with_loss: false,
        },
        run_hash: format!("devices-{devices}"),
        padded_cost: PaddedCost {
            tokens_per_item: 4.0,
            linear_tokens: 64.0,
        },
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkDir::new(tmp.path()).unwrap();
    let device = Default::default();
    let data = TrainData {
        sampler: &sampler,
        valid: &valid,
        catalogue: &catalogue,
    };
    let outcome = train::<A>(&model, &data, &settings, &work, &vec![device; devices]).unwrap();
    outcome
        .state
        .log
        .iter()
        .filter(|r| r.kind == artifacts::model::LogKind::Train)
        .map(|r| r.loss.unwrap())
        .collect()
}

#[test]
fn two_device_workers_give_the_single_device_losses() {
    // The same chunks on one device and on two: with dynamic padding a chunk's length sets
    // RASTP's keep count, so the chunking (not the devices) must match for equal losses.
    let one = losses(1, 10, ReducerKind::Rastp);
    let two = losses(2, 10, ReducerKind::Rastp);
    assert_eq!(one.len(), 5, "{one:?}");
    assert_eq!(one.len(), two.len());
    for (a, b) in one.iter().zip(&two) {
        assert!((a - b).abs() <= 1e-4 * a.abs(), "{one:?} vs {two:?}");
    }
    // The model learns over the five steps (so the comparison covers updated weights).
    assert!(one[4] < one[0], "{one:?}");

    // chunk_windows 0 on two workers: the micro-batch sorted by length and split where the
    // workers' padded costs balance. Without a reducer the chunking does not change the loss,
    // so it equals one device's unsorted whole-batch pass. (In the same test, not a second
    // one: two trainings at once in one process deadlock in burn-autodiff 0.21, whose graph
    // clean-up takes a process-wide lock that a one-device backward holds while it waits for
    // rayon's pool, the pool's threads being the other training's workers waiting for it.)
    let one = losses(1, 0, ReducerKind::None);
    let two = losses(2, 0, ReducerKind::None);
    assert_eq!(one.len(), 5, "{one:?}");
    for (a, b) in one.iter().zip(&two) {
        assert!((a - b).abs() <= 1e-4 * a.abs(), "{one:?} vs {two:?}");
    }
    assert!(one[4] < one[0], "{one:?}");
}
