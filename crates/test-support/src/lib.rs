//! Helpers shared by the workspace's tests (a dev-dependency only, never published):
//!
//! * [`project_root`]: the workspace's root folder (models, configs, datasets);
//! * [`data!`] / [`data_dir`]: a crate's `tests/data/…` fixture paths, resolved at run time from
//!   the calling crate's `CARGO_MANIFEST_DIR`;
//! * [`Fixture`]: the named tensors of a safetensors fixture (inputs, expected outputs,
//!   gradients) as `Vec<f32>` / `Vec<i64>`, checked against the shapes the test expects;
//! * [`max_abs`], [`assert_close`], [`values`]: comparing outputs with a tolerance, naming the
//!   tensor that differs;
//! * [`rewrite_safetensors`]: a copy of a fixture with tensors renamed or re-encoded;
//! * [`normal_values`]: seeded random inputs independent of the backend's global generator;
//! * [`read_json`], [`small_tiger`]: fixture configs and the small TIGER shape that tests train;
//! * [`conformance`]: the model's parity and option checks, generic over the backend, run by
//!   `gr-model`'s tests on the CPU and by `xtask`'s conformance test on every compiled backend.

pub mod conformance;

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use gr_model::tiger::TigerConfig;
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;

/// The project root: the nearest folder above the current directory with `Cargo.toml` and
/// `configs/` (so a test binary carried to another machine works from inside any copy of the
/// tree), else the tree this crate was built in.
pub fn project_root() -> PathBuf {
    let is_root = |d: &Path| d.join("configs").is_dir() && d.join("Cargo.toml").is_file();
    std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.ancestors().find(|d| is_root(d)).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// `n` standard-normal draws (Box–Muller over a ChaCha8 stream seeded with `seed`): fixed random
/// inputs that, unlike `B::seed` + `Tensor::random`, do not share the backend's global generator
/// with the tests running beside them in the same process.
pub fn normal_values(n: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

/// `tests/data` of the crate whose manifest folder is `manifest_dir`.
pub fn data_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("tests/data")
}

/// The path of `tests/data/<rel>` in the calling crate (`data!("tiger-tiny/model.safetensors")`).
#[macro_export]
macro_rules! data {
    ($rel:expr) => {
        $crate::data_dir(env!("CARGO_MANIFEST_DIR")).join($rel)
    };
}

/// Reads and parses a JSON file (a fixture's `config.json`), panicking with its path.
pub fn read_json<T: DeserializeOwned>(path: impl AsRef<Path>) -> T {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A safetensors fixture held in memory.
pub struct Fixture {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Fixture {
    /// Reads the safetensors file at `path` (panics, naming it, when it cannot).
    pub fn open(path: impl AsRef<Path>) -> Fixture {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
        SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("{} is not a safetensors file: {e}", path.display()));
        Fixture { path, bytes }
    }

    /// The raw bytes and dtype of tensor `name`, checked to have `shape`.
    fn raw(&self, name: &str, shape: &[usize]) -> (Dtype, Vec<u8>) {
        let st = SafeTensors::deserialize(&self.bytes).expect("checked when opened");
        let t = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("{}: no tensor `{name}`", self.path.display()));
        assert_eq!(
            t.shape(),
            shape,
            "{}: tensor `{name}` has shape {:?}, the test expects {shape:?}",
            self.path.display(),
            t.shape()
        );
        (t.dtype(), t.data().to_vec())
    }

    /// Tensor `name` (F32) as row-major values, checked to have `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Vec<f32> {
        match self.raw(name, shape) {
            (Dtype::F32, d) => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            (other, _) => panic!("{}: `{name}` is {other:?}, not F32", self.path.display()),
        }
    }

    /// Tensor `name` (I64 or I32) as integers, checked to have `shape`.
    pub fn i64(&self, name: &str, shape: &[usize]) -> Vec<i64> {
        match self.raw(name, shape) {
            (Dtype::I64, d) => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            (Dtype::I32, d) => d
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            (other, _) => panic!(
                "{}: `{name}` is {other:?}, not integers",
                self.path.display()
            ),
        }
    }

    /// An integer 0/1 mask `name` as f32 values, checked to have `shape`.
    pub fn mask(&self, name: &str, shape: &[usize]) -> Vec<f32> {
        self.i64(name, shape).iter().map(|&m| m as f32).collect()
    }

    /// Integer tensor `name` as a burn `Int` tensor of rank `D`.
    pub fn int_tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D, burn::tensor::Int> {
        Tensor::from_data(TensorData::new(self.i64(name, &shape), shape), device)
    }

    /// Integer 0/1 mask `name` as a burn float tensor of rank `D`.
    pub fn mask_tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(self.mask(name, &shape), shape), device)
    }
}

/// One tensor of a safetensors file, as [`rewrite_safetensors`] hands it over.
pub struct Stored {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian row-major data.
    pub bytes: Vec<u8>,
}

/// Writes a copy of the safetensors file `src` to `dst` (no metadata) with every tensor passed
/// through `edit` (to rename it, or store it in another dtype).
pub fn rewrite_safetensors(src: &Path, dst: &Path, edit: impl Fn(Stored) -> Stored) {
    let file = Fixture::open(src);
    let st = SafeTensors::deserialize(&file.bytes).expect("checked when opened");
    let tensors: Vec<Stored> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            edit(Stored {
                name,
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                bytes: view.data().to_vec(),
            })
        })
        .collect();
    let views = tensors.iter().map(|t| {
        let view = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
            .unwrap_or_else(|e| panic!("tensor `{}`: {e}", t.name));
        (t.name.clone(), view)
    });
    safetensors::serialize_to_file(views, None, dst)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", dst.display()));
}

/// A float tensor's values, row-major.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 values")
}

/// The largest absolute difference of two equally long slices.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts `max_abs(got, want) <= tol`, naming `what` and the error when it is not.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let err = max_abs(got, want);
    assert!(err <= tol, "{what}: max abs error {err} > {tol}");
}

/// The small TIGER the training tests build (4 levels × 16 codes, d 32, 2 heads × 16,
/// d_ff 64, 3 + 2 blocks, dropout 0.1, 32 buckets up to 128); tests override fields with
/// `TigerConfig { dropout: 0.0, ..small_tiger() }`.
pub fn small_tiger() -> TigerConfig {
    TigerConfig {
        num_levels: 4,
        codes_per_level: 16,
        d_model: 32,
        num_heads: 2,
        d_kv: 16,
        d_ff: 64,
        num_encoder_layers: 3,
        num_decoder_layers: 2,
        dropout: 0.1,
        num_buckets: 32,
        max_distance: 128,
        eps: 1e-6,
        tie_heads: false,
    }
}
