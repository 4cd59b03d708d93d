//! Attention as one host kernel on the CPU backend (`Flex`, with and without `Autodiff`).
//!
//! At the widths a CPU trains (d_model 16, one head), burn's generic attention is a chain of
//! a dozen tensor operations (two batched products, a broadcast bias add, five softmax steps,
//! strided copies for the head reshapes), each cheap in arithmetic and dear in dispatch, strided
//! iteration and allocation. Here the whole of `softmax(QKᵀ + bias)·V` runs as one loop per batch
//! row over the tensors' own memory, and its backward is one more:
//!
//! * `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`, `dQ = dS·K`, `dK = dSᵀ·Q`,
//! * `dBias = dS`, summed over the dimensions the bias broadcasts over.
//!
//! [`try_attend`] takes this path when the tensors are on `Flex` (inference) or
//! `Autodiff<Flex>` (training) and returns `None` on every other backend, which then runs
//! burn's generic operations ([`crate::t5::T5Attention`] falls back by itself). The returned
//! probabilities are not tracked by autodiff (token reducers read them detached). Masked keys
//! carry `−∞` in the bias and get exactly zero weight; a row whose every key is `−∞` gets zero
//! weights everywhere (burn's softmax would give NaN; [`crate::t5::additive_mask`] never builds
//! such a row).

use std::any::Any;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;

/// Work (multiply-adds) below which a kernel runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 16;

/// `softmax(q·kᵀ + bias)·v` per batch row and head on `Flex` or `Autodiff<Flex>`: the context
/// `[b, m, heads, d_v]` (the layout the output projection reads) and the probabilities
/// `[b, heads, m, n]`; `None` on other backends. `q` `[b, heads, m, d]`, `k` `[b, heads, n, d]`,
/// `v` `[b, heads, n, d_v]`, `bias` broadcastable to `[b, heads, m, n]` (rank 4).
pub fn try_attend<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    bias: &Tensor<B, 4>,
) -> Option<(Tensor<B, 4>, Tensor<B, 4>)> {
    let q_any: &dyn Any = q;
    if q_any.is::<Tensor<Flex, 4>>() {
        let [q, k, v, bias] = [q, k, v, bias].map(|t| {
            let t: &dyn Any = t;
            float_primitive(t.downcast_ref::<Tensor<Flex, 4>>()?.clone())
        });
        let out = forward(&q?, &k?, &v?, &bias?);
        let ctx = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(out.ctx));
        let probs = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(out.probs));
        return Some((cast(ctx)?, cast(probs)?));
    }
    if q_any.is::<Tensor<Autodiff<Flex>, 4>>() {
        let [q, k, v, bias] = [q, k, v, bias].map(|t| {
            let t: &dyn Any = t;
            float_primitive(t.downcast_ref::<Tensor<Autodiff<Flex>, 4>>()?.clone())
        });
        let (ctx, probs) = forward_tracked(q?, k?, v?, bias?);
        let ctx = Tensor::<Autodiff<Flex>, 4>::from_primitive(TensorPrimitive::Float(ctx));
        let probs = Tensor::<Autodiff<Flex>, 4>::from_inner(Tensor::<Flex, 4>::from_primitive(
            TensorPrimitive::Float(probs),
        ));
        return Some((cast(ctx)?, cast(probs)?));
    }
    None
}

/// The float primitive of a tensor (never quantized here).
fn float_primitive<B: Backend>(t: Tensor<B, 4>) -> Option<B::FloatTensorPrimitive> {
    match t.into_primitive() {
        TensorPrimitive::Float(p) => Some(p),
        TensorPrimitive::QFloat(_) => None,
    }
}

/// A tensor of a concrete backend as the generic one (the same type, checked at run time).
fn cast<B: Backend, C: Backend>(t: Tensor<C, 4>) -> Option<Tensor<B, 4>> {
    let boxed: Box<dyn Any> = Box::new(t);
    boxed.downcast::<Tensor<B, 4>>().ok().map(|b| *b)
}

/// A rank-4 strided view of an f32 tensor's memory; broadcast dimensions get stride 0.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    offset: isize,
    strides: [isize; 4],
}

