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

/// `t` with unit stride in its last dimension and no negative stride (a copy only when it has
/// not).
fn unit_rows(t: &FlexTensor) -> FlexTensor {
    let layout = t.layout();
    let last = layout.shape().num_dims() - 1;
    let unit = layout.shape()[last] <= 1 || layout.strides()[last] == 1;
    if unit && layout.strides().iter().all(|&s| s >= 0) {
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
        b, heads, m, n, dv, ..
    } = dims;
    let (q, k, v) = (unit_rows(q), unit_rows(k), unit_rows(v));
    let views = Views {
        dims,
        q: View::of(&q),
        k: View::of(&k),
        v: View::of(&v),
        bias: View::of(bias),
    };
    let mut ctx = vec![0f32; b * m * heads * dv];
    let mut probs = vec![0f32; b * heads * m * n];
    let simd = Simd::detect();
    for_rows(
        dims.work(),
        vec![(&mut ctx, m * heads * dv), (&mut probs, heads * m * n)],
        |a, outs| {
            let [ctx, probs] = outs else { unreachable!() };
            simd.forward_row(&views, a, ctx, probs);
        },
    );
    let ctx = FlexTensor::from_data(TensorData::new(ctx, [b, m, heads, dv]));
    let probs = FlexTensor::from_data(TensorData::new(probs, [b, heads, m, n]));
    Forward { ctx, probs }
}

/// The kernel's inputs as strided views.
struct Views<'a> {
    dims: Dims,
    q: View<'a>,
    k: View<'a>,
    v: View<'a>,
    bias: View<'a>,
}

