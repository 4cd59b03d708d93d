//! Atomic directories: the one way this project replaces a directory.
//!
//! [`StagingDir`] is a temporary sibling (`.tmp-<name>-<pid>-XXXX`) that is filled and then
//! renamed into place by [`replace_dir`] (the previous directory moved aside as
//! `.old-<name>-<pid>`, removed after the rename). Artifacts ([`ArtifactWriter`]), training
//! checkpoints and experiment reports all go through it, so a run killed half-way never leaves a
//! directory under the final name, let alone one with a manifest. A stale temporary is removed by
//! the next writer only once its owner (the process id in its name) is gone.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, io};

use crate::hashing::{hash_file, hash_json};
use crate::manifest::{FileEntry, Fingerprint, MANIFEST_FILE, Manifest};

/// A directory being written, to be renamed over `final_dir` when complete. Dropped without
/// [`StagingDir::commit`], it is removed.
pub struct StagingDir {
    final_dir: PathBuf,
    tmp: tempfile::TempDir,
}

impl StagingDir {
    /// A new temporary sibling of `final_dir` (the parent is created when missing).
    pub fn new(final_dir: &Path) -> Result<StagingDir> {
        let name = dir_name(final_dir)?;
        let parent = final_dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io("create", parent))?;
        remove_stale_temporaries(parent, &name)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{name}-{}-", std::process::id()))
            .tempdir_in(parent)
            .map_err(io("create a temporary directory in", parent))?;
        Ok(StagingDir {
            final_dir: final_dir.to_path_buf(),
            tmp,
        })
    }

    /// The directory to write into (not the final location).
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Syncs the files and renames the directory into place (replacing what was there).
    pub fn commit(self) -> Result<PathBuf> {
        sync_tree(self.tmp.path())?;
        let staged = self.tmp.keep();
        replace_dir(&staged, &self.final_dir)?;
        Ok(self.final_dir)
    }
}

/// Moves the complete directory `staged` to `final_dir`, replacing it: the previous directory is
/// moved aside first and removed after the rename, so at every instant `final_dir` is either
/// the old complete directory or the new one (or, between the two renames, absent while the old
/// one waits under `.old-<name>-<pid>`).
pub fn replace_dir(staged: &Path, final_dir: &Path) -> Result<()> {
    let name = dir_name(final_dir)?;
    let old = final_dir.with_file_name(format!(".old-{name}-{}", std::process::id()));
    if final_dir.exists() {
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io("remove", &old))?;
        }
        fs::rename(final_dir, &old).map_err(|source| Error::Rename {
            from: final_dir.to_path_buf(),
            to: old.clone(),
            source,
        })?;
    }
    fs::rename(staged, final_dir).map_err(|source| Error::Rename {
        from: staged.to_path_buf(),
        to: final_dir.to_path_buf(),
        source,
    })?;
    if let Some(Ok(d)) = final_dir.parent().map(fs::File::open) {
        let _ = d.sync_all();
    }
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io("remove the previous", &old))?;
    }
    Ok(())
}

/// The complete directories a killed [`replace_dir`] may have left for `final_dir`: the final
/// directory itself when present, else the `.old-<name>-<pid>` copies moved aside.
pub fn surviving_dirs(final_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![final_dir.to_path_buf()];
    let (Some(parent), Ok(name)) = (final_dir.parent(), dir_name(final_dir)) else {
        return out;
    };
    if let Ok(entries) = fs::read_dir(parent) {
        let prefix = format!(".old-{name}-");
        out.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path()),
        );
    }
    out.into_iter().filter(|d| d.is_dir()).collect()
}

/// Writes `bytes` to the file `path` through a temporary sibling and a rename (the file's
/// counterpart of [`replace_dir`]).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-write-{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("write", path))
}

fn dir_name(dir: &Path) -> Result<String> {
    Ok(dir
        .file_name()
        .ok_or_else(|| Error::NoDirName {
            path: dir.to_path_buf(),
        })?
        .to_string_lossy()
        .into_owned())
}

