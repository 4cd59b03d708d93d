//! Atomic artifact directories.
//!
//! A stage writes into a temporary sibling directory (`.tmp-<name>-XXXX`) and the finished
//! directory is renamed into place only after every file and the manifest are written and synced.
//! A run killed half-way therefore never leaves a directory under the final name, let alone one
//! with a manifest; the stale temporary directory is removed by the next writer.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::hashing::{hash_file, hash_json};
use crate::manifest::{FileEntry, Fingerprint, MANIFEST_FILE, Manifest};

/// Writes one artifact directory atomically.
pub struct ArtifactWriter {
    final_dir: PathBuf,
    tmp: tempfile::TempDir,
    fingerprint: Fingerprint,
    started: Instant,
    rows: BTreeMap<String, u64>,
    details: BTreeMap<String, serde_json::Value>,
}

impl ArtifactWriter {
    /// Starts writing the artifact that will live at `final_dir`.
    pub fn create(final_dir: &Path, fingerprint: Fingerprint) -> Result<ArtifactWriter> {
        let name = final_dir
            .file_name()
            .with_context(|| format!("artifact path {} has no name", final_dir.display()))?
            .to_string_lossy()
            .into_owned();
        let parent = final_dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        remove_stale_temporaries(parent, &name)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{name}-"))
            .tempdir_in(parent)
            .with_context(|| {
                format!(
                    "cannot create a temporary directory in {}",
                    parent.display()
                )
            })?;
        Ok(ArtifactWriter {
            final_dir: final_dir.to_path_buf(),
            tmp,
            fingerprint,
            started: Instant::now(),
            rows: BTreeMap::new(),
            details: BTreeMap::new(),
        })
    }

    /// The directory to write data files into (not the final location).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Path of a data file inside the temporary directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Records a row count for the manifest.
    pub fn rows(&mut self, what: &str, count: u64) -> &mut Self {
        self.rows.insert(what.to_string(), count);
        self
    }

    /// Records a stage-specific fact for the manifest.
    pub fn detail(&mut self, key: &str, value: impl Into<serde_json::Value>) -> &mut Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// Hashes the files, writes the manifest and moves the directory into place.
    pub fn commit(self, producer: &str) -> Result<Manifest> {
        let files = list_files(self.tmp.path())?;
        if files.contains_key(MANIFEST_FILE) {
            bail!("a stage must not write {MANIFEST_FILE} itself");
        }
        let content_hash = hash_json(&files);
        let manifest = Manifest {
            fingerprint: self.fingerprint,
            producer: producer.to_string(),
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            wall_time_s: self.started.elapsed().as_secs_f64(),
            rows: self.rows,
            files,
            content_hash,
            details: self.details,
        };
        let manifest_path = self.tmp.path().join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&manifest)?;
        fs::write(&manifest_path, text)
            .with_context(|| format!("cannot write {}", manifest_path.display()))?;
        sync_tree(self.tmp.path())?;

        let tmp_path = self.tmp.keep();
        let old = self.final_dir.with_file_name(format!(
            ".old-{}-{}",
            self.final_dir.file_name().unwrap().to_string_lossy(),
            std::process::id()
        ));
        if self.final_dir.exists() {
            fs::rename(&self.final_dir, &old).with_context(|| {
                format!(
                    "cannot move the previous {} aside",
                    self.final_dir.display()
                )
            })?;
        }
        fs::rename(&tmp_path, &self.final_dir).with_context(|| {
            format!(
                "cannot move {} to {}",
                tmp_path.display(),
                self.final_dir.display()
            )
        })?;
        if let Some(Ok(d)) = self.final_dir.parent().map(fs::File::open) {
            let _ = d.sync_all();
        }
        if old.exists() {
            fs::remove_dir_all(&old).with_context(|| {
                format!("cannot remove the previous artifact {}", old.display())
            })?;
        }
        Ok(manifest)
    }
}

