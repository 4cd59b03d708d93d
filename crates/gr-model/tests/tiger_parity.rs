//! The TIGER model against the reference replica on the `tiger-tiny` fixture (eval mode).

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use gr_model::tiger::{Tiger, TigerConfig};
use gr_model::weights::Weights;

type B = Flex;

fn data(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tiger-tiny")
        .join(f)
}

fn vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn tiger_tiny_forward_and_loss_match_the_reference() {
    let cfg: TigerConfig =
        serde_json::from_str(&std::fs::read_to_string(data("config.json")).unwrap()).unwrap();
    let dev = Default::default();
    let model = Tiger::<B>::load(
        &Weights::open(&data("model.safetensors")).unwrap(),
        &cfg,
        &dev,
    )
    .unwrap();
    let inputs = Weights::open(&data("inputs.safetensors")).unwrap();
    let expected = Weights::open(&data("expected.safetensors")).unwrap();

    let sids = inputs.ints("history_sids", &[4, 6, 4]).unwrap();
    let item_mask: Vec<f32> = inputs
        .ints("history_item_mask", &[4, 6])
        .unwrap()
        .iter()
        .map(|&m| m as f32)
        .collect();
    let (embeds, mask) = model.embed_history(
        Tensor::<B, 3, Int>::from_data(TensorData::new(sids, [4, 6, 4]), &dev),
        Tensor::from_data(TensorData::new(item_mask, [4, 6]), &dev),
    );
    let want_mask: Vec<f32> = inputs
        .ints("encoder_mask", &[4, 30])
        .unwrap()
        .iter()
        .map(|&m| m as f32)
        .collect();
    assert_eq!(vec(mask.clone()), want_mask);
    let want = expected
        .values("encoder_inputs_embeds", &[4, 30, 16])
        .unwrap();
    assert!(max_abs(&vec(embeds.clone()), &want) < 1e-6);

    let encoded = model.encode(embeds, mask);
    for (i, out) in encoded.block_outputs.iter().enumerate() {
        let want = expected
            .values(&format!("encoder_block_out.{i}"), &[4, 30, 16])
            .unwrap();
        let err = max_abs(&vec(out.clone()), &want);
        assert!(err < 1e-4, "encoder block {i}: {err}");
    }
    let want = expected.values("encoder_output", &[4, 30, 16]).unwrap();
    assert!(max_abs(&vec(encoded.hidden.clone()), &want) < 1e-4);

    let targets = inputs.ints("target_sids", &[4, 4]).unwrap();
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [4, 4]), &dev);
    let states = model.decode(&encoded, targets.clone());
    let want = expected.values("decoder_output", &[4, 4, 16]).unwrap();
    let err = max_abs(&vec(states.clone()), &want);
    assert!(err < 1e-4, "decoder output: {err}");

    let logits = model.logits(states);
    let want = expected.values("logits", &[4, 4, 8]).unwrap();
    assert!(max_abs(&vec(logits.clone()), &want) < 1e-4);

    let loss = vec(model.loss(logits, targets))[0];
    let want = expected.values("loss", &[1]).unwrap()[0];
    assert!(((loss - want) / want).abs() < 1e-5, "loss {loss} vs {want}");
}

#[test]
fn tiger_tiny_gradients_match_the_reference() {
    use burn::backend::Autodiff;
    type A = Autodiff<Flex>;
    let cfg: TigerConfig =
        serde_json::from_str(&std::fs::read_to_string(data("config.json")).unwrap()).unwrap();
    let dev = Default::default();
    let model = Tiger::<A>::load(
        &Weights::open(&data("model.safetensors")).unwrap(),
        &cfg,
        &dev,
    )
    .unwrap();
    let inputs = Weights::open(&data("inputs.safetensors")).unwrap();
    let grads_ref = Weights::open(&data("grads.safetensors")).unwrap();
    let sids = inputs.ints("history_sids", &[4, 6, 4]).unwrap();
    let item_mask: Vec<f32> = inputs
        .ints("history_item_mask", &[4, 6])
        .unwrap()
        .iter()
        .map(|&m| m as f32)
        .collect();
    let (embeds, mask) = model.embed_history(
        Tensor::<A, 3, Int>::from_data(TensorData::new(sids, [4, 6, 4]), &dev),
        Tensor::from_data(TensorData::new(item_mask, [4, 6]), &dev),
    );
    let targets = Tensor::<A, 2, Int>::from_data(
        TensorData::new(inputs.ints("target_sids", &[4, 4]).unwrap(), [4, 4]),
        &dev,
    );
    let encoded = model.encode(embeds, mask);
    let logits = model.logits(model.decode(&encoded, targets.clone()));
    let grads = model.loss(logits, targets).backward();

    let check = |name: &str, got: Vec<f32>, shape: &[usize]| {
        let want = grads_ref.values(name, shape).unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        let err = max_abs(&got, &want);
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "grad of {name}: max abs error {err} (scale {scale})"
        );
    };
    let g2 = |p: &burn::module::Param<Tensor<A, 2>>| {
        p.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap()
    };
    let g1 = |p: &burn::module::Param<Tensor<A, 1>>| {
        p.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap()
    };
    // PyTorch Linear weights are [out, in]; burn's are [in, out].
    let lin = |p: &burn::module::Param<Tensor<A, 2>>| {
        p.grad(&grads)
            .unwrap()
            .transpose()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };

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
    check(
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        g2(&e0.attn.relative_attention_bias.as_ref().unwrap().weight),
        &[32, 2],
    );
    check(
        "encoder.block.0.layer.0.layer_norm.weight",
        g1(&e0.attn_norm.gamma),
        &[16],
    );
    check(
        "encoder.block.2.layer.1.mlp.model.0.weight",
        lin(&model.encoder[2].ff.lin1.weight),
        &[32, 16],
    );
    check(
        "encoder.block.2.layer.1.mlp.model.0.bias",
        g1(model.encoder[2].ff.lin1.bias.as_ref().unwrap()),
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
    check(
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        g2(&model.decoder[0]
            .self_attn
            .relative_attention_bias
            .as_ref()
            .unwrap()
            .weight),
        &[32, 2],
    );
    check(
        "decoder.final_layer_norm.weight",
        g1(&model.decoder_norm.gamma),
        &[16],
    );
}
