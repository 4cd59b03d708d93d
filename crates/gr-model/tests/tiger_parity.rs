//! The TIGER model against the reference replica on the `tiger-tiny` fixture (eval mode):
//! forward pass, loss and gradients.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use gr_model::tiger::{Encoded, Tiger, TigerConfig};
use test_support::{Fixture, assert_close, data, max_abs, read_json, values as vec};

type B = Flex;

fn data(f: &str) -> PathBuf {
    data!("tiger-tiny").join(f)
}

/// The fixture's model, its encoder inputs (embeddings and mask) and target digits.
struct Setup<Bk: Backend> {
    model: Tiger<Bk>,
    embeds: Tensor<Bk, 3>,
    mask: Tensor<Bk, 2>,
    targets: Tensor<Bk, 2, Int>,
    inputs: Fixture,
}

fn setup<Bk: Backend>() -> Setup<Bk> {
    let cfg: TigerConfig = read_json(data("config.json"));
    let dev = Default::default();
    let model = Tiger::<Bk>::from_safetensors(&data("model.safetensors"), &cfg, &dev).unwrap();
    let inputs = Fixture::open(data("inputs.safetensors"));
    let (embeds, mask) = model.embed_history(
        inputs.int_tensor("history_sids", [4, 6, 4], &dev),
        inputs.mask_tensor("history_item_mask", [4, 6], &dev),
    );
    let targets = inputs.int_tensor("target_sids", [4, 4], &dev);
    Setup {
        model,
        embeds,
        mask,
        targets,
        inputs,
    }
}

#[test]
fn tiger_tiny_forward_and_loss_match_the_reference() {
    let s = setup::<B>();
    let expected = Fixture::open(data("expected.safetensors"));
    assert_eq!(vec(s.mask.clone()), s.inputs.mask("encoder_mask", &[4, 30]));
    let want = expected.f32("encoder_inputs_embeds", &[4, 30, 16]);
    assert_close("encoder inputs", &vec(s.embeds.clone()), &want, 1e-6);

    let encoded: Encoded<B> = s.model.encode(s.embeds, s.mask);
    for (i, out) in encoded.block_outputs.iter().enumerate() {
        let want = expected.f32(&format!("encoder_block_out.{i}"), &[4, 30, 16]);
        assert_close(
            &format!("encoder block {i}"),
            &vec(out.clone()),
            &want,
            1e-4,
        );
    }
    let want = expected.f32("encoder_output", &[4, 30, 16]);
    assert_close("encoder output", &vec(encoded.hidden.clone()), &want, 1e-4);

    let states = s.model.decode(&encoded, s.targets.clone());
    let want = expected.f32("decoder_output", &[4, 4, 16]);
    assert_close("decoder output", &vec(states.clone()), &want, 1e-4);

    let logits = s.model.logits(states);
    let want = expected.f32("logits", &[4, 4, 8]);
    assert_close("logits", &vec(logits.clone()), &want, 1e-4);

    let loss = vec(s.model.loss(logits, s.targets))[0];
    let want = expected.f32("loss", &[1])[0];
    assert!(((loss - want) / want).abs() < 1e-5, "loss {loss} vs {want}");
}

