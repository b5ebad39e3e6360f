//! Listing the regular files of a directory as HAMT keys.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A file to import.
pub struct FileEntry {
    /// Path on disk.
    pub path: PathBuf,
    /// HAMT key: the path relative to the root, `/`-separated.
    pub key: String,
    /// Size in bytes when listed.
    pub len: u64,
}

/// Every regular file under `root` (symlinks are not followed), sorted by key.
pub fn regular_files(root: &Path) -> Result<Vec<FileEntry>> {
    let meta =
        std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let ft = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let len = entry
                    .metadata()
                    .with_context(|| format!("cannot stat {}", path.display()))?
                    .len();
                out.push(FileEntry {
                    key: key_of(root, &path)?,
                    path,
                    len,
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn key_of(root: &Path, path: &Path) -> Result<String> {
    let rel = path
        .strip_prefix(root)
        .with_context(|| format!("{} is outside {}", path.display(), root.display()))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c.as_os_str().to_str() {
            Some(s) => parts.push(s),
            None => bail!("file name is not valid UTF-8: {}", path.display()),
        }
    }
    Ok(parts.join("/"))
}

/// The file path for `key` under `root`; refuses keys that would escape `root`.
pub fn path_for_key(root: &Path, key: &str) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    for part in key.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            bail!("refusing to export key {key:?}: not a safe relative path");
        }
        path.push(part);
    }
    Ok(path)
}
