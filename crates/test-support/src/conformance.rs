//! The backend conformance checks: the model's parity fixtures (TIGER forward, loss, gradients,
//! RASTP's kept tokens, beams; the T5 encoder), training a batch, and the model options (cached
//! and constrained decoding, padding, reducer options, records), each a function generic over the
//! burn backend and its device.
//!
//! [`conformance_tests!`](crate::conformance_tests) defines one test per check; `gr-model`'s
//! `tests/conformance.rs` invokes it with `Flex` (the CPU) and `xtask/tests/conformance.rs` with
//! the backend `xtask` was built with (`flex`, `wgpu`, `cuda`), with the same tolerances. A check
//! panics, naming what differs, when the backend does not conform.

use std::path::PathBuf;

use artifacts::config::{KeepBasis, PositionBias, ReducerConfig, ReducerKind, TrainConfig};
use burn::module::Param;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use gr_model::generate::{Beams, Constraint, SidTrie, beam_search, beam_search_with};
use gr_model::t5::{T5Config, T5Encoder};
use gr_model::tiger::{Tiger, TigerConfig};
use rand::{Rng, SeedableRng};

use crate::{Fixture, assert_close, max_abs, read_json, small_tiger, values as vals};

/// The project root ([`crate::project_root`]).
pub fn repo_root() -> PathBuf {
    crate::project_root()
}

/// `gr-model`'s fixture folder (`crates/gr-model/tests/data`).
pub fn model_data() -> PathBuf {
    repo_root().join("crates/gr-model/tests/data")
}

fn tiger_data(f: &str) -> PathBuf {
    model_data().join("tiger-tiny").join(f)
}

fn rastp_data(f: &str) -> PathBuf {
    model_data().join("tiger-tiny-rastp").join(f)
}

/// The `tiger-tiny` fixture's configuration.
pub fn tiger_tiny_config() -> TigerConfig {
    read_json(tiger_data("config.json"))
}

/// The `tiger-tiny` fixture model on `dev`.
pub fn tiger_tiny<B: Backend>(dev: &B::Device) -> Tiger<B> {
    Tiger::from_safetensors(&tiger_data("model.safetensors"), &tiger_tiny_config(), dev)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The fixture's model, its encoder inputs (embeddings and mask) and target digits.
struct Setup<B: Backend> {
    model: Tiger<B>,
    embeds: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
    inputs: Fixture,
}

fn setup<B: Backend>(dev: &B::Device) -> Setup<B> {
    let model = tiger_tiny::<B>(dev);
    let inputs = Fixture::open(tiger_data("inputs.safetensors"));
    let (embeds, mask) = model.embed_history(
        inputs.int_tensor("history_sids", [4, 6, 4], dev),
        inputs.mask_tensor("history_item_mask", [4, 6], dev),
    );
    let targets = inputs.int_tensor("target_sids", [4, 4], dev);
    Setup {
        model,
        embeds,
        mask,
        targets,
        inputs,
    }
}

/// RASTP after the 2nd encoder block, keeping ⌊30/3⌋ = 10 tokens (`tiger-tiny-rastp`).
fn rastp() -> ReducerConfig {
    ReducerConfig {
        // The fixture's fixed padding: 6 item slots × 5 tokens.
        reference_len: 30,
        ..ReducerConfig::reference(ReducerKind::Rastp)
    }
}

#[track_caller]
fn assert_rel(what: &str, got: f32, want: f32, tol: f32) {
    assert!(
        ((got - want) / want).abs() < tol,
        "{what}: {got} vs {want} (relative tolerance {tol})"
    );
}

/// `tiger-tiny` in eval mode against the reference replica: encoder inputs, every encoder
/// block, encoder and decoder outputs, logits (1e-4) and loss (relative 1e-5).
pub fn tiger_forward_and_loss<B: Backend>(dev: &B::Device) {
    let s = setup::<B>(dev);
    let expected = Fixture::open(tiger_data("expected.safetensors"));
    assert_eq!(
        vals(s.mask.clone()),
        s.inputs.mask("encoder_mask", &[4, 30])
    );
    let want = expected.f32("encoder_inputs_embeds", &[4, 30, 16]);
    assert_close("encoder inputs", &vals(s.embeds.clone()), &want, 1e-6);

    let encoded = s.model.encode(s.embeds, s.mask);
    for (i, out) in encoded.block_outputs.iter().enumerate() {
        let want = expected.f32(&format!("encoder_block_out.{i}"), &[4, 30, 16]);
        assert_close(
            &format!("encoder block {i}"),
            &vals(out.clone()),
            &want,
            1e-4,
        );
    }
    let want = expected.f32("encoder_output", &[4, 30, 16]);
    assert_close("encoder output", &vals(encoded.hidden.clone()), &want, 1e-4);

    let states = s.model.decode(&encoded, s.targets.clone());
    let want = expected.f32("decoder_output", &[4, 4, 16]);
    assert_close("decoder output", &vals(states.clone()), &want, 1e-4);

    let logits = s.model.logits(states);
    let want = expected.f32("logits", &[4, 4, 8]);
    assert_close("logits", &vals(logits.clone()), &want, 1e-4);

    let loss = vals(s.model.loss(logits, s.targets))[0];
    assert_rel("loss", loss, expected.f32("loss", &[1])[0], 1e-5);
}

/// Compares gradients with the reference's, each within 1e-4 × max(1, its largest magnitude).
fn grad_checker(reference: &Fixture) -> impl Fn(&str, Vec<f32>, &[usize]) + '_ {
    move |name, got, shape| {
        let want = reference.f32(name, shape);
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert_close(&format!("grad of {name}"), &got, &want, 1e-4 * scale);
    }
}