/// Writes one artifact directory atomically, with its manifest.
pub struct ArtifactWriter {
    staging: StagingDir,
    fingerprint: Fingerprint,
    started: Instant,
    rows: BTreeMap<String, u64>,
    details: BTreeMap<String, serde_json::Value>,
}

impl ArtifactWriter {
    /// Starts writing the artifact that will live at `final_dir`.
    pub fn create(final_dir: &Path, fingerprint: Fingerprint) -> Result<ArtifactWriter> {
        Ok(ArtifactWriter {
            staging: StagingDir::new(final_dir)?,
            fingerprint,
            started: Instant::now(),
            rows: BTreeMap::new(),
            details: BTreeMap::new(),
        })
    }

    /// The directory to write data files into (not the final location).
    pub fn dir(&self) -> &Path {
        self.staging.path()
    }

    /// Path of a data file inside the temporary directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.staging.path().join(name)
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
        let files = list_files(self.staging.path())?;
        if files.contains_key(MANIFEST_FILE) {
            return Err(Error::ReservedFile {
                name: MANIFEST_FILE,
            });
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
        let manifest_path = self.staging.path().join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&manifest)?;
        fs::write(&manifest_path, text).map_err(io("write", &manifest_path))?;
        self.staging.commit()?;
        Ok(manifest)
    }
}

/// Removes `.tmp-<name>-<pid>-*` and `.old-<name>-<pid>` left by a writer that is gone (a
/// temporary of a live process is left alone; names without a process id are from older
/// versions and removed).
fn remove_stale_temporaries(parent: &Path, name: &str) -> Result<()> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let rest = [format!(".tmp-{name}-"), format!(".old-{name}-")]
            .iter()
            .find_map(|prefix| file_name.strip_prefix(prefix.as_str()).map(str::to_string));
        let Some(rest) = rest else { continue };
        let owner = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if owner.is_some_and(process_alive) || !entry.path().is_dir() {
            continue;
        }
        fs::remove_dir_all(entry.path()).map_err(io("remove stale", &entry.path()))?;
    }
    Ok(())
}

/// Whether process `pid` still runs (Linux `/proc`; elsewhere every owner counts as gone, which
/// the per-dataset [`crate::lock::RunLock`] makes safe).
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// All regular files below `dir` (relative names with `/`), with size and hash.
fn list_files(dir: &Path) -> Result<BTreeMap<String, FileEntry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io("list", &d))? {
            let path = entry.map_err(io("list", &d))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = fs::metadata(&path).map_err(io("read", &path))?.len();
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

fn sync(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", path))
}

fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io("list", dir))? {
        let path = entry.map_err(io("list", dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            sync(&path)?;
        }
    }
    sync(dir)?;
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
    fn temporaries_of_live_owners_survive_a_new_writer() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join(".tmp-data-1-abc"); // pid 1 always runs
        let dead = root.path().join(".tmp-data-4294967-abc");
        let legacy = root.path().join(".tmp-data-XYZ123");
        for d in [&live, &dead, &legacy] {
            fs::create_dir(d).unwrap();
        }
        let w = ArtifactWriter::create(&root.path().join("data"), fp()).unwrap();
        fs::write(w.file("a"), "x").unwrap();
        w.commit("t").unwrap();
        assert!(live.exists() || !Path::new("/proc/1").exists());
        assert!(!dead.exists() && !legacy.exists());
    }

    #[test]
    fn replace_dir_swaps_whole_directories() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("report");
        for text in ["one", "two"] {
            let s = StagingDir::new(&target).unwrap();
            fs::write(s.path().join("r.md"), text).unwrap();
            s.commit().unwrap();
            assert_eq!(fs::read_to_string(target.join("r.md")).unwrap(), text);
        }
        assert_eq!(surviving_dirs(&target), vec![target.clone()]);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
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
