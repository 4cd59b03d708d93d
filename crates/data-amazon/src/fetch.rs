//! Getting the data: download the official Amazon 2014 files, or link a folder that has them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result, io};

use crate::raw::raw_files;

/// Where the official 2014 per-category 5-core review and metadata files are published.
pub const OFFICIAL_BASE: &str = "https://snap.stanford.edu/data/amazon/productGraph/categoryFiles";

/// Downloads `reviews_<category>_5.json.gz` and `meta_<category>.json.gz` into `dir`, skipping
/// files already there. Each file is written to `<name>.part` and renamed when complete.
pub fn download_raw(dir: &Path, category: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .build()
        .into();
    let (reviews, meta) = raw_files(dir, category);
    let mut out = Vec::new();
    for path in [reviews, meta] {
        if path.exists() {
            out.push(path);
            continue;
        }
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let url = format!("{OFFICIAL_BASE}/{name}");
        eprintln!("downloading {url}");
        let response = agent.get(&url).call().map_err(|e| Error::Download {
            url: url.clone(),
            category: category.to_string(),
            dir: dir.to_path_buf(),
            cause: Box::new(e),
        })?;
        let part = path.with_extension("gz.part");
        let mut file = std::fs::File::create(&part).map_err(io("create", &part))?;
        let mut reader = response.into_body().into_reader();
        std::io::copy(&mut reader, &mut file).map_err(|source| Error::DownloadInterrupted {
            url: url.clone(),
            source,
        })?;
        file.flush().map_err(io("write", &part))?;
        file.sync_all().map_err(io("write", &part))?;
        std::fs::rename(&part, &path).map_err(io("write", &path))?;
        out.push(path);
    }
    Ok(out)
}

/// Makes `link` a symbolic link to the existing folder `from`. An existing link is replaced; an
/// existing real folder is left alone (error), so no data is ever deleted.
pub fn link_folder(link: &Path, from: &Path) -> Result<()> {
    let from = from.canonicalize().map_err(|source| Error::DoesNotExist {
        path: from.to_path_buf(),
        source,
    })?;
    if !from.is_dir() {
        return Err(Error::NotAFolder { path: from });
    }
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if meta.file_type().is_symlink() {
            std::fs::remove_file(link).map_err(io("replace the link", link))?;
        } else {
            return Err(Error::NotALink {
                path: link.to_path_buf(),
            });
        }
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    symlink_dir(&from, link).map_err(|source| Error::Link {
        link: link.to_path_buf(),
        target: from.clone(),
        source,
    })
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_replaces_links_and_refuses_real_folders() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        let b = root.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("f"), "1").unwrap();
        let link = root.path().join("datasets/amazon/x");
        link_folder(&link, &a).unwrap();
        assert!(link.join("f").exists());
        link_folder(&link, &b).unwrap();
        assert!(!link.join("f").exists());
        let err = link_folder(&b, &a).unwrap_err();
        assert!(
            matches!(&err, Error::NotALink { path } if *path == b),
            "{err:?}"
        );
        assert!(err.to_string().contains("not a link"), "{err}");
        assert!(matches!(
            link_folder(&link, &root.path().join("missing")),
            Err(Error::DoesNotExist { .. })
        ));
    }
}