impl<'a> View<'a> {
    /// `t` as a view; `contiguous_rows` asks for unit stride in the last dimension (the caller
    /// made it so).
    fn of(t: &'a FlexTensor) -> View<'a> {
        let layout = t.layout();
        let shape = layout.shape();
        let mut strides = [0isize; 4];
        for (i, s) in strides.iter_mut().enumerate() {
            *s = if shape[i] == 1 {
                0
            } else {
                layout.strides()[i]
            };
        }
        View {
            data: t.storage::<f32>(),
            offset: layout.start_offset() as isize,
            strides,
        }
    }

    #[inline]
    fn index(&self, a: usize, h: usize, i: usize, j: usize) -> usize {
        let s = self.strides;
        (self.offset
            + a as isize * s[0]
            + h as isize * s[1]
            + i as isize * s[2]
            + j as isize * s[3]) as usize
    }

    #[inline]
    fn at(&self, a: usize, h: usize, i: usize, j: usize) -> f32 {
        self.data[self.index(a, h, i, j)]
    }

    /// The `len` values of row `(a, h, i)` (unit stride in the last dimension).
    #[inline]
    fn row(&self, a: usize, h: usize, i: usize, len: usize) -> &'a [f32] {
        let start = self.index(a, h, i, 0);
        &self.data[start..start + len]
    }
}

/// `t` with unit stride in its last dimension (a copy only when it has not).
fn unit_rows(t: &FlexTensor) -> FlexTensor {
    let layout = t.layout();
    let last = layout.shape().num_dims() - 1;
    if layout.shape()[last] <= 1 || layout.strides()[last] == 1 {
        t.clone()
    } else {
        t.to_contiguous()
    }
}

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    heads: usize,
    m: usize,
    n: usize,
    d: usize,
    dv: usize,
}

impl Dims {
    fn of(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, bias: &FlexTensor) -> Dims {
        let (qs, ks, vs, bs) = (
            q.layout().shape(),
            k.layout().shape(),
            v.layout().shape(),
            bias.layout().shape(),
        );
        let dims = Dims {
            b: qs[0],
            heads: qs[1],
            m: qs[2],
            n: ks[2],
            d: qs[3],
            dv: vs[3],
        };
        assert!(
            ks[0] == dims.b && vs[0] == dims.b && ks[1] == dims.heads && vs[1] == dims.heads,
            "attention: q {qs:?}, k {ks:?}, v {vs:?} disagree in batch or heads"
        );
        assert!(
            ks[3] == dims.d && vs[2] == dims.n,
            "attention: q {qs:?}, k {ks:?}, v {vs:?} disagree in width or keys"
        );
        let full = [dims.b, dims.heads, dims.m, dims.n];
        assert!(
            bs.num_dims() == 4 && (0..4).all(|i| bs[i] == 1 || bs[i] == full[i]),
            "attention: bias {bs:?} does not broadcast to {full:?}"
        );
        dims
    }

    /// Multiply-adds of the forward pass.
    fn work(&self) -> usize {
        self.b * self.heads * self.m * self.n * (self.d + self.dv)
    }
}

/// What the forward kernel returns (and the backward keeps).
struct Forward {
    /// Context `[b, m, heads, d_v]`, contiguous (a `[b, heads, m, d_v]` tensor with swapped
    /// strides).
    ctx: FlexTensor,
    /// Probabilities `[b, heads, m, n]`, contiguous.
    probs: FlexTensor,
}

/// Runs `f(batch_row, chunks…)` over every batch row, in parallel when the work is large.
fn for_rows<F>(work: usize, chunks: Vec<(&mut [f32], usize)>, f: F)
where
    F: Fn(usize, &mut [&mut [f32]]) + Sync + Send,
{
    // Split every output into per-row chunks and hand row `a` its chunk of each.
    let rows = chunks
        .first()
        .map_or(0, |(buf, len)| buf.len() / (*len).max(1));
    let mut per_row: Vec<Vec<&mut [f32]>> = (0..rows).map(|_| Vec::new()).collect();
    for (buf, len) in chunks {
        for (a, chunk) in buf.chunks_mut(len.max(1)).enumerate() {
            per_row[a].push(chunk);
        }
    }
    if work >= PARALLEL_WORK && rows > 1 {
        per_row
            .par_iter_mut()
            .enumerate()
            .for_each(|(a, outs)| f(a, outs));
    } else {
        per_row
            .iter_mut()
            .enumerate()
            .for_each(|(a, outs)| f(a, outs));
    }
}

