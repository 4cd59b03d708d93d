//! One writer per runs folder and dataset. A pipeline (or experiment) holds
//! `<runs>/<dataset>/.lock` — an advisory lock of the operating system, released when the
//! process ends however it ends — while it reads and writes that dataset's artifacts. A second
//! one stops at once with a message naming the holder (process id, command, start time) instead
//! of racing the first for the same temporary and final directories.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, io};

/// The lock file's name inside a dataset's runs folder.
pub const LOCK_FILE: &str = ".lock";

/// Locks this process holds: path → (holders, the locked file). Taking a lock the process
/// already holds (an experiment running pipelines) only counts another holder.
static HELD: Mutex<Option<HashMap<PathBuf, (usize, File)>>> = Mutex::new(None);

/// A held lock; the lock is released when the process's last holder of it is dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir` (created when missing), or fails at once naming the holder.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let path = dir.join(LOCK_FILE);
        let key = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(LOCK_FILE);
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let held = held.get_or_insert_with(HashMap::new);
        if let Some((count, _)) = held.get_mut(&key) {
            *count += 1;
            return Ok(RunLock { path: key });
        }
        let file = lock_file(&path, dir)?;
        held.insert(key.clone(), (1, file));
        Ok(RunLock { path: key })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_file(path: &Path, dir: &Path) -> Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io("open the lock file", path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Locked {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "holder unknown".to_string()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(io("lock", path)(e));
        }
    }
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let command: Vec<String> = std::env::args().collect();
    file.set_len(0).map_err(io("write", path))?;
    file.seek(SeekFrom::Start(0)).map_err(io("write", path))?;
    writeln!(
        file,
        "pid {}, `{}`, started at unix time {started}",
        std::process::id(),
        command.join(" ")
    )
    .map_err(io("write", path))?;
    file.flush().map_err(io("write", path))?;
    Ok(file)
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let Some(held) = held.as_mut() else { return };
        if let Some((count, _)) = held.get_mut(&self.path) {
            *count -= 1;
            if *count == 0
                && let Some((_, file)) = held.remove(&self.path)
            {
                let _ = file.set_len(0);
                let _ = file.unlock();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The child half of `a_second_process_is_refused_naming_the_holder`: holds the lock until
    /// killed. Only runs when the parent test starts it.
    #[test]
    #[ignore = "helper process for a_second_process_is_refused_naming_the_holder"]
    fn lock_holder_child() {
        let Ok(dir) = std::env::var("RUN_LOCK_DIR") else {
            return;
        };
        let _lock = RunLock::acquire(Path::new(&dir)).unwrap();
        std::fs::write(Path::new(&dir).join("ready"), "").unwrap();
        std::thread::sleep(Duration::from_secs(60));
    }

    #[test]
    fn a_second_process_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "lock::tests::lock_holder_child", "--ignored"])
            .env("RUN_LOCK_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.path().join("ready").exists() {
            assert!(Instant::now() < deadline, "child never took the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Locked { dir: d, .. } if d == dir.path()),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.contains(&format!("pid {}", child.id())) && err.contains("in use"),
            "{err}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // The operating system released the dead holder's lock.
        let lock = RunLock::acquire(dir.path()).unwrap();
        // The same process may take it again (an experiment running pipelines).
        let again = RunLock::acquire(dir.path()).unwrap();
        drop((lock, again));
    }
}