/// `tiger-tiny`'s gradients of the loss against the reference's (embeddings, special tokens,
/// heads, attention, relative bias, norms, feed-forward; encoder and decoder).
pub fn tiger_gradients<A: AutodiffBackend>(dev: &A::Device) {
    let s = setup::<A>(dev);
    let model = &s.model;
    let encoded = model.encode(s.embeds, s.mask);
    let logits = model.logits(model.decode(&encoded, s.targets.clone()));
    let grads = model.loss(logits, s.targets).backward();
    let reference = Fixture::open(tiger_data("grads.safetensors"));
    let check = grad_checker(&reference);
    let g2 = |p: &Param<Tensor<A, 2>>| vals(p.grad(&grads).expect("a gradient"));
    let g1 = |p: &Param<Tensor<A, 1>>| vals(p.grad(&grads).expect("a gradient"));
    // PyTorch Linear weights are [out, in]; burn's are [in, out].
    let lin = |p: &Param<Tensor<A, 2>>| vals(p.grad(&grads).expect("a gradient").transpose());

    check(
        "item_sid_embedding_table.weight",
        g2(&model.embedding.weight),
        &[32, 16],
    );
    check("sep_token", g2(&model.sep), &[1, 16]);
    check("bos_token", g2(&model.bos), &[1, 16]);
    for h in 0..4 {
        check(
            &format!("decoder_mlp.{h}.weight"),
            lin(&model.heads[h].weight),
            &[8, 16],
        );
    }
    let e0 = &model.encoder[0];
    check(
        "encoder.block.0.layer.0.SelfAttention.q.weight",
        lin(&e0.attn.q.weight),
        &[16, 16],
    );
    check(
        "encoder.block.0.layer.0.SelfAttention.o.weight",
        lin(&e0.attn.o.weight),
        &[16, 16],
    );
    let bias = &e0.attn.relative_attention_bias.as_ref().unwrap().weight;
    check(
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        g2(bias),
        &[32, 2],
    );
    check(
        "encoder.block.0.layer.0.layer_norm.weight",
        g1(&e0.attn_norm.gamma),
        &[16],
    );
    let ff = &model.encoder[2].ff;
    check(
        "encoder.block.2.layer.1.mlp.model.0.weight",
        lin(&ff.lin1.weight),
        &[32, 16],
    );
    check(
        "encoder.block.2.layer.1.mlp.model.0.bias",
        g1(ff.lin1.bias.as_ref().unwrap()),
        &[32],
    );
    let d1 = &model.decoder[1];
    check(
        "decoder.block.1.layer.1.EncDecAttention.k.weight",
        lin(&d1.cross_attn.k.weight),
        &[16, 16],
    );
    check(
        "decoder.block.1.layer.2.mlp.model.5.weight",
        lin(&d1.ff.lin3.weight),
        &[16, 32],
    );
    let bias = &model.decoder[0]
        .self_attn
        .relative_attention_bias
        .as_ref()
        .unwrap()
        .weight;
    check(
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        g2(bias),
        &[32, 2],
    );
    check(
        "decoder.final_layer_norm.weight",
        g1(&model.decoder_norm.gamma),
        &[16],
    );
}