/// The forward kernel on `Flex` tensors.
fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, bias: &FlexTensor) -> Forward {
    let dims = Dims::of(q, k, v, bias);
    let Dims {
        b,
        heads,
        m,
        n,
        d,
        dv,
    } = dims;
    let (q, k, v) = (unit_rows(q), unit_rows(k), unit_rows(v));
    let (qv, kv, vv, bv) = (View::of(&q), View::of(&k), View::of(&v), View::of(bias));
    let mut ctx = vec![0f32; b * m * heads * dv];
    let mut probs = vec![0f32; b * heads * m * n];
    for_rows(
        dims.work(),
        vec![(&mut ctx, m * heads * dv), (&mut probs, heads * m * n)],
        |a, outs| {
            let [ctx, probs] = outs else { unreachable!() };
            for h in 0..heads {
                for i in 0..m {
                    let qi = qv.row(a, h, i, d);
                    let p = &mut probs[(h * m + i) * n..(h * m + i + 1) * n];
                    let mut max = f32::NEG_INFINITY;
                    for (j, pj) in p.iter_mut().enumerate() {
                        let kj = kv.row(a, h, j, d);
                        let dot: f32 = qi.iter().zip(kj).map(|(x, y)| x * y).sum();
                        *pj = dot + bv.at(a, h, i, j);
                        max = max.max(*pj);
                    }
                    let out = &mut ctx[(i * heads + h) * dv..(i * heads + h + 1) * dv];
                    if max == f32::NEG_INFINITY {
                        p.fill(0.0);
                        continue;
                    }
                    let mut total = 0f32;
                    for pj in p.iter_mut() {
                        *pj = (*pj - max).exp();
                        total += *pj;
                    }
                    let inv = 1.0 / total;
                    for (j, pj) in p.iter_mut().enumerate() {
                        *pj *= inv;
                        let vj = vv.row(a, h, j, dv);
                        for (o, x) in out.iter_mut().zip(vj) {
                            *o += *pj * x;
                        }
                    }
                }
            }
        },
    );
    let ctx = FlexTensor::from_data(TensorData::new(ctx, [b, m, heads, dv]));
    let probs = FlexTensor::from_data(TensorData::new(probs, [b, heads, m, n]));
    Forward { ctx, probs }
}

/// Gradients of the inputs from the gradient of the context `grad` (`[b, m, heads, d_v]`).
struct Grads {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// `dS`, `[b, heads, m, n]` (the bias gradient before the broadcast sum).
    scores: Vec<f32>,
}

/// The backward kernel: `q`, `k`, `v` as in the forward pass, `probs` and `grad` contiguous.
fn backward(
    dims: Dims,
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    probs: &FlexTensor,
    grad: &FlexTensor,
) -> Grads {
    let Dims {
        b,
        heads,
        m,
        n,
        d,
        dv,
    } = dims;
    let (q, k, v) = (unit_rows(q), unit_rows(k), unit_rows(v));
    let (qv, kv, vv) = (View::of(&q), View::of(&k), View::of(&v));
    let grad = grad.to_contiguous();
    let go = grad.storage::<f32>();
    let p = probs.storage::<f32>();
    let mut dq = vec![0f32; b * heads * m * d];
    let mut dk = vec![0f32; b * heads * n * d];
    let mut dvs = vec![0f32; b * heads * n * dv];
    let mut ds = vec![0f32; b * heads * m * n];
    for_rows(
        2 * dims.work(),
        vec![
            (&mut dq, heads * m * d),
            (&mut dk, heads * n * d),
            (&mut dvs, heads * n * dv),
            (&mut ds, heads * m * n),
        ],
        |a, outs| {
            let [dq, dk, dvs, ds] = outs else {
                unreachable!()
            };
            for h in 0..heads {
                for i in 0..m {
                    let row = (a * heads + h) * m + i;
                    let pi = &p[row * n..(row + 1) * n];
                    let goi =
                        &go[((a * m + i) * heads + h) * dv..((a * m + i) * heads + h + 1) * dv];
                    let dsi = &mut ds[(h * m + i) * n..(h * m + i + 1) * n];
                    // dP_ij = dO_i · V_j; dV_j += P_ij dO_i.
                    let mut weighted = 0f32;
                    for j in 0..n {
                        let vj = vv.row(a, h, j, dv);
                        let dp: f32 = goi.iter().zip(vj).map(|(x, y)| x * y).sum();
                        dsi[j] = dp;
                        weighted += dp * pi[j];
                        let dvj = &mut dvs[(h * n + j) * dv..(h * n + j + 1) * dv];
                        for (o, x) in dvj.iter_mut().zip(goi) {
                            *o += pi[j] * x;
                        }
                    }
                    // dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'); dQ_i += dS_ij K_j; dK_j += dS_ij Q_i.
                    let qi = qv.row(a, h, i, d);
                    let dqi = &mut dq[(h * m + i) * d..(h * m + i + 1) * d];
                    for j in 0..n {
                        let s = pi[j] * (dsi[j] - weighted);
                        dsi[j] = s;
                        if s == 0.0 {
                            continue;
                        }
                        let kj = kv.row(a, h, j, d);
                        for (o, x) in dqi.iter_mut().zip(kj) {
                            *o += s * x;
                        }
                        let dkj = &mut dk[(h * n + j) * d..(h * n + j + 1) * d];
                        for (o, x) in dkj.iter_mut().zip(qi) {
                            *o += s * x;
                        }
                    }
                }
            }
        },
    );
    Grads {
        q: dq,
        k: dk,
        v: dvs,
        scores: ds,
    }
}

