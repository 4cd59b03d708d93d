//! One micro-batch's gradient: the windows split into chunks (memory bound, or one per device),
//! each chunk's loss scaled so that the summed gradient is the micro-batch mean divided by the
//! accumulation count (as Lightning), forward/backward per chunk.

use artifacts::config::ReducerConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, ElementConversion, Tensor};
use evaluator::Catalogue;
use gr_model::tiger::Tiger;

use crate::windows::Example;

/// A micro-batch's windows in chunks.
pub type Chunks<'a> = Vec<&'a [Example]>;

/// Windows per chunk of a micro-batch of `total` windows: `chunk_windows`, or with 0 the whole
/// micro-batch, split evenly when there are several devices.
pub fn chunk_size(total: usize, chunk_windows: usize, devices: usize) -> usize {
    match (chunk_windows, devices) {
        (0, 0 | 1) => total,
        (0, n) => total.div_ceil(n),
        (c, _) => c,
    }
}

/// Splits `examples` into chunks of [`chunk_size`] windows.
pub fn chunks(examples: &[Example], chunk_windows: usize, devices: usize) -> Chunks<'_> {
    let chunk = chunk_size(examples.len(), chunk_windows, devices);
    examples.chunks(chunk.max(1)).collect()
}

/// The loss of one chunk, scaled for accumulation.
pub struct ChunkLoss<'a> {
    /// Item SIDs and the decoding trie.
    pub catalogue: &'a Catalogue,
    /// Restrict each level's loss to the valid digits (`train.loss = "valid"`).
    pub valid_loss: bool,
    /// Fixed padding slots or dynamic padding.
    pub slots: Option<usize>,
    /// The reducer during training.
    pub reducer: &'a ReducerConfig,
    /// Windows in the whole micro-batch.
    pub micro_batch: usize,
    /// Micro-batches per optimiser step.
    pub grad_accumulation: u64,
}

impl ChunkLoss<'_> {
    /// The chunk's scaled loss tensor and its contribution to the micro-batch's mean loss.
    pub fn compute<B: AutodiffBackend>(
        &self,
        model: &Tiger<B>,
        part: &[Example],
        device: &Device<B>,
    ) -> (Tensor<B, 1>, f64) {
        let histories: Vec<&[u32]> = part.iter().map(|e| e.history.as_slice()).collect();
        let targets: Vec<u32> = part.iter().map(|e| e.target).collect();
        let batch =
            self.catalogue
                .loss_batch(&histories, &targets, self.slots, self.valid_loss, device);
        let scale = 1.0 / self.micro_batch as f64 / self.grad_accumulation as f64;
        let loss = model
            .batch_loss(batch, self.reducer)
            .mul_scalar(part.len() as f64 * scale);
        let value =
            f64::from(loss.clone().into_scalar().elem::<f32>()) * self.grad_accumulation as f64;
        (loss, value)
    }
}

/// Forward/backward of every chunk on one device, gradients summed into `accumulator`. Returns
/// each chunk's loss value; stops at the first non-finite one.
pub fn accumulate_serial<B: AutodiffBackend>(
    model: &Tiger<B>,
    parts: &Chunks<'_>,
    loss: &ChunkLoss<'_>,
    device: &Device<B>,
    accumulator: &mut GradientsAccumulator<Tiger<B>>,
) -> Vec<f64> {
    let mut values = vec![0.0; parts.len()];
    for (i, part) in parts.iter().enumerate() {
        let (l, value) = loss.compute(model, part, device);
        values[i] = value;
        if !value.is_finite() {
            break;
        }
        let grads = GradientsParams::from_grads(l.backward(), model);
        accumulator.accumulate(model, grads);
    }
    values
}