/// RASTP after layer 2 on `tiger-tiny` against the reference: kept positions, pruned mask, the
/// outputs on kept slots, decoder output and loss.
pub fn tiger_rastp_forward<B: Backend>(dev: &B::Device) {
    let s = setup::<B>(dev);
    let expected = Fixture::open(rastp_data("expected.safetensors"));
    let encoded = s.model.encode_with(s.embeds, s.mask, &rastp());
    let kept: Vec<i64> = encoded
        .kept
        .clone()
        .expect("RASTP keeps positions")
        .into_iter()
        .flatten()
        .map(|i| i as i64)
        .collect();
    assert_eq!(kept, expected.i64("kept_idx", &[4, 10]), "kept tokens");
    let mask = vals(encoded.mask.clone());
    assert_eq!(mask, expected.mask("pruned_mask", &[4, 10]), "pruned mask");
    // Rows where the pruned mask is 0 hold padding whose choice is unspecified: compare the rest.
    let masked_err = |got: Vec<f32>, want: Vec<f32>| {
        (0..40)
            .filter(|&t| mask[t] == 1.0)
            .map(|t| max_abs(&got[t * 16..(t + 1) * 16], &want[t * 16..(t + 1) * 16]))
            .fold(0.0, f32::max)
    };
    let out2 = expected.f32("encoder_block_out.2", &[4, 10, 16]);
    let err = masked_err(vals(encoded.block_outputs[2].clone()), out2);
    assert!(
        err < 1e-4,
        "encoder block 2 after pruning: max abs error {err}"
    );
    let enc = expected.f32("encoder_output", &[4, 10, 16]);
    let err = masked_err(vals(encoded.hidden.clone()), enc);
    assert!(err < 1e-4, "pruned encoder output: max abs error {err}");

    let states = s.model.decode(&encoded, s.targets.clone());
    let want = expected.f32("decoder_output", &[4, 4, 16]);
    assert_close("decoder output", &vals(states.clone()), &want, 1e-4);
    let logits = s.model.logits(states);
    let loss = vals(s.model.loss(logits, s.targets))[0];
    assert_rel("loss", loss, expected.f32("loss", &[1])[0], 1e-5);
}

/// Gradients through RASTP's gather against the reference's.
pub fn tiger_rastp_gradients<A: AutodiffBackend>(dev: &A::Device) {
    let s = setup::<A>(dev);
    let model = &s.model;
    let encoded = model.encode_with(s.embeds, s.mask, &rastp());
    let logits = model.logits(model.decode(&encoded, s.targets.clone()));
    let grads = model.loss(logits, s.targets).backward();
    let reference = Fixture::open(rastp_data("grads.safetensors"));
    let check = grad_checker(&reference);
    let lin = |p: &Param<Tensor<A, 2>>| vals(p.grad(&grads).expect("a gradient").transpose());
    check(
        "item_sid_embedding_table.weight",
        vals(model.embedding.weight.grad(&grads).expect("a gradient")),
        &[32, 16],
    );
    check(
        "sep_token",
        vals(model.sep.grad(&grads).expect("a gradient")),
        &[1, 16],
    );
    check(
        "encoder.block.0.layer.0.SelfAttention.q.weight",
        lin(&model.encoder[0].attn.q.weight),
        &[16, 16],
    );
    check(
        "encoder.block.2.layer.0.SelfAttention.v.weight",
        lin(&model.encoder[2].attn.v.weight),
        &[16, 16],
    );
    check(
        "decoder.block.0.layer.1.EncDecAttention.k.weight",
        lin(&model.decoder[0].cross_attn.k.weight),
        &[16, 16],
    );
    let bias = &model.encoder[0]
        .attn
        .relative_attention_bias
        .as_ref()
        .unwrap()
        .weight;
    check(
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        vals(bias.grad(&grads).expect("a gradient")),
        &[32, 2],
    );
}

