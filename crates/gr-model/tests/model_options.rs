//! Generation, padding, reducer options and persistence on the `tiger-tiny` fixture model.

use artifacts::config::{KeepBasis, PositionBias, ReducerConfig, ReducerKind};
use burn::backend::Flex;
use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};
use gr_model::generate::{Constraint, SidTrie, beam_search, beam_search_with};
use gr_model::tiger::{Tiger, TigerConfig};
use rand::{Rng, SeedableRng};
use test_support::{data, max_abs, read_json, values as vals};

type B = Flex;

fn cfg() -> TigerConfig {
    read_json(data!("tiger-tiny/config.json"))
}

fn model() -> Tiger<B> {
    Tiger::from_safetensors(
        &data!("tiger-tiny/model.safetensors"),
        &cfg(),
        &Default::default(),
    )
    .unwrap()
}

/// Random histories: `lens[u]` real items in `slots` right-padded slots.
fn histories(lens: &[usize], slots: usize, seed: u64) -> (Tensor<B, 3, Int>, Tensor<B, 2>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let b = lens.len();
    let mut sids = Vec::new();
    let mut mask = Vec::new();
    for &len in lens {
        for s in 0..slots {
            for _ in 0..4 {
                sids.push(if s < len {
                    rng.random_range(0..8i64)
                } else {
                    -1
                });
            }
            mask.push(if s < len { 1.0f32 } else { 0.0 });
        }
    }
    let dev = Default::default();
    (
        Tensor::from_data(TensorData::new(sids, [b, slots, 4]), &dev),
        Tensor::from_data(TensorData::new(mask, [b, slots]), &dev),
    )
}

fn catalogue(n: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<Vec<u32>> = Vec::new();
    while out.len() < n {
        let sid: Vec<u32> = (0..4).map(|_| rng.random_range(0..8u32)).collect();
        if !out.contains(&sid) {
            out.push(sid);
        }
    }
    out
}

/// P(sid | user) under the model for every catalogue SID (teacher forcing).
fn exhaustive(
    m: &Tiger<B>,
    sids: &Tensor<B, 3, Int>,
    mask: &Tensor<B, 2>,
    cat: &[Vec<u32>],
) -> Vec<Vec<f32>> {
    let b = mask.dims()[0];
    let (embeds, emask) = m.embed_history(sids.clone(), mask.clone());
    let enc = m.encode(embeds, emask);
    let dev = Default::default();
    (0..b)
        .map(|u| {
            let n = cat.len();
            let l = enc.hidden.dims()[1];
            let hidden = enc.hidden.clone().slice([u..u + 1, 0..l]).repeat_dim(0, n);
            let hmask = enc.mask.clone().slice([u..u + 1, 0..l]).repeat_dim(0, n);
            let targets: Vec<i64> = cat.iter().flatten().map(|&d| i64::from(d)).collect();
            let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 4]), &dev);
            let prefix = targets.clone().slice([0..n, 0..3]);
            let states = m.decode_prefix(hidden, hmask, Some(prefix));
            let p = vals(softmax(m.logits(states), 2));
            (0..n)
                .map(|i| {
                    (0..4)
                        .map(|h| p[(i * 4 + h) * 8 + cat[i][h] as usize])
                        .product()
                })
                .collect()
        })
        .collect()
}

