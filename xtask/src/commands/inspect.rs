//! Small commands that look at the project: `stages`, `setup`, `info`.

use anyhow::Result;
use artifacts::Manifest;

use pipeline::{Workspace, backend, registry};

/// `stages [dataset]`: the stages in order, with whether `dataset` has each artifact.
pub fn stages(ws: &Workspace, dataset: Option<&str>) -> Result<()> {
    if let Some(d) = dataset {
        ws.check_dataset(d)?;
    }
    for stage in registry() {
        let state = match dataset {
            None => String::new(),
            Some(d) => {
                let dir = ws.layout(d).stage_dir(stage.id());
                let present = if stage.id().per_seed() {
                    std::fs::read_dir(&dir).is_ok_and(|mut e| e.next().is_some())
                } else {
                    Manifest::read(&dir).ok().flatten().is_some()
                };
                if present { "artifact" } else { "-" }.to_string()
            }
        };
        let per = if stage.id().per_seed() {
            "per variant and seed"
        } else {
            "once"
        };
        println!(
            "{:<8} {:<9} {:<21} {}",
            stage.id(),
            state,
            per,
            stage.spec().about
        );
    }
    Ok(())
}

/// `setup`: fetches the sentence encoder's weights.
pub fn setup(ws: &Workspace, model: &str) -> Result<()> {
    let dir = text_encoder::models::ensure(&ws.models_dir(), model, None)?;
    println!("{model}: {}", dir.display());
    Ok(())
}

/// `info`: the compiled-in backend (and the GPU adapter it found, for wgpu), checked, and the
/// project's folders.
pub fn info(ws: &Workspace) -> Result<()> {
    println!("backend: {}", backend::name());
    if let Some(adapter) = backend::adapter() {
        println!("adapter: {adapter}");
    }
    backend::self_check::<backend::Backend>(&backend::device())?;
    println!("self-check: ok (64x64 matmul exact)");
    println!("project root: {}", ws.root.display());
    println!("datasets: {}", ws.datasets.display());
    println!("runs: {}", ws.runs.display());
    Ok(())
}