fn check_beams(what: &str, beams: &Beams, expected: &Fixture) {
    let sids: Vec<i64> = beams
        .sids
        .iter()
        .flatten()
        .flatten()
        .map(|&t| i64::from(t))
        .collect();
    assert_eq!(
        sids,
        expected.i64("beam_sids", &[4, 3, 4]),
        "{what}: beam SIDs"
    );
    let probs: Vec<f32> = beams.probs.iter().flatten().copied().collect();
    let want = expected.f32("beam_probs", &[4, 3]);
    for (p, w) in probs.iter().zip(&want) {
        assert_rel(&format!("{what}: beam probability"), *p, *w, 1e-5);
    }
}

/// Beam search (width 3, KV cache) without and with RASTP against the reference's beams.
pub fn beams_match_the_reference<B: Backend>(dev: &B::Device) {
    let s = setup::<B>(dev);
    let plain = s.model.encode(s.embeds.clone(), s.mask.clone());
    check_beams(
        "no reducer",
        &beam_search(&s.model, &plain, 3),
        &Fixture::open(tiger_data("expected.safetensors")),
    );
    let pruned = s.model.encode_with(s.embeds, s.mask, &rastp());
    check_beams(
        "RASTP",
        &beam_search(&s.model, &pruned, 3),
        &Fixture::open(rastp_data("expected.safetensors")),
    );
}

fn load_t5<B: Backend>(name: &str, dev: &B::Device) -> (T5Config, T5Encoder<B>) {
    let dir = model_data().join(name);
    let cfg: T5Config = read_json(dir.join("config.json"));
    let enc = T5Encoder::<B>::from_safetensors(&dir.join("model.safetensors"), &cfg, dev)
        .unwrap_or_else(|e| panic!("{e:#}"));
    (cfg, enc)
}

/// The `t5-tiny` encoder against Hugging Face transformers: position bias (1e-6), every block
/// and the output (1e-4).
pub fn t5_tiny_encoder<B: Backend>(dev: &B::Device) {
    let (_, enc) = load_t5::<B>("t5-tiny", dev);
    let dir = model_data().join("t5-tiny");
    let inputs = Fixture::open(dir.join("inputs.safetensors"));
    let expected = Fixture::open(dir.join("expected.safetensors"));
    let out = enc.forward(
        inputs.int_tensor("input_ids", [3, 12], dev),
        inputs.mask_tensor("attention_mask", [3, 12], dev),
    );
    let bias = expected.f32("encoder_position_bias", &[1, 4, 12, 12]);
    assert_close("position bias", &vals(out.position_bias), &bias, 1e-6);
    let blocks = expected.f32("encoder_block_outputs", &[3, 3, 12, 32]);
    for (i, got) in out.block_outputs.into_iter().enumerate() {
        let want = &blocks[i * 3 * 12 * 32..(i + 1) * 3 * 12 * 32];
        assert_close(&format!("block {i}"), &vals(got), want, 1e-4);
    }
    let want = expected.f32("encoder_last_hidden_state", &[3, 12, 32]);
    assert_close("encoder output", &vals(out.last_hidden_state), &want, 1e-4);
}

/// The gated-GELU `t5-tiny-gated` encoder and its masked mean pooling against transformers.
pub fn t5_gated_encoder_and_pooling<B: Backend>(dev: &B::Device) {
    let (cfg, enc) = load_t5::<B>("t5-tiny-gated", dev);
    assert_eq!(cfg.feed_forward_proj, "gated-gelu");
    let expected = Fixture::open(model_data().join("t5-tiny-gated/expected.safetensors"));
    let mask_i = expected.i64("attention_mask", &[3, 12]);
    let out = enc.forward(
        expected.int_tensor("input_ids", [3, 12], dev),
        expected.mask_tensor("attention_mask", [3, 12], dev),
    );
    let h = vals(out.last_hidden_state);
    let want = expected.f32("encoder_last_hidden_state", &[3, 12, 32]);
    assert_close("encoder output", &h, &want, 1e-4);
    // Masked mean over real tokens.
    let pooled_want = expected.f32("mean_pooled", &[3, 32]);
    let mut pooled = vec![0f32; 3 * 32];
    for b in 0..3 {
        let n: i64 = mask_i[b * 12..(b + 1) * 12].iter().sum();
        for t in 0..12 {
            if mask_i[b * 12 + t] == 1 {
                for d in 0..32 {
                    pooled[b * 32 + d] += h[(b * 12 + t) * 32 + d] / n as f32;
                }
            }
        }
    }
    assert_close("mean pooled", &pooled, &pooled_want, 1e-4);
}

