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
/// micro-batch, split evenly when there are several devices (fixed padding; with dynamic
/// padding [`chunks`] cuts cost-balanced chunks instead).
pub fn chunk_size(total: usize, chunk_windows: usize, devices: usize) -> usize {
    match (chunk_windows, devices) {
        (0, 0 | 1) => total,
        (0, n) => total.div_ceil(n),
        (c, _) => c,
    }
}

/// Splits a micro-batch into chunks of [`chunk_size`] windows. With dynamic padding (`dynamic`
/// holds the cost model) and more than one chunk, the windows are sorted by history length first
/// so that chunks pad little (the gradient is the same sum), and with `chunk_windows` 0 on
/// several devices they are cut into one [`balanced_chunks`] chunk per device.
pub fn chunks<'a>(
    examples: &'a mut [Example],
    chunk_windows: usize,
    devices: usize,
    dynamic: Option<&PaddedCost>,
) -> Chunks<'a> {
    if let Some(cost) = dynamic
        && (chunk_windows > 0 || devices > 1)
    {
        examples.sort_by_key(|e| e.history.len());
        if chunk_windows == 0 {
            return balanced_chunks(examples, devices, cost);
        }
    }
    let chunk = chunk_size(examples.len(), chunk_windows, devices);
    examples.chunks(chunk.max(1)).collect()
}

/// How long a worker takes for a chunk of dynamically padded windows, up to a constant: per
/// window and layer, attention grows with the square of the padded tokens and the linear
/// layers with the tokens.
#[derive(Debug, Clone, Copy)]
pub struct PaddedCost {
    /// Encoder tokens per history item (the SID digits and the SEP token).
    pub tokens_per_item: f64,
    /// Tokens at which a window's linear layers cost as much as its attention:
    /// `(4·d_model·inner + 2·d_model·d_ff) / (2·inner)` multiply-adds, `inner = heads·d_kv`.
    pub linear_tokens: f64,
}

impl PaddedCost {
    /// The cost model of `model`'s shapes with `levels` SID digits per item (the de-duplication
    /// digit included).
    pub fn of(model: &artifacts::model_config::ModelConfig, levels: usize) -> PaddedCost {
        let inner = (model.num_heads * model.d_kv).max(1) as f64;
        let (d, ff) = (model.d_model as f64, model.d_ff as f64);
        PaddedCost {
            tokens_per_item: (levels + 1) as f64,
            linear_tokens: (4.0 * d * inner + 2.0 * d * ff) / (2.0 * inner),
        }
    }

    /// Cost of `count` windows padded to `items` history items.
    pub fn chunk(&self, count: usize, items: usize) -> f64 {
        let tokens = items.max(1) as f64 * self.tokens_per_item;
        count as f64 * tokens * (tokens + self.linear_tokens)
    }
}

/// Splits `examples` (sorted by history length, dynamic padding) into at most `parts`
/// consecutive chunks, one per worker, whose largest [`PaddedCost`] is as small as it can be: a
/// worker with the longest histories gets fewer windows, so that the workers finish together
/// while every chunk pads little. The summed gradient does not depend on the split.
pub fn balanced_chunks<'a>(examples: &'a [Example], parts: usize, cost: &PaddedCost) -> Chunks<'a> {
    let n = examples.len();
    let parts = parts.clamp(1, n.max(1));
    if parts == 1 || n == 0 {
        return vec![examples];
    }
    // group(s, e): cost of examples[s..e] padded to its longest history.
    let group = |s: usize, e: usize| {
        let longest = examples[s..e].iter().map(|x| x.history.len()).max();
        cost.chunk(e - s, longest.unwrap_or(0))
    };
    // best[p][e]: the smallest largest cost of examples[..e] in p + 1 non-empty chunks, and
    // where its last chunk starts.
    let mut best = vec![vec![(f64::INFINITY, 0usize); n + 1]; parts];
    for (e, first) in best[0].iter_mut().enumerate().skip(1) {
        *first = (group(0, e), 0);
    }
    for p in 1..parts {
        for e in p + 1..=n {
            for s in p..e {
                let value = best[p - 1][s].0.max(group(s, e));
                if value < best[p][e].0 {
                    best[p][e] = (value, s);
                }
            }
        }
    }
    let mut bounds = vec![n];
    let mut e = n;
    for p in (1..parts).rev() {
        e = best[p][e].1;
        bounds.push(e);
    }
    bounds.push(0);
    bounds.reverse();
    bounds.windows(2).map(|w| &examples[w[0]..w[1]]).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn example(len: usize) -> Example {
        Example {
            history: vec![1; len],
            target: 1,
        }
    }

    #[test]
    fn balanced_chunks_give_the_long_histories_fewer_windows() {
        let cost = PaddedCost {
            tokens_per_item: 5.0,
            linear_tokens: 64.0,
        };
        // 48 short windows and 16 long ones, sorted.
        let mut lens = vec![4; 48];
        lens.extend(vec![29; 16]);
        let examples: Vec<Example> = lens.iter().map(|&l| example(l)).collect();
        let parts = balanced_chunks(&examples, 2, &cost);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), 64);
        // Every window once, in order.
        let joined: Vec<usize> = parts
            .iter()
            .flat_map(|p| p.iter().map(|e| e.history.len()))
            .collect();
        assert_eq!(joined, lens);
        let costs: Vec<f64> = parts
            .iter()
            .map(|p| cost.chunk(p.len(), p.iter().map(|e| e.history.len()).max().unwrap()))
            .collect();
        // The split beats the even one (32 + 32: the second half pads 16 short windows to 29).
        let even = cost.chunk(32, 29);
        assert!(costs[0].max(costs[1]) < even, "{costs:?} vs {even}");
        assert!(
            parts[1].len() < 32,
            "the long chunk holds {} windows",
            parts[1].len()
        );
    }

    #[test]
    fn balanced_chunks_of_equal_lengths_split_evenly_and_small_batches_are_kept_whole() {
        let cost = PaddedCost {
            tokens_per_item: 5.0,
            linear_tokens: 64.0,
        };
        let examples: Vec<Example> = (0..10).map(|_| example(7)).collect();
        let sizes: Vec<usize> = balanced_chunks(&examples, 2, &cost)
            .iter()
            .map(|p| p.len())
            .collect();
        assert_eq!(sizes, vec![5, 5]);
        let one = &examples[..1];
        assert_eq!(balanced_chunks(one, 2, &cost).len(), 1);
        assert_eq!(balanced_chunks(&examples[..0], 3, &cost).len(), 1);
        assert_eq!(balanced_chunks(&examples, 3, &cost).len(), 3);
    }
}