/// Which build of the row kernels runs: AVX2 + FMA where the CPU has them (the inner loops run
/// over keys with unit stride and vectorise 8 wide), else the build's baseline.
#[derive(Clone, Copy)]
struct Simd {
    avx2: bool,
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Simd { avx2 }
    }

    fn forward_row(self, x: &Views, a: usize, ctx: &mut [f32], probs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 and FMA (checked in `detect`).
            return unsafe { forward_row_avx2(x, a, ctx, probs) };
        }
        forward_row(x, a, ctx, probs)
    }

    fn backward_row(self, x: &BackwardViews, a: usize, outs: &mut [&mut [f32]]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 and FMA (checked in `detect`).
            return unsafe { backward_row_avx2(x, a, outs) };
        }
        backward_row(x, a, outs)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_row_avx2(x: &Views, a: usize, ctx: &mut [f32], probs: &mut [f32]) {
    forward_row(x, a, ctx, probs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_row_avx2(x: &BackwardViews, a: usize, outs: &mut [&mut [f32]]) {
    backward_row(x, a, outs)
}

/// `kt[c·n + j] = t[a, h, j, c]`: the keys (or values) of one head, transposed so that loops
/// over keys have unit stride.
#[inline(always)]
fn transpose_into(kt: &mut [f32], t: &View, a: usize, h: usize, n: usize, d: usize) {
    for j in 0..n {
        for (c, &x) in t.row(a, h, j, d).iter().enumerate() {
            kt[c * n + j] = x;
        }
    }
}

/// One batch row of the forward pass: `ctx` `[m, heads, d_v]`, `probs` `[heads, m, n]`.
#[inline(always)]
fn forward_row(x: &Views, a: usize, ctx: &mut [f32], probs: &mut [f32]) {
    let Dims {
        heads, m, n, d, dv, ..
    } = x.dims;
    if m * n >= GEMM_PAIRS {
        return forward_row_gemm(x, a, ctx, probs);
    }
    let mut kt = vec![0f32; d * n];
    for h in 0..heads {
        transpose_into(&mut kt, &x.k, a, h, n, d);
        for i in 0..m {
            let p = &mut probs[(h * m + i) * n..(h * m + i + 1) * n];
            // Scores: bias + Σ_c q_ic k_jc, vectorised over the keys j.
            bias_row_into(p, &x.bias, a, h, i);
            for (c, &qc) in x.q.row(a, h, i, d).iter().enumerate() {
                for (s, &kc) in p.iter_mut().zip(&kt[c * n..(c + 1) * n]) {
                    *s += qc * kc;
                }
            }
            softmax_in_place(p);
            let out = &mut ctx[(i * heads + h) * dv..(i * heads + h + 1) * dv];
            for (j, &w) in p.iter().enumerate() {
                if w == 0.0 {
                    continue;
                }
                for (o, &vc) in out.iter_mut().zip(x.v.row(a, h, j, dv)) {
                    *o += w * vc;
                }
            }
        }
    }
}

/// Row `(a, h, i)` of the (broadcast) bias into `p`.
#[inline(always)]
fn bias_row_into(p: &mut [f32], bias: &View, a: usize, h: usize, i: usize) {
    if bias.strides[3] == 1 {
        p.copy_from_slice(bias.row(a, h, i, p.len()));
    } else {
        for (j, s) in p.iter_mut().enumerate() {
            *s = bias.at(a, h, i, j);
        }
    }
}

/// Heads with at least this many query × key pairs run their products through `gemm` (a
/// register-blocked micro-kernel); smaller ones (a decoding step's self-attention) run the
/// plain loops, whose set-up costs nothing.
const GEMM_PAIRS: usize = 64;

/// A matrix inside a slice: element `(r, c)` at `offset + r·rs + c·cs` (strides ≥ 0).
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    offset: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Head `(a, h)` of `view` as a `[rows, cols]` matrix (`transposed`: the last two
    /// dimensions swapped).
    fn head(view: &View<'a>, a: usize, h: usize, transposed: bool) -> Mat<'a> {
        let [rs, cs] = if transposed { [3, 2] } else { [2, 3] }.map(|i| view.strides[i] as usize);
        Mat {
            data: view.data,
            offset: view.index(a, h, 0, 0),
            rs,
            cs,
        }
    }

    /// A row-major block of `data` from `offset` with row stride `rs`.
    fn rows(data: &'a [f32], offset: usize, rs: usize) -> Mat<'a> {
        Mat {
            data,
            offset,
            rs,
            cs: 1,
        }
    }

    /// The same matrix transposed.
    fn t(self) -> Mat<'a> {
        Mat {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Panics unless every element of a `[rows, cols]` matrix lies inside the slice.
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(
                last < self.data.len(),
                "attention: matrix outside its buffer"
            );
        }
    }
}

/// `dst[m, n]` (row-major, row stride `dst_rs`) = (`dst` +, when `accumulate`) `lhs[m, k] ·
/// rhs[k, n]`, on the calling thread.
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    m: usize,
    n: usize,
    k: usize,
    lhs: Mat,
    rhs: Mat,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * dst_rs + n <= dst.len(),
        "attention: output outside its buffer"
    );
    lhs.check(m, k);
    rhs.check(k, n);
    // SAFETY: every element read or written lies inside its slice (checked above), and `dst`
    // is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The probabilities of a row of scores in place; a row of `−∞` becomes zeros.
#[inline(always)]
fn softmax_in_place(p: &mut [f32]) {
    let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        p.fill(0.0);
        return;
    }
    let mut total = 0f32;
    for s in p.iter_mut() {
        *s = (*s - max).exp();
        total += *s;
    }
    let inv = 1.0 / total;
    p.iter_mut().for_each(|s| *s *= inv);
}

/// [`forward_row`] with the products through `gemm`: `S = bias + Q·Kᵀ`, softmax, `ctx = P·V`.
#[inline(always)]
fn forward_row_gemm(x: &Views, a: usize, ctx: &mut [f32], probs: &mut [f32]) {
    let Dims {
        heads, m, n, d, dv, ..
    } = x.dims;
    for h in 0..heads {
        let p = &mut probs[h * m * n..(h + 1) * m * n];
        for (i, row) in p.chunks_mut(n).enumerate() {
            bias_row_into(row, &x.bias, a, h, i);
        }
        let (q, kt) = (Mat::head(&x.q, a, h, false), Mat::head(&x.k, a, h, true));
        gemm_into(p, n, true, m, n, d, q, kt);
        p.chunks_mut(n).for_each(softmax_in_place);
        let v = Mat::head(&x.v, a, h, false);
        gemm_into(
            &mut ctx[h * dv..],
            heads * dv,
            false,
            m,
            dv,
            n,
            Mat::rows(p, 0, n),
            v,
        );
    }
}

/// [`backward_row`] with the products through `gemm`.
#[inline(always)]
fn backward_row_gemm(y: &BackwardViews, a: usize, outs: &mut [&mut [f32]]) {
    let [dq, dk, dvs, ds] = outs else {
        unreachable!()
    };
    let Dims {
        heads, m, n, d, dv, ..
    } = y.dims;
    for h in 0..heads {
        let block = ((a * heads + h) * m) * n;
        let p = Mat::rows(y.probs, block, n);
        let go = Mat::rows(y.grad, a * m * heads * dv + h * dv, heads * dv);
        let dsh = &mut ds[h * m * n..(h + 1) * m * n];
        // dP = dO·Vᵀ, then dS = P ⊙ (dP − rowsum(dP ⊙ P)).
        gemm_into(dsh, n, false, m, n, dv, go, Mat::head(&y.v, a, h, true));
        let probs = &y.probs[block..block + m * n];
        for (row, pr) in dsh.chunks_mut(n).zip(probs.chunks(n)) {
            let weighted: f32 = row.iter().zip(pr).map(|(s, p)| s * p).sum();
            for (s, &pj) in row.iter_mut().zip(pr) {
                *s = pj * (*s - weighted);
            }
        }
        // dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q.
        let dvh = &mut dvs[h * n * dv..(h + 1) * n * dv];
        gemm_into(dvh, dv, false, n, dv, m, p.t(), go);
        let dsm = Mat::rows(dsh, 0, n);
        let dqh = &mut dq[h * m * d..(h + 1) * m * d];
        gemm_into(dqh, d, false, m, d, n, dsm, Mat::head(&y.k, a, h, false));
        let dkh = &mut dk[h * n * d..(h + 1) * n * d];
        gemm_into(
            dkh,
            d,
            false,
            n,
            d,
            m,
            dsm.t(),
            Mat::head(&y.q, a, h, false),
        );
    }
}

/// Gradients of the inputs from the gradient of the context `grad` (`[b, m, heads, d_v]`).
struct Grads {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// `dS`, `[b, heads, m, n]` (the bias gradient before the broadcast sum).
    scores: Vec<f32>,
}

/// The backward kernel's inputs.
struct BackwardViews<'a> {
    dims: Dims,
    q: View<'a>,
    k: View<'a>,
    v: View<'a>,
    /// Probabilities `[b, heads, m, n]`, contiguous.
    probs: &'a [f32],
    /// Gradient of the context `[b, m, heads, d_v]`, contiguous.
    grad: &'a [f32],
}

