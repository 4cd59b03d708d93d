//! `manifest.json`: what an artifact directory says about itself.
//!
//! A stage is up to date when the manifest in its directory names the same stage, schema version,
//! config hash and input hashes that the stage would use now, and every file it lists is present
//! with the recorded size. Downstream stages record an upstream artifact by its `content_hash`,
//! so an upstream re-run that produces identical files does not invalidate them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Damage, Error, Result, io};
use serde::{Deserialize, Serialize};

/// File name of the manifest inside an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Size and hash of one data file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// The identity of an artifact before it is written: what must match for it to be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Stage that produced it (`data`, `embed`, …).
    pub stage: String,
    /// Version of the artifact's on-disk schema; bump it when the files change meaning.
    pub schema_version: u32,
    /// Hash of the configuration the stage read.
    pub config_hash: String,
    /// Input name → hash (an upstream artifact's content hash, or a source file's SHA-256).
    pub inputs: BTreeMap<String, String>,
}

/// The manifest of a complete artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Stage, schema, config and input hashes.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// The crate that wrote it, `name version`.
    pub producer: String,
    /// Seconds since the Unix epoch when it was committed.
    pub created_unix: u64,
    /// Wall time of the stage in seconds.
    pub wall_time_s: f64,
    /// Row counts (users, items, interactions, …).
    pub rows: BTreeMap<String, u64>,
    /// Data files (relative names) with size and hash.
    pub files: BTreeMap<String, FileEntry>,
    /// Hash over all files' names and hashes: the artifact's identity for downstream stages.
    pub content_hash: String,
    /// Stage-specific facts worth keeping (chosen source, statistics, …).
    #[serde(default)]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Manifest {
    /// Reads `dir/manifest.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        let manifest =
            serde_json::from_str(&text).map_err(|source| Error::BadManifest { path, source })?;
        Ok(Some(manifest))
    }

    /// Reads the manifest of an artifact that must exist, with an error that says which stage makes it.
    pub fn require(dir: &Path, stage: &str) -> Result<Manifest> {
        Manifest::read(dir)?.ok_or_else(|| Error::MissingArtifact {
            stage: stage.to_string(),
            dir: dir.to_path_buf(),
        })
    }

    /// Checks that the files `names` of the artifact in `dir` are the ones this manifest lists
    /// (same size and SHA-256); a file that differs is named as damaged.
    pub fn verify_files(&self, dir: &Path, names: &[&str]) -> Result<()> {
        for &name in names {
            let path = dir.join(name);
            let entry = self.files.get(name).ok_or_else(|| Error::UnlistedFile {
                stage: self.fingerprint.stage.clone(),
                dir: dir.to_path_buf(),
                name: name.to_string(),
            })?;
            let damage = match std::fs::metadata(&path) {
                Err(_) => Some(Damage::Unreadable),
                Ok(m) if m.len() != entry.bytes => Some(Damage::Size {
                    expected: entry.bytes,
                    found: m.len(),
                }),
                Ok(_) => match crate::hashing::hash_file(&path) {
                    Err(_) => Some(Damage::Unreadable),
                    Ok(h) if h != entry.sha256 => Some(Damage::Sha256 {
                        expected: entry.sha256.clone(),
                        found: h,
                    }),
                    Ok(_) => None,
                },
            };
            if let Some(damage) = damage {
                return Err(Error::Damaged {
                    path,
                    stage: self.fingerprint.stage.clone(),
                    damage,
                });
            }
        }
        Ok(())
    }

    /// True when this artifact was made with `fingerprint` and its files are still there.
    pub fn is_current(&self, dir: &Path, fingerprint: &Fingerprint) -> bool {
        self.fingerprint == *fingerprint
            && self.files.iter().all(|(name, entry)| {
                std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == entry.bytes)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(config_hash: &str) -> Fingerprint {
        Fingerprint {
            stage: "data".into(),
            schema_version: 1,
            config_hash: config_hash.into(),
            inputs: BTreeMap::from([("raw".to_string(), "abc".to_string())]),
        }
    }

    #[test]
    fn current_only_with_same_fingerprint_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bin"), b"1234").unwrap();
        let m = Manifest {
            fingerprint: fp("h1"),
            producer: "t 0".into(),
            created_unix: 0,
            wall_time_s: 0.0,
            rows: BTreeMap::new(),
            files: BTreeMap::from([(
                "a.bin".to_string(),
                FileEntry {
                    bytes: 4,
                    sha256: String::new(),
                },
            )]),
            content_hash: String::new(),
            details: BTreeMap::new(),
        };
        assert!(m.is_current(dir.path(), &fp("h1")));
        assert!(!m.is_current(dir.path(), &fp("h2")));
        std::fs::write(dir.path().join("a.bin"), b"12").unwrap();
        assert!(!m.is_current(dir.path(), &fp("h1")));
        let mut m = m;
        m.files.get_mut("a.bin").unwrap().sha256 =
            crate::hashing::hash_file(&dir.path().join("a.bin")).unwrap();
        m.files.get_mut("a.bin").unwrap().bytes = 2;
        m.verify_files(dir.path(), &["a.bin"]).unwrap();
        std::fs::write(dir.path().join("a.bin"), b"13").unwrap();
        let err = m.verify_files(dir.path(), &["a.bin"]).unwrap_err();
        assert!(
            matches!(&err, Error::Damaged { damage: Damage::Sha256 { .. }, stage, .. } if stage == "data"),
            "{err:?}"
        );
        let e = err.to_string();
        assert!(
            e.contains("a.bin is damaged") && e.contains("re-run"),
            "{e}"
        );
        // Round trip through JSON keeps it equal.
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }

    #[test]
    fn require_names_the_stage() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::require(dir.path(), "embed").unwrap_err();
        assert!(
            matches!(&err, Error::MissingArtifact { stage, .. } if stage == "embed"),
            "{err:?}"
        );
        assert!(err.to_string().contains("`embed`"), "{err}");
    }
}