/// Losses of 40 steps of the trainer's Adam ([`trainer::optimizer`] with the default `[train]`:
/// coupled L2 as the reference; dropout on) of a freshly initialised [`small_tiger`] on a fixed,
/// learnable batch of 8 histories.
pub fn batch_losses<A: AutodiffBackend>(reducer: &ReducerConfig, dev: &A::Device) -> Vec<f32> {
    A::seed(dev, 1);
    let cfg = small_tiger();
    let mut model = Tiger::<A>::new(&cfg, dev);
    let mut optim = trainer::optimizer(&TrainConfig::default()).init::<A, Tiger<A>>();
    // 8 histories of 6 items; the target is a function of the last item, so it is learnable.
    let sids: Vec<i64> = (0..8 * 6 * 4)
        .map(|i| ((i * 7 + i / 5) % 16) as i64)
        .collect();
    let targets: Vec<i64> = (0..8)
        .flat_map(|b| (0..4).map(move |l| ((b * 3 + l) % 16) as i64))
        .collect();
    let sids = Tensor::<A, 3, Int>::from_data(TensorData::new(sids, [8, 6, 4]), dev);
    let targets = Tensor::<A, 2, Int>::from_data(TensorData::new(targets, [8, 4]), dev);
    let lens = [6, 5, 4, 3, 6, 2, 6, 1];
    let mask: Vec<f32> = lens
        .iter()
        .flat_map(|&n| (0..6).map(move |i| if i < n { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::<A, 2>::from_data(TensorData::new(mask, [8, 6]), dev);
    let mut out = Vec::new();
    for _ in 0..40 {
        let (embeds, m) = model.embed_history(sids.clone(), mask.clone());
        let encoded = model.encode_with(embeds, m, reducer);
        let loss = model.loss(
            model.logits(model.decode(&encoded, targets.clone())),
            targets.clone(),
        );
        out.push(loss.clone().into_scalar().elem::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    out
}

/// A freshly initialised model starts near the uniform loss and halves it on a fixed batch in 40
/// steps, without and with RASTP.
pub fn fresh_model_learns_a_batch<A: AutodiffBackend>(dev: &A::Device) {
    let uniform = 4.0 * (16f32).ln();
    for reducer in [
        ReducerConfig::none(),
        ReducerConfig::reference(ReducerKind::Rastp),
    ] {
        let l = batch_losses::<A>(&reducer, dev);
        assert!(
            (l[0] - uniform).abs() < 0.35 * uniform,
            "{:?}: initial loss {} vs uniform {uniform}",
            reducer.kind,
            l[0]
        );
        assert!(
            l[l.len() - 1] < 0.5 * l[0],
            "{:?}: loss {} -> {}",
            reducer.kind,
            l[0],
            l[l.len() - 1]
        );
        assert!(l.iter().all(|v| v.is_finite()), "{:?}: {l:?}", reducer.kind);
    }
}

/// Random histories for `tiger-tiny`: `lens[u]` real items in `slots` right-padded slots.
pub fn histories<B: Backend>(
    lens: &[usize],
    slots: usize,
    seed: u64,
    dev: &B::Device,
) -> (Tensor<B, 3, Int>, Tensor<B, 2>) {
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
    (
        Tensor::from_data(TensorData::new(sids, [b, slots, 4]), dev),
        Tensor::from_data(TensorData::new(mask, [b, slots]), dev),
    )
}

/// `n` distinct random 4-digit SIDs over 8 codes.
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
fn exhaustive<B: Backend>(
    m: &Tiger<B>,
    sids: &Tensor<B, 3, Int>,
    mask: &Tensor<B, 2>,
    cat: &[Vec<u32>],
) -> Vec<Vec<f32>> {
    let b = mask.dims()[0];
    let (embeds, emask) = m.embed_history(sids.clone(), mask.clone());
    let enc = m.encode(embeds, emask);
    let dev = mask.device();
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

/// Trie-constrained beam search: exact (equal to exhaustive scoring) when the width covers the
/// catalogue, a distribution over it when renormalised, and never an invalid SID.
pub fn constrained_search_is_exact_and_valid<B: Backend>(dev: &B::Device) {
    let m = tiger_tiny::<B>(dev);
    let (sids, mask) = histories::<B>(&[6, 3, 1, 5], 6, 1, dev);
    let (embeds, emask) = m.embed_history(sids.clone(), mask.clone());
    let enc = m.encode(embeds, emask);

    // A catalogue of 10 items: with width 10 every level keeps all its prefixes, so the search
    // is exact and must rank the items by their full-SID probability.
    let small = catalogue(10, 2);
    let trie = SidTrie::new(small.iter().map(Vec::as_slice));
    let constraint = |renormalize| {
        Some(Constraint {
            trie: &trie,
            renormalize,
        })
    };
    let beams = beam_search_with(&m, &enc, 10, constraint(false));
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
    let renormalised = beam_search_with(&m, &enc, 10, constraint(true));
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

/// Step-by-step decoding with the KV cache equals recomputing the whole prefix (1e-5).
pub fn cached_decoding_equals_full_recompute<B: Backend>(dev: &B::Device) {
    let m = tiger_tiny::<B>(dev);
    let (sids, mask) = histories::<B>(&[6, 2], 6, 4, dev);
    let (embeds, emask) = m.embed_history(sids, mask);
    let enc = m.encode(embeds, emask);
    let prefix =
        Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 5, 2, 7, 0, 3], [2, 3]), dev);
    let full = m.decode_prefix(enc.hidden.clone(), enc.mask.clone(), Some(prefix.clone()));
    let mut cache = m.start_decoding(enc.hidden.clone(), enc.mask.clone());
    for t in 0..4 {
        let digits = (t > 0).then(|| prefix.clone().slice([0..2, t - 1..t]).reshape([2]));
        let state = m.decode_step(&mut cache, m.step_input(t, digits, 2));
        let want = full.clone().slice([0..2, t..t + 1, 0..16]).reshape([2, 16]);
        let err = max_abs(&vals(state), &vals(want));
        assert!(err < 1e-5, "step {t}: max abs error {err}");
    }
}

/// A single query row (a cached decoding step; a beam search's first step, one beam per user) is
/// attended with broadcast products rather than a matrix product; it gives what the same row
/// gives inside a two-row product (1e-5), for key lengths that are and are not multiples of a
/// GPU's plane size. (On burn-cubecl a one-row product over 64 keys, then over RASTP's 50, once
/// crashed: the autotuner reused a vector-matrix kernel that needs a multiple of the plane size.)
pub fn single_query_rows_attend_any_key_length<B: Backend>(dev: &B::Device) {
    // The fixture model's first cross-attention (d_model 16, no position-bias table).
    let attn = tiger_tiny::<B>(dev).decoder[0].cross_attn.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut random = |shape: [usize; 3]| {
        let n = shape.iter().product::<usize>();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::<B, 3>::from_data(TensorData::new(v, shape), dev)
    };
    for keys in [64usize, 56, 50, 33, 1] {
        let users = 3;
        let x = random([users, 2, 16]);
        let (k, v) = attn.project_kv(random([users, keys, 16]));
        let bias = random([users, 1, keys]).reshape([users, 1, 1, keys]);
        let (two_rows, probs) = attn.attend(
            attn.project_q(x.clone()),
            k.clone(),
            v.clone(),
            bias.clone(),
        );
        let (one_row, one_probs) = attn.attend(
            attn.project_q(x.clone().slice([0..users, 0..1, 0..16])),
            k.clone(),
            v.clone(),
            bias.clone(),
        );
        let want = two_rows.slice([0..users, 0..1, 0..16]);
        let err = max_abs(&vals(one_row), &vals(want.clone()));
        assert!(
            err < 1e-5,
            "{keys} keys: single-row output differs by {err}"
        );
        let want_probs = probs.slice([0..users, 0..attn.n_heads, 0..1, 0..keys]);
        let err = max_abs(&vals(one_probs), &vals(want_probs));
        assert!(
            err < 1e-5,
            "{keys} keys: single-row probabilities differ by {err}"
        );
        let grouped = attn.attend_grouped(x.slice([0..users, 0..1, 0..16]), k, v, bias, 1);
        let err = max_abs(&vals(grouped), &vals(want));
        assert!(
            err < 1e-5,
            "{keys} keys: grouped (one beam) output differs by {err}"
        );
    }
}

/// Target SIDs of four users.
fn four_targets<B: Backend>(dev: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::from_data(
        TensorData::new(
            vec![1i64, 2, 3, 0, 4, 5, 6, 1, 7, 0, 1, 2, 3, 3, 3, 3],
            [4, 4],
        ),
        dev,
    )
}

/// Without a reducer, padding histories to 6 slots or to the longest (4) gives the same logits.
pub fn fixed_and_dynamic_padding_agree<B: Backend>(dev: &B::Device) {
    let m = tiger_tiny::<B>(dev);
    let (sids, mask) = histories::<B>(&[3, 1, 4, 2], 6, 5, dev);
    let dynamic_sids = sids.clone().slice([0..4, 0..4, 0..4]);
    let dynamic_mask = mask.clone().slice([0..4, 0..4]);
    let targets = four_targets::<B>(dev);
    let logits = |s: Tensor<B, 3, Int>, k: Tensor<B, 2>| {
        let (e, em) = m.embed_history(s, k);
        let enc = m.encode(e, em);
        vals(m.logits(m.decode(&enc, targets.clone())))
    };
    let err = max_abs(&logits(sids, mask), &logits(dynamic_sids, dynamic_mask));
    assert!(err < 1e-5, "fixed vs dynamic padding: max abs error {err}");
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
fn rastp_outputs<B: Backend>(
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

/// The `reference` keep basis under dynamic padding keeps what fixed padding keeps (short
/// histories: the same outputs), the `padded` basis prunes harder, and longer histories keep the
/// reference's count.
pub fn reference_basis_under_dynamic_padding<B: Backend>(dev: &B::Device) {
    // Six slots of 5 tokens = 30 positions under fixed padding; RASTP keeps ⌊30/3⌋ = 10. Under
    // dynamic padding to the longest history (2 items, 10 positions) the reference basis keeps
    // min(10, 10): every real token, as fixed padding does; the `padded` basis would keep 3.
    let m = tiger_tiny::<B>(dev);
    let targets = four_targets::<B>(dev);
    let (sids, mask) = histories::<B>(&[2, 1, 2, 1], 6, 11, dev);
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
    assert!(max_abs(&fixed.0, &dynamic.0) < 1e-5, "logits differ");
    assert!(max_abs(&fixed.1, &dynamic.1) < 1e-5, "losses differ");
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
    let (sids, mask) = histories::<B>(&[5, 1, 3, 4], 6, 12, dev);
    let (e, em) = m.embed_history(sids.slice([0..4, 0..5, 0..4]), mask.slice([0..4, 0..5]));
    let kept = m
        .encode_with(e, em, &rastp_spec(KeepBasis::Reference))
        .kept
        .expect("RASTP keeps positions");
    assert!(kept.iter().all(|row| row.len() == 10), "{kept:?}");
}

/// The gathered position bias of every position is the full bias; the `valid` keep basis keeps a
/// share of each row's real tokens under every position-bias option.
pub fn gathered_bias_and_valid_basis<B: Backend>(dev: &B::Device) {
    let m = tiger_tiny::<B>(dev);
    let attn = &m.encoder[0].attn;
    let full = vals(attn.compute_bias(7, 7, dev));
    let gathered = vals(attn.compute_bias_at(&[(0..7).collect()], dev));
    assert_eq!(full, gathered);

    let (sids, mask) = histories::<B>(&[6, 3], 6, 6, dev);
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
        let kept = enc.kept.expect("RASTP keeps positions");
        // 30 and 15 real positions → 10 and 5 kept.
        assert_eq!((kept[0].len(), kept[1].len()), (10, 5), "{bias:?}");
        assert!(kept[1].iter().all(|&p| p < 15), "{bias:?}: {kept:?}");
        assert_eq!(vals(enc.mask.sum_dim(1)), vec![10.0, 5.0], "{bias:?}");
    }
}

/// A burn record and a safetensors export written from `dev` load back (into a freshly
/// initialised model there) to the same outputs.
pub fn records_and_safetensors_round_trip<B: Backend>(dev: &B::Device) {
    let m = tiger_tiny::<B>(dev);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (sids, mask) = histories::<B>(&[5, 2], 6, 7, dev);
    let (embeds, emask) = m.embed_history(sids, mask);
    let out = |mm: &Tiger<B>| vals(mm.encode(embeds.clone(), emask.clone()).hidden);
    let want = out(&m);

    gr_model::export::save_record(&m, &dir.path().join("model")).unwrap();
    let fresh = Tiger::<B>::new(&tiger_tiny_config(), dev);
    assert!(max_abs(&out(&fresh), &want) > 1e-3, "a fresh model differs");
    let loaded = gr_model::export::load_record(fresh, &dir.path().join("model.mpk"), dev).unwrap();
    assert_eq!(out(&loaded), want, "after loading the record");

    let st = dir.path().join("model.safetensors");
    gr_model::export::export_safetensors(&m, &st).unwrap();
    let reread = Tiger::<B>::from_safetensors(&st, &tiger_tiny_config(), dev).unwrap();
    assert_eq!(
        out(&reread),
        want,
        "after re-reading the safetensors export"
    );
}

/// Defines one `#[test]` per conformance check for backend `$b` (with autodiff backend `$a`) on
/// the device `$dev` (an expression evaluated by every test).
#[macro_export]
macro_rules! conformance_tests {
    ($b:ty, $a:ty, $dev:expr) => {
        #[test]
        fn tiger_forward_and_loss() {
            $crate::conformance::tiger_forward_and_loss::<$b>(&$dev);
        }
        #[test]
        fn tiger_gradients() {
            $crate::conformance::tiger_gradients::<$a>(&$dev);
        }
        #[test]
        fn tiger_rastp_forward() {
            $crate::conformance::tiger_rastp_forward::<$b>(&$dev);
        }
        #[test]
        fn tiger_rastp_gradients() {
            $crate::conformance::tiger_rastp_gradients::<$a>(&$dev);
        }
        #[test]
        fn beams_match_the_reference() {
            $crate::conformance::beams_match_the_reference::<$b>(&$dev);
        }
        #[test]
        fn t5_tiny_encoder() {
            $crate::conformance::t5_tiny_encoder::<$b>(&$dev);
        }
        #[test]
        fn t5_gated_encoder_and_pooling() {
            $crate::conformance::t5_gated_encoder_and_pooling::<$b>(&$dev);
        }
        #[test]
        fn fresh_model_learns_a_batch() {
            $crate::conformance::fresh_model_learns_a_batch::<$a>(&$dev);
        }
        #[test]
        fn constrained_search_is_exact_and_valid() {
            $crate::conformance::constrained_search_is_exact_and_valid::<$b>(&$dev);
        }
        #[test]
        fn cached_decoding_equals_full_recompute() {
            $crate::conformance::cached_decoding_equals_full_recompute::<$b>(&$dev);
        }
        #[test]
        fn single_query_rows_attend_any_key_length() {
            $crate::conformance::single_query_rows_attend_any_key_length::<$b>(&$dev);
        }
        #[test]
        fn fixed_and_dynamic_padding_agree() {
            $crate::conformance::fixed_and_dynamic_padding_agree::<$b>(&$dev);
        }
        #[test]
        fn reference_basis_under_dynamic_padding() {
            $crate::conformance::reference_basis_under_dynamic_padding::<$b>(&$dev);
        }
        #[test]
        fn gathered_bias_and_valid_basis() {
            $crate::conformance::gathered_bias_and_valid_basis::<$b>(&$dev);
        }
        #[test]
        fn records_and_safetensors_round_trip() {
            $crate::conformance::records_and_safetensors_round_trip::<$b>(&$dev);
        }
    };
}