/// The backward kernel: `q`, `k`, `v` as in the forward pass, `probs` contiguous.
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
    let grad = grad.to_contiguous();
    let views = BackwardViews {
        dims,
        q: View::of(&q),
        k: View::of(&k),
        v: View::of(&v),
        probs: probs.storage::<f32>(),
        grad: grad.storage::<f32>(),
    };
    let mut dq = vec![0f32; b * heads * m * d];
    let mut dk = vec![0f32; b * heads * n * d];
    let mut dvs = vec![0f32; b * heads * n * dv];
    let mut ds = vec![0f32; b * heads * m * n];
    let simd = Simd::detect();
    for_rows(
        2 * dims.work(),
        vec![
            (&mut dq, heads * m * d),
            (&mut dk, heads * n * d),
            (&mut dvs, heads * n * dv),
            (&mut ds, heads * m * n),
        ],
        |a, outs| simd.backward_row(&views, a, outs),
    );
    Grads {
        q: dq,
        k: dk,
        v: dvs,
        scores: ds,
    }
}

/// One batch row of the backward pass; `outs` = `dQ` `[heads, m, d]`, `dK` `[heads, n, d]`,
/// `dV` `[heads, n, d_v]`, `dS` `[heads, m, n]`.
#[inline(always)]
fn backward_row(y: &BackwardViews, a: usize, outs: &mut [&mut [f32]]) {
    let [dq, dk, dvs, ds] = outs else {
        unreachable!()
    };
    let x = y;
    let Dims {
        heads, m, n, d, dv, ..
    } = x.dims;
    if m * n >= GEMM_PAIRS {
        return backward_row_gemm(y, a, outs);
    }
    // Per head, transposed: values, and the key and value gradients (unit stride over keys).
    let mut vt = vec![0f32; dv * n];
    let mut dkt = vec![0f32; d * n];
    let mut dvt = vec![0f32; dv * n];
    for h in 0..heads {
        transpose_into(&mut vt, &x.v, a, h, n, dv);
        dkt.fill(0.0);
        dvt.fill(0.0);
        for i in 0..m {
            let row = (a * heads + h) * m + i;
            let p = &y.probs[row * n..(row + 1) * n];
            let go = &y.grad[((a * m + i) * heads + h) * dv..((a * m + i) * heads + h + 1) * dv];
            let dsi = &mut ds[(h * m + i) * n..(h * m + i + 1) * n];
            // dP_ij = Σ_c dO_ic V_jc (into dS's row); dVᵀ_cj += dO_ic P_ij.
            dsi.fill(0.0);
            for (c, &g) in go.iter().enumerate() {
                for (s, &vc) in dsi.iter_mut().zip(&vt[c * n..(c + 1) * n]) {
                    *s += g * vc;
                }
                for (o, &pj) in dvt[c * n..(c + 1) * n].iter_mut().zip(p) {
                    *o += g * pj;
                }
            }
            // dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij').
            let weighted: f32 = dsi.iter().zip(p).map(|(s, pj)| s * pj).sum();
            for (s, &pj) in dsi.iter_mut().zip(p) {
                *s = pj * (*s - weighted);
            }
            // dKᵀ_cj += Q_ic dS_ij; dQ_i += Σ_j dS_ij K_j.
            let qi = x.q.row(a, h, i, d);
            for (c, &qc) in qi.iter().enumerate() {
                for (o, &s) in dkt[c * n..(c + 1) * n].iter_mut().zip(dsi.iter()) {
                    *o += qc * s;
                }
            }
            let dqi = &mut dq[(h * m + i) * d..(h * m + i + 1) * d];
            for (j, &s) in dsi.iter().enumerate() {
                if s == 0.0 {
                    continue;
                }
                for (o, &kc) in dqi.iter_mut().zip(x.k.row(a, h, j, d)) {
                    *o += s * kc;
                }
            }
        }
        for j in 0..n {
            for c in 0..d {
                dk[(h * n + j) * d + c] = dkt[c * n + j];
            }
            for c in 0..dv {
                dvs[(h * n + j) * dv + c] = dvt[c * n + j];
            }
        }
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
        // Loops (fewer than `GEMM_PAIRS` pairs per head) and gemm, several heads, one query.
        for shape in [
            [3, 2, 5, 7, 4],
            [2, 1, 1, 4, 16],
            [4, 1, 30, 9, 16],
            [2, 3, 40, 37, 8],
        ] {
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
        for shape in [
            [3, 2, 5, 7, 4],
            [2, 1, 1, 4, 16],
            [64, 1, 12, 12, 16],
            [2, 3, 40, 37, 8],
        ] {
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