#[test]
fn constrained_search_returns_only_catalogue_sids_and_equals_exhaustive_scoring() {
    let m = model();
    let (sids, mask) = histories(&[6, 3, 1, 5], 6, 1);
    let (embeds, emask) = m.embed_history(sids.clone(), mask.clone());
    let enc = m.encode(embeds, emask);

    // A catalogue of 10 items: with width 10 every level keeps all its prefixes, so the search
    // is exact and must rank the items by their full-SID probability.
    let small = catalogue(10, 2);
    let trie = SidTrie::new(small.iter().map(Vec::as_slice));
    let beams = beam_search_with(
        &m,
        &enc,
        10,
        Some(Constraint {
            trie: &trie,
            renormalize: false,
        }),
    );
    let scores = exhaustive(&m, &sids, &mask, &small);
    for (u, user_scores) in scores.iter().enumerate() {
        let mut order: Vec<usize> = (0..small.len()).collect();
        order.sort_by(|&a, &b| user_scores[b].total_cmp(&user_scores[a]));
        let want: Vec<Vec<u32>> = order.iter().map(|&i| small[i].clone()).collect();
        assert_eq!(beams.sids[u], want, "user {u}");
        for (k, &i) in order.iter().enumerate() {
            let (got, exp) = (beams.probs[u][k], user_scores[i]);
            assert!(
                (got - exp).abs() <= 1e-5 * exp.max(1e-6),
                "user {u} rank {k}: {got} vs {exp}"
            );
        }
    }

    // Renormalised over the valid digits, the search is a distribution over the catalogue: with
    // every item kept, the beams' probabilities sum to one.
    let renormalised = beam_search_with(
        &m,
        &enc,
        10,
        Some(Constraint {
            trie: &trie,
            renormalize: true,
        }),
    );
    for (u, probs) in renormalised.probs.iter().enumerate() {
        assert_eq!(probs.len(), 10, "user {u}");
        let total: f32 = probs.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "user {u}: {total}");
    }

    // A larger catalogue: never an invalid SID, where the unconstrained search does produce some.
    let big = catalogue(300, 3);
    let trie = SidTrie::new(big.iter().map(Vec::as_slice));
    let constrained = beam_search_with(
        &m,
        &enc,
        10,
        Some(Constraint {
            trie: &trie,
            renormalize: false,
        }),
    );
    let free = beam_search(&m, &enc, 10);
    let mut invalid_free = 0;
    for u in 0..4 {
        assert_eq!(constrained.sids[u].len(), 10);
        assert!(constrained.sids[u].iter().all(|s| trie.contains(s)));
        invalid_free += free.sids[u].iter().filter(|s| !trie.contains(s)).count();
    }
    assert!(
        invalid_free > 0,
        "the unconstrained search should produce invalid SIDs here"
    );
}

#[test]
fn cached_decoding_equals_full_recompute() {
    let m = model();
    let (sids, mask) = histories(&[6, 2], 6, 4);
    let (embeds, emask) = m.embed_history(sids, mask);
    let enc = m.encode(embeds, emask);
    let dev = Default::default();
    let prefix =
        Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 5, 2, 7, 0, 3], [2, 3]), &dev);
    let full = m.decode_prefix(enc.hidden.clone(), enc.mask.clone(), Some(prefix.clone()));
    let mut cache = m.start_decoding(enc.hidden.clone(), enc.mask.clone());
    for t in 0..4 {
        let digits = (t > 0).then(|| prefix.clone().slice([0..2, t - 1..t]).reshape([2]));
        let state = m.decode_step(&mut cache, m.step_input(t, digits, 2));
        let want = full.clone().slice([0..2, t..t + 1, 0..16]).reshape([2, 16]);
        assert!(max_abs(&vals(state), &vals(want)) < 1e-5, "step {t}");
    }
}

#[test]
fn fixed_and_dynamic_padding_give_the_same_logits_without_reduction() {
    let m = model();
    let lens = [3, 1, 4, 2];
    let (sids, mask) = histories(&lens, 6, 5);
    let dynamic_sids = sids.clone().slice([0..4, 0..4, 0..4]);
    let dynamic_mask = mask.clone().slice([0..4, 0..4]);
    let targets = four_targets();
    let logits = |s: Tensor<B, 3, Int>, k: Tensor<B, 2>| {
        let (e, em) = m.embed_history(s, k);
        let enc = m.encode(e, em);
        vals(m.logits(m.decode(&enc, targets.clone())))
    };
    let fixed = logits(sids, mask);
    let dynamic = logits(dynamic_sids, dynamic_mask);
    assert!(max_abs(&fixed, &dynamic) < 1e-5);
}

