//! Data parallelism over several devices, burn-train's `MultiDevice` / `OptimMainDevice`
//! scheme rebuilt for this loop: chunk `i` of a micro-batch goes to device `i mod n`; each
//! device sums its chunks' gradients on its own replica (a fork of the main model); the sums
//! move to the first device, where the optimiser runs.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Tensor};
use gr_model::tiger::Tiger;

use crate::step::{ChunkLoss, Chunks};

/// Forward/backward of every chunk on `devices` (the first holds `model`), gradients summed into
/// `accumulator` on the first device. Returns each chunk's loss value in chunk order; a device
/// stops at its first non-finite loss (its later chunks keep the value 0).
pub fn accumulate_parallel<B: AutodiffBackend>(
    model: &Tiger<B>,
    parts: &Chunks<'_>,
    loss: &ChunkLoss<'_>,
    devices: &[Device<B>],
    seed: u64,
    accumulator: &mut GradientsAccumulator<Tiger<B>>,
) -> Vec<f64> {
    let main = &devices[0];
    // The workers run as tasks of rayon's pool, the one the CPU backend's matrix products use:
    // a product's parallel parts then run on the worker's own thread or a free one, instead of
    // two OS threads queueing on one pool (measured: no gain at all with OS threads).
    let mut slots: Vec<Option<WorkerResult>> = (0..devices.len()).map(|_| None).collect();
    rayon::scope(|scope| {
        for (d, (dev, slot)) in devices.iter().zip(slots.iter_mut()).enumerate() {
            let replica = model.clone().fork(dev);
            let mine: Vec<(usize, _)> = parts
                .iter()
                .enumerate()
                .filter(|(i, _)| i % devices.len() == d)
                .map(|(i, p)| (i, *p))
                .collect();
            let worker_seed = seed ^ d as u64;
            scope.spawn(move |_| {
                B::seed(dev, worker_seed);
                let mut acc = GradientsAccumulator::<Tiger<B>>::new();
                let mut values = Vec::new();
                for (i, part) in mine {
                    let (l, value) = loss.compute(&replica, part, dev);
                    values.push((i, value));
                    if !value.is_finite() {
                        break;
                    }
                    let grads = GradientsParams::from_grads(l.backward(), &replica);
                    acc.accumulate(&replica, grads);
                }
                *slot = Some((values, acc.grads()));
            });
        }
    });
    let results = slots
        .into_iter()
        .map(|r| r.expect("every training worker reports"));
    let mut values = vec![0.0; parts.len()];
    for (chunk_values, grads) in results {
        for (i, v) in chunk_values {
            values[i] = v;
        }
        accumulator.accumulate(model, grads.to_device(main, model));
    }
    values
}

/// One worker's chunk losses (with their chunk indices) and summed gradients.
type WorkerResult = (Vec<(usize, f64)>, GradientsParams);

/// Gives every lazily initialised parameter of `model` its value now. burn initialises
/// parameters at first use, and a clone of an uninitialised parameter draws its own values, so
/// replicas forked before this would differ from the main model.
pub fn materialise<B: AutodiffBackend>(model: &Tiger<B>) {
    model.visit(&mut Materialise);
}

struct Materialise;

impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}