/// The backward step of the fused attention under `Autodiff<Flex>`.
#[derive(Debug)]
struct FusedAttention;

/// What the backward step keeps: the inputs, the probabilities and the bias shape.
#[derive(Debug, Clone)]
struct Saved {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    probs: FlexTensor,
    bias_shape: [usize; 4],
}

impl Backward<Flex, 4> for FusedAttention {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let Saved {
            q,
            k,
            v,
            probs,
            bias_shape,
        } = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let qs = q.layout().shape();
        let (ks, vs) = (k.layout().shape(), v.layout().shape());
        let dims = Dims {
            b: qs[0],
            heads: qs[1],
            m: qs[2],
            n: ks[2],
            d: qs[3],
            dv: vs[3],
        };
        let g = backward(dims, &q, &k, &v, &probs, &grad);
        let Dims {
            b,
            heads,
            m,
            n,
            d,
            dv,
        } = dims;
        let [pq, pk, pv, pb] = ops.parents;
        let tensor =
            |data: Vec<f32>, shape: [usize; 4]| FlexTensor::from_data(TensorData::new(data, shape));
        if let Some(node) = pq {
            grads.register::<Flex>(node.id, tensor(g.q, [b, heads, m, d]));
        }
        if let Some(node) = pk {
            grads.register::<Flex>(node.id, tensor(g.k, [b, heads, n, d]));
        }
        if let Some(node) = pv {
            grads.register::<Flex>(node.id, tensor(g.v, [b, heads, n, dv]));
        }
        if let Some(node) = pb {
            let mut ds = tensor(g.scores, [b, heads, m, n]);
            for (dim, &size) in bias_shape.iter().enumerate() {
                if size == 1 && ds.layout().shape()[dim] != 1 {
                    ds = Flex::float_sum_dim(ds, dim);
                }
            }
            grads.register::<Flex>(node.id, ds);
        }
    }
}

type Tracked = burn::tensor::ops::FloatTensor<Autodiff<Flex>>;

