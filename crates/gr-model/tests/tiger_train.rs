//! A freshly initialised TIGER model starts at the uniform loss and learns a fixed batch, with
//! and without RASTP (dropout on, Adam with coupled L2 as the reference).

use artifacts::config::{ReducerConfig, ReducerKind};
use burn::backend::{Autodiff, Flex};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use gr_model::tiger::Tiger;
use test_support::small_tiger;

type A = Autodiff<Flex>;

fn losses(reducer: ReducerConfig) -> Vec<f32> {
    let dev = Default::default();
    A::seed(&dev, 1);
    let cfg = small_tiger();
    let mut model = Tiger::<A>::new(&cfg, &dev);
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
        .init::<A, Tiger<A>>();
    // 8 histories of 6 items; the target is a function of the last item, so it is learnable.
    let sids: Vec<i64> = (0..8 * 6 * 4)
        .map(|i| ((i * 7 + i / 5) % 16) as i64)
        .collect();
    let targets: Vec<i64> = (0..8)
        .flat_map(|b| (0..4).map(move |l| ((b * 3 + l) % 16) as i64))
        .collect();
    let sids = Tensor::<A, 3, Int>::from_data(TensorData::new(sids, [8, 6, 4]), &dev);
    let targets = Tensor::<A, 2, Int>::from_data(TensorData::new(targets, [8, 4]), &dev);
    let lens = [6, 5, 4, 3, 6, 2, 6, 1];
    let mask: Vec<f32> = lens
        .iter()
        .flat_map(|&n| (0..6).map(move |i| if i < n { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::<A, 2>::from_data(TensorData::new(mask, [8, 6]), &dev);
    let mut out = Vec::new();
    for _ in 0..40 {
        let (embeds, m) = model.embed_history(sids.clone(), mask.clone());
        let encoded = model.encode_with(embeds, m, &reducer);
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

#[test]
fn fresh_model_learns_a_batch() {
    let uniform = 4.0 * (16f32).ln();
    for reducer in [
        ReducerConfig::none(),
        ReducerConfig::reference(ReducerKind::Rastp),
    ] {
        let l = losses(reducer.clone());
        assert!(
            (l[0] - uniform).abs() < 0.35 * uniform,
            "initial loss {} vs uniform {uniform}",
            l[0]
        );
        assert!(
            l[l.len() - 1] < 0.5 * l[0],
            "{reducer:?}: loss {} -> {}",
            l[0],
            l[l.len() - 1]
        );
        assert!(l.iter().all(|v| v.is_finite()));
    }
}
