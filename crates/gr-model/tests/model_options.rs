//! The export's file layout and the load errors on the `tiger-tiny` fixture model. The checks
//! that run a model (generation, padding, reducer options, persistence) live in
//! `test_support::conformance` and run on the CPU in `tests/conformance.rs`.

use burn::backend::Flex;
use gr_model::tiger::{Tiger, TigerConfig};
use test_support::conformance::{tiger_tiny, tiger_tiny_config as cfg};
use test_support::data;

type B = Flex;

fn model() -> Tiger<B> {
    tiger_tiny(&Default::default())
}

/// The export keeps the reference's names, PyTorch layouts and values: the same tensors as the
/// fixture the model was loaded from, and `{"format": "pt"}` as Hugging Face writes.
#[test]
fn export_reproduces_the_reference_file() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("model.safetensors");
    gr_model::export::export_safetensors(&model(), &st).unwrap();
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let (ours, theirs) = (read(&st), read(&data!("tiger-tiny/model.safetensors")));
    let ours = safetensors::SafeTensors::deserialize(&ours).unwrap();
    let theirs = safetensors::SafeTensors::deserialize(&theirs).unwrap();
    let mut names = ours.names();
    names.sort();
    let mut want = theirs.names();
    want.sort();
    assert_eq!(names, want);
    for name in names {
        let (a, b) = (ours.tensor(name).unwrap(), theirs.tensor(name).unwrap());
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name}");
        assert_eq!(a.data(), b.data(), "{name}");
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&read(&st)).unwrap();
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    assert_eq!(format.as_deref(), Some("pt"));
}

/// A file of another model shape fails, naming the file and the tensors.
#[test]
fn mismatched_files_are_explained() {
    let path = data!("tiger-tiny/model.safetensors");
    let load = |cfg: TigerConfig| {
        let err = Tiger::<B>::from_safetensors(&path, &cfg, &Default::default()).unwrap_err();
        assert!(
            matches!(&err, gr_model::Error::WeightsMismatch { path: p, .. } if *p == path),
            "{err:?}"
        );
        err.to_string()
    };
    let err = load(TigerConfig {
        num_encoder_layers: 4,
        ..cfg()
    });
    assert!(err.contains("tiger-tiny/model.safetensors"), "{err}");
    assert!(
        err.contains("missing tensor `encoder.block.3.layer.0.layer_norm.weight`"),
        "{err}"
    );
    let err = load(TigerConfig {
        num_decoder_layers: 1,
        ..cfg()
    });
    assert!(err.contains("unexpected tensor `decoder.block.1."), "{err}");
    let err = load(TigerConfig { d_ff: 64, ..cfg() });
    assert!(
        err.contains("tensor `encoder.block.0.layer.1.mlp.model.0.weight` has shape [32, 16], expected [64, 16]"),
        "{err}"
    );
}
