//! Pretrained weights from a safetensors file, by Hugging Face parameter name, into burn tensors
//! and modules. Every lookup checks the name and the shape, so a mismatched model file fails with
//! an error that names the tensor, the expected and the found shape.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// An opened safetensors file.
pub struct Weights {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Weights {
    /// Reads a safetensors file into memory.
    pub fn open(path: &Path) -> Result<Weights> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model weights {}", path.display()))?;
        SafeTensors::deserialize(&bytes)
            .with_context(|| format!("{} is not a safetensors file", path.display()))?;
        Ok(Weights {
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn view(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("checked when opened")
    }

    /// True when the file has a tensor of that name.
    pub fn contains(&self, name: &str) -> bool {
        self.view().tensor(name).is_ok()
    }

    /// The tensor `name`, checked to exist with shape `expected`.
    fn checked(&self, name: &str, expected: &[usize]) -> Result<TensorView<'_>> {
        let t = self.view().tensor(name).map_err(|_| {
            anyhow::anyhow!(
                "{}: missing tensor `{name}` (expected shape {expected:?})",
                self.path.display()
            )
        })?;
        if t.shape() != expected {
            bail!(
                "{}: tensor `{name}` has shape {:?}, expected {expected:?} (does config.json match the weights?)",
                self.path.display(),
                t.shape()
            );
        }
        Ok(t)
    }

    /// The tensor `name` as f32 values with its shape, checked against `expected` (row-major).
    pub fn values(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let t = self.checked(name, expected)?;
        let data = t.data();
        Ok(match t.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            Dtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => bail!(
                "{}: tensor `{name}` has unsupported dtype {other:?}",
                self.path.display()
            ),
        })
    }

    /// The tensor `name` as integers (I64 or I32), checked against `expected`.
    pub fn ints(&self, name: &str, expected: &[usize]) -> Result<Vec<i64>> {
        let t = self.checked(name, expected)?;
        let d = t.data();
        Ok(match t.dtype() {
            Dtype::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::I32 => d
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            other => bail!(
                "{}: tensor `{name}` is {other:?}, expected integers",
                self.path.display()
            ),
        })
    }

    /// A float tensor of rank `D`.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &Device<B>,
    ) -> Result<Tensor<B, D>> {
        let values = self.values(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// A `Linear` from PyTorch's `[out, in]` weight (and `[out]` bias when `bias`).
    pub fn linear<B: Backend>(
        &self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        device: &Device<B>,
    ) -> Result<Linear<B>> {
        let mut linear = LinearConfig::new(d_in, d_out).with_bias(bias).init(device);
        let w: Tensor<B, 2> = self.tensor(&format!("{prefix}.weight"), [d_out, d_in], device)?;
        linear.weight = Param::from_tensor(w.transpose());
        if bias {
            linear.bias = Some(Param::from_tensor(self.tensor(
                &format!("{prefix}.bias"),
                [d_out],
                device,
            )?));
        }
        Ok(linear)
    }

    /// An `Embedding` from a `[n, d]` table.
    pub fn embedding<B: Backend>(
        &self,
        name: &str,
        n: usize,
        d: usize,
        device: &Device<B>,
    ) -> Result<Embedding<B>> {
        let mut e = EmbeddingConfig::new(n, d).init(device);
        e.weight = Param::from_tensor(self.tensor(name, [n, d], device)?);
        Ok(e)
    }

    /// A `LayerNorm` from `{prefix}.weight` / `{prefix}.bias`.
    pub fn layer_norm<B: Backend>(
        &self,
        prefix: &str,
        d: usize,
        eps: f64,
        device: &Device<B>,
    ) -> Result<LayerNorm<B>> {
        let mut ln = LayerNormConfig::new(d).with_epsilon(eps).init(device);
        ln.gamma = Param::from_tensor(self.tensor(&format!("{prefix}.weight"), [d], device)?);
        ln.beta = Some(Param::from_tensor(self.tensor(
            &format!("{prefix}.bias"),
            [d],
            device,
        )?));
        Ok(ln)
    }
}

/// Applies `linear` to `[b, l, d_in]` as one `[b·l, d_in] × [d_in, d_out]` product: CPU backends
/// run a single large matrix multiply instead of `b` small broadcast ones (several times faster).
pub fn linear_3d<B: Backend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, l, d] = x.dims();
    let y = linear.forward(x.reshape([b * l, d]));
    let d_out = y.dims()[1];
    y.reshape([b, l, d_out])
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_decoding() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