/// The forward kernel under `Autodiff<Flex>`: the tracked context and the untracked
/// probabilities.
fn forward_tracked(q: Tracked, k: Tracked, v: Tracked, bias: Tracked) -> (Tracked, FlexTensor) {
    let out = forward(&q.primitive, &k.primitive, &v.primitive, &bias.primitive);
    let shape = bias.primitive.layout().shape();
    let bias_shape = [shape[0], shape[1], shape[2], shape[3]];
    let probs = out.probs.clone();
    let nodes = [
        q.node.clone(),
        k.node.clone(),
        v.node.clone(),
        bias.node.clone(),
    ];
    let ctx = match FusedAttention
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            Saved {
                q: q.primitive,
                k: k.primitive,
                v: v.primitive,
                probs: out.probs,
                bias_shape,
            },
            out.ctx,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out.ctx),
    };
    (ctx, probs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::activation::softmax;

    /// burn's generic attention, the reference of the kernel: context `[b, m, heads, d_v]`.
    fn generic<B: Backend>(
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        bias: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let probs = softmax(q.matmul(k.swap_dims(2, 3)) + bias, 3);
        (probs.clone().matmul(v).swap_dims(1, 2), probs)
    }

    fn close(a: Tensor<Flex, 4>, b: Tensor<Flex, 4>, what: &str) {
        let (a, b) = (
            a.into_data().to_vec::<f32>().unwrap(),
            b.into_data().to_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{what}: sizes differ");
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
            .fold(0f32, f32::max);
        // Absolute 1e-5 on values of order 1, relative beyond (the same sums in another order).
        assert!(
            worst < 1e-5,
            "{what}: max |Δ| / (1 + |reference|) = {worst}"
        );
    }

    /// Inputs with a masked key per row (−∞), a broadcast bias `[1, h, m, n] + [b, 1, 1, n]`,
    /// and queries from a transposed tensor (strided, as after a head split).
    fn inputs<B: Backend>(device: &B::Device, [b, h, m, n, d]: [usize; 5]) -> [Tensor<B, 4>; 5] {
        B::seed(device, 7);
        let dist = Distribution::Normal(0.0, 1.0);
        let q = Tensor::<B, 4>::random([b, m, h, d], dist, device).swap_dims(1, 2);
        let k = Tensor::<B, 4>::random([b, h, n, d], dist, device);
        let v = Tensor::<B, 4>::random([b, h, n, d + 1], dist, device);
        let position = Tensor::<B, 4>::random([1, h, m, n], dist, device);
        let mask: Vec<f32> = (0..b * n)
            .map(|x| {
                if x % n == (x / n) % n && n > 1 {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask =
            Tensor::<B, 1>::from_data(TensorData::new(mask, [b * n]), device).reshape([b, 1, 1, n]);
        [q, k, v, position, mask]
    }

    #[test]
    fn forward_matches_burns_generic_attention() {
        let device = Default::default();
        for shape in [[3, 2, 5, 7, 4], [2, 1, 1, 4, 16], [4, 1, 30, 9, 16]] {
            let [q, k, v, position, mask] = inputs::<Flex>(&device, shape);
            let bias = position + mask;
            let (ctx, probs) = try_attend(&q, &k, &v, &bias).expect("Flex takes the kernel");
            let (ctx_ref, probs_ref) = generic(q, k, v, bias);
            close(ctx, ctx_ref, "context");
            close(probs, probs_ref, "probabilities");
        }
    }

    #[test]
    fn gradients_match_burns_generic_attention() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        for shape in [[3, 2, 5, 7, 4], [2, 1, 1, 4, 16], [64, 1, 12, 12, 16]] {
            let [q, k, v, position, mask] = inputs::<A>(&device, shape);
            let leaves =
                [q, k, v, position].map(|t| Tensor::<A, 4>::from_inner(t.inner()).require_grad());
            let weights = Tensor::<A, 4>::random(
                [shape[0], shape[2], shape[1], shape[4] + 1],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |fused: bool| {
                let [q, k, v, position] = leaves.clone();
                let bias = position + mask.clone();
                let (ctx, _) = if fused {
                    try_attend(&q, &k, &v, &bias).expect("Autodiff<Flex> takes the kernel")
                } else {
                    generic(q, k, v, bias)
                };
                let grads = (ctx * weights.clone()).sum().backward();
                leaves
                    .clone()
                    .map(|t| t.grad(&grads).expect("every input has a gradient"))
            };
            let (fused, reference) = (run(true), run(false));
            for ((f, r), name) in fused
                .into_iter()
                .zip(reference)
                .zip(["q", "k", "v", "bias"])
            {
                close(f, r, name);
            }
        }
    }

    #[test]
    fn a_row_without_keys_gets_zero_weights() {
        let device = Default::default();
        let q = Tensor::<Flex, 4>::ones([1, 1, 1, 2], &device);
        let k = Tensor::<Flex, 4>::ones([1, 1, 3, 2], &device);
        let v = Tensor::<Flex, 4>::ones([1, 1, 3, 2], &device);
        let bias = Tensor::<Flex, 4>::full([1, 1, 1, 3], f32::NEG_INFINITY, &device);
        let (ctx, probs) = try_attend(&q, &k, &v, &bias).unwrap();
        assert!(
            ctx.into_data()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .all(|&x| x == 0.0)
        );
        assert!(
            probs
                .into_data()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .all(|&x| x == 0.0)
        );
    }

    #[test]
    fn other_backends_fall_back() {
        type N = burn_ndarray::NdArray;
        let device = Default::default();
        let [q, k, v, position, mask] = inputs::<N>(&device, [1, 1, 2, 2, 2]);
        assert!(try_attend(&q, &k, &v, &(position + mask)).is_none());
    }
}