/// Target SIDs of four users.
fn four_targets() -> Tensor<B, 2, Int> {
    Tensor::from_data(
        TensorData::new(
            vec![1i64, 2, 3, 0, 4, 5, 6, 1, 7, 0, 1, 2, 3, 3, 3, 3],
            [4, 4],
        ),
        &Default::default(),
    )
}

/// RASTP after layer 1 keeping 1/3 of `keep_basis`, with the fixture's fixed padding (30).
fn rastp_spec(keep_basis: KeepBasis) -> ReducerConfig {
    ReducerConfig {
        kind: ReducerKind::Rastp,
        after_layer: 1,
        keep_basis,
        reference_len: 30,
        ..ReducerConfig::default()
    }
}

/// Logits and loss of RASTP after layer 1 (keep 1/3) on the fixture model.
fn rastp_outputs(
    m: &Tiger<B>,
    sids: Tensor<B, 3, Int>,
    mask: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
    keep_basis: KeepBasis,
) -> (Vec<f32>, Vec<f32>) {
    let (e, em) = m.embed_history(sids, mask);
    let enc = m.encode_with(e, em, &rastp_spec(keep_basis));
    let logits = m.logits(m.decode(&enc, targets.clone()));
    let loss = m.loss(logits.clone(), targets);
    (vals(logits), vals(loss))
}

#[test]
fn reference_basis_under_dynamic_padding_matches_fixed_padding() {
    // Six slots of 5 tokens = 30 positions under fixed padding; RASTP keeps ⌊30/3⌋ = 10. Under
    // dynamic padding to the longest history (2 items, 10 positions) the reference basis keeps
    // min(10, 10): every real token, as fixed padding does; the `padded` basis would keep 3.
    let m = model();
    let targets = four_targets();
    let (sids, mask) = histories(&[2, 1, 2, 1], 6, 11);
    let short = |t: Tensor<B, 3, Int>| t.slice([0..4, 0..2, 0..4]);
    let fixed = rastp_outputs(
        &m,
        sids.clone(),
        mask.clone(),
        targets.clone(),
        KeepBasis::Padded,
    );
    let dynamic = rastp_outputs(
        &m,
        short(sids.clone()),
        mask.clone().slice([0..4, 0..2]),
        targets.clone(),
        KeepBasis::Reference,
    );
    assert!(max_abs(&fixed.0, &dynamic.0) < 1e-5);
    assert!(max_abs(&fixed.1, &dynamic.1) < 1e-5);
    let padded = rastp_outputs(
        &m,
        short(sids),
        mask.slice([0..4, 0..2]),
        targets,
        KeepBasis::Padded,
    );
    assert!(
        max_abs(&fixed.0, &padded.0) > 1e-3,
        "the padded basis prunes harder"
    );

    // Longer histories (more real tokens than are kept): both keep 10 tokens per row. The
    // choice among the real tokens can still differ, because the reference's score also sums
    // the attention of padded query rows, and fixed padding has more of them (README,
    // Deviations); the outputs agree only approximately there.
    let (sids, mask) = histories(&[5, 1, 3, 4], 6, 12);
    let (e, em) = m.embed_history(sids.slice([0..4, 0..5, 0..4]), mask.slice([0..4, 0..5]));
    let kept = m
        .encode_with(e, em, &rastp_spec(KeepBasis::Reference))
        .kept
        .unwrap();
    assert!(kept.iter().all(|row| row.len() == 10), "{kept:?}");
}