#[test]
fn tiger_tiny_gradients_match_the_reference() {
    type A = Autodiff<Flex>;
    let s = setup::<A>();
    let model = &s.model;
    let encoded = model.encode(s.embeds, s.mask);
    let logits = model.logits(model.decode(&encoded, s.targets.clone()));
    let grads = model.loss(logits, s.targets).backward();
    let reference = Fixture::open(data("grads.safetensors"));

    let check = |name: &str, got: Vec<f32>, shape: &[usize]| {
        let want = reference.f32(name, shape);
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        assert_close(&format!("grad of {name}"), &got, &want, 1e-4 * scale);
    };
    let g2 = |p: &Param<Tensor<A, 2>>| vec(p.grad(&grads).unwrap());
    let g1 = |p: &Param<Tensor<A, 1>>| vec(p.grad(&grads).unwrap());
    // PyTorch Linear weights are [out, in]; burn's are [in, out].
    let lin = |p: &Param<Tensor<A, 2>>| vec(p.grad(&grads).unwrap().transpose());

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

/// RASTP after the 2nd encoder block, keeping ⌊30/3⌋ = 10 tokens (`tiger-tiny-rastp`).
fn rastp() -> artifacts::config::ReducerConfig {
    artifacts::config::ReducerConfig {
        // The fixture's fixed padding: 6 item slots × 5 tokens.
        reference_len: 30,
        ..artifacts::config::ReducerConfig::reference(artifacts::config::ReducerKind::Rastp)
    }
}

fn rastp_data(f: &str) -> PathBuf {
    data!("tiger-tiny-rastp").join(f)
}

#[test]
fn tiger_tiny_rastp_matches_the_reference() {
    let s = setup::<B>();
    let expected = Fixture::open(rastp_data("expected.safetensors"));
    let encoded = s.model.encode_with(s.embeds, s.mask, &rastp());
    let kept: Vec<i64> = encoded
        .kept
        .clone()
        .unwrap()
        .into_iter()
        .flatten()
        .map(|i| i as i64)
        .collect();
    assert_eq!(kept, expected.i64("kept_idx", &[4, 10]));
    let mask = vec(encoded.mask.clone());
    assert_eq!(mask, expected.mask("pruned_mask", &[4, 10]));
    // Rows where the pruned mask is 0 hold padding whose choice is unspecified: compare the rest.
    let masked_err = |got: Vec<f32>, want: Vec<f32>| {
        (0..40)
            .filter(|&t| mask[t] == 1.0)
            .map(|t| max_abs(&got[t * 16..(t + 1) * 16], &want[t * 16..(t + 1) * 16]))
            .fold(0.0, f32::max)
    };
    let out2 = expected.f32("encoder_block_out.2", &[4, 10, 16]);
    assert!(masked_err(vec(encoded.block_outputs[2].clone()), out2) < 1e-4);
    let enc = expected.f32("encoder_output", &[4, 10, 16]);
    assert!(masked_err(vec(encoded.hidden.clone()), enc) < 1e-4);

    let states = s.model.decode(&encoded, s.targets.clone());
    let want = expected.f32("decoder_output", &[4, 4, 16]);
    assert_close("decoder output", &vec(states.clone()), &want, 1e-4);
    let logits = s.model.logits(states);
    let loss = vec(s.model.loss(logits, s.targets))[0];
    let want = expected.f32("loss", &[1])[0];
    assert!(((loss - want) / want).abs() < 1e-5, "loss {loss} vs {want}");
}

#[test]
fn tiger_tiny_rastp_gradients_match_the_reference() {
    type A = Autodiff<Flex>;
    let s = setup::<A>();
    let model = &s.model;
    let encoded = model.encode_with(s.embeds, s.mask, &rastp());
    let logits = model.logits(model.decode(&encoded, s.targets.clone()));
    let grads = model.loss(logits, s.targets).backward();
    let reference = Fixture::open(rastp_data("grads.safetensors"));
    let check = |name: &str, got: Vec<f32>, shape: &[usize]| {
        let want = reference.f32(name, shape);
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert_close(&format!("grad of {name}"), &got, &want, 1e-4 * scale);
    };
    let lin = |p: &Param<Tensor<A, 2>>| vec(p.grad(&grads).unwrap().transpose());
    check(
        "item_sid_embedding_table.weight",
        vec(model.embedding.weight.grad(&grads).unwrap()),
        &[32, 16],
    );
    check("sep_token", vec(model.sep.grad(&grads).unwrap()), &[1, 16]);
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
        vec(bias.grad(&grads).unwrap()),
        &[32, 2],
    );
}

fn check_beams(beams: &gr_model::generate::Beams, expected: &Fixture) {
    let sids: Vec<i64> = beams
        .sids
        .iter()
        .flatten()
        .flatten()
        .map(|&t| i64::from(t))
        .collect();
    assert_eq!(sids, expected.i64("beam_sids", &[4, 3, 4]));
    let probs: Vec<f32> = beams.probs.iter().flatten().copied().collect();
    let want = expected.f32("beam_probs", &[4, 3]);
    for (p, w) in probs.iter().zip(&want) {
        assert!(((p - w) / w).abs() < 1e-5, "beam prob {p} vs {w}");
    }
}

#[test]
fn beam_search_matches_the_reference() {
    let s = setup::<B>();
    let plain = s.model.encode(s.embeds.clone(), s.mask.clone());
    check_beams(
        &gr_model::generate::beam_search(&s.model, &plain, 3),
        &Fixture::open(data("expected.safetensors")),
    );
    let pruned = s.model.encode_with(s.embeds, s.mask, &rastp());
    check_beams(
        &gr_model::generate::beam_search(&s.model, &pruned, 3),
        &Fixture::open(rastp_data("expected.safetensors")),
    );
}
