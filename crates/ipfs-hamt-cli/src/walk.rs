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

/// The regular files under a directory (symlinks are not followed), one at a time and in no particular order: memory
/// holds only the directories still to list, not every path (a bulk import of millions of
/// files does not need them sorted).
pub struct Walker {
    root: PathBuf,
    /// Directories not yet opened.
    stack: Vec<PathBuf>,
    /// The directory being listed.
    current: Option<(PathBuf, std::fs::ReadDir)>,
}

impl Walker {
    /// A walk of `root`, which must be a directory.
    pub fn new(root: &Path) -> Result<Self> {
        let meta =
            std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        Ok(Walker {
            root: root.to_path_buf(),
            stack: vec![root.to_path_buf()],
            current: None,
        })
    }

    fn step(&mut self) -> Result<Option<FileEntry>> {
        loop {
            let Some((dir, entries)) = &mut self.current else {
                let Some(dir) = self.stack.pop() else {
                    return Ok(None);
                };
                let entries = std::fs::read_dir(&dir)
                    .with_context(|| format!("cannot list {}", dir.display()))?;
                self.current = Some((dir, entries));
                continue;
            };
            let Some(entry) = entries.next() else {
                self.current = None;
                continue;
            };
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let ft = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if ft.is_dir() {
                self.stack.push(path);
            } else if ft.is_file() {
                let len = entry
                    .metadata()
                    .with_context(|| format!("cannot stat {}", path.display()))?
                    .len();
                return Ok(Some(FileEntry {
                    key: key_of(&self.root, &path)?,
                    path,
                    len,
                }));
            }
        }
    }
}

impl Iterator for Walker {
    type Item = Result<FileEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                // One error ends the walk.
                self.stack.clear();
                self.current = None;
                Some(Err(e))
            }
        }
    }
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