#[test]
fn gathered_bias_of_all_positions_is_the_full_bias_and_valid_basis_keeps_a_share_of_each_row() {
    let m = model();
    let attn = &m.encoder[0].attn;
    let dev = Default::default();
    let full = vals(attn.compute_bias(7, 7, &dev));
    let gathered = vals(attn.compute_bias_at(&[(0..7).collect()], &dev));
    assert_eq!(full, gathered);

    let lens = [6, 3];
    let (sids, mask) = histories(&lens, 6, 6);
    let (embeds, emask) = m.embed_history(sids, mask);
    for bias in [
        PositionBias::None,
        PositionBias::Recompute,
        PositionBias::Gather,
    ] {
        let spec = ReducerConfig {
            kind: ReducerKind::Rastp,
            after_layer: 1,
            keep_ratio: 1.0 / 3.0,
            position_bias: bias,
            keep_basis: KeepBasis::Valid,
            ..ReducerConfig::default()
        };
        let enc = m.encode_with(embeds.clone(), emask.clone(), &spec);
        let kept = enc.kept.unwrap();
        // 30 and 15 real positions → 10 and 5 kept.
        assert_eq!((kept[0].len(), kept[1].len()), (10, 5));
        assert!(kept[1].iter().all(|&p| p < 15));
        assert_eq!(vals(enc.mask.sum_dim(1)), vec![10.0, 5.0]);
    }
}

#[test]
fn records_and_safetensors_round_trip() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let (sids, mask) = histories(&[5, 2], 6, 7);
    let (embeds, emask) = m.embed_history(sids, mask);
    let out = |mm: &Tiger<B>| vals(mm.encode(embeds.clone(), emask.clone()).hidden);
    let want = out(&m);

    gr_model::export::save_record(&m, &dir.path().join("model")).unwrap();
    let fresh = Tiger::<B>::new(&cfg(), &Default::default());
    assert!(max_abs(&out(&fresh), &want) > 1e-3);
    let loaded =
        gr_model::export::load_record(fresh, &dir.path().join("model.mpk"), &Default::default())
            .unwrap();
    assert_eq!(out(&loaded), want);

    let st = dir.path().join("model.safetensors");
    gr_model::export::export_safetensors(&m, &st).unwrap();
    let reread = Tiger::<B>::from_safetensors(&st, &cfg(), &Default::default()).unwrap();
    assert_eq!(out(&reread), want);
}

/// The export keeps the reference's names, PyTorch layouts and values: the same tensors as the
/// fixture the model was loaded from, and `{"format": "pt"}` as Hugging Face writes.
#[test]
fn export_reproduces_the_reference_file() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("model.safetensors");
    gr_model::export::export_safetensors(&model(), &st).unwrap();
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let (ours, theirs) = (read(&st), read(&data!("tiger-tiny/model.safetensors")));
    let ours = safetensors::SafeTensors::deserialize(&ours).unwrap();
    let theirs = safetensors::SafeTensors::deserialize(&theirs).unwrap();
    let mut names = ours.names();
    names.sort();
    let mut want = theirs.names();
    want.sort();
    assert_eq!(names, want);
    for name in names {
        let (a, b) = (ours.tensor(name).unwrap(), theirs.tensor(name).unwrap());
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name}");
        assert_eq!(a.data(), b.data(), "{name}");
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&read(&st)).unwrap();
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    assert_eq!(format.as_deref(), Some("pt"));
}

/// A file of another model shape fails, naming the file and the tensors.
#[test]
fn mismatched_files_are_explained() {
    let path = data!("tiger-tiny/model.safetensors");
    let load = |cfg: TigerConfig| {
        format!(
            "{:#}",
            Tiger::<B>::from_safetensors(&path, &cfg, &Default::default()).unwrap_err()
        )
    };
    let err = load(TigerConfig {
        num_encoder_layers: 4,
        ..cfg()
    });
    assert!(err.contains("tiger-tiny/model.safetensors"), "{err}");
    assert!(
        err.contains("missing tensor `encoder.block.3.layer.0.layer_norm.weight`"),
        "{err}"
    );
    let err = load(TigerConfig {
        num_decoder_layers: 1,
        ..cfg()
    });
    assert!(err.contains("unexpected tensor `decoder.block.1."), "{err}");
    let err = load(TigerConfig { d_ff: 64, ..cfg() });
    assert!(
        err.contains("tensor `encoder.block.0.layer.1.mlp.model.0.weight` has shape [32, 16], expected [64, 16]"),
        "{err}"
    );
}