/// Removes `.tmp-<name>-*` and `.old-<name>-*` left by a killed writer.
fn remove_stale_temporaries(parent: &Path, name: &str) -> Result<()> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let stale = [format!(".tmp-{name}-"), format!(".old-{name}-")]
            .iter()
            .any(|prefix| file_name.starts_with(prefix.as_str()));
        if stale && entry.path().is_dir() {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot remove stale {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// All regular files below `dir` (relative names with `/`), with size and hash.
fn list_files(dir: &Path) -> Result<BTreeMap<String, FileEntry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = fs::metadata(&path)?.len();
                out.insert(
                    rel,
                    FileEntry {
                        bytes,
                        sha256: hash_file(&path)?,
                    },
                );
            }
        }
    }
    Ok(out)
}

fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)?.sync_all()?;
        }
    }
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Fingerprint {
        Fingerprint {
            stage: "data".into(),
            schema_version: 1,
            config_hash: "c".into(),
            inputs: BTreeMap::new(),
        }
    }

    #[test]
    fn commit_moves_into_place_with_manifest() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("runs/demo/data");
        let mut w = ArtifactWriter::create(&target, fp()).unwrap();
        fs::write(w.file("a.txt"), "hello").unwrap();
        fs::create_dir(w.dir().join("sub")).unwrap();
        fs::write(w.dir().join("sub/b.txt"), "x").unwrap();
        w.rows("users", 3).detail("source", "p5");
        let m = w.commit("test 0.1").unwrap();
        assert_eq!(m.rows["users"], 3);
        assert_eq!(m.files["a.txt"].bytes, 5);
        assert!(m.files.contains_key("sub/b.txt"));
        let read = Manifest::read(&target).unwrap().unwrap();
        assert_eq!(read, m);
        assert!(read.is_current(&target, &fp()));
        // No temporary directories remain.
        let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, vec!["data".to_string()]);
    }

    #[test]
    fn recommit_replaces_and_content_hash_tracks_content() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("data");
        let write = |text: &str| {
            let w = ArtifactWriter::create(&target, fp()).unwrap();
            fs::write(w.file("a.txt"), text).unwrap();
            w.commit("t").unwrap()
        };
        let m1 = write("one");
        let m2 = write("one");
        let m3 = write("two");
        assert_eq!(m1.content_hash, m2.content_hash);
        assert_ne!(m1.content_hash, m3.content_hash);
        assert_eq!(fs::read_to_string(target.join("a.txt")).unwrap(), "two");
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("data");
        {
            let w = ArtifactWriter::create(&target, fp()).unwrap();
            fs::write(w.file("a.txt"), "partial").unwrap();
            // An error or panic in the stage drops the writer here.
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn stage_cannot_write_its_own_manifest() {
        let root = tempfile::tempdir().unwrap();
        let w = ArtifactWriter::create(&root.path().join("x"), fp()).unwrap();
        fs::write(w.file(MANIFEST_FILE), "{}").unwrap();
        assert!(w.commit("t").is_err());
    }

    /// The child half of `killed_writer_leaves_no_manifest`: writes part of an artifact, then
    /// waits to be killed. Only runs when the parent test starts it.
    #[test]
    #[ignore = "helper process for killed_writer_leaves_no_manifest"]
    fn killed_writer_child() {
        let Ok(target) = std::env::var("ARTIFACT_KILL_TARGET") else {
            return;
        };
        let w = ArtifactWriter::create(Path::new(&target), fp()).unwrap();
        fs::write(w.file("big.bin"), vec![7u8; 1 << 20]).unwrap();
        fs::write(Path::new(&target).with_extension("ready"), "").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(60));
        w.commit("t").unwrap();
    }

    #[test]
    fn killed_writer_leaves_no_manifest() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("data");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::killed_writer_child",
                "--ignored",
                "--nocapture",
            ])
            .env("ARTIFACT_KILL_TARGET", &target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ready = target.with_extension("ready");
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "child never started writing");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL: no destructors run.
        child.wait().unwrap();
        assert!(
            !target.exists(),
            "a killed writer must not leave the final directory"
        );
        assert!(Manifest::read(&target).unwrap().is_none());
        // The stale temporary is there, without a manifest, and the next writer removes it.
        let stale: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(stale.len(), 1);
        assert!(!stale[0].join(MANIFEST_FILE).exists());
        let w = ArtifactWriter::create(&target, fp()).unwrap();
        fs::write(w.file("a"), "x").unwrap();
        w.commit("t").unwrap();
        let dirs = fs::read_dir(root.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(dirs, 1);
    }
}
